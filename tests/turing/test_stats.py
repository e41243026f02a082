"""HYPE∞ statistics: the bootstrap interval covers the true human error rate of simulated raters, the
Wilson interval matches SciPy's, the rank correlation matches SciPy's Spearman."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit
from scipy.stats import binomtest, spearmanr

from ganworks.turing.stats import bootstrap_hype, rank_correlations, wilson


def _true_rate(mean_logit, sd):
    """E[sigmoid(m + e)], e ~ N(0, sd²), by Gauss–Hermite quadrature (independent of the estimator)."""
    x, w = np.polynomial.hermite_e.hermegauss(80)
    return float((w * expit(mean_logit + sd * x)).sum() / w.sum())


def simulate_coverage(studies=200, raters=20, pool=40, per_rater=20, reps=400, seed=0):
    """Fraction of simulated studies whose 95 % CI contains the true HYPE∞.

    Raters differ (logit offset a_r ~ N(0, 0.6²)) and images differ (b_i ~ N(0, 0.8²)); each rater
    answers ``per_rater`` images (half real, half fake) drawn from pools of ``pool`` of each."""
    rng = np.random.default_rng(seed)
    sa, sb = 0.6, 0.8
    m_fake, m_real = -0.4, -1.6  # error logits: fakes fooled ~40 %, reals called fake ~20 %
    truth = 0.5 * (_true_rate(m_fake, np.hypot(sa, sb)) + _true_rate(m_real, np.hypot(sa, sb)))
    hits, widths = 0, []
    for s in range(studies):
        a = rng.normal(0, sa, raters)
        b = rng.normal(0, sb, 2 * pool)  # images 0..pool-1 real, pool..2pool-1 fake
        half = per_rater // 2
        img = np.concatenate(
            [
                np.stack([rng.choice(pool, half, replace=False) for _ in range(raters)]),
                pool + np.stack([rng.choice(pool, half, replace=False) for _ in range(raters)]),
            ],
            1,
        )
        rat = np.repeat(np.arange(raters)[:, None], per_rater, 1)
        fake = img >= pool
        p = expit(np.where(fake, m_fake, m_real) + a[rat] + b[img])
        err = rng.random(p.shape) < p
        h, lo, hi = bootstrap_hype(rat.ravel(), img.ravel(), fake.ravel(), err.ravel(), reps=reps, seed=s)
        hits += lo <= truth <= hi
        widths.append(hi - lo)
    return hits / studies, truth, float(np.mean(widths))


def test_bootstrap_interval_covers_the_true_rate():
    coverage, truth, width = simulate_coverage()
    print(f"HYPE∞ bootstrap coverage {coverage:.3f} over 200 studies (true rate {truth:.3f}, mean width {width:.3f})")
    assert coverage >= 0.93
    assert width < 0.3  # an interval of everything would "cover" too


def test_hype_is_the_balanced_error():
    rater = np.array([0, 0, 0, 1, 1, 1])
    image = np.array([0, 1, 2, 0, 1, 2])
    fake = np.array([True, False, False, True, False, False])
    err = np.array([1, 0, 0, 0, 1, 0], bool)
    h, lo, hi = bootstrap_hype(rater, image, fake, err, reps=200)
    assert h == pytest.approx(0.5 * (1 / 2 + 1 / 4))
    assert 0 <= lo <= h <= hi <= 1


@pytest.mark.parametrize("k, n", [(0, 10), (3, 10), (52, 100), (1049, 2000), (20, 20)])
def test_wilson_matches_scipy(k, n):
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert wilson(k, n) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_rank_correlation_matches_scipy_and_skips_single_generators():
    human = {"g1": 0.10, "g2": 0.30, "g3": 0.20, "g4": 0.45}
    scores = {
        "g1": {"IS": 5.0, "FID": 60.0},
        "g2": {"IS": 7.0, "FID": 30.0},
        "g3": {"IS": 6.5, "FID": 25.0},
        "g4": {"IS": 8.0, "FID": 10.0, "KID": 0.01},
    }
    out = {c["score"]: c for c in rank_correlations(human, scores)}
    assert set(out) == {"IS", "FID"}  # KID: only one generator has it
    xs = [human[g] for g in sorted(human)]
    assert out["IS"]["spearman"] == pytest.approx(spearmanr(xs, [scores[g]["IS"] for g in sorted(human)]).statistic)
    assert out["FID"]["spearman"] == pytest.approx(spearmanr(xs, [scores[g]["FID"] for g in sorted(human)]).statistic)
    assert out["IS"]["expected_sign"] == 1 and out["FID"]["expected_sign"] == -1


def _tiny_study():
    images = {
        f"{k:016x}": {
            "source": "gen" if k >= 4 else "mnist:test",
            "truth": "fake" if k >= 4 else "real",
            "kind": "main",
            "index": k,
        }
        for k in range(8)
    }
    return {
        "name": "t",
        "images": images,
        "options": {"staircase": False},
        "sources": [{"label": "mnist:test", "truth": "real"}, {"label": "gen", "truth": "fake"}],
    }


def _votes(study, answers):
    """answers: image id → list of answers (one session per position in the list)."""
    out = []
    for iid, ans in answers.items():
        m = study["images"][iid]
        for k, a in enumerate(ans):
            out.append(
                {
                    "session_id": f"s{k}",
                    "image_id": iid,
                    "source": m["source"],
                    "truth": m["truth"],
                    "kind": "main",
                    "answer": a,
                    "created": float(k),
                }
            )
    return out


def test_results_text_without_scored_votes_has_one_dash_per_missing_interval():
    from ganworks.turing.stats import summarize, to_markdown

    text = to_markdown(summarize(_tiny_study(), [], reps=10))
    assert "––" not in text
    row = next(line for line in text.splitlines() if line.startswith("| gen "))
    assert row.split("|")[9].strip() == "–" and row.split("|")[10].strip() == "–"
    assert "0 sessions" in text


def test_results_text_says_1_session_and_what_accuracy_is_measured_on():
    from ganworks.turing.stats import summarize, to_markdown

    s = _tiny_study()
    text = to_markdown(summarize(s, _votes(s, {iid: ["real"] for iid in s["images"]}), reps=10))
    assert "1 session (" in text and "1 sessions" not in text
    assert "Accuracy is the share of right answers on: the real images" in text


def test_most_convincing_fakes_are_only_fakes_someone_called_real():
    from ganworks.turing.stats import summarize, to_markdown

    s = _tiny_study()
    fakes = [i for i, m in s["images"].items() if m["truth"] == "fake"]
    nobody = summarize(s, _votes(s, {iid: ["fake", "fake"] for iid in s["images"]}), reps=10)
    assert nobody["most_convincing_fakes"] == [] and "Most convincing" not in to_markdown(nobody)
    answers = {iid: ["fake", "fake"] for iid in s["images"]}
    answers[fakes[2]] = ["real", "fake"]
    one = summarize(s, _votes(s, answers), reps=10)
    assert [d["image_id"] for d in one["most_convincing_fakes"]] == [fakes[2]]
    assert one["most_convincing_fakes"][0]["judged_real_rate"] == 0.5
