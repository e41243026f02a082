"""``ganworks train --nproc N``: re-run the same command under ``torchrun`` with N processes; a
SIGINT/SIGTERM to this launcher reaches the ranks once, and it exits 130/143 when they stopped on it."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

from ..errors import ConfigError


def torchrun_command(args, run_dir: Path) -> list[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={args.nproc}",
           "-m", "ganworks", "train"]
    if args.resume:
        cmd += ["--resume", str(args.resume)]
    else:
        cmd += [args.preset, "--out", str(run_dir)]
        for item in args.set:
            cmd += ["--set", item]
        if args.seed is not None:
            cmd += ["--seed", str(args.seed)]
    if args.epochs is not None:
        cmd += ["--epochs", str(args.epochs)]
    if args.iterations is not None:
        cmd += ["--iterations", str(args.iterations)]
    if args.no_progress:
        cmd.append("--no-progress")
    if args.device:
        cmd += ["--device", args.device]
    if args.data_root:
        cmd += ["--data-root", str(args.data_root)]
    return cmd


def launch_torchrun(args) -> int:
    """Launch torchrun with the run directory fixed here (so every rank agrees on it)."""
    if args.nproc < 1:
        raise ConfigError(f"--nproc must be at least 1, got {args.nproc}")
    if not args.resume and not args.preset:
        raise ConfigError("name a preset (see `ganworks presets`) or --resume RUN_DIR")
    if args.resume:
        run_dir = Path(args.resume)
    elif args.out:
        run_dir = Path(args.out)
    else:
        from ..config import resolve

        seed = args.seed if args.seed is not None else resolve(args.preset, args.set)["train"]["seed"]
        run_dir = Path("runs") / (f"{re.sub('[^A-Za-z0-9._-]+', '-', args.preset)}-seed{seed}-"
                                  f"{time.strftime('%Y%m%d-%H%M%S')}")
    return _run_and_forward_signals(torchrun_command(args, run_dir), run_dir)


def _run_and_forward_signals(cmd: list[str], run_dir: Path) -> int:
    """Run torchrun in its own session and hand it each SIGINT/SIGTERM this process gets (a Ctrl-C
    reaches the ranks once, through torchrun, instead of twice); exit with the run's status: 130/143
    when the ranks stopped on a signal (their status.json says so), else torchrun's."""
    import json
    import signal

    from .loop import EXIT_CODES

    status = Path(run_dir) / "status.json"
    before = status.stat().st_mtime_ns if status.exists() else None
    proc = subprocess.Popen(cmd, start_new_session=True)

    def forward(signum, frame):
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
    return code
