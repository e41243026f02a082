"""Objectives by name: what one training iteration computes (see ``base.Objective``)."""

from .base import Objective
from .conditional import ConditionalGAN
from .gan import GAN
from .improved_gan_imagenet import ImageNetSemiSupervisedGAN
from .semi_supervised import SemiSupervisedGAN

OBJECTIVES = {
    "semi-supervised": SemiSupervisedGAN,
    "gan": GAN,
    "conditional-gan": ConditionalGAN,
    "improved-gan-imagenet": ImageNetSemiSupervisedGAN,
}

__all__ = ["ConditionalGAN", "GAN", "ImageNetSemiSupervisedGAN", "OBJECTIVES", "Objective", "SemiSupervisedGAN"]
