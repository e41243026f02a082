"""Scores of a visual Turing test: error rates, HYPE∞ with bootstrap CIs, Wilson intervals, rank
correlations with IS / FID.

HYPE∞ (Zhou et al., NeurIPS 2019, §3) is the human error rate on a 50/50 mix of real and generated
images: ``(error on fakes + error on reals) / 2``, so 50 % means people cannot tell them apart.  Its
95 % CI is a bootstrap that resamples *raters* and *images* (HYPE's method), vectorised: each
replicate draws multinomial counts for raters and for images, and a vote's weight is the product of
its rater's and its image's counts.  The Wilson interval is the closed-form binomial interval of a
pooled error rate (votes treated as independent, so it is narrower when raters or images differ).
"""

from __future__ import annotations

import math

import numpy as np

Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of ``k`` successes in ``n`` trials (``(nan, nan)`` when n = 0)."""
    if n <= 0:
        return (math.nan, math.nan)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def _weights(n_units: int, reps: int, rng) -> np.ndarray:
    """reps × n_units bootstrap counts (multinomial resample with replacement)."""
    return rng.multinomial(n_units, np.full(n_units, 1.0 / n_units), size=reps).astype(np.float64)


def bootstrap_hype(rater, image, is_fake, error, reps: int = 1000, seed: int = 0, level: float = 0.95):
    """HYPE∞ and its bootstrap CI from vote arrays.

    ``rater``, ``image``: integer codes 0..R-1 and 0..I-1; ``is_fake``, ``error``: booleans.  Each
    replicate resamples raters and images with replacement; its HYPE∞ is the mean of the weighted
    error on fakes and the weighted error on reals.  Returns (hype, low, high).
    """
    rater, image = np.asarray(rater), np.asarray(image)
    is_fake, error = np.asarray(is_fake, bool), np.asarray(error, float)
    if not (is_fake.any() and (~is_fake).any()):
        return (math.nan, math.nan, math.nan)
    hype = 0.5 * (error[is_fake].mean() + error[~is_fake].mean())
    rng = np.random.default_rng(seed)
    R, I = int(rater.max()) + 1, int(image.max()) + 1
    wR, wI = _weights(R, reps, rng), _weights(I, reps, rng)
    f = is_fake.astype(float)
    h = np.empty(reps)
    chunk = max(1, int(2e6 // max(1, len(error))))  # bound memory: chunk × votes weights at a time
    for a in range(0, reps, chunk):
        w = wR[a : a + chunk, rater] * wI[a : a + chunk, image]  # chunk × votes
        wf, wr = w * f, w * (1 - f)
        with np.errstate(invalid="ignore", divide="ignore"):
            h[a : a + chunk] = 0.5 * ((wf @ error) / wf.sum(1) + (wr @ error) / wr.sum(1))
    h = h[np.isfinite(h)]  # a replicate that drew no fake (or no real) image has no HYPE
    a = (1 - level) / 2
    lo, hi = np.quantile(h, [a, 1 - a]) if len(h) else (math.nan, math.nan)
    return (float(hype), float(lo), float(hi))


def rank_correlations(human: dict, scores: dict) -> list[dict]:
    """Spearman ρ and Kendall τ between the human error (per generator) and each score key that at
    least two generators have.  ``human``: label → HYPE∞; ``scores``: label → {key: value}."""
    from scipy.stats import kendalltau, spearmanr

    keys = sorted({k for s in scores.values() for k in s})
    out = []
    for k in keys:
        labels = [g for g in human if k in scores.get(g, {}) and np.isfinite(human[g])]
        if len(labels) < 2:
            continue
        x = [human[g] for g in labels]
        y = [scores[g][k] for g in labels]
        rho = spearmanr(x, y).statistic if len(labels) > 2 else float(np.sign((x[1] - x[0]) * (y[1] - y[0])))
        tau = kendalltau(x, y).statistic
        out.append(
            {
                "score": k,
                "n": len(labels),
                "generators": labels,
                "spearman": float(rho),
                "kendall": float(tau),
                "expected_sign": -1 if "FID" in k or "KID" in k else 1,
            }
        )
    return out


def summarize(
    study: dict, votes: list[dict], exclude_failed: bool = True, reps: int = 1000, seed: int = 0, top: int = 8
) -> dict:
    """Every number of the owner's page and of ``ganworks turing results``.

    ``votes``: dicts with ``session_id``, ``image_id``, ``source``, ``truth``, ``kind``, ``answer``.
    """
    manifest = study["images"]
    sessions: dict = {}
    for v in votes:
        s = sessions.setdefault(v["session_id"], {"attention": 0, "attention_failed": 0, "main": 0})
        if v["kind"] == "attention":
            s["attention"] += 1
            s["attention_failed"] += v["answer"] != v["truth"]
        elif v["kind"] == "main":
            s["main"] += 1
    failed = {sid for sid, s in sessions.items() if s["attention_failed"]}
    used = [v for v in votes if v["kind"] == "main" and not (exclude_failed and v["session_id"] in failed)]
    real_label = next(s["label"] for s in study["sources"] if s["truth"] == "real")
    fakes = [s for s in study["sources"] if s["truth"] == "fake"]

    def arrays(vs):
        raters = {sid: i for i, sid in enumerate(sorted({v["session_id"] for v in vs}))}
        images = {iid: i for i, iid in enumerate(sorted({v["image_id"] for v in vs}))}
        r = np.array([raters[v["session_id"]] for v in vs], dtype=np.int64)
        im = np.array([images[v["image_id"]] for v in vs], dtype=np.int64)
        fk = np.array([v["truth"] == "fake" for v in vs], dtype=bool)
        err = np.array([v["answer"] != v["truth"] for v in vs], dtype=bool)
        return r, im, fk, err

    reals = [v for v in used if v["source"] == real_label]
    real_err = sum(v["answer"] != v["truth"] for v in reals)
    per_source = []
    rs = {
        "source": real_label,
        "truth": "real",
        "votes": len(reals),
        "raters": len({v["session_id"] for v in reals}),
        "accuracy": 1 - real_err / len(reals) if reals else math.nan,
        "error_on_reals": real_err / len(reals) if reals else math.nan,
        "error_on_reals_wilson": list(wilson(real_err, len(reals))),
    }
    per_source.append(rs)
    human = {}
    for k, s in enumerate(fakes):
        fv = [v for v in used if v["source"] == s["label"]]
        ferr = sum(v["answer"] != v["truth"] for v in fv)
        both = fv + reals
        row = {
            "source": s["label"],
            "truth": "fake",
            "votes": len(fv),
            "raters": len({v["session_id"] for v in fv}),
            "error_on_fakes": ferr / len(fv) if fv else math.nan,
            "error_on_fakes_wilson": list(wilson(ferr, len(fv))),
            "error_on_reals": rs["error_on_reals"],
            "scores": s.get("scores", {}),
        }
        if fv and reals:
            r, im, fk, err = arrays(both)
            h, lo, hi = bootstrap_hype(r, im, fk, err, reps=reps, seed=seed + k)
            nerr = int(err.sum())
            row.update(
                accuracy=1 - float(err.mean()),
                hype=h,
                hype_ci=[lo, hi],
                pooled_error=float(err.mean()),
                pooled_error_wilson=list(wilson(nerr, len(both))),
            )
        else:
            row.update(
                accuracy=math.nan,
                hype=math.nan,
                hype_ci=[math.nan, math.nan],
                pooled_error=math.nan,
                pooled_error_wilson=[math.nan, math.nan],
            )
        human[s["label"]] = row["hype"]
        per_source.append(row)

    # per-image "judged real" rate
    per_image = {}
    for v in used:
        d = per_image.setdefault(
            v["image_id"],
            {"image_id": v["image_id"], "source": v["source"], "truth": v["truth"], "votes": 0, "judged_real": 0},
        )
        d["votes"] += 1
        d["judged_real"] += v["answer"] == "real"
    images = sorted(per_image.values(), key=lambda d: (d["source"], d["image_id"]))
    for d in images:
        d["judged_real_rate"] = d["judged_real"] / d["votes"]
    fake_imgs = [d for d in images if d["truth"] == "fake"]
    by_rate = sorted(fake_imgs, key=lambda d: (-d["judged_real_rate"], -d["votes"], d["image_id"]))
    exposure = None
    if study["options"].get("staircase"):
        # HYPE-time-style threshold: per session, the mean exposure over the second half of its scored
        # answers (where the 2-down-1-up staircase hovers at ~71 % correct); median over sessions
        per = {}
        for v in sorted(used, key=lambda v: v.get("created", 0)):
            if v.get("exposure_ms"):
                per.setdefault(v["session_id"], []).append(v["exposure_ms"])
        th = [float(np.mean(e[len(e) // 2 :])) for e in per.values() if len(e) >= 2]
        exposure = {
            "sessions": len(th),
            "threshold_ms_median": float(np.median(th)) if th else math.nan,
            "rule": "2-down-1-up staircase; per-session mean exposure over the second half of its answers",
        }
    return {
        "study": study["name"],
        "staircase": exposure,
        "options": study["options"],
        "sessions": len(sessions),
        "sessions_failed_attention": len(failed),
        "excluded_failed_attention": bool(exclude_failed),
        "votes_total": len(votes),
        "votes_scored": len(used),
        "bootstrap": {"replicates": reps, "resample": "raters and images", "seed": seed, "level": 0.95},
        "sources": per_source,
        "rank_correlations": rank_correlations(human, {s["label"]: s.get("scores", {}) for s in fakes}),
        "images": images,
        # only fakes that fooled someone: a fake every rater called generated convinced nobody
        "most_convincing_fakes": [d for d in by_rate if d["judged_real"] > 0][:top],
        "least_convincing_fakes": by_rate[::-1][:top],
        "unvoted_images": sum(1 for m in manifest.values() if m["kind"] == "main") - len(images),
    }


def _fmt(x, pct=True):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{100 * x:.1f} %" if pct else f"{x:.3g}"


def _ci(lo_hi) -> str:
    """An interval as 'a–b', or one dash when there is none (no votes scored)."""
    lo, hi = lo_hi
    if any(x is None or (isinstance(x, float) and not math.isfinite(x)) for x in (lo, hi)):
        return "–"
    return f"{_fmt(lo)}–{_fmt(hi)}"


def _n(k: int, word: str) -> str:
    return f"{k} {word}" + ("" if k == 1 else "s")


def to_markdown(r: dict) -> str:
    """The results as a Markdown report (what ``ganworks turing results --format md`` prints)."""
    lines = [
        f"# Visual Turing test: {r['study']}",
        "",
        f"{_n(r['sessions'], 'session')} ({r['sessions_failed_attention']} failed an attention check"
        f"{', excluded' if r['excluded_failed_attention'] else ', kept'}); "
        f"{r['votes_scored']} scored {'vote' if r['votes_total'] == 1 else 'votes'} of {r['votes_total']}. "
        f"HYPE∞ = (error on fakes + error on reals) / 2; 95 % CI: bootstrap over raters and images "
        f"({r['bootstrap']['replicates']} replicates); Wilson: pooled votes.",
        "",
        "| source | kind | votes | raters | accuracy | error on fakes | error on reals | HYPE∞ | 95 % CI | Wilson (pooled) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for s in r["sources"]:
        if s["truth"] == "real":
            lines.append(
                f"| {s['source']} | real | {s['votes']} | {s['raters']} | {_fmt(s['accuracy'])} | – | "
                f"{_fmt(s['error_on_reals'])} | – | – | {_ci(s['error_on_reals_wilson'])} |"
            )
        else:
            lines.append(
                f"| {s['source']} | generated | {s['votes']} | {s['raters']} | {_fmt(s['accuracy'])} | "
                f"{_fmt(s['error_on_fakes'])} | {_fmt(s['error_on_reals'])} | {_fmt(s['hype'])} | "
                f"{_ci(s['hype_ci'])} | {_ci(s['pooled_error_wilson'])} |"
            )
    lines += [
        "",
        "Accuracy is the share of right answers on: the real images (the real row); that generator's "
        "images and the real images together (a generated row).",
    ]
    if r["rank_correlations"]:
        lines += [
            "",
            "Rank correlation of HYPE∞ with the generators' scores (expected sign: + for IS, − for FID/KID):",
            "",
            "| score | generators | Spearman ρ | Kendall τ | expected sign |",
            "|---|---:|---:|---:|---:|",
        ]
        for c in r["rank_correlations"]:
            lines.append(
                f"| {c['score']} | {c['n']} | {c['spearman']:.3f} | {c['kendall']:.3f} | "
                f"{'+' if c['expected_sign'] > 0 else '−'} |"
            )
    if r.get("staircase"):
        st = r["staircase"]
        lines += [
            "",
            f"Exposure threshold (staircase, median over {st['sessions']} sessions): "
            f"{_fmt(st['threshold_ms_median'], pct=False)} ms.",
        ]
    if r["most_convincing_fakes"]:
        lines += [
            "",
            "Most convincing fakes (share of their votes that said real): "
            + ", ".join(
                f"{d['image_id']} ({d['source']}, {_fmt(d['judged_real_rate'])} of {d['votes']})"
                for d in r["most_convincing_fakes"][:5]
            ),
        ]
    return "\n".join(lines) + "\n"
