"""SN-paper baselines in ganworks.regularizers: gradient penalty, weight clipping, orthonormal."""

import pytest
import torch
from torch import nn

from ganworks.regularizers import (
    GRADIENT_PENALTY_WEIGHT,
    WEIGHT_CLIP,
    clip_weights_,
    gradient_penalty,
    orthonormal_init_,
    orthonormal_penalty,
)


class _TinyD(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.out = nn.Linear(3 * 4 * 4, 1)

    def forward(self, x, with_features=False):
        return self.out(torch.tanh(self.conv(x)).flatten(1)).view(-1)


def test_constants_match_the_paper():
    assert GRADIENT_PENALTY_WEIGHT == 10.0 and WEIGHT_CLIP == 0.01


def test_gradient_penalty_of_a_linear_critic_is_analytic():
    """D(x) = w·x + b has ∇D = w everywhere: the penalty is (‖w‖ − c)² and its w-gradient
    2(‖w‖ − c)·w/‖w‖."""
    torch.manual_seed(0)
    d = nn.Sequential(nn.Flatten(), nn.Linear(12, 1))
    real, fake = torch.randn(5, 3, 2, 2), torch.randn(5, 3, 2, 2)
    for center in (1.0, 0.0, 0.3):
        d.zero_grad()
        pen = gradient_penalty(d, real, fake, center=center)
        w = d[1].weight.detach()[0]
        assert pen.item() == pytest.approx((w.norm().item() - center) ** 2, rel=1e-5)
        pen.backward()
        expected = 2 * (w.norm() - center) * w / w.norm()
        torch.testing.assert_close(d[1].weight.grad[0], expected)


def test_gradient_penalty_matches_per_example_jacobians():
    torch.manual_seed(1)
    d = _TinyD()
    real, fake = torch.randn(4, 2, 4, 4), torch.randn(4, 2, 4, 4)
    alpha = torch.rand(4)
    pen = gradient_penalty(d, real, fake, alpha=alpha)
    norms = []
    for i in range(4):
        x_hat = alpha[i] * real[i : i + 1] + (1 - alpha[i]) * fake[i : i + 1]
        jac = torch.autograd.functional.jacobian(lambda x: d(x).sum(), x_hat)
        norms.append(jac.flatten().norm())
    expected = ((torch.stack(norms) - 1) ** 2).mean()
    torch.testing.assert_close(pen, expected)
    # one α ~ U[0, 1) per example when not given
    torch.manual_seed(5)
    drawn = gradient_penalty(d, real, fake)
    torch.manual_seed(5)
    torch.testing.assert_close(drawn, gradient_penalty(d, real, fake, alpha=torch.rand(4)))
    assert not torch.allclose(drawn, pen)


def test_gradient_penalty_trains_d_only_and_modes():
    torch.manual_seed(2)
    d = _TinyD()
    g = nn.Linear(8, 2 * 4 * 4)
    fake = g(torch.randn(3, 8)).view(3, 2, 4, 4)
    real = torch.randn(3, 2, 4, 4)
    alpha = torch.rand(3)
    pen = gradient_penalty(d, real, fake, alpha=alpha, mode="wgan-gp")
    pen.backward()
    assert g.weight.grad is None
    assert d.conv.weight.grad is not None and d.conv.weight.grad.abs().sum() > 0
    # GAN-GP uses the same penalty (paired with the standard loss by the caller)
    torch.testing.assert_close(gradient_penalty(d, real, fake, alpha=alpha, mode="gan-gp"), pen.detach())
    with pytest.raises(ValueError):
        gradient_penalty(d, real, fake, mode="dragan")
    with pytest.raises(ValueError):
        gradient_penalty(d, real, fake, alpha=torch.rand(2))


def test_clip_weights_keeps_every_weight_in_range():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 1)
    model[1].weight.requires_grad_(False)  # a fixed gain is not clipped
    fixed = model[1].weight.clone()
    before = {n: p.clone() for n, p in model.named_parameters()}
    assert clip_weights_(model, c=0.05) is model
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        assert p.min() >= -0.05 and p.max() <= 0.05, name
        inside = before[name].abs() <= 0.05
        assert torch.equal(p[inside], before[name][inside])
        assert torch.equal(p[~inside], 0.05 * before[name][~inside].sign())
    assert torch.equal(model[1].weight, fixed)
    assert model[0].weight.abs().max() == 0.05  # something was actually clipped


def test_orthonormal_penalty_hand_computation():
    lin = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 2.0], [0.0, 1.0]]))
    # WᵀW = [[1, 2], [2, 5]]; WᵀW − I = [[0, 2], [2, 4]]; squares sum to 0 + 4 + 4 + 16
    assert orthonormal_penalty(lin).item() == pytest.approx(24.0)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.6, -0.8], [0.8, 0.6]]))
    assert orthonormal_penalty(lin).item() == pytest.approx(0.0, abs=1e-6)


def _direct(model):
    """Σ ‖WᵀW − I‖²_F with the full d_in × d_in Gram, written out independently."""
    total = 0.0
    for m in model.modules():
        if isinstance(m, nn.ConvTranspose2d):
            w = m.weight.transpose(0, 1).reshape(m.weight.shape[1], -1)
        elif isinstance(m, (nn.Conv2d, nn.Linear)):
            w = m.weight.reshape(m.weight.shape[0], -1)
        else:
            continue
        total = total + ((w.T @ w - torch.eye(w.shape[1])) ** 2).sum()
    return total


def test_orthonormal_penalty_matches_direct_formula_and_gradient():
    torch.manual_seed(4)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ConvTranspose2d(4, 2, 2), nn.Flatten(), nn.Linear(5, 7), nn.BatchNorm1d(7)
    )
    pen = orthonormal_penalty(model)
    ref = _direct(model)
    torch.testing.assert_close(pen, ref)
    (g1,) = torch.autograd.grad(pen, model[0].weight)
    (g2,) = torch.autograd.grad(_direct(model), model[0].weight)
    torch.testing.assert_close(g1, g2)


def test_orthonormal_init():
    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ConvTranspose2d(6, 2, 2), nn.Linear(5, 7), nn.Linear(7, 3))
    biases = [m.bias.clone() for m in model]
    assert orthonormal_init_(model) is model
    conv_w = model[0].weight.reshape(4, -1)  # wide: orthonormal rows
    torch.testing.assert_close(conv_w @ conv_w.T, torch.eye(4), atol=1e-5, rtol=0)
    deconv_w = model[1].weight.transpose(0, 1).reshape(2, -1)  # (out, in·k·k), wide
    torch.testing.assert_close(deconv_w @ deconv_w.T, torch.eye(2), atol=1e-5, rtol=0)
    tall = model[2].weight  # 7 × 5: orthonormal columns
    torch.testing.assert_close(tall.T @ tall, torch.eye(5), atol=1e-5, rtol=0)
    for m, b in zip(model, biases):
        assert torch.equal(m.bias, b)
    # the penalty is then only the constant Σ (d_in − d_out) over wide matrices
    assert orthonormal_penalty(model).item() == pytest.approx((27 - 4) + (24 - 2) + 0 + (7 - 3), abs=1e-3)
