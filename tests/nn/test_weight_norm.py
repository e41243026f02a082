import torch
from torch import nn

from ganworks.nn import GaussianNoise, data_dependent_init, weight_norm
from ganworks.nn.weight_norm import scale


def test_weight_is_scale_times_direction():
    layer = weight_norm(nn.Linear(6, 4), weight_std=0.1)
    v = layer.parametrizations.weight.original1
    g = scale(layer)
    assert torch.allclose(layer.weight, g * v / v.norm(dim=1, keepdim=True))


def test_data_dependent_init_standardises_pre_activations():
    torch.manual_seed(0)
    net = nn.Sequential(
        weight_norm(nn.Linear(30, 20), train_scale=False), nn.ReLU(), weight_norm(nn.Linear(20, 7), init_scale=0.1)
    )
    x = torch.randn(500, 30) * 4 + 2
    data_dependent_init(net, x)
    with torch.no_grad():
        h = net[0](x)
        out = net(x)
    assert torch.allclose(h.mean(0), torch.zeros(20), atol=1e-4)
    assert torch.allclose(h.std(0, unbiased=False), torch.ones(20), atol=1e-4)
    assert torch.allclose(out.mean(0), torch.zeros(7), atol=1e-5)
    assert torch.allclose(out.std(0, unbiased=False), torch.full((7,), 0.1), atol=1e-5)


def test_conv_and_deconv_init_per_channel():
    torch.manual_seed(1)
    conv = weight_norm(nn.Conv2d(3, 5, 3, padding=1))
    deconv = weight_norm(nn.ConvTranspose2d(5, 4, 5, 2, 2, 1), init_scale=0.1)
    x = torch.randn(16, 3, 8, 8)
    data_dependent_init(nn.Sequential(conv, deconv), x)
    with torch.no_grad():
        y = deconv(conv(x))
    assert y.shape == (16, 4, 16, 16)
    assert torch.allclose(y.mean((0, 2, 3)), torch.zeros(4), atol=1e-5)
    assert torch.allclose(y.std((0, 2, 3), unbiased=False), torch.full((4,), 0.1), atol=1e-5)
    # the deconv's norm is per output channel: weight (in, out, k, k) normalised over (0, 2, 3)
    v = deconv.parametrizations.weight.original1
    assert torch.allclose(
        deconv.weight, scale(deconv) * v / v.square().sum(dim=(0, 2, 3), keepdim=True).sqrt(), atol=1e-6
    )


def test_fixed_scale_is_not_trainable_but_output_scale_is():
    hidden = weight_norm(nn.Linear(4, 4), train_scale=False)
    out = weight_norm(nn.Linear(4, 2), train_scale=True)
    assert not scale(hidden).requires_grad and scale(out).requires_grad


def test_gaussian_noise_only_in_training():
    layer = GaussianNoise(0.5)
    x = torch.zeros(20000)
    assert abs(layer(x).std().item() - 0.5) < 0.02
    layer.eval()
    assert torch.equal(layer(x), x)
