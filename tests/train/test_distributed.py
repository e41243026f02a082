"""Data-parallel training on 2 CPU processes (gloo): gradients of 2 × b equal 1 × 2b in float64,
one writer, exact resume with the same world size, a clear error for another."""

import multiprocessing as mp
import os
import socket

import pytest
import torch
from torch.nn.utils import parametrize

from ganworks.cli import main
from ganworks.config import resolve
from ganworks.train import Experiment, distributed, load_checkpoint

TINY = [
    "data.name=synthetic",
    "data.image_size=32",
    "data.channels=3",
    "data.batch_size=8",
    "data.train_limit=64",
    "data.test_limit=16",
    "model.generator.width=0.04",
    "model.discriminator.width=0.04",
    "objective.n_gen_samples=8",
    "objective.n_dis=2",
    "eval.grid=4",
    "eval.quality_samples=0",
]
PRESET = "sngan/cifar10-resnet-projection"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(rank, world, port):
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank)
    )


def _d_grads(exp, rank, world):
    """D's gradient of one D phase on this rank's rows, the fakes fixed (the same global set for all)."""
    B = exp.cfg["data"]["batch_size"]
    b = B // world
    g = torch.Generator().manual_seed(5)
    fake = torch.rand(B, 3, 32, 32, generator=g, dtype=torch.float64) * 2 - 1
    y_fake = torch.randint(0, 10, (B,), generator=g)
    rows = slice(rank * b, (rank + 1) * b)
    exp.objective.fake_with_classes = lambda n, device: (fake[rows], y_fake[rows])
    batch = {k: v.double() if v.is_floating_point() else v for k, v in exp.stream.batch(0, 1).items()}
    assert batch["x"].shape[0] == b
    for p in exp.G.parameters():
        p.requires_grad_(False)
    with exp.phase_context("d"), parametrize.cached():
        loss, _ = exp.objective.loss("d", batch)
    loss.backward()
    return {n: p.grad.clone() for n, p in exp.D.named_parameters()}, batch["y"]


def _grad_worker(rank, world, port, out):
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    _env(rank, world, port)
    info, device = distributed.setup(torch.device("cpu"))
    exp = Experiment(resolve(PRESET, TINY), device)
    distributed.wrap(exp, info)
    grads, y = _d_grads(exp, rank, world)
    torch.save({"grads": grads, "y": y}, os.path.join(out, f"grads{rank}.pt"))
    distributed.teardown()


def _train_worker(rank, world, port, out):
    torch.set_num_threads(1)
    common = ["--device", "cpu", "--no-progress"]
    # constant lr: a linear decay ends at train.iterations, which differs between the 2- and 4-iteration runs
    sets = [a for kv in TINY + ["eval.every=2", "optim.decay=constant"] for a in ("--set", kv)]
    _env(rank, world, port)
    assert main(["train", PRESET, "--out", os.path.join(out, "full"), "--iterations", "4", *sets, *common]) == 0
    _env(rank, world, port + 1)
    assert main(["train", PRESET, "--out", os.path.join(out, "cut"), "--iterations", "2", *sets, *common]) == 0
    _env(rank, world, port + 2)
    assert main(["train", "--resume", os.path.join(out, "cut"), "--iterations", "4", *common]) == 0


def _spawn(fn, out, world=2):
    ctx = mp.get_context("spawn")
    port = _free_port()
    procs = [ctx.Process(target=fn, args=(r, world, port, str(out))) for r in range(world)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(240)
    codes = [p.exitcode for p in procs]
    for p in procs:
        if p.is_alive():
            p.kill()
    assert codes == [0] * world, codes


def test_rank_stream_splits_each_global_batch():
    exp = Experiment(resolve(PRESET, TINY), torch.device("cpu"))
    full = exp.stream.batch(2, 3)
    parts = [distributed.RankStream(exp.stream, distributed.DistInfo(r, 2)).batch(2, 3) for r in range(2)]
    assert all(p["x"].shape[0] == 4 for p in parts)
    assert torch.equal(torch.cat([p["x"] for p in parts]), full["x"])
    assert torch.equal(torch.cat([p["y"] for p in parts]), full["y"])
    with pytest.raises(Exception, match="divisible"):
        distributed.check_config(resolve(PRESET, TINY + ["data.batch_size=9"]), 2)


@pytest.mark.slow
def test_two_processes_average_to_the_one_process_gradient(tmp_path):
    _spawn(_grad_worker, tmp_path)
    torch.set_default_dtype(torch.float64)
    try:
        exp = Experiment(resolve(PRESET, TINY), torch.device("cpu"))
        want, y = _d_grads(exp, 0, 1)
    finally:
        torch.set_default_dtype(torch.float32)
    r0, r1 = (torch.load(tmp_path / f"grads{r}.pt") for r in range(2))
    assert torch.equal(torch.cat([r0["y"], r1["y"]]), y)  # the two ranks' rows are the one batch
    for name, g in want.items():
        assert g.dtype == torch.float64 and g.abs().max() > 0, name
        for r in (r0, r1):  # every rank holds the averaged gradient
            assert (r["grads"][name] - g).abs().max().item() < 1e-10, name


@pytest.mark.slow
def test_two_process_training_writes_once_and_resumes_exactly(tmp_path):
    _spawn(_train_worker, tmp_path)
    rows = (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 2  # evaluations at iterations 2 and 4, written by rank 0 only
    full, cut = load_checkpoint(tmp_path / "full"), load_checkpoint(tmp_path / "cut")
    assert full["world_size"] == 2 and cut["position"] == full["position"]
    for part in ("G", "D"):
        for k, v in full["models"][part].items():
            assert torch.equal(v, cut["models"][part][k]), (part, k)
    # another world size: a clear error, not a silently different run
    code = main(["train", "--resume", str(tmp_path / "cut"), "--iterations", "6", "--device", "cpu", "--no-progress"])
    assert code == 2


# ---- issue #22 item 19: signals under several processes end as under one ------------------------------


def _signal_worker(rank, world, port, out):
    """A run in which one rank gets a signal at iteration 3 (out names it: SIGTERM on rank 0, SIGINT on rank 1)."""
    import json
    import signal

    from ganworks.train import loop

    torch.set_num_threads(1)
    sig = getattr(signal, os.path.basename(out))
    who = 0 if sig == signal.SIGTERM else 1
    sets = [a for kv in TINY + ["eval.every=2", "eval.grid=0"] for a in ("--set", kv)]
    real = loop.train_iteration

    def iteration(exp):
        if exp.position["iteration"] == 3 and rank == who:
            os.kill(os.getpid(), sig)
        return real(exp)

    loop.train_iteration = iteration
    _env(rank, world, port)
    code = main(
        [
            "train",
            PRESET,
            "--out",
            os.path.join(out, "run"),
            "--iterations",
            "1000",
            *sets,
            "--device",
            "cpu",
            "--no-progress",
        ]
    )
    with open(os.path.join(out, f"code{rank}.json"), "w") as f:
        json.dump(code, f)


@pytest.mark.slow
@pytest.mark.parametrize("name, code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_two_processes_stop_on_a_signal_like_one(name, code, tmp_path):
    """SIGTERM reaching rank 0 or Ctrl-C reaching rank 1 only: both ranks stop at the same iteration,
    rank 0 saves and writes status.json, and both exit with the signal's status."""
    import json

    out = tmp_path / name
    out.mkdir()
    _spawn(_signal_worker, out)
    assert [json.loads((out / f"code{r}.json").read_text()) for r in range(2)] == [code, code]
    status = json.loads((out / "run" / "status.json").read_text())
    assert status["interrupted"] is True and status["signal"] == name and status["finished"] is False
    assert status["iteration"] == 4 == load_checkpoint(out / "run")["position"]["iteration"]


@pytest.mark.slow
def test_nproc_launcher_exits_with_the_signals_status(tmp_path):
    """`ganworks train --nproc 2` stopped by SIGTERM (what a scheduler sends the launcher): the ranks get it once
    through torchrun, save, and the launcher exits 143 like a one-process run."""
    import json
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    import ganworks

    src = str(Path(ganworks.__file__).resolve().parents[1])
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
    }
    env.update(PYTHONPATH=src + os.pathsep + env.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    run = tmp_path / "run"
    sets = [a for kv in TINY + ["eval.every=2", "eval.grid=0"] for a in ("--set", kv)]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ganworks.cli",
            "train",
            PRESET,
            "--nproc",
            "2",
            "--out",
            str(run),
            "--iterations",
            "100000",
            *sets,
            "--device",
            "cpu",
            "--no-progress",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 240
        while not (run / "checkpoints" / "last.pt").exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert (run / "checkpoints" / "last.pt").exists(), proc.communicate(timeout=60)[1][-3000:]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever of the launcher, torchrun and the ranks is left
        except ProcessLookupError:
            pass
    assert proc.returncode == 143, err[-3000:]
    status = json.loads((run / "status.json").read_text())
    assert status["signal"] == "SIGTERM" and status["iteration"] == load_checkpoint(run)["position"]["iteration"]


def test_launcher_writes_the_status_when_the_ranks_stopped_on_its_signal_without_one(tmp_path, monkeypatch):
    """A forwarded SIGTERM can stop the ranks before rank 0 writes status.json (a rank leaves a collective
    while the other saves): the launcher then describes the run from its last checkpoint; with no
    checkpoint it writes nothing."""
    import json

    from ganworks import checkpoints
    from ganworks.errors import CheckpointError
    from ganworks.train import launch

    launch._status_from_last_checkpoint(tmp_path, "SIGTERM")  # nothing saved yet
    assert not (tmp_path / "status.json").exists()

    monkeypatch.setattr(checkpoints, "load_checkpoint", lambda run_dir: {"position": {"iteration": 7, "epoch": 0.5}})
    launch._status_from_last_checkpoint(tmp_path, "SIGTERM")
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["signal"] == "SIGTERM" and status["iteration"] == 7 and status["interrupted"]
    assert not status["finished"]

    def broken(run_dir):
        raise CheckpointError("damaged")

    (tmp_path / "status.json").unlink()
    monkeypatch.setattr(checkpoints, "load_checkpoint", broken)
    launch._status_from_last_checkpoint(tmp_path, "SIGINT")
    assert not (tmp_path / "status.json").exists()
