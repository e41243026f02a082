"""The SN-GAN ResNet generator and discriminator for CIFAR-10 (32×32) and STL-10 (48×48)
[SN-paper Tables 4 and 5, Figure 8; docs/papers.md §B.3; code SNP:gen_models/resnet_32.py,
gen_models/resblocks.py, dis_models/snresnet_32.py, dis_models/resblocks.py].

Generator (CIFAR-10): z(128) ~ N(0, I) → dense 4·4·256 (no BN/activation) → 3 × UpBlock(256) →
BN → ReLU → 3×3 conv → 3 → tanh.
Generator (STL-10, Table 5): z → dense 6·6·512 → UpBlock 256 → 128 → 64 → BN → ReLU → 3×3 conv →
3 → tanh.

``UpBlock(in, out)``: residual BN → ReLU → nearest ×2 upsample → 3×3 conv (in → out) → BN → ReLU →
3×3 conv (out → out); shortcut nearest ×2 upsample → 1×1 conv (learned, because of the upsample).

Discriminator (CIFAR-10): OptimizedBlock(3 → 128, down) → Block(128, down) → Block(128) →
Block(128) → ReLU → global **sum** pool → dense 128 → 1 **without bias**. 32 → 16 → 8 → 8 → 8.
Discriminator (STL-10, Table 5): OptimizedBlock(3 → 64) → Block down 128 → down 256 → down 512 →
Block 1024 → ReLU → sum pool → dense 1024 → 1. 48 → 24 → 12 → 6 → 3 → 3. The STL-10 model was
not released (sngan_projection #52); its final layer keeps a bias, as in the released 64×64 and
ImageNet discriminators (``final_bias`` overrides; UNVERIFIED).

``OptimizedBlock(in, out)`` (the first D block): residual 3×3 conv → ReLU → 3×3 conv → 2×2 avg
pool; shortcut 2×2 avg pool → 1×1 conv. ``Block(in, out, down)`` (pre-activation): residual ReLU →
3×3 conv (in → **in**: hidden width = input width) → ReLU → 3×3 conv (in → out) → [2×2 avg pool];
shortcut 1×1 conv → [avg pool] when downsampling or changing width, identity otherwise.
No BN in D (Figure 8). Both 1×1 shortcuts next to a resampling are computed on the low-resolution
side (G: conv then upsample; D: pool then conv), which gives the same function as the reference
order at a quarter of the cost.

Initialisation (as the code): residual-path 3×3 convs Glorot-uniform with gain √2; shortcut 1×1
convs, the dense layers and G's output conv Glorot-uniform with gain 1; biases 0; BN γ = 1, β = 0,
momentum 0.1 (Chainer decay 0.9), eps 2e-5. Chainer's GlorotUniform(s) and
``nn.init.xavier_uniform_(gain=s)`` draw from the same U(±s·√(6/(fan_in + fan_out))).

D's ``norm``: ``"spectral"`` (default, every conv and the dense layer) or ``"none"`` (the
orthonormal-regularisation baseline: build with ``norm="none"``, then
:func:`ganworks.regularizers.orthonormal_init_` and :func:`~ganworks.regularizers.orthonormal_penalty`).
``forward(x, with_features=False)`` returns logits (N,), or (logits, the sum-pooled features (N, C)).

ImageNet (SN-paper Table 6, sngan_projection's released 64 and 128 models, ch = 64): G dense
4·4·1024 → UpBlocks 1024, 512, 256, 128, 64 (128 px; 64 px: 512, 256, 128, 64) → BN → ReLU → conv →
tanh; D OptimizedBlock 64 → down 128 → 256 → 512 → 1024 (→ Block 1024 at 128 px) → ReLU → sum pool →
dense with bias.

Class-conditional models (``num_classes`` > 0): G's block BNs become categorical conditional BNs
(:mod:`ganworks.nn.conditional_batch_norm`), ``G(z, y)``; D is the projection or the concat
discriminator (see :class:`ResNetDiscriminator`), ``D(x, y)``. ``num_classes=0`` gives the
unconditional models unchanged.

Builders: ``sngan-resnet-g``, ``sngan-resnet-d`` (``image_size`` 32, 48, 64 or 128; ``width``
multiplies every channel count; ``num_classes``; D's ``conditioning``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..nn.conditional_batch_norm import batch_norm_or_conditional
from ..nn.spectral_norm import apply_spectral_norm
from .sngan_cnn import Z_DISTRIBUTIONS, sample_z

D_NORMS = ("spectral", "none")
_BN_EPS = 2e-5
_BN_MOMENTUM = 0.1
_RESIDUAL_GAIN = math.sqrt(2.0)

# image_size → (G dense channels, G block output channels, D block channels, D downsample flags,
#               D final bias)
_CONFIGS = {
    32: dict(
        g_start=256,
        g_blocks=(256, 256, 256),
        d_blocks=(128, 128, 128, 128),
        d_down=(True, True, False, False),
        final_bias=False,
    ),
    48: dict(
        g_start=512,
        g_blocks=(256, 128, 64),
        d_blocks=(64, 128, 256, 512, 1024),
        d_down=(True, True, True, True, False),
        final_bias=True,
    ),
    # ImageNet 64×64 [SNP:gen_models/resnet_64.py, dis_models/snresnet_64.py, ch=64]
    64: dict(
        g_start=1024,
        g_blocks=(512, 256, 128, 64),
        d_blocks=(64, 128, 256, 512, 1024),
        d_down=(True, True, True, True, True),
        final_bias=True,
    ),
    # ImageNet 128×128 [SN-paper Table 6; SNP:gen_models/resnet.py, dis_models/snresnet.py, ch=64]
    128: dict(
        g_start=1024,
        g_blocks=(1024, 512, 256, 128, 64),
        d_blocks=(64, 128, 256, 512, 1024, 1024),
        d_down=(True, True, True, True, True, False),
        final_bias=True,
    ),
}
D_CONDITIONING = ("projection", "concat")
#: the concat discriminator's class embedding width (dim_emb of SNResNetConcatDiscriminator)
CONCAT_EMBED_DIM = 128
#: the concat discriminator concatenates the broadcast embedding after this many blocks
CONCAT_AFTER = 3


def _units(n: int, width: float) -> int:
    return max(1, int(round(n * width)))


def _config(image_size: int) -> dict:
    if image_size not in _CONFIGS:
        raise ConfigError(
            f"the SN-GAN ResNets exist for image_size 32 (CIFAR-10), 48 (STL-10), 64 and 128 "
            f"(ImageNet), got {image_size}: set model.generator.image_size and "
            f"model.discriminator.image_size to one of them"
        )
    return _CONFIGS[image_size]


def _glorot(layer: nn.Module, gain: float) -> nn.Module:
    nn.init.xavier_uniform_(layer.weight, gain=gain)
    if getattr(layer, "bias", None) is not None:
        nn.init.zeros_(layer.bias)
    return layer


def _conv(cin: int, cout: int, k: int, gain: float) -> nn.Conv2d:
    return _glorot(nn.Conv2d(cin, cout, k, padding=k // 2), gain)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=_BN_EPS, momentum=_BN_MOMENTUM)


class UpBlock(nn.Module):
    """G residual block with nearest-neighbour ×2 upsampling [SNP:gen_models/resblocks.py]; with
    ``num_classes`` > 0 both BNs are categorical conditional BNs and ``forward`` takes the classes."""

    def __init__(self, cin: int, cout: int, num_classes: int = 0) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.b1 = batch_norm_or_conditional(cin, num_classes, _BN_EPS, _BN_MOMENTUM)
        self.c1 = _conv(cin, cout, 3, _RESIDUAL_GAIN)
        self.b2 = batch_norm_or_conditional(cout, num_classes, _BN_EPS, _BN_MOMENTUM)
        self.c2 = _conv(cout, cout, 3, _RESIDUAL_GAIN)
        self.c_sc = _conv(cin, cout, 1, 1.0)

    def _norm(self, bn: nn.Module, x: Tensor, y: Tensor | None) -> Tensor:
        return bn(x, y) if self.num_classes else bn(x)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        h = F.interpolate(F.relu(self._norm(self.b1, x, y), inplace=True), scale_factor=2, mode="nearest")
        h = self.c2(F.relu(self._norm(self.b2, self.c1(h), y), inplace=True))
        # conv1×1(upsample(x)) computed as upsample(conv1×1(x)): equal for nearest upsampling, 4× cheaper
        return h + F.interpolate(self.c_sc(x), scale_factor=2, mode="nearest")


class OptimizedBlock(nn.Module):
    """D's first block: conv → ReLU → conv → avg pool, shortcut avg pool → 1×1 conv."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.c1 = _conv(cin, cout, 3, _RESIDUAL_GAIN)
        self.c2 = _conv(cout, cout, 3, _RESIDUAL_GAIN)
        self.c_sc = _conv(cin, cout, 1, 1.0)

    def forward(self, x: Tensor) -> Tensor:
        h = F.avg_pool2d(self.c2(F.relu(self.c1(x), inplace=True)), 2)
        return h + self.c_sc(F.avg_pool2d(x, 2))


class DownBlock(nn.Module):
    """Pre-activation D block, hidden width = input width [SNP:dis_models/resblocks.py]."""

    def __init__(self, cin: int, cout: int, downsample: bool) -> None:
        super().__init__()
        self.downsample = downsample
        self.c1 = _conv(cin, cin, 3, _RESIDUAL_GAIN)
        self.c2 = _conv(cin, cout, 3, _RESIDUAL_GAIN)
        self.c_sc = _conv(cin, cout, 1, 1.0) if (downsample or cin != cout) else None

    def forward(self, x: Tensor) -> Tensor:
        h = self.c2(F.relu(self.c1(F.relu(x)), inplace=True))  # x itself feeds the shortcut: not in place
        if self.downsample:
            h = F.avg_pool2d(h, 2)
            # the reference's avgpool(conv1×1(x)), computed as conv1×1(avgpool(x)): the two linear
            # maps commute (the bias is averaged to itself), and this order is 4× cheaper
            x = F.avg_pool2d(x, 2)
        return h + (x if self.c_sc is None else self.c_sc(x))


class ResNetGenerator(nn.Module):
    """Dense → upsampling residual blocks → BN → ReLU → 3×3 conv → tanh."""

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 3,
        z_dim: int = 128,
        start_channels: int = 256,
        block_channels: tuple[int, ...] = (256, 256, 256),
        z_distribution: str = "normal",
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        if num_classes < 0:
            raise ConfigError(f"num_classes must be >= 0 (0: unconditional), got {num_classes}")
        if z_distribution not in Z_DISTRIBUTIONS:
            raise ConfigError(f"z_distribution must be 'normal' or 'uniform', got {z_distribution!r}")
        bottom = image_size // 2 ** len(block_channels)
        if bottom * 2 ** len(block_channels) != image_size:
            raise ConfigError(f"image_size {image_size} is not divisible by 2^{len(block_channels)}")
        self.image_shape = (channels, image_size, image_size)
        self.z_dim = z_dim
        self.z_distribution = z_distribution
        self.num_classes = num_classes
        self._start = (start_channels, bottom, bottom)
        self.dense = _glorot(nn.Linear(z_dim, start_channels * bottom * bottom), 1.0)
        blocks, cin = [], start_channels
        for cout in block_channels:
            blocks.append(UpBlock(cin, cout, num_classes))
            cin = cout
        self.blocks = nn.Sequential(*blocks)  # iterated in forward (the blocks take the classes)
        self.bn = _bn(cin)  # the last BN is unconditional, as in the reference
        self.out = _conv(cin, channels, 3, 1.0)

    def sample_z(self, n: int, device=None) -> Tensor:
        return sample_z(n, self.z_dim, self.z_distribution, device)

    def sample_y(self, n: int, device=None) -> Tensor | None:
        """n classes drawn uniformly (the reference's ``sample_categorical``); None if unconditional."""
        if not self.num_classes:
            return None
        return torch.randint(0, self.num_classes, (n,), device=device)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Images for noise z; a conditional G takes class indices (N,) or class weights (N, K) in
        ``y`` and draws uniform classes when ``y`` is None (the reference generator's behaviour)."""
        if self.num_classes and y is None:
            y = self.sample_y(z.shape[0], z.device)
        elif y is not None and not self.num_classes:
            raise ValueError("this generator is unconditional (num_classes=0) and takes no classes")
        h = self.dense(z).view(-1, *self._start)
        for block in self.blocks:
            h = block(h, y)
        return torch.tanh(self.out(F.relu(self.bn(h), inplace=True)))


class ResNetDiscriminator(nn.Module):
    """OptimizedBlock → pre-activation blocks → ReLU → global sum pool → dense → logit.

    With ``num_classes`` > 0 it is class-conditional and ``forward(x, y)`` takes class indices:

    * ``conditioning="projection"`` [SNP:dis_models/snresnet*.py SNResNetProjectionDiscriminator]:
      logit = ψ(φ(x)) + ⟨embed(y), φ(x)⟩, φ(x) the sum-pooled features, embed a spectrally
      normalised K × C embedding (Glorot-uniform init). Called without ``y`` it returns ψ(φ(x)).
    * ``conditioning="concat"`` [SNP:dis_models/snresnet.py SNResNetConcatDiscriminator]: a
      spectrally normalised K × ``embed_dim`` (128) embedding, broadcast over H × W and
      concatenated to the features after the third block. The block after it takes
      C + ``embed_dim`` channels, as the released class declares it (``Block(ch * 4 + dim_emb,
      ch * 8)``, SNP e84b1a5; checked number for number in
      ``benchmarks/reference_equivalence``, section ``sngan-cond``).
    """

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 3,
        block_channels: tuple[int, ...] = (128, 128, 128, 128),
        downsample: tuple[bool, ...] = (True, True, False, False),
        final_bias: bool = False,
        norm: str = "spectral",
        num_classes: int = 0,
        conditioning: str = "projection",
        embed_dim: int = CONCAT_EMBED_DIM,
    ) -> None:
        super().__init__()
        if norm not in D_NORMS:
            raise ConfigError(f"norm must be one of {', '.join(map(repr, D_NORMS))}; got {norm!r}")
        if len(block_channels) != len(downsample) or not downsample[0]:
            raise ConfigError("the first discriminator block always downsamples (OptimizedBlock)")
        if num_classes < 0:
            raise ConfigError(f"num_classes must be >= 0 (0: unconditional), got {num_classes}")
        if conditioning not in D_CONDITIONING:
            raise ConfigError(
                f"conditioning must be one of {', '.join(map(repr, D_CONDITIONING))}; got {conditioning!r}"
            )
        concat = bool(num_classes) and conditioning == "concat"
        if concat and len(block_channels) <= CONCAT_AFTER:
            raise ConfigError(f"the concat discriminator needs more than {CONCAT_AFTER} blocks")
        self.image_shape = (channels, image_size, image_size)
        self.norm = norm
        self.num_classes = num_classes
        self.conditioning = conditioning if num_classes else ""
        blocks = [OptimizedBlock(channels, block_channels[0])]
        for i, (cin, cout, down) in enumerate(zip(block_channels[:-1], block_channels[1:], downsample[1:]), start=1):
            if concat and i == CONCAT_AFTER:
                cin += embed_dim
            blocks.append(DownBlock(cin, cout, down))
        self.blocks = nn.Sequential(*blocks)
        self.feature_dim = block_channels[-1]
        self.out = _glorot(nn.Linear(self.feature_dim, 1, bias=final_bias), 1.0)
        if num_classes:
            dim = embed_dim if concat else self.feature_dim
            self.embed = _glorot(nn.Embedding(num_classes, dim), 1.0)
        if norm == "spectral":
            apply_spectral_norm(self)  # the class embedding too (SNEmbedID)

    def forward(self, x: Tensor, y: Tensor | None = None, with_features: bool = False):
        if isinstance(y, bool):  # the unconditional call signature forward(x, with_features)
            y, with_features = None, y
        if self.conditioning == "concat" and y is None:
            raise ValueError("the concat discriminator needs the classes y")
        if self.conditioning == "concat":
            h = self.blocks[:CONCAT_AFTER](x)
            e = self.embed(y)
            h = torch.cat([h, e[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])], dim=1)
            h = self.blocks[CONCAT_AFTER:](h)
        else:
            h = self.blocks(x)
        features = F.relu(h, inplace=True).sum(dim=(2, 3))  # global SUM pooling
        logits = self.out(features).view(-1)
        if self.conditioning == "projection" and y is not None:
            logits = logits + (self.embed(y) * features).sum(dim=1)
        return (logits, features) if with_features else logits


def resnet_generator(
    *,
    image_size: int = 32,
    channels: int = 3,
    z_dim: int = 128,
    width: float = 1.0,
    z_distribution: str = "normal",
    num_classes: int = 0,
) -> ResNetGenerator:
    """ResNet G: CIFAR-10 (``image_size=32``, Table 4), STL-10 (``48``, Table 5), ImageNet
    (``64``, ``128``, Table 6); ``num_classes`` > 0 makes every block's BN class-conditional."""
    cfg = _config(image_size)
    return ResNetGenerator(
        image_size,
        channels,
        z_dim,
        _units(cfg["g_start"], width),
        tuple(_units(c, width) for c in cfg["g_blocks"]),
        z_distribution,
        num_classes,
    )


def resnet_discriminator(
    *,
    image_size: int = 32,
    channels: int = 3,
    width: float = 1.0,
    norm: str = "spectral",
    final_bias: bool | None = None,
    num_classes: int = 0,
    conditioning: str = "projection",
    embed_dim: int = CONCAT_EMBED_DIM,
) -> ResNetDiscriminator:
    """ResNet D: CIFAR-10 (``image_size=32``, Table 4; final dense without bias), STL-10
    (``48``, Table 5), ImageNet (``64``, ``128``); ``norm`` "spectral" or "none";
    ``num_classes`` > 0 with ``conditioning`` "projection" or "concat" (``embed_dim`` wide)."""
    cfg = _config(image_size)
    return ResNetDiscriminator(
        image_size,
        channels,
        tuple(_units(c, width) for c in cfg["d_blocks"]),
        cfg["d_down"],
        cfg["final_bias"] if final_bias is None else final_bias,
        norm,
        num_classes,
        conditioning,
        embed_dim,
    )


BUILDERS = {
    "sngan-resnet-g": resnet_generator,
    "sngan-resnet-d": resnet_discriminator,
}
