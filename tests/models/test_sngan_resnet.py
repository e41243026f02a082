"""SN-GAN ResNets (SN-paper Tables 4-5, sngan_projection code) at tiny width."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganworks.errors import ConfigError
from ganworks.models import build_model
from ganworks.models.sngan_resnet import DownBlock, OptimizedBlock, UpBlock, resnet_discriminator, resnet_generator
from ganworks.nn.spectral_norm import is_spectral_normed

TINY = 1 / 16


@pytest.mark.parametrize("image_size", [32, 48])
def test_generator_shapes(image_size):
    torch.manual_seed(0)
    g = resnet_generator(image_size=image_size, width=TINY)
    assert g.image_shape == (3, image_size, image_size) and g.z_dim == 128
    x = g(g.sample_z(3))
    assert x.shape == (3, 3, image_size, image_size) and x.abs().max() <= 1


@pytest.mark.parametrize("image_size,bottom", [(32, 8), (48, 3)])
@pytest.mark.parametrize("norm", ["spectral", "none"])
def test_discriminator_shapes_and_gradients(image_size, bottom, norm):
    torch.manual_seed(0)
    d = resnet_discriminator(image_size=image_size, width=TINY, norm=norm).train()
    seen = []
    d.blocks.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    x = torch.randn(3, 3, image_size, image_size, requires_grad=True)
    logits, feats = d(x, with_features=True)
    assert logits.shape == (3,) and feats.shape == (3, d.feature_dim)
    assert seen[0][-2:] == (bottom, bottom)
    logits.sum().backward()
    assert x.grad.abs().sum() > 0
    for name, p in d.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0 and torch.isfinite(p.grad).all(), name


def test_generator_gradients_flow():
    torch.manual_seed(0)
    g = resnet_generator(width=TINY).train()
    g(g.sample_z(4)).square().mean().backward()
    for name, p in g.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_full_width_architecture():
    d32 = resnet_discriminator(norm="none")
    assert isinstance(d32.blocks[0], OptimizedBlock) and len(d32.blocks) == 4
    assert [b.downsample for b in d32.blocks[1:]] == [True, False, False]
    assert d32.out.in_features == 128 and d32.out.bias is None  # no bias in snresnet_32
    assert d32.blocks[2].c_sc is None  # identity shortcut without downsampling or width change
    d48 = resnet_discriminator(image_size=48, norm="none")
    assert [b.c2.out_channels for b in d48.blocks[1:]] == [128, 256, 512, 1024]
    assert [b.c1.out_channels for b in d48.blocks[1:]] == [64, 128, 256, 512]  # hidden = in channels
    assert d48.out.in_features == 1024
    g32, g48 = resnet_generator(), resnet_generator(image_size=48)
    assert g32.dense.out_features == 4 * 4 * 256 and [b.c2.out_channels for b in g32.blocks] == [256] * 3
    assert g48.dense.out_features == 6 * 6 * 512 and [b.c2.out_channels for b in g48.blocks] == [256, 128, 64]
    bns = [m for m in g32.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 7 and all(b.eps == 2e-5 and b.momentum == 0.1 for b in bns)


def _glorot_bound(w):
    fan_in = w.shape[1] * w[0, 0].numel()
    fan_out = w.shape[0] * w[0, 0].numel()
    return math.sqrt(6.0 / (fan_in + fan_out))


def test_glorot_uniform_init_gains():
    torch.manual_seed(0)
    g = resnet_generator()
    for w, gain in [(g.blocks[0].c1.weight, math.sqrt(2)), (g.blocks[0].c_sc.weight, 1.0), (g.dense.weight, 1.0)]:
        bound = gain * _glorot_bound(w)
        assert w.abs().max() <= bound and w.abs().max() > 0.99 * bound
        assert abs(w.std().item() - bound / math.sqrt(3)) < 0.02 * bound  # uniform std = bound/√3
    assert torch.count_nonzero(g.blocks[0].c1.bias) == 0


def test_blocks_against_functional_computation():
    torch.manual_seed(1)
    x = torch.randn(2, 4, 8, 8)

    blk = DownBlock(4, 6, downsample=True)
    h = F.conv2d(F.relu(x), blk.c1.weight, blk.c1.bias, padding=1)
    h = F.conv2d(F.relu(h), blk.c2.weight, blk.c2.bias, padding=1)
    s = F.conv2d(x, blk.c_sc.weight, blk.c_sc.bias)
    torch.testing.assert_close(blk(x), F.avg_pool2d(h, 2) + F.avg_pool2d(s, 2))

    same = DownBlock(4, 4, downsample=False)
    h = F.conv2d(
        F.relu(F.conv2d(F.relu(x), same.c1.weight, same.c1.bias, padding=1)), same.c2.weight, same.c2.bias, padding=1
    )
    torch.testing.assert_close(same(x), h + x)

    opt = OptimizedBlock(4, 6)
    h = F.conv2d(F.relu(F.conv2d(x, opt.c1.weight, opt.c1.bias, padding=1)), opt.c2.weight, opt.c2.bias, padding=1)
    s = F.conv2d(F.avg_pool2d(x, 2), opt.c_sc.weight, opt.c_sc.bias)
    torch.testing.assert_close(opt(x), F.avg_pool2d(h, 2) + s)

    up = UpBlock(4, 6).eval()
    xu = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # nearest ×2
    h = F.relu(up.b1(x)).repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    h = F.conv2d(F.relu(up.b2(F.conv2d(h, up.c1.weight, up.c1.bias, padding=1))), up.c2.weight, up.c2.bias, padding=1)
    torch.testing.assert_close(up(x), h + F.conv2d(xu, up.c_sc.weight, up.c_sc.bias))


def test_sum_pooling_and_final_layer():
    torch.manual_seed(2)
    d = resnet_discriminator(width=TINY, norm="none")
    x = torch.randn(2, 3, 32, 32)
    logits, feats = d(x, with_features=True)
    torch.testing.assert_close(feats, F.relu(d.blocks(x)).flatten(2).sum(-1))
    torch.testing.assert_close(logits, feats @ d.out.weight[0])


def test_norm_option():
    sn = resnet_discriminator(width=TINY)
    layers = [m for m in sn.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert layers and all(is_spectral_normed(m) for m in layers)
    plain = resnet_discriminator(width=TINY, norm="none")
    assert not any(hasattr(m, "parametrizations") for m in plain.modules())
    with pytest.raises(ConfigError):
        resnet_discriminator(width=TINY, norm="batch")
    with pytest.raises(ConfigError):
        resnet_generator(image_size=40)


def test_registry():
    d = build_model("sngan-resnet-d", image_size=48, width=TINY)
    g = build_model("sngan-resnet-g", image_size=48, width=TINY)
    assert d(g(g.sample_z(2))).shape == (2,)
