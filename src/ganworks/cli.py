"""The ``ganworks`` command line: train, eval, sample, presets (and metrics, train-classifier).

Every input problem (unknown preset or key, missing data, bad checkpoint, wrong image size, a
diverged run) ends in one line ``error: ...`` and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

from .errors import CheckpointError, ConfigError, GanworksError


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", help="folder holding the datasets (default: $GANWORKS_DATA, else a cache folder)")
    p.add_argument("--device", default=None, help="auto (default), cpu or cuda")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ganworks", description="Improved-GAN and SN-GAN, reproduced in PyTorch.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a preset (or resume a run)")
    p.add_argument("preset", nargs="?", help="preset name, e.g. improved-gan/mnist-100 (see `ganworks presets`)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key (repeatable)")
    p.add_argument("--epochs", type=float, help="train for this many epochs in total")
    p.add_argument("--iterations", type=int, help="train for this many iterations in total (generator updates for SN-GAN)")
    p.add_argument("--seed", type=int, help="model and data-order seed (train.seed)")
    p.add_argument("--out", help="run directory (default: runs/<preset>-seed<seed>-<time>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _common(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="test error of the raw and the averaged discriminator")
    p.add_argument("run", metavar="RUN_DIR|CHECKPOINT")
    p.add_argument("--json", help="also write the result to this JSON file")
    _common(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("sample", help="write a grid of generated images")
    p.add_argument("run", metavar="RUN_DIR|CHECKPOINT")
    p.add_argument("--n", type=int, default=100, help="number of images (default 100)")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--raw", action="store_true", help="use the raw G even if the run averaged G's weights")
    _common(p)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("presets", help="list every preset with its paper, table row and published number")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_presets)

    try:
        from .metrics.cli import add_subcommands
    except ImportError:
        pass
    else:
        add_subcommands(sub)
    try:
        from .turing.cli import add_subcommands as add_turing
    except ImportError:  # the `turing` extra (fastapi, uvicorn, sqlalchemy) is not installed
        pass
    else:
        add_turing(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except GanworksError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


# ---- train -----------------------------------------------------------------------------------


def cmd_train(args) -> int:
    from .config import apply_overrides, resolve
    from .train import Experiment, load_checkpoint, pick_device, train

    if args.resume:
        run_dir = Path(args.resume)
        state = load_checkpoint(run_dir)
        cfg = state["config"]
        if args.preset and args.preset != cfg["meta"].get("preset"):
            raise ConfigError(f"{run_dir} is a run of {cfg['meta'].get('preset')!r}, not {args.preset!r}: drop the preset name to resume it")
        if args.set or args.seed is not None:
            raise ConfigError("--set and --seed cannot change a run being resumed (only --epochs/--iterations/--device/--data-root)")
    else:
        if not args.preset:
            raise ConfigError("name a preset (see `ganworks presets`) or --resume RUN_DIR")
        cfg = resolve(args.preset, args.set)
        if args.seed is not None:
            cfg["train"]["seed"] = args.seed
        run_dir = Path(args.out) if args.out else Path("runs") / (
            f"{re.sub('[^A-Za-z0-9._-]+', '-', args.preset)}-seed{cfg['train']['seed']}-{time.strftime('%Y%m%d-%H%M%S')}")
        if (run_dir / "checkpoints").exists():
            raise ConfigError(f"{run_dir} already holds a run: continue it with --resume {run_dir}, or pick another --out")
    if args.epochs is not None:
        cfg = apply_overrides(cfg, [f"train.epochs={args.epochs}", "train.iterations=0"])
    if args.iterations is not None:
        cfg = apply_overrides(cfg, [f"train.iterations={args.iterations}"])
    if args.data_root:
        cfg["data"]["root"] = args.data_root
    device = pick_device(args.device or cfg["train"]["device"])

    exp = Experiment(cfg, device)
    if args.resume:
        exp.load_state_dict(state)
        if exp.position["iteration"] >= exp.total_iterations:
            raise ConfigError(f"{run_dir} already finished {exp.position['iteration']} iterations: ask for more with --epochs or --iterations")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    print(f"run: {run_dir}  device: {device}  iterations: {exp.position['iteration']} -> {exp.total_iterations} "
          f"({exp.iterations_per_epoch} per epoch)", file=sys.stderr)
    row = train(exp, run_dir, progress=not args.no_progress)
    print(json.dumps({k: v for k, v in row.items() if k != "samples"}))
    return 0


# ---- eval / sample / presets -------------------------------------------------------------------


def cmd_eval(args) -> int:
    from .metrics.classification import count_errors
    from .train import load_discriminators, pick_device
    from .train.experiment import data_scale, load_split

    device = pick_device(args.device or "auto")
    D, D_avg, cfg = load_discriminators(args.run, device)
    d = cfg["data"]
    if not d["labels"]:
        raise CheckpointError(f"{args.run} is not a semi-supervised run: its discriminator is no classifier (use `ganworks metrics`)")
    test = load_split(d, "test", root=args.data_root)
    scale = data_scale(d)
    n = len(test)
    result = {"checkpoint": str(args.run), "dataset": d["name"], "split": "test", "n": n}
    for key, model in (("raw", D), ("averaged", D_avg)):
        if model is not None:
            e = count_errors(model, test.images, test.labels, scale, cfg["eval"]["batch_size"], device)
            result[f"test_errors_{key}"] = e
            result[f"test_error_{key}"] = e / n
            print(f"{key:>9} D: {e:5d} / {n} test errors ({100 * e / n:.2f}%)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def cmd_sample(args) -> int:
    import math

    import torch
    from torchvision.utils import save_image

    from .metrics.datasets import generate_images
    from .train import load_generator, pick_device
    from .train.experiment import data_scale

    if args.n < 1:
        raise ConfigError("--n must be at least 1")
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise ConfigError(f"--out must be a .png file, got {out}")
    device = pick_device(args.device or "auto")
    G, cfg = load_generator(args.run, device, averaged=not args.raw)
    scale = data_scale(cfg["data"])
    torch.manual_seed(args.seed)
    images = generate_images(G, args.n, scale, device, batch_size=500)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image(images.float().div(255), out, nrow=max(1, int(math.sqrt(args.n))), padding=1)
    print(f"wrote {args.n} samples to {out}")
    return 0


def cmd_presets(args) -> int:
    from .config import list_presets, load_preset

    rows = []
    for name in list_presets():
        m = load_preset(name)["meta"]
        rows.append({"preset": name, "paper": m["paper"], "table": m["table"], "row": m["row"], "published": m["published"]})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    short = {"Improved Techniques for Training GANs (Salimans et al., 2016)": "Improved-GAN",
             "Spectral Normalization for GANs (Miyato et al., 2018)": "SN-GAN"}
    width = max(len(r["preset"]) for r in rows)
    for r in rows:
        paper = short.get(r["paper"], r["paper"])
        print(f"{r['preset']:<{width}}  {paper} {r['table']}, {r['row']}: {r['published']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
