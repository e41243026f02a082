"""What counts as a run folder, and whether a checkpoint belongs to the run it sits in.

A folder is a ganworks run only if its ``config.json`` is a ganworks run config: a table with
every section of ``config.DEFAULTS`` and ``meta.preset`` naming a preset. Anything else (a user's
own ``config.json``, another program's) is never taken for "a run stopped before its first
checkpoint", so it is never replaced. Restarting such a run in place needs the same preset.

A checkpoint found in a run folder must hold the run's config (``config.json``), up to the keys a
resume may change (``RESUMABLE``): a checkpoint of another run copied into ``checkpoints/`` is
refused before anything is written, and so is one whose weights are not finite.

A new run without ``--out`` goes into ``runs/<preset>-seed<seed>-<time>`` (:func:`default_run_dir`).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from ..checkpoints import load_checkpoint, nonfinite
from ..config import DEFAULTS, with_defaults
from ..errors import CheckpointError, ConfigError, GanworksError

#: config keys ``ganworks train --resume`` may change (the length, time budget, compile mode, data root)
RESUMABLE = {"train.iterations", "train.epochs", "train.max_minutes", "train.compile", "train.device", "data.root"}
#: files ``ganworks reproduce`` and the run lock put into a run folder before the run starts
BEFORE_START = {".ganworks.lock", "reproduce.log"}


def default_run_dir(preset: str, seed: int) -> Path:
    """Where a new run of ``preset`` goes without ``--out``: ``runs/<preset>-seed<seed>-<YYYYmmdd-HHMMSS>``."""
    return Path("runs") / f"{re.sub('[^A-Za-z0-9._-]+', '-', preset)}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}"


def is_run_config(cfg) -> bool:
    """A ganworks run's ``config.json``: every section of the defaults, each a table, and a preset name."""
    return (
        isinstance(cfg, dict)
        and all(isinstance(cfg.get(k), dict) for k in DEFAULTS)
        and isinstance(cfg["meta"].get("preset"), str)
        and bool(cfg["meta"]["preset"])
    )


def read_run_config(run_dir: Path) -> dict | None:
    """The run config in ``run_dir/config.json`` (defaults filled in), None if there is no such file;
    ``CheckpointError`` if the file is there but is not a ganworks run config."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        return None
    try:
        cfg = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(
            f"{path} is unreadable ({type(e).__name__}): start the run again with its preset and a new --out"
        ) from None
    if not is_run_config(cfg):
        raise CheckpointError(
            f"{path} is not a ganworks run config (it lacks the sections "
            f"{', '.join(DEFAULTS)} and meta.preset): {run_dir} is not a run; pick a new or "
            f"empty --out, and it is left as it is"
        )
    return with_defaults(cfg)


def check_out_dir(run_dir: Path, preset: str) -> None:
    """A new run may go into a missing or empty folder, or restart a run of the same preset that has
    no checkpoint yet; anything else is refused before a file is written."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--out {run_dir} is a file: pick a folder")
    if (run_dir / "checkpoints" / "last.pt").is_file():
        raise ConfigError(f"{run_dir} already holds a run: continue it with --resume {run_dir}, or pick another --out")
    others = [p for p in run_dir.iterdir() if p.name not in BEFORE_START] if run_dir.is_dir() else []
    if not others:
        return
    if not (run_dir / "config.json").is_file():
        raise ConfigError(f"--out {run_dir} holds other files and is not a run: pick a new or empty folder")
    try:
        cfg = read_run_config(run_dir)
    except CheckpointError:
        raise ConfigError(
            f"--out {run_dir} holds a config.json that is not a ganworks run config: pick a new or "
            f"empty folder (the folder is left as it is)"
        ) from None
    if cfg["meta"]["preset"] != preset:
        raise ConfigError(
            f"--out {run_dir} holds a run of {cfg['meta']['preset']!r} (stopped before its first "
            f"checkpoint), not of {preset!r}: pick another --out, or restart it with "
            f"--resume {run_dir}"
        )


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "."))
        else:
            out[key] = v
    return out


def config_differences(a: dict, b: dict, ignore=RESUMABLE) -> list[str]:
    """Keys (dotted) whose values differ between two configs, apart from ``ignore``."""
    fa, fb = _flat(a), _flat(b)
    return sorted(k for k in set(fa) | set(fb) if k not in ignore and fa.get(k, "<absent>") != fb.get(k, "<absent>"))


def check_checkpoint_belongs(run_dir: Path, ckpt: Path, state: dict) -> None:
    """Refuse a checkpoint whose config is not the run's (``config.json``), up to ``RESUMABLE`` keys."""
    cfg = read_run_config(run_dir)
    if cfg is None:
        return  # config.json lost: the checkpoint's own config is all there is
    diff = config_differences(cfg, state["config"])
    if diff:
        more = f" and {len(diff) - 4} more" if len(diff) > 4 else ""
        theirs = state["config"].get("meta", {}).get("preset")
        raise CheckpointError(
            f"{ckpt} does not belong to the run in {run_dir}: it is a checkpoint of {theirs!r} whose config "
            f"differs from {run_dir / 'config.json'} in {', '.join(diff[:4])}{more}; put the run's own checkpoint "
            f"back (nothing was written), or resume the folder the checkpoint came from"
        )


def refuse_nonfinite_resume(run_dir: Path, ckpt: Path, state: dict) -> None:
    """A checkpoint with NaN/Inf weights is no place to resume from: name the newest finite one, or say there is none."""
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
    raise CheckpointError(
        f"{ckpt} holds non-finite weights (NaN/Inf; the run diverged before it was saved), so "
        f"it cannot be resumed; {hint}"
    )
