"""The shared harness of the reference-equivalence sections: seeding, the exchange of arrays with the
reference scripts, and the comparison (through ``compare.py``).

A section module computes ganworks' side in this process, hands weights, inputs and every random
draw to a ``ref_*.py`` script run under the reference environment's Python (``run_reference``),
reads the script's arrays back and turns each compared quantity into a ``compare.Check``
(``Section.check``). Nothing of the reference code is imported into this process.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections import defaultdict, deque
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
import compare as C  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


# ---- seeding ------------------------------------------------------------------------------------


def seed_all(seed: int) -> np.random.RandomState:
    """Seed Python, NumPy and torch; return a NumPy stream for the harness's own draws (weights of
    the reference u, real batches, z), which both sides then receive as arrays."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return np.random.RandomState(seed)


# ---- the exchange of arrays ---------------------------------------------------------------------


def as_numpy(t, dtype) -> np.ndarray:
    """A tensor or array as a NumPy array of ``dtype`` (the run's precision)."""
    if isinstance(t, torch.Tensor):
        t = t.detach().cpu().numpy()
    return np.asarray(t).astype(dtype)


#: the running section's precision: ``npy`` converts to it (a section sets it first)
DTYPE = np.float32
#: ganworks' side of the last runs, kept for ad hoc inspection (e.g. float32 vs float64)
LAST_OURS: dict = {}


def npy(t: torch.Tensor) -> np.ndarray:
    """A tensor as a NumPy array in the running section's precision ``DTYPE``."""
    return t.detach().cpu().numpy().astype(DTYPE)


def run_reference(python: str, script: str, args: list[str], inp: dict, env_extra: dict, tmp: Path, tag: str) -> dict:
    """Write ``inp`` to an .npz, run ``script`` (in this folder) under ``python`` on one thread, under
    ``nice``, with ``env_extra`` in its environment; return its output .npz as a dict."""
    fin, fout = tmp / f"{tag}-in.npz", tmp / f"{tag}-out.npz"
    np.savez(fin, **{k: np.asarray(v) for k, v in inp.items()})
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **env_extra}
    env.pop("PYTHONPATH", None)
    cmd = ["nice", "-n", "10", python, str(HERE / script), *args, str(fin), str(fout)]
    t0 = time.time()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    print(proc.stdout[-2000:], end="")
    if proc.returncode != 0:
        print(proc.stderr[-6000:], file=sys.stderr)
        raise SystemExit(f"reference script {script} failed (exit {proc.returncode})")
    print(f"[{tag}] reference side ran in {time.time() - t0:.0f}s")
    return dict(np.load(fout))


class Draws:
    """Every random draw of ganworks' side, recorded per source; optionally replayed from a queue
    (so that the harness, not ganworks, decides the values both sides receive)."""

    def __init__(self) -> None:
        self.record: dict[str, list[torch.Tensor]] = defaultdict(list)
        self.replay: dict[str, deque] = defaultdict(deque)

    def draw(self, key: str, fresh):
        q = self.replay[key]
        x = q.popleft() if q else fresh()
        self.record[key].append(x.detach().clone())
        return x


# ---- the comparison -----------------------------------------------------------------------------


class Section:
    """Collects one section's checks: ``section`` and a " [float64]" tag are set on each."""

    def __init__(self, name: str, dtype: str = "float32") -> None:
        self.wide = dtype == "float64"
        self.name = name + ("-float64" if self.wide else "")
        self.tag = " [float64]" if self.wide else ""
        self.checks: list[C.Check] = []

    def check(self, component: str, *args, **kw) -> C.Check:
        c = C.check(component + self.tag, *args, section=self.name, **kw)
        self.checks.append(c)
        return c
