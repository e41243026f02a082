"""CPU cost of one Improved-GAN training iteration on CIFAR-10, and of minibatch discrimination.

Measures, on synthetic 32×32 data (timing only; no dataset needed):

1. milliseconds per iteration of the CIFAR-10 feature-matching preset ``improved-gan/cifar10-4000``
   (docs/papers.md §A.1, §A.3), timed on the training loop's own ``train_iteration``: one D step
   (labeled, unlabeled and generated batches through D, the semi-supervised loss) plus one G step
   (L1 feature matching), with the step's FLOPs over the in-process matmul rate as its floor.
2. the forward time of a MinibatchDiscrimination(192, 100 kernels × 5) layer on a batch of
   ``--batch`` pool features, relative to the forward time of the whole minibatch-discrimination
   discriminator on ``--batch`` images (target: at most 10%).

Writes ``benchmarks/results/improved_gan_step_<device>.json`` and ``.md``. Run from the repo root:
``OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/improved_gan_step.py --threads 1``.

``--part compile`` instead times the semi-supervised MNIST iteration (``improved-gan/mnist-100``,
synthetic 28×28 data) eager with the reference's three D forward passes
(``objective.fuse_d_passes=false``), eager with the preset's one fused D pass, with only the Adam
update compiled (``train.compile=optimizer``) and compiled (``train.compile=true``: the compiled
loss+backward per phase and the compiled Adam update) on each of
``--thread-counts``,
with the FLOP floor of each, and writes ``improved_gan_step_compiled.json`` / ``.md`` with the
load average before and after (the machine may be shared: the figures are only as good as that).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from ganworks.config import resolve
from ganworks.models.improved_gan_cifar import cifar_discriminator
from ganworks.nn import MinibatchDiscrimination, data_dependent_init

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, device_name, step_figures, timed_runs  # noqa: E402

PRESET = "improved-gan/cifar10-4000"
MNIST_PRESET = "improved-gan/mnist-100"
#: --part compile: the modes timed against each other (overrides of the preset)
MODES = {
    "eager_three_d_passes": ["train.compile=false", "objective.fuse_d_passes=false"],
    "eager": ["train.compile=false"],
    "update_compiled": ["train.compile=optimizer"],
    "compiled": ["train.compile=true"],
}


def bench_compile(thread_counts: list[int], iters: int, rounds: int = 6) -> dict:
    """Eager vs compiled MNIST iterations per thread count, each with its own floor."""
    from common import count_flops, matmul_rate, time_calls

    from ganworks.train import Experiment
    from ganworks.train.loop import train_iteration

    over = [
        "data.name=synthetic",
        "data.image_size=28",
        "data.channels=1",
        "data.labels=100",
        "data.test_limit=100",
        "train.iterations=100000",
    ]
    cpu = torch.device("cpu")
    rows = []
    for threads in thread_counts:
        torch.set_num_threads(threads)
        rate = matmul_rate(cpu)
        row = {"threads": threads, "matmul_gflops": round(rate / 1e9, 1)}
        exps = {}
        for mode, sets in MODES.items():
            exp = Experiment(resolve(MNIST_PRESET, over + sets), cpu)
            t0 = time.perf_counter()
            for _ in range(5):  # compiles when compiled
                train_iteration(exp)
            exps[mode] = (exp, time.perf_counter() - t0)
        row["flops_per_iteration"] = count_flops(lambda: train_iteration(exps["eager"][0]))
        floor_ms = row["flops_per_iteration"] / rate * 1000
        row["floor_ms"] = round(floor_ms, 2)
        # interleaved blocks (one of each mode, again and again): load changes on a shared machine hit all alike
        blocks = {mode: [] for mode in MODES}
        block = max(1, iters // rounds)
        for _ in range(rounds):
            for mode in MODES:
                blocks[mode].append(time_calls(lambda: train_iteration(exps[mode][0]), cpu, block, warmup=1))
        for mode in MODES:
            ms = statistics.median(blocks[mode])
            # paired with the eager block of the same round: robust to load that drifts between rounds
            paired = [x - e for x, e in zip(blocks[mode], blocks["eager"])]
            row[mode] = {
                "ms_per_iteration": round(ms, 2),
                "ratio_to_floor": round(ms / floor_ms, 3),
                "block_ms": [round(x, 1) for x in blocks[mode]],
                "settings": MODES[mode],
                "paired_vs_eager_ms": round(statistics.median(paired), 2),
                "rounds_faster_than_eager": round(sum(d < 0 for d in paired) / len(paired), 3),
                "first_five_iterations_s": round(exps[mode][1], 1),
                "compiled": exps[mode][0].phase_loss.is_compiled,
                "update_compiled": exps[mode][0].optimizers["d"].is_compiled,
            }
        row["speedup"] = round(row["eager"]["ms_per_iteration"] / row["compiled"]["ms_per_iteration"], 3)
        row["update_speedup"] = round(row["eager"]["ms_per_iteration"] / row["update_compiled"]["ms_per_iteration"], 3)
        row["fused_speedup"] = round(
            row["eager_three_d_passes"]["ms_per_iteration"] / row["eager"]["ms_per_iteration"], 3
        )
        rows.append(row)
    return {"rows": rows}


def _load_sentence(result: dict) -> str:
    """How busy the machine was: the 1-minute load average before the run against the core count."""
    before, after, cores = result["loadavg_before"], result["loadavg_after"], result["cores"]
    where = f"load average (1, 5, 15 min) {before} before and {after} after the run, on {cores} cores"
    if before[0] < 1.0:  # at most this benchmark's own process on one core
        return (
            f"**The machine was otherwise idle** ({where}: the rise is this benchmark's own load); the modes "
            "were timed in interleaved blocks."
        )
    return (
        f"**The machine was shared with other work**: {where}, so absolute times are inflated and noisy; the "
        "modes were timed in interleaved blocks so that all see the same load."
    )


def main_compile(args) -> None:
    load_before = os.getloadavg()
    res = bench_compile(args.thread_counts, args.iters, args.blocks)
    load_after = os.getloadavg()
    result = {
        "benchmark": "improved_gan_step_compiled",
        "device": "cpu",
        "cpu": device_name(torch.device("cpu")).split(" (")[0],
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
        "settings": {
            "preset": MNIST_PRESET,
            "data": "synthetic 28x28 (timing only)",
            "batch": 100,
            "timed_iterations": args.iters,
            "warmup_iterations": 5,
            "blocks": args.blocks,
            "timing": f"median over {args.blocks} interleaved blocks (one per mode, in turn) of the mean ms per iteration in each block",
            "iteration": "train_iteration: 1 D step (labeled+unlabeled+fake through D: three passes, or one "
            "fused pass as the preset) + 1 G step (L2 feature matching), the reference's Adam, EMA of D",
            "floor": "FLOPs (FlopCounterMode, eager) / 1024x1024 float32 matmul rate at that thread count",
        },
        **res,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / "improved_gan_step_compiled"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    md = [
        "# Improved-GAN MNIST step: three D passes vs one fused pass vs `train.compile` (CPU)",
        "",
        f"{result['cpu']}, {result['cores']} cores, torch {result['torch']}, preset `{MNIST_PRESET}` on synthetic "
        f"28×28 data, batch 100, median of {args.blocks} interleaved blocks of {max(1, args.iters // args.blocks)} iterations per mode after warm-up. Produced by "
        "`benchmarks/improved_gan_step.py --part compile`.",
        "",
        _load_sentence(result),
        "",
        "Modes: **eager, 3 D passes** = `objective.fuse_d_passes=false` (the reference's labeled, unlabeled and "
        "generated passes); **eager** = one fused D pass (the preset's), `train.compile=false`; **update "
        "compiled** = eager phases and the reference Adam's update compiled (`train.compile=optimizer`, what "
        "`auto` picks for this preset on CPU); **compiled** = phases and update compiled (`train.compile=true`).",
        "",
        "| threads | eager, 3 D passes ms/it | eager ms/it | update compiled ms/it | compiled ms/it | "
        "fused vs 3 passes | update compiled vs eager | compiled vs eager | floor ms | 3 passes / floor | "
        "eager / floor | update compiled / floor | compiled / floor | first 5 its (compiling) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        three, eager, upd, comp = r["eager_three_d_passes"], r["eager"], r["update_compiled"], r["compiled"]
        md.append(
            f"| {r['threads']} | {three['ms_per_iteration']:.1f} | {eager['ms_per_iteration']:.1f} | "
            f"{upd['ms_per_iteration']:.1f} | {comp['ms_per_iteration']:.1f} | {r['fused_speedup']:.2f}× | "
            f"{r['update_speedup']:.2f}× | {r['speedup']:.2f}× | {r['floor_ms']:.1f} | "
            f"{three['ratio_to_floor']:.2f} | {eager['ratio_to_floor']:.2f} | {upd['ratio_to_floor']:.2f} | "
            f"{comp['ratio_to_floor']:.2f} | {upd['first_five_iterations_s']:.0f} / {comp['first_five_iterations_s']:.0f} s |"
        )
    md += [
        "",
        "Paired with the eager block of the same round (median difference, ms/it; the share of rounds in which "
        "the mode was faster than eager): robust to load that drifts from round to round.",
        "",
        "| threads | 3 D passes − eager | update compiled − eager | compiled − eager |",
        "|---|---|---|---|",
    ]
    for r in res["rows"]:
        cells = [
            f"{r[m]['paired_vs_eager_ms']:+.1f} ({r[m]['rounds_faster_than_eager']:.0%} faster)"
            for m in ("eager_three_d_passes", "update_compiled", "compiled")
        ]
        md.append(f"| {r['threads']} | " + " | ".join(cells) + " |")
    md += [
        "",
        "Floor: the iteration's matmul FLOPs over a 1024×1024 float32 matmul's rate measured at the same "
        "thread count in the same process.",
        "",
    ]
    stem.with_suffix(".md").write_text("\n".join(md))
    print(json.dumps(result, indent=2))


def bench_iteration(batch: int, iters: int) -> dict:
    """The preset's own training iteration (``train_iteration``) on synthetic CIFAR-sized data."""
    cfg = resolve(
        PRESET,
        [
            "data.name=synthetic",
            "data.image_size=32",
            "data.channels=3",
            f"data.batch_size={batch}",
            "data.labels=100",
            "data.test_limit=100",
            "eval.quality_samples=0",
        ],
    )
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
    ap.add_argument(
        "--part",
        choices=["cifar", "compile"],
        default="cifar",
        help="cifar: the CIFAR-10 step and minibatch layer; compile: MNIST eager vs compiled",
    )
    ap.add_argument(
        "--blocks",
        type=int,
        default=6,
        help="--part compile: interleaved rounds (of --iters/--blocks iterations per mode each)",
    )
    ap.add_argument("--thread-counts", type=int, nargs="+", default=[1, 2], help="--part compile: thread counts")
    args = ap.parse_args()
    if args.part == "compile":
        args.iters = max(args.iters, 30) if args.iters == 3 else args.iters
        main_compile(args)
        return
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
            "batch": args.batch,
            "iters": args.iters,
            "warmup": args.warmup,
            "repeats": args.repeats,
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
