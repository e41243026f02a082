"""Additive Gaussian noise layer [Improved-GAN reference code; docs/papers.md §A.2, §A.5].

The MNIST discriminator adds N(0, 0.3²) to its input and N(0, 0.5²) after every hidden layer; the
CIFAR/SVHN minibatch-discrimination discriminator adds N(0, 0.2²) to its input. Noise is added in
training mode only; in eval mode the layer is the identity.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class GaussianNoise(nn.Module):
    """``x + σ·ε`` with ε ~ N(0, I) when training, ``x`` otherwise."""

    def __init__(self, sigma: float) -> None:
        super().__init__()
        if sigma < 0:
            raise ValueError(f"noise sigma must be >= 0, got {sigma}")
        self.sigma = float(sigma)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.sigma == 0.0:
            return x
        # one draw for the whole layer, scaled and added in place: no temporary besides the noise
        return torch.randn_like(x).mul_(self.sigma).add_(x)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}"
