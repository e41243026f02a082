"""SN-GAN standard CNN (SN-paper Table 3 / chainer-gan-lib) at tiny width."""

import pytest
import torch
from torch import nn

from ganworks.errors import ConfigError
from ganworks.models import build_model
from ganworks.models.sngan_cnn import D_NORMS, cnn_discriminator, cnn_generator
from ganworks.nn.spectral_norm import is_spectral_normed

TINY = 1 / 16


def _convs(d):
    return [m for m in d.body if isinstance(m, nn.Conv2d)]


@pytest.mark.parametrize("image_size", [32, 48])
@pytest.mark.parametrize("layout", ["paper", "chainer"])
def test_generator_shapes_and_range(image_size, layout):
    torch.manual_seed(0)
    g = cnn_generator(image_size=image_size, width=TINY, layout=layout)
    assert g.image_shape == (3, image_size, image_size) and g.z_dim == 128
    z = g.sample_z(4)
    assert z.shape == (4, 128)
    x = g(z)
    assert x.shape == (4, 3, image_size, image_size)
    assert x.abs().max() <= 1.0


def test_generator_layouts_differ_where_documented():
    torch.manual_seed(0)
    paper, chainer = cnn_generator(width=TINY), cnn_generator(width=TINY, layout="chainer")
    assert isinstance(paper.dense_post, nn.Identity)
    bn = chainer.dense_post[0]
    assert isinstance(bn, nn.BatchNorm1d) and bn.num_features == 4 * 4 * 32  # per unit over the dense output
    zc, zp = chainer.sample_z(4000), paper.sample_z(4000)
    assert zc.min() >= -1 and zc.max() <= 1 and zc.abs().max() > 0.99
    assert zp.abs().max() > 2.0  # N(0, I), not uniform
    assert abs(zp.std().item() - 1.0) < 0.02
    # the override wins over the layout
    assert cnn_generator(width=TINY, layout="chainer", z_distribution="normal").sample_z(4000).abs().max() > 2.0
    assert not isinstance(cnn_generator(width=TINY, dense_bn_relu=True).dense_post, nn.Identity)


def test_full_width_channel_progression_and_slope():
    paper = cnn_discriminator(norm="none")
    chainer = cnn_discriminator(norm="none", layout="chainer")
    assert [c.out_channels for c in _convs(paper)] == [64, 64, 128, 128, 256, 256, 512]
    assert [c.out_channels for c in _convs(chainer)] == [64, 128, 128, 256, 256, 512, 512]
    assert [c.stride[0] for c in _convs(paper)] == [1, 2, 1, 2, 1, 2, 1]
    assert [c.kernel_size[0] for c in _convs(paper)] == [3, 4, 3, 4, 3, 4, 3]
    assert paper.out.in_features == 4 * 4 * 512 and paper.out.bias is not None
    assert cnn_discriminator(norm="none", image_size=48, width=TINY).out.in_features == 6 * 6 * 32
    slopes = lambda d: {m.negative_slope for m in d.body if isinstance(m, nn.LeakyReLU)}  # noqa: E731
    assert slopes(paper) == {0.1} and slopes(chainer) == {0.2}
    assert slopes(cnn_discriminator(width=TINY, lrelu_slope=0.3)) == {0.3}
    # init N(0, 0.02²) on the largest layer
    w = paper.out.weight
    assert abs(w.std().item() - 0.02) < 0.001 and abs(w.mean().item()) < 0.001


def test_generator_full_width_shapes_and_init():
    g = cnn_generator()
    assert g.dense.out_features == 4 * 4 * 512
    assert [m.out_channels for m in g.body if isinstance(m, nn.ConvTranspose2d)] == [256, 128, 64]
    assert abs(g.dense.weight.std().item() - 0.02) < 0.001
    bns = [m for m in g.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert bns and all(b.eps == 2e-5 and b.momentum == 0.1 for b in bns)


@pytest.mark.parametrize("image_size", [32, 48])
@pytest.mark.parametrize("layout", ["paper", "chainer"])
@pytest.mark.parametrize("norm", D_NORMS)
def test_every_norm_builds_runs_and_backpropagates(norm, layout, image_size):
    torch.manual_seed(0)
    d = cnn_discriminator(image_size=image_size, width=TINY, layout=layout, norm=norm).train()
    x = torch.randn(4, 3, image_size, image_size, requires_grad=True)
    logits, feats = d(x, with_features=True)
    assert logits.shape == (4,)
    assert feats.shape == (4, d.feature_dim) and d.feature_dim == (image_size // 8) ** 2 * _convs(d)[-1].out_channels
    logits.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, p in d.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, name


def test_norm_placement():
    sn = cnn_discriminator(width=TINY)
    assert all(is_spectral_normed(m) for m in [*_convs(sn), sn.out])

    bn = cnn_discriminator(width=TINY, norm="batch")
    bns = [m for m in bn.body if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 6 and not isinstance(bn.body[1], nn.BatchNorm2d)  # none after the first conv
    assert all(not b.weight.requires_grad and torch.equal(b.weight, torch.ones_like(b.weight)) for b in bns)
    assert all(b.bias.requires_grad for b in bns)

    ln = cnn_discriminator(width=TINY, norm="layer")
    lns = [m for m in ln.body if isinstance(m, nn.GroupNorm)]
    assert len(lns) == 6 and all(m.num_groups == 1 and not m.weight.requires_grad for m in lns)

    wn = cnn_discriminator(width=TINY, norm="weight")
    for m in [*_convs(wn), wn.out]:
        w = m.weight.detach().flatten(1)  # W = V/‖V‖ per output unit: unit-norm rows
        torch.testing.assert_close(w.norm(dim=1), torch.ones(w.shape[0]))
    assert not any("original0" in n for n, p in wn.named_parameters() if p.requires_grad)

    plain = cnn_discriminator(width=TINY, norm="none")
    assert not any(hasattr(m, "parametrizations") for m in plain.modules())


def test_layer_norm_normalises_each_sample_over_chw():
    d = cnn_discriminator(width=TINY, norm="layer")
    ln = next(m for m in d.body if isinstance(m, nn.GroupNorm))
    x = torch.randn(3, ln.num_channels, 5, 5) * 4 + 2
    y = ln(x) - ln.bias.view(1, -1, 1, 1)
    flat = y.flatten(1)
    torch.testing.assert_close(flat.mean(1), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(flat.var(1, unbiased=False), torch.ones(3), atol=1e-3, rtol=0)


def test_registry_and_bad_options():
    assert build_model("sngan-cnn-d", width=TINY, norm="none").norm == "none"
    assert build_model("sngan-cnn-g", width=TINY, image_size=48).image_shape == (3, 48, 48)
    with pytest.raises(ConfigError):
        cnn_discriminator(width=TINY, norm="group")
    with pytest.raises(ConfigError):
        cnn_discriminator(width=TINY, layout="dcgan")
    with pytest.raises(ConfigError):
        cnn_generator(width=TINY, image_size=30)
