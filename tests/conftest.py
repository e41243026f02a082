"""Shared fixtures: tiny configurations that train in a second on 2 CPU cores."""

from __future__ import annotations

import os

import pytest
import torch

torch.set_num_threads(1)

SHARED_DATA = os.environ.get("GANWORKS_DATA", "")

#: The MNIST recipe shrunk to scikit-learn's 8×8 digits, 20 labels, tiny widths.
TINY_DIGITS = [
    "data.name=digits",
    "data.labels=20",
    "data.batch_size=50",
    "data.test_limit=200",
    "model.init_examples=100",
    "model.generator.image_size=8",
    "model.generator.width=0.05",
    "model.discriminator.image_size=8",
    "model.discriminator.width=0.05",
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


def write_own_folder(root, labeled_per_class=5, classes=(0, 1, 2), unlabeled=60, test=30):
    """A folder of your own data (docs/own-data.md) made of scikit-learn's 8×8 digits as PNGs:
    ``labeled/digit<c>/``, ``unlabeled/`` (nested two deep) and ``test/digit<c>/``."""
    from pathlib import Path

    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    images, target = np.round(d.images * (255 / 16)).astype(np.uint8), d.target
    root = Path(root)
    train, held = np.arange(0, 1500), np.arange(1500, 1797)
    for c in classes:
        for i in train[target[train] == c][:labeled_per_class]:
            (root / "labeled" / f"digit{c}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[i]).save(root / "labeled" / f"digit{c}" / f"{i:04d}.png")
    for k, i in enumerate(train[np.isin(target[train], classes)][-unlabeled:] if unlabeled else []):
        sub = root / "unlabeled" / f"batch{k % 3}" / ("deeper" if k % 2 else "")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i]).save(sub / f"{i:04d}.png")
    for i in held[np.isin(target[held], classes)][:test]:
        (root / "test" / f"digit{target[i]}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i]).save(root / "test" / f"digit{target[i]}" / f"{i:04d}.png")
    return root


@pytest.fixture
def own_folder(tmp_path, monkeypatch):
    """``write_own_folder`` under tmp_path, with the decode cache in tmp_path too."""
    monkeypatch.setenv("GANWORKS_CACHE", str(tmp_path / "cache"))
    return write_own_folder(tmp_path / "mydata")


@pytest.fixture(scope="session")
def own_run(tmp_path_factory):
    """``(run, data folder, root)``: a tiny improved-gan/own-data run (10 iterations, averaged D) on a
    folder of 8x8 digits of four classes, trained once for the session."""
    from ganworks.cli import main

    root = tmp_path_factory.mktemp("own")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANWORKS_CACHE", str(root / "cache"))
        data = write_own_folder(root / "mydata", classes=(0, 1, 2, 3), test=40)
        run = root / "run"
        tiny = [
            f"data.path={data}",
            "model.generator.width=0.05",
            "model.discriminator.width=0.05",
            "model.init_examples=20",
            "data.batch_size=15",
            "eval.grid=4",
            "eval.every=5",
            "eval.batch_size=7",
        ]
        assert (
            main(
                [
                    "train",
                    "improved-gan/own-data",
                    *[a for o in tiny for a in ("--set", o)],
                    "--iterations",
                    "10",
                    "--out",
                    str(run),
                    "--no-progress",
                    "--device",
                    "cpu",
                ]
            )
            == 0
        )
        yield run, data, root
