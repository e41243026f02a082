"""Mixed precision (train.amp): bf16 autocast on CPU trains without NaN, spectral norm's power
iteration and σ stay float32 outside autocast; fp16 goes through a GradScaler."""

import math

import pytest
import torch
from torch.nn.utils.parametrizations import _SpectralNorm

from ganworks.config import resolve
from ganworks.errors import ConfigError
from ganworks.train import Experiment, train

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
    "train.iterations=3",
]


def test_bf16_trains_and_keeps_spectral_norm_in_float32(tmp_path, monkeypatch):
    exp = Experiment(resolve("sngan/cifar10-resnet-projection", TINY + ["train.amp=bf16"]), torch.device("cpu"))
    seen = {"sn": [], "conv": []}
    original = _SpectralNorm.forward

    def spy(self, weight):
        out = original(self, weight)
        seen["sn"].append((torch.is_autocast_enabled("cpu"), weight.dtype, out.dtype, self._u.dtype))
        return out

    monkeypatch.setattr(_SpectralNorm, "forward", spy)
    exp.D.blocks[1].c1.register_forward_hook(lambda m, i, o: seen["conv"].append(o.dtype))
    before = [p.detach().clone() for p in exp.D.parameters()]
    row = train(exp, tmp_path, progress=False)
    assert row["iteration"] == 3 and all(math.isfinite(row[k]) for k in ("loss_d", "loss_g"))
    assert torch.bfloat16 in seen["conv"]  # the layers did run in bf16
    assert seen["sn"] and all(s == (False, torch.float32, torch.float32, torch.float32) for s in seen["sn"])
    assert all(p.dtype == torch.float32 for p in exp.D.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, exp.D.parameters()))
    assert 0 < row["sigma_max"] < 1e6


@pytest.mark.slow
def test_fp16_uses_a_grad_scaler(tmp_path):
    exp = Experiment(resolve("sngan/cifar10-resnet-projection", TINY + ["train.amp=fp16"]), torch.device("cpu"))
    assert exp.amp_scaler is not None
    before = [p.detach().clone() for p in exp.G.parameters()]
    row = train(exp, tmp_path, progress=False)
    assert math.isfinite(row["loss_d"]) and math.isfinite(exp.amp_scaler.get_scale())
    assert any(not torch.equal(a, b) for a, b in zip(before, exp.G.parameters()))
    saved = exp.amp_scaler.state_dict()
    assert saved["_growth_tracker"] > 0  # it has moved from its initial state, so the check below can fail
    again = Experiment(resolve("sngan/cifar10-resnet-projection", TINY + ["train.amp=fp16"]), torch.device("cpu"))
    again.load_state_dict(exp.state_dict())
    assert again.amp_scaler.state_dict() == saved


def test_unknown_mode_is_a_config_error():
    with pytest.raises(ConfigError, match="train.amp"):
        Experiment(resolve("sngan/cifar10-resnet-projection", TINY + ["train.amp=fp8"]), torch.device("cpu"))
