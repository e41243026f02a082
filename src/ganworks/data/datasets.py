"""Datasets by name, loaded whole into memory as uint8 tensors.

Names: ``mnist``, ``cifar10``, ``svhn``, ``stl10`` (torchvision's files; downloaded on a machine
with internet), ``imagefolder`` (any ``<path>/<split>/<class>/<image>`` tree, e.g. the offline
``cifar10-jpeg``; also written ``imagefolder:<path>``), ``digits`` (scikit-learn's bundled 8×8
digits, real data that needs no download), ``own`` (your labeled + unlabeled images for
semi-supervised training, ``ganworks.data.own``) and ``synthetic`` (class-dependent patterns for unit
tests).

The data root comes from the ``root`` argument (the ``--data-root`` flag), else ``GANWORKS_DATA``,
else a per-user cache folder. A dataset that cannot be found raises ``DataError`` with one line
saying where it looked and how to fix it.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DataError
from .imagedata import IMAGE_EXTENSIONS, ImageData, cache_dir, imagefolder_key  # noqa: F401  (names of this module too)


def resolve_data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: the argument, else ``GANWORKS_DATA``, else ``<cache>/data``."""
    if root:
        return Path(root).expanduser()
    if os.environ.get("GANWORKS_DATA"):
        return Path(os.environ["GANWORKS_DATA"]).expanduser()
    return cache_dir() / "data"


def load_dataset(
    name: str,
    split: str = "train",
    root: str | os.PathLike | None = None,
    download: bool = True,
    image_size: int = 0,
    **options,
) -> ImageData:
    """Load the ``split`` ("train" or "test") of dataset ``name``.

    ``image_size`` > 0 resizes (area-averaging down, bilinear up) to that square size, e.g. 48 for
    STL-10 in the SN-GAN paper. ``options`` go to the loader (``path`` for ``imagefolder``;
    ``image_size``/``channels``/``num_classes``/``size`` for ``synthetic``).
    """
    if split not in ("train", "test"):
        raise DataError(f"unknown split {split!r}: use 'train' or 'test'")
    if name.startswith("imagefolder:"):
        name, options["path"] = "imagefolder", name.split(":", 1)[1]
    if name not in LOADERS:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(LOADERS)} (or imagefolder:<path>)")
    data_root = resolve_data_root(root)
    named_root = root or os.environ.get("GANWORKS_DATA")
    if named_root and data_root.exists() and not data_root.is_dir():
        where = "--data-root" if root else "GANWORKS_DATA"
        raise DataError(
            f"the data root {data_root} ({where}) is a file, not a folder: point {where} at the "
            f"folder that holds the datasets"
        )
    if name in ("mnist", "cifar10", "svhn", "stl10") and named_root and not data_root.is_dir():
        # a root the user named: never create a tree inside a path that does not exist (a typo)
        raise _missing(name, data_root, "the data root itself does not exist; create it to download there")
    if name == "synthetic":
        data = _synthetic(split, image_size=image_size or 28, **options)
    else:
        data = LOADERS[name](data_root, split, download, **options)
    if image_size and tuple(data.images.shape[-2:]) != (image_size, image_size):
        data.images = resize_images(data.images, image_size)
    return data


def resize_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, C, H, W) → (N, C, size, size): area-averaging down, bilinear up, rounded."""
    out = []
    for chunk in images.split(4096):
        x = chunk.float()
        mode = "area" if size < x.shape[-1] else "bilinear"
        kwargs = {} if mode == "area" else {"align_corners": False}
        out.append(F.interpolate(x, size=(size, size), mode=mode, **kwargs).round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out)


def _missing(name: str, where: Path, why: str = "") -> DataError:
    detail = f" ({why})" if why else ""
    return DataError(
        f"dataset {name!r} not found under {where}{detail}: put it there, or point --data-root / "
        f"GANWORKS_DATA at a folder that holds it (on a machine with internet it downloads)"
    )


# ---- MNIST: idx files, read directly (also from .gz, so a read-only copy works) ---------------

_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:  # truncated or CRC-corrupt .gz, a directory, no permission
        raise DataError(
            f"cannot read {path} ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'corrupt'}): "
            f"delete it and download it again"
        ) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 8:
        raise DataError(f"{path} is not an unsigned-byte idx file (corrupt download?): delete it and retry")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise DataError(f"{path} is truncated ({data.size} of {int(np.prod(shape))} values): delete it and retry")
    return data.reshape(shape)


def _find_mnist(raw_dir: Path, stem: str) -> Path | None:
    for candidate in (raw_dir / stem, raw_dir / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    return None


def _mnist(root: Path, split: str, download: bool) -> ImageData:
    raw_dir = root / "MNIST" / "raw"
    stems = _MNIST_FILES[split]
    paths = [_find_mnist(raw_dir, s) for s in stems]
    if None in paths and download:
        try:
            from torchvision.datasets import MNIST

            MNIST(str(root), train=(split == "train"), download=True)
        except Exception as e:  # offline, read-only, ...
            raise _missing(
                "mnist", raw_dir, f"download failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            ) from None
        paths = [_find_mnist(raw_dir, s) for s in stems]
    if None in paths:
        raise _missing("mnist", raw_dir, f"looked for {stems[0]}[.gz]")
    images = torch.from_numpy(_read_idx(paths[0]).copy()).unsqueeze(1)
    labels = torch.from_numpy(_read_idx(paths[1]).astype(np.int64))
    return ImageData(images, labels, 10, "mnist")


# ---- torchvision-format datasets ---------------------------------------------------------------


def _torchvision(name: str, factory, root: Path, download: bool):
    try:
        return factory(download=False)
    except Exception:
        if not download:
            raise _missing(name, root, "download disabled") from None
    try:
        return factory(download=True)
    except Exception as e:
        raise _missing(name, root, f"download failed: {type(e).__name__}") from None


def _cifar10(root: Path, split: str, download: bool) -> ImageData:
    from torchvision.datasets import CIFAR10

    ds = _torchvision(
        "cifar10", lambda download: CIFAR10(str(root), train=split == "train", download=download), root, download
    )
    images = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))
    return ImageData(images, torch.as_tensor(ds.targets, dtype=torch.int64), 10, "cifar10")


def read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read an SVHN ``*_32x32.mat`` file: X (32, 32, 3, N) → (N, 3, 32, 32), label 10 → 0."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(path))
        x, y = mat["X"], mat["y"]
    except Exception as e:
        raise DataError(
            f"{path} is not a readable SVHN .mat file ({type(e).__name__}): delete it and re-download"
        ) from None
    images = np.ascontiguousarray(np.transpose(x, (3, 2, 0, 1))).astype(np.uint8)
    labels = y.reshape(-1).astype(np.int64)
    labels[labels == 10] = 0
    return images, labels


def _svhn(root: Path, split: str, download: bool) -> ImageData:
    folder = root / "svhn"
    path = next((p for p in (folder / f"{split}_32x32.mat", root / f"{split}_32x32.mat") if p.exists()), None)
    if path is None:
        if download:
            from torchvision.datasets import SVHN

            _torchvision("svhn", lambda download: SVHN(str(folder), split=split, download=download), folder, download)
            path = folder / f"{split}_32x32.mat"
        else:
            raise _missing("svhn", folder, f"looked for {split}_32x32.mat")
    images, labels = read_svhn_mat(path)
    return ImageData(torch.from_numpy(images), torch.from_numpy(labels), 10, "svhn")


def _stl10(root: Path, split: str, download: bool) -> ImageData:
    """STL-10: the train split is the 100k unlabeled images (as SN-GAN trains on), test is test."""
    from torchvision.datasets import STL10

    tv_split = "unlabeled" if split == "train" else "test"
    ds = _torchvision("stl10", lambda download: STL10(str(root), split=tv_split, download=download), root, download)
    labels = torch.as_tensor(np.asarray(ds.labels), dtype=torch.int64).clamp_min(0)
    return ImageData(torch.from_numpy(np.ascontiguousarray(ds.data)), labels, 10, "stl10")


# ---- image folders, decoded once and cached -----------------------------------------------------


def _imagefolder(root: Path, split: str, download: bool, path: str = "", classes=()) -> ImageData:
    if not path:
        raise DataError(
            "dataset 'imagefolder' needs a path: set data.path (relative to the data root) or use imagefolder:<path>"
        )
    base = Path(path).expanduser()
    if not base.is_absolute():
        base = root / base
    folder = base / split if (base / split).is_dir() else base
    if not folder.is_dir():
        raise _missing("imagefolder", folder, "no such folder")
    wanted, classes = list(classes), sorted(d.name for d in folder.iterdir() if d.is_dir())
    if not classes:
        raise DataError(f"{folder} has no class sub-folders: expected {folder}/<class>/<image files>")
    if wanted:  # data.classes: only these folders, relabelled 0..k-1 in sorted order
        unknown = [c for c in wanted if c not in classes]
        if unknown:
            raise DataError(
                f"data.classes names folders that {folder} does not have: {', '.join(map(str, unknown[:5]))} "
                f"(it has {', '.join(classes[:5])}{', ...' if len(classes) > 5 else ''})"
            )
        classes = [c for c in classes if c in wanted]
    files = [
        (f, c)
        for c, name in enumerate(classes)
        for f in sorted((folder / name).iterdir())
        if f.suffix.lower() in IMAGE_EXTENSIONS
    ]
    if not files:
        raise DataError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {folder}/<class>/")
    key = imagefolder_key(folder, [f for f, _ in files])
    cached = cache_dir() / "imagefolder" / f"{key}.npz"
    if cached.exists():
        with np.load(cached) as z:
            return ImageData(
                torch.from_numpy(z["images"]), torch.from_numpy(z["labels"]), len(classes), f"imagefolder:{base.name}"
            )
    images, labels = _decode(files)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp.npz")
    np.savez(tmp, images=images, labels=labels)
    os.replace(tmp, cached)
    return ImageData(torch.from_numpy(images), torch.from_numpy(labels), len(classes), f"imagefolder:{base.name}")


def _decode(files: list[tuple[Path, int]]) -> tuple[np.ndarray, np.ndarray]:
    from tqdm import tqdm

    from .images import open_image

    first = np.asarray(open_image(files[0][0], "RGB"))
    images = np.empty((len(files), 3, *first.shape[:2]), dtype=np.uint8)
    for i, (f, _) in enumerate(tqdm(files, desc="decoding images (once; cached)", unit="img", leave=False)):
        arr = np.asarray(open_image(f, "RGB"))
        if arr.shape != first.shape:
            raise DataError(
                f"image {f} is {arr.shape[1]}x{arr.shape[0]} but {files[0][0].name} is {first.shape[1]}x{first.shape[0]}: resize the folder's images to one size"
            )
        images[i] = arr.transpose(2, 0, 1)
    return images, np.array([c for _, c in files], dtype=np.int64)


# ---- offline datasets ----------------------------------------------------------------------------


def _digits(root: Path, split: str, download: bool) -> ImageData:
    """scikit-learn's 1797 8×8 digits (values 0-16 → 0-255); first 1500 train, last 297 test."""
    from ..extras import require

    require("digits")
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    sl = slice(0, 1500) if split == "train" else slice(1500, None)
    return ImageData(torch.from_numpy(images[sl].copy()), torch.from_numpy(d.target[sl].astype(np.int64)), 10, "digits")


def _synthetic(
    split: str, image_size: int = 28, channels: int = 1, num_classes: int = 10, size: int = 0, seed: int = 0
) -> ImageData:
    """Class-dependent bars plus noise: learnable, deterministic, instant. 1000 train / 200 test."""
    n = size or (1000 if split == "train" else 200)
    g = torch.Generator().manual_seed(seed * 2 + (split == "test"))
    labels = torch.arange(n) % num_classes
    labels = labels[torch.randperm(n, generator=g)]
    images = torch.rand(n, channels, image_size, image_size, generator=g) * 60
    band = max(1, image_size // num_classes)
    for c in range(num_classes):
        rows = slice((c * band) % image_size, (c * band) % image_size + band)
        images[labels == c, :, rows, :] += 180
    return ImageData(images.clamp(0, 255).to(torch.uint8), labels, num_classes, "synthetic")


def _own(root: Path, split: str, download: bool, **options) -> ImageData:
    from .own import load_own

    return load_own(root, split, download, **options)


LOADERS = {
    "mnist": _mnist,
    "cifar10": _cifar10,
    "svhn": _svhn,
    "stl10": _stl10,
    "imagefolder": _imagefolder,
    "digits": _digits,
    "synthetic": _synthetic,
    "own": _own,
}
