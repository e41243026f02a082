"""Inception Score (Salimans et al. 2016, §4): IS = exp(E_x KL(p(y|x) || p(y))).

Protocol of the OpenAI reference code (docs/papers.md §A.6): softmax over the logits (for Inception:
the 1008 outputs of ``pool_3 @ W`` without the bias), ``splits`` contiguous, *unshuffled* chunks
of N // splits-style boundaries, per chunk exp(mean_x Σ_y p(y|x)(log p(y|x) − log p̄(y))), and the
mean and population standard deviation (``np.std``) of the chunk scores.  torch-fidelity first
shuffles the samples with ``RandomState(2020).permutation`` (docs/papers.md §C.2); that variant is
``shuffle=True``.  All arithmetic in float64.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    m = logits.max(axis=1, keepdims=True)
    z = logits - m
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def split_bounds(n: int, splits: int) -> list[tuple[int, int]]:
    """Chunk boundaries ``[i*n//splits, (i+1)*n//splits)`` (as torch-fidelity; the OpenAI code
    uses equal chunks of n//splits, identical whenever splits divides n)."""
    return [(i * n // splits, (i + 1) * n // splits) for i in range(splits)]


def inception_score(logits, splits: int = 10, shuffle: bool = False, seed: int = 2020) -> dict:
    """IS mean and std from an (N, K) array of logits.

    Returns ``{"IS": mean, "IS_std": population std, "split_scores": [...]}``.
    """
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2:
        raise ValueError(f"logits must be 2-D (N, K), got shape {logits.shape}")
    n = logits.shape[0]
    if splits < 1 or n < splits:
        raise ValueError(f"Inception Score needs at least one sample per split: {n} samples, {splits} splits")
    if shuffle:
        logits = logits[np.random.RandomState(seed).permutation(n)]
    log_p = _log_softmax(logits)
    p = np.exp(log_p)
    scores = []
    for a, b in split_bounds(n, splits):
        p_c, log_p_c = p[a:b], log_p[a:b]
        # log p̄(y) = log mean_x p(y|x), computed in log space so that no probability underflows to log 0
        log_marg = logsumexp(log_p_c, axis=0, keepdims=True) - np.log(b - a)
        kl = (p_c * (log_p_c - log_marg)).sum(axis=1).mean()
        scores.append(float(np.exp(kl)))
    return {"IS": float(np.mean(scores)), "IS_std": float(np.std(scores)), "split_scores": scores}
