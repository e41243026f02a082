"""Spectral normalization (SN-GAN Algorithm 1) against independent computations."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganworks.nn.spectral_norm import apply_spectral_norm, is_spectral_normed, spectral_norm, spectral_norms


def _layers():
    """(name, layer factory, input factory, weight→(out × rest) matrix written independently)."""
    return [
        ("linear", lambda: nn.Linear(7, 5), lambda: torch.randn(3, 7), lambda w: w),
        (
            "conv2d",
            lambda: nn.Conv2d(3, 4, 3, padding=1),
            lambda: torch.randn(2, 3, 5, 5),
            lambda w: w.reshape(w.shape[0], -1),
        ),
        (
            "convtranspose2d",
            lambda: nn.ConvTranspose2d(4, 3, 4, stride=2, padding=1),
            lambda: torch.randn(2, 4, 3, 3),
            lambda w: w.transpose(0, 1).reshape(w.shape[1], -1),  # (in, out, kh, kw) → (out, in·kh·kw)
        ),
        ("embedding", lambda: nn.Embedding(6, 4), lambda: torch.tensor([0, 3, 5]), lambda w: w),
    ]


def _raw(layer):
    return layer.parametrizations.weight.original


def _uv(layer):
    sn = layer.parametrizations.weight[0]
    return sn._u, sn._v


@pytest.mark.parametrize("name,make,inp,as_matrix", _layers(), ids=[c[0] for c in _layers()])
def test_power_iteration_converges_to_largest_singular_value(name, make, inp, as_matrix):
    torch.manual_seed(0)
    layer = spectral_norm(make())
    layer.train()
    x = inp()
    for _ in range(200):
        layer(x)
    w_mat = as_matrix(_raw(layer).detach())
    sigma_true = torch.linalg.svdvals(w_mat)[0]
    sigma_hat = spectral_norms(layer)["weight"]
    assert abs(sigma_hat - sigma_true.item()) <= 1e-3 * sigma_true.item()
    # u indexes the output axis, v the flattened input axes
    u, v = _uv(layer)
    assert u.shape == (w_mat.shape[0],) and v.shape == (w_mat.shape[1],)
    # the normalised weight's largest singular value is 1
    layer.eval()
    normalized = as_matrix(layer.weight.detach())
    assert abs(torch.linalg.svdvals(normalized)[0].item() - 1.0) <= 1e-3
    assert abs(spectral_norms(layer, normalized=True)["weight"] - 1.0) <= 1e-3


def test_one_training_forward_is_one_power_step():
    """u ← Wv/‖Wv‖, v ← Wᵀu/‖Wᵀu‖, then y = x (W/uᵀWv)ᵀ + b — recomputed by hand."""
    torch.manual_seed(1)
    layer = spectral_norm(nn.Linear(6, 4)).train()
    w = _raw(layer).detach().clone()
    u0, v0 = (t.clone() for t in _uv(layer))
    x = torch.randn(5, 6)
    y = layer(x)
    u1 = w @ v0
    u1 = u1 / u1.norm()
    v1 = w.T @ u1
    v1 = v1 / v1.norm()
    u, v = _uv(layer)
    torch.testing.assert_close(u, u1)
    torch.testing.assert_close(v, v1)
    assert not torch.allclose(u, u0)
    sigma = u1 @ w @ v1
    torch.testing.assert_close(y, x @ (w / sigma).T + layer.bias)


def test_eval_mode_leaves_u_and_v_unchanged():
    torch.manual_seed(2)
    layer = spectral_norm(nn.Conv2d(3, 5, 3)).eval()
    u0, v0 = (t.clone() for t in _uv(layer))
    x = torch.randn(2, 3, 6, 6)
    y1 = layer(x)
    y2 = layer(x)
    u, v = _uv(layer)
    assert torch.equal(u, u0) and torch.equal(v, v0)
    torch.testing.assert_close(y1, y2)
    # a training forward does move them (the test above would pass trivially otherwise)
    layer.train()(x)
    assert not torch.equal(_uv(layer)[0], u0)


def test_spectral_norms_reads_without_a_power_step():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 1))
    apply_spectral_norm(model).train()
    model(torch.randn(2, 3, 6, 6))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    norms = spectral_norms(model)
    assert set(norms) == {"0", "3"}
    for key, layer in (("0", model[0]), ("3", model[3])):
        u, v = _uv(layer)
        w_mat = _raw(layer).detach().reshape(u.numel(), -1)
        assert norms[key] == pytest.approx(float(u @ w_mat @ v), rel=1e-6)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_apply_spectral_norm_covers_every_weight_layer_once():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.BatchNorm2d(4),
        nn.ConvTranspose2d(4, 2, 4),
        nn.Flatten(),
        nn.Linear(8, 1),
        nn.Embedding(3, 2),
    )
    assert apply_spectral_norm(model) is model
    assert [is_spectral_normed(m) for m in (model[0], model[2], model[4], model[5])] == [True] * 4
    assert not hasattr(model[1], "parametrizations")
    apply_spectral_norm(model)  # idempotent
    assert len(model[0].parametrizations.weight) == 1
    with pytest.raises(ValueError):
        spectral_norm(model[0])


def _two_layer_d():
    return apply_spectral_norm(
        nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.LeakyReLU(0.1), nn.Flatten(), nn.Linear(4 * 4 * 4, 1))
    )


def test_state_dict_round_trip_reproduces_outputs():
    torch.manual_seed(4)
    a = _two_layer_d().train()
    x = torch.randn(3, 3, 4, 4)
    for _ in range(3):
        a(x)
    state = a.state_dict()
    assert any(k.endswith("._u") for k in state) and any(k.endswith("._v") for k in state)
    torch.manual_seed(5)
    b = _two_layer_d()
    b.load_state_dict(state)
    a.eval(), b.eval()
    torch.testing.assert_close(b(x), a(x), rtol=0, atol=0)
    a.train(), b.train()  # the next power step starts from the same u, v
    torch.testing.assert_close(b(x), a(x), rtol=0, atol=0)


def test_deepcopy_is_independent_and_equal():
    torch.manual_seed(6)
    a = _two_layer_d().train()
    x = torch.randn(2, 3, 4, 4)
    a(x)
    b = copy.deepcopy(a)
    a.eval(), b.eval()
    torch.testing.assert_close(b(x), a(x), rtol=0, atol=0)
    u_a = _uv(a[0])[0].clone()
    b.train()(x)
    assert torch.equal(_uv(a[0])[0], u_a)
    assert not torch.equal(_uv(b[0])[0], u_a)


def test_gradient_flows_through_w_with_u_v_constant():
    torch.manual_seed(7)
    layer = spectral_norm(nn.Linear(6, 4)).train()
    x = torch.randn(5, 6)
    r = torch.randn(5, 4)
    (layer(x) * r).sum().backward()
    u, v = (t.clone() for t in _uv(layer))
    assert not u.requires_grad and not v.requires_grad

    w = _raw(layer).detach().clone().requires_grad_(True)
    (F.linear(x, w / (u @ w @ v), layer.bias.detach()) * r).sum().backward()
    torch.testing.assert_close(_raw(layer).grad, w.grad)

    # σ is in the graph: detaching it gives a different gradient
    w2 = _raw(layer).detach().clone().requires_grad_(True)
    (F.linear(x, w2 / (u @ w2 @ v).detach(), layer.bias.detach()) * r).sum().backward()
    assert not torch.allclose(w.grad, w2.grad, atol=1e-4)


def test_two_forwards_then_one_backward():
    """D(real) and D(fake) in one loss (two power steps) must backpropagate (docs/papers.md §C.1)."""
    d = _two_layer_d().train()
    loss = d(torch.randn(2, 3, 4, 4)).mean() - d(torch.randn(2, 3, 4, 4)).mean()
    loss.backward()
    assert d[0].parametrizations.weight.original.grad is not None
