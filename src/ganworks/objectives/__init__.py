"""Objectives by name: what one training iteration computes (see ``base.Objective``)."""

from .base import Objective
from .gan import GAN
from .semi_supervised import SemiSupervisedGAN

OBJECTIVES = {
    "semi-supervised": SemiSupervisedGAN,
    "gan": GAN,
}

__all__ = ["GAN", "OBJECTIVES", "Objective", "SemiSupervisedGAN"]
