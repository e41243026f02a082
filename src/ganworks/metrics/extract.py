"""Batched feature extraction (Inception or a trained classifier) with a tqdm progress bar.

Inputs are uint8 images, either an in-memory N×C×H×W tensor or a ``torch.utils.data.Dataset`` of
C×H×W uint8 tensors (read lazily, with ``num_workers`` loader processes bounded by the CPUs this
process may use, ``len(os.sched_getaffinity(0))``).  Output: float64 NumPy features and logits.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from ganworks.errors import DataError


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def bounded_workers(requested: int) -> int:
    return max(0, min(int(requested), available_cpus()))


def _prepare(batch: torch.Tensor, extractor) -> torch.Tensor:
    if batch.dtype != torch.uint8:
        raise DataError(f"images must be uint8, got {batch.dtype}")
    c = batch.shape[1]
    want = extractor.channels
    if c == want:
        return batch
    if c == 1 and want == 3:
        return batch.expand(-1, 3, -1, -1)
    raise DataError(f"images have {c} channels but the {extractor.name} extractor expects {want}")


@torch.inference_mode()
def extract_features(
    extractor, images, batch_size: int = 64, num_workers: int = 0, progress: bool = True, desc: str = "features"
) -> tuple[np.ndarray, np.ndarray]:
    """(features (N, D), logits (N, K)) as float64 arrays."""
    from tqdm.auto import tqdm

    device = extractor.device
    if isinstance(images, torch.Tensor):
        if images.ndim != 4:
            raise DataError(f"images must be N×C×H×W, got shape {tuple(images.shape)}")
        n = len(images)
        batches = (images[s : s + batch_size] for s in range(0, n, batch_size))
    else:
        n = len(images)
        workers = bounded_workers(num_workers)
        batches = torch.utils.data.DataLoader(
            images, batch_size=batch_size, shuffle=False, num_workers=workers, pin_memory=device.type == "cuda"
        )
    if n == 0:
        raise DataError("no images to evaluate")
    feats, logits = [], []
    with tqdm(total=n, desc=desc, unit="img", disable=not progress, leave=False) as bar:
        for b in batches:
            x = _prepare(b, extractor).to(device, non_blocking=True)
            f, l = extractor(x)
            feats.append(f.float().cpu())
            logits.append(l.float().cpu())
            bar.update(len(b))
    return torch.cat(feats).double().numpy(), torch.cat(logits).double().numpy()
