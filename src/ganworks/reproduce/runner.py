"""Run a table's (row, seed) runs: skip finished ones, resume interrupted ones, start missing ones.

Each run is a ``ganworks train`` subprocess on its own run directory (``--resume`` when the
directory holds a checkpoint). While it is active the run directory's ``.ganworks.lock`` is
locked (``ganworks.train.runlock``, the one lock every writer of a run folder takes) by the process
that launched it and by the ``ganworks train`` child, which inherits the lock: the lock lives
exactly as long as one of them does, survives a kill -9 of the launcher (the child finishes the
run) and vanishes with the child. A run directory that
is locked, or named on the command line of another running ``ganworks train`` (a run started by
hand), is reported as running elsewhere and left alone.

``status.json`` in the run directory (written by ``ganworks train`` when it returns) says how far
the run got; a run is finished when it reached its total iterations under the same caps.

Launchers: ``local`` (``--jobs`` subprocesses at a time, ``--threads`` each) or ``slurm`` (one
submitit job per run; ``submitit-local`` is submitit's local executor, for tests and laptops).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..train import runlock
from .tables import RunSpec

STATUS = "status.json"
LOG = "reproduce.log"


@dataclass
class Caps:
    """Limits of one `reproduce` invocation, written into the report."""

    epochs: float | None = None
    iterations: int | None = None
    max_minutes: float | None = None

    def record(self) -> dict:
        return {"epochs": self.epochs, "iterations": self.iterations, "max_minutes": self.max_minutes}

    def target(self) -> dict:
        """What 'finished' is measured against: the length caps (time caps only stop early)."""
        return {"epochs": self.epochs, "iterations": self.iterations}


def read_status(run_dir: Path) -> dict | None:
    try:
        return json.loads((Path(run_dir) / STATUS).read_text())
    except (OSError, ValueError):
        return None


def read_metrics(run_dir: Path) -> list[dict]:
    """The run's evaluation rows in iteration order, one per iteration (the last written wins)."""
    rows: dict[int, dict] = {}
    try:
        lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line cut by a kill
        rows[row.get("iteration", 0)] = row
    return [rows[k] for k in sorted(rows)]


def _lock_held(run_dir: Path) -> bool:
    return runlock.is_locked(run_dir)


def foreign_train_process(run_dir: Path) -> int | None:
    """The pid of another running ``ganworks train`` whose arguments name ``run_dir`` (Linux /proc)."""
    proc, target = Path("/proc"), Path(run_dir).resolve()
    if not proc.is_dir():
        return None
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            args = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if "train" not in args or not any("ganworks" in a for a in args[:3]):
            continue
        for a in args:
            if a and ("/" in a or a.startswith("seed")):
                p = Path(a).expanduser()
                if (p if p.is_absolute() else cwd / p).resolve() == target:
                    return int(entry.name)
    return None


def run_state(spec: RunSpec, caps: Caps) -> str:
    """``finished``, ``running`` (elsewhere), ``partial`` (resume it) or ``new``."""
    d = spec.run_dir
    if _lock_held(d) or foreign_train_process(d):
        return "running"
    status = read_status(d)
    if status and status.get("finished") and status.get("caps", Caps().target()) == caps.target():
        return "finished"
    if (d / "checkpoints" / "last.pt").is_file():
        return "partial"
    return "new"


def train_command(
    spec: RunSpec, state: str, caps: Caps, threads: int, device: str | None = None, data_root: str | None = None
) -> list[str]:
    cmd = [sys.executable, "-m", "ganworks.cli", "train"]
    if state == "partial":
        cmd += ["--resume", str(spec.run_dir)]
    else:
        cmd += [spec.row.preset, "--out", str(spec.run_dir)]
        for o in spec.overrides:
            cmd += ["--set", o]
    if caps.epochs is not None:
        cmd += ["--epochs", str(caps.epochs)]
    if caps.iterations is not None:
        cmd += ["--iterations", str(caps.iterations)]
    if state == "partial" and caps.epochs is None and caps.iterations is None:
        # the checkpoint's config holds the length of its last invocation (maybe a cap): the row's own
        from ..config import resolve

        t = resolve(spec.row.preset, spec.overrides)["train"]
        cmd += ["--iterations", str(t["iterations"])] if t["iterations"] else ["--epochs", str(t["epochs"])]
    if caps.max_minutes is not None:
        cmd += ["--max-minutes", str(caps.max_minutes)]
    cmd += ["--no-progress", "--threads", str(threads)]
    if device:
        cmd += ["--device", device]
    if data_root:
        cmd += ["--data-root", data_root]
    return cmd


def _child_env(threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    src = str(Path(__file__).resolve().parents[2])  # the ganworks this process runs
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


class Launch:
    """A started ``ganworks train`` holding the run's lock; ``poll()`` → None while it runs."""

    def __init__(self, spec: RunSpec, cmd: list[str], caps: Caps, threads: int) -> None:
        self.spec, self.cmd, self.caps = spec, cmd, caps
        d = spec.run_dir
        d.mkdir(parents=True, exist_ok=True)
        try:
            self._lock = runlock.acquire(d)
        except runlock.RunFolderBusy:
            raise RuntimeError(f"{d} is locked by another process") from None
        if not (d / "checkpoints").exists():  # a fresh start: rows of a run that never saved go aside
            for name in ("metrics.jsonl", STATUS):
                if (d / name).exists():
                    os.replace(d / name, d / f"{name}.stale-{int(time.time())}")
        self._log = open(d / LOG, "a")
        self._log.write(f"\n# {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n")
        self._log.flush()
        env = dict(_child_env(threads), **{runlock.INHERITED_FD: str(self._lock.fileno())})
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, pass_fds=(self._lock.fileno(),)
        )
        self.started = time.time()

    def poll(self) -> dict | None:
        rc = self.proc.poll()
        if rc is None:
            return None
        self._log.close()
        result = finish(self.spec.run_dir, rc, self.caps)
        self._lock.release()  # the child is gone: the lock is free
        return result


def finish(run_dir: Path, returncode: int, caps: Caps) -> dict:
    """Record a finished child in ``status.json`` (with the caps it ran under); returns it."""
    run_dir = Path(run_dir)
    status = read_status(run_dir) or {}
    if returncode == 2 and "already finished" in _tail(run_dir / LOG):
        status.update(finished=True)  # a resumed run that had already reached its end
    status.update(
        returncode=returncode, caps=caps.target(), caps_record=caps.record(), ended=time.strftime("%Y-%m-%dT%H:%M:%S")
    )
    if returncode != 0 and not status.get("finished"):
        status["finished"] = False
        status["error"] = _tail(run_dir / LOG).strip().splitlines()[-1:] or [""]
        status["error"] = status["error"][0]
    (run_dir / STATUS).write_text(json.dumps(status, indent=2) + "\n")
    return status


def _tail(path: Path, n: int = 4000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - n))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def execute(spec: RunSpec, caps: Caps, threads: int, device=None, data_root=None) -> dict:
    """Run one spec to its end in this process's child (used by submitit jobs): the result status."""
    state = run_state(spec, caps)
    if state in ("finished", "running"):
        return {"state": state}
    launch = Launch(spec, train_command(spec, state, caps, threads, device, data_root), caps, threads)
    launch.proc.wait()
    return launch.poll()


def _sort_out(specs: list[RunSpec], caps: Caps) -> tuple[dict[str, str], list[tuple[RunSpec, str]]]:
    """Outcomes of the runs to skip (finished, or running elsewhere) and ``(spec, state)`` of the rest."""
    outcome: dict[str, str] = {}
    todo = []
    for s in specs:
        state = run_state(s, caps)
        if state in ("finished", "running"):
            outcome[s.key] = "finished (skipped)" if state == "finished" else "running elsewhere (skipped)"
        else:
            todo.append((s, state))
    return outcome, todo


def describe_result(result: dict) -> str:
    """A run's outcome in words: finished, stopped at a cap, interrupted by a signal (saved: a rerun
    resumes it) or failed."""
    code = result.get("returncode")
    if code == 0 or result.get("finished"):
        return "finished" if result.get("finished") else "stopped (time cap)"
    if code in (130, 143):  # `ganworks train` saved on SIGINT/SIGTERM; its last line is the JSON row
        try:
            row = json.loads(result.get("error") or "{}")
        except ValueError:
            row = {}
        signal = row.get("interrupted") or {130: "SIGINT", 143: "SIGTERM"}[code]
        where = f" at iteration {row['iteration']}" if "iteration" in row else ""
        return f"interrupted ({signal}; saved{where}: rerun to resume)"
    return f"failed (exit {code}): {result.get('error', '')}"


def run_local(
    specs: list[RunSpec],
    caps: Caps,
    jobs: int,
    threads: int,
    device=None,
    data_root=None,
    progress: bool = True,
    on_done=None,
) -> dict[str, str]:
    """Run ``specs`` ``jobs`` at a time; returns each run's outcome by ``spec.key``. ``on_done(spec)``
    is called as each run ends (e.g. to copy its result somewhere that outlives the run folder)."""
    from tqdm import tqdm

    outcome, todo = _sort_out(specs, caps)
    bar = tqdm(
        total=len(specs),
        initial=len(outcome),
        desc=specs[0].table.id if specs else "reproduce",
        unit="run",
        disable=not progress,
        dynamic_ncols=True,
    )
    active: list[Launch] = []
    failed = 0
    try:
        while todo or active:
            while todo and len(active) < jobs:
                s, state = todo.pop(0)
                try:
                    active.append(Launch(s, train_command(s, state, caps, threads, device, data_root), caps, threads))
                except RuntimeError:
                    outcome[s.key] = "running elsewhere (skipped)"
                    bar.update(1)
            for launch in list(active):
                result = launch.poll()
                if result is None:
                    continue
                active.remove(launch)
                key = launch.spec.key
                outcome[key] = describe_result(result)
                failed += outcome[key].startswith("failed")
                if on_done is not None:
                    on_done(launch.spec)
                bar.update(1)
            bar.set_postfix(running=len(active), failed=failed, refresh=False)
            bar.refresh()
            if active:
                time.sleep(0.5)
    except KeyboardInterrupt:
        for launch in active:  # ganworks train saves a checkpoint on SIGINT
            if launch.proc.poll() is None:
                launch.proc.send_signal(2)
        for launch in active:
            launch.proc.wait()
            launch.poll()
        raise
    finally:
        bar.close()
    return outcome


def run_submitit(
    specs: list[RunSpec],
    caps: Caps,
    jobs: int,
    threads: int,
    folder: Path,
    cluster: str = "slurm",
    slurm: dict | None = None,
    device=None,
    data_root=None,
    progress: bool = True,
) -> dict[str, str]:
    """One submitit job per run that is not finished; waits for them with one progress bar."""
    from ..extras import require

    require("slurm")
    import submitit
    from tqdm import tqdm

    outcome, todo = _sort_out(specs, caps)
    todo = [s for s, _ in todo]
    executor = submitit.AutoExecutor(folder=str(folder), cluster=None if cluster == "slurm" else cluster)
    params = {"cpus_per_task": threads, "tasks_per_node": 1, "nodes": 1, "timeout_min": 60 * 24}
    if caps.max_minutes:
        params["timeout_min"] = int(caps.max_minutes) + 30
    if cluster == "slurm":
        params["slurm_array_parallelism"] = jobs
    params.update(slurm or {})
    executor.update_parameters(**params)
    submitted = [(s, executor.submit(execute, s, caps, threads, device, data_root)) for s in todo]
    bar = tqdm(
        total=len(specs),
        initial=len(outcome),
        desc=specs[0].table.id if specs else "reproduce",
        unit="run",
        disable=not progress,
        dynamic_ncols=True,
    )
    try:
        pending = list(submitted)
        while pending:
            for s, job in list(pending):
                if not job.done():
                    continue
                pending.remove((s, job))
                try:
                    outcome[s.key] = describe_result(job.result())
                except Exception as e:  # noqa: BLE001 - a job that died: say so, keep waiting for the rest
                    outcome[s.key] = f"failed (job {job.job_id}): {type(e).__name__}"
                bar.update(1)
            bar.set_postfix(queued_or_running=len(pending), refresh=False)
            bar.refresh()
            if pending:
                time.sleep(1.0)
    finally:
        bar.close()
    return outcome
