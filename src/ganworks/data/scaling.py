"""Pixel scaling, in one place: uint8 images ↔ the float range each reference trains in.

| scale                | float = a·x + b          | used by (docs/papers.md)                              |
|----------------------|--------------------------|--------------------------------------------------|
| ``zero_one``         | x / 255                  | Improved-GAN MNIST (G ends in a sigmoid, §A.2)   |
| ``improved_gan_cifar`` | (x − 127.5) / 128      | Improved-GAN CIFAR-10 (§A.3)                     |
| ``minus_one_one``    | x / 127.5 − 1            | Improved-GAN SVHN (§A.3), SN-GAN (§B.2, chainer-gan-lib) |
| ``imagenet``         | x / 128 − 1              | sngan_projection's ImageNet data (+ U(0, 1/128) noise, ``data.folder``) |
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import ConfigError

SCALES: dict[str, tuple[float, float]] = {
    "zero_one": (1.0 / 255.0, 0.0),
    "improved_gan_cifar": (1.0 / 128.0, -127.5 / 128.0),
    "minus_one_one": (1.0 / 127.5, -1.0),
    "imagenet": (1.0 / 128.0, -1.0),
}

#: The scale a dataset gets when a preset names none.
DEFAULT_SCALE = {
    "mnist": "zero_one",
    "digits": "zero_one",
    "synthetic": "zero_one",
    "cifar10": "minus_one_one",
    "svhn": "minus_one_one",
    "stl10": "minus_one_one",
    "imagefolder": "minus_one_one",
    "imagenet": "imagenet",
}


def _coefficients(scale: str) -> tuple[float, float]:
    try:
        return SCALES[scale]
    except KeyError:
        raise ConfigError(f"unknown pixel scale {scale!r}; choose one of {', '.join(SCALES)}") from None


def to_float(x: Tensor, scale: str) -> Tensor:
    """uint8 images (any shape) → float32 in the scale's range."""
    a, b = _coefficients(scale)
    return x.to(torch.float32).mul_(a).add_(b)


def to_uint8(x: Tensor, scale: str, mode: str = "round") -> Tensor:
    """Float images in the scale's range → uint8, clipped to [0, 255].

    ``mode="round"`` rounds to the nearest level (default); ``"truncate"`` drops the fraction as
    chainer-gan-lib does before scoring (``np.clip(x * 127.5 + 127.5, 0, 255).astype(np.uint8)``).
    """
    a, b = _coefficients(scale)
    y = (x.detach().float() - b) / a
    if mode == "round":
        y = y.round_()
    elif mode == "truncate":
        y = y.clamp_(0, 255).trunc_()
    else:
        raise ConfigError(f"unknown uint8 conversion {mode!r}: use 'round' or 'truncate'")
    return y.clamp_(0, 255).to(torch.uint8)


def data_scale(data_cfg: dict) -> str:
    """The pixel scale of a config's data: ``data.scale``, else the dataset's default."""
    return data_cfg["scale"] or DEFAULT_SCALE.get(data_cfg["name"].split(":")[0], "minus_one_one")


def dequantize(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Add U(0, 1/128) noise in place: sngan_projection's CIFAR-10 loader, ``x/128 − 1 + U(0, 1/128)``."""
    noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x.add_(noise.mul_(1.0 / 128.0))
