"""Semi-supervised MNIST (Improved-GAN Table 1): test errors over seeds, time, and the step's floor.

    python benchmarks/mnist_ssl.py --seeds 1 2 3 --epochs 10 --device cpu --data-root ../shared/data

For each seed s (train.seed = data.seed_data = s, so each run draws its own labeled subset, as the
paper averages over label subsets) it trains the preset for ``--epochs`` (or until
``--max-minutes``) and records the test errors of the raw and the averaged D. Once per call it
times the training iteration (D step + G step, ms) and counts its FLOPs; FLOPs over the
matrix-multiply rate measured in the same process is the floor, and ms / floor is the ratio.
Writes ``benchmarks/results/mnist_ssl_<device>[_<tag>].json`` and a markdown table.
Seeds can run as separate processes (e.g. one per core, ``--tag seed1`` ...) and be combined with
``--merge FILE.json ...`` into ``mnist_ssl_<device>.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import device_name, step_figures, write  # noqa: E402

from ganworks.config import resolve  # noqa: E402
from ganworks.train import Experiment, pick_device, train  # noqa: E402


def mean_std(xs):
    return (statistics.mean(xs), statistics.pstdev(xs) if len(xs) > 1 else 0.0)


def summarize(preset: str, runs: list, step: dict, setup: dict) -> dict:
    cfg = resolve(preset)
    raw = mean_std([r["test_errors_raw"] for r in runs])
    avg = mean_std([r["test_errors_averaged"] for r in runs])
    return {
        "benchmark": "mnist_ssl",
        "preset": preset,
        **setup,
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
        "labels": cfg["data"]["labels"],
        "test_set": 10000,
        "test_errors_raw_mean_std": [round(raw[0], 1), round(raw[1], 1)],
        "test_errors_averaged_mean_std": [round(avg[0], 1), round(avg[1], 1)],
        "paper": cfg["meta"]["published"],
        "step": step,
        "runs": runs,
    }


def table(r: dict) -> str:
    budget = f"{r['epochs_budget']} epochs" + (f" or {r['max_minutes']} min of training" if r["max_minutes"] else "")
    lines = [
        f"# Semi-supervised MNIST, {r['labels']} labels ({r['preset']})",
        "",
        f"Device: {r['device']}; torch {r['torch']}; {r['processes']}; budget per seed: {budget}; {r['date']}.",
        "",
        "| seed | epochs | wall time (s) | test errors, raw D | test errors, averaged D |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {x['seed']} | {x['epochs']} | {x['wall_time_s']} | {x['test_errors_raw']} | {x['test_errors_averaged']} |"
        for x in r["runs"]
    ]
    (rm, rs), (am, as_) = r["test_errors_raw_mean_std"], r["test_errors_averaged_mean_std"]
    lines += [
        f"| **mean ± std** | | | {rm} ± {rs} | {am} ± {as_} |",
        "",
        f"Paper (300 epochs, 10 seeds): {r['paper']}.",
        "",
        "Test errors over training (averaged D), per seed: epoch → errors / 10000 (wall time):",
        "",
    ]
    for x in r["runs"]:
        pts = ", ".join(f"{e}: {n} ({t:.0f} s)" for e, n, t in x["curve_test_errors_averaged"])
        lines.append(f"- seed {x['seed']}: {pts}")
    st = r["step"]
    if not isinstance(st, list):
        st = [st]
    lines += [
        "",
        "| ms / iteration | FLOPs / iteration | matmul GFLOP/s | floor (ms) | ratio to floor |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {x['ms_per_iteration']} | {x['flops_per_iteration'] / 1e9:.3f} G | {x['matmul_gflops']} | {x['floor_ms']} | {x['ratio_to_floor']} |"
        for x in st
    ]
    return "\n".join(lines)


def merge(files: list[str]) -> int:
    parts = [json.loads(Path(f).read_text()) for f in files]
    first = parts[0]
    runs = sorted((r for p in parts for r in p["runs"]), key=lambda r: r["seed"])
    setup = {k: first[k] for k in ("device", "device_type", "threads", "epochs_budget", "max_minutes", "overrides")}
    setup["seeds"] = [r["seed"] for r in runs]
    setup["processes"] = f"{len(parts)} processes (merged from {', '.join(Path(f).name for f in files)})"
    result = summarize(first["preset"], runs, [p["step"] for p in parts], setup)
    js, md = write(f"mnist_ssl_{first['device_type']}", result, table(result))
    print(f"wrote {js} and {md}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="improved-gan/mnist-100")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--epochs", type=float, default=10)
    ap.add_argument("--max-minutes", type=float, default=0, help="wall-clock budget per seed (0: none)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--data-root")
    ap.add_argument("--runs-dir", default="runs/bench")
    ap.add_argument("--tag", default="", help="suffix of the result file name")
    ap.add_argument("--timing-iterations", type=int, default=50)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--merge", nargs="+", metavar="FILE.json", help="combine per-seed result files and exit")
    args = ap.parse_args(argv)
    if args.merge:
        return merge(args.merge)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    base = list(args.set) + [f"train.epochs={args.epochs}", f"train.max_minutes={args.max_minutes}"]
    if args.data_root:
        base.append(f"data.root={json.dumps(args.data_root)}")

    step = step_figures(resolve(args.preset, base), device, args.timing_iterations)
    print(f"step: {step}", file=sys.stderr)
    runs = []
    for seed in args.seeds:
        cfg = resolve(args.preset, base + [f"train.seed={seed}", f"data.seed_data={seed}"])
        exp = Experiment(cfg, device)
        run_dir = Path(args.runs_dir) / f"{args.preset.replace('/', '-')}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}"
        t0 = time.time()
        row = train(exp, run_dir, progress=sys.stderr.isatty())
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        runs.append(
            {
                "seed": seed,
                "seed_data": seed,
                "epochs": round(row["epoch"], 3),
                "iterations": row["iteration"],
                "wall_time_s": round(time.time() - t0, 1),
                "test_errors_raw": row["test_errors"],
                "test_errors_averaged": row["test_errors_ema"],
                "curve_test_errors_averaged": [
                    [round(r["epoch"], 2), r["test_errors_ema"], round(r["wall_time_s"], 1)] for r in rows
                ],
            }
        )
        print(
            f"seed {seed}: {runs[-1]['test_errors_averaged']} errors (averaged D), {runs[-1]['test_errors_raw']} (raw) "
            f"after {runs[-1]['epochs']} epochs, {runs[-1]['wall_time_s']} s",
            file=sys.stderr,
        )

    result = summarize(
        args.preset,
        runs,
        step,
        {
            "device": device_name(device),
            "device_type": device.type,
            "threads": torch.get_num_threads(),
            "epochs_budget": args.epochs,
            "max_minutes": args.max_minutes,
            "overrides": args.set,
            "seeds": args.seeds,
            "processes": "one process",
        },
    )
    name = f"mnist_ssl_{device.type}" + (f"_{args.tag}" if args.tag else "")
    js, md = write(name, result, table(result))
    print(f"wrote {js} and {md}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
