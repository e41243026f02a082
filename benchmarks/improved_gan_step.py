"""CPU cost of one Improved-GAN training iteration on CIFAR-10, and of minibatch discrimination.

Measures, on synthetic 32×32 data (timing only; no dataset needed):

1. milliseconds per iteration of the CIFAR-10 feature-matching preset ``improved-gan/cifar10-4000``
   (papers.md §A.1, §A.3), timed on the training loop's own ``train_iteration``: one D step
   (labeled, unlabeled and generated batches through D, the semi-supervised loss) plus one G step
   (L1 feature matching), with the step's FLOPs over the in-process matmul rate as its floor.
2. the forward time of a MinibatchDiscrimination(192, 100 kernels × 5) layer on a batch of
   ``--batch`` pool features, relative to the forward time of the whole minibatch-discrimination
   discriminator on ``--batch`` images (target: at most 10%).

Writes ``benchmarks/results/improved_gan_step_<device>.json`` and ``.md``. Run from the repo root:
``OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/improved_gan_step.py --threads 1``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from pathlib import Path

import torch

from ganworks.config import resolve
from ganworks.models.improved_gan_cifar import cifar_discriminator
from ganworks.nn import MinibatchDiscrimination, data_dependent_init

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, device_name, step_figures, timed_runs  # noqa: E402

PRESET = "improved-gan/cifar10-4000"


def bench_iteration(batch: int, iters: int) -> dict:
    """The preset's own training iteration (``train_iteration``) on synthetic CIFAR-sized data."""
    cfg = resolve(PRESET, ["data.name=synthetic", "data.image_size=32", "data.channels=3", f"data.batch_size={batch}",
                           "data.labels=100", "data.test_limit=100", "eval.quality_samples=0"])
    return step_figures(cfg, torch.device("cpu"), iters)


def bench_minibatch(batch: int, repeats: int, warmup: int) -> dict:
    torch.manual_seed(0)
    D = cifar_discriminator(variant="md").train()
    x = torch.rand(batch, 3, 32, 32) * 2 - 1
    data_dependent_init(D, x)
    feats = torch.randn(batch, D.feature_dim)
    mbd: MinibatchDiscrimination = D.minibatch
    out = {}
    with torch.no_grad():
        d_fwd = timed_runs(lambda: D(x), repeats, warmup)
        mb_fwd = timed_runs(lambda: mbd(feats), repeats * 5, warmup)
    out["d_md_forward_ms_median"] = statistics.median(d_fwd)
    out["minibatch_forward_ms_median"] = statistics.median(mb_fwd)
    out["minibatch_over_d_forward"] = out["minibatch_forward_ms_median"] / out["d_md_forward_ms_median"]
    # forward + backward of the layer alone, for reference
    feats_g = feats.clone().requires_grad_(True)
    mb_fb = timed_runs(lambda: mbd(feats_g).sum().backward(), repeats * 5, warmup)
    out["minibatch_forward_backward_ms_median"] = statistics.median(mb_fb)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--iters", type=int, default=3, help="timed training iterations")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5, help="timed D forwards (the layer alone: 5×)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    it = bench_iteration(args.batch, args.iters)
    mb = bench_minibatch(args.batch, args.repeats, args.warmup)
    result = {
        "benchmark": "improved_gan_step",
        "device": "cpu",
        "cpu": device_name(torch.device("cpu")),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "settings": {
            "batch": args.batch, "iters": args.iters, "warmup": args.warmup, "repeats": args.repeats,
            "model": f"preset {PRESET} (FM discriminator, BN generator), full width",
            "iteration": "the training loop's train_iteration: 1 D step (labeled+unlabeled+fake batches, "
                         "semi-supervised loss) + 1 G step (L1 feature matching), the reference's Adam, EMA of D",
            "minibatch": "MinibatchDiscrimination(192, 100, 5) forward on a batch of pool features vs "
                         "improved-gan-cifar-d (variant=md) forward on the same number of images, "
                         "train mode, no grad",
            "data": "synthetic uniform [-1, 1] images (timing only)",
        },
        **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in {**it, **mb}.items()},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / "improved_gan_step_cpu"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    md = [
        "# Improved-GAN CIFAR-10 step cost (CPU)",
        "",
        f"{result['cpu']}, {result['threads']} thread(s), torch {result['torch']}, batch {args.batch}; "
        "synthetic data. Produced by `benchmarks/improved_gan_step.py`.",
        "",
        "| measurement | value |",
        "|---|---|",
        f"| FM iteration (1 D step + 1 G step), mean of {args.iters} | {it['ms_per_iteration']:.0f} ms |",
        f"| its FLOPs / matmul rate in this process (floor) | {it['floor_ms']:.0f} ms ({it['flops_per_iteration'] / 1e9:.1f} GFLOP at {it['matmul_gflops']} GFLOP/s) |",
        f"| ratio to floor | {it['ratio_to_floor']:.2f} |",
        "",
        "The floor divides the step's FLOPs by a 1024×1024 float32 matmul's rate in the same process;",
        "oneDNN's convolutions (e.g. Winograd for 3×3) can beat that rate, so a ratio below 1 is possible",
        "for this convolutional model and the floor is only a rough guide here.",
        "",
        "| measurement | value |",
        "|---|---|",
        f"| MD discriminator forward, {args.batch} images | {mb['d_md_forward_ms_median']:.1f} ms |",
        f"| minibatch layer forward, {args.batch} samples | {mb['minibatch_forward_ms_median']:.2f} ms |",
        f"| minibatch layer / D forward (target ≤ 10%) | {100 * mb['minibatch_over_d_forward']:.2f}% |",
        f"| minibatch layer forward + backward | {mb['minibatch_forward_backward_ms_median']:.2f} ms |",
        "",
    ]
    stem.with_suffix(".md").write_text("\n".join(md))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
