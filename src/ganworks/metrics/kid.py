"""Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs", §4).

Unbiased MMD² with the cubic polynomial kernel k(x, y) = (gamma·xᵀy + coef0)^degree, gamma = 1/d,
coef0 = 1, averaged over ``subsets`` random subsets of ``subset_size`` samples drawn without
replacement from each set (torch-fidelity's defaults: 100 subsets of 1000; its sampling order:
one ``RandomState(seed)`` drawing the first set's subset, then the second's).  When a set has fewer
than ``subset_size`` samples, ``adapt_subset_size=True`` shrinks the subset to the smaller set's
size (recorded in the result); otherwise it is an error.  Float64.
"""

from __future__ import annotations

import numpy as np


def polynomial_kernel(x, y, degree=3, gamma=None, coef0=1.0):
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (x @ y.T * gamma + coef0) ** degree


def mmd2_unbiased(kxx, kxy, kyy) -> float:
    """Unbiased MMD² estimate (diagonals of K_XX and K_YY excluded)."""
    m = kxx.shape[0]
    sxx = kxx.sum() - np.trace(kxx)
    syy = kyy.sum() - np.trace(kyy)
    return float((sxx + syy) / (m * (m - 1)) - 2.0 * kxy.sum() / (m * m))


def kernel_inception_distance(
    features1,
    features2,
    subsets=100,
    subset_size=1000,
    degree=3,
    gamma=None,
    coef0=1.0,
    seed=2020,
    adapt_subset_size=True,
) -> dict:
    """KID mean and std over subsets: ``{"KID", "KID_std", "subset_size", "subsets"}``."""
    f1 = np.asarray(features1, dtype=np.float64)
    f2 = np.asarray(features2, dtype=np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError(f"KID needs two (N, D) arrays with equal D, got {f1.shape} and {f2.shape}")
    n_min = min(len(f1), len(f2))
    if n_min < subset_size:
        if not adapt_subset_size:
            raise ValueError(
                f"KID subset size {subset_size} exceeds the number of samples "
                f"({len(f1)} and {len(f2)}); lower the subset size"
            )
        subset_size = n_min
    if subset_size < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {len(f1)} and {len(f2)}")
    rng = np.random.RandomState(seed)
    mmds = np.empty(subsets)
    for i in range(subsets):
        x = f1[rng.choice(len(f1), subset_size, replace=False)]
        y = f2[rng.choice(len(f2), subset_size, replace=False)]
        k = lambda a, b: polynomial_kernel(a, b, degree, gamma, coef0)  # noqa: E731
        mmds[i] = mmd2_unbiased(k(x, x), k(x, y), k(y, y))
    return {
        "KID": float(mmds.mean()),
        "KID_std": float(mmds.std()),
        "subset_size": int(subset_size),
        "subsets": int(subsets),
    }
