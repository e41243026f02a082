"""The harness logic of the ``wgan-gp`` whole-update rows (benchmarks/reference_equivalence/sec_wgan_gp.py),
without the reference stack: the reference order given to ganworks' objective from outside, the replayed
interpolation weights α, and the BN running means less their BN-fed biases' part."""

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "reference_equivalence"))
import sec_wgan_gp as W  # noqa: E402
from harness import Draws  # noqa: E402

from ganworks import regularizers  # noqa: E402
from ganworks.objectives.gan import GAN  # noqa: E402


def _toy_gan(n_dis=3):
    torch.manual_seed(0)
    G, D = torch.nn.Linear(4, 6), torch.nn.Linear(6, 1)
    draws = []

    def sample_z(n, device=None):
        draws.append(torch.randn(n, 4))
        return draws[-1]

    G.sample_z = sample_z
    obj = GAN(G, D, loss="wasserstein", n_dis=n_dis)
    obj.batch_size = 5
    outputs = []
    G.register_forward_hook(lambda m, i, o: outputs.append(o.detach().clone()))
    return obj, G, draws, outputs


def test_reference_order_reuses_the_g_steps_fakes_in_the_next_d_step_only():
    obj, G, draws, outputs = _toy_gan()
    W.give_reference_order(obj)
    batch = {"x": torch.randn(5, 6)}
    for _ in range(2):  # two updates: G, D, D, D
        obj.loss("g", None)
        g_fakes = outputs[-1]
        n_z = len(draws)
        with torch.no_grad():
            first = obj.fake(5, "cpu")  # what the first D step gets
        assert len(draws) == n_z and torch.equal(first, g_fakes) and not first.requires_grad
        obj.loss("d", batch)  # the stash is used up: this D step draws fresh fakes
        assert len(draws) == n_z + 1
        with torch.no_grad():
            later = obj.fake(5, "cpu")
        assert len(draws) == n_z + 2 and not torch.equal(later, g_fakes)
        obj.loss("d", batch)
        # G changes between updates here: the next G step's fakes are new ones
        with torch.no_grad():
            for p in G.parameters():
                p.add_(0.1)


def test_ganworks_order_draws_fresh_fakes_for_every_d_step():
    obj, G, draws, outputs = _toy_gan()
    obj.loss("g", None)
    with torch.no_grad():
        obj.fake(5, "cpu")
    assert len(draws) == 2


def test_replayed_alpha_is_the_penalty_s_alpha_and_is_restored():
    torch.manual_seed(1)
    D = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 1))
    x, f, alpha = torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2), torch.rand(4)
    draws = Draws()
    draws.replay["alpha"].append(alpha)
    orig = regularizers.gradient_penalty
    with W.replayed_alpha(draws):
        got = regularizers.gradient_penalty(D, x, f, mode="wgan-gp")
    assert regularizers.gradient_penalty is orig
    assert not draws.replay["alpha"] and torch.equal(draws.record["alpha"][0], alpha)
    assert torch.equal(got, orig(D, x, f, mode="wgan-gp", alpha=alpha))


def test_running_mean_less_bias_removes_exactly_what_the_bias_puts_in():
    """Two sides with the same weights and inputs but different bias trajectories (as the BN-fed biases'
    rounding-noise steps make them): their running means differ, less the bias part they agree."""
    rs = np.random.RandomState(0)
    n_dis, updates = 5, W.UPDATES
    sides, init = [], {}
    lin_inputs = {bn: [rs.randn(8, 3) for _ in range(updates * n_dis)] for bn in W.BN_BIAS}
    weights = {bn: rs.randn(4, 3) for bn in W.BN_BIAS}
    for lin in W.BN_BIAS.values():
        init[f"G{lin}/b"] = np.zeros(4)
    for _ in range(2):
        side = {}
        for bn, lin in W.BN_BIAS.items():
            layer, norm = torch.nn.Linear(3, 4).double(), torch.nn.BatchNorm1d(4, momentum=0.1).double()
            with torch.no_grad():
                layer.weight.copy_(torch.from_numpy(weights[bn]))
                layer.bias.zero_()
            for t in range(updates):
                for i in range(n_dis):  # reference order: forward 0 with the old bias, then the G step moves it
                    norm(layer(torch.from_numpy(lin_inputs[bn][t * n_dis + i])))
                    if i == 0:
                        with torch.no_grad():
                            layer.bias.add_(torch.from_numpy(rs.randn(4) * 1e-3))
                side[f"t{t}/G{lin}/b"] = layer.bias.detach().numpy().copy()
                side[f"t{t}/G{bn}/avg_mean"] = norm.running_mean.numpy().copy()
        sides.append(side)
    a, b = (W.running_mean_less_bias(s, init, n_dis) for s in sides)
    for t in range(updates):
        for bn in W.BN_BIAS:
            k = f"t{t}/G{bn}/avg_mean"
            assert np.max(np.abs(sides[0][k] - sides[1][k])) > 1e-5
            np.testing.assert_allclose(a[k + "_less_bias"], b[k + "_less_bias"], rtol=0, atol=1e-15)
