"""train.compile: the compiled step equals the eager one; compile=false equals the step before it."""

import json
import warnings

import pytest
import torch
from torch.nn.utils import parametrize

from ganworks.cli import main
from ganworks.config import DEFAULTS, resolve, with_defaults
from ganworks.errors import ConfigError
from ganworks.nn.noise import GaussianNoise
from ganworks.train import Experiment, load_checkpoint
from ganworks.train import compiled as compiled_mod
from ganworks.train.compiled import PhaseLoss, compile_update_wanted, compile_wanted
from ganworks.train.loop import train_iteration

CPU = torch.device("cpu")


class OldAdam(torch.optim.Optimizer):
    """The reference's Adam exactly as ganworks computed it before the scratch buffers."""

    def __init__(self, params, lr, betas, eps):
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps})

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            beta1, beta2 = group["betas"]
            grads, ms, vs = [], [], []
            for p in params:
                st = self.state[p]
                if not st:
                    st["step"], st["exp_avg"], st["exp_avg_sq"] = (
                        torch.zeros(()),
                        torch.zeros_like(p),
                        torch.zeros_like(p),
                    )
                st["step"] += 1
                grads.append(p.grad), ms.append(st["exp_avg"]), vs.append(st["exp_avg_sq"])
            t = float(self.state[params[0]]["step"])
            torch._foreach_lerp_(ms, grads, 1 - beta1)
            torch._foreach_mul_(vs, beta2)
            torch._foreach_addcmul_(vs, grads, grads, value=1 - beta2)
            denom = torch._foreach_div(vs, 1 - beta2**t)
            torch._foreach_add_(denom, group["eps"])
            torch._foreach_sqrt_(denom)
            torch._foreach_addcdiv_(params, ms, denom, value=-group["lr"] / (1 - beta1**t))


def _old_step(exp):
    """One iteration as train_iteration did it before train.compile (D then G, cached parametrizations)."""
    pos, obj = exp.position, exp.objective
    batch = None
    losses = []
    for phase in obj.schedule:
        if phase == "d":
            batch = exp.stream.batch(pos["epoch"], pos["index"])
            pos["index"] += 1
        frozen = exp.params["g" if phase == "d" else "d"]
        for p in frozen:
            p.requires_grad_(False)
        with parametrize.cached():
            loss, _ = obj.loss(phase, batch)
        exp.optimizers[phase].zero_grad(set_to_none=True)
        loss.backward()
        exp.optimizers[phase].step()
        for p in frozen:
            p.requires_grad_(True)
        if phase in exp.ema:
            exp.ema[phase].update(exp.D if phase == "d" else exp.G)
        losses.append(loss.detach())
    return losses


def _params(exp):
    return [t.detach().clone() for m in (exp.G, exp.D, exp.ema["d"].model) for t in m.state_dict().values()]


def test_compile_false_is_bit_identical_to_the_step_before(tiny_digits, monkeypatch):
    cfg = resolve("improved-gan/mnist-100", tiny_digits + ["train.iterations=10", "train.compile=false"])
    new = Experiment(cfg, CPU)
    assert not new.phase_loss.is_compiled
    new_losses = [train_iteration(new) for _ in range(5)]

    old = Experiment(cfg, CPU)
    o = cfg["optim"]
    old.optimizers = {k: OldAdam(old.params[k], o["lr"], (o["beta1"], o["beta2"]), o["eps"]) for k in ("d", "g")}
    monkeypatch.setattr(
        GaussianNoise,
        "forward",
        lambda self, x: x + self.sigma * torch.randn_like(x) if self.training and self.sigma else x,
    )
    old_losses = [_old_step(old) for _ in range(5)]

    for a, b in zip(_params(new), _params(old)):
        assert torch.equal(a, b)
    for step_new, step_old in zip(new_losses, old_losses):
        assert [torch.equal(logs[f"loss_{ph}"], l) for (ph, logs), l in zip(step_new, step_old)] == [True, True]


@pytest.mark.slow
def test_compiled_step_matches_eager_and_checkpoints_interchange(tiny_digits):
    pytest.importorskip("torch._inductor")
    base = resolve("improved-gan/mnist-100", tiny_digits + ["train.iterations=10"])
    # each Experiment seeds the RNG: build and run one after the other (same noise draws)
    eager = Experiment(
        resolve("improved-gan/mnist-100", tiny_digits + ["train.iterations=10", "train.compile=false"]), CPU
    )
    eager_logs = [train_iteration(eager) for _ in range(4)]
    comp = Experiment(
        resolve("improved-gan/mnist-100", tiny_digits + ["train.iterations=10", "train.compile=true"]), CPU
    )
    assert comp.phase_loss.is_compiled and not eager.phase_loss.is_compiled
    assert comp.optimizers["d"]._compiled is not None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fallback to eager would warn: fail instead
        comp_logs = [train_iteration(comp) for _ in range(4)]
    for le, lc in zip(eager_logs, comp_logs):
        for (pe, a), (pc, b) in zip(le, lc):
            assert pe == pc and a.keys() == b.keys()
            for k in a:
                torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-5)
    assert comp.phase_loss.is_compiled and comp.optimizers["d"]._compiled is not None  # no silent fallback
    for a, b in zip(_params(eager), _params(comp)):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
    # the checkpoint state does not depend on compilation: a compiled run resumes eagerly
    state = comp.state_dict()
    assert state.keys() == eager.state_dict().keys()
    assert state["optimizers"]["d"]["state"][0].keys() == eager.state_dict()["optimizers"]["d"]["state"][0].keys()
    again = Experiment(base, CPU)
    again.load_state_dict(state)
    assert again.position == comp.position == {"iteration": 4, "epoch": 0, "index": 4}


def test_a_failing_compiler_warns_once_and_trains_eagerly_with_the_same_numbers(tiny_digits, monkeypatch):
    def broken_backend(gm, example_inputs):
        raise RuntimeError("no C compiler here")

    real_compile = torch.compile
    monkeypatch.setattr(compiled_mod.torch, "compile", lambda fn, **kw: real_compile(fn, backend=broken_backend))
    cfg = resolve("improved-gan/mnist-100", tiny_digits + ["train.iterations=10", "train.compile=false"])
    eager = Experiment(cfg, CPU)  # each Experiment seeds the RNG: build and run one after the other
    for _ in range(3):
        train_iteration(eager)
    exp = Experiment(cfg, CPU)
    exp.phase_loss = PhaseLoss(exp.objective, compile=True, device=CPU, models=(exp.G, exp.D))
    with pytest.warns(UserWarning, match="train.compile: compiling the D step failed.*no C compiler here") as rec:
        for _ in range(3):
            train_iteration(exp)
    assert len([w for w in rec if "train.compile" in str(w.message)]) == 1
    assert not exp.phase_loss.is_compiled
    for a, b in zip(_params(eager), _params(exp)):
        assert torch.equal(a, b)  # the RNG was rewound: same noise as a run that never tried


def test_compile_setting(tiny_digits):
    mnist = resolve("improved-gan/mnist-100")
    assert compile_wanted(mnist, CPU, 180_000) == (("cpu", "improved-gan-mnist-d") in compiled_mod.FASTER_COMPILED)
    assert not compile_wanted(mnist, CPU, 60)  # auto: too short to repay compiling
    assert not compile_wanted(resolve("sngan/cifar10-cnn-sn-A"), CPU, 100_000)
    assert not compile_wanted(resolve("improved-gan/mnist-100", ["train.compile=false"]), CPU, 180_000)
    assert compile_wanted(resolve("improved-gan/mnist-100", ["train.compile=true"]), CPU, 10)
    with pytest.raises(ConfigError, match="'train.compile' is 'sometimes'; allowed: true, false, 'auto', 'optimizer'"):
        resolve("improved-gan/mnist-100", ["train.compile=sometimes"])  # refused where the config is resolved
    edited = resolve("improved-gan/mnist-100")
    edited["train"]["compile"] = "sometimes"  # a config that skipped the checks (e.g. edited by hand)
    with pytest.raises(ConfigError, match="train.compile must be"):
        compile_wanted(edited, CPU, 10)
    # the optimizer's update alone: auto where measured faster (the MNIST step on CPU), "optimizer" anywhere
    assert ("cpu", "improved-gan-mnist-d") in compiled_mod.FASTER_COMPILED_UPDATE
    assert compile_update_wanted(mnist, CPU, 180_000) and not compile_update_wanted(mnist, CPU, 60)
    assert not compile_update_wanted(resolve("sngan/cifar10-cnn-sn-A"), CPU, 100_000)
    opt_only = resolve("sngan/cifar10-cnn-sn-A", ["train.compile=optimizer"])
    assert compile_update_wanted(opt_only, CPU, 10) and not compile_wanted(opt_only, CPU, 10)
    assert compile_update_wanted(resolve("improved-gan/mnist-100", ["train.compile=true"]), CPU, 10)
    assert not compile_update_wanted(resolve("improved-gan/mnist-100", ["train.compile=false"]), CPU, 180_000)
    with pytest.raises(ConfigError, match="train.compile must be"):
        compile_update_wanted(edited, CPU, 10)


def test_compiled_optimizer_update_alone_matches_eager(tiny_digits):
    """train.compile="optimizer": the phases stay eager, the fused Adam update gives eager's numbers."""
    pytest.importorskip("torch._inductor")
    eager = Experiment(
        resolve("improved-gan/mnist-100", tiny_digits + ["train.iterations=10", "train.compile=false"]), CPU
    )
    eager_logs = [train_iteration(eager) for _ in range(4)]
    comp = Experiment(
        resolve("improved-gan/mnist-100", tiny_digits + ["train.iterations=10", "train.compile=optimizer"]), CPU
    )
    assert not comp.phase_loss.is_compiled and eager.optimizers["d"]._compiled is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fallback to the eager update would warn: fail instead
        comp_logs = [train_iteration(comp) for _ in range(4)]
    assert all(opt._compiled is not None and opt._compiled_ok for opt in comp.optimizers.values())
    for le, lc in zip(eager_logs, comp_logs):
        for (pe, a), (pc, b) in zip(le, lc):
            assert pe == pc
            for k in a:
                torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-5)
    moved = False
    for a, b, p0 in zip(
        _params(eager),
        _params(comp),
        _params(
            Experiment(
                resolve("improved-gan/mnist-100", tiny_digits + ["train.iterations=10", "train.compile=false"]), CPU
            )
        ),
    ):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)
        moved |= not torch.allclose(a, p0, rtol=1e-4, atol=1e-6)
    assert moved  # the comparison is not between untrained models


def test_old_configs_get_new_keys_and_resume_with_compile_switched(tmp_path, tiny_digits):
    old = resolve("improved-gan/mnist-100", tiny_digits)
    del old["train"]["compile"]
    filled = with_defaults(old)
    assert filled["train"]["compile"] == DEFAULTS["train"]["compile"] == "auto"
    assert filled["model"] == old["model"] and filled["data"] == old["data"]

    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "improved-gan/mnist-100",
                "--out",
                str(run),
                "--no-progress",
                "--iterations",
                "4",
                *sum((["--set", s] for s in tiny_digits), []),
            ]
        )
        == 0
    )
    # as saved by ganworks before train.compile existed
    state = load_checkpoint(run)
    del state["config"]["train"]["compile"]
    torch.save(state, run / "checkpoints" / "last.pt")
    assert main(["train", "--resume", str(run), "--iterations", "6", "--no-progress", "--compile", "false"]) == 0
    assert load_checkpoint(run)["position"]["iteration"] == 6
    assert json.loads((run / "config.json").read_text())["train"]["compile"] is False
