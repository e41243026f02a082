"""Checkpoints: written atomically, read with errors that say what is wrong and what to do.

A checkpoint holds everything needed to continue a run exactly: the resolved config, G and D,
their optimizers and lr schedules, the averaged weights, every RNG state, and the position
(iteration, epoch, batch index). It is written to ``<file>.tmp`` and renamed over the old file, so
a crash mid-write never leaves a half-written ``last.pt``.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import torch

from ..errors import CheckpointError

FORMAT = "ganworks-checkpoint/1"


def save_atomic(obj: dict, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def resolve_checkpoint(path: str | os.PathLike, which: str = "last") -> Path:
    """A checkpoint file, or ``<run dir>/checkpoints/<which>.pt`` for a run directory."""
    p = Path(path).expanduser()
    if p.is_dir():
        candidate = p / "checkpoints" / f"{which}.pt"
        if not candidate.is_file():
            raise CheckpointError(f"{p} holds no checkpoints/{which}.pt: is it a ganworks run directory (made by `ganworks train`)?")
        return candidate
    if not p.exists():
        raise CheckpointError(f"no such run directory or checkpoint: {p}")
    return p


def load_checkpoint(path: str | os.PathLike, which: str = "last") -> dict:
    p = resolve_checkpoint(path, which)
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, OSError) as e:
        other = "best.pt" if p.name == "last.pt" else "last.pt"
        raise CheckpointError(
            f"checkpoint {p} is truncated or corrupt ({type(e).__name__}): resume from the run's "
            f"{other} if it exists, or start the run again"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{p} is not a ganworks checkpoint (expected format {FORMAT!r})")
    return state


def load_generator(path: str | os.PathLike, device="cpu", averaged: bool = True):
    """G from a run directory or checkpoint, in eval mode: the averaged G if the run kept one.

    Returns ``(G, config)``; ``G(G.sample_z(n))`` gives images in ``config["data"]["scale"]``.
    """
    from ..models import build_model

    state = load_checkpoint(path)
    cfg = state["config"]
    G = build_model(**cfg["model"]["generator"])
    G.load_state_dict(state["models"]["G"])
    if averaged and state.get("ema", {}).get("g"):
        G.load_state_dict(state["ema"]["g"]["model"])
    return G.to(device).eval(), cfg


def load_discriminators(path: str | os.PathLike, device="cpu"):
    """``(D, D_averaged_or_None, config)`` from a run directory or checkpoint, in eval mode."""
    from ..models import build_model

    state = load_checkpoint(path)
    cfg = state["config"]
    D = build_model(**cfg["model"]["discriminator"])
    D.load_state_dict(state["models"]["D"])
    D_avg = None
    if state.get("ema", {}).get("d"):
        D_avg = build_model(**cfg["model"]["discriminator"])
        D_avg.load_state_dict(state["ema"]["d"]["model"])
        D_avg = D_avg.to(device).eval()
    return D.to(device).eval(), D_avg, cfg
