"""Training: the one loop, experiments built from configs, checkpoints, averaging, optimizers."""

from ..checkpoints import load_checkpoint, load_discriminators, load_generator, save_atomic
from .averaging import EMA
from .experiment import Experiment, pick_device
from .loop import train

__all__ = [
    "EMA",
    "Experiment",
    "load_checkpoint",
    "load_discriminators",
    "load_generator",
    "pick_device",
    "save_atomic",
    "train",
]
