"""Where the semi-supervised MNIST step's time goes on this CPU, lever by lever (issue: Table 1 at
the full recipe), and what a real run of ``improved-gan/mnist-100`` projects to for 300 epochs.

``--part step`` times the training iteration (``train_iteration``, batch 100, synthetic 28×28
data) in interleaved rounds, one block per mode per round, each mode paired with the baseline of
the same round (robust to load that drifts), at ``--threads`` threads, with the matmul floor (the
iteration's FLOPs over a 1024×1024 float32 matmul's rate, measured in the same process). Modes:

* ``eager``: no compilation, ``train.noise=global`` (PyTorch's serial sampler, one call per layer);
* ``update_compiled``: the reference Adam's update compiled (``train.compile=optimizer``);
* ``noise_parallel``: that, and the noise drawn in two chunks on two threads from counter-keyed
  generators (``train.noise=parallel``, nn/noise.py);
* ``noise_prefetch``: that, and the next draw computed in the background (``train.noise=prefetch``);
* ``compiled_tails``: the whole phase compiled by inductor (``train.compile=true``: on CPU the
  matmuls stay extern MKL calls and the elementwise tails are fused), with parallel noise.

It also profiles the fastest mode (share of time per operator family) and measures the levers
that are not in the step: the raw and averaged D scored in two passes vs one (10,000 test images),
one checkpoint save, one metrics row (the most that moving them off the critical path can gain).

``--part stretch`` trains the real preset (MNIST from ``GANWORKS_DATA``) for ``--iterations``
iterations (evaluation every epoch, logging, sample grids and checkpoint saves included, as
``ganworks train``) and projects 180,000 iterations (300 epochs) from its wall time.

Writes ``benchmarks/results/mnist_step_levers.{json,md}`` (step) and
``benchmarks/results/mnist_stretch.{json,md}`` (stretch), with the device, settings and load
average. Run from the repository root on an otherwise idle machine, e.g.
``python benchmarks/mnist_step_levers.py --part step --threads 2 --rounds 40``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, count_flops, device_name, matmul_rate  # noqa: E402

PRESET = "improved-gan/mnist-100"
SYNTHETIC = [
    "data.name=synthetic",
    "data.image_size=28",
    "data.channels=1",
    "data.labels=100",
    "data.test_limit=100",
    "train.iterations=1000000",
]
MODES = {
    "eager": ["train.compile=false", "train.noise=global"],
    "update_compiled": ["train.compile=optimizer", "train.noise=global"],
    "noise_parallel": ["train.compile=optimizer", "train.noise=parallel"],
    "noise_prefetch": ["train.compile=optimizer", "train.noise=prefetch"],
    "compiled_tails": ["train.compile=true", "train.noise=parallel"],
}
FULL_RUN_ITERATIONS = 180_000  # 300 epochs of 600 iterations
GROUPS = {  # operator families of the profile
    "matmul": ("aten::mm", "aten::addmm"),
    "noise": ("aten::normal_",),
    "weight_norm": ("aten::_weight_norm_interface", "aten::_weight_norm_interface_backward"),
    "ema_lerp": ("aten::lerp_", "aten::_foreach_lerp_"),
}


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _machine() -> dict:
    return {
        "device": "cpu",
        "cpu": device_name(torch.device("cpu")).split(" (")[0],
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def _time_block(fn, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1000


def bench_step(threads: int, rounds: int, block: int) -> dict:
    from ganworks.config import resolve
    from ganworks.train import Experiment
    from ganworks.train.loop import train_iteration

    torch.set_num_threads(threads)
    cpu = torch.device("cpu")
    exps = {}
    for mode, sets in MODES.items():
        exp = Experiment(resolve(PRESET, SYNTHETIC + sets), cpu)
        t0 = time.perf_counter()
        for _ in range(5):  # warm-up (and compilation where compiled)
            train_iteration(exp)
        exps[mode] = (exp, time.perf_counter() - t0)
    flops = count_flops(lambda: train_iteration(exps["eager"][0]))
    rate = matmul_rate(cpu)
    floor_ms = flops / rate * 1000
    blocks = {mode: [] for mode in MODES}
    for _ in range(rounds):
        for mode in MODES:
            blocks[mode].append(_time_block(lambda: train_iteration(exps[mode][0]), block))
    rows = {}
    for mode in MODES:
        ms = statistics.median(blocks[mode])
        paired = [x - e for x, e in zip(blocks[mode], blocks["eager"])]
        rows[mode] = {
            "settings": MODES[mode],
            "ms_per_iteration": round(ms, 2),
            "ratio_to_floor": round(ms / floor_ms, 3),
            "paired_vs_eager_ms": round(statistics.median(paired), 2),
            "rounds_faster_than_eager": round(sum(d < 0 for d in paired) / len(paired), 3),
            "projected_minutes_180k_steps_only": round(ms * FULL_RUN_ITERATIONS / 60000, 1),
            "warmup_5_iterations_s": round(exps[mode][1], 1),
            "block_ms": [round(x, 2) for x in blocks[mode]],
        }
    best = min(MODES, key=lambda m: rows[m]["ms_per_iteration"])
    return {
        "threads": threads,
        "flops_per_iteration": flops,
        "matmul_gflops": round(rate / 1e9, 1),
        "floor_ms": round(floor_ms, 2),
        "target_ms_1_3x_floor": round(1.3 * floor_ms, 2),
        "modes": rows,
        "fastest": best,
        "profile_of_fastest": _profile(exps[best][0]),
    }


def _profile(exp, iterations: int = 20) -> dict:
    """Share of the step's wall time per operator family (self CPU time of the calling thread)."""
    from torch.profiler import ProfilerActivity, profile

    from ganworks.train.loop import train_iteration

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(iterations):
            train_iteration(exp)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    per_it = {
        name: sum(e.self_cpu_time_total for e in events if e.key in keys) / iterations / 1000
        for name, keys in GROUPS.items()
    }
    per_it["everything_else"] = total / iterations / 1000 - sum(per_it.values())
    return {
        "ms_per_iteration": {k: round(v, 2) for k, v in per_it.items()},
        "iterations": iterations,
        "note": "profiler self CPU time of the thread that calls each op (includes its intra-op threads' wall time)",
    }


def bench_off_step(threads: int, repeats: int = 5) -> dict:
    """The evaluation and writing levers, timed on their own (ms per epoch of 600 iterations)."""
    from ganworks.config import resolve
    from ganworks.metrics.classification import count_errors, count_errors_of
    from ganworks.train import Experiment
    from ganworks.train.loop import RunLog, _save

    torch.set_num_threads(threads)
    cfg = resolve(PRESET, SYNTHETIC[:-2] + ["data.test_limit=10000", "train.iterations=1000"])
    exp = Experiment(cfg, torch.device("cpu"))
    imgs = torch.randint(0, 256, (10000, 1, 28, 28), dtype=torch.uint8)
    labels = torch.randint(0, 10, (10000,))
    models = [exp.D, exp.ema["d"].model]

    def two_passes():
        return [count_errors(m, imgs, labels, "zero_one", 1000) for m in models]

    def one_pass():
        return count_errors_of(models, imgs, labels, "zero_one", 1000)

    assert two_passes() == one_pass()
    paired = [(_time_block(two_passes, 1), _time_block(one_pass, 1)) for _ in range(repeats)]
    with tempfile.TemporaryDirectory() as d:
        run = Path(d)
        log = RunLog(run)
        save_ms = statistics.median(
            _time_block(lambda: _save(exp, run, {"iteration": 1}, {}), 1) for _ in range(repeats)
        )
        row = {"iteration": 1, "loss_d": 0.5, "loss_g": 1.0, "test_errors": 100}
        write_ms = statistics.median(_time_block(lambda: log.write(row), 1) for _ in range(repeats))
        log.close()
        size = (run / "checkpoints" / "last.pt").stat().st_size
    return {
        "eval_two_passes_ms": round(statistics.median(p[0] for p in paired), 1),
        "eval_one_pass_ms": round(statistics.median(p[1] for p in paired), 1),
        "checkpoint_save_ms": round(save_ms, 1),
        "checkpoint_mb": round(size / 1e6, 1),
        "metrics_row_write_ms": round(write_ms, 2),
        "test_images": 10000,
    }


def main_step(args) -> None:
    before = _load()
    step = bench_step(args.threads, args.rounds, args.block)
    off = bench_off_step(args.threads)
    result = {
        "benchmark": "mnist_step_levers",
        **_machine(),
        "loadavg_before": before,
        "loadavg_after": _load(),
        "settings": {
            "preset": PRESET,
            "data": "synthetic 28x28 (timing only)",
            "batch": 100,
            "threads": args.threads,
            "rounds": args.rounds,
            "iterations_per_block": args.block,
            "timing": "median over rounds of each mode's block (modes interleaved in every round)",
        },
        "step": step,
        "off_step": off,
    }
    write_step_report(result)


def write_step_report(result: dict) -> None:
    step, off = result["step"], result["off_step"]
    floor = step["floor_ms"]
    md = [
        "# Improved-GAN MNIST step: each speed lever measured (CPU)",
        "",
        f"{result['cpu']}, {result['cores']} cores, torch {result['torch']}, {step['threads']} threads, preset "
        f"`{PRESET}` (one fused D pass) on synthetic 28×28 data, batch 100. Median over {result['settings']['rounds']} "
        f"interleaved rounds of {result['settings']['iterations_per_block']} iterations per mode. Load average "
        f"(1, 5, 15 min) {result['loadavg_before']} before, {result['loadavg_after']} after. Produced by "
        "`benchmarks/mnist_step_levers.py --part step`.",
        "",
        f"Floor: {step['flops_per_iteration'] / 1e9:.2f} GFLOP per iteration at {step['matmul_gflops']} GFLOP/s "
        f"(1024² float32 matmul, same process) = **{floor:.1f} ms**; the target 1.3× floor is "
        f"**{step['target_ms_1_3x_floor']:.1f} ms/it**.",
        "",
        "| mode | settings | ms/it | × floor | paired vs eager (ms) | rounds faster | 180k its, steps only (min) |",
        "|---|---|---|---|---|---|---|",
    ]
    for mode, r in step["modes"].items():
        md.append(
            f"| {mode} | `{' '.join(r['settings'])}` | {r['ms_per_iteration']:.1f} | {r['ratio_to_floor']:.2f} | "
            f"{r['paired_vs_eager_ms']:+.1f} | {r['rounds_faster_than_eager']:.0%} | "
            f"{r['projected_minutes_180k_steps_only']:.0f} |"
        )
    prof = step["profile_of_fastest"]["ms_per_iteration"]
    md += [
        "",
        f"Where the fastest mode (`{step['fastest']}`) spends an iteration (profiler, ms/it): "
        + ", ".join(f"{k} {v:.1f}" for k, v in prof.items())
        + ".",
        "",
        "Levers outside the step (ms; per evaluation = per epoch of 600 iterations):",
        "",
        "| lever | before | after / cost |",
        "|---|---|---|",
        f"| raw and averaged D scored in one pass (10,000 test images) | {off['eval_two_passes_ms']:.0f} (two passes) | "
        f"{off['eval_one_pass_ms']:.0f} (one pass) |",
        f"| checkpoint save off the critical path | {off['checkpoint_save_ms']:.0f} per save "
        f"({off['checkpoint_mb']} MB) | not done: at most this per epoch |",
        f"| metrics row (jsonl + TensorBoard) off the critical path | {off['metrics_row_write_ms']:.1f} per row | "
        "not done: at most this per epoch |",
        "",
    ]
    stem = RESULTS / "mnist_step_levers"
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text("\n".join(md))
    print("\n".join(md))


def main_stretch(args) -> None:
    from ganworks.config import resolve
    from ganworks.train import Experiment, train

    torch.set_num_threads(args.threads)
    over = [f"train.iterations={args.iterations}"] + args.set
    before = _load()
    t0 = time.perf_counter()
    exp = Experiment(resolve(PRESET, over), torch.device("cpu"))
    setup_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        row = train(exp, Path(d), progress=False)
        wall = time.perf_counter() - t0
        rows = [json.loads(x) for x in (Path(d) / "metrics.jsonl").read_text().splitlines()]
    ms_it = wall / args.iterations * 1000
    result = {
        "benchmark": "mnist_stretch",
        **_machine(),
        "loadavg_before": before,
        "loadavg_after": _load(),
        "settings": {
            "preset": PRESET,
            "overrides": over,
            "threads": args.threads,
            "data": "MNIST (GANWORKS_DATA)",
            "what": "ganworks' train() as `ganworks train` runs it: steps, an evaluation (raw and "
            "averaged D on the 10,000 test images, sample grid, metrics row, TensorBoard) and "
            "a checkpoint save every epoch of 600 iterations",
        },
        "iterations": args.iterations,
        "wall_s": round(wall, 1),
        "setup_s": round(setup_s, 1),
        "ms_per_iteration_all_in": round(ms_it, 2),
        "projected_minutes_180000_iterations": round(ms_it * FULL_RUN_ITERATIONS / 60000, 1),
        "compiled": {"phases": exp.phase_loss.is_compiled, "update": exp.optimizers["d"].is_compiled},
        "noise": exp.cfg["train"]["noise"],
        "rows": [
            {k: r[k] for k in ("iteration", "wall_time_s", "test_errors", "test_errors_ema") if k in r} for r in rows
        ],
        "last_row_epoch": row.get("epoch"),
    }
    md = [
        "# Improved-GAN MNIST-100: a real run's stretch, projected to 300 epochs (CPU)",
        "",
        f"{result['cpu']}, {result['cores']} cores, torch {result['torch']}, {args.threads} threads, preset `{PRESET}` "
        f"with `{' '.join(over)}` (noise `{result['noise']}`, compiled update {result['compiled']['update']}). Load "
        f"average {before} before, {result['loadavg_after']} after. Produced by "
        "`benchmarks/mnist_step_levers.py --part stretch`.",
        "",
        f"**{args.iterations} iterations in {wall:.0f} s = {ms_it:.1f} ms/it all in** (evaluation every epoch, "
        f"logging, grids, checkpoint saves): 180,000 iterations (300 epochs) project to "
        f"**{result['projected_minutes_180000_iterations']:.0f} minutes** (target ≤ 140), plus {setup_s:.0f} s of set-up.",
        "",
        "| iteration | wall time (s) | test errors (raw D) | test errors (averaged D) |",
        "|---|---|---|---|",
    ]
    for r in result["rows"]:
        md.append(
            f"| {r['iteration']} | {r['wall_time_s']:.1f} | {r.get('test_errors', '')} | {r.get('test_errors_ema', '')} |"
        )
    stem = RESULTS / "mnist_stretch"
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["step", "stretch"], default="step")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=40, help="step: interleaved rounds")
    ap.add_argument("--block", type=int, default=10, help="step: iterations per mode per round")
    ap.add_argument("--iterations", type=int, default=3000, help="stretch: iterations of the real run")
    ap.add_argument("--set", action="append", default=[], help="stretch: extra config overrides")
    args = ap.parse_args()
    (main_step if args.part == "step" else main_stretch)(args)


if __name__ == "__main__":
    main()
