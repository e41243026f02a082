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


def _resume_target(path: str) -> tuple[Path, Path | None]:
    """``(run_dir, checkpoint or None)`` for ``--resume`` of a run directory or one of its checkpoints."""
    p = Path(path).expanduser()
    if p.is_file():
        if p.parent.name != "checkpoints" or not (p.parent.parent / "config.json").is_file():
            raise CheckpointError(f"--resume takes a run directory (or RUN/checkpoints/<name>.pt inside one); {p} is "
                                  f"not inside a run directory")
        return p.parent.parent, p
    if not p.is_dir():
        raise CheckpointError(f"no such run directory: {p}")
    last = p / "checkpoints" / "last.pt"
    if last.is_file():
        return p, last
    if (p / "config.json").is_file():
        return p, None  # killed before its first checkpoint: restart it from its config
    raise CheckpointError(f"{p} is not a ganworks run directory (no config.json or checkpoints/last.pt): "
                          f"pass the folder `ganworks train --out` wrote")


#: most CPU threads ``--threads`` accepts
MAX_THREADS = 1024


def _check_train_flags(args) -> None:
    """Flags that make no sense on their own, refused before anything is read or written."""
    if args.nproc < 1:
        raise ConfigError(f"--nproc must be at least 1, got {args.nproc}")
    if args.threads is not None and not 1 <= args.threads <= MAX_THREADS:
        raise ConfigError(f"--threads must be between 1 and {MAX_THREADS}, got {args.threads}")
    if args.iterations == 0:
        raise ConfigError("--iterations 0 trains nothing: give the total number of iterations to train to (at least "
                          "1), or leave it out for the preset's length")
    if args.epochs is not None and args.iterations is not None:
        raise ConfigError("give --epochs or --iterations, not both (each sets the length of the run)")
    if args.out is not None and not args.out.strip():
        raise ConfigError("--out is empty: name a folder for the run, or leave --out out for runs/<preset>-...")


def _compiled_parts(exp) -> str:
    """What train.compile compiled: the phases and/or the optimizers' update, or nothing."""
    parts = (["step"] if exp.phase_loss.is_compiled else []) + \
        (["optimizer update"] if any(getattr(o, "is_compiled", False) for o in exp.optimizers.values()) else [])
    return " + ".join(parts) or "nothing"


def _write_config(run_dir: Path, cfg: dict) -> None:
    """``run_dir/config.json``, atomically: a kill leaves the old file or the new one."""
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / "config.json.tmp"
    tmp.write_text(json.dumps(cfg, indent=2) + "\n")
    tmp.replace(run_dir / "config.json")


def cmd_train(args) -> int:
    from .train import distributed

    _check_train_flags(args)
    if args.nproc > 1 and not distributed.launched_by_torchrun():
        from .train.launch import launch_torchrun

        return launch_torchrun(args)
    writer = int(os.environ.get("RANK", "0")) == 0  # the one process that writes the run folder
    held: list = []  # the run folder's lock, once taken
    try:
        return _locked_train(args, writer, held)
    finally:
        for lock in held:
            lock.release()


def _locked_train(args, writer: bool, held: list) -> int:
    """``cmd_train`` once the flags are checked: take the run folder's lock (into ``held``), check the
    folder and checkpoint, then train."""
    from .config import resolve, validate
    from .train import load_checkpoint, runfolder, runlock

    state, created = None, False
    if args.resume:
        run_dir, ckpt = _resume_target(args.resume)
        if writer:
            held.append(runlock.acquire(run_dir))
        if ckpt is not None:
            state = load_checkpoint(ckpt)
            runfolder.check_checkpoint_belongs(run_dir, ckpt, state)
            _refuse_nonfinite_resume(run_dir, ckpt, state)
            cfg = state["config"]
            if ckpt.name != "last.pt":
                print(f"resuming from {ckpt} (iteration {state['position']['iteration']}); its later rows in "
                      f"metrics.jsonl are dropped and last.pt is overwritten at the next save", file=sys.stderr)
        else:
            cfg = runfolder.read_run_config(run_dir)
            print(f"{run_dir} has no checkpoint (stopped before its first save): starting it again from its "
                  f"config.json", file=sys.stderr)
        cfg = validate(cfg)
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
            cfg = validate(cfg)
        run_dir = Path(args.out) if args.out else Path("runs") / (
            f"{re.sub('[^A-Za-z0-9._-]+', '-', args.preset)}-seed{cfg['train']['seed']}-{time.strftime('%Y%m%d-%H%M%S')}")
        runfolder.check_out_dir(run_dir, args.preset)
        if writer:
            created = not run_dir.exists()
            held.append(runlock.acquire(run_dir))
            runfolder.check_out_dir(run_dir, args.preset)  # again, now that nobody else can write it
    try:
        return _train_run(args, cfg, state, run_dir, writer)
    except BaseException:
        if created and not (run_dir / "config.json").exists():
            held.pop().release()  # nothing of the run was written: leave no empty folder behind
            (run_dir / runlock.LOCK).unlink(missing_ok=True)
            try:
                run_dir.rmdir()
            except OSError:
                pass
        raise


def _refuse_nonfinite_resume(run_dir: Path, ckpt: Path, state: dict) -> None:
    """A checkpoint with NaN/Inf weights is no place to resume from: name the newest finite one, or say there is none."""
    from .checkpoints import nonfinite
    from .train import load_checkpoint

    if not nonfinite({"models": state.get("models", {}), "ema": state.get("ema", {})}):
        return
    others = []
    for other in sorted((run_dir / "checkpoints").glob("*.pt")):
        if other.resolve() == ckpt.resolve():
            continue
        try:
            st = load_checkpoint(other)
        except GanworksError:
            continue
        if not nonfinite({"models": st.get("models", {}), "ema": st.get("ema", {})}):
            others.append((st["position"]["iteration"], other))
    if others:
        it, good = max(others)
        hint = f"the newest finite checkpoint is {good} (iteration {it}): ganworks train --resume {good}"
    else:
        hint = f"no checkpoint of {run_dir} is finite: start the run again with a lower optim.lr and a new --out"
    raise CheckpointError(f"{ckpt} holds non-finite weights (NaN/Inf; the run diverged before it was saved), so "
                          f"it cannot be resumed; {hint}")


def _train_run(args, cfg: dict, state: dict | None, run_dir: Path, writer: bool) -> int:
    """Train (one process or one rank of several) and finish the same way: status.json, the last row, the exit status."""
    from .config import apply_overrides
    from .train import Experiment, pick_device, train
    from .train import distributed
    from .train.loop import EXIT_CODES

    if args.epochs is not None:
        cfg = apply_overrides(cfg, [f"train.epochs={args.epochs}", "train.iterations=0"])
    if args.iterations is not None:
        cfg = apply_overrides(cfg, [f"train.iterations={args.iterations}"])
    if args.data_root:
        cfg["data"]["root"] = args.data_root
    if args.max_minutes is not None:
        cfg = apply_overrides(cfg, [f"train.max_minutes={args.max_minutes}"])
    if args.compile is not None:
        cfg["train"]["compile"] = {"true": True, "false": False}.get(args.compile, args.compile)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    device = pick_device(args.device or cfg["train"]["device"])
    info = None
    if distributed.launched_by_torchrun():
        info, device = distributed.setup(device)
        distributed.check_config(cfg, info.world_size)
    try:
        if args.resume and writer:
            from .checkpoints import remove_stale_tmp

            remove_stale_tmp(run_dir)
        exp = Experiment(cfg, device)
        if info is not None:
            exp.world_size = info.world_size
        if state is not None:
            exp.load_state_dict(state)
            if exp.position["iteration"] >= exp.total_iterations:
                raise ConfigError(f"{run_dir} already finished {exp.position['iteration']} iterations: ask for more with --epochs or --iterations")
        if info is not None:
            distributed.wrap(exp, info)
        if writer:
            _write_config(run_dir, cfg)
            procs = f"{info.world_size} processes, " if info is not None else ""
            print(f"run: {run_dir}  {procs}device: {device}  iterations: {exp.position['iteration']} -> "
                  f"{exp.total_iterations} ({exp.iterations_per_epoch} per epoch)  compiled: {_compiled_parts(exp)}"
                  + (f"  data: {cfg['meta']['data']}" if cfg["meta"].get("data") else ""), file=sys.stderr)
        progress = not args.no_progress and writer
        row = distributed.train_distributed(exp, run_dir, progress) if info is not None else \
            train(exp, run_dir, progress=progress)
    finally:
        if info is not None:
            distributed.teardown()
    if writer:
        it = exp.position["iteration"]  # how far the run got (read by `ganworks reproduce`)
        (run_dir / "status.json").write_text(json.dumps({
            "iteration": it, "total_iterations": exp.total_iterations, "finished": it >= exp.total_iterations,
            "epoch": it / exp.iterations_per_epoch, "interrupted": bool(row.get("interrupted")),
            "signal": row.get("interrupted")}) + "\n")
        print(json.dumps({k: v for k, v in row.items() if k != "samples"}))
    return EXIT_CODES.get(row.get("interrupted"), 0)


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
