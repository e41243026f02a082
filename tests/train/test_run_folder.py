"""Issue #22 items 1-3 and 17: a folder is a run only if its config.json is a run's, one writer per
run folder (the lock `ganworks reproduce` takes too), a checkpoint must belong to its run, and a
non-finite checkpoint is never called good."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import ganworks
from ganworks.cli import main
from ganworks.config import resolve
from ganworks.train import runlock

SRC = str(Path(ganworks.__file__).resolve().parents[1])


def _sets(overrides):
    return [a for o in overrides for a in ("--set", o)]


def _env(**extra):
    return {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), **extra}


def _one_line_error(capsys, code, message):
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("error: ") and message in err and "\n" not in err and "Traceback" not in err, err
    return err


def _train(tiny_digits, run, preset="improved-gan/mnist-100", iterations=4):
    assert (
        main(
            [
                "train",
                preset,
                *_sets(tiny_digits),
                "--iterations",
                str(iterations),
                "--set",
                "eval.every=2",
                "--out",
                str(run),
                "--no-progress",
            ]
        )
        == 0
    )


# ---- item 1: only a run's config.json makes a folder a run -------------------------------------------


def test_train_refuses_folder_whose_config_is_not_a_run(tmp_path, tiny_digits, capsys):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "config.json").write_text('{"mine":1}\n')
    code = main(
        [
            "train",
            "improved-gan/mnist-100",
            *_sets(tiny_digits),
            "--iterations",
            "2",
            "--out",
            str(foreign),
            "--no-progress",
        ]
    )
    _one_line_error(capsys, code, "holds a config.json that is not a ganworks run config")
    assert (foreign / "config.json").read_text() == '{"mine":1}\n'
    assert sorted(p.name for p in foreign.iterdir()) == ["config.json"]
    # nor is it resumed as "a run killed before its first checkpoint"
    _one_line_error(capsys, main(["train", "--resume", str(foreign), "--no-progress"]), "is not a ganworks run config")
    assert (foreign / "config.json").read_text() == '{"mine":1}\n'


def test_train_refuses_to_restart_another_presets_run_in_place(tmp_path, tiny_digits, capsys):
    other = tmp_path / "other"
    other.mkdir()
    cfg = resolve("sngan/cifar10-cnn-sn")  # a run of another preset that stopped before its first checkpoint
    text = json.dumps(cfg, indent=2) + "\n"
    (other / "config.json").write_text(text)
    code = main(
        [
            "train",
            "improved-gan/mnist-100",
            *_sets(tiny_digits),
            "--iterations",
            "2",
            "--out",
            str(other),
            "--no-progress",
        ]
    )
    _one_line_error(
        capsys,
        code,
        "holds a run of 'sngan/cifar10-cnn-sn' (stopped before its first checkpoint), not of 'improved-gan/mnist-100'",
    )
    assert (other / "config.json").read_text() == text


# ---- item 2: one writer per run folder ---------------------------------------------------------------


_HOLD = """
import sys, time
from ganworks.train import runlock
lock = runlock.acquire(sys.argv[1])
print("locked", flush=True)
time.sleep(120)
"""


@pytest.mark.slow
def test_second_writer_is_refused_naming_the_holders_pid(tmp_path, tiny_digits, capsys):
    run = tmp_path / "dup2"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(run)], env=_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code = main(
            [
                "train",
                "improved-gan/mnist-100",
                *_sets(tiny_digits),
                "--iterations",
                "2",
                "--out",
                str(run),
                "--no-progress",
            ]
        )
        _one_line_error(capsys, code, f"run folder {run} is in use by process {holder.pid}")
        assert sorted(p.name for p in run.iterdir()) == [runlock.LOCK]  # nothing written
    finally:
        holder.kill()
        holder.wait()
    _train(tiny_digits, run, iterations=2)  # the holder is gone: its lock went with it


@pytest.mark.slow
def test_resume_while_the_run_is_training_is_refused(tmp_path, tiny_digits, capsys):
    run = tmp_path / "dup"
    cmd = [
        sys.executable,
        "-m",
        "ganworks.cli",
        "train",
        "improved-gan/mnist-100",
        *_sets(tiny_digits),
        "--iterations",
        "100000",
        "--set",
        "eval.every=5",
        "--set",
        "eval.grid=0",
        "--out",
        str(run),
        "--no-progress",
    ]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (run / "checkpoints" / "last.pt").exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert (run / "checkpoints" / "last.pt").exists()
        code = main(["train", "--resume", str(run), "--iterations", "100", "--no-progress"])
        _one_line_error(capsys, code, f"is in use by process {proc.pid}")
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143
    rows = [json.loads(x)["iteration"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows == sorted(set(rows))  # every row once


@pytest.mark.slow
def test_a_train_started_with_an_inherited_lock_runs(tmp_path, tiny_digits):
    """What `ganworks reproduce` does: lock, then start `ganworks train` with the locked descriptor."""
    run = tmp_path / "run"
    lock = runlock.acquire(run)
    try:
        cmd = [
            sys.executable,
            "-m",
            "ganworks.cli",
            "train",
            "improved-gan/mnist-100",
            *_sets(tiny_digits),
            "--iterations",
            "2",
            "--out",
            str(run),
            "--no-progress",
        ]
        proc = subprocess.run(
            cmd,
            env=_env(**{runlock.INHERITED_FD: str(lock.fileno())}),
            capture_output=True,
            text=True,
            pass_fds=(lock.fileno(),),
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        assert runlock.is_locked(run)  # still ours after the child is gone
    finally:
        lock.release()
    assert not runlock.is_locked(run)


# ---- item 3: a checkpoint must belong to its run -----------------------------------------------------


def test_resume_refuses_a_checkpoint_of_another_preset_without_writing(tmp_path, tiny_digits, capsys):
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    _train(tiny_digits, mine, iterations=4)
    _train(tiny_digits, theirs, preset="improved-gan/mnist-20", iterations=2)
    shutil.copy(theirs / "checkpoints" / "last.pt", mine / "checkpoints" / "last.pt")
    before = {p: p.read_bytes() for p in (mine / "config.json", mine / "metrics.jsonl")}
    capsys.readouterr()
    code = main(["train", "--resume", str(mine), "--iterations", "8", "--no-progress"])
    _one_line_error(capsys, code, "does not belong to the run in")
    assert {p: p.read_bytes() for p in before} == before
    assert not list((mine / "checkpoints").glob("*.tmp"))
    # a resume that only changes what a resume may change still works
    shutil.copy(mine / "checkpoints" / "best.pt", mine / "checkpoints" / "last.pt")
    assert main(["train", "--resume", str(mine), "--iterations", "6", "--no-progress"]) == 0


# ---- item 17: a non-finite checkpoint is never "the last good" one ----------------------------------


def _poison(path):
    state = torch.load(path, weights_only=True)
    key = next(k for k, v in state["models"]["G"].items() if v.is_floating_point())
    state["models"]["G"][key].fill_(float("nan"))
    torch.save(state, path)


def test_resume_of_a_nonfinite_last_pt_points_to_the_newest_finite_checkpoint(tmp_path, tiny_digits, capsys):
    run = tmp_path / "run"
    _train(tiny_digits, run, iterations=4)
    _poison(run / "checkpoints" / "last.pt")
    capsys.readouterr()
    err = _one_line_error(
        capsys, main(["train", "--resume", str(run), "--iterations", "8", "--no-progress"]), "holds non-finite weights"
    )
    assert "last good" not in err and f"the newest finite checkpoint is {run / 'checkpoints' / 'best.pt'}" in err
    _poison(run / "checkpoints" / "best.pt")
    err = _one_line_error(
        capsys, main(["train", "--resume", str(run), "--iterations", "8", "--no-progress"]), "holds non-finite weights"
    )
    assert "last good" not in err and "no checkpoint of" in err and "is finite" in err
