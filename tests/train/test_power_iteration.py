"""train.power_iteration: spectral norm's power steps per SN-GAN update, per optimizer step (Algorithm 1)
or per training-mode discriminator call (chainer-gan-lib's updater)."""

import importlib

import pytest
import torch

from ganworks.config import resolve
from ganworks.errors import ConfigError
from ganworks.train import Experiment
from ganworks.train.loop import train_iteration

sn_mod = importlib.import_module("ganworks.nn.spectral_norm")  # the package exports a function of that name

TINY = [
    "data.name=synthetic",
    "data.image_size=32",
    "data.channels=3",
    "data.batch_size=4",
    "model.generator.width=0.0625",
    "model.discriminator.width=0.0625",
    "train.iterations=2",
    "eval.quality_samples=0",
    "eval.best=",
    "train.compile=false",
    "train.device=cpu",
]


def _power_steps_per_iteration(tmp_path, schedule: str, setting: str) -> tuple[int, int, dict]:
    cfg = resolve("sngan/cifar10-cnn-sn", [f"optim.setting={setting}", f"train.power_iteration={schedule}", *TINY])
    exp = Experiment(cfg, torch.device("cpu"))
    calls = []
    orig = sn_mod._SpectralNormFP32.forward

    def counting(self, weight):
        if self.training:
            calls.append(id(self))
        return orig(self, weight)

    sn_mod._SpectralNormFP32.forward = counting
    try:
        train_iteration(exp)
    finally:
        sn_mod._SpectralNormFP32.forward = orig
    layers = {id(m) for m in exp.D.modules() if isinstance(m, sn_mod._SpectralNormFP32)}
    u = {n: b.clone() for n, b in exp.D.named_buffers() if n.endswith("._u")}
    return len(calls) // len(layers), cfg["objective"]["n_dis"], u


@pytest.mark.parametrize("setting", ["A", "C"])
def test_per_step_is_one_power_step_per_optimizer_step_and_per_call_one_per_d_call(tmp_path, setting):
    steps, n_dis, _ = _power_steps_per_iteration(tmp_path, "per-step", setting)
    assert steps == n_dis + 1  # one per D step, one in the G step
    steps, n_dis, _ = _power_steps_per_iteration(tmp_path, "per-call", setting)
    assert steps == 2 * n_dis + 1  # D(real) and D(fake) in each D step, D(G(z)) in the G step


def test_the_schedules_leave_different_singular_vectors(tmp_path):
    _, _, u_step = _power_steps_per_iteration(tmp_path, "per-step", "C")
    _, _, u_call = _power_steps_per_iteration(tmp_path, "per-call", "C")
    assert u_step.keys() == u_call.keys()
    assert any(not torch.allclose(u_step[k], u_call[k]) for k in u_step)


def test_an_unknown_schedule_is_refused():
    with pytest.raises(ConfigError, match="power_iteration"):
        resolve("sngan/cifar10-cnn-sn", ["train.power_iteration=per-forward"])
