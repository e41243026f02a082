"""The Python API: a trained run's models, samples, predictions and scores in a few lines (docs/python-api.md).

    from ganworks import api

    run = api.train("improved-gan/own-data", out="runs/mine", overrides={"data.path": "mydata"}, epochs=10)
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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .classify import Classifier, Predictions, class_names_of
from .device import pick_device

__all__ = [
    "Classifier",
    "Predictions",
    "Run",
    "SemiSupervisedClassifier",
    "classify",
    "load_classifier",
    "load_discriminator",
    "load_generator",
    "load_run",
    "metrics",
    "sample",
    "train",
]

PathLike = str | os.PathLike


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


RunLike = Run | PathLike


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


def classify(run: RunLike | Classifier, images, averaged: bool = True, device: str = "cpu") -> Predictions:
    """Predictions of a run's classifier for ``images``: a folder of image files (any nesting), an
    .npz with ``x``, a NumPy array or a torch tensor. Returns :class:`Predictions` with ``predicted``
    (class indices), ``names``, ``probs`` (N, K) and ``ids`` (files or indices)."""
    classifier = run if isinstance(run, Classifier) else load_classifier(run, averaged=averaged, device=device)
    return classifier.predict(images)


def metrics(
    images: RunLike | torch.Tensor | PathLike,
    reference: str | None = None,
    metrics: Sequence[str] = ("is",),
    num_samples: int = 10000,
    **options,
):
    """IS / FID / KID of ``images`` (a uint8 tensor or array, an image folder, an .npz, or a run,
    whose G makes ``num_samples`` images) against ``reference`` (``"mnist:test"``,
    ``"cifar10:test"``, a statistics .npz; needed for FID/KID). ``options`` are
    :func:`ganworks.metrics.compute_metrics`'s (``extractor``, ``weights``, ``classifier``, ``device``,
    ``progress``, ...). Returns a ``MetricsResult`` whose ``scores`` dict holds the numbers."""
    from .metrics.api import compute_metrics

    source = str(images.path) if isinstance(images, Run) else images
    return compute_metrics(source, reference=reference, metrics=tuple(metrics), num_samples=num_samples, **options)


def _override(key: str, value) -> str:
    """``key=value`` as ``--set`` reads it (a TOML value; strings quoted)."""
    import json

    if isinstance(value, bool):
        return f"{key}={'true' if value else 'false'}"
    if isinstance(value, (str, os.PathLike)):
        return f"{key}={json.dumps(str(value))}"
    return f"{key}={json.dumps(value)}"


def train(
    preset: str | None,
    out: PathLike,
    overrides: dict | Sequence[str] = (),
    *,
    epochs: float | None = None,
    iterations: int | None = None,
    seed: int | None = None,
    resume: bool = False,
    device: str | None = None,
    data_root: PathLike | None = None,
    max_minutes: float | None = None,
    progress: bool = True,
) -> Run:
    """Train ``preset`` into the run folder ``out`` (new or empty), exactly as ``ganworks train`` does
    (both call :func:`ganworks.train.run.run`), with a progress bar; returns the :class:`Run`.

    ``overrides``: ``{"data.path": "mydata", "optim.lr": 0.001}`` or ``["data.path=mydata", ...]``
    (``--set``). ``resume=True`` continues the run in ``out`` (``preset`` may then be None); a run
    stopped by Ctrl-C has saved ``last.pt`` and is returned as it is, to be resumed. Errors raise
    ``ganworks.errors.GanworksError`` with the one-line message the command prints.
    """
    from .train.run import RunRequest, run

    items = [_override(k, v) for k, v in overrides.items()] if isinstance(overrides, dict) else list(overrides)
    run(
        RunRequest(
            preset=preset or None,
            out=None if resume else out,
            resume=out if resume else None,
            overrides=items,
            seed=seed,
            epochs=epochs,
            iterations=iterations,
            max_minutes=max_minutes,
            device=device,
            data_root=data_root,
            progress=progress,
        )
    )
    return load_run(out)


class SemiSupervisedClassifier:
    """A scikit-learn-style estimator over :func:`train`: ``fit(x_labeled, y, x_unlabeled)`` trains
    ``preset`` (default ``improved-gan/own-data``) on the labeled + unlabeled images, then
    ``predict`` / ``predict_proba`` / ``score`` use the run's averaged D. Images as in :func:`classify`
    (NumPy channels-last, uint8 or float in [0, 1]); labels any values (``classes_`` holds them, sorted).

    The training data is written to ``<out>-data.npz`` beside the run folder ``out`` (default: a new
    temporary folder), which the run refers to. Not a full scikit-learn estimator (no
    ``get_params``/``clone``).
    """

    def __init__(
        self,
        preset: str = "improved-gan/own-data",
        epochs: float | None = 10,
        out: PathLike | None = None,
        overrides: dict | Sequence[str] = (),
        device: str | None = None,
        progress: bool = True,
    ) -> None:
        self.preset, self.epochs, self.out, self.overrides = preset, epochs, out, overrides
        self.device, self.progress = device, progress
        self.run_: Run | None = None
        self.classifier_: Classifier | None = None

    def fit(self, x_labeled, y, x_unlabeled=None) -> SemiSupervisedClassifier:
        import tempfile

        import numpy as np

        from .data.own import images_from_array

        y = np.asarray(y)
        self.classes_ = np.unique(y)
        lab = images_from_array(x_labeled, "x_labeled")
        x = lab if x_unlabeled is None else torch.cat([lab, images_from_array(x_unlabeled, "x_unlabeled")])
        if len(y) != len(lab):
            from .errors import DataError

            raise DataError(f"{len(y)} labels for {len(lab)} labeled images: give one label per image")
        labels = np.full(len(x), -1, dtype=np.int64)
        labels[: len(lab)] = np.searchsorted(self.classes_, y)
        out = Path(self.out) if self.out is not None else Path(tempfile.mkdtemp(prefix="ganworks-")) / "run"
        data = out.with_name(out.name + "-data.npz")
        data.parent.mkdir(parents=True, exist_ok=True)
        np.savez(data, x=x.permute(0, 2, 3, 1).numpy(), y=labels, classes=np.array([str(c) for c in self.classes_]))
        extra = dict(self.overrides) if isinstance(self.overrides, dict) else None
        overrides = (
            {**extra, "data.path": str(data)} if extra is not None else [*self.overrides, _override("data.path", data)]
        )
        self.run_ = train(self.preset, out, overrides, epochs=self.epochs, device=self.device, progress=self.progress)
        self.classifier_ = load_classifier(self.run_, device=self.device or "auto")
        return self

    def _check(self) -> Classifier:
        if self.classifier_ is None:
            raise RuntimeError("call fit() first")
        return self.classifier_

    def predict_proba(self, x):
        """(N, K) class probabilities, columns in the order of ``classes_``."""
        return self._check().predict(x).probs

    def predict(self, x):
        """The predicted label of each image (values from ``classes_``)."""
        return self.classes_[self._check().predict(x).predicted]

    def score(self, x, y) -> float:
        """Accuracy on ``(x, y)``."""
        import numpy as np

        return float(np.mean(self.predict(x) == np.asarray(y)))
