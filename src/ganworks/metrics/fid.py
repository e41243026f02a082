"""Fréchet distance between Gaussians fitted to features (Heusel et al. 2017; Miyato et al. 2018 App. B.1).

FID = ||mu1 − mu2||² + tr(C1 + C2 − 2 (C1 C2)^{1/2})  (docs/papers.md §B.5), in float64.
``scipy.linalg.sqrtm`` can return a complex matrix with a tiny imaginary part (round-off on nearly
singular products); it is dropped, with a warning when it exceeds ``imag_tol``.  If the square root
is not finite (singular product), the covariances get ``eps·I`` added, as in pytorch-fid.  With
fewer samples than feature dimensions the covariances are singular: the number is computed and a
warning says it is strongly biased.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg


class FIDWarning(UserWarning):
    """FID was computed, but with a caveat (few samples, complex square root)."""


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance with the N−1 denominator) of an (N, D) feature array, float64."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"FID needs an (N, D) feature array with N >= 2, got shape {f.shape}")
    if f.shape[0] <= f.shape[1]:
        warnings.warn(
            f"FID from {f.shape[0]} samples of {f.shape[1]}-d features: the covariance is singular and "
            "the score is strongly biased; compare only numbers computed with the same sample counts",
            FIDWarning,
            stacklevel=2,
        )
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2, imag_tol: float = 1e-3, eps: float = 1e-6) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"statistics do not match: mu {mu1.shape} vs {mu2.shape}, sigma {s1.shape} vs {s2.shape}")
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        warnings.warn(f"FID: sqrtm of a singular product; adding {eps}·I to the covariances", FIDWarning, stacklevel=2)
        off = np.eye(s1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((s1 + off) @ (s2 + off))
    if np.iscomplexobj(covmean):
        imag = float(np.max(np.abs(covmean.imag))) if covmean.size else 0.0
        if imag > imag_tol:
            warnings.warn(
                f"FID: sqrtm has an imaginary component up to {imag:.3g} (> {imag_tol:g}); dropped",
                FIDWarning,
                stacklevel=2,
            )
        covmean = covmean.real
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def fid_from_features(features1, features2, imag_tol: float = 1e-3) -> float:
    """FID between two (N, D) feature arrays."""
    return frechet_distance(*feature_statistics(features1), *feature_statistics(features2), imag_tol=imag_tol)
