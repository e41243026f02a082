"""Test error of a (semi-supervised) discriminator used as a K-class classifier.

As in the Improved-GAN reference (docs/papers.md §A.2): the prediction is the argmax over the K class
logits, D in deterministic (eval) mode, over the whole test set.
"""

from __future__ import annotations

import torch
from torch import nn

from ..data.scaling import to_float


@torch.no_grad()
def count_errors(D: nn.Module, images: torch.Tensor, labels: torch.Tensor, scale: str, batch_size: int = 1000, device="cpu") -> int:
    """Number of misclassified examples; D is put in eval mode and left as it was found."""
    was_training = D.training
    D.eval()
    errors = torch.zeros((), dtype=torch.int64, device=device)
    try:
        for x, y in zip(images.split(batch_size), labels.split(batch_size)):
            logits = D(to_float(x.to(device), scale))
            errors += (logits.argmax(1) != y.to(device)).sum()
    finally:
        D.train(was_training)
    return int(errors)
