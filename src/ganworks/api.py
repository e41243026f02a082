"""The Python API: a trained run's models, samples, predictions and scores in a few lines (docs/python-api.md).

    from ganworks import api

    run = api.load_run("runs/mine")                 # a run directory or a checkpoint file
    images = api.sample(run, 64, seed=0)            # uint8 (64, C, H, W)
    pred = api.classify(run, "new_images/")         # a folder, an .npz, an array or a tensor
    pred.names[:5], pred.probs.shape                # predicted class names, (N, K) probabilities
    scores = api.metrics(images, reference="mnist:test", metrics=("fid",))

Images go in as NumPy arrays channels-last ((N, H, W) or (N, H, W, C)) or torch tensors
channels-first ((N, C, H, W) or (N, H, W)), uint8 0-255 or float in [0, 1]; they come out as
uint8 torch tensors (N, C, H, W). Every function takes a :class:`Run` or a run path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, Union

import torch
from torch import nn

from .classify import Classifier, Predictions, class_names_of
from .device import pick_device

__all__ = ["Classifier", "Predictions", "Run", "classify", "load_classifier", "load_discriminator",
           "load_generator", "load_run", "metrics", "sample"]

PathLike = Union[str, os.PathLike]


@dataclass
class Run:
    """A trained run: its folder (or checkpoint file) and resolved configuration."""

    path: Path
    config: dict

    @property
    def class_names(self) -> list[str]:
        """The classes of a semi-supervised run (``data.class_names``, else ``"0".."K-1"``)."""
        return class_names_of(self.config)

    @property
    def scale(self) -> str:
        """The pixel scale G and D work in (``ganworks.data.scaling``)."""
        from .data.scaling import data_scale

        return data_scale(self.config["data"])

    @property
    def preset(self) -> str:
        return self.config["meta"].get("preset", "")

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, preset={self.preset!r})"


RunLike = Union[Run, PathLike]


def load_run(path: PathLike) -> Run:
    """The run at ``path`` (a run directory, read from ``checkpoints/last.pt``, or a checkpoint file)."""
    from .checkpoints import load_checkpoint

    return Run(Path(path), load_checkpoint(path)["config"])


def _path(run: RunLike) -> Path:
    return run.path if isinstance(run, Run) else Path(run)


def _keep_rng():
    """Building a model draws its initial weights from torch's global RNG: the loaders leave it as
    they found it, so loading a run between two seeded steps of a notebook changes nothing."""
    return torch.random.fork_rng(devices=[])


def load_generator(run: RunLike, averaged: bool = True, device: str = "cpu") -> nn.Module:
    """G in eval mode (the averaged G when the run kept one and ``averaged``); ``G(G.sample_z(n))``
    gives images in the run's pixel scale."""
    from .checkpoints import load_generator as load

    with _keep_rng():
        return load(_path(run), pick_device(device), averaged=averaged)[0]


def load_discriminator(run: RunLike, averaged: bool = True, device: str = "cpu") -> nn.Module:
    """D in eval mode: the averaged D when the run kept one and ``averaged``, else the raw D."""
    from .checkpoints import load_discriminators

    with _keep_rng():
        D, D_avg, _ = load_discriminators(_path(run), pick_device(device))
    return D_avg if averaged and D_avg is not None else D


def load_classifier(run: RunLike, averaged: bool = True, device: str = "cpu") -> Classifier:
    """A semi-supervised run's classifier (the averaged D unless ``averaged=False`` or the run kept
    none) that takes images as they come: ``load_classifier(run).predict(images)``."""
    from .classify import load_classifier as load

    with _keep_rng():
        return load(_path(run), pick_device(device), averaged=averaged)[0]


@torch.no_grad()
def sample(run: RunLike, n: int = 64, seed: int = 0, averaged: bool = True, device: str = "cpu") -> torch.Tensor:
    """``n`` generated images, uint8 (n, C, H, W), from noise seeded by ``seed`` (the global RNG is
    left as it was): the averaged G when the run kept one and ``averaged``."""
    from .metrics.datasets import generate_images

    dev = pick_device(device)
    run = run if isinstance(run, Run) else load_run(run)
    G = load_generator(run, averaged=averaged, device=str(dev))
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        return generate_images(G, n, run.scale, dev, batch_size=500)


def classify(run: Union[RunLike, Classifier], images, averaged: bool = True, device: str = "cpu") -> Predictions:
    """Predictions of a run's classifier for ``images``: a folder of image files (any nesting), an
    .npz with ``x``, a NumPy array or a torch tensor. Returns :class:`Predictions` with ``predicted``
    (class indices), ``names``, ``probs`` (N, K) and ``ids`` (files or indices)."""
    classifier = run if isinstance(run, Classifier) else load_classifier(run, averaged=averaged, device=device)
    return classifier.predict(images)


def metrics(images: Union[RunLike, torch.Tensor, PathLike], reference: str | None = None,
            metrics: Sequence[str] = ("is",), num_samples: int = 10000, **options):
    """IS / FID / KID of ``images`` (a uint8 tensor or array, an image folder, an .npz, or a run,
    whose G makes ``num_samples`` images) against ``reference`` (``"mnist:test"``,
    ``"cifar10:test"``, a statistics .npz; needed for FID/KID). ``options`` are
    :func:`ganworks.metrics.compute_metrics`'s (``extractor``, ``weights``, ``classifier``, ``device``,
    ``progress``, ...). Returns a ``MetricsResult`` whose ``scores`` dict holds the numbers."""
    from .metrics.api import compute_metrics

    source = str(images.path) if isinstance(images, Run) else images
    return compute_metrics(source, reference=reference, metrics=tuple(metrics), num_samples=num_samples, **options)
