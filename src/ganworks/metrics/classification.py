"""Test error of a (semi-supervised) discriminator used as a K-class classifier.

As in the Improved-GAN reference (docs/papers.md §A.2): the prediction is the argmax over the K class
logits, D in deterministic (eval) mode, over the whole test set.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..data.scaling import to_float


def count_errors(
    D: nn.Module, images: torch.Tensor, labels: torch.Tensor, scale: str, batch_size: int = 1000, device="cpu"
) -> int:
    """Number of misclassified examples; D is put in eval mode and left as it was found."""
    return count_errors_of([D], images, labels, scale, batch_size, device)[0]


@torch.no_grad()
def count_errors_of(
    models: Sequence[nn.Module],
    images: torch.Tensor,
    labels: torch.Tensor,
    scale: str,
    batch_size: int = 1000,
    device="cpu",
) -> list[int]:
    """Errors of each of ``models`` (e.g. the raw and the averaged D) in one pass over the data: each
    batch is moved and scaled once and scored by every model. Models are put in eval mode and left
    as they were found."""
    was_training = [m.training for m in models]
    for m in models:
        m.eval()
    errors = torch.zeros(len(models), dtype=torch.int64, device=device)
    try:
        for x, y in zip(images.split(batch_size), labels.split(batch_size)):
            x, y = to_float(x.to(device), scale), y.to(device)
            for k, m in enumerate(models):
                errors[k] += (m(x).argmax(1) != y).sum()
    finally:
        for m, was in zip(models, was_training):
            m.train(was)
    return [int(e) for e in errors.tolist()]
