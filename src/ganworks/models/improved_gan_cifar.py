"""The CIFAR-10 and SVHN semi-supervised GANs [Improved-GAN §6.2, §6.3; docs/papers.md §A.3, §A.4].

Discriminator (``variant="fm"``, feature matching): Dropout 0.2 on the input, then nine
weight-normalised conv layers with lReLU 0.2 —
3×3 a, 3×3 a, 3×3 a stride 2, Dropout 0.5, 3×3 b, 3×3 b, 3×3 b stride 2, Dropout 0.5,
3×3 b valid (8→6), 1×1 b, 1×1 b — a global mean pool (the feature-matching feature, b-d), and a
weight-normalised dense layer to K = 10 class logits. (a, b) = (96, 192) on CIFAR-10 and
(64, 128) on SVHN. All V ~ N(0, 0.05²); the hidden layers' weight-norm scales are fixed after
data-dependent init (init std 1), the output layer's is trainable (init std 0.1).

Discriminator (``variant="md"``, minibatch discrimination): the same with Gaussian input noise
σ 0.2 instead of the input dropout and a minibatch-discrimination layer (100 kernels × 5) between
the pool and the dense layer (b + 100 = 292 inputs). Both SVHN and CIFAR-10 MD use (96, 192).

Generator (the same for all four scripts): z ~ Uniform[0,1)^100 → dense 8192 (no bias) → norm →
ReLU → reshape (512, 4, 4) → [5×5 stride-2 deconv (no bias) → norm → ReLU] × 2 (256 @ 8², 128 @
16²) → weight-normalised 5×5 stride-2 deconv to 3 channels (trainable scale, init std 0.1) → tanh.
The reference's ``nn.batch_norm`` moves the layer's ReLU after the BN, hence dense → BN → ReLU.
The deconvolution is the transpose of a 'half'-padded stride-2 conv:
``ConvTranspose2d(k=5, stride=2, padding=2, output_padding=1)``. ``norm="batch"`` is the
reference's BN without gain, per unit over the 8192 dense outputs (before the reshape) and per
channel after the deconvs, always with batch statistics (Table 3's "−VBN+BN");
``norm="vbn"`` puts virtual batch normalization in the same places (Table 3's full model): the
generator keeps a fixed reference noise batch ``z_ref`` (a buffer, saved with the state dict),
prepends it to every input and returns only the live rows.

Builders (``BUILDERS``): ``improved-gan-cifar-d``, ``improved-gan-svhn-d`` (keyword
``variant="fm"|"md"``), ``improved-gan-cifar-g`` and its alias ``improved-gan-svhn-g``
(keyword ``norm="batch"|"vbn"``). ``width`` multiplies every hidden channel count (tests build
tiny models); the minibatch layer keeps ``num_kernels`` kernels whatever the width.

Data-dependent init: run :func:`ganworks.nn.weight_norm.data_dependent_init` (the
weight-norm init extended to minibatch layers) on D with 500 training images and on G with a batch
of noise, in training mode, as the reference does once before training.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..nn.batch_norm import batch_norm_no_gain
from ..nn.minibatch_discrimination import MinibatchDiscrimination
from ..nn.noise import GaussianNoise
from ..nn.vbn import VirtualBatchNorm
from ..nn.weight_norm import weight_norm

_WEIGHT_STD = 0.05  # every W ~ N(0, 0.05²) in the CIFAR/SVHN scripts
_D_WIDTHS = {
    ("cifar10", "fm"): (96, 192),
    ("cifar10", "md"): (96, 192),
    ("svhn", "fm"): (64, 128),
    ("svhn", "md"): (96, 192),
}


def _units(n: int, width: float) -> int:
    return max(1, int(round(n * width)))


def _wn_conv(cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 1) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding)
    nn.init.zeros_(conv.bias)
    return weight_norm(conv, train_scale=False, init_scale=1.0, weight_std=_WEIGHT_STD)


class CifarDiscriminator(nn.Module):
    """The 9-layer weight-normalised CNN discriminator; ``forward(x, with_features=False)``."""

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (3, 32, 32),
        num_classes: int = 10,
        widths: tuple[int, int] = (96, 192),
        variant: str = "fm",
        input_dropout: float = 0.2,
        input_noise: float = 0.2,
        dropout: float = 0.5,
        num_kernels: int = 100,
        dim_per_kernel: int = 5,
    ) -> None:
        super().__init__()
        if variant not in ("fm", "md"):
            raise ConfigError(f"discriminator variant must be 'fm' or 'md', got {variant!r}")
        self.image_shape = tuple(image_shape)
        if min(self.image_shape[1:]) < 9:  # two stride-2 convs then a valid 3×3 need ≥ 3×3 left
            raise ConfigError(f"this discriminator needs images of at least 9×9, got {self.image_shape[1:]}")
        self.num_classes = num_classes
        self.variant = variant
        a, b = widths
        lrelu = lambda: nn.LeakyReLU(0.2)  # noqa: E731
        self.input_layer = nn.Dropout(input_dropout) if variant == "fm" else GaussianNoise(input_noise)
        self.body = nn.Sequential(
            _wn_conv(self.image_shape[0], a, 3),
            lrelu(),
            _wn_conv(a, a, 3),
            lrelu(),
            _wn_conv(a, a, 3, stride=2),
            lrelu(),
            nn.Dropout(dropout),
            _wn_conv(a, b, 3),
            lrelu(),
            _wn_conv(b, b, 3),
            lrelu(),
            _wn_conv(b, b, 3, stride=2),
            lrelu(),
            nn.Dropout(dropout),
            _wn_conv(b, b, 3, padding=0),
            lrelu(),
            _wn_conv(b, b, 1, padding=0),
            lrelu(),  # NIN
            _wn_conv(b, b, 1, padding=0),
            lrelu(),  # NIN
        )
        self.feature_dim = b
        self.minibatch = (
            MinibatchDiscrimination(b, num_kernels, dim_per_kernel) if variant == "md" and num_kernels else None
        )
        dense_in = self.minibatch.out_features if self.minibatch is not None else b
        out = nn.Linear(dense_in, num_classes)
        nn.init.zeros_(out.bias)
        self.out = weight_norm(out, train_scale=True, init_scale=0.1, weight_std=_WEIGHT_STD)

    def forward(self, x: Tensor, with_features: bool = False):
        features = self.body(self.input_layer(x)).mean(dim=(2, 3))  # global mean pool
        h = self.minibatch(features) if self.minibatch is not None else features
        logits = self.out(h)
        return (logits, features) if with_features else logits


class CifarGenerator(nn.Module):
    """Uniform noise → dense 8192 → two 5×5 stride-2 deconvs → WN deconv → tanh (32×32 images)."""

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (3, 32, 32),
        z_dim: int = 100,
        channels: tuple[int, int, int] = (512, 256, 128),
        norm: str = "batch",
        vbn_ref_size: int = 100,
    ) -> None:
        super().__init__()
        if norm not in ("batch", "vbn"):
            raise ConfigError(f"generator norm must be 'batch' or 'vbn', got {norm!r}")
        c_img, h, w = image_shape
        if h % 8 or w % 8:
            raise ConfigError(f"image height and width must be multiples of 8, got {h}×{w}")
        self.image_shape = tuple(image_shape)
        self.z_dim = z_dim
        self.norm = norm
        c0, c1, c2 = channels
        self._start = (c0, h // 8, w // 8)
        n0 = c0 * (h // 8) * (w // 8)

        def make_norm(features: int, dims: int) -> nn.Module:
            if norm == "vbn":
                return VirtualBatchNorm(features, vbn_ref_size)
            return batch_norm_no_gain(features, dims=dims)

        def deconv(cin: int, cout: int, bias: bool) -> nn.ConvTranspose2d:
            layer = nn.ConvTranspose2d(cin, cout, 5, stride=2, padding=2, output_padding=1, bias=bias)
            nn.init.normal_(layer.weight, 0.0, _WEIGHT_STD)
            if bias:
                nn.init.zeros_(layer.bias)
            return layer

        self.dense = nn.Linear(z_dim, n0, bias=False)
        nn.init.normal_(self.dense.weight, 0.0, _WEIGHT_STD)
        self.norm0 = make_norm(n0, 1)  # per unit over all dense outputs, before the reshape
        self.deconv1 = deconv(c0, c1, bias=False)
        self.norm1 = make_norm(c1, 2)
        self.deconv2 = deconv(c1, c2, bias=False)
        self.norm2 = make_norm(c2, 2)
        self.out = weight_norm(deconv(c2, c_img, bias=True), train_scale=True, init_scale=0.1)
        if norm == "vbn":
            self.register_buffer("z_ref", self.sample_z(vbn_ref_size))
        else:
            self.z_ref = None

    def sample_z(self, n: int, device=None) -> Tensor:
        """z ~ Uniform[0, 1)^z_dim (the reference's ``theano_rng.uniform``)."""
        return torch.rand(n, self.z_dim, device=device)

    @torch.no_grad()
    def set_reference(self, z_ref: Tensor) -> None:
        """Replace the fixed VBN reference noise batch (its size must stay ``vbn_ref_size``)."""
        if self.z_ref is None:
            raise ConfigError("set_reference needs a generator built with norm='vbn'")
        if z_ref.shape != self.z_ref.shape:
            raise ValueError(f"reference noise must have shape {tuple(self.z_ref.shape)}, got {tuple(z_ref.shape)}")
        self.z_ref.copy_(z_ref)

    def forward(self, z: Tensor) -> Tensor:
        n_ref = 0
        if self.z_ref is not None:  # VBN: the reference batch goes first through every layer
            n_ref = self.z_ref.shape[0]
            z = torch.cat([self.z_ref.to(z.dtype), z], dim=0)
        h = torch.relu(self.norm0(self.dense(z))).view(-1, *self._start)
        h = torch.relu(self.norm1(self.deconv1(h)))
        h = torch.relu(self.norm2(self.deconv2(h)))
        x = torch.tanh(self.out(h))
        return x[n_ref:]


def _discriminator(
    dataset: str, variant: str, image_size: int, channels: int, num_classes: int, width: float, num_kernels: int
) -> CifarDiscriminator:
    if (dataset, variant) not in _D_WIDTHS:
        raise ConfigError(f"discriminator variant must be 'fm' or 'md', got {variant!r}")
    a, b = (_units(c, width) for c in _D_WIDTHS[dataset, variant])
    return CifarDiscriminator((channels, image_size, image_size), num_classes, (a, b), variant, num_kernels=num_kernels)


def cifar_discriminator(
    *,
    variant: str = "fm",
    image_size: int = 32,
    channels: int = 3,
    num_classes: int = 10,
    width: float = 1.0,
    num_kernels: int = 100,
) -> CifarDiscriminator:
    """CIFAR-10 D: ``variant="fm"`` (train_cifar_feature_matching.py) or ``"md"``
    (train_cifar_minibatch_discrimination.py); widths 96/192. ``num_kernels=0`` drops the minibatch
    layer from the "md" variant (Table 3 "−MBF")."""
    return _discriminator("cifar10", variant, image_size, channels, num_classes, width, num_kernels)


def svhn_discriminator(
    *,
    variant: str = "fm",
    image_size: int = 32,
    channels: int = 3,
    num_classes: int = 10,
    width: float = 1.0,
    num_kernels: int = 100,
) -> CifarDiscriminator:
    """SVHN D: ``variant="fm"`` has widths 64/128; ``"md"`` the CIFAR widths 96/192."""
    return _discriminator("svhn", variant, image_size, channels, num_classes, width, num_kernels)


def cifar_generator(
    *,
    image_size: int = 32,
    channels: int = 3,
    z_dim: int = 100,
    width: float = 1.0,
    norm: str = "batch",
    vbn_ref_size: int = 100,
) -> CifarGenerator:
    """The CIFAR-10/SVHN generator; ``norm="batch"`` (the released code, Table 3 "−VBN+BN") or
    ``"vbn"`` with a ``vbn_ref_size``-sample reference batch (Table 3's full model)."""
    chans = tuple(_units(c, width) for c in (512, 256, 128))
    return CifarGenerator((channels, image_size, image_size), z_dim, chans, norm, vbn_ref_size)


BUILDERS = {
    "improved-gan-cifar-d": cifar_discriminator,
    "improved-gan-cifar-g": cifar_generator,
    "improved-gan-svhn-d": svhn_discriminator,
    "improved-gan-svhn-g": cifar_generator,
}
