"""Image sources for evaluation: dataset splits, image folders, ``.npz`` files, generators.

Everything is returned as a uint8 tensor N×3×H×W (grey images are repeated to 3 channels only
when an Inception extractor needs it, at extraction).  Dataset splits come from
``ganworks.data.load_dataset``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ganworks.data.datasets import IMAGE_EXTENSIONS as IMAGE_EXTS
from ganworks.errors import DataError


def parse_dataset_spec(spec: str) -> tuple[str, str]:
    """``"cifar10:test"`` → ``("cifar10", "test")``; ``"imagefolder:/a/b:test"`` → ``("imagefolder:/a/b", "test")``.

    A spec without a split means ``test``.
    """
    if spec.startswith("imagefolder:"):
        rest = spec[len("imagefolder:") :]
        path, sep, split = rest.rpartition(":")
        if not sep or "/" in split or not path:
            return "imagefolder:" + rest, "test"
        return "imagefolder:" + path, split
    name, sep, split = spec.partition(":")
    return name, (split if sep else "test")


def dataset_label(name: str) -> str:
    """A short name for result keys: ``imagefolder:/x/cifar10-jpeg`` → ``cifar10-jpeg``."""
    if name.startswith("imagefolder:"):
        return Path(name[len("imagefolder:") :].rstrip("/")).name or "imagefolder"
    if os.path.isdir(name):
        return Path(name.rstrip("/")).name
    return name


def load_split(name: str, split: str = "test", data_root: str | None = None):
    """(uint8 images N×C×H×W, int64 labels N, num_classes) of a named dataset split."""
    if os.path.isdir(name) and not name.startswith("imagefolder:"):
        name = "imagefolder:" + name
    from ganworks.data import load_dataset

    d = load_dataset(name, split=split, root=data_root)
    return d.images, d.labels, int(d.num_classes)


def read_images(paths) -> torch.Tensor:
    """Read image files into one uint8 N×C×H×W tensor (all must share one size)."""
    from ganworks.data.images import open_image

    arrs = []
    first = None
    for p in paths:
        with open_image(p) as im:
            if im.mode not in ("L", "RGB"):
                im = im.convert("RGB")
            a = np.asarray(im)
        a = a[:, :, None] if a.ndim == 2 else a
        if first is None:
            first = (p, a.shape)
        elif a.shape != first[1]:
            (h, w, c), (h0, w0, c0) = a.shape, first[1]
            raise DataError(
                f"image {p} is {w}x{h} with {c} channel(s) but {first[0]} is {w0}x{h0} with {c0}: "
                f"every image must have one size and mode (resize or convert {p})"
            )
        arrs.append(a)
    if not arrs:
        raise DataError("no images found")
    return torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).contiguous()


def load_image_folder(path: str | Path) -> torch.Tensor:
    """All images under ``path`` (recursively, sorted by path) as uint8 N×C×H×W."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise DataError(f"no image files ({', '.join(IMAGE_EXTS)}) in {path}")
    return read_images(files)


def load_npz_images(path: str | Path) -> torch.Tensor:
    """Images from an ``.npz``: key ``images`` or else the first array; uint8 NHWC or NCHW."""
    try:
        with np.load(path) as z:
            key = "images" if "images" in z.files else (z.files[0] if z.files else None)
            if key is None:
                raise DataError(f"{path}: empty .npz")
            a = z[key]
    except (OSError, ValueError) as e:
        import zipfile

        if not zipfile.is_zipfile(path):
            raise DataError(
                f"{path} is not an .npz file (an .npz is a zip archive of NumPy arrays, made by "
                f"numpy.savez): pass the images as an .npz, an image folder or a run directory"
            ) from None
        raise DataError(f"{path}: not a readable .npz ({e})") from None
    if a.dtype != np.uint8:
        raise DataError(f"{path}: array '{key}' has dtype {a.dtype}, expected uint8 images")
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4:
        raise DataError(f"{path}: array '{key}' has shape {a.shape}, expected N×H×W×C or N×C×H×W")
    if a.shape[1] in (1, 3) and a.shape[-1] not in (1, 3):
        t = torch.from_numpy(np.ascontiguousarray(a))
    elif a.shape[-1] in (1, 3):
        t = torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).contiguous()
    else:
        raise DataError(f"{path}: array '{key}' has shape {a.shape}: no channel axis of size 1 or 3")
    return t


@torch.no_grad()
def generate_images(
    generator, num_samples: int, scale: str, device, batch_size: int = 100, progress=False, uint8: str = "round"
):
    """``num_samples`` uint8 images from ``generator`` (eval mode, has ``sample_z``), on CPU;
    ``uint8`` is ``to_uint8``'s mode ("round" or "truncate")."""
    from tqdm.auto import tqdm

    from ganworks.data.scaling import to_uint8

    out = []
    with tqdm(total=num_samples, desc="generating", unit="img", disable=not progress, leave=False) as bar:
        for start in range(0, num_samples, batch_size):
            n = min(batch_size, num_samples - start)
            z = generator.sample_z(n, device=device)
            x = generator(z)
            out.append(to_uint8(x, scale, uint8).cpu())
            bar.update(n)
    return torch.cat(out)


class ImageTensorDataset(torch.utils.data.Dataset):
    """A map-style dataset over a uint8 image tensor whose items are bare images (not tuples), the
    input torch-fidelity's ``calculate_metrics`` takes; used to run it on exactly our images."""

    def __init__(self, images):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i]
