"""Objectives by name: what one training iteration computes (see ``base.Objective``)."""

from .base import Objective
from .conditional import ConditionalGAN
from .gan import GAN
from .semi_supervised import SemiSupervisedGAN

OBJECTIVES = {
    "semi-supervised": SemiSupervisedGAN,
    "gan": GAN,
    "conditional-gan": ConditionalGAN,
}

__all__ = ["ConditionalGAN", "GAN", "OBJECTIVES", "Objective", "SemiSupervisedGAN"]
