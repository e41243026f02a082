"""Objectives by name: what one training iteration computes (see ``base.Objective``)."""

from .base import Objective
from .semi_supervised import SemiSupervisedGAN

OBJECTIVES = {
    "semi-supervised": SemiSupervisedGAN,
}

__all__ = ["OBJECTIVES", "Objective", "SemiSupervisedGAN"]
