"""Fixtures for the metrics tests: a randomly initialised Inception weights file, tiny image sets."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(scope="session")
def random_inception_weights(tmp_path_factory):
    """torch-fidelity's Inception-v3 with random (but non-collapsed) weights, saved to a temp file."""
    pytest.importorskip("torch_fidelity")
    from ganworks.metrics.inception import save_random_inception_weights

    return save_random_inception_weights(tmp_path_factory.mktemp("inception") / "random-inception.pth", seed=0)


def _images(n, seed, bright):
    g = torch.Generator().manual_seed(seed)
    low = torch.nn.functional.interpolate(torch.rand(n, 3, 4, 4, generator=g), size=32, mode="bilinear")
    x = 0.6 * low + 0.4 * torch.rand(n, 3, 32, 32, generator=g)
    return (x * bright * 255).clamp(0, 255).to(torch.uint8)


@pytest.fixture(scope="session")
def fake_images():
    """24 RGB 32×32 uint8 images ('generated')."""
    return _images(24, seed=1, bright=0.8)


@pytest.fixture(scope="session")
def real_images():
    """16 RGB 32×32 uint8 images from a different distribution ('reference')."""
    return _images(16, seed=2, bright=1.0)


@pytest.fixture(scope="session")
def image_tree(tmp_path_factory, real_images, fake_images):
    """A reference image-folder dataset root/test/<class>/*.png and a fake .npz (NHWC)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("imgs")
    for i, img in enumerate(real_images):
        d = root / "ref" / "test" / f"c{i % 2}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(d / f"{i:03d}.png")
    np.savez(root / "fake.npz", images=fake_images.permute(0, 2, 3, 1).numpy())
    return root
