"""IS / FID / KID against independent NumPy/SciPy computations, and their defining properties."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
import scipy.special

from ganworks.metrics.fid import FIDWarning, feature_statistics, fid_from_features, frechet_distance
from ganworks.metrics.inception_score import inception_score
from ganworks.metrics.kid import kernel_inception_distance

# ---------------------------------------------------------------- Inception Score


def _is_reference(logits, splits):
    """Straight transcription of the OpenAI loop (docs/papers.md §A.6), scipy softmax, equal chunks."""
    p = scipy.special.softmax(logits.astype(np.float64), axis=1)
    n = len(p) // splits
    scores = []
    for i in range(splits):
        part = p[i * n : (i + 1) * n]
        py = np.mean(part, 0, keepdims=True)
        kl = part * (np.log(part) - np.log(py))
        scores.append(np.exp(np.mean(np.sum(kl, 1))))
    return np.mean(scores), np.std(scores)


def test_is_matches_numpy_reference():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(200, 17))
    r = inception_score(logits, splits=5)
    mean, std = _is_reference(logits, 5)
    assert r["IS"] == pytest.approx(mean, rel=1e-12)
    assert r["IS_std"] == pytest.approx(std, rel=1e-10)
    assert len(r["split_scores"]) == 5


def test_is_uniform_predictions_is_one():
    r = inception_score(np.zeros((50, 10)), splits=5)
    assert r["IS"] == pytest.approx(1.0, abs=1e-12)
    assert r["IS_std"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("k", [2, 7, 10])
def test_is_of_k_equally_frequent_one_hot_classes_is_k(k):
    labels = np.tile(np.arange(k), 6)  # every split of size k·(6/splits) holds each class equally often
    logits = np.full((len(labels), 12), -1e4)  # effectively one-hot, no underflow trouble
    logits[np.arange(len(labels)), labels] = 0.0
    r = inception_score(logits, splits=2)
    assert r["IS"] == pytest.approx(k, rel=1e-9)


def test_is_contiguous_splits_differ_from_shuffled():
    # class-sorted samples: each contiguous split holds one class → IS 1 per split (OpenAI protocol),
    # whereas torch-fidelity's shuffled splits mix classes and score much higher.
    labels = np.repeat(np.arange(10), 20)
    logits = np.full((200, 10), -40.0)  # near one-hot but no probability underflows to 0
    logits[np.arange(200), labels] = 0.0
    contiguous = inception_score(logits, splits=10, shuffle=False)
    shuffled = inception_score(logits, splits=10, shuffle=True, seed=2020)
    assert contiguous["IS"] == pytest.approx(1.0, abs=1e-9)
    assert shuffled["IS"] > 5.0
    # and the shuffled variant is exactly the OpenAI loop on RandomState(2020)-permuted samples
    perm = np.random.RandomState(2020).permutation(200)
    assert shuffled["IS"] == pytest.approx(_is_reference(logits[perm], 10)[0], rel=1e-9)


def test_is_rejects_too_few_samples():
    with pytest.raises(ValueError):
        inception_score(np.zeros((3, 4)), splits=10)


# ---------------------------------------------------------------- FID


def _fid_reference(x, y):
    mu1, mu2 = x.mean(0), y.mean(0)
    c1, c2 = np.cov(x.T), np.cov(y.T)
    # independent route: tr sqrt(C1 C2) = Σ sqrt(eig(sqrt(C1) C2 sqrt(C1))), all symmetric PSD
    w, v = np.linalg.eigh(c1)
    s1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    ev = np.linalg.eigvalsh(s1 @ c2 @ s1)
    return np.sum((mu1 - mu2) ** 2) + np.trace(c1) + np.trace(c2) - 2 * np.sum(np.sqrt(np.clip(ev, 0, None)))


def test_fid_matches_independent_computation():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 16))
    y = rng.normal(size=(250, 16)) @ rng.normal(size=(16, 16)) * 0.5 + 0.3
    assert fid_from_features(x, y) == pytest.approx(_fid_reference(x, y), rel=1e-9)


def test_fid_self_is_zero_and_symmetric():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 12))
    y = rng.normal(size=(180, 12)) * 1.5 + 1.0
    assert abs(fid_from_features(x, x)) < 1e-8
    assert fid_from_features(x, y) == pytest.approx(fid_from_features(y, x), rel=1e-9)
    assert fid_from_features(x, y) > 1.0


def test_fid_is_float64_and_known_gaussians():
    # 1-d: FID = (m1 - m2)^2 + (s1 - s2)^2
    assert frechet_distance([0.0], [[4.0]], [3.0], [[1.0]]) == pytest.approx(9.0 + 1.0)
    assert isinstance(
        frechet_distance(
            np.zeros(3, np.float32), np.eye(3, dtype=np.float32), np.ones(3, np.float32), np.eye(3, dtype=np.float32)
        ),
        float,
    )


def test_fid_fewer_samples_than_dims_warns_but_works():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(10, 40)), rng.normal(size=(12, 40)) + 0.1
    with pytest.warns(FIDWarning, match="singular"):
        v = fid_from_features(x, y)
    assert np.isfinite(v)
    assert v == pytest.approx(_fid_reference(x, y), rel=1e-6)


def test_fid_drops_imaginary_part_and_warns_above_threshold(monkeypatch):
    s = np.eye(3)

    def fake_sqrtm(a):
        return np.eye(3) + 1j * 0.5 * np.eye(3)

    monkeypatch.setattr(scipy.linalg, "sqrtm", fake_sqrtm)
    with pytest.warns(FIDWarning, match="imaginary"):
        v = frechet_distance(np.zeros(3), s, np.zeros(3), s, imag_tol=1e-3)
    assert v == pytest.approx(0.0)  # real part used: 3 + 3 - 2·3
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # below the threshold: silently dropped
        assert frechet_distance(np.zeros(3), s, np.zeros(3), s, imag_tol=1.0) == pytest.approx(0.0)


def test_feature_statistics_unbiased_covariance():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(50, 3))
    mu, sigma = feature_statistics(x)
    assert np.allclose(mu, x.mean(0))
    assert np.allclose(sigma, (x - mu).T @ (x - mu) / 49)


# ---------------------------------------------------------------- KID


def _kid_reference(x, y, subsets, size, seed):
    rng = np.random.RandomState(seed)
    d = x.shape[1]
    out = []
    for _ in range(subsets):
        a = x[rng.choice(len(x), size, replace=False)]
        b = y[rng.choice(len(y), size, replace=False)]
        k = lambda u, v: (u @ v.T / d + 1.0) ** 3  # noqa: E731
        kxx, kyy, kxy = k(a, a), k(b, b), k(a, b)
        m = size
        off = ~np.eye(m, dtype=bool)
        out.append(kxx[off].mean() + kyy[off].mean() - 2 * kxy.mean())
    return np.mean(out), np.std(out)


def test_kid_matches_numpy_reference():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(120, 8)), rng.normal(size=(100, 8)) + 0.5
    r = kernel_inception_distance(x, y, subsets=7, subset_size=30, seed=11)
    mean, std = _kid_reference(x, y, 7, 30, 11)
    assert r["KID"] == pytest.approx(mean, rel=1e-10)
    assert r["KID_std"] == pytest.approx(std, rel=1e-8)
    assert r["KID"] > 0.05


def test_kid_same_distribution_near_zero():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    r = kernel_inception_distance(x, y, subsets=20, subset_size=200)
    assert abs(r["KID"]) < 3 * r["KID_std"] + 1e-3


def test_kid_subset_size_adapts_or_errors():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(20, 4)), rng.normal(size=(15, 4))
    r = kernel_inception_distance(x, y, subsets=3, subset_size=1000)
    assert r["subset_size"] == 15
    with pytest.raises(ValueError, match="subset size"):
        kernel_inception_distance(x, y, subsets=3, subset_size=1000, adapt_subset_size=False)
