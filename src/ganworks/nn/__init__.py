"""Layers, one technique per module.

| technique (paper)                                   | module                    |
|-----------------------------------------------------|---------------------------|
| spectral normalization (SN-GAN §2.1, Algorithm 1)   | ``spectral_norm``         |
| weight normalization + data-dependent init (IG §6)  | ``weight_norm``           |
| minibatch discrimination (Improved-GAN §3.2)        | ``minibatch_discrimination`` |
| virtual batch normalization (Improved-GAN §3.5)     | ``vbn``                   |
| Gaussian noise layers (Improved-GAN reference code) | ``noise``                 |
| batch norm without gain (Improved-GAN generators)   | ``batch_norm``            |
| categorical conditional BN (SN-GAN §4.2, cGANs)     | ``conditional_batch_norm`` |
"""

from .batch_norm import batch_norm_no_gain
from .conditional_batch_norm import CategoricalConditionalBatchNorm2d
from .minibatch_discrimination import MinibatchDiscrimination
from .noise import GaussianNoise, ParallelGaussianStream
from .spectral_norm import apply_spectral_norm, spectral_norm, spectral_norms
from .vbn import VirtualBatchNorm
from .weight_norm import data_dependent_init, weight_norm

__all__ = [
    "CategoricalConditionalBatchNorm2d",
    "GaussianNoise",
    "MinibatchDiscrimination",
    "ParallelGaussianStream",
    "VirtualBatchNorm",
    "apply_spectral_norm",
    "batch_norm_no_gain",
    "data_dependent_init",
    "spectral_norm",
    "spectral_norms",
    "weight_norm",
]
