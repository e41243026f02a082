"""``ganworks train --nproc N``: re-run the same request under ``torchrun`` with N processes; a
SIGINT/SIGTERM to this launcher reaches the ranks once, and it exits with the ranks' status.

``train/run.py`` decides and checks the run folder, then calls :func:`launch_torchrun`; each rank
runs ``train/run.py`` again (``python -m ganworks train ...``), and rank 0 writes ``status.json``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .loop import EXIT_CODES

#: exit status of a run that failed (the ranks printed the one-line error; torchrun exits 1)
ERROR = 2


def torchrun_command(req, run_dir: Path) -> list[str]:
    """The torchrun command line whose every rank trains ``req`` (a ``RunRequest``) in ``run_dir``."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={req.nproc}",
        "-m",
        "ganworks",
        "train",
    ]
    if req.resume:
        cmd += ["--resume", str(req.resume)]
        if req.preset:
            cmd.append(req.preset)
    else:
        cmd += [req.preset, "--out", str(run_dir)]
        for item in req.overrides:
            cmd += ["--set", item]
        if req.seed is not None:
            cmd += ["--seed", str(req.seed)]
    for flag, value in (
        ("--epochs", req.epochs),
        ("--iterations", req.iterations),
        ("--compile", req.compile),
        ("--threads", req.threads),
        ("--device", req.device),
        ("--data-root", req.data_root),
    ):
        if value is not None:
            cmd += [flag, str(value)]
    if not req.progress:
        cmd.append("--no-progress")
    return cmd


def launch_torchrun(req, run_dir: Path) -> int:
    """Run ``req`` under torchrun with the run directory fixed here (so every rank agrees on it)."""
    return _run_and_forward_signals(torchrun_command(req, run_dir), run_dir)


def _run_and_forward_signals(cmd: list[str], run_dir: Path) -> int:
    """Run torchrun in its own session and hand it each SIGINT/SIGTERM this process gets (a Ctrl-C
    reaches the ranks once, through torchrun, instead of twice); exit with the run's status: 130/143
    when the ranks stopped on a signal (their status.json says so, or they failed after one reached
    this launcher), 0 when torchrun succeeded, else 2 (an error; the ranks printed it)."""
    import json
    import signal

    status = Path(run_dir) / "status.json"
    before = status.stat().st_mtime_ns if status.exists() else None
    proc = subprocess.Popen(cmd, start_new_session=True)
    forwarded: list[str] = []

    def forward(signum, frame):
        forwarded.append(signal.Signals(signum).name)
        proc.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if status.exists() and status.stat().st_mtime_ns != before:
        try:
            stopped_by = json.loads(status.read_text()).get("signal")
        except (OSError, ValueError):
            stopped_by = None
        if stopped_by in EXIT_CODES:
            return EXIT_CODES[stopped_by]
    if code == 0:
        return 0
    if forwarded:
        _status_from_last_checkpoint(Path(run_dir), forwarded[0])
        return EXIT_CODES[forwarded[0]]
    return ERROR


def _status_from_last_checkpoint(run_dir: Path, signal_name: str) -> None:
    """The ranks stopped on a forwarded signal without writing status.json (one left a collective
    when the other was already saving): write it here from the last checkpoint, which the ranks' save
    left intact, so that ``ganworks reproduce`` and the user read where the run stands."""
    import json

    from ..checkpoints import load_checkpoint
    from ..errors import GanworksError

    try:
        position = load_checkpoint(run_dir)["position"]
    except (GanworksError, OSError, KeyError):
        return  # no checkpoint yet: nothing to describe, a rerun starts over
    status = {
        "iteration": position.get("iteration"),
        "total_iterations": position.get("total_iterations"),
        "finished": False,
        "epoch": position.get("epoch"),
        "interrupted": True,
        "signal": signal_name,
        "written_by": "the --nproc launcher (the ranks stopped before writing it)",
    }
    (run_dir / "status.json").write_text(json.dumps(status) + "\n")
