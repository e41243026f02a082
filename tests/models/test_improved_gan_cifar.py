"""The CIFAR-10/SVHN Improved-GAN models (docs/papers.md §A.3): structure, shapes, inits and features."""

import pytest
import torch
from torch import nn

from ganworks.errors import ConfigError
from ganworks.models import build_model
from ganworks.models.improved_gan_cifar import BUILDERS
from ganworks.nn.minibatch_discrimination import MinibatchDiscrimination
from ganworks.nn.noise import GaussianNoise
from ganworks.nn.vbn import VirtualBatchNorm
from ganworks.nn.weight_norm import data_dependent_init, is_weight_normed, scale


def _convs(d):
    return [m for m in d.body if isinstance(m, nn.Conv2d)]


@pytest.mark.parametrize(
    "name, variant, widths, dense_in",
    [
        ("improved-gan-cifar-d", "fm", (96, 192), 192),
        ("improved-gan-cifar-d", "md", (96, 192), 292),
        ("improved-gan-svhn-d", "fm", (64, 128), 128),
        ("improved-gan-svhn-d", "md", (96, 192), 292),
    ],
)
def test_discriminator_structure(name, variant, widths, dense_in):
    torch.manual_seed(0)
    d = build_model(name, variant=variant)
    a, b = widths
    convs = _convs(d)
    assert [c.out_channels for c in convs] == [a, a, a, b, b, b, b, b, b]
    assert [c.kernel_size for c in convs] == [(3, 3)] * 7 + [(1, 1)] * 2
    assert [c.stride for c in convs] == [(1, 1), (1, 1), (2, 2), (1, 1), (1, 1), (2, 2), (1, 1), (1, 1), (1, 1)]
    assert [c.padding for c in convs] == [(1, 1)] * 6 + [(0, 0)] * 3
    assert all(is_weight_normed(c) and c.ddi_init_scale == 1.0 for c in convs)
    acts = [m for m in d.body if isinstance(m, nn.LeakyReLU)]
    assert len(acts) == 9 and all(m.negative_slope == 0.2 for m in acts)
    assert [m.p for m in d.body if isinstance(m, nn.Dropout)] == [0.5, 0.5]
    if variant == "fm":
        assert isinstance(d.input_layer, nn.Dropout) and d.input_layer.p == 0.2
        assert d.minibatch is None
    else:
        assert isinstance(d.input_layer, GaussianNoise) and d.input_layer.sigma == 0.2
        assert isinstance(d.minibatch, MinibatchDiscrimination)
        assert (d.minibatch.num_kernels, d.minibatch.dim_per_kernel) == (100, 5)
    assert d.out.in_features == dense_in and d.out.out_features == 10
    assert d.out.ddi_init_scale == 0.1
    # hidden weight-norm scales fixed, output scale trainable
    assert not any(scale(c).requires_grad for c in convs)
    assert scale(d.out).requires_grad
    # V ~ N(0, 0.05²)
    v = torch.cat([c.parametrizations.weight.original1.detach().flatten() for c in convs])
    assert abs(v.std().item() - 0.05) < 0.002 and abs(v.mean().item()) < 0.002
    assert d.image_shape == (3, 32, 32)


def test_full_size_forward_shapes_and_features_are_the_pool_output():
    torch.manual_seed(0)
    d = build_model("improved-gan-cifar-d").eval()
    x = torch.randn(2, 3, 32, 32)
    seen = {}
    d.body[-1].register_forward_hook(lambda m, i, o: seen.setdefault("last", o))
    logits, feats = d(x, with_features=True)
    assert seen["last"].shape == (2, 192, 6, 6)  # 32 → 16 → 8 → 6 (valid conv)
    assert logits.shape == (2, 10) and feats.shape == (2, 192)
    torch.testing.assert_close(feats, seen["last"].mean(dim=(2, 3)))
    torch.testing.assert_close(d(x), logits)
    torch.testing.assert_close(d.out(feats), logits)


def test_svhn_fm_features_are_128_d():
    d = build_model("improved-gan-svhn-d", variant="fm", width=0.25).eval()
    assert d.feature_dim == 32  # 128 × 0.25
    d_full = build_model("improved-gan-svhn-d", variant="fm")
    assert d_full.feature_dim == 128 and d_full.out.in_features == 128
    logits, feats = d(torch.randn(3, 3, 32, 32), with_features=True)
    assert logits.shape == (3, 10) and feats.shape == (3, 32)


def test_md_discriminator_logits_use_minibatch_features():
    torch.manual_seed(0)
    d = build_model("improved-gan-cifar-d", variant="md", width=0.125, num_kernels=7).eval()
    x = torch.randn(4, 3, 32, 32)
    logits, feats = d(x, with_features=True)
    assert feats.shape == (4, 24) and d.out.in_features == 31
    torch.testing.assert_close(logits, d.out(d.minibatch(feats)))
    # a sample's logits change with the rest of its batch (minibatch features), its features don't
    logits2, feats2 = d(torch.cat([x[:1], torch.randn(3, 3, 32, 32)]), with_features=True)
    torch.testing.assert_close(feats2[0], feats[0])
    assert (logits2[0] - logits[0]).abs().max() > 1e-6


@pytest.mark.parametrize("variant", ["fm", "md"])
def test_discriminator_data_dependent_init(variant):
    torch.manual_seed(0)
    d = build_model("improved-gan-cifar-d", variant=variant, width=0.125, num_kernels=6).eval()
    x = torch.randn(24, 3, 32, 32)
    g_before = scale(d.out).detach().clone()
    out = data_dependent_init(d, x)
    assert not torch.equal(scale(d.out), g_before)
    torch.testing.assert_close(out, d(x))
    torch.testing.assert_close(out.mean(0), torch.zeros(10), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std(0, unbiased=False), torch.full((10,), 0.1), atol=1e-5, rtol=0)
    if variant == "md":
        _, feats = d(x, with_features=True)
        mb = d.minibatch(feats)[:, feats.shape[1] :]
        torch.testing.assert_close(mb.mean(0), torch.zeros(6), atol=1e-5, rtol=0)


def test_generator_structure():
    torch.manual_seed(0)
    g = build_model("improved-gan-cifar-g")
    assert g.z_dim == 100 and g.image_shape == (3, 32, 32)
    assert g.dense.out_features == 8192 and g.dense.bias is None
    assert abs(g.dense.weight.std().item() - 0.05) < 0.002
    assert isinstance(g.norm0, nn.BatchNorm1d) and g.norm0.num_features == 8192  # per unit, before reshape
    assert isinstance(g.norm1, nn.BatchNorm2d) and g.norm1.num_features == 256
    assert isinstance(g.norm2, nn.BatchNorm2d) and g.norm2.num_features == 128
    for bn in (g.norm0, g.norm1, g.norm2):
        assert not bn.weight.requires_grad and not bn.track_running_stats and bn.eps == 1e-6
    for deconv, cin, cout in ((g.deconv1, 512, 256), (g.deconv2, 256, 128), (g.out, 128, 3)):
        assert (deconv.in_channels, deconv.out_channels) == (cin, cout)
        assert deconv.kernel_size == (5, 5) and deconv.stride == (2, 2)
        assert deconv.padding == (2, 2) and deconv.output_padding == (1, 1)
    assert g.deconv1.bias is None and g.deconv2.bias is None
    assert is_weight_normed(g.out) and g.out.ddi_init_scale == 0.1 and scale(g.out).requires_grad
    assert scale(g.out).shape[1] == 3  # normalised per output channel of the transposed conv
    assert abs(g.out.parametrizations.weight.original1.std().item() - 0.05) < 0.005
    assert BUILDERS["improved-gan-svhn-g"] is BUILDERS["improved-gan-cifar-g"]


def test_generator_sampling_and_shapes():
    torch.manual_seed(0)
    g = build_model("improved-gan-cifar-g", width=0.0625)
    z = g.sample_z(500)
    assert z.shape == (500, 100) and z.min() >= 0 and z.max() < 1 and z.mean().item() == pytest.approx(0.5, abs=0.03)
    x = data_dependent_init(g, z[:16])
    assert x.shape == (16, 3, 32, 32) and x.abs().max() < 1
    assert g(z[:5]).shape == (5, 3, 32, 32)
    # batch-norm generator: a sample depends on its batch (sanity check for the VBN test below)
    assert (g(z[:5])[0] - g(z[:3])[0]).abs().max() > 1e-6


def test_vbn_generator_samples_independent_of_batch():
    torch.manual_seed(0)
    g = build_model("improved-gan-cifar-g", width=0.0625, norm="vbn", vbn_ref_size=8)
    assert [type(m) for m in (g.norm0, g.norm1, g.norm2)] == [VirtualBatchNorm] * 3
    assert g.norm0.num_features == 512 and g.norm0.ref_size == 8
    assert "z_ref" in g.state_dict() and g.z_ref.shape == (8, 100)
    data_dependent_init(g, g.sample_z(16))
    z = g.sample_z(6)
    full = g(z)
    assert full.shape == (6, 3, 32, 32)
    alone = g(z[2:3])
    torch.testing.assert_close(alone[0], full[2], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g(torch.cat([z[2:3], g.sample_z(9)]))[0], full[2], rtol=1e-5, atol=1e-6)
    # the reference batch matters
    g.set_reference(g.sample_z(8))
    assert (g(z[2:3])[0] - alone[0]).abs().max() > 1e-6


def test_bad_options_raise_config_error():
    with pytest.raises(ConfigError):
        build_model("improved-gan-cifar-d", variant="wgan")
    with pytest.raises(ConfigError):
        build_model("improved-gan-cifar-g", norm="layer")
    with pytest.raises(ConfigError):
        build_model("improved-gan-cifar-g").set_reference(torch.rand(4, 100))
    with pytest.raises(ConfigError):
        build_model("improved-gan-cifar-d", image_size=8)
    with pytest.raises(ConfigError):
        build_model("improved-gan-cifar-g", image_size=12)
    # the smallest sizes that work
    assert build_model("improved-gan-cifar-d", image_size=9, width=0.05)(torch.randn(2, 3, 9, 9)).shape == (2, 10)
    assert build_model("improved-gan-cifar-g", image_size=8, channels=1, width=0.05)(torch.rand(2, 100)).shape == (
        2,
        1,
        8,
        8,
    )
