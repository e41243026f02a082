"""Batch streams: which examples each training step sees, as a pure function of (seed, epoch, index).

Because the order is recomputed from the seed and the epoch, a run can stop anywhere and resume at
the same batch: the checkpoint only stores the position.

* ``SemiSupervisedStream`` (docs/papers.md §A.2): per epoch the labeled set is tiled to the unlabeled
  length, each tile shuffled independently; the unlabeled set is shuffled, and shuffled again
  independently for the generator's real batch (``x_unl2``). Batch ``t`` of an epoch holds
  ``x_lab, y_lab, x_unl, x_unl2``.
* ``UnsupervisedStream``: a shuffled pass over the training set per epoch; batch ``t`` holds ``x``.

Images stay uint8 on the device; each batch is scaled to float on the fly.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .datasets import ImageData
from .scaling import dequantize, to_float


def _epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch])


class _Stream:
    def __init__(self, data: ImageData, batch_size: int, scale: str, seed: int, device) -> None:
        if batch_size > len(data):
            from ..errors import ConfigError

            raise ConfigError(
                f"batch size {batch_size} is larger than the {len(data)} training images: lower data.batch_size"
            )
        self.batch_size = batch_size
        self.scale = scale
        self.seed = seed
        self.device = torch.device(device)
        self.images = data.images.to(self.device)
        self.labels = data.labels.to(self.device)
        self._epoch = None
        self._orders = None

    @property
    def batches_per_epoch(self) -> int:
        return len(self.images) // self.batch_size

    def _slice(self, order: torch.Tensor, index: int) -> torch.Tensor:
        return order[index * self.batch_size : (index + 1) * self.batch_size]

    #: add U(0, 1/128) noise to each scaled batch (``data.dequantize``; torch's RNG, so resumable)
    dequantize = False

    def _x(self, idx: torch.Tensor) -> torch.Tensor:
        x = to_float(self.images[idx], self.scale)
        return dequantize(x) if self.dequantize else x

    def orders(self, epoch: int):
        if self._epoch != epoch:
            self._orders = self._make_orders(_epoch_rng(self.seed, epoch))
            self._epoch = epoch
        return self._orders


class UnsupervisedStream(_Stream):
    def _make_orders(self, rng):
        return torch.from_numpy(rng.permutation(len(self.images))).to(self.device)

    def batch(self, epoch: int, index: int) -> dict:
        idx = self._slice(self.orders(epoch), index)
        return {"x": self._x(idx), "y": self.labels[idx]}


class SemiSupervisedStream(_Stream):
    def __init__(
        self, data: ImageData, labeled_idx: torch.Tensor, batch_size: int, scale: str, seed: int, device
    ) -> None:
        super().__init__(data, batch_size, scale, seed, device)
        self.labeled_idx = labeled_idx.to(self.device)
        if len(labeled_idx) < 1:
            from ..errors import ConfigError

            raise ConfigError("a semi-supervised run needs at least one label per class: set data.labels")

    def _make_orders(self, rng):
        n_lab, n_unl = len(self.labeled_idx), len(self.images)
        tiles = [rng.permutation(n_lab) for _ in range(math.ceil(n_unl / n_lab))]
        lab = torch.from_numpy(np.concatenate(tiles)[:n_unl]).to(self.device)
        unl = torch.from_numpy(rng.permutation(n_unl)).to(self.device)
        unl2 = torch.from_numpy(rng.permutation(n_unl)).to(self.device)
        return self.labeled_idx[lab], unl, unl2

    def batch(self, epoch: int, index: int) -> dict:
        lab, unl, unl2 = (self._slice(o, index) for o in self.orders(epoch))
        return {"x_lab": self._x(lab), "y_lab": self.labels[lab], "x_unl": self._x(unl), "x_unl2": self._x(unl2)}
