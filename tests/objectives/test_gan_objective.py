"""The unconditional GAN objective inside the one loop: schedule, constraints, penalties."""

import torch

from ganworks.config import resolve
from ganworks.train import Experiment, train
from ganworks.train.loop import train_iteration

CPU = torch.device("cpu")
TINY = [
    "data.name=synthetic",
    "data.image_size=32",
    "data.channels=3",
    "data.batch_size=8",
    "data.train_limit=64",
    "data.test_limit=16",
    "model.generator.width=0.04",
    "model.discriminator.width=0.04",
    "eval.grid=4",
    "eval.quality_samples=0",
]


def test_one_g_step_then_n_dis_d_steps_each_on_a_fresh_batch():
    exp = Experiment(resolve("sngan/cifar10-cnn-wgan-gp", TINY + ["train.iterations=1"]), CPU)
    assert exp.objective.schedule == ("g", "d", "d", "d", "d", "d")  # setting A: n_dis = 5
    seen = []
    original = exp.stream.batch
    exp.stream.batch = lambda epoch, index: seen.append((epoch, index)) or original(epoch, index)
    phases = [p for p, _ in train_iteration(exp)]
    assert phases == ["g", "d", "d", "d", "d", "d"]
    assert seen == [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4)]
    assert exp.position == {"iteration": 1, "epoch": 0, "index": 5}
    assert exp.iterations_per_epoch == 1  # 8 batches of 8 per epoch, 5 per iteration


def test_weight_clipping_holds_after_every_d_step(tmp_path):
    exp = Experiment(resolve("sngan/cifar10-cnn-weight-clipping", TINY + ["train.iterations=2"]), CPU)
    train(exp, tmp_path, progress=False)
    assert all(p.abs().max() <= 0.01 + 1e-7 for p in exp.D.parameters() if p.requires_grad)


def test_gradient_penalty_and_orthonormal_terms_are_logged(tmp_path):
    row = train(
        Experiment(resolve("sngan/cifar10-cnn-wgan-gp", TINY + ["train.iterations=1"]), CPU),
        tmp_path / "gp",
        progress=False,
    )
    assert row["gradient_penalty"] >= 0
    row = train(
        Experiment(resolve("sngan/cifar10-cnn-orthonormal", TINY + ["train.iterations=1"]), CPU),
        tmp_path / "o",
        progress=False,
    )
    assert row["orthonormal_penalty"] >= 0


def test_g_step_uses_g_batch_multiplier_fakes(monkeypatch):
    exp = Experiment(resolve("sngan/cifar10-resnet-sn-hinge", TINY + ["train.iterations=1"]), CPU)
    sizes = []
    original = exp.G.sample_z
    monkeypatch.setattr(exp.G, "sample_z", lambda n, device=None: sizes.append(n) or original(n, device))
    train_iteration(exp)
    assert sizes[0] == 16 and sizes[1:] == [8] * 5  # G step: 2 × batch; D steps: batch


def test_historical_averaging_penalises_both_players(tmp_path):
    cfg = resolve(
        "improved-gan/cifar10-table3-no-labels-ha",
        TINY
        + [
            "train.iterations=3",
            "model.generator.vbn_ref_size=4",
            "model.discriminator.num_kernels=4",
            "model.init_examples=16",
        ],
    )
    exp = Experiment(cfg, CPU)
    row = train(exp, tmp_path, progress=False)
    assert row["historical_penalty_d"] > 0 and row["historical_penalty_g"] > 0
    state = exp.objective.state_dict()["historical"]
    assert set(state) == {"d", "g"}
