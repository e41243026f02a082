"""Batch normalization without a gain, as in the Improved-GAN generators (docs/papers.md §A.2, §A.3, §C.4d).

The reference's generator BN (``nn.batch_norm(layer, g=None)``) removes the wrapped layer's bias,
normalises with the current batch's statistics (eps 1e-6 inside the square root), adds a learned
bias and never scales. It always uses batch statistics, also when sampling, so the PyTorch module
keeps no running statistics.
"""

from __future__ import annotations

from torch import nn


def batch_norm_no_gain(num_features: int, dims: int = 1, eps: float = 1e-6) -> nn.Module:
    """A BatchNorm1d/2d with a fixed unit gain, a learned bias and batch statistics only."""
    cls = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}[dims]
    bn = cls(num_features, eps=eps, affine=True, track_running_stats=False)
    bn.weight.requires_grad_(False)
    return bn
