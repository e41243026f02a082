"""Small CNN classifiers for classifier-based IS / FID / KID (offline stand-ins for Inception).

The scores of Salimans et al. 2016 §4 (IS) and Heusel et al. 2017 (FID) only need a classifier's
class probabilities and an embedding.  On machines without the Inception weights we train a small
classifier on the dataset itself and run the *same* IS/FID/KID code on its logits (IS) and its
penultimate features (FID/KID).  Its scores are named after the classifier
(``mnist-classifier-FID``), never after Inception, and are not comparable to published numbers.

Architectures:

* ``smallcnn`` (MNIST-sized): conv32 → pool → conv64 ×2 → pool → conv128 → global average pool
  (features) → linear; BatchNorm + ReLU.  Reaches ≥ 99.3 % on MNIST in a few epochs.
* ``resnet9`` (CIFAR-sized): the DAWNBench "ResNet-9" (prep, 3 stages with max-pool, two residual
  blocks) with a width multiplier; with flips + 4-px crops and a one-cycle schedule the half-width
  model is designed to exceed 85 % test accuracy on CIFAR-10 within ~15-20 epochs.

A saved classifier file holds: architecture name + args, state dict, test accuracy, dataset name,
pixel scaling (``zero_one`` then per-channel mean/std, stored in the model as buffers), epochs and
wall time.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganworks.errors import CheckpointError, DataError

FORMAT = "ganworks-classifier-v1"


def _cbr(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _Normalize(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x_uint8):
        return (x_uint8.float() / 255.0 - self.mean) / self.std


class SmallCNN(nn.Module):
    """MNIST-sized classifier; ``forward`` returns (penultimate features, logits)."""

    def __init__(self, in_channels=1, num_classes=10, width=32, mean=(0.5,), std=(0.5,)):
        super().__init__()
        w = width
        self.norm = _Normalize(mean, std)
        self.body = nn.Sequential(
            _cbr(in_channels, w),
            nn.MaxPool2d(2),
            _cbr(w, 2 * w),
            _cbr(2 * w, 2 * w),
            nn.MaxPool2d(2),
            _cbr(2 * w, 4 * w),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(4 * w, num_classes)
        self.feature_dim = 4 * w

    def forward(self, x_uint8):
        f = self.body(self.norm(x_uint8))
        return f, self.head(f)


class _Residual(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.a, self.b = _cbr(c, c), _cbr(c, c)

    def forward(self, x):
        return x + self.b(self.a(x))


class ResNet9(nn.Module):
    """DAWNBench ResNet-9 with a width multiplier; ``forward`` returns (features, logits)."""

    def __init__(self, in_channels=3, num_classes=10, width=32, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)):
        super().__init__()
        w = width
        self.norm = _Normalize(mean, std)
        self.body = nn.Sequential(
            _cbr(in_channels, w),
            _cbr(w, 2 * w),
            nn.MaxPool2d(2),
            _Residual(2 * w),
            _cbr(2 * w, 4 * w),
            nn.MaxPool2d(2),
            _cbr(4 * w, 8 * w),
            nn.MaxPool2d(2),
            _Residual(8 * w),
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(8 * w, num_classes)
        self.feature_dim = 8 * w
        self.logit_scale = 0.125

    def forward(self, x_uint8):
        f = self.body(self.norm(x_uint8))
        return f, self.head(f) * self.logit_scale


ARCHS = {"smallcnn": SmallCNN, "resnet9": ResNet9}


def default_arch(image_shape) -> tuple[str, dict]:
    c, h, w = image_shape
    if h <= 28 and c == 1:
        return "smallcnn", {"width": 32}
    return "resnet9", {"width": 32}


# --------------------------------------------------------------------------- training


def random_crop_flip(x: torch.Tensor, pad: int, flip: bool, generator=None) -> torch.Tensor:
    """Per-sample random ``pad``-pixel translation (zero padding) and optional horizontal flip."""
    n, c, h, w = x.shape
    if pad > 0:
        xp = F.pad(x, (pad, pad, pad, pad))
        i = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        j = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        rows = (i[:, None] + torch.arange(h))[:, None, :, None]
        cols = (j[:, None] + torch.arange(w))[:, None, None, :]
        x = xp[torch.arange(n)[:, None, None, None], torch.arange(c)[None, :, None, None], rows, cols]
    if flip:
        m = torch.rand(n, generator=generator) < 0.5
        x = torch.where(m[:, None, None, None], x.flip(3), x)
    return x


@torch.no_grad()
def evaluate_accuracy(model, images, labels, batch_size=500, device="cpu") -> float:
    model.eval()
    correct = 0
    for s in range(0, len(images), batch_size):
        _, logits = model(images[s : s + batch_size].to(device))
        correct += (logits.argmax(1).cpu() == labels[s : s + batch_size]).sum().item()
    return correct / max(1, len(images))


def train_classifier(
    train_images,
    train_labels,
    test_images,
    test_labels,
    num_classes,
    dataset_name,
    arch=None,
    arch_args=None,
    epochs=10,
    batch_size=128,
    lr=0.1,
    weight_decay=5e-4,
    augment=None,
    seed=0,
    device="cpu",
    progress=True,
    max_train=None,
    log=print,
) -> tuple[nn.Module, dict]:
    """Train a classifier (SGD-Nesterov, one-cycle LR, label smoothing 0.1) and measure test accuracy.

    Returns (model in eval mode, info dict).  ``augment``: None → flips+4-px crops for RGB,
    2-px shifts (no flips) for grey images.
    """
    from tqdm.auto import tqdm

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    if max_train:
        train_images, train_labels = train_images[:max_train], train_labels[:max_train]
    image_shape = tuple(train_images.shape[1:])
    if arch is None:
        arch, default_args = default_arch(image_shape)
        arch_args = {**default_args, **(arch_args or {})}
    x = train_images.float() / 255.0
    mean = x.mean(dim=(0, 2, 3)).tolist()
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist()
    del x
    full_args = {
        "in_channels": image_shape[0],
        "num_classes": int(num_classes),
        "mean": mean,
        "std": std,
        **(arch_args or {}),
    }
    model = ARCHS[arch](**full_args).to(device)
    if augment is None:
        augment = {"pad": 2, "flip": False} if image_shape[0] == 1 else {"pad": 4, "flip": True}
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(len(train_images) / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, epochs=epochs, steps_per_epoch=steps_per_epoch, pct_start=0.25, anneal_strategy="linear"
    )
    t0 = time.time()
    history = []
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(train_images), generator=gen)
        tot, n = 0.0, 0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{epochs}", disable=not progress, leave=False)
        for b in bar:
            idx = perm[b * batch_size : (b + 1) * batch_size]
            xb = random_crop_flip(train_images[idx], augment["pad"], augment["flip"], gen).to(device)
            yb = train_labels[idx].to(device)
            _, logits = model(xb)
            loss = F.cross_entropy(logits, yb, label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot += loss.item() * len(idx)
            n += len(idx)
        acc = evaluate_accuracy(model, test_images, test_labels, device=device)
        history.append(
            {"epoch": epoch + 1, "train_loss": tot / n, "test_accuracy": acc, "elapsed_s": round(time.time() - t0, 1)}
        )
        log(f"epoch {epoch + 1}/{epochs}: train loss {tot / n:.4f}, test accuracy {acc:.4f}")
    model.eval()
    info = {
        "format": FORMAT,
        "arch": arch,
        "arch_args": full_args,
        "dataset": dataset_name,
        "pixel_scaling": "zero_one, then (x - mean) / std per channel (stored in arch_args)",
        "image_shape": list(image_shape),
        "num_classes": int(num_classes),
        "test_accuracy": history[-1]["test_accuracy"]
        if history
        else evaluate_accuracy(model, test_images, test_labels, device=device),
        "n_train": len(train_images),
        "n_test": len(test_images),
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "weight_decay": weight_decay,
        "augment": augment,
        "seed": seed,
        "train_seconds": round(time.time() - t0, 1),
        "history": history,
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    return model, info


def save_classifier(model, info: dict, path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**info, "state_dict": {k: v.cpu() for k, v in model.state_dict().items()}}, path)


def load_classifier(path, device="cpu") -> tuple[nn.Module, dict]:
    """(model in eval mode, info without the state dict) from a :func:`save_classifier` file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"classifier file {path} not found (make one with `ganworks train-classifier`)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the user's input problem
        raise CheckpointError(f"{path}: not a readable classifier file ({type(e).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a ganworks classifier file (format {FORMAT} expected)")
    model = ARCHS[ckpt["arch"]](**ckpt["arch_args"])
    model.load_state_dict(ckpt["state_dict"])
    model.to(device).eval().requires_grad_(False)
    info = {k: v for k, v in ckpt.items() if k != "state_dict"}
    return model, info


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def summary_json(info: dict) -> str:
    return json.dumps(
        {k: v for k, v in info.items() if k != "arch_args"}
        | {"arch_args": {k: v for k, v in info["arch_args"].items()}},
        indent=2,
    )


class ClassifierExtractor:
    """Callable: uint8 images → (penultimate features, logits) of a trained classifier file."""

    kind = "classifier"

    def __init__(self, path, device="cpu"):
        self.model, self.info = load_classifier(path, device=device)
        self.device = torch.device(device)
        self.path = str(path)
        self.weights_sha256 = file_sha256(path)
        self.dataset = self.info["dataset"]
        self.name = f"{self.dataset}-classifier"
        self.channels = int(self.info["image_shape"][0])
        self.feature_dim = int(self.model.feature_dim)

    @property
    def weights_id(self) -> str:
        return self.weights_sha256

    def __call__(self, x_uint8):
        h, w = self.info["image_shape"][1:]
        if tuple(x_uint8.shape[2:]) != (h, w):
            raise DataError(
                f"images are {tuple(x_uint8.shape[2:])} but the classifier {self.path} was trained on {h}x{w}"
            )
        return self.model(x_uint8)

    def describe(self) -> dict:
        return {
            "extractor": self.name,
            "features": f"penultimate ({self.feature_dim})",
            "logits": f"{self.info['num_classes']} classes",
            "weights_file": Path(self.path).name,
            "weights_sha256": self.weights_sha256,
            "classifier_arch": self.info["arch"],
            "classifier_dataset": self.dataset,
            "classifier_test_accuracy": self.info["test_accuracy"],
        }
