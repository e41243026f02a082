"""The Improved-GAN ImageNet 128×128 model [Improved-GAN §6.4; docs/papers.md §A.4-A.5; code
IG:imagenet/generator.py, discriminator.py, build_model.py, ops.py, model.py, train_imagenet.py].

Generator (``gf`` = 64): z ~ U[−1, 1]^8192 → dense gf·8·4·4 → reshape (gf·8, 4, 4) → VBN → ReLU →
concat ``gf`` channels of fresh U[−1, 1] noise → [5×5 stride-2 deconv → VBN → ReLU → concat noise
channels] to gf·4 @ 8², gf·2 @ 16², gf @ 32², gf @ 64², gf @ 128² (noise channels gf, gf//2, gf//4,
gf//8, gf//8; at least 1) → 5×5 stride-1 deconv to 3 (weights N(0, 0.075²), bias −0.45) → tanh.
Other weights N(0, 0.02²), biases 0. Every VBN is per channel
(:class:`ganworks.nn.vbn.VirtualBatchNorm`, γ ~ N(1, 0.02²), eps 1e-5). The reference batch is
fixed at construction: its noise z_ref **and** its noise channels are buffers (the reference's
non-trainable variables), re-run through the current weights at every forward, prepended to the
live rows and dropped from the output. The deconvolution is TF's 'SAME' transpose,
``ConvTranspose2d(k=5, stride=2, padding=2, output_padding=1)``.

Discriminator (``df`` = 64), always called on the **joint** batch [real; fake] of 2B images:
x + N(0, 0.1²) (training only) → 3×3 convs with lReLU 0.2 after a "cross" batch norm: df stride 2,
2df s2, 4df s2, 4df s1, 4df s1, 8df s2, 8df s2 (128 → 4) → flatten → dense df·40 → cross BN →
lReLU → minibatch discrimination (300 kernels × 50 dims on the joint batch; two features per
kernel: the sum of exp(−L1) over the real half and over the fake half, self excluded, each divided
by the reference's denominator, see :class:`JointMinibatchDiscrimination`) → dense to
1001 class logits (1000 classes + "generated"). GAN logit = logsumexp(the 1000 class logits) − the
generated logit.

"Cross" batch norm (``ops.batch_norm_cross``): the first half of the channels is normalised with
the statistics of the first half of the batch (the real images), the second half of the channels
with those of the second half (the fakes), each with its own γ ~ N(1, 0.02²), β = 0, eps 1e-5,
always batch statistics.

Differences, all UNVERIFIED in effect: TF's 'SAME' stride-2 3×3 conv pads (0, 1), PyTorch's
``padding=1`` pads (1, 1) (same output size, shifted by one pixel); TF's truncated-normal conv
init is drawn here as a plain normal clipped at ±2σ (``trunc_normal_``, the same distribution).

Builders: ``improved-gan-imagenet-g`` (``width`` scales gf; ``z_dim``; ``vbn_ref_size``, the
reference batch, 16 = the per-GPU batch), ``improved-gan-imagenet-d`` (``width`` scales df;
``num_kernels``, ``dim_per_kernel``; ``num_classes`` = 1001).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..nn.vbn import VirtualBatchNorm

_STD = 0.02


def _units(n: int, width: float) -> int:
    return max(1, int(round(n * width)))


def _deconv(cin: int, cout: int, stride: int = 2, std: float = _STD, bias: float = 0.0) -> nn.ConvTranspose2d:
    layer = nn.ConvTranspose2d(cin, cout, 5, stride=stride, padding=2, output_padding=stride - 1)
    nn.init.normal_(layer.weight, 0.0, std)
    nn.init.constant_(layer.bias, bias)
    return layer


class ImageNetGenerator(nn.Module):
    def __init__(self, image_size: int = 128, z_dim: int = 8192, gf: int = 64, vbn_ref_size: int = 16) -> None:
        super().__init__()
        if image_size != 128:
            raise ConfigError(f"the Improved-GAN ImageNet generator makes 128x128 images, got image_size {image_size}")
        self.image_shape = (3, 128, 128)
        self.z_dim = z_dim
        widths = [gf * 8, gf * 4, gf * 2, gf, gf, gf]  # h0 .. h5
        noise = [gf, gf, gf // 2, gf // 4, gf // 8, gf // 8]  # noise channels after each
        self.noise_channels = [max(1, c) for c in noise]
        self.sizes = [4 * 2**i for i in range(6)]
        self.dense = nn.Linear(z_dim, widths[0] * 16)
        nn.init.normal_(self.dense.weight, 0.0, _STD)
        nn.init.zeros_(self.dense.bias)
        self.deconvs = nn.ModuleList(
            _deconv(widths[i - 1] + self.noise_channels[i - 1], widths[i]) for i in range(1, 6)
        )
        self.vbns = nn.ModuleList(VirtualBatchNorm(w, vbn_ref_size) for w in widths)
        self.out = _deconv(widths[5] + self.noise_channels[5], 3, stride=1, std=0.075, bias=-0.45)
        self._widths = widths
        self.register_buffer("z_ref", self.sample_z(vbn_ref_size))
        for i, (c, s) in enumerate(zip(self.noise_channels, self.sizes)):
            self.register_buffer(f"noise_ref_{i}", torch.rand(vbn_ref_size, c, s, s) * 2 - 1)

    def sample_z(self, n: int, device=None) -> Tensor:
        """z ~ Uniform[−1, 1]^z_dim."""
        return torch.rand(n, self.z_dim, device=device) * 2 - 1

    def forward(self, z: Tensor) -> Tensor:
        n_ref, n = self.z_ref.shape[0], z.shape[0]
        h = self.dense(torch.cat([self.z_ref.to(z.dtype), z], dim=0)).view(-1, self._widths[0], 4, 4)
        for i in range(6):
            if i:
                h = self.deconvs[i - 1](h)
            h = F.relu(self.vbns[i](h))
            ref_noise = getattr(self, f"noise_ref_{i}").to(h.dtype)
            live_noise = torch.rand(n, *ref_noise.shape[1:], device=h.device, dtype=h.dtype) * 2 - 1
            h = torch.cat([h, torch.cat([ref_noise, live_noise], dim=0)], dim=1)
        return torch.tanh(self.out(h))[n_ref:]


class CrossBatchNorm(nn.Module):
    """``ops.batch_norm_cross``: channel half 0 normalised by batch half 0's statistics, channel
    half 1 by batch half 1's (per channel over N, H, W), separate γ ~ N(1, 0.02²) and β = 0."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        if num_features < 2:
            raise ConfigError("cross batch norm needs at least 2 channels")
        self.eps = eps
        self.gamma = nn.Parameter(1.0 + 0.02 * torch.randn(num_features))
        self.beta = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: Tensor) -> Tensor:
        n, c = x.shape[0] // 2, x.shape[1] // 2
        dims = (0,) + tuple(range(2, x.dim()))
        parts = []
        for ch, rows in ((slice(0, c), slice(0, n)), (slice(c, None), slice(n, None))):
            xc = x[:, ch]
            ref = xc[rows]
            mean = ref.mean(dim=dims, keepdim=True)
            var = ref.var(dim=dims, unbiased=False, keepdim=True)
            parts.append((xc - mean) / torch.sqrt(var + self.eps))
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return torch.cat(parts, dim=1) * self.gamma.view(shape) + self.beta.view(shape)


class JointMinibatchDiscrimination(nn.Module):
    """The ImageNet MD layer [IG:imagenet/discriminator.py; docs/papers.md §A.4]: dense to (kernels × dims),
    L1 distances d on the joint batch of 2B, per kernel the sum of exp(−d) over the real half and over
    the fake half (self excluded).

    Each sum is divided by ``tf.reduce_sum(half(mask, s))`` as in the reference: one scalar, the
    mask's count over the whole 2B × B block, B(2B − 1), not the per-row count of compared samples
    (B − 1 in a row's own half, B in the other) that docs/papers.md's "a mean" suggests. The reference
    code is what trained the published model, so this follows it; a per-row mean would give features
    ≈ 2B× larger (31× at the reference's B = 16). Checked against the TF code in
    ``benchmarks/reference_equivalence`` (section ``imagenet-tf``)."""

    def __init__(self, in_features: int, num_kernels: int = 300, dim_per_kernel: int = 50) -> None:
        super().__init__()
        self.num_kernels, self.dim_per_kernel = num_kernels, dim_per_kernel
        self.linear = nn.Linear(in_features, num_kernels * dim_per_kernel)
        nn.init.normal_(self.linear.weight, 0.0, _STD)
        nn.init.zeros_(self.linear.bias)

    @property
    def out_features(self) -> int:
        return 2 * self.num_kernels

    def forward(self, h: Tensor) -> Tensor:
        n2 = h.shape[0]
        b = n2 // 2
        m = self.linear(h).view(n2, self.num_kernels, self.dim_per_kernel)
        dist = (m[:, None] - m[None, :]).abs().sum(dim=3)  # (n2, n2, kernels)
        mask = 1.0 - torch.eye(n2, device=h.device, dtype=h.dtype)[:, :, None]
        sim = torch.exp(-dist) * mask
        f_real = sim[:, :b].sum(dim=1) / mask[:, :b].sum()  # / B(2B − 1), as the reference
        f_fake = sim[:, b:].sum(dim=1) / mask[:, b:].sum()
        return torch.cat([f_real, f_fake], dim=1)


class ImageNetDiscriminator(nn.Module):
    def __init__(
        self,
        image_size: int = 128,
        df: int = 64,
        num_classes: int = 1001,
        num_kernels: int = 300,
        dim_per_kernel: int = 50,
        input_noise: float = 0.1,
    ) -> None:
        super().__init__()
        if image_size != 128:
            raise ConfigError(
                f"the Improved-GAN ImageNet discriminator takes 128x128 images, got image_size {image_size}"
            )
        self.image_shape = (3, 128, 128)
        self.input_noise = input_noise
        self.num_classes = num_classes
        spec = [(df, 2), (df * 2, 2), (df * 4, 2), (df * 4, 1), (df * 4, 1), (df * 8, 2), (df * 8, 2)]
        convs, bns, cin = [], [], 3
        for cout, stride in spec:
            conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1)
            nn.init.trunc_normal_(conv.weight, 0.0, _STD, -2 * _STD, 2 * _STD)
            nn.init.zeros_(conv.bias)
            convs.append(conv)
            bns.append(CrossBatchNorm(cout))
            cin = cout
        self.convs, self.bns = nn.ModuleList(convs), nn.ModuleList(bns)
        self.dense = nn.Linear(cin * 4 * 4, df * 40)
        nn.init.normal_(self.dense.weight, 0.0, _STD)
        nn.init.zeros_(self.dense.bias)
        self.bn_dense = CrossBatchNorm(df * 40)
        self.md = JointMinibatchDiscrimination(df * 40, num_kernels, dim_per_kernel) if num_kernels else None
        self.feature_dim = df * 40
        self.out = nn.Linear(df * 40 + (self.md.out_features if self.md else 0), num_classes)
        nn.init.normal_(self.out.weight, 0.0, _STD)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, with_features: bool = False):
        """Class logits (2B, 1001) of a joint batch [real; fake] (its halves matter to the cross BN
        and the minibatch features)."""
        if x.shape[0] % 2:
            raise ValueError("the Improved-GAN ImageNet discriminator takes a joint batch [real; fake] of even size")
        h = x + self.input_noise * torch.randn_like(x) if (self.training and self.input_noise) else x
        for conv, bn in zip(self.convs, self.bns):
            h = F.leaky_relu(bn(conv(h)), 0.2)
        features = F.leaky_relu(self.bn_dense(self.dense(h.flatten(1))), 0.2)
        z = torch.cat([features, self.md(features)], dim=1) if self.md is not None else features
        logits = self.out(z)
        return (logits, features) if with_features else logits


def imagenet_generator(
    *, image_size: int = 128, z_dim: int = 8192, width: float = 1.0, vbn_ref_size: int = 16
) -> ImageNetGenerator:
    return ImageNetGenerator(image_size, z_dim, _units(64, width), vbn_ref_size)


def imagenet_discriminator(
    *,
    image_size: int = 128,
    width: float = 1.0,
    num_classes: int = 1001,
    num_kernels: int = 300,
    dim_per_kernel: int = 50,
    input_noise: float = 0.1,
) -> ImageNetDiscriminator:
    return ImageNetDiscriminator(
        image_size, max(2, _units(64, width)), num_classes, num_kernels, dim_per_kernel, input_noise
    )


BUILDERS = {
    "improved-gan-imagenet-g": imagenet_generator,
    "improved-gan-imagenet-d": imagenet_discriminator,
}
