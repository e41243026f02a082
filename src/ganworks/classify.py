"""A trained semi-supervised run's classifier applied to new images (``ganworks classify``, ``ganworks.api``).

The classifier is the run's discriminator over its K class logits (the paper's classifier: the
averaged D when the run kept one), in eval mode. New images are brought to what it was trained on
exactly as a run's own data is: decoded to the run's channels (PIL's ``convert("L")``/``("RGB")``),
resized to its image size with the same resize as training, scaled to its pixel range. The
prediction is the argmax of the logits, as ``ganworks eval`` counts errors; the probabilities are
the softmax over the K classes (the class given that the image is real).

Inputs: a folder (images at any nesting; when every image sits under a folder named after one of
the run's classes, those folders are the labels and the error count is reported), an .npz with
``x`` (the layouts of ``ganworks.data.own``) and optional ``y`` (-1 unknown), or arrays/tensors:
NumPy arrays channels-last (N, H, W[, C]), torch tensors channels-first (N, [C,] H, W), uint8 or
float in [0, 1].
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .data.datasets import resize_images
from .data.own import convert_channels, decode_images, image_files, images_from_array
from .data.scaling import to_float
from .errors import CheckpointError, ConfigError, DataError


@dataclass
class Inputs:
    """Images to classify: uint8 (N, C, H, W), their ids (file paths or indices) and labels if known."""

    images: torch.Tensor
    ids: list = field(default_factory=list)
    labels: torch.Tensor | None = None  # class index per image, -1 unknown
    id_column: str = "index"


@dataclass
class Predictions:
    """What a classifier says about N images: ``predicted`` class indices, their ``names``, the class
    probabilities ``probs`` (N, K), and ``ids`` (files or indices) in input order."""

    predicted: np.ndarray
    probs: np.ndarray
    class_names: list[str]
    ids: list
    id_column: str = "index"

    @property
    def names(self) -> list[str]:
        return [self.class_names[i] for i in self.predicted]

    def errors(self, labels) -> int:
        """Misclassified images among those with a known label (>= 0)."""
        labels = np.asarray(labels)
        known = labels >= 0
        return int((self.predicted[known] != labels[known]).sum())

    def header(self, top_k: int | None = None) -> list[str]:
        if top_k:
            return [self.id_column, "predicted"] + [c for k in range(1, top_k + 1) for c in (f"class_{k}", f"prob_{k}")]
        return [self.id_column, "predicted"] + [f"prob_{c}" for c in self.class_names]

    def rows(self, top_k: int | None = None):
        """CSV rows: id, predicted name, then every class's probability, or the ``top_k`` classes and
        their probabilities, most probable first."""
        for i, (p, row) in enumerate(zip(self.predicted, self.probs)):
            head = [self.ids[i] if self.ids else i, self.class_names[p]]
            if top_k:
                order = np.argsort(-row, kind="stable")[:top_k]
                yield head + [v for j in order for v in (self.class_names[j], f"{row[j]:.6f}")]
            else:
                yield head + [f"{v:.6f}" for v in row]


def read_input(source, class_names=(), channels: int = 0) -> Inputs:
    """``source``: a folder of images (any nesting; decoded to ``channels``, 0: as the files are) or an
    .npz (``x``, optional ``y``)."""
    p = Path(source).expanduser()
    if not p.exists():
        raise DataError(f"input {p} does not exist: give a folder of images or an .npz")
    if p.is_file():
        if p.suffix.lower() != ".npz":
            raise DataError(f"input {p} is a file but not an .npz: give a folder of images or an .npz with 'x'")
        try:
            with np.load(p, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except Exception as e:
            raise DataError(f"cannot read {p} as an .npz ({type(e).__name__})") from None
        if "x" not in arrays:
            raise DataError(f"{p} has no array 'x' (the images); it has {', '.join(arrays) or 'none'}")
        images = images_from_array(arrays["x"], f"{p.name}:x")
        labels = None
        if "y" in arrays and len(np.asarray(arrays["y"]).reshape(-1)) == len(images):
            labels = torch.from_numpy(np.asarray(arrays["y"]).reshape(-1).astype(np.int64))
        return Inputs(images, list(range(len(images))), labels, "index")
    files = image_files(p)
    if not files:
        raise DataError(f"no images ({', '.join(('.png', '.jpg', '...'))}) under {p}")
    rel = [f.relative_to(p) for f in files]
    labels = None
    if class_names and all(len(r.parts) > 1 and r.parts[0] in class_names for r in rel):
        labels = torch.tensor([list(class_names).index(r.parts[0]) for r in rel])
    return Inputs(torch.from_numpy(decode_images(files, channels)), [r.as_posix() for r in rel], labels, "file")


def as_uint8_images(images) -> torch.Tensor:
    """uint8 (N, C, H, W) from a NumPy array (N, H, W[, C]) or a torch tensor (N, [C,] H, W), uint8 or
    float in [0, 1]."""
    if isinstance(images, np.ndarray):
        return images_from_array(images, "images")
    if not isinstance(images, torch.Tensor):
        raise DataError(f"cannot classify a {type(images).__name__}: pass a folder, an .npz, an array or a tensor")
    t = images.detach().cpu()
    if t.dim() == 3:
        t = t.unsqueeze(1)
    if t.dim() != 4 or t.shape[1] not in (1, 3):
        raise DataError(
            f"a tensor of images must be (N, C, H, W) with C 1 or 3, or (N, H, W); got {tuple(images.shape)}"
        )
    return images_from_array(t.permute(0, 2, 3, 1).numpy(), "images")


class Classifier(nn.Module):
    """A run's discriminator as a K-class image classifier. ``forward`` takes images already in the
    run's pixel scale and returns the K logits; ``predict`` takes anything :func:`read_input` or
    :func:`as_uint8_images` reads and returns :class:`Predictions`."""

    def __init__(self, D: nn.Module, scale: str, class_names: list[str], batch_size: int = 1000) -> None:
        super().__init__()
        self.D = D.eval()
        self.scale, self.class_names, self.batch_size = scale, list(class_names), batch_size
        self.image_shape = tuple(D.image_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.D(x)

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) → the run's channels and size (as a run's own data is prepared)."""
        c, h, w = self.image_shape
        images = convert_channels(images, c)
        if tuple(images.shape[-2:]) != (h, w):
            if h != w:
                raise DataError(f"the run's images are {w}x{h}, not square: resize yours to {w}x{h}")
            images = resize_images(images, h)
        return images

    @torch.no_grad()
    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """K logits of uint8 (N, C, H, W) images, in batches of ``batch_size`` (as ``ganworks eval``)."""
        was = self.training
        self.eval()
        device = next(self.D.parameters()).device
        try:
            out = [
                self.D(to_float(x.to(device), self.scale)).float().cpu()
                for x in self.prepare(images).split(self.batch_size)
            ]
        finally:
            self.train(was)
        return torch.cat(out)

    def predict(self, source) -> Predictions:
        """:class:`Predictions` for a folder / .npz path, an array or a tensor of images."""
        return self.predict_inputs(
            read_input(source, self.class_names, self.image_shape[0])
            if isinstance(source, (str, os.PathLike))
            else Inputs(as_uint8_images(source))
        )

    def predict_inputs(self, inputs: Inputs) -> Predictions:
        logits = self.logits(inputs.images)
        return Predictions(
            logits.argmax(1).numpy(), torch.softmax(logits, 1).numpy(), self.class_names, inputs.ids, inputs.id_column
        )


def class_names_of(cfg: dict) -> list[str]:
    """The classes of a run's config: ``data.class_names``, else the indices ``0..K-1``."""
    names = list(cfg["data"].get("class_names") or [])
    k = cfg["model"]["discriminator"].get("num_classes", 10)
    return names or [str(i) for i in range(k)]


def load_classifier(run, device="cpu", averaged: bool = True) -> tuple[Classifier, dict, bool]:
    """``(classifier, config, is_averaged)`` of a semi-supervised run directory or checkpoint: the
    averaged D unless ``averaged=False`` or the run kept none."""
    from .checkpoints import load_discriminators
    from .data.scaling import data_scale

    D, D_avg, cfg = load_discriminators(run, device)
    if not cfg["data"]["labels"]:
        raise CheckpointError(f"{run} is not a semi-supervised run: its discriminator is no classifier")
    use_avg = averaged and D_avg is not None
    return (
        Classifier(D_avg if use_avg else D, data_scale(cfg["data"]), class_names_of(cfg), cfg["eval"]["batch_size"]),
        cfg,
        use_avg,
    )


def looks_like_predictions(path: Path) -> bool:
    """Whether ``path`` is a CSV this module wrote (its header starts with ``file,predicted`` or
    ``index,predicted``): the only file ``ganworks classify`` overwrites without ``--force``."""
    try:
        with open(path, newline="") as f:
            first = f.readline()
    except (OSError, UnicodeDecodeError):
        return False
    return first.startswith(("file,predicted,", "index,predicted,"))


def write_csv(predictions: Predictions, out: Path, top_k: int | None = None) -> None:
    """Write the predictions to ``out`` atomically (a temporary file renamed over it)."""
    out = Path(out)
    if top_k is not None and not 1 <= top_k <= len(predictions.class_names):
        raise ConfigError(
            f"--top-k must be between 1 and {len(predictions.class_names)} (the run's classes), got {top_k}"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(predictions.header(top_k))
        w.writerows(predictions.rows(top_k))
    os.replace(tmp, out)
