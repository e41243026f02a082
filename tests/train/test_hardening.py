"""Issue #9 items 1-4: a divergence never saves bad weights, every crash point resumes or restarts,
metrics.jsonl rows after resume equal an uninterrupted run's, SIGTERM/SIGINT save and exit 143/130."""

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
from ganworks.errors import TrainingDiverged
from ganworks.train import Experiment, load_checkpoint, train
from ganworks.train import loop as loop_module

CPU = torch.device("cpu")
SRC = str(Path(ganworks.__file__).resolve().parents[1])
TIMING = ("wall_time_s", "images_per_s")


def _rows(run_dir):
    rows = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def _sets(overrides):
    return [a for o in overrides for a in ("--set", o)]


def _resume(cfg, run_dir):
    exp = Experiment(cfg, CPU)
    exp.load_state_dict(load_checkpoint(run_dir))
    train(exp, run_dir, progress=False)
    return exp


def _same_weights(a, b):
    for name in ("G", "D"):
        for k, v in getattr(a, name).state_dict().items():
            assert torch.equal(v, getattr(b, name).state_dict()[k]), f"{name}.{k} differs"


# ---- item 1: the state is checked before every save ------------------------------------------------


def _blow_up_after(exp, iteration):
    """Write Inf into G's weights right after G's optimizer step of ``iteration`` (the last phase):
    every loss of that iteration is finite, so only the state check can see it."""
    original = exp.objective.after_step

    def after_step(phase):
        original(phase)
        if phase == "g" and exp.position["iteration"] + 1 == iteration:
            with torch.no_grad():
                next(exp.G.parameters()).fill_(float("inf"))

    exp.objective.after_step = after_step


def test_nonfinite_weights_are_never_saved_and_the_message_names_the_last_good_checkpoint(tmp_path, tiny_digits):
    cfg = resolve("improved-gan/mnist-100", tiny_digits + ["train.iterations=30", "eval.every=5"])
    exp = Experiment(cfg, CPU)
    _blow_up_after(exp, 10)
    with pytest.raises(TrainingDiverged) as e:
        train(exp, tmp_path / "run", progress=False)
    msg = str(e.value)
    assert "at iteration 10 the training state became non-finite (models.G." in msg
    assert "last.pt (iteration 5) is the last good checkpoint" in msg and "\n" not in msg
    kept = load_checkpoint(tmp_path / "run")
    assert kept["position"]["iteration"] == 5
    for tree in (kept["models"], kept["ema"], kept["optimizers"]):
        for t in _flat(tree):
            assert torch.isfinite(t).all()
    assert [r["iteration"] for r in _rows(tmp_path / "run")] == [5]  # no row of the diverged state


def _flat(tree):
    if isinstance(tree, torch.Tensor):
        yield tree
    elif isinstance(tree, dict):
        for v in tree.values():
            yield from _flat(v)
    elif isinstance(tree, (list, tuple)):
        for v in tree:
            yield from _flat(v)


def test_divergence_before_the_first_save_says_no_checkpoint_was_written(tmp_path, tiny_digits):
    cfg = resolve("improved-gan/mnist-100", tiny_digits + ["train.iterations=30", "eval.every=3"])
    exp = Experiment(cfg, CPU)
    _blow_up_after(exp, 3)
    with pytest.raises(
        TrainingDiverged,
        match="at iteration 3 the training state became non-finite .*no checkpoint "
        "was written: start again with a lower optim.lr",
    ):
        train(exp, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "checkpoints").exists() or not any((tmp_path / "run" / "checkpoints").iterdir())


def test_eval_and_sample_refuse_a_checkpoint_with_nonfinite_weights(tmp_path, tiny_digits, capsys):
    run = tmp_path / "run"
    assert (
        main(
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
        == 0
    )
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    key = next(k for k in state["models"]["D"] if state["models"]["D"][k].is_floating_point())
    state["models"]["D"][key].fill_(float("nan"))
    torch.save(state, run / "checkpoints" / "last.pt")
    capsys.readouterr()
    for args in (["eval", str(run)], ["sample", str(run), "--out", str(tmp_path / "s.png")]):
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert (
            err.startswith("error: ") and "non-finite weights" in err and f"models.D.{key}" in err and "\n" not in err
        )
    assert not (tmp_path / "s.png").exists()


# ---- item 2: a kill during the first save ----------------------------------------------------------

_KILL_IN_FIRST_SAVE = """
import os, signal, sys
from ganworks.train import loop
def save_then_die(obj, path):
    tmp = path.with_name(path.name + ".tmp")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(b"PK\\x03\\x04 half a checkpoint")
    os.kill(os.getpid(), signal.SIGKILL)
loop.save_atomic = save_then_die
from ganworks.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _env():
    return {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}


@pytest.mark.slow
def test_kill_during_the_first_save_can_be_resumed_or_rerun(tmp_path, tiny_digits, capsys):
    run = tmp_path / "run"
    cmd = [
        "train",
        "improved-gan/mnist-100",
        *_sets(tiny_digits),
        "--iterations",
        "6",
        "--set",
        "eval.every=3",
        "--out",
        str(run),
        "--no-progress",
    ]
    proc = subprocess.run([sys.executable, "-c", _KILL_IN_FIRST_SAVE, *cmd], env=_env(), capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL
    assert (run / "config.json").is_file() and list((run / "checkpoints").glob("*.pt.tmp"))
    assert not (run / "checkpoints" / "last.pt").exists()
    run2 = tmp_path / "run2"
    shutil.copytree(run, run2)  # the same dead end, for the second way out

    assert main(["train", "--resume", str(run), "--no-progress"]) == 0  # restarts from config.json
    assert "no checkpoint" in capsys.readouterr().err
    assert not list((run / "checkpoints").glob("*.tmp"))
    assert [r["iteration"] for r in _rows(run)] == [3, 6]  # the dead run's row at 3 is not duplicated
    first = load_checkpoint(run)

    # the original command again
    cmd[cmd.index(str(run))] = str(run2)
    assert main(cmd) == 0
    assert not list((run2 / "checkpoints").glob("*.tmp"))
    again = load_checkpoint(run2)
    for k, v in first["models"]["D"].items():
        assert torch.equal(v, again["models"]["D"][k])
    assert _rows(run2) == _rows(run)


# ---- item 3: metrics.jsonl rolled back, loss window continued ---------------------------------------


def test_kill_between_row_and_save_gives_no_duplicate_row(tmp_path, tiny_digits, monkeypatch):
    cfg = resolve("improved-gan/mnist-100", tiny_digits + ["train.iterations=30", "eval.every=10", "train.log_every=3"])
    straight = Experiment(cfg, CPU)
    train(straight, tmp_path / "straight", progress=False)

    real_save = loop_module._save

    def crash_at_20(exp, run_dir, row, running=None):
        if exp.position["iteration"] == 20:
            raise RuntimeError("killed between the row and the save")
        real_save(exp, run_dir, row, running)

    monkeypatch.setattr(loop_module, "_save", crash_at_20)
    with pytest.raises(RuntimeError):
        train(Experiment(cfg, CPU), tmp_path / "cut", progress=False)
    assert [r["iteration"] for r in _rows(tmp_path / "cut")] == [10, 20]
    monkeypatch.setattr(loop_module, "_save", real_save)
    resumed = _resume(cfg, tmp_path / "cut")
    assert _rows(tmp_path / "cut") == _rows(tmp_path / "straight")
    _same_weights(straight, resumed)
    assert _tb_steps(tmp_path / "cut", "loss_d") == _tb_steps(tmp_path / "straight", "loss_d") == [10, 20, 30]


def _tb_steps(run_dir, tag):
    """The steps TensorBoard shows for ``tag`` (purged events hidden, as TensorBoard reads them)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tb"))
    acc.Reload()
    return [e.step for e in acc.Scalars(tag)]


def test_ctrl_c_mid_window_resumes_with_the_same_rows(tmp_path, tiny_digits, monkeypatch):
    cfg = resolve("improved-gan/mnist-100", tiny_digits + ["train.iterations=30", "eval.every=10", "train.log_every=4"])
    straight = Experiment(cfg, CPU)
    train(straight, tmp_path / "straight", progress=False)

    exp = Experiment(cfg, CPU)
    original = exp.objective.g_loss
    calls = {"n": 0}

    def g_loss_with_interrupt(batch):
        calls["n"] += 1
        if calls["n"] == 13:
            os.kill(os.getpid(), signal.SIGINT)
        return original(batch)

    monkeypatch.setattr(exp.objective, "g_loss", g_loss_with_interrupt)
    row = train(exp, tmp_path / "cut", progress=False)
    assert row["interrupted"] == "SIGINT" and exp.position["iteration"] == 13
    assert [r["iteration"] for r in _rows(tmp_path / "cut")] == [10]  # no extra row at the interrupt
    saved = load_checkpoint(tmp_path / "cut")
    assert len(saved["loop"]["running"]["loss_d"]) == 3  # iterations 11-13 of the window
    resumed = _resume(cfg, tmp_path / "cut")
    assert _rows(tmp_path / "cut") == _rows(tmp_path / "straight")
    _same_weights(straight, resumed)


def test_a_checkpoint_of_the_current_main_code_still_resumes(tmp_path, tiny_digits):
    """A checkpoint without the keys added here (config keys, loop state) resumes with defaults."""
    assert (
        main(
            [
                "train",
                "improved-gan/mnist-100",
                *_sets(tiny_digits),
                "--iterations",
                "6",
                "--set",
                "eval.every=3",
                "--out",
                str(tmp_path / "run"),
                "--no-progress",
            ]
        )
        == 0
    )
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    state = torch.load(last, weights_only=True)
    del state["loop"]
    for section, key in (
        ("data", "validation"),
        ("data", "dequantize"),
        ("eval", "quality_splits"),
        ("eval", "quality_uint8"),
    ):
        del state["config"][section][key]
    torch.save(state, last)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    del config["eval"]["quality_splits"]
    (tmp_path / "run" / "config.json").write_text(json.dumps(config))
    assert main(["train", "--resume", str(tmp_path / "run"), "--iterations", "9", "--no-progress"]) == 0
    assert load_checkpoint(tmp_path / "run")["position"]["iteration"] == 9


# ---- item 4: signals in a subprocess -----------------------------------------------------------------


def test_ctrl_c_exits_130_after_saving(tmp_path, tiny_digits, monkeypatch, capsys):
    real = loop_module.train_iteration

    def iteration_with_ctrl_c(exp):
        if exp.position["iteration"] == 4:
            os.kill(os.getpid(), signal.SIGINT)
        return real(exp)

    monkeypatch.setattr(loop_module, "train_iteration", iteration_with_ctrl_c)
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "improved-gan/mnist-100",
                *_sets(tiny_digits),
                "--iterations",
                "30",
                "--out",
                str(run),
                "--no-progress",
            ]
        )
        == 130
    )
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"iteration": 5, "interrupted": "SIGINT"}
    assert load_checkpoint(run)["position"]["iteration"] == 5
    monkeypatch.setattr(loop_module, "train_iteration", real)
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143)])
def test_sigterm_saves_and_exits_143(sig, code, tmp_path, tiny_digits):
    run = tmp_path / "run"
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
        "eval.every=2",
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
        assert (run / "checkpoints" / "last.pt").exists(), proc.stderr.read() if proc.poll() is not None else "slow"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    row = json.loads(out.strip().splitlines()[-1])
    assert row["interrupted"] == sig.name
    assert load_checkpoint(run)["position"]["iteration"] == row["iteration"] > 0
    assert not list((run / "checkpoints").glob("*.tmp"))
    assert f"--resume {run}" in err


# ---- issue #22 items 6-7: a refused write and a second Ctrl-C inside a save --------------------------


@pytest.mark.slow
def test_full_disk_during_a_save_is_one_line_and_leaves_no_tmp(tmp_path, tiny_digits):
    """``ulimit -f``: the checkpoint writer's failure names the file and says no checkpoint was written."""
    import resource

    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "ganworks.cli",
        "train",
        "improved-gan/mnist-100",
        *_sets(tiny_digits),
        "--iterations",
        "4",
        "--set",
        "eval.every=2",
        "--out",
        str(run),
        "--no-progress",
    ]
    limit = 64 * 1024  # config.json, rows and the grid fit; a checkpoint does not

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, preexec_fn=small_files, timeout=300)
    err = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert err.startswith("error: cannot write checkpoint ") and "best.pt" in err, err
    assert "no checkpoint of this run was written before" in err
    assert not list((run / "checkpoints").glob("*.tmp"))


def test_a_refused_save_says_the_last_good_checkpoint_is_intact(tmp_path, tiny_digits, monkeypatch, capsys):
    import errno

    real = torch.save
    calls = {"n": 0}

    def save(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 2:  # best.pt and last.pt at iteration 2 go through, the next save finds the disk full
            f.write(b"PK\x03\x04 partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    run = tmp_path / "run"
    code = main(
        [
            "train",
            "improved-gan/mnist-100",
            *_sets(tiny_digits),
            "--iterations",
            "4",
            "--set",
            "eval.every=2",
            "--out",
            str(run),
            "--no-progress",
        ]
    )
    monkeypatch.setattr(torch, "save", real)
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and err.startswith("error: cannot write checkpoint "), err
    assert (
        "(No space left on device)" in err
        and f"the last good checkpoint {run / 'checkpoints' / 'last.pt'} is intact" in err
    )
    assert load_checkpoint(run)["position"]["iteration"] == 2
    assert not list((run / "checkpoints").glob("*.tmp"))


_SECOND_CTRL_C_IN_SAVE = """
import os, signal, sys, torch
from ganworks.train import loop
state = {"signalled": False, "tripped": False}
real_iteration, real_save = loop.train_iteration, torch.save
def iteration(exp):
    if exp.position["iteration"] == 3:  # the first Ctrl-C: stop after this iteration (an evaluation, so a save)
        os.kill(os.getpid(), signal.SIGINT)
        state["signalled"] = True
    return real_iteration(exp)
class Tripwire:  # the second Ctrl-C lands while torch.save is writing
    def __init__(self, f):
        self.f = f
    def write(self, data):
        if not state["tripped"]:
            state["tripped"] = True
            os.kill(os.getpid(), signal.SIGINT)
        return self.f.write(data)
    def __getattr__(self, name):
        return getattr(self.f, name)
def save(obj, f, *args, **kwargs):
    return real_save(obj, Tripwire(f) if state["signalled"] else f, *args, **kwargs)
loop.train_iteration, torch.save = iteration, save
from ganworks.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_second_ctrl_c_inside_a_save_finishes_the_save_and_exits_130(tmp_path, tiny_digits):
    run = tmp_path / "run"
    cmd = [
        "train",
        "improved-gan/mnist-100",
        *_sets(tiny_digits),
        "--iterations",
        "30",
        "--set",
        "eval.every=2",
        "--out",
        str(run),
        "--no-progress",
    ]
    proc = subprocess.run(
        [sys.executable, "-c", _SECOND_CTRL_C_IN_SAVE, *cmd], env=_env(), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 130, proc.stderr
    assert "Traceback" not in proc.stderr and "RuntimeError" not in proc.stderr, proc.stderr
    assert f"interrupted (SIGINT): saved {run / 'checkpoints' / 'last.pt'} at iteration 4" in proc.stderr
    assert load_checkpoint(run)["position"]["iteration"] == 4
    assert not list((run / "checkpoints").glob("*.tmp"))
    assert json.loads((run / "status.json").read_text())["interrupted"] is True


_SECOND_CTRL_C_OUTSIDE_A_SAVE = """
import os, signal, sys
from ganworks.train import loop
real_iteration = loop.train_iteration
def iteration(exp):
    if exp.position["iteration"] != 2:
        return real_iteration(exp)
    os.kill(os.getpid(), signal.SIGINT)  # the first Ctrl-C: stop after this iteration
    logs = real_iteration(exp)
    os.kill(os.getpid(), signal.SIGINT)  # the second, before the stop's save
    return logs
loop.train_iteration = iteration
from ganworks.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_second_ctrl_c_outside_a_save_is_one_line_naming_the_intact_checkpoint(tmp_path, tiny_digits):
    run = tmp_path / "run"
    cmd = [
        "train",
        "improved-gan/mnist-100",
        *_sets(tiny_digits),
        "--iterations",
        "30",
        "--set",
        "eval.every=2",
        "--set",
        "train.log_every=100",
        "--out",
        str(run),
        "--no-progress",
    ]
    proc = subprocess.run(
        [sys.executable, "-c", _SECOND_CTRL_C_OUTSIDE_A_SAVE, *cmd],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    err = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 130 and "Traceback" not in proc.stderr, proc.stderr
    assert err == (
        f"error: interrupted twice (SIGINT): stopped at once without saving; "
        f"{run / 'checkpoints' / 'last.pt'} is intact (the last save): continue with "
        f"ganworks train --resume {run}"
    ), err
    assert load_checkpoint(run)["position"]["iteration"] == 2
