"""Shared fixtures: tiny configurations that train in a second on 2 CPU cores."""

from __future__ import annotations

import os

import pytest
import torch

torch.set_num_threads(1)

SHARED_DATA = os.environ.get("GANWORKS_DATA", "")

#: The MNIST recipe shrunk to scikit-learn's 8×8 digits, 20 labels, tiny widths.
TINY_DIGITS = [
    "data.name=digits", "data.labels=20", "data.batch_size=50", "data.test_limit=200",
    "model.init_examples=100",
    "model.generator.image_size=8", "model.generator.width=0.05",
    "model.discriminator.image_size=8", "model.discriminator.width=0.05",
    "eval.grid=16",
]


@pytest.fixture
def tiny_digits():
    return list(TINY_DIGITS)


@pytest.fixture
def mnist_root():
    """The data root holding real MNIST (GANWORKS_DATA), or skip."""
    if not (SHARED_DATA and os.path.isdir(os.path.join(SHARED_DATA, "MNIST", "raw"))):
        pytest.skip("GANWORKS_DATA does not hold MNIST/raw")
    return SHARED_DATA
