"""Resume equivalence, Ctrl-C, NaN stops and checkpoint errors of the one training loop."""

import os
import signal

import pytest
import torch

from ganworks.config import resolve
from ganworks.errors import CheckpointError, TrainingDiverged
from ganworks.train import Experiment, load_checkpoint, train

CPU = torch.device("cpu")


def _run(cfg, run_dir, resume_from=None):
    exp = Experiment(cfg, CPU)
    if resume_from is not None:
        exp.load_state_dict(load_checkpoint(resume_from))
    row = train(exp, run_dir, progress=False)
    return exp, row


def _same_state(a: Experiment, b: Experiment):
    for name in ("G", "D"):
        sa, sb = getattr(a, name).state_dict(), getattr(b, name).state_dict()
        assert sa.keys() == sb.keys()
        for k in sa:
            assert torch.equal(sa[k], sb[k]), f"{name}.{k} differs"
    for k in a.ema:
        for x, y in zip(a.ema[k].model.parameters(), b.ema[k].model.parameters()):
            assert torch.equal(x, y)


def test_two_epochs_equal_one_plus_resume_plus_one(tmp_path, tiny_digits):
    cfg2 = resolve("improved-gan/mnist-100", tiny_digits + ["train.epochs=2"])
    cfg1 = resolve("improved-gan/mnist-100", tiny_digits + ["train.epochs=1"])
    straight, _ = _run(cfg2, tmp_path / "straight")
    first, _ = _run(cfg1, tmp_path / "split")
    assert first.position == {"iteration": 30, "epoch": 1, "index": 0}
    resumed, row = _run(cfg2, tmp_path / "split", resume_from=tmp_path / "split")
    assert resumed.position["iteration"] == straight.position["iteration"] == 60
    _same_state(straight, resumed)
    lines = (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 and "test_error_ema" in row


def test_ctrl_c_saves_and_resumes_exactly_mid_epoch(tmp_path, tiny_digits, monkeypatch):
    cfg = resolve("improved-gan/mnist-100", tiny_digits + ["train.iterations=40", "eval.every=100"])
    straight, _ = _run(cfg, tmp_path / "straight")

    exp = Experiment(cfg, CPU)
    original = exp.objective.g_loss
    calls = {"n": 0}

    def g_loss_with_interrupt(batch):
        calls["n"] += 1
        if calls["n"] == 13:
            os.kill(os.getpid(), signal.SIGINT)  # as if the user pressed Ctrl-C in iteration 13
        return original(batch)

    monkeypatch.setattr(exp.objective, "g_loss", g_loss_with_interrupt)
    row = train(exp, tmp_path / "cut", progress=False)
    assert row["interrupted"] and exp.position["iteration"] == 13
    assert load_checkpoint(tmp_path / "cut")["position"]["index"] == 13  # mid-epoch (30 per epoch)
    resumed, _ = _run(cfg, tmp_path / "cut", resume_from=tmp_path / "cut")
    _same_state(straight, resumed)


@pytest.mark.parametrize("noise", ["parallel", "prefetch"])
def test_noise_stream_runs_resume_bit_exact_on_two_threads(tmp_path, tiny_digits, noise):
    """train.noise draws from a counter-keyed stream: a run stopped and resumed reaches the same
    weights as one run straight through."""
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        over = tiny_digits + [f"train.noise={noise}", "eval.every=100"]
        straight, _ = _run(resolve("improved-gan/mnist-100", over + ["train.iterations=40"]), tmp_path / "straight")
        assert straight.noise.count == 40 * 18  # 6 noise layers x (1 fused D pass + 2 passes in the G step)
        _run(resolve("improved-gan/mnist-100", over + ["train.iterations=17"]), tmp_path / "cut")
        resumed, _ = _run(
            resolve("improved-gan/mnist-100", over + ["train.iterations=40"]),
            tmp_path / "cut",
            resume_from=tmp_path / "cut",
        )
    finally:
        torch.set_num_threads(before)
    _same_state(straight, resumed)
    default, _ = _run(
        resolve("improved-gan/mnist-100", tiny_digits + ["train.noise=global", "train.iterations=5"]),
        tmp_path / "global",
    )
    assert default.noise is None


def test_nan_loss_stops_with_the_step_and_keeps_last_good_checkpoint(tmp_path, tiny_digits, monkeypatch):
    cfg = resolve("improved-gan/mnist-100", tiny_digits + ["train.iterations=30", "eval.every=10", "train.log_every=4"])
    exp = Experiment(cfg, CPU)
    original = exp.objective.d_loss
    calls = {"n": 0}

    def d_loss_nan_at_17(batch):
        calls["n"] += 1
        loss, logs = original(batch)
        return (loss * float("nan"), logs) if calls["n"] == 17 else (loss, logs)

    monkeypatch.setattr(exp.objective, "d_loss", d_loss_nan_at_17)
    with pytest.raises(TrainingDiverged, match="at iteration 17 \\(D step\\)"):
        train(exp, tmp_path / "run", progress=False)
    kept = load_checkpoint(tmp_path / "run")
    assert kept["position"]["iteration"] == 10
    assert all(torch.isfinite(v).all() for v in kept["models"]["D"].values())


def test_truncated_and_foreign_checkpoints_give_clear_errors(tmp_path, tiny_digits):
    cfg = resolve("improved-gan/mnist-100", tiny_digits + ["train.iterations=2"])
    _run(cfg, tmp_path / "run")
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt.*best.pt"):
        load_checkpoint(tmp_path / "run")
    last.write_bytes(b"junk\n")  # not a zip: the legacy unpickler reads it and fails with a KeyError
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(tmp_path / "run")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a ganworks checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="no such run directory"):
        load_checkpoint(tmp_path / "missing")
