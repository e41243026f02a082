#!/usr/bin/env bash
# Issue #22 items 1-19: run each quoted bad input once and print the exit status and the last line of
# stderr. Usage: PYTHONPATH=$PWD/src bash benchmarks/hardening_sweep.sh  (needs GANWORKS_DATA with MNIST)
set -u
W=$(mktemp -d); cd "$W"
G="python -m ganworks"
P=improved-gan/mnist-100
T="--set data.train_limit=2000 --set data.test_limit=500 --device cpu --no-progress"
TINY="--set data.name=digits --set data.labels=20 --set data.batch_size=50 --set data.test_limit=200 --set model.init_examples=100 --set model.generator.image_size=8 --set model.generator.width=0.05 --set model.discriminator.image_size=8 --set model.discriminator.width=0.05 --set eval.grid=16 --device cpu --no-progress"
python -c "from ganworks.metrics.inception import save_random_inception_weights as s; s('rand.pth', seed=0)"
M="--inception-weights $W/rand.pth --device cpu --quiet"  # random Inception weights: no download needed
run() { local name="$1"; shift; "$@" >/tmp/sweep_out 2>/tmp/sweep_err; local rc=$?; echo "[$name] rc=$rc :: $(tail -1 /tmp/sweep_err | cut -c1-400)"; }

mkdir foreign; echo '{"mine":1}' > foreign/config.json
run 1a-foreign-config $G train $P $T --iterations 2 --out foreign; echo "    config.json now: $(cat foreign/config.json)"
mkdir other; python -c "import json; from ganworks.config import resolve; print(json.dumps(resolve('sngan/cifar10-cnn-sn')))" > other/config.json
run 1b-other-preset-config $G train $P $T --iterations 2 --out other
$G train $P $TINY --iterations 100000 --set eval.every=5 --set eval.grid=0 --out dup >/dev/null 2>&1 & BG=$!
while [ ! -f dup/checkpoints/last.pt ]; do sleep 0.3; done
run 2a-resume-while-training $G train --resume dup --iterations 100 --no-progress
kill -TERM $BG; wait $BG; echo "    first writer exit: $?"
$G train $P $TINY --iterations 30 --set eval.every=5 --out dup2 >/dev/null 2>two_a.err & A=$!
$G train $P $TINY --iterations 30 --set eval.every=5 --out dup2 >/dev/null 2>two_b.err & B=$!
wait $A; RA=$?; wait $B; RB=$?
echo "[2b-two-identical-trains-together] rc=$RA,$RB :: $(tail -1 two_a.err | cut -c1-200) || $(tail -1 two_b.err | cut -c1-200)"
echo "    dup2 rows: $(python -c "import json; print([json.loads(l)['iteration'] for l in open('dup2/metrics.jsonl')])")"
$G train $P $TINY --iterations 4 --set eval.every=2 --out mine >/dev/null 2>&1
$G train improved-gan/mnist-20 $TINY --iterations 2 --out theirs >/dev/null 2>&1
cp theirs/checkpoints/last.pt mine/checkpoints/last.pt; R=$(wc -l < mine/metrics.jsonl)
run 3-foreign-checkpoint $G train --resume mine --iterations 8 --no-progress; echo "    rows before $R after $(wc -l < mine/metrics.jsonl)"
python -c "import numpy as np; np.savez('x.npz', images=np.zeros((20,8,8,1),np.uint8))"; echo notes > existing.txt
run 4-metrics-out-existing $G metrics x.npz --reference none --out existing.txt $M; echo "    existing.txt: $(cat existing.txt)"
run 5a-threads-neg $G train $P $T --threads -3
run 5b-threads-huge $G train $P $T --threads 100000
run 8-huge-png bash -c "mkdir -p big/train/a && python -c \"from PIL import Image; Image.new('1',(12000,12000)).save('big/train/a/0.png')\" && $G train sngan/cifar10-cnn-sn --set 'data.name=\"imagefolder:$W/big\"' --device cpu --no-progress --iterations 1 --out bigrun"
echo x > cachefile
mkdir -p cls/train/a cls/train/b; python -c "from PIL import Image; [Image.new('RGB',(32,32)).save(f'cls/train/{c}/0.png') for c in 'ab']"
run 9-cache-is-a-file env GANWORKS_CACHE=$W/cachefile $G train sngan/cifar10-cnn-sn --set "data.name=\"imagefolder:$W/cls\"" --device cpu --no-progress --iterations 1 --out cacherun
printf 'id = "t"\nmetric = "m"\n[[rows]]\nid = "r"\npreset = "%s"\nseeds = ["a", -1]\n' $P > t.toml
run 10-table-seeds $G reproduce t.toml --dry-run --out o
mkdir -p nonimg/a; echo text > nonimg/a/0.png
run 11-metrics-folder-not-image $G metrics nonimg --reference none $M
run 12a-best-FIDD $G train $P $T --set eval.best='"FIDD"' --iterations 2 --out b1
run 12b-best-val-no-validation $G train $P $T --set eval.best='"val_error_ema"' --iterations 2 --out b2
run 13a-iterations-0 $G train $P $T --iterations 0
run 13b-epochs-and-iterations $G train $P $T --epochs 1 --iterations 2
run 13c-threads-0 $G train $P $T --threads 0
run 13d-nproc-0 $G train $P $T --nproc 0
run 13e-nproc-neg $G train $P $T --nproc -2
run 13f-out-empty $G train $P $T --out ""
run 14-private-preset $G train sngan/_cifar10-cnn $T
printf 'id = "../../escape"\nmetric = "m"\n[[rows]]\nid = "r"\npreset = "%s"\nseeds = [1]\n' $P > esc.toml
run 15a-table-id-traversal $G reproduce esc.toml --dry-run --out deep/o
run 15b-reproduce-iterations-neg $G reproduce improved-gan/table1 --iterations -3 --dry-run --out o
run 15c-launcher-slurm $G reproduce improved-gan/table1 --launcher slurm --out o
run 16a-classes-zz $G train sngan/cifar10-cnn-sn --set "data.name=\"imagefolder:$W/cls\"" --set 'data.classes=["zz"]' --device cpu --no-progress --iterations 1 --out c1
python -c "import numpy as np; np.savez('ten.npz', images=np.zeros((10,8,8,1),np.uint8))"
run 16b-is-10-images-10-splits $G metrics ten.npz --reference none $M
python -c "import torch; s=torch.load('mine/checkpoints/best.pt',weights_only=True); k=next(iter(s['models']['G'])); s['models']['G'][k].fill_(float('nan')); torch.save(s,'mine/checkpoints/last.pt')"
run 17-resume-nan-last $G train --resume mine --iterations 8 --no-progress
run 18a-data-root-file $G train $P $T --data-root existing.txt
run 18b-GANWORKS_DATA-file env GANWORKS_DATA=$W/existing.txt $G train $P --device cpu --no-progress
echo hello > text.npz
run 18c-text-npz $G metrics text.npz --reference none $M
mkdir -p mixed; python -c "from PIL import Image; [Image.new('RGB',(s,s)).save(f'mixed/{i}.png') for i,s in enumerate((8,8,9))]"
run 18d-mixed-size-folder $G metrics mixed --reference none --is-splits 1 $M
run 18f-reference-none-default-metrics $G metrics x.npz --reference none --is-splits 2 $M --out r.json
echo "    scores: $(python -c "import json; print(sorted(json.load(open('r.json'))['scores']))")"
run 18e-channels $G train sngan/cifar10-cnn-sn --set data.name=synthetic --set data.image_size=32 --device cpu --no-progress
echo "work folder: $W"
