"""train/run.py, the one home of a run: which folder and checkpoint a resume continues, the refusal of a
folder that is not a run, status.json and the exit status, on the one-process and the distributed path
(a torchrun rank, and the --nproc launcher)."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys

import pytest
import torch

from ganworks.checkpoints import load_checkpoint
from ganworks.errors import CheckpointError, ConfigError, DataError
from ganworks.train import loop
from ganworks.train import run as run_module
from ganworks.train.run import RunRequest, resume_target, run

PRESET = "improved-gan/mnist-100"


def _request(tiny_digits, out, **kw):
    kw.setdefault("iterations", 4)
    return RunRequest(preset=PRESET, out=out, overrides=[*tiny_digits, "eval.every=2"], progress=False, **kw)


def _status(run_dir):
    return json.loads((run_dir / "status.json").read_text())


def _fake_run(tmp_path, name="run", config=True, checkpoints=("last.pt",)):
    run_dir = tmp_path / name
    (run_dir / "checkpoints").mkdir(parents=True)
    if config:
        (run_dir / "config.json").write_text("{}\n")
    for c in checkpoints:
        (run_dir / "checkpoints" / c).write_bytes(b"")
    return run_dir


# ---- resume target -------------------------------------------------------------------------------------


def test_resume_of_a_folder_continues_its_last_checkpoint(tmp_path):
    run_dir = _fake_run(tmp_path, checkpoints=("last.pt", "best.pt"))
    assert resume_target(run_dir) == (run_dir, run_dir / "checkpoints" / "last.pt")
    assert resume_target(str(run_dir)) == (run_dir, run_dir / "checkpoints" / "last.pt")


def test_resume_of_a_checkpoint_file_continues_that_file_in_its_run(tmp_path):
    run_dir = _fake_run(tmp_path, checkpoints=("last.pt", "best.pt"))
    assert resume_target(run_dir / "checkpoints" / "best.pt") == (run_dir, run_dir / "checkpoints" / "best.pt")


def test_resume_of_a_run_stopped_before_its_first_checkpoint_restarts_from_its_config(tmp_path):
    run_dir = _fake_run(tmp_path, checkpoints=())
    assert resume_target(run_dir) == (run_dir, None)


def _not_a_run(tmp_path, what):
    if what == "missing":
        return tmp_path / "nowhere"
    if what == "empty":
        (tmp_path / "empty").mkdir()
        return tmp_path / "empty"
    if what == "loose file":
        (tmp_path / "x.pt").write_bytes(b"")
        return tmp_path / "x.pt"
    return _fake_run(tmp_path, config=False) / "checkpoints" / "last.pt"  # a checkpoint in a folder without config


@pytest.mark.parametrize(
    "what, message",
    [
        ("missing", "no such run directory"),
        ("empty", "is not a ganworks run directory"),
        ("loose file", "is not inside a run directory"),
        ("checkpoint without config", "is not inside a run directory"),
    ],
)
def test_resume_of_something_else_is_refused(what, message, tmp_path):
    with pytest.raises(CheckpointError, match=message):
        resume_target(_not_a_run(tmp_path, what))


# ---- a folder that is not a run, and a request that makes no sense ------------------------------------------


def test_a_foreign_folder_is_refused_and_left_as_it_is(tmp_path, tiny_digits):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine\n")
    with pytest.raises(ConfigError, match="holds other files and is not a run"):
        run(_request(tiny_digits, foreign))
    (foreign / "config.json").write_text('{"mine": 1}\n')
    with pytest.raises(CheckpointError, match="is not a ganworks run config"):
        run(RunRequest(resume=foreign, progress=False))
    assert sorted(p.name for p in foreign.iterdir()) == ["config.json", "notes.txt"]
    assert (foreign / "config.json").read_text() == '{"mine": 1}\n'


def test_a_new_folder_the_run_never_wrote_into_is_removed_again(tmp_path, tiny_digits):
    out = tmp_path / "new"
    with pytest.raises(DataError, match="has 1x8x8 images but the generator"):
        run(RunRequest(preset=PRESET, out=out, overrides=["data.name=digits"], iterations=2, progress=False))
    assert not out.exists()


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"nproc": 2, "max_minutes": 5.0}, "--max-minutes cannot be used with --nproc above 1"),
        ({"preset": None}, "name a preset"),
        ({"threads": 0}, "--threads must be between 1 and 1024"),
    ],
)
def test_a_request_that_makes_no_sense_is_refused_before_anything_is_written(fields, message, tmp_path, tiny_digits):
    req = _request(tiny_digits, tmp_path / "run")
    for k, v in fields.items():
        setattr(req, k, v)
    with pytest.raises(ConfigError, match=message):
        run(req)
    assert list(tmp_path.iterdir()) == []


def test_set_and_seed_cannot_change_a_run_being_resumed(tmp_path, tiny_digits):
    run_dir = tmp_path / "run"
    assert run(_request(tiny_digits, run_dir, iterations=2)) == 0
    before = (run_dir / "checkpoints" / "last.pt").read_bytes()
    for change in ({"overrides": ["optim.lr=0.1"]}, {"seed": 7}):
        with pytest.raises(ConfigError, match="--set and --seed cannot change a run being resumed"):
            run(RunRequest(resume=run_dir, iterations=4, progress=False, **change))
    assert (run_dir / "checkpoints" / "last.pt").read_bytes() == before


# ---- status.json and the exit status: one process ---------------------------------------------------------


def test_a_finished_run_writes_its_status_and_exits_0(tmp_path, tiny_digits):
    run_dir = tmp_path / "run"
    assert run(_request(tiny_digits, run_dir, iterations=4)) == 0
    position = load_checkpoint(run_dir)["position"]
    status = _status(run_dir)
    assert status["iteration"] == position["iteration"] == status["total_iterations"] == 4
    assert status["finished"] is True and status["interrupted"] is False and status["signal"] is None
    # resuming to a longer length rewrites it
    assert run(RunRequest(resume=run_dir, iterations=6, progress=False)) == 0
    assert _status(run_dir)["iteration"] == 6 == load_checkpoint(run_dir)["position"]["iteration"]


def _signal_at(monkeypatch, iteration, sig):
    real = loop.train_iteration

    def iteration_then_signal(exp):
        if exp.position["iteration"] == iteration:
            os.kill(os.getpid(), sig)
        return real(exp)

    monkeypatch.setattr(loop, "train_iteration", iteration_then_signal)


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_run_stopped_by_a_signal_writes_its_status_and_exits_with_the_signals_code(
    sig, code, tmp_path, tiny_digits, monkeypatch
):
    run_dir = tmp_path / "run"
    _signal_at(monkeypatch, 2, sig)
    assert run(_request(tiny_digits, run_dir, iterations=30)) == code
    status = _status(run_dir)
    assert status["interrupted"] is True and status["signal"] == sig.name and status["finished"] is False
    assert status["iteration"] == 3 == load_checkpoint(run_dir)["position"]["iteration"]


# ---- status.json and the exit status: the distributed path ---------------------------------------------------


@pytest.fixture
def torchrun_rank(monkeypatch):
    """This process as rank 0 of 1 under torchrun (the environment torchrun sets)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for k, v in dict(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)).items():
        monkeypatch.setenv(k, v)


def test_a_torchrun_rank_writes_the_status_and_exits_0(tmp_path, tiny_digits, torchrun_rank):
    run_dir = tmp_path / "run"
    assert run(_request(tiny_digits, run_dir, iterations=4)) == 0
    assert not torch.distributed.is_initialized()  # the process group is torn down
    status = _status(run_dir)
    assert status["finished"] is True and status["signal"] is None
    assert status["iteration"] == 4 == load_checkpoint(run_dir)["position"]["iteration"]
    assert load_checkpoint(run_dir)["world_size"] == 1


def test_a_torchrun_rank_stopped_by_sigterm_writes_the_status_and_exits_143(
    tmp_path, tiny_digits, torchrun_rank, monkeypatch
):
    run_dir = tmp_path / "run"
    _signal_at(monkeypatch, 1, signal.SIGTERM)
    assert run(_request(tiny_digits, run_dir, iterations=30)) == 143
    status = _status(run_dir)
    assert status["signal"] == "SIGTERM" and status["finished"] is False
    assert status["iteration"] == 2 == load_checkpoint(run_dir)["position"]["iteration"]


_RANKS = """
import json, pathlib, sys
run_dir, code, status = pathlib.Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
if status != "none":
    (run_dir / "status.json").write_text(json.dumps({"signal": None if status == "ok" else status}))
sys.exit(code)
"""


@pytest.mark.parametrize(
    "ranks_exit, status, code",
    [
        (0, "ok", 0),  # the ranks finished
        (1, "SIGTERM", 143),  # they stopped on a SIGTERM after saving (torchrun exits 1)
        (1, "SIGINT", 130),
        (1, "none", 2),  # a rank failed with an error (it printed it; torchrun exits 1)
    ],
)
def test_the_nproc_launcher_exits_with_the_ranks_status(ranks_exit, status, code, tmp_path, tiny_digits, monkeypatch):
    from ganworks.train import launch

    seen = {}

    def command(req, run_dir):
        seen.update(req=req, run_dir=run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        return [sys.executable, "-c", _RANKS, str(run_dir), str(ranks_exit), status]

    monkeypatch.setattr(launch, "torchrun_command", command)
    run_dir = tmp_path / "run"
    assert run(_request(tiny_digits, run_dir, nproc=2)) == code
    assert seen["run_dir"] == run_dir and seen["req"].nproc == 2


def test_the_nproc_launcher_checks_the_folder_before_starting_anything(tmp_path, tiny_digits, monkeypatch):
    from ganworks.train import launch

    monkeypatch.setattr(launch, "torchrun_command", lambda req, run_dir: pytest.fail("torchrun was started"))
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine\n")
    with pytest.raises(ConfigError, match="holds other files and is not a run"):
        run(_request(tiny_digits, foreign, nproc=2))
    with pytest.raises(CheckpointError, match="no such run directory"):
        run(RunRequest(resume=tmp_path / "nowhere", nproc=2))


def test_a_resumed_run_under_the_launcher_has_its_status_in_the_run_folder(tmp_path, tiny_digits, monkeypatch):
    """--resume RUN/checkpoints/last.pt --nproc 2: the launcher reads RUN/status.json, not one beside the file."""
    from ganworks.train import launch

    run_dir = tmp_path / "run"
    assert run(_request(tiny_digits, run_dir, iterations=2)) == 0
    monkeypatch.setattr(
        launch, "torchrun_command", lambda req, d: [sys.executable, "-c", _RANKS, str(d), "1", "SIGTERM"]
    )
    assert run(RunRequest(resume=run_dir / "checkpoints" / "last.pt", nproc=2, iterations=4)) == 143


def test_the_torchrun_command_carries_every_field_of_the_request(tmp_path):
    """What each rank parses back from the launcher's command line is the request itself (one process each)."""
    from ganworks.cli import build_parser
    from ganworks.cli.train import request
    from ganworks.train.launch import torchrun_command

    req = RunRequest(
        preset=PRESET,
        out=tmp_path / "run",
        overrides=["optim.lr=0.001", "data.labels=50"],
        seed=3,
        epochs=2.5,
        compile="optimizer",
        threads=2,
        device="cpu",
        data_root=str(tmp_path / "data"),
        nproc=2,
        progress=False,
    )
    cmd = torchrun_command(req, tmp_path / "run")
    assert cmd[cmd.index("-m", 3) + 1 : cmd.index("train")] == ["ganworks"] and "--nproc-per-node=2" in cmd
    rank = request(build_parser().parse_args(cmd[cmd.index("train") :]))
    assert rank == RunRequest(**{**req.__dict__, "out": str(tmp_path / "run"), "nproc": 1})
    resumed = RunRequest(resume=str(tmp_path / "run"), iterations=9, nproc=2)
    cmd = torchrun_command(resumed, tmp_path / "run")
    assert request(build_parser().parse_args(cmd[cmd.index("train") :])) == RunRequest(
        **{**resumed.__dict__, "nproc": 1}
    )


def test_exit_status_of_a_row():
    assert run_module.exit_status({"iteration": 4}) == 0
    assert run_module.exit_status({"interrupted": "SIGINT"}) == 130
    assert run_module.exit_status({"interrupted": "SIGTERM"}) == 143
