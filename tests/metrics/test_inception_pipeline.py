"""End to end with torch-fidelity's Inception: our pipeline vs torch-fidelity's calculate_metrics.

Uses a randomly initialised Inception saved to a temporary file (the real weights cannot be
downloaded here); the same checks run on the real weights when $GANWORKS_INCEPTION_WEIGHTS is set.
"""

from __future__ import annotations

import os

import pytest
import torch

from ganworks.metrics.datasets import ImageTensorDataset

torch_fidelity = pytest.importorskip("torch_fidelity")

from ganworks.errors import GanworksError  # noqa: E402
from ganworks.metrics.api import compute_metrics  # noqa: E402
from ganworks.metrics.inception import InceptionExtractor  # noqa: E402

REAL_WEIGHTS = os.environ.get("GANWORKS_INCEPTION_WEIGHTS")
needs_real = pytest.mark.skipif(
    not REAL_WEIGHTS,
    reason="GANWORKS_INCEPTION_WEIGHTS is unset: the real torch-fidelity Inception weights are not available offline",
)


def _agreement(weights, fake, real):
    """Our IS (both protocols) / FID / KID vs torch-fidelity on the same images and weights."""
    common = dict(
        feature_extractor_weights_path=str(weights),
        cuda=False,
        cache=False,
        verbose=False,
        save_cpu_ram=True,
        batch_size=16,
    )
    tf = torch_fidelity.calculate_metrics(
        input1=ImageTensorDataset(fake),
        input2=ImageTensorDataset(real),
        isc=True,
        fid=True,
        kid=True,
        isc_splits=2,
        kid_subsets=4,
        kid_subset_size=12,
        samples_shuffle=False,
        **common,
    )
    ext = InceptionExtractor(weights)
    ours = compute_metrics(
        fake,
        reference=real,
        metrics=("is", "fid", "kid"),
        extractor_obj=ext,
        is_splits=2,
        kid_subsets=4,
        kid_subset_size=12,
        batch_size=16,
        progress=False,
        use_cache=False,
    )
    # torch-fidelity's shuffled IS protocol from the same features (no second extraction)
    from ganworks.metrics.inception_score import inception_score

    logits = ours.arrays["fake_logits"]
    shuffled = inception_score(logits, splits=2, shuffle=True, seed=2020)
    from torch_fidelity.metric_isc import isc_features_to_metric

    tf_shuffled = isc_features_to_metric(torch.from_numpy(logits).float(), splits=2, shuffle=True, rng_seed=2020)
    return tf, ours, shuffled, tf_shuffled


def _check(tf, ours, shuffled, tf_shuffled):
    s = ours.scores
    rel = 1e-4
    assert s["IS"] == pytest.approx(tf["inception_score_mean"], rel=rel)
    assert s["IS_std"] == pytest.approx(tf["inception_score_std"], rel=1e-3, abs=1e-6)
    assert s["FID"] == pytest.approx(tf["frechet_inception_distance"], rel=rel)
    assert s["KID"] == pytest.approx(tf["kernel_inception_distance_mean"], rel=rel)
    assert shuffled["IS"] == pytest.approx(tf_shuffled["inception_score_mean"], rel=rel)
    # the comparison is meaningful only if the features are not collapsed
    assert s["IS"] > 1.05 and s["FID"] > 1.0 and abs(s["KID"]) > 1e-3
    assert ours.protocol["n_fake"] == 24 and ours.protocol["n_real"] == 16
    assert ours.protocol["is_protocol"] == "openai" and ours.protocol["is_shuffled"] is False


@pytest.mark.slow
def test_matches_torch_fidelity_random_weights(random_inception_weights, fake_images, real_images):
    tf, ours, shuffled, tf_shuffled = _agreement(random_inception_weights, fake_images, real_images)
    _check(tf, ours, shuffled, tf_shuffled)
    assert ours.protocol["weights_official"] is False
    assert any("not torch-fidelity's official" in n for n in ours.notes)


@needs_real
def test_matches_torch_fidelity_real_weights(fake_images, real_images):
    tf, ours, shuffled, tf_shuffled = _agreement(REAL_WEIGHTS, fake_images, real_images)
    _check(tf, ours, shuffled, tf_shuffled)
    assert ours.protocol["weights_official"] is True


@needs_real
def test_real_weights_are_official():
    ext = InceptionExtractor(REAL_WEIGHTS)
    assert ext.official, "GANWORKS_INCEPTION_WEIGHTS does not hash to torch-fidelity's 6726825d… file"


def test_offline_without_weights_is_one_clear_line(monkeypatch, tmp_path):
    import ganworks.metrics.inception as inc

    monkeypatch.delenv("GANWORKS_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(dst):
        raise OSError("network unreachable")

    monkeypatch.setattr(inc, "_download", offline)
    with pytest.raises(GanworksError) as e:
        inc.resolve_inception_weights(None)
    msg = str(e.value)
    assert "\n" not in msg
    assert "weights-inception-2015-12-05-6726825d.pth" in msg
    assert "GANWORKS_INCEPTION_WEIGHTS" in msg and "--inception-weights" in msg


def test_weights_resolution_order(monkeypatch, tmp_path, random_inception_weights):
    from ganworks.metrics.inception import resolve_inception_weights

    monkeypatch.setenv("GANWORKS_INCEPTION_WEIGHTS", str(random_inception_weights))
    assert resolve_inception_weights(None) == random_inception_weights
    with pytest.raises(GanworksError, match="not found"):
        resolve_inception_weights(tmp_path / "nope.pth")  # explicit argument wins, and is checked
    monkeypatch.setenv("GANWORKS_INCEPTION_WEIGHTS", str(tmp_path / "missing.pth"))
    with pytest.raises(GanworksError, match="GANWORKS_INCEPTION_WEIGHTS"):
        resolve_inception_weights(None)


def test_corrupt_weights_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(GanworksError, match="could not be loaded"):
        InceptionExtractor(bad)
