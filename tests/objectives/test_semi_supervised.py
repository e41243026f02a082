"""The semi-supervised objective's D step: three forward passes, or one fused pass over the concatenation."""

import pytest
import torch

from ganworks import losses
from ganworks.models import build_model
from ganworks.objectives import OBJECTIVES


def _models(noise: float = 0.0):
    torch.manual_seed(0)
    G = build_model(name="improved-gan-mnist-g", width=0.1)
    D = build_model(name="improved-gan-mnist-d", width=0.1, input_noise=noise, hidden_noise=noise)
    return G, D


def _batch(n: int = 6):
    g = torch.Generator().manual_seed(1)
    return {
        "x_lab": torch.rand(n, 1, 28, 28, generator=g),
        "y_lab": torch.randint(0, 10, (n,), generator=g),
        "x_unl": torch.rand(n, 1, 28, 28, generator=g),
    }


def _d_step(fuse: bool, noise: float = 0.0):
    """loss, logs and D's gradients of one D step, G's samples drawn under the same seed"""
    G, D = _models(noise)
    obj = OBJECTIVES["semi-supervised"](G, D, fuse_d_passes=fuse)
    torch.manual_seed(5)
    total, logs = obj.d_loss(_batch())
    grads = torch.autograd.grad(total, [p for p in D.parameters() if p.requires_grad])
    return total, logs, grads


def test_fused_d_pass_gives_the_three_pass_loss_and_gradients():
    # without noise both are deterministic: the fused pass must be the same function of the weights
    t3, logs3, g3 = _d_step(fuse=False)
    t1, logs1, g1 = _d_step(fuse=True)
    torch.testing.assert_close(t1, t3, rtol=1e-5, atol=1e-6)
    for k in logs3:
        torch.testing.assert_close(logs1[k], logs3[k], rtol=1e-5, atol=1e-6)
    for a, b in zip(g1, g3):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_fused_d_pass_is_the_loss_formula_on_split_logits():
    # an independent computation: the loss from the formula on D applied to each batch alone
    G, D = _models()
    obj = OBJECTIVES["semi-supervised"](G, D, fuse_d_passes=True)
    batch = _batch()
    torch.manual_seed(5)
    total, _ = obj.d_loss(batch)
    torch.manual_seed(5)
    with torch.no_grad():
        fake = G(G.sample_z(6))
    lab, unl, gen = D(batch["x_lab"]), D(batch["x_unl"]), D(fake)
    lse = lambda x: torch.logsumexp(x, 1)  # noqa: E731
    sup = -(lab.gather(1, batch["y_lab"][:, None]).squeeze(1) - lse(lab)).mean()
    unsup = (-lse(unl) + torch.nn.functional.softplus(lse(unl))).mean() * 0.5 + torch.nn.functional.softplus(
        lse(gen)
    ).mean() * 0.5
    torch.testing.assert_close(total, sup + unsup, rtol=1e-5, atol=1e-6)
    expected = losses.semi_supervised_d_loss(lab, batch["y_lab"], unl, gen, 1.0, 1.0)[0]
    torch.testing.assert_close(total, expected, rtol=1e-5, atol=1e-6)


def test_fused_d_pass_gives_every_example_its_own_noise():
    G, D = _models(noise=0.5)
    obj = OBJECTIVES["semi-supervised"](G, D, fuse_d_passes=True)
    seen = []
    D.register_forward_hook(lambda m, i, o: seen.append(o))
    x = torch.rand(1, 1, 28, 28).expand(6, 1, 28, 28)
    obj.d_loss({"x_lab": x, "y_lab": torch.zeros(6, dtype=torch.long), "x_unl": x})
    (out,) = seen  # one forward pass over 18 examples
    assert out.shape == (18, 10)
    same_input = out[:12]  # 12 copies of one image: every row must differ (independent noise)
    assert torch.cdist(same_input, same_input).add(torch.eye(12)).min() > 0


def test_fusing_is_refused_for_a_discriminator_that_mixes_examples():
    G = build_model(name="improved-gan-cifar-g", width=0.1)
    D = build_model(name="improved-gan-cifar-d", variant="md", width=0.1)
    with pytest.raises(ValueError, match="fuse_d_passes"):
        OBJECTIVES["semi-supervised"](G, D, feature_matching="", fuse_d_passes=True)
