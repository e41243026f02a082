"""Your own images for semi-supervised training: a folder of labeled and unlabeled images, or an .npz.

Dataset name ``own`` with ``data.path`` one of (docs/own-data.md):

* a folder ``<path>/labeled/<class>/**`` (the images of each class, any nesting inside the class
  folder), ``<path>/unlabeled/**`` (any nesting; optional) and an optional ``<path>/test/<class>/**``;
* an ``.npz`` with ``x`` (N, H, W) or (N, H, W, C), C 1 or 3, uint8 or float in [0, 1], and ``y``
  (N,) int class indices, ``-1`` for unlabeled; optionally ``classes`` (K class names) and
  ``x_test``/``y_test`` (the test split, every ``y_test`` a class).

The train split holds the labeled images first (class by class), then the unlabeled ones; unlabeled
images have label -1 and ``ImageData.labeled`` lists the labeled indices. The semi-supervised
stream draws its unlabeled batches from every training image, so the labeled images also join the
unlabeled pool, as the Improved-GAN reference does. Classes are the sorted folder names (or the
npz's ``classes``, else ``0..K-1``). Images are grayscale (1 channel) when every one of them is a
grayscale file (or array), else RGB (3 channels); ``channels`` forces one. Decoded folders are
cached like ``imagefolder``. Bad layouts raise ``DataError`` with one line naming the fix.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .imagedata import IMAGE_EXTENSIONS, ImageData, cache_dir, imagefolder_key

#: PIL modes of a grayscale file
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")


def image_files(folder: Path) -> list[Path]:
    """Every image file under ``folder`` (any nesting, hidden files and folders skipped), sorted."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out.extend(
            Path(dirpath) / f for f in filenames if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS)
        )
    return sorted(out)


def decode_images(files: list[Path], channels: int = 0, desc: str = "decoding images") -> np.ndarray:
    """uint8 (N, C, H, W) of ``files``, which must share one size; ``channels`` 1 or 3, or 0: 1 when
    every file is grayscale, else 3."""
    from PIL import Image
    from tqdm import tqdm

    if not files:
        raise DataError("no image files to decode")
    arrays, gray, first = [], True, None
    for f in tqdm(files, desc=desc, unit="img", leave=False, disable=len(files) < 1000):
        try:
            with Image.open(f) as im:
                mode = im.mode
                target = {1: "L", 3: "RGB"}.get(channels) or ("L" if mode in GRAY_MODES else "RGB")
                arr = np.asarray(im.convert(target))
        except Exception as e:
            raise DataError(f"cannot read image {f} ({type(e).__name__}): remove or replace it") from None
        if first is None:
            first = (f, arr.shape[:2])
        elif arr.shape[:2] != first[1]:
            raise DataError(
                f"images of mixed sizes: {f} is {arr.shape[1]}x{arr.shape[0]} but {first[0]} is "
                f"{first[1][1]}x{first[1][0]}: resize them to one size"
            )
        gray &= arr.ndim == 2
        arrays.append(arr)
    if gray:  # all grayscale (or forced to 1 channel)
        return np.stack(arrays)[:, None]
    return (
        np.stack([a if a.ndim == 3 else np.repeat(a[:, :, None], 3, axis=2) for a in arrays])
        .transpose(0, 3, 1, 2)
        .copy()
    )


def convert_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 (N, C, H, W) with C 1 or 3 → ``channels`` channels: grey repeated to RGB, or RGB to grey
    by PIL's ``convert("L")`` (the conversion a folder of RGB files gets)."""
    c = images.shape[1]
    if c == channels:
        return images
    if c == 1 and channels == 3:
        return images.repeat(1, 3, 1, 1)
    if c == 3 and channels == 1:
        from PIL import Image

        rgb = images.permute(0, 2, 3, 1).numpy()
        return torch.from_numpy(np.stack([np.asarray(Image.fromarray(a).convert("L")) for a in rgb])[:, None].copy())
    raise DataError(f"images with {c} channels cannot be converted to {channels}: use 1 (grey) or 3 (RGB)")


def images_from_array(x, what: str = "x") -> torch.Tensor:
    """uint8 (N, C, H, W) from an array laid out (N, H, W) or (N, H, W, C), C 1 or 3, uint8 or float in
    [0, 1] (rounded to the nearest of 256 levels)."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3) or not len(x):
        raise DataError(f"{what} has shape {tuple(x.shape)}: expected (N, H, W) or (N, H, W, C) with C 1 or 3")
    if x.dtype == np.uint8:
        out = x
    elif np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
            raise DataError(
                f"{what} is float but not in [0, 1] (min {np.nanmin(x):g}, max {np.nanmax(x):g}): "
                f"scale it to [0, 1] or pass uint8 0-255"
            )
        out = np.rint(x * 255).astype(np.uint8)
    else:
        raise DataError(f"{what} has dtype {x.dtype}: use uint8 (0-255) or float in [0, 1]")
    return torch.from_numpy(np.ascontiguousarray(out.transpose(0, 3, 1, 2)))


def _check_classes(counts: dict[str, int], where: str) -> None:
    empty = [c for c, n in counts.items() if n == 0]
    if len(counts) < 2:
        raise DataError(f"{where} has {len(counts)} class: a classifier needs at least 2 classes")
    if sum(counts.values()) < len(counts):
        raise DataError(
            f"{where} has {sum(counts.values())} labeled images for {len(counts)} classes: give at "
            f"least one labeled image per class"
        )
    if empty:
        raise DataError(
            f"no labeled images for class {empty[0]!r} in {where}"
            + (f" (and {len(empty) - 1} more)" if len(empty) > 1 else "")
            + ": add some or remove the class"
        )


def _cached_decode(tag: str, root: Path, files: list[Path], channels: int) -> np.ndarray:
    key = imagefolder_key(root, files) + f"-{tag}"
    auto = cache_dir() / "own" / f"{key}-c0.npy"  # decoded with the channels the files have
    if auto.exists():
        images = np.load(auto)
        if channels in (0, images.shape[1]):
            return images
    cached = auto.with_name(f"{key}-c{channels}.npy")
    if cached.exists():
        return np.load(cached)
    images = decode_images(files, channels, desc=f"decoding {tag} images (once; cached)")
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_name(cached.stem + ".tmp.npy")
    np.save(tmp, images)
    os.replace(tmp, cached)
    return images


def _folder(base: Path, split: str, channels: int, class_names) -> ImageData:
    labeled_dir = base / "labeled"
    if not labeled_dir.is_dir():
        raise DataError(
            f"{base} has no labeled/ folder: expected {base}/labeled/<class>/<images>, "
            f"{base}/unlabeled/<images> and optionally {base}/test/<class>/<images>"
        )
    stray = [f for f in labeled_dir.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS]
    if stray:
        raise DataError(f"{stray[0]} is not inside a class folder: move labeled images to {labeled_dir}/<class>/")
    found = sorted(d.name for d in labeled_dir.iterdir() if d.is_dir() and not d.name.startswith("."))
    names = list(class_names) or found
    if class_names and found != names:
        raise DataError(f"the classes of {labeled_dir} ({', '.join(found)}) are not the run's ({', '.join(names)})")
    if split == "train":
        per_class = {c: image_files(labeled_dir / c) for c in names}
        _check_classes({c: len(v) for c, v in per_class.items()}, str(labeled_dir))
        labeled = [f for c in names for f in per_class[c]]
        labels = [i for i, c in enumerate(names) for _ in per_class[c]]
        unlabeled = image_files(base / "unlabeled") if (base / "unlabeled").is_dir() else []
        files = labeled + unlabeled
        labels += [-1] * len(unlabeled)
    else:
        test_dir = base / "test"
        if not test_dir.is_dir():
            raise DataError(
                f"{base} has no test/ folder: add {test_dir}/<class>/<images> to evaluate on labeled test images"
            )
        test_classes = sorted(d.name for d in test_dir.iterdir() if d.is_dir() and not d.name.startswith("."))
        unknown = [c for c in test_classes if c not in names]
        if unknown:
            raise DataError(
                f"{test_dir}/{unknown[0]} is not a class of {labeled_dir} ({', '.join(names)}): rename or remove it"
            )
        per_class = {c: image_files(test_dir / c) for c in test_classes}
        files = [f for c in test_classes for f in per_class[c]]
        labels = [names.index(c) for c in test_classes for _ in per_class[c]]
        if not files:
            raise DataError(f"no images under {test_dir}/<class>/")
    images = _cached_decode(split, base, files, channels)
    labels = torch.tensor(labels, dtype=torch.int64)
    return ImageData(
        torch.from_numpy(images),
        labels,
        len(names),
        f"own:{base.name}",
        class_names=tuple(names),
        labeled=(labels >= 0).nonzero().squeeze(1) if split == "train" else None,
    )


def _npz(path: Path, split: str, channels: int, class_names) -> ImageData:
    try:
        z = np.load(path, allow_pickle=False)
        arrays = {k: z[k] for k in z.files}
    except Exception as e:
        raise DataError(
            f"cannot read {path} as an .npz ({type(e).__name__}): save it with numpy.savez(path, x=..., y=...)"
        ) from None
    xk, yk = ("x", "y") if split == "train" else ("x_test", "y_test")
    if xk not in arrays or yk not in arrays:
        if split == "test":
            raise DataError(f"{path} has no x_test/y_test arrays: add them to evaluate on labeled test images")
        raise DataError(
            f"{path} needs arrays 'x' (images) and 'y' (class index, -1 for unlabeled); it has "
            f"{', '.join(arrays) or 'none'}"
        )
    images = images_from_array(arrays[xk], f"{path.name}:{xk}")
    y = np.asarray(arrays[yk])
    if y.ndim != 1 or len(y) != len(images) or not np.issubdtype(y.dtype, np.integer):
        raise DataError(
            f"{path.name}:{yk} must be {len(images)} integers (one per image), got shape {y.shape} dtype {y.dtype}"
        )
    if "classes" in arrays:
        names = [str(c) for c in np.asarray(arrays["classes"]).reshape(-1)]
    else:
        all_y = np.asarray(arrays.get("y", y))
        k = int(all_y.max()) + 1 if len(all_y) else 0
        names = list(class_names) or [str(i) for i in range(k)]
    if class_names and list(class_names) != names:
        raise DataError(f"the classes of {path} ({', '.join(names)}) are not the run's ({', '.join(class_names)})")
    low = -1 if split == "train" else 0
    if len(y) and (y.min() < low or y.max() >= len(names)):
        raise DataError(
            f"{path.name}:{yk} has values outside {low}..{len(names) - 1} ({len(names)} classes"
            + (", -1 = unlabeled)" if split == "train" else ")")
        )
    if split == "train":
        _check_classes({c: int((y == i).sum()) for i, c in enumerate(names)}, str(path))
        order = np.concatenate([np.flatnonzero(y == i) for i in range(len(names))] + [np.flatnonzero(y < 0)])
        images, y = images[torch.from_numpy(order)], y[order]
    if channels:
        images = convert_channels(images, channels)
    labels = torch.from_numpy(y.astype(np.int64))
    return ImageData(
        images,
        labels,
        len(names),
        f"own:{path.stem}",
        class_names=tuple(names),
        labeled=(labels >= 0).nonzero().squeeze(1) if split == "train" else None,
    )


def has_test_split(path: str) -> bool:
    """Whether the folder or .npz at ``path`` holds a labeled test split (``test/``, ``x_test``)."""
    p = Path(path).expanduser()
    if p.is_dir():
        return (p / "test").is_dir()
    try:
        with np.load(p, allow_pickle=False) as z:
            return "x_test" in z.files
    except Exception:
        return True  # unreadable: loading it says why


def load_own(
    root: Path, split: str, download: bool = False, path: str = "", channels: int = 0, class_names=()
) -> ImageData:
    """The ``split`` of the folder or .npz ``path`` (relative paths: to the working directory)."""
    if not path:
        raise DataError(
            "dataset 'own' needs data.path: a folder with labeled/<class>/ and unlabeled/, or an .npz "
            "(docs/own-data.md)"
        )
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"data.path {p} does not exist: point it at your folder (labeled/, unlabeled/, test/) or .npz")
    if p.is_file():
        if p.suffix.lower() != ".npz":
            raise DataError(f"data.path {p} is a file but not an .npz: give a folder or an .npz")
        return _npz(p, split, channels, class_names)
    return _folder(p, split, channels, class_names)
