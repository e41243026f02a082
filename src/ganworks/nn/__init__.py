"""Layers: weight norm with data-dependent init, Gaussian noise, BN without gain, and (per their
modules) spectral norm, minibatch discrimination and virtual batch normalization."""

from .batch_norm import batch_norm_no_gain
from .noise import GaussianNoise
from .weight_norm import data_dependent_init, weight_norm

__all__ = ["GaussianNoise", "batch_norm_no_gain", "data_dependent_init", "weight_norm"]
