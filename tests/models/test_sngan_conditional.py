"""Class-conditional SN-GAN ResNets (sngan_projection's released 32/64/128 models) at tiny width:
the projection and concat discriminators against a hand computation, the conditional generator."""

import pytest
import torch
import torch.nn.functional as F

from ganworks.models import build_model
from ganworks.models.sngan_resnet import resnet_discriminator, resnet_generator
from ganworks.nn.conditional_batch_norm import CategoricalConditionalBatchNorm2d
from ganworks.nn.spectral_norm import is_spectral_normed
from ganworks.objectives import OBJECTIVES

TINY = 1 / 16


@pytest.mark.parametrize("image_size,n_blocks", [(32, 3), (64, 4), (128, 5)])
def test_conditional_generator(image_size, n_blocks):
    torch.manual_seed(0)
    g = resnet_generator(image_size=image_size, width=TINY, num_classes=5).train()
    assert len(g.blocks) == n_blocks
    cbns = [m for m in g.modules() if isinstance(m, CategoricalConditionalBatchNorm2d)]
    assert len(cbns) == 2 * n_blocks  # every block's two BNs; the last BN stays plain
    assert not isinstance(g.bn, CategoricalConditionalBatchNorm2d)
    z, y = g.sample_z(4), torch.tensor([0, 1, 2, 4])
    x = g(z, y)
    assert x.shape == (4, 3, image_size, image_size)
    x.square().mean().backward()
    assert cbns[0].gammas.weight.grad[3].abs().sum() == 0 and cbns[0].gammas.weight.grad[4].abs().sum() > 0
    g.eval()
    with torch.no_grad():
        for m in cbns:
            m.betas.weight[1].add_(0.5)
        a, b = g(z[:1], torch.tensor([0])), g(z[:1], torch.tensor([1]))
    assert not torch.allclose(a, b)  # the class changes the image through the BN parameters
    assert g(z[:3]).shape == (3, 3, image_size, image_size)  # no classes: uniform ones


def test_full_width_imagenet_shapes():
    g = resnet_generator(image_size=128, num_classes=1000)
    assert g.dense.out_features == 4 * 4 * 1024
    assert [b.c2.out_channels for b in g.blocks] == [1024, 512, 256, 128, 64]
    d = resnet_discriminator(image_size=128, num_classes=1000, norm="none")
    assert [b.c2.out_channels for b in d.blocks] == [64, 128, 256, 512, 1024, 1024]
    assert [b.downsample for b in d.blocks[1:]] == [True, True, True, True, False]
    assert d.embed.weight.shape == (1000, 1024) and d.out.bias is not None
    d64 = resnet_discriminator(image_size=64, num_classes=1000, norm="none")
    assert [b.c2.out_channels for b in d64.blocks] == [64, 128, 256, 512, 1024] and d64.blocks[-1].downsample
    g64 = resnet_generator(image_size=64, num_classes=1000)
    assert [b.c2.out_channels for b in g64.blocks] == [512, 256, 128, 64]
    dc = resnet_discriminator(image_size=128, num_classes=1000, conditioning="concat", norm="none")
    assert dc.embed.weight.shape == (1000, 128) and dc.blocks[3].c1.in_channels == 256 + 128


@pytest.mark.parametrize("image_size", [32, 64, 128])
def test_projection_discriminator_by_hand(image_size):
    torch.manual_seed(0)
    d = resnet_discriminator(image_size=image_size, width=TINY, num_classes=7).eval()
    assert is_spectral_normed(d.embed)
    x, y = torch.randn(3, 3, image_size, image_size), torch.tensor([6, 0, 3])
    logits, phi = d(x, y, with_features=True)
    uncond = d(x)
    # by hand: ψ(φ) = w·φ + b, plus ⟨E[y] / σ(E), φ⟩ with σ from the stored power-iteration vectors
    w = d.out.weight
    want_uncond = phi @ w.view(-1) + (d.out.bias if d.out.bias is not None else 0)
    E = d.embed.parametrizations.weight.original
    p = d.embed.parametrizations.weight[0]
    sigma = torch.dot(p._u, E @ p._v)
    want = want_uncond + ((E[y] / sigma) * phi).sum(dim=1)
    torch.testing.assert_close(uncond, want_uncond, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(logits, want, rtol=1e-5, atol=1e-5)


def test_concat_discriminator_by_hand():
    torch.manual_seed(0)
    d = resnet_discriminator(image_size=64, width=TINY, num_classes=5, conditioning="concat", embed_dim=6).eval()
    x, y = torch.randn(2, 3, 64, 64), torch.tensor([4, 1])
    got = d(x, y)
    E = d.embed.parametrizations.weight.original
    p = d.embed.parametrizations.weight[0]
    e = E[y] / torch.dot(p._u, E @ p._v)
    h = x
    for block in d.blocks[:3]:
        h = block(h)
    h = torch.cat([h, e.view(2, 6, 1, 1).expand(2, 6, h.shape[2], h.shape[3])], dim=1)
    for block in d.blocks[3:]:
        h = block(h)
    want = d.out(F.relu(h).sum(dim=(2, 3))).view(-1)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(d(x, torch.tensor([0, 0])), got)
    with pytest.raises(ValueError):
        d(x)


def test_builders_and_objective():
    g = build_model("sngan-resnet-g", image_size=32, width=TINY, num_classes=3)
    d = build_model("sngan-resnet-d", image_size=32, width=TINY, num_classes=3)
    obj = OBJECTIVES["conditional-gan"](g, d, n_dis=2, n_gen_samples=6)
    assert obj.schedule == ("g", "d", "d")
    torch.manual_seed(0)
    batch = {"x": torch.rand(4, 3, 32, 32) * 2 - 1, "y": torch.tensor([0, 1, 2, 0])}
    seen = []
    d.register_forward_pre_hook(lambda m, args: seen.append((args[0].shape[0], args[1])))
    loss, logs = obj.loss("d", batch)
    assert torch.isfinite(loss) and seen[0][0] == 4 and torch.equal(seen[0][1], batch["y"])
    assert seen[1][0] == 4 and seen[1][1].min() >= 0 and seen[1][1].max() < 3
    seen.clear()
    obj.loss("g", None)
    assert seen[0][0] == 6
    with pytest.raises(ValueError):
        OBJECTIVES["conditional-gan"](resnet_generator(width=TINY), d)
