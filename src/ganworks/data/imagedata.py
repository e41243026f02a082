"""A dataset split in memory, the image file extensions a dataset reads, and where decoded data is cached.

The base the dataset loaders share: ``ganworks.data.datasets`` (datasets by name) and
``ganworks.data.own`` (your own images), which ``datasets`` calls for the name ``own``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".ppm", ".tif", ".tiff")


@dataclass
class ImageData:
    """A dataset split in memory: ``images`` uint8 (N, C, H, W), ``labels`` int64 (N,).

    A dataset that says itself which images are labeled (``own``) sets ``labeled`` (their indices;
    the others have label -1) and ``class_names``.
    """

    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    name: str
    class_names: tuple = ()
    labeled: torch.Tensor | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def __len__(self) -> int:
        return self.images.shape[0]


def cache_dir() -> Path:
    """``GANWORKS_CACHE``, else ``$XDG_CACHE_HOME/ganworks``, else ``~/.cache/ganworks``."""
    if os.environ.get("GANWORKS_CACHE"):
        path, what = Path(os.environ["GANWORKS_CACHE"]).expanduser(), "GANWORKS_CACHE"
    else:
        path, what = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ganworks", "the cache folder"
    if path.exists() and not path.is_dir():
        raise DataError(
            f"{what} {path} is a file, not a folder: point GANWORKS_CACHE at a folder (it is created if missing)"
        )
    return path


def imagefolder_key(folder: Path, files: list[Path]) -> str:
    """Cache key of a decoded image folder: every file's (relative path, size, mtime), so an edited,
    added, removed or renamed image anywhere in the tree is decoded again."""
    h = hashlib.sha1(str(folder.resolve()).encode())
    for f in files:
        st = f.stat()
        h.update(f"|{f.relative_to(folder)}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]
