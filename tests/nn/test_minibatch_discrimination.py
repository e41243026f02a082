"""Minibatch discrimination against a plain double loop over the paper's formula (j ≠ i)."""

import math

import pytest
import torch
from torch import nn

from ganworks.nn.minibatch_discrimination import MinibatchDiscrimination
from ganworks.nn.weight_norm import data_dependent_init, weight_norm


def _layer(a=7, b=4, c=3, seed=0, randomise=True):
    torch.manual_seed(seed)
    layer = MinibatchDiscrimination(a, b, c).double()
    if randomise:  # exercise the log scale and the bias too
        with torch.no_grad():
            layer.log_weight_scale.normal_(0.0, 0.5)
            layer.bias.normal_(0.0, 1.0)
    return layer


def _loop_reference(layer, x):
    """o[i, b] = Σ_{j≠i} exp(−Σ_c |M[i,b,c] − M[j,b,c]|) + bias[b], with T written out by hand."""
    theta = layer.theta.detach()
    s = layer.log_weight_scale.detach()
    a_dim, b_dim, c_dim = theta.shape
    n = x.shape[0]
    t = torch.empty_like(theta)
    for b in range(b_dim):
        for c in range(c_dim):
            col = theta[:, b, c]
            t[:, b, c] = col * math.exp(s[b, c].item()) / math.sqrt(float((col * col).sum()))
    m = torch.zeros(n, b_dim, c_dim, dtype=x.dtype)
    for i in range(n):
        for b in range(b_dim):
            for c in range(c_dim):
                m[i, b, c] = sum(float(x[i, k]) * float(t[k, b, c]) for k in range(a_dim))
    o = torch.zeros(n, b_dim, dtype=x.dtype)
    for i in range(n):
        for b in range(b_dim):
            total = 0.0
            for j in range(n):
                if j == i:
                    continue
                d = sum(abs(float(m[i, b, c] - m[j, b, c])) for c in range(c_dim))
                total += math.exp(-d)
            o[i, b] = total + float(layer.bias.detach()[b])
    return o


def test_forward_matches_double_loop():
    layer = _layer()
    x = torch.randn(6, 7, dtype=torch.float64)
    out = layer(x)
    assert out.shape == (6, 7 + 4)
    assert torch.equal(out[:, :7], x)  # the input features pass through unchanged
    torch.testing.assert_close(out[:, 7:], _loop_reference(layer, x), rtol=1e-10, atol=1e-12)


def test_self_pairs_excluded():
    layer = _layer(randomise=False)
    # One sample: nothing to compare with, so the minibatch features are the bias alone.
    x = torch.randn(1, 7, dtype=torch.float64)
    torch.testing.assert_close(layer(x)[:, 7:], layer.bias.detach().expand(1, 4))
    # Two identical samples: each sees the other at distance 0 -> 1 + bias (the paper's sum,
    # including j = i, would give 2 + bias).
    x2 = torch.randn(1, 7, dtype=torch.float64).repeat(2, 1)
    torch.testing.assert_close(layer(x2)[:, 7:], (1.0 + layer.bias.detach()).expand(2, 4))


def test_flattens_input_and_weight_norm_over_input_axis():
    layer = _layer()
    x = torch.randn(5, 7, dtype=torch.float64)
    torch.testing.assert_close(layer(x.view(5, 7, 1, 1)), layer(x))
    t = layer.weight().detach()
    torch.testing.assert_close(t.norm(dim=0), layer.log_weight_scale.detach().exp())
    before = layer(x)
    with torch.no_grad():  # rescaling θ per (b, c) column does not change T
        layer.theta.mul_(torch.rand(1, 4, 3, dtype=torch.float64) * 3 + 0.1)
    torch.testing.assert_close(layer(x), before)


def test_initial_parameters():
    torch.manual_seed(1)
    layer = MinibatchDiscrimination(192)
    assert layer.theta.shape == (192, 100, 5)
    assert abs(layer.theta.std().item() - 0.05) < 0.002
    assert torch.equal(layer.log_weight_scale, torch.zeros(100, 5))
    assert torch.equal(layer.bias, torch.full((100,), -1.0))
    assert all(p.requires_grad for p in layer.parameters())
    assert layer.out_features == 292


def test_gradients_match_finite_differences():
    layer = _layer(a=4, b=2, c=3)
    x = torch.randn(4, 4, dtype=torch.float64, requires_grad=True)
    params = (layer.theta, layer.log_weight_scale, layer.bias)

    def f(inp, theta, s, b):
        return torch.func.functional_call(layer, {"theta": theta, "log_weight_scale": s, "bias": b}, (inp,))

    torch.autograd.gradcheck(f, (x, *params))


def _mean_nearest_l1(layer, x):
    t = layer.weight().detach()
    m = torch.einsum("na,abc->nbc", x, t)
    n = x.shape[0]
    d = (m[:, None] - m[None, :]).abs().sum(-1)  # (n, n, B)
    d = d + torch.diag(torch.full((n,), float("inf"), dtype=x.dtype))[:, :, None]
    return d.min(dim=1).values.mean(dim=0)  # (B,)


def test_data_dependent_init_sets_mean_nearest_distance_2_and_zero_mean_features():
    layer = _layer(a=8, b=5, c=4, randomise=False)
    x = torch.randn(30, 8, dtype=torch.float64)
    assert not torch.allclose(_mean_nearest_l1(layer, x), torch.full((5,), 2.0, dtype=torch.float64))
    out = layer.data_dependent_init_(x)
    torch.testing.assert_close(_mean_nearest_l1(layer, x), torch.full((5,), 2.0, dtype=torch.float64))
    after = layer(x)
    torch.testing.assert_close(out, after)
    torch.testing.assert_close(after[:, 8:].mean(dim=0), torch.zeros(5, dtype=torch.float64))
    # the bias is minus the batch mean of Σ_{j≠i} exp(−d) with the new scale
    ref = _loop_reference(layer, x[:6]) - layer.bias.detach()  # sanity: loop agrees after init too
    torch.testing.assert_close(layer(x[:6])[:, 8:] - layer.bias.detach(), ref)
    # the log scale absorbed the same factor for every dim of a kernel
    s = layer.log_weight_scale.detach()
    torch.testing.assert_close(s, s[:, :1].expand_as(s))


def test_model_level_init_runs_minibatch_and_weight_norm_layers_in_order():
    torch.manual_seed(2)
    model = nn.Sequential(
        weight_norm(nn.Linear(6, 10), train_scale=False, weight_std=0.05),
        nn.LeakyReLU(0.2),
        MinibatchDiscrimination(10, 4, 3),
        weight_norm(nn.Linear(14, 3), train_scale=True, init_scale=0.1, weight_std=0.05),
    ).double()
    x = torch.randn(40, 6, dtype=torch.float64)
    out = data_dependent_init(model, x)
    mbd = model[2]
    h = model[1](model[0](x))
    torch.testing.assert_close(_mean_nearest_l1(mbd, h), torch.full((4,), 2.0, dtype=torch.float64))
    torch.testing.assert_close(mbd(h)[:, 10:].mean(0), torch.zeros(4, dtype=torch.float64))
    # the output layer was initialised on the already-initialised minibatch features
    torch.testing.assert_close(out, model(x))
    torch.testing.assert_close(out.std(dim=0, unbiased=False), torch.full((3,), 0.1, dtype=torch.float64))
    # hooks are gone: a second forward changes nothing
    bias = mbd.bias.detach().clone()
    model(torch.randn(40, 6, dtype=torch.float64))
    assert torch.equal(mbd.bias, bias)


def test_init_needs_two_samples():
    with pytest.raises(ValueError):
        _layer().data_dependent_init_(torch.randn(1, 7, dtype=torch.float64))
