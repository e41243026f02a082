"""Section ``inception-score``: the Inception Score arithmetic, ganworks' ``metrics.inception_score``
vs openai/improved-gan ``inception_score/model.py`` ``get_inception_score`` (``ref_inception_score.py``),
on identical class probabilities.

The Inception network is not part of this comparison (it needs the 2015 TF graph): both sides get
the same (N, 1008) logits, ganworks as logits, the reference as their softmax (what its TF session
returns), computed here in float64. Cases: 10 splits of 5,000 (the paper's protocol at 1/10 the
samples), 1 split (sngan_projection's), 10 splits of 1,003 (split boundaries i·N // splits that do not
divide evenly), and near one-hot probabilities (a confident classifier, IS close to its maximum).
Float64 rows must agree to 1e-10; a float32 info row gives the reference float32 probabilities (as
TF would) and ganworks float32 logits.
"""

from __future__ import annotations

from pathlib import Path

import compare as C
import numpy as np
from harness import Section, run_reference, seed_all

CASES = {  # name: (N, splits, logit scale)
    "n5000_s10": (5000, 10, 3.0),
    "n5000_s1": (5000, 1, 3.0),
    "n1003_s10": (1003, 10, 3.0),
    "peaked_n2000_s10": (2000, 10, 12.0),
}
K = 1008


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def section(a, tmp: Path) -> list[C.Check]:
    from ganworks.metrics.inception_score import inception_score

    rs = seed_all(0)
    logits = {
        name: (rs.randn(n, K) * scale).astype(np.float32).astype(np.float64) for name, (n, _, scale) in CASES.items()
    }
    inp, ours = {}, {}
    for name, (n, splits, _) in CASES.items():
        p = _softmax(logits[name])
        assert p.min() > 1e-300, "a probability underflows: the reference would take log 0"
        inp[f"{name}/probs"], inp[f"{name}/splits"] = p, np.asarray(splits)
        inp[f"f32_{name}/probs"], inp[f"f32_{name}/splits"] = (
            _softmax(logits[name]).astype(np.float32),
            np.asarray(splits),
        )
        r = inception_score(logits[name], splits=splits)
        r32 = inception_score(logits[name].astype(np.float32), splits=splits)
        ours.update(
            {
                f"{name}/IS": r["IS"],
                f"{name}/IS_std": r["IS_std"],
                f"f32_{name}/IS": r32["IS"],
                f"f32_{name}/IS_std": r32["IS_std"],
            }
        )
    ref = run_reference(
        a.is_python, "ref_inception_score.py", ["--improved-gan", a.improved_gan], inp, {}, tmp, "inception-score"
    )
    sec, sec32 = Section("inception-score", "float64"), Section("inception-score", "float32")
    ref_fn = "improved-gan inception_score/model.py: get_inception_score (splits, KL, np.mean / np.std)"
    for name, (n, splits, scale) in CASES.items():
        keys = [f"{name}/IS", f"{name}/IS_std"]
        sec.check(
            f"Inception Score arithmetic, N={n}, {splits} split(s), logits × {scale:g}: mean and std",
            ref_fn,
            "metrics.inception_score",
            {k: (np.asarray(ours[k]), ref[k]) for k in keys},
            rtol=C.RTOL_FLOAT64,
            note="identical probabilities on both sides (the Inception network is not compared); "
            f"IS = {float(ref[keys[0]]):.6g} ± {float(ref[keys[1]]):.3g}",
        )
        sec32.check(
            f"Inception Score arithmetic, N={n}, {splits} split(s): reference on float32 probabilities "
            f"(as its TF session returns them), ganworks on float32 logits",
            ref_fn,
            "metrics.inception_score",
            {k: (np.asarray(ours["f32_" + k]), ref["f32_" + k]) for k in keys},
            info=True,
            note="diagnostic: the size of float32 inputs' rounding in the score",
        )
    return sec.checks + sec32.checks
