"""Checkpoints, read and written: written atomically, read with errors that say what is wrong and what to do.

A checkpoint holds everything needed to continue a run exactly: the resolved config, G and D,
their optimizers and lr schedules, the averaged weights, every RNG state, and the position
(iteration, epoch, batch index). :func:`save_atomic` writes it to ``<file>.tmp`` and renames it over
the old file, so a crash mid-write never leaves a half-written ``last.pt``.

Reading is shared by training (``--resume``), ``ganworks eval`` / ``sample`` and ``ganworks.metrics``,
so this module lives below all of them. A checkpoint whose weights hold NaN or Inf is refused by the
loaders of G and D: a model that diverged is never scored or sampled silently.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import torch

from .errors import CheckpointError

FORMAT = "ganworks-checkpoint/1"


# ---- writing -------------------------------------------------------------------------------------


def save_atomic(obj: dict, path: Path) -> None:
    """Write ``obj`` to ``<path>.tmp`` and rename it over ``path``. A write the file system refuses
    (full disk, file size limit, read-only) removes the ``.tmp`` and raises ``CheckpointError`` naming
    the path and saying which checkpoint is intact."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:  # torch's zip writer reports a failed write as a RuntimeError
        tmp.unlink(missing_ok=True)
        why = (
            e.strerror if isinstance(e, OSError) and e.strerror else "the write failed: disk full or a file size limit?"
        )
        last = path.parent / "last.pt"
        kept = (
            f"the last good checkpoint {last} is intact"
            if last.is_file()
            else "no checkpoint of this run was written before"
        )
        raise CheckpointError(
            f"cannot write checkpoint {path} ({why}); {kept}: free space or pick a writable --out, then --resume"
        ) from None


def remove_stale_tmp(run_dir: Path) -> list[Path]:
    """Delete ``checkpoints/*.tmp`` left by a save that was killed; returns what was removed."""
    removed = []
    for tmp in sorted((Path(run_dir) / "checkpoints").glob("*.tmp")):
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


# ---- reading -------------------------------------------------------------------------------------


def _tensors(tree, prefix=""):
    if isinstance(tree, torch.Tensor):
        yield prefix, tree
    elif isinstance(tree, dict):
        for k, v in tree.items():
            yield from _tensors(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            yield from _tensors(v, f"{prefix}.{i}")


def nonfinite(tree) -> list[str]:
    """Names of the floating-point tensors in ``tree`` (nested dicts/lists) holding NaN or Inf.

    One device sync for the whole tree; the names are only worked out when something is wrong.
    """
    named = [(k, t) for k, t in _tensors(tree) if t.is_floating_point() and t.numel()]
    if not named:
        return []
    flags = [t.isfinite().all() for _, t in named]
    by_device: dict = {}
    for f in flags:
        by_device.setdefault(f.device, []).append(f)
    if all(bool(torch.stack(fs).all()) for fs in by_device.values()):
        return []
    return [k for (k, _), f in zip(named, flags) if not bool(f)]


def refuse_nonfinite(state: dict, path) -> None:
    """Raise ``CheckpointError`` if the models or averages of a loaded checkpoint are not finite."""
    bad = nonfinite({"models": state.get("models", {}), "ema": state.get("ema", {})})
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise CheckpointError(
            f"{path} holds non-finite weights ({', '.join(bad[:3])}{more}): the run diverged before this "
            f"checkpoint was written; use an earlier checkpoint or train again with a lower optim.lr"
        )


def resolve_checkpoint(path: str | os.PathLike, which: str = "last") -> Path:
    """A checkpoint file, or ``<run dir>/checkpoints/<which>.pt`` for a run directory."""
    p = Path(path).expanduser()
    if p.is_dir():
        candidate = p / "checkpoints" / f"{which}.pt"
        if not candidate.is_file():
            raise CheckpointError(
                f"{p} holds no checkpoints/{which}.pt: is it a ganworks run directory (made by `ganworks train`)?"
            )
        return candidate
    if not p.exists():
        raise CheckpointError(f"no such run directory or checkpoint: {p}")
    return p


def load_checkpoint(path: str | os.PathLike, which: str = "last") -> dict:
    p = resolve_checkpoint(path, which)
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except (
        RuntimeError,
        EOFError,
        pickle.UnpicklingError,
        zipfile.BadZipFile,
        ValueError,
        OSError,
        KeyError,
        IndexError,
        TypeError,
        AttributeError,
    ) as e:  # a file of garbage trips the unpickler anywhere
        other = p.with_name("best.pt" if p.name == "last.pt" else "last.pt")
        raise CheckpointError(
            f"checkpoint {p} is truncated or corrupt ({type(e).__name__}): use {other} if it exists "
            f"(ganworks train --resume {other}), or start the run again"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{p} is not a ganworks checkpoint (expected format {FORMAT!r})")
    from .config import with_defaults

    state["config"] = with_defaults(state["config"])  # keys added since the run was written
    return state


def load_generator(path: str | os.PathLike, device="cpu", averaged: bool = True):
    """G from a run directory or checkpoint, in eval mode: the averaged G if the run kept one.

    Returns ``(G, config)``; ``G(G.sample_z(n))`` gives images in ``config["data"]["scale"]``.
    """
    from .models import build_model

    state = load_checkpoint(path)
    refuse_nonfinite(state, path)
    cfg = state["config"]
    G = build_model(**cfg["model"]["generator"])
    G.load_state_dict(state["models"]["G"])
    if averaged and state.get("ema", {}).get("g"):
        G.load_state_dict(state["ema"]["g"]["model"])
    return G.to(device).eval(), cfg


def load_discriminators(path: str | os.PathLike, device="cpu"):
    """``(D, D_averaged_or_None, config)`` from a run directory or checkpoint, in eval mode."""
    from .models import build_model

    state = load_checkpoint(path)
    refuse_nonfinite(state, path)
    cfg = state["config"]
    D = build_model(**cfg["model"]["discriminator"])
    D.load_state_dict(state["models"]["D"])
    D_avg = None
    if state.get("ema", {}).get("d"):
        D_avg = build_model(**cfg["model"]["discriminator"])
        D_avg.load_state_dict(state["ema"]["d"]["model"])
        D_avg = D_avg.to(device).eval()
    return D.to(device).eval(), D_avg, cfg
