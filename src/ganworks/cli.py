"""The ``ganworks`` command line: train, eval, sample, presets (and metrics, train-classifier, classify).

Every input problem (unknown preset or key, missing data, bad checkpoint, wrong image size, a
diverged run) ends in one line ``error: ...`` and exit status 2, never a traceback.

Exit status: 0 finished, 2 error, 130 stopped by Ctrl-C (SIGINT), 143 stopped by SIGTERM (both
after saving ``last.pt``; ``--resume`` continues exactly).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
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
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint "
                   "(or from RUN_DIR/checkpoints/best.pt)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--nproc", type=int, default=1,
                   help="data-parallel processes (launches torchrun; data.batch_size is the global batch)")
    p.add_argument("--compile", choices=["auto", "true", "optimizer", "false"], help="train.compile, also when resuming")
    p.add_argument("--threads", type=int, help="CPU threads (torch.set_num_threads)")
    p.add_argument("--max-minutes", type=float, help="train.max_minutes (wall-clock budget), also when resuming")
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
    p.add_argument("--class", dest="cls", type=int, default=None, help="class of every image (conditional runs)")
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
    from .conditional_cli import add_subcommands as add_conditional
    add_conditional(sub)
    from .classify_cli import add_subcommands as add_classify
    add_classify(sub)
    from .reproduce.cli import add_subcommands as add_reproduce

    add_reproduce(sub)
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
        return getattr(e, "exit_code", 2)
    except BrokenPipeError:  # output piped into a reader that stopped early (`ganworks presets | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except OSError as e:  # a file system that refuses (read-only, full, no permission) on a path we write
        where = f"{e.filename}" if e.filename else "a file"
        print(f"error: cannot write or read {where} ({e.strerror or e}): pick a path on a writable file system "
              f"with free space", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


# ---- train -----------------------------------------------------------------------------------


def train_request(args):
    """The ``RunRequest`` (``ganworks.train.run``) of ``ganworks train``'s flags."""
    from .train.run import RunRequest

    return RunRequest(preset=args.preset, out=args.out, resume=args.resume, overrides=list(args.set), seed=args.seed,
                      epochs=args.epochs, iterations=args.iterations, max_minutes=args.max_minutes,
                      compile=args.compile, threads=args.threads, device=args.device, data_root=args.data_root,
                      nproc=args.nproc, progress=not args.no_progress)


def cmd_train(args) -> int:
    from .train.run import run

    return run(train_request(args))


# ---- eval / sample / presets -------------------------------------------------------------------


def cmd_eval(args) -> int:
    from .metrics.classification import count_errors
    from .checkpoints import load_discriminators
    from .data.scaling import data_scale
    from .device import pick_device
    from .train.experiment import load_split

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


#: most images ``ganworks sample`` puts into one grid (``ganworks metrics`` scores more)
MAX_SAMPLES = 10_000


def cmd_sample(args) -> int:
    import math

    import torch
    from torchvision.utils import save_image

    from .checkpoints import load_generator
    from .data.scaling import data_scale
    from .device import pick_device
    from .metrics.datasets import generate_images

    if not 1 <= args.n <= MAX_SAMPLES:
        raise ConfigError(f"--n must be between 1 and {MAX_SAMPLES} (one grid), got {args.n}")
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise ConfigError(f"--out must be a .png file, got {out}")
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder: name a .png file to write")
    device = pick_device(args.device or "auto")
    G, cfg = load_generator(args.run, device, averaged=not args.raw)
    scale = data_scale(cfg["data"])
    torch.manual_seed(args.seed)
    if args.cls is not None:
        from .metrics.conditional import generate_with_classes

        images = generate_with_classes(G, torch.full((args.n,), args.cls), scale, device, batch_size=500)
    else:
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
