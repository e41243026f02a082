"""Architectures, one file per family; each file exposes ``BUILDERS = {name: builder}``.

A builder is a function with keyword-only arguments that returns an ``nn.Module``. Generators have
``z_dim``, ``image_shape`` (C, H, W) and ``sample_z(n, device=None)``; discriminators have
``image_shape`` and ``forward(x, with_features=False)`` returning logits, or (logits, features).
"""

from __future__ import annotations

import importlib
import inspect

from ..errors import ConfigError

_FAMILIES = ["improved_gan_mnist", "improved_gan_cifar", "improved_gan_imagenet", "sngan_cnn", "sngan_resnet"]


def builders() -> dict:
    out = {}
    for family in _FAMILIES:
        try:
            module = importlib.import_module(f"{__name__}.{family}")
        except ModuleNotFoundError as e:  # a family not written yet
            if e.name != f"{__name__}.{family}":
                raise
            continue
        out.update(module.BUILDERS)
    return out


def build_model(name: str, **kwargs):
    """Build the architecture ``name`` with the builder's keyword arguments."""
    table = builders()
    if name not in table:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(sorted(table))}")
    fn = table[name]
    params = inspect.signature(fn).parameters
    unknown = [k for k in kwargs if k not in params]
    if unknown:
        raise ConfigError(
            f"model {name!r} has no option {', '.join(map(repr, unknown))}; its options: {', '.join(params)}"
        )
    return fn(**kwargs)
