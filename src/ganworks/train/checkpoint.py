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

from ..errors import CheckpointError
from ..checkpoints import (FORMAT, load_checkpoint, load_discriminators, load_generator,  # noqa: F401
                           nonfinite, resolve_checkpoint)


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
        why = e.strerror if isinstance(e, OSError) and e.strerror else "the write failed: disk full or a file size limit?"
        last = path.parent / "last.pt"
        kept = (f"the last good checkpoint {last} is intact" if last.is_file()
                else "no checkpoint of this run was written before")
        raise CheckpointError(f"cannot write checkpoint {path} ({why}); {kept}: free space or pick a writable "
                              f"--out, then --resume") from None




def remove_stale_tmp(run_dir: Path) -> list[Path]:
    """Delete ``checkpoints/*.tmp`` left by a save that was killed; returns what was removed."""
    removed = []
    for tmp in sorted((Path(run_dir) / "checkpoints").glob("*.tmp")):
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed
