"""Checkpoints: written atomically, read with errors that say what is wrong and what to do.

A checkpoint holds everything needed to continue a run exactly: the resolved config, G and D,
their optimizers and lr schedules, the averaged weights, every RNG state, and the position
(iteration, epoch, batch index). It is written to ``<file>.tmp`` and renamed over the old file, so
a crash mid-write never leaves a half-written ``last.pt``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..checkpoints import (FORMAT, load_checkpoint, load_discriminators, load_generator,  # noqa: F401
                           nonfinite, resolve_checkpoint)


def save_atomic(obj: dict, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)




def remove_stale_tmp(run_dir: Path) -> list[Path]:
    """Delete ``checkpoints/*.tmp`` left by a save that was killed; returns what was removed."""
    removed = []
    for tmp in sorted((Path(run_dir) / "checkpoints").glob("*.tmp")):
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed
