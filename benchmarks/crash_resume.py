"""kill -9 a small training run at random points, resume it, and compare with an uninterrupted run.

Each trial forks a child that runs ``ganworks train`` (the CLI's ``main``) on the tiny digits
configuration of tests/conftest.py and kills it with SIGKILL at one of these points:

* ``time``: a uniform random delay in [0, 0.9 × the uninterrupted run's duration] after the fork (may land
  before the run directory exists, in data loading, in an iteration, in an evaluation or a save);
* ``iteration``: at the start of a random iteration (mid loss window);
* ``in_save``: inside a random save, after a random fraction of the checkpoint's bytes reached
  ``<file>.tmp`` and before the rename;
* ``row_then_save``: after an evaluation row was written to metrics.jsonl and before its save.

Then it does what a user would: nothing if ``last.pt`` (the last file a save writes) is at the
final iteration, else ``ganworks train --resume DIR`` if DIR holds a config.json, else the original
command again, to completion. A trial is *bit-exact* when every tensor of the final
``last.pt`` (G, D, both optimizers, the averages) equals the uninterrupted run's, and *row-exact*
when the metrics.jsonl rows are equal (all keys but the timing ones ``wall_time_s`` and
``images_per_s``). Children are forked from one process that imported torch once, so a trial costs
a few seconds of CPU.

    PYTHONPATH=src python benchmarks/crash_resume.py --trials 32

writes ``benchmarks/results/crash_resume_cpu.{json,md}``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from common import device_name, write  # noqa: E402

TINY_DIGITS = [
    "data.name=digits",
    "data.labels=20",
    "data.batch_size=50",
    "data.test_limit=200",
    "model.init_examples=100",
    "model.generator.image_size=8",
    "model.generator.width=0.05",
    "model.discriminator.image_size=8",
    "model.discriminator.width=0.05",
    "eval.grid=16",
]
SETTINGS = TINY_DIGITS + ["eval.every=5", "train.log_every=3"]
ITERATIONS = 40
TIMING = ("wall_time_s", "images_per_s")
KINDS = ("time", "iteration", "in_save", "row_then_save")


def command(out: Path) -> list[str]:
    return [
        "train",
        "improved-gan/mnist-100",
        *[a for s in SETTINGS for a in ("--set", s)],
        "--iterations",
        str(ITERATIONS),
        "--out",
        str(out),
        "--no-progress",
        "--device",
        "cpu",
    ]


def _child(args: list[str], hook: dict | None) -> None:
    """In the forked child: install the kill hook, run the CLI, exit with its status."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    try:
        from ganworks.cli import main
        from ganworks.train import loop

        die = lambda: os.kill(os.getpid(), signal.SIGKILL)  # noqa: E731
        if hook and hook["kind"] == "iteration":
            real_iteration = loop.train_iteration

            def iteration(exp):
                if exp.position["iteration"] == hook["at"]:
                    die()
                return real_iteration(exp)

            loop.train_iteration = iteration
        elif hook and hook["kind"] == "in_save":
            real_save_atomic, calls = loop.save_atomic, {"n": 0}

            def save_atomic(obj, path):
                calls["n"] += 1
                if calls["n"] == hook["at"]:
                    buf = io.BytesIO()
                    torch.save(obj, buf)
                    data = buf.getvalue()
                    tmp = Path(path).with_name(Path(path).name + ".tmp")
                    tmp.parent.mkdir(parents=True, exist_ok=True)
                    with open(tmp, "wb") as f:
                        f.write(data[: int(len(data) * hook["fraction"])])
                        f.flush()
                        os.fsync(f.fileno())
                    die()
                real_save_atomic(obj, path)

            loop.save_atomic = save_atomic
        elif hook and hook["kind"] == "row_then_save":
            real_save, calls = loop._save, {"n": 0}

            def _save(exp, run_dir, row, running=None):
                calls["n"] += 1
                if calls["n"] == hook["at"]:
                    die()
                real_save(exp, run_dir, row, running)

            loop._save = _save
        code = main(args)
    except BaseException:  # noqa: BLE001
        code = 99
    os._exit(code)


def run_child(args: list[str], hook: dict | None = None, kill_after: float | None = None) -> tuple[int, float]:
    """Fork, run; returns (exit status or -signal, seconds). ``kill_after``: SIGKILL after that many s."""
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        _child(args, hook)
    if kill_after is not None:
        deadline = t0 + kill_after
        while time.perf_counter() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status), time.perf_counter() - t0
            time.sleep(0.005)
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), time.perf_counter() - t0


def snapshot(run: Path) -> dict:
    """What the kill left behind."""
    ckpt = run / "checkpoints" / "last.pt"
    out = {
        "dir": run.is_dir(),
        "config": (run / "config.json").is_file(),
        "checkpoint_iteration": None,
        "tmp_files": sorted(p.name for p in (run / "checkpoints").glob("*.tmp")) if run.is_dir() else [],
        "rows": len((run / "metrics.jsonl").read_text().splitlines()) if (run / "metrics.jsonl").exists() else 0,
    }
    if ckpt.is_file():
        out["checkpoint_iteration"] = torch.load(ckpt, map_location="cpu", weights_only=True)["position"]["iteration"]
    return out


def rows(run: Path) -> list[dict]:
    return [
        {k: v for k, v in json.loads(line).items() if k not in TIMING}
        for line in (run / "metrics.jsonl").read_text().splitlines()
    ]


def tensors(tree, prefix=""):
    if isinstance(tree, torch.Tensor):
        yield prefix, tree
    elif isinstance(tree, dict):
        for k, v in tree.items():
            yield from tensors(v, f"{prefix}.{k}")
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            yield from tensors(v, f"{prefix}.{i}")


def bit_exact(a: Path, b: Path) -> tuple[bool, list[str]]:
    sa = torch.load(a / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    sb = torch.load(b / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    keys = ("models", "optimizers", "ema")
    ta = dict(tensors({k: sa[k] for k in keys}))
    tb = dict(tensors({k: sb[k] for k in keys}))
    diff = sorted(k for k in ta.keys() | tb.keys() if k not in ta or k not in tb or not torch.equal(ta[k], tb[k]))
    return not diff and sa["position"] == sb["position"], diff[:5]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default="crash_resume_cpu")
    args = ap.parse_args()
    torch.set_num_threads(1)
    import sklearn.datasets  # noqa: F401  (imported once, before the forks)

    import ganworks.cli  # noqa: F401
    import ganworks.train  # noqa: F401

    rng = random.Random(args.seed)
    load_before = os.getloadavg()
    t_start = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="crash_resume_"))
    try:
        ref = work / "reference"
        code, ref_seconds = run_child(command(ref))
        if code != 0:
            raise SystemExit(f"the uninterrupted run failed (exit {code})")
        saves = 2 * (ITERATIONS // 5)  # best.pt then last.pt at every evaluation (no eval.best)
        evaluations = ITERATIONS // 5
        trials = []
        for i in range(args.trials):
            kind = KINDS[i % len(KINDS)]
            run = work / f"trial{i:02d}"
            hook, kill_after = None, None
            if kind == "time":
                kill_after = rng.uniform(0.0, 0.9 * ref_seconds)
                point = {"after_s": round(kill_after, 3)}
            elif kind == "iteration":
                hook = {"kind": kind, "at": rng.randrange(1, ITERATIONS)}
                point = {"iteration": hook["at"]}
            elif kind == "in_save":
                hook = {"kind": kind, "at": rng.randrange(1, saves + 1), "fraction": round(rng.random(), 3)}
                point = {
                    "save": hook["at"],
                    "file": "best.pt" if hook["at"] % 2 else "last.pt",
                    "bytes_written": hook["fraction"],
                }
            else:
                hook = {"kind": kind, "at": rng.randrange(1, evaluations + 1)}
                point = {"evaluation": hook["at"]}
            killed_code, _ = run_child(command(run), hook, kill_after)
            left = snapshot(run)
            if killed_code == 0:  # finished before the kill landed: nothing to resume
                how, resume_args = "nothing (finished)", None
            elif left["checkpoint_iteration"] == ITERATIONS:  # last.pt (written last) is final: complete
                how, resume_args = "nothing (last.pt final)", None
            elif left["config"]:
                how, resume_args = "--resume", ["train", "--resume", str(run), "--no-progress", "--device", "cpu"]
            else:
                how, resume_args = "original command", command(run)
            resume_code = run_child(resume_args)[0] if resume_args else 0
            trial = {
                "trial": i,
                "kind": kind,
                "point": point,
                "killed": killed_code == -signal.SIGKILL,
                "left": left,
                "resumed_with": how,
                "resume_exit": resume_code,
            }
            if resume_code == 0:
                exact, diff = bit_exact(ref, run)
                trial.update(
                    bit_exact=exact,
                    rows_exact=rows(run) == rows(ref),
                    tmp_left=sorted(p.name for p in (run / "checkpoints").glob("*.tmp")),
                )
                if diff:
                    trial["differs"] = diff
            else:
                trial.update(bit_exact=False, rows_exact=False)
            trials.append(trial)
            print(json.dumps(trial), flush=True)
            shutil.rmtree(run, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    wall = time.perf_counter() - t_start
    killed = [t for t in trials if t["killed"]]
    summary = {
        "trials": len(trials),
        "killed": len(killed),
        "finished_before_the_kill": len(trials) - len(killed),
        "killed_then_resumed_ok": sum(t["resume_exit"] == 0 for t in killed),
        "killed_bit_exact": sum(t["bit_exact"] for t in killed),
        "killed_rows_exact": sum(t["rows_exact"] for t in killed),
        "bit_exact": sum(t["bit_exact"] for t in trials),
        "rows_exact": sum(t["rows_exact"] for t in trials),
        "killed_inside_a_save": sum(bool(t["left"]["tmp_files"]) for t in killed),
        "killed_before_first_checkpoint": sum(t["left"]["checkpoint_iteration"] is None for t in killed),
        "tmp_left_after_resume": sum(bool(t.get("tmp_left")) for t in trials),
    }
    result = {
        "benchmark": "crash_resume",
        "device": device_name(torch.device("cpu")),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "note": "machine shared with other jobs (2 cores); seconds are wall clock under that load",
        "settings": {
            "preset": "improved-gan/mnist-100",
            "overrides": SETTINGS,
            "iterations": ITERATIONS,
            "seed": args.seed,
            "uninterrupted_run_s": round(ref_seconds, 2),
            "row_comparison_ignores": list(TIMING),
        },
        "summary": summary,
        "wall_s": round(wall, 1),
        "trials": trials,
    }
    lines = [
        "# kill -9 and resume (benchmarks/crash_resume.py)",
        "",
        f"Device: {result['device']}; torch {torch.__version__}; {result['date']}; load average "
        f"{result['loadavg_before']} before, {result['loadavg_after']} after (2 shared cores, other jobs running).",
        f"Run: improved-gan/mnist-100 shrunk to scikit-learn digits (tests/conftest.py TINY_DIGITS), "
        f"{ITERATIONS} iterations, evaluation + save every 5, loss check every 3; uninterrupted run "
        f"{ref_seconds:.1f} s. {len(trials)} trials in {wall:.0f} s.",
        "",
        "| trials | killed by SIGKILL | killed inside a save (.tmp present) | killed before the first checkpoint | "
        "killed, then resumed (exit 0) | killed: bit-exact | killed: row-exact | .tmp left after resume |",
        "|---|---|---|---|---|---|---|---|",
        f"| {summary['trials']} | {summary['killed']} | {summary['killed_inside_a_save']} | "
        f"{summary['killed_before_first_checkpoint']} | {summary['killed_then_resumed_ok']} | "
        f"{summary['killed_bit_exact']} | {summary['killed_rows_exact']} | {summary['tmp_left_after_resume']} |",
        "",
        f"{summary['finished_before_the_kill']} random-time trial(s) finished before the kill landed (compared as "
        f"they were; all trials: {summary['bit_exact']} bit-exact, {summary['rows_exact']} row-exact).",
        "",
        "Bit-exact: every tensor of the final last.pt (G, D, optimizers, averages) equals the uninterrupted "
        "run's. Row-exact: metrics.jsonl rows equal, ignoring wall_time_s and images_per_s.",
        "",
        "| # | kill point | left behind | resumed with | bit-exact | row-exact |",
        "|---|---|---|---|---|---|",
    ]
    for t in trials:
        left = t["left"]
        state = (
            "no run dir"
            if not left["dir"]
            else f"checkpoint @ {left['checkpoint_iteration']}"
            if left["checkpoint_iteration"] is not None
            else "no checkpoint"
        )
        if left["tmp_files"]:
            state += f", {'+'.join(left['tmp_files'])}"
        state += f", {left['rows']} rows"
        point = ", ".join(f"{k} {v}" for k, v in t["point"].items())
        lines.append(
            f"| {t['trial']} | {t['kind']}: {point}{'' if t['killed'] else ' (finished first)'} | {state} | "
            f"{t['resumed_with']} | {'yes' if t['bit_exact'] else 'NO'} | {'yes' if t['rows_exact'] else 'NO'} |"
        )
    js, md = write(args.name, result, "\n".join(lines))
    print(json.dumps(summary))
    print(f"wrote {js} and {md}")
    return 0 if summary["bit_exact"] == summary["rows_exact"] == len(trials) else 1


if __name__ == "__main__":
    sys.exit(main())
