"""The device a command runs on: ``auto`` (CUDA when PyTorch sees a GPU, else CPU), ``cpu`` or ``cuda``."""

from __future__ import annotations

import torch

from .errors import ConfigError


def pick_device(name: str | torch.device | None = "auto") -> torch.device:
    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = str(name)
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda asked for, but PyTorch sees no CUDA GPU: use --device cpu (or auto)")
    if name != "cpu" and not name.startswith("cuda"):
        raise ConfigError(f"unknown device {name!r}: use auto, cpu or cuda")
    return torch.device(name)
