"""One home for a run: ``ganworks train`` and ``ganworks.api.train`` both build a :class:`RunRequest`
and call :func:`run`, which returns the exit status.

:func:`run` owns, for the one-process and the distributed path alike:

* the request's checks (flags that make no sense), before anything is read or written;
* the run folder: which folder and checkpoint ``--resume`` continues (:func:`resume_target`), where a
  new run goes (``runfolder.default_run_dir``), the checks that a new run's folder is new, empty or a
  restart of the same preset, that a checkpoint belongs to its run and holds finite weights
  (``runfolder``), and the folder's lock (``runlock``: one writer per run folder);
* the config: the preset with ``--set`` overrides and ``--seed``, or the resumed run's own, then the
  changes a resume may make too (length, time budget, compile mode, data root);
* ``status.json`` (how far the run got; ``ganworks reproduce`` reads it) and the exit status: 0 finished,
  130 / 143 stopped by SIGINT / SIGTERM after saving ``last.pt``. Errors raise ``GanworksError``
  (the command line prints one line and exits 2).

The distributed path: with ``nproc > 1`` outside torchrun, :func:`run` checks the request and the run
folder, then launches torchrun (``launch.py``), which runs :func:`run` again in every rank. Rank 0
takes the lock and writes (config, rows, checkpoints, ``status.json``); every rank ends with the same
status, and so does the launcher (docs/run-folders-and-errors.md).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CheckpointError, ConfigError
from . import distributed, runfolder, runlock
from .loop import EXIT_CODES

#: most CPU threads ``threads`` accepts
MAX_THREADS = 1024


@dataclass
class RunRequest:
    """What to train: a new run of ``preset`` (into ``out``, else ``runs/<preset>-seed<seed>-<time>``),
    or the run in the folder (or checkpoint) ``resume``; the fields are ``ganworks train``'s flags."""

    preset: str | None = None
    out: str | os.PathLike | None = None
    resume: str | os.PathLike | None = None
    overrides: list[str] = field(default_factory=list)  # --set KEY=VALUE, a new run only
    seed: int | None = None  # train.seed, a new run only
    epochs: float | None = None  # the total length, also when resuming (one of epochs, iterations)
    iterations: int | None = None
    max_minutes: float | None = None  # train.max_minutes, also when resuming
    compile: str | None = None  # train.compile ("auto", "true", "optimizer", "false"), also when resuming
    threads: int | None = None  # torch.set_num_threads
    device: str | None = None  # auto, cpu or cuda (default: the config's train.device)
    data_root: str | os.PathLike | None = None
    nproc: int = 1  # data-parallel processes (torchrun)
    progress: bool = True


def check_request(req: RunRequest) -> None:
    """Flags that make no sense on their own, refused before anything is read or written."""
    if req.nproc < 1:
        raise ConfigError(f"--nproc must be at least 1, got {req.nproc}")
    if req.threads is not None and not 1 <= req.threads <= MAX_THREADS:
        raise ConfigError(f"--threads must be between 1 and {MAX_THREADS}, got {req.threads}")
    if req.iterations == 0:
        raise ConfigError(
            "--iterations 0 trains nothing: give the total number of iterations to train to (at least "
            "1), or leave it out for the preset's length"
        )
    if req.epochs is not None and req.iterations is not None:
        raise ConfigError("give --epochs or --iterations, not both (each sets the length of the run)")
    if req.out is not None and not str(req.out).strip():
        raise ConfigError("--out is empty: name a folder for the run, or leave --out out for runs/<preset>-...")
    if req.nproc > 1 and req.max_minutes is not None:
        raise ConfigError(
            "--max-minutes cannot be used with --nproc above 1 (the processes would stop at different "
            "iterations): give --iterations instead"
        )
    if not req.resume and not req.preset:
        raise ConfigError("name a preset (see `ganworks presets`) or --resume RUN_DIR")


def resume_target(path: str | os.PathLike) -> tuple[Path, Path | None]:
    """``(run_dir, checkpoint or None)`` for ``--resume`` of a run directory or one of its checkpoints:
    a folder resumes from ``checkpoints/last.pt``, or restarts from its ``config.json`` when it was
    stopped before its first checkpoint; a file must be ``RUN/checkpoints/<name>.pt`` of a run."""
    p = Path(path).expanduser()
    if p.is_file():
        if p.parent.name != "checkpoints" or not (p.parent.parent / "config.json").is_file():
            raise CheckpointError(
                f"--resume takes a run directory (or RUN/checkpoints/<name>.pt inside one); {p} is "
                f"not inside a run directory"
            )
        return p.parent.parent, p
    if not p.is_dir():
        raise CheckpointError(f"no such run directory: {p}")
    last = p / "checkpoints" / "last.pt"
    if last.is_file():
        return p, last
    if (p / "config.json").is_file():
        return p, None  # killed before its first checkpoint: restart it from its config
    raise CheckpointError(
        f"{p} is not a ganworks run directory (no config.json or checkpoints/last.pt): "
        f"pass the folder `ganworks train --out` wrote"
    )


def run(req: RunRequest) -> int:
    """Train what ``req`` asks for and return the exit status (0, or 130 / 143 after a signal)."""
    check_request(req)
    if req.nproc > 1 and not distributed.launched_by_torchrun():
        return _launch(req)
    writer = distributed.rank() == 0  # the one process that writes the run folder
    held: list[runlock.RunLock] = []  # the run folder's lock, once taken
    try:
        return _locked_run(req, writer, held)
    finally:
        for lock in held:
            lock.release()


def _launch(req: RunRequest) -> int:
    """``nproc`` processes under torchrun, with the run folder fixed here (so every rank agrees on it)
    and checked before anything starts; the ranks check it again under the lock."""
    from .launch import launch_torchrun

    if req.resume:
        run_dir, _ = resume_target(req.resume)
    else:
        run_dir = Path(req.out) if req.out else runfolder.default_run_dir(req.preset, _new_config(req)["train"]["seed"])
        runfolder.check_out_dir(run_dir, req.preset)
    return launch_torchrun(req, run_dir)


def _new_config(req: RunRequest) -> dict:
    """A new run's config: the preset, its ``--set`` overrides and ``--seed``."""
    from ..config import resolve, validate

    cfg = resolve(req.preset, list(req.overrides))
    if req.seed is not None:
        cfg["train"]["seed"] = req.seed
        cfg = validate(cfg)
    return cfg


def _locked_run(req: RunRequest, writer: bool, held: list) -> int:
    """Take the run folder's lock (into ``held``; the writer only), check the folder and checkpoint,
    then train. A new folder that got nothing of the run is removed again when the run fails."""
    from ..checkpoints import load_checkpoint
    from ..config import validate

    state, created = None, False
    if req.resume:
        run_dir, ckpt = resume_target(req.resume)
        runfolder.read_run_config(run_dir)  # a folder that is not a run is refused before its lock file is written
        if writer:
            held.append(runlock.acquire(run_dir))
        if ckpt is not None:
            state = load_checkpoint(ckpt)
            runfolder.check_checkpoint_belongs(run_dir, ckpt, state)
            runfolder.refuse_nonfinite_resume(run_dir, ckpt, state)
            cfg = state["config"]
            if ckpt.name != "last.pt":
                print(
                    f"resuming from {ckpt} (iteration {state['position']['iteration']}); its later rows in "
                    f"metrics.jsonl are dropped and last.pt is overwritten at the next save",
                    file=sys.stderr,
                )
        else:
            cfg = runfolder.read_run_config(run_dir)
            print(
                f"{run_dir} has no checkpoint (stopped before its first save): starting it again from its config.json",
                file=sys.stderr,
            )
        cfg = validate(cfg)
        if req.preset and req.preset != cfg["meta"].get("preset"):
            raise ConfigError(
                f"{run_dir} is a run of {cfg['meta'].get('preset')!r}, not {req.preset!r}: drop the "
                f"preset name to resume it"
            )
        if req.overrides or req.seed is not None:
            raise ConfigError(
                "--set and --seed cannot change a run being resumed (only --epochs/--iterations/--device/--data-root)"
            )
    else:
        cfg = _new_config(req)
        run_dir = Path(req.out) if req.out else runfolder.default_run_dir(req.preset, cfg["train"]["seed"])
        runfolder.check_out_dir(run_dir, req.preset)
        if writer:
            created = not run_dir.exists()
            held.append(runlock.acquire(run_dir))
            runfolder.check_out_dir(run_dir, req.preset)  # again, now that nobody else can write it
    try:
        return _train(req, resumable_changes(cfg, req), state, run_dir, writer)
    except BaseException:
        if created and not (run_dir / "config.json").exists():
            held.pop().release()  # nothing of the run was written: leave no empty folder behind
            (run_dir / runlock.LOCK).unlink(missing_ok=True)
            try:
                run_dir.rmdir()
            except OSError:
                pass
        raise


def resumable_changes(cfg: dict, req: RunRequest) -> dict:
    """``cfg`` with the changes a resume may make too (``runfolder.RESUMABLE``): the length, the time
    budget, the compile mode and the data root."""
    from ..config import apply_overrides

    if req.epochs is not None:
        cfg = apply_overrides(cfg, [f"train.epochs={req.epochs}", "train.iterations=0"])
    if req.iterations is not None:
        cfg = apply_overrides(cfg, [f"train.iterations={req.iterations}"])
    if req.data_root:
        cfg["data"]["root"] = str(req.data_root)
    if req.max_minutes is not None:
        cfg = apply_overrides(cfg, [f"train.max_minutes={req.max_minutes}"])
    if req.compile is not None:
        cfg["train"]["compile"] = {"true": True, "false": False}.get(req.compile, req.compile)
    return cfg


def _train(req: RunRequest, cfg: dict, state: dict | None, run_dir: Path, writer: bool) -> int:
    """Train (one process, or one rank of several) and finish the same way on both paths: status.json,
    the last row, the exit status."""
    from ..checkpoints import remove_stale_tmp
    from ..device import pick_device
    from .experiment import Experiment
    from .loop import train

    if req.threads:
        import torch

        torch.set_num_threads(req.threads)
    device = pick_device(req.device or cfg["train"]["device"])
    info = None
    if distributed.launched_by_torchrun():
        info, device = distributed.setup(device)
        distributed.check_config(cfg, info.world_size)
    try:
        if req.resume and writer:
            remove_stale_tmp(run_dir)
        exp = Experiment(cfg, device)
        if info is not None:
            exp.world_size = info.world_size
        if state is not None:
            exp.load_state_dict(state)
            if exp.position["iteration"] >= exp.total_iterations:
                raise ConfigError(
                    f"{run_dir} already finished {exp.position['iteration']} iterations: ask for more "
                    f"with --epochs or --iterations"
                )
        if info is not None:
            distributed.wrap(exp, info)
        if writer:
            write_config(run_dir, cfg)
            procs = f"{info.world_size} processes, " if info is not None else ""
            print(
                f"run: {run_dir}  {procs}device: {device}  iterations: {exp.position['iteration']} -> "
                f"{exp.total_iterations} ({exp.iterations_per_epoch} per epoch)  compiled: {_compiled_parts(exp)}"
                + (f"  data: {cfg['meta']['data']}" if cfg["meta"].get("data") else ""),
                file=sys.stderr,
            )
        progress = req.progress and writer
        row = (
            distributed.train_distributed(exp, run_dir, progress)
            if info is not None
            else train(exp, run_dir, progress=progress)
        )
    finally:
        if info is not None:
            distributed.teardown()
    if writer:
        write_status(run_dir, exp, row)
        print(json.dumps({k: v for k, v in row.items() if k != "samples"}))
    return exit_status(row)


def exit_status(row: dict) -> int:
    """0 for a run that ended, 130 / 143 for one a SIGINT / SIGTERM stopped (after saving)."""
    return EXIT_CODES.get(row.get("interrupted"), 0)


def write_config(run_dir: Path, cfg: dict) -> None:
    """``run_dir/config.json``, atomically: a kill leaves the old file or the new one."""
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / "config.json.tmp"
    tmp.write_text(json.dumps(cfg, indent=2) + "\n")
    tmp.replace(run_dir / "config.json")


def write_status(run_dir: Path, exp, row: dict) -> dict:
    """``run_dir/status.json``: how far the run got, whether it finished, and the signal that stopped it
    (read by ``ganworks reproduce`` and by the ``--nproc`` launcher); returns what it wrote."""
    it = exp.position["iteration"]
    status = {
        "iteration": it,
        "total_iterations": exp.total_iterations,
        "finished": it >= exp.total_iterations,
        "epoch": it / exp.iterations_per_epoch,
        "interrupted": bool(row.get("interrupted")),
        "signal": row.get("interrupted"),
    }
    (run_dir / "status.json").write_text(json.dumps(status) + "\n")
    return status


def _compiled_parts(exp) -> str:
    """What train.compile compiled: the phases and/or the optimizers' update, or nothing."""
    parts = (["step"] if exp.phase_loss.is_compiled else []) + (
        ["optimizer update"] if any(getattr(o, "is_compiled", False) for o in exp.optimizers.values()) else []
    )
    return " + ".join(parts) or "nothing"
