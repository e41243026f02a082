"""Class-folder image datasets read lazily, for ImageNet-sized data [SN-GAN §4.2; docs/papers.md §B.3;
code SNP:datasets/imagenet.py, datasets/imagenet_dog_and_cat.py].

``ClassFolderDataset`` indexes ``<folder>/<class>/<image>`` (the ILSVRC2012 train layout,
``n01440764/n01440764_10026.JPEG``) by file name only; each image is opened and decoded when a
DataLoader worker asks for it, so nothing is ever decoded whole into memory.

* Class index: the sorted folder names, 0..K−1; or, with ``class_order`` = a
  ``dirname_to_label.txt`` file (one ``<dirname> <label>`` per line, sngan_projection's format),
  that file's labels.
* ``classes``: a subset of folder names (e.g. the 143 dog-and-cat classes), relabelled 0..k−1 in
  the class index's order.
* ``limit_per_class``: only the first N files (sorted) of each class, for smoke runs.

The reference transform (``reference_transform``): centre crop of the short side, bilinear resize
to ``size`` × ``size`` (PIL's BILINEAR, which is what ``scipy.misc.imresize(..., "bilinear")`` called;
UNVERIFIED that its Pillow version filtered identically), grey images made RGB. Images leave the
workers as uint8; the stream scales them with the ``imagenet`` scale x/128 − 1 and adds the
dequantisation noise U(0, 1/128) on the device (``dequantize``).

``FolderStream`` is the batch stream over such a dataset: the order of epoch e is a permutation
drawn from (seed, e), as the in-memory streams; with ``world_size`` > 1 rank r takes every
``world_size``-th example of it (``DistributedSampler``'s interleaving), so the ranks together
visit each example once per epoch. Batches come from a ``DataLoader`` with ``workers`` processes
reading ahead; ``batch(epoch, index)`` restarts the loader at any position (resume).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler

from ..errors import DataError
from .datasets import IMAGE_EXTENSIONS, resolve_data_root
from .scaling import to_float

#: where ``data.name = "imagenet"`` looks, relative to the data root, when ``data.path`` is empty
IMAGENET_DIR = "imagenet/train"


def reference_transform(image: Image.Image, size: int) -> torch.Tensor:
    """Centre crop of the short side, bilinear resize to size × size → uint8 (3, size, size)."""
    image = image.convert("RGB")
    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    image = image.crop((left, top, left + side, top + side))
    if side != size:
        image = image.resize((size, size), Image.BILINEAR)
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()


def read_class_order(path: Path) -> dict[str, int]:
    """A ``dirname_to_label.txt``: one ``<dirname> <label>`` per line."""
    order = {}
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as e:
        raise DataError(
            f"cannot read the class order file {path}: {e.strerror}; set data.class_order to an existing "
            f'file or to "" for sorted folder names'
        ) from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise DataError(f"{path}:{n}: expected '<dirname> <label>', got {line!r}")
        order[parts[0]] = int(parts[1])
    return order


class ClassFolderDataset(Dataset):
    """(uint8 image (3, size, size), label) pairs from ``<folder>/<class>/<image>``, decoded lazily."""

    def __init__(self, folder, size: int, class_order: str | os.PathLike = "", classes=(), limit_per_class: int = 0):
        folder = Path(folder)
        if not folder.is_dir():
            raise DataError(
                f"image folder {folder} not found: set data.path (or put ILSVRC2012 train under "
                f"<data root>/{IMAGENET_DIR})"
            )
        names = sorted(d.name for d in folder.iterdir() if d.is_dir())
        if not names:
            raise DataError(f"{folder} has no class sub-folders: expected {folder}/<class>/<image files>")
        if class_order:
            order = read_class_order(Path(class_order))
            missing = [n for n in names if n not in order]
            if missing:
                raise DataError(
                    f"{class_order} has no label for the folders {', '.join(missing[:5])}: "
                    f"add them or remove data.class_order"
                )
            label_of = {n: order[n] for n in names}
        else:
            label_of = {n: i for i, n in enumerate(names)}
        if classes:
            unknown = [c for c in classes if c not in label_of]
            if unknown:
                raise DataError(f"data.classes names folders that {folder} does not have: {', '.join(unknown[:5])}")
            kept = sorted(set(classes), key=lambda c: label_of[c])
            label_of = {c: i for i, c in enumerate(kept)}
        self.folder, self.size = folder, size
        self.class_names = [n for n, _ in sorted(label_of.items(), key=lambda kv: kv[1])]
        self.num_classes = max(label_of.values()) + 1
        files, labels = [], []
        for name in sorted(label_of, key=lambda n: label_of[n]):
            entries = sorted(
                e.name for e in os.scandir(folder / name) if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS)
            )
            if limit_per_class:
                entries = entries[:limit_per_class]
            files.extend(f"{name}/{e}" for e in entries)
            labels.extend([label_of[name]] * len(entries))
        if not files:
            raise DataError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {folder}/<class>/")
        self.files = files
        self.labels = torch.tensor(labels, dtype=torch.long)
        self.name = f"folder:{folder}"

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (3, self.size, self.size)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        path = self.folder / self.files[i]
        from .images import open_image

        with open_image(path) as image:
            x = reference_transform(image, self.size)
        return x, self.labels[i]


class _OrderSampler(Sampler):
    def __init__(self, order: np.ndarray) -> None:
        self.order = order

    def __iter__(self):
        return iter(self.order.tolist())

    def __len__(self) -> int:
        return len(self.order)


class FolderStream:
    """Batches ``{"x", "y"}`` of a lazily read dataset, a pure function of (seed, epoch, index)."""

    def __init__(
        self,
        data: ClassFolderDataset,
        batch_size: int,
        scale: str,
        seed: int,
        device,
        workers: int = 4,
        dequantize: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        from ..errors import ConfigError

        self.data, self.batch_size, self.scale, self.seed = data, batch_size, scale, seed
        self.device = torch.device(device)
        self.workers, self.dequantize = workers, dequantize
        self.rank, self.world_size = rank, world_size
        self.per_rank = len(data) // world_size
        if batch_size > self.per_rank:
            raise ConfigError(
                f"batch size {batch_size} is larger than the {self.per_rank} training images per "
                f"process: lower data.batch_size or use more data"
            )
        self.labels = data.labels
        self._loader_iter = None
        self._next = None

    @property
    def batches_per_epoch(self) -> int:
        return self.per_rank // self.batch_size

    def order(self, epoch: int) -> np.ndarray:
        """This rank's examples for ``epoch``: every world_size-th of the epoch's permutation."""
        perm = np.random.default_rng([self.seed, epoch]).permutation(len(self.data))
        return perm[: self.per_rank * self.world_size][self.rank :: self.world_size]

    def _start(self, epoch: int, index: int) -> None:
        order = self.order(epoch)[index * self.batch_size : self.batches_per_epoch * self.batch_size]
        loader = DataLoader(
            self.data,
            batch_size=self.batch_size,
            sampler=_OrderSampler(order),
            num_workers=self.workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
            prefetch_factor=4 if self.workers else None,
        )
        self._loader_iter = iter(loader)

    def batch(self, epoch: int, index: int) -> dict:
        if self._next != (epoch, index):
            self._start(epoch, index)
        x, y = next(self._loader_iter)
        self._next = (epoch, index + 1) if index + 1 < self.batches_per_epoch else None
        x = to_float(x.to(self.device, non_blocking=True), self.scale)
        if self.dequantize:
            x.add_(torch.rand_like(x), alpha=1.0 / 128)
        return {"x": x, "y": y.to(self.device, non_blocking=True)}


def imagenet_folder(data_cfg: dict, root=None) -> Path:
    """The folder a config's lazily read dataset lives in."""
    if data_cfg["path"]:
        base = Path(data_cfg["path"]).expanduser()
        return base if base.is_absolute() else resolve_data_root(root or data_cfg["root"] or None) / base
    return resolve_data_root(root or data_cfg["root"] or None) / IMAGENET_DIR


#: dataset names read lazily from class folders
LAZY_DATASETS = ("imagenet",)


def load_folder_dataset(data_cfg: dict, root=None) -> ClassFolderDataset:
    """The lazily read training set a config names (``data.path``/``data.root``, ``image_size``
    (default 128), ``class_order``, ``classes``, ``limit_per_class``)."""
    return ClassFolderDataset(
        imagenet_folder(data_cfg, root),
        data_cfg["image_size"] or 128,
        data_cfg["class_order"],
        data_cfg["classes"],
        data_cfg["limit_per_class"],
    )
