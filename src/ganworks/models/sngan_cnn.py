"""The SN-GAN "standard CNN" generator and discriminator [SN-paper Table 3; docs/papers.md §B.3].

M = 32 (CIFAR-10, SVHN) or 48 (STL-10); M_g = M/8 (4 or 6).

Generator: z ∈ R^128 → dense → M_g × M_g × 512 → [4×4 stride-2 deconv (pad 1) → BN → ReLU] with
256, 128, 64 channels → 3×3 stride-1 conv → 3 channels → tanh.

Discriminator: seven convolutions with lReLU — 3×3 s1, 4×4 s2, 3×3 s1, 4×4 s2, 3×3 s1, 4×4 s2,
3×3 s1 (all pad 1; M → M/2 → M/4 → M/8) — then a dense layer M_g·M_g·512 → 1.

Where the paper and the author-pointed code [CGL:common/net.py, ``DCGANGenerator``,
``SNDCGANDiscriminator``] disagree, ``layout`` picks the source (default ``"paper"``) and each
difference can also be set on its own:

===================== ============================== ==============================
                      ``layout="paper"`` (Table 3)   ``layout="chainer"`` (code)
===================== ============================== ==============================
D channels            64, 64, 128, 128, 256, 256, 512 64, 128, 128, 256, 256, 512, 512
D lReLU slope         0.1                            0.2 (Chainer's default)
G after the dense     nothing                        BN (per unit, 8192-d) + ReLU
z distribution        N(0, I)                        Uniform[−1, 1]
===================== ============================== ==============================

In the paper layout the stride-1 conv after each stride-2 conv doubles the channels; in the code
the stride-2 conv does. Both keep 512 channels at the end.

Initialisation (both layouts, as in the code): every weight ~ N(0, 0.02²), biases 0; BN is
Chainer's default (γ = 1, β = 0, decay 0.9 = PyTorch momentum 0.1, eps 2e-5). The final 3×3 layer
of G is a ``Conv2d``; the code uses a stride-1 pad-1 ``Deconvolution2D``, which is the same map
with a flipped, transposed kernel (and the same N(0, 0.02²) weight distribution).

D's ``norm`` (the SN paper's baselines, Table 2; "the γ multiplier was removed" for BN/LN/WN,
SN-paper §4.1):

* ``"spectral"`` (default): spectral normalization on all 7 convs and the dense layer.
* ``"none"``: plain layers (weight clipping, WGAN-GP, GAN-GP and orthonormal baselines; see
  :mod:`ganworks.regularizers`).
* ``"batch"``: BN without gain after convs 2-7 (not after the first conv nor the dense layer), as in
  [CGL:common/net.py ``DCGANDiscriminator``, ``use_gamma=False``], eps 2e-5, momentum 0.1.
* ``"layer"``: layer normalization over (C, H, W) per sample without gain, in the same places,
  with a learned per-channel bias (``GroupNorm(1, C)`` with its weight fixed at 1), eps 1e-5.
* ``"weight"``: weight normalization W = V/‖V‖ (per output unit) on all 7 convs and the dense
  layer, with the gain fixed at 1 and no data-dependent init.

``forward(x, with_features=False)`` returns logits (N,), or (logits, features) with features the
flattened output of the last conv layer (after its lReLU), (N, M_g·M_g·512).

Builders: ``sngan-cnn-g``, ``sngan-cnn-d`` (``image_size`` 32 or 48; ``width`` multiplies every
channel count).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..nn.spectral_norm import apply_spectral_norm
from ..nn.weight_norm import scale as wn_scale
from ..nn.weight_norm import weight_norm

LAYOUTS = ("paper", "chainer")
D_NORMS = ("spectral", "none", "batch", "layer", "weight")
Z_DISTRIBUTIONS = ("normal", "uniform")
_D_CHANNELS = {
    "paper": (64, 64, 128, 128, 256, 256, 512),
    "chainer": (64, 128, 128, 256, 256, 512, 512),
}
_LRELU_SLOPE = {"paper": 0.1, "chainer": 0.2}
_WEIGHT_STD = 0.02
_BN_EPS = 2e-5  # Chainer's BatchNormalization default
_BN_MOMENTUM = 0.1  # Chainer's decay 0.9


def _units(n: int, width: float) -> int:
    return max(1, int(round(n * width)))


def _check(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")


def _bottom(image_size: int) -> int:
    if image_size % 8 or image_size < 8:
        raise ConfigError(f"image_size must be a multiple of 8 (32 or 48 in the paper), got {image_size}")
    return image_size // 8


def _normal_init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, _WEIGHT_STD)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def sample_z(n: int, z_dim: int, distribution: str, device=None) -> Tensor:
    """z ~ N(0, I) (``"normal"``, SN-paper §4) or Uniform[−1, 1] (``"uniform"``, chainer-gan-lib)."""
    if distribution == "normal":
        return torch.randn(n, z_dim, device=device)
    if distribution == "uniform":
        return torch.rand(n, z_dim, device=device) * 2.0 - 1.0
    raise ConfigError(f"z distribution must be 'normal' or 'uniform', got {distribution!r}")


class CNNGenerator(nn.Module):
    """Dense → three 4×4 stride-2 deconvs with BN + ReLU → 3×3 conv → tanh."""

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 3,
        z_dim: int = 128,
        widths: tuple[int, int, int, int] = (512, 256, 128, 64),
        dense_bn_relu: bool = False,
        z_distribution: str = "normal",
    ) -> None:
        super().__init__()
        _check("z_distribution", z_distribution, Z_DISTRIBUTIONS)
        bottom = _bottom(image_size)
        self.image_shape = (channels, image_size, image_size)
        self.z_dim = z_dim
        self.z_distribution = z_distribution
        c0, c1, c2, c3 = widths
        self._start = (c0, bottom, bottom)
        self.dense = nn.Linear(z_dim, c0 * bottom * bottom)
        # the code's BN over the dense output is per unit (8192 features at M_g = 4)
        self.dense_post = (
            nn.Sequential(
                nn.BatchNorm1d(c0 * bottom * bottom, eps=_BN_EPS, momentum=_BN_MOMENTUM), nn.ReLU(inplace=True)
            )
            if dense_bn_relu
            else nn.Identity()
        )
        blocks = []
        for cin, cout in ((c0, c1), (c1, c2), (c2, c3)):
            blocks += [
                nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1),
                nn.BatchNorm2d(cout, eps=_BN_EPS, momentum=_BN_MOMENTUM),
                nn.ReLU(inplace=True),
            ]
        self.body = nn.Sequential(*blocks)
        self.out = nn.Conv2d(c3, channels, 3, stride=1, padding=1)
        _normal_init(self)

    def sample_z(self, n: int, device=None) -> Tensor:
        return sample_z(n, self.z_dim, self.z_distribution, device)

    def forward(self, z: Tensor) -> Tensor:
        h = self.dense_post(self.dense(z)).view(-1, *self._start)
        return torch.tanh(self.out(self.body(h)))


class CNNDiscriminator(nn.Module):
    """Seven lReLU convs → dense → logit; ``norm`` selects SN or a baseline."""

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 3,
        widths: tuple[int, ...] = _D_CHANNELS["paper"],
        lrelu_slope: float = 0.1,
        norm: str = "spectral",
    ) -> None:
        super().__init__()
        _check("norm", norm, D_NORMS)
        if len(widths) != 7:
            raise ConfigError(f"the standard CNN discriminator has 7 conv layers, got {len(widths)} widths")
        bottom = _bottom(image_size)
        self.image_shape = (channels, image_size, image_size)
        self.norm = norm
        self.lrelu_slope = float(lrelu_slope)
        geometry = [(3, 1), (4, 2)] * 3 + [(3, 1)]  # (kernel, stride), all pad 1
        layers = []
        cin = channels
        for i, ((k, s), cout) in enumerate(zip(geometry, widths)):
            layers.append(nn.Conv2d(cin, cout, k, stride=s, padding=1))
            if i > 0 and norm == "batch":
                bn = nn.BatchNorm2d(cout, eps=_BN_EPS, momentum=_BN_MOMENTUM)
                bn.weight.requires_grad_(False)  # γ removed: fixed at 1
                layers.append(bn)
            elif i > 0 and norm == "layer":
                ln = nn.GroupNorm(1, cout)  # normalises over (C, H, W) per sample
                ln.weight.requires_grad_(False)
                layers.append(ln)
            layers.append(nn.LeakyReLU(self.lrelu_slope, inplace=True))  # on a fresh conv/norm output
            cin = cout
        self.body = nn.Sequential(*layers)
        self.feature_dim = widths[-1] * bottom * bottom
        self.out = nn.Linear(self.feature_dim, 1)
        _normal_init(self)
        if norm == "spectral":
            apply_spectral_norm(self)
        elif norm == "weight":
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    weight_norm(m, train_scale=False, init_scale=None)
                    with torch.no_grad():
                        wn_scale(m).fill_(1.0)  # γ removed: W = V/‖V‖

    def forward(self, x: Tensor, with_features: bool = False):
        features = self.body(x).flatten(1)
        logits = self.out(features).view(-1)
        return (logits, features) if with_features else logits


def cnn_generator(
    *,
    image_size: int = 32,
    channels: int = 3,
    z_dim: int = 128,
    width: float = 1.0,
    layout: str = "paper",
    dense_bn_relu: bool | None = None,
    z_distribution: str | None = None,
) -> CNNGenerator:
    """Standard-CNN G. ``layout="paper"``: z ~ N(0, I), nothing between the dense layer and the
    first deconv (Table 3); ``"chainer"``: z ~ U[−1, 1], BN + ReLU after the dense layer. The two
    options override the layout's choice."""
    _check("layout", layout, LAYOUTS)
    if dense_bn_relu is None:
        dense_bn_relu = layout == "chainer"
    if z_distribution is None:
        z_distribution = "uniform" if layout == "chainer" else "normal"
    widths = tuple(_units(c, width) for c in (512, 256, 128, 64))
    return CNNGenerator(image_size, channels, z_dim, widths, dense_bn_relu, z_distribution)


def cnn_discriminator(
    *,
    image_size: int = 32,
    channels: int = 3,
    width: float = 1.0,
    layout: str = "paper",
    lrelu_slope: float | None = None,
    norm: str = "spectral",
) -> CNNDiscriminator:
    """Standard-CNN D. ``layout`` picks the channel progression and the default lReLU slope
    (paper 0.1, chainer 0.2); ``norm`` is "spectral", "none", "batch", "layer" or "weight"."""
    _check("layout", layout, LAYOUTS)
    if lrelu_slope is None:
        lrelu_slope = _LRELU_SLOPE[layout]
    widths = tuple(_units(c, width) for c in _D_CHANNELS[layout])
    return CNNDiscriminator(image_size, channels, widths, lrelu_slope, norm)


BUILDERS = {
    "sngan-cnn-g": cnn_generator,
    "sngan-cnn-d": cnn_discriminator,
}
