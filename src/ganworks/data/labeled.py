"""The labeled subset of a semi-supervised run, exactly as the Improved-GAN reference selects it.

docs/papers.md §A.2: permute the training set with ``seed_data`` (NumPy ``RandomState(seed_data)``, as
the reference), then take the first ``n_labels / K`` examples of each class, class by class.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import DataError


def data_permutation(n: int, seed_data: int) -> np.ndarray:
    """The reference's ``data_rng.permutation(n)`` with ``data_rng = RandomState(seed_data)``."""
    return np.random.RandomState(seed_data).permutation(n)


def balanced_labeled_subset(labels: torch.Tensor, n_labels: int, num_classes: int, seed_data: int) -> torch.Tensor:
    """Indices (into the unpermuted set) of ``n_labels / num_classes`` examples per class."""
    if n_labels % num_classes:
        raise DataError(
            f"{n_labels} labels cannot be split evenly over {num_classes} classes: use a multiple of {num_classes}"
        )
    per_class = n_labels // num_classes
    perm = data_permutation(len(labels), seed_data)
    permuted = labels.numpy()[perm]
    chosen = []
    for c in range(num_classes):
        idx = perm[permuted == c][:per_class]
        if len(idx) < per_class:
            raise DataError(
                f"class {c} has only {len(idx)} training examples, fewer than the {per_class} labels per class asked for"
            )
        chosen.append(idx)
    return torch.from_numpy(np.concatenate(chosen))
