"""The report of a table: ours (mean ± std over seeds, epochs actually trained) beside the paper's.

Reads each run directory's ``metrics.jsonl`` (the last evaluation is the run's value; repeated
iterations after a resume count once, the later row winning) and ``status.json``, and writes into
the report folder:

* ``report.md``: one line per row and metric — ours, n seeds (of those asked), epochs trained,
  the published value — and the caps the runs were trained under; where a row's seeds stopped at
  different epochs, also the mean ± std at the last epoch all of them reached;
* ``report.json``: the same with every seed's value and curve;
* ``<row>.png``: each metric over training epochs, one line per seed, the published value as a
  horizontal line (matplotlib);
* ``<row>-samples.png``: the last sample grid of the row's lowest finished seed;
* ``chart.png`` where the rows name a ``group`` and a ``series``: the final metric as grouped bars
  (x: groups, one bar per series; a diverged or collapsed run marked on its bar), in the form of
  SN-GAN's Figure 1.

A table with ``[outcomes]`` classifies each run as ``ok``, ``diverged`` or ``collapsed``
(:func:`outcome`), and one with ``[claim]`` states whether the runs agree with it
(:func:`check_claim`). Runs that no longer have a run folder are read from their committed copies
(``--results DIR``, ``ganworks/reproduce/results.py``). Scores from different feature extractors
(``quality_weights_sha256`` in the runs' rows) are never put in one report.
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
import time
from pathlib import Path

from ..errors import ConfigError
from .results import ended_by_divergence, read_result
from .runner import read_metrics, read_status
from .tables import RunSpec, Table


def _fmt(v: float | None, metric: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if "errors" in metric:
        return f"{v:.1f}" if v != int(v) else f"{int(v)}"
    if abs(v) < 1:
        return f"{v:.4f}"
    return f"{v:.2f}"


def _machine() -> str:
    """Where the report was written (with the local launcher, where the runs ran)."""
    import os
    import platform

    import torch

    gpu = f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores{gpu}; "
        f"torch {torch.__version__}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )


def metric_value(row: dict, metric: str):
    """``row[metric]``, or the one key ending in ``-<metric>`` (scores of a classifier extractor are
    logged as ``<dataset>-classifier-FID`` etc.)."""
    if metric in row:
        return row[metric]
    keys = [k for k in row if k.endswith(f"-{metric}")]
    return row[keys[0]] if len(keys) == 1 else None


def outcome(seed: dict, rules: dict) -> str:
    """``diverged``: stopped by a non-finite loss, or its final ``rules["metric"]`` is above
    ``diverged_factor`` times the best value of its own curve (lower is better: it got much worse);
    ``collapsed``: its samples' effective number of classes (``sample_classes``) at the end is below
    ``collapsed_classes``; else ``ok``. A run without a final value is ``missing``."""
    if seed.get("diverged"):
        return "diverged"
    curve = [v for _, v in seed["curve"].get(rules["metric"], []) if v is not None]
    final = seed["final"].get(rules["metric"])
    if final is None or not curve:
        return "missing"
    if not math.isfinite(final) or final > rules.get("diverged_factor", 2.0) * min(curve):
        return "diverged"
    classes = seed.get("sample_classes")
    if classes is not None and classes < rules.get("collapsed_classes", 3.0):
        return "collapsed"
    return "ok"


def collect(table: Table, specs: list[RunSpec], results_dir: Path | None = None) -> dict:
    """Per row: every seed's final metrics, curves and epochs; mean ± std over the seeds that have one.
    A run without a run folder is read from its committed copy under ``results_dir``."""
    out = {
        "table": table.name,
        "id": table.id,
        "title": table.title,
        "paper": table.paper,
        "notes": table.notes,
        "metrics": table.metrics,
        "rows": [],
        "machine": _machine(),
        "outcomes": table.outcomes,
        "claim": table.claim,
    }
    caps_seen = []
    extractors: dict[str, list[str]] = {}
    by_row: dict[str, list[RunSpec]] = {}
    for s in specs:
        by_row.setdefault(s.row.id, []).append(s)
    for row in table.rows:
        if row.id not in by_row:
            continue
        seeds = []
        for s in by_row[row.id]:
            rows = read_metrics(s.run_dir)
            status = read_status(s.run_dir) or {}
            source = str(s.run_dir)
            samples = next((str(s.run_dir / r["samples"]) for r in reversed(rows) if r.get("samples")), None)
            if not rows:
                committed = read_result(results_dir, s)
                if committed is None:
                    if status.get("error"):  # diverged before its first evaluation
                        rows = []
                    else:
                        continue
                else:
                    rows, status, samples = committed["metrics"], committed["status"], committed["samples"]
                    source = f"{results_dir}/runs/{s.row.id}/seed{s.seed}.json"
            if status.get("caps_record") and status["caps_record"] not in caps_seen:
                caps_seen.append(status["caps_record"])
            last = rows[-1] if rows else {}
            sha = next((r["quality_weights_sha256"] for r in reversed(rows) if r.get("quality_weights_sha256")), None)
            if sha:
                extractors.setdefault(sha, []).append(f"{row.id}/seed{s.seed}")
            seeds.append(
                {
                    "seed": s.seed,
                    "run_dir": source,
                    "finished": bool(status.get("finished")),
                    "diverged": ended_by_divergence(status),
                    "error": status.get("error"),
                    "epochs": last.get("epoch"),
                    "iteration": last.get("iteration"),
                    "wall_time_s": last.get("wall_time_s"),
                    "sample_classes": last.get("sample_classes"),
                    "extractor_sha256": sha,
                    "final": {m: metric_value(last, m) for m in table.metrics},
                    "curve": {
                        m: [[r.get("epoch"), metric_value(r, m)] for r in rows if metric_value(r, m) is not None]
                        for m in table.metrics
                    },
                    "samples": samples,
                }
            )
            if table.outcomes:
                seeds[-1]["outcome"] = outcome(seeds[-1], table.outcomes)
        if not seeds:
            continue
        summary = {}
        for m in table.metrics:
            vals = [x["final"][m] for x in seeds if x["final"].get(m) is not None]
            summary[m] = {
                "mean": statistics.fmean(vals) if vals else None,
                "std": statistics.stdev(vals) if len(vals) > 1 else (0.0 if vals else None),
                "n": len(vals),
                "published": row.published.get(m),
                "published_std": row.published_std.get(m),
                "common": at_common_epoch([x["curve"][m] for x in seeds if x["curve"][m]]),
            }
        epochs = [x["epochs"] for x in seeds if x["epochs"] is not None]
        out["rows"].append(
            {
                "id": row.id,
                "label": row.label,
                "preset": row.preset,
                "seeds_asked": row.seeds,
                "summary": summary,
                "epochs_min": min(epochs) if epochs else None,
                "epochs_max": max(epochs) if epochs else None,
                "finished": sum(x["finished"] for x in seeds),
                "seeds": seeds,
                "group": row.group,
                "series": row.series,
            }
        )
    if len(extractors) > 1:
        parts = "; ".join(
            f"{sha[:12]}: {', '.join(runs[:3])}{' ...' if len(runs) > 3 else ''}" for sha, runs in extractors.items()
        )
        raise ConfigError(
            f"the runs of table {table.name!r} were scored with {len(extractors)} different feature "
            f"extractors ({parts}): their numbers cannot share a report; rerun the odd runs with the "
            f"same eval.quality_classifier / weights, or report them separately with --rows"
        )
    out["extractor_sha256"] = next(iter(extractors), None)
    out["caps"] = caps_seen
    if table.claim:
        out["verdict"] = check_claim(out, table.claim, (table.outcomes or {}).get("metric", table.metrics[0]))
    return out


def check_claim(data: dict, claim: dict, metric: str) -> dict:
    """Whether the runs agree with a robustness claim (SN-GAN's Figure 1): the claimed ``series``
    (a) neither diverges nor collapses in any group and its mean final ``metric`` (lower is better)
    stays within ``robust_factor`` of its best group, and (b) in the ``aggressive`` groups beats each
    of the ``baselines`` (lower metric, or the baseline diverged/collapsed) in at least ``need`` of
    them (default: all but one). ``agrees`` when both hold, ``partly`` when one does, ``disagrees``
    when neither; ``incomplete`` while a needed run is missing."""
    series, baselines = claim["series"], list(claim.get("baselines", []))
    by = {(r["group"], r["series"]): r for r in data["rows"] if r["group"] and r["series"]}
    groups = sorted({g for g, _ in by})

    def value(g, s):
        r = by.get((g, s))
        if r is None or not r["seeds"]:
            return None, None
        outs = [x.get("outcome", "ok") for x in r["seeds"]]
        bad = next((o for o in ("diverged", "collapsed") if outs.count(o) * 2 >= len(outs)), None)
        return r["summary"][metric]["mean"], bad

    aggressive = [g for g in claim.get("aggressive", []) if g in groups]
    missing = [f"{g}/{s}" for g in groups for s in [series] + baselines if (g, s) not in by]
    if missing or not groups:
        return {
            "verdict": "incomplete",
            "missing": missing,
            "sentence": f"incomplete: no result yet for {', '.join(missing) or 'any row'}",
        }
    sn = {g: value(g, series) for g in groups}
    ok = [v for v, bad in sn.values() if v is not None and not bad]
    robust = len(ok) == len(groups) and max(ok) <= claim.get("robust_factor", 1.5) * min(ok)
    need = claim.get("need", max(1, len(aggressive) - 1))
    wins = {}
    for b in baselines:
        n = 0
        for g in aggressive:
            v, bad = sn[g]
            bv, bbad = value(g, b)
            n += (not bad) and (bool(bbad) or bv is None or (v is not None and v < bv))
        wins[b] = n
    better = all(n >= need for n in wins.values())
    verdict = "agrees" if robust and better else "partly" if robust or better else "disagrees"
    spread = f"{max(ok) / min(ok):.2f}x" if ok and min(ok) > 0 else "n/a"
    sentence = (
        f"{verdict}: {series} {'is' if robust else 'is not'} robust across settings {', '.join(groups)} "
        f"(worst/best mean {metric} {spread} over the settings it kept, limit {claim.get('robust_factor', 1.5)}x; "
        f"settings where half or more of its seeds diverged or collapsed: "
        f"{', '.join(g for g, (_, bad) in sn.items() if bad) or 'none'}), and in the aggressive settings "
        f"{', '.join(aggressive)} it beats "
        + ", ".join(f"{b} in {n} of {len(aggressive)}" for b, n in wins.items())
        + f" (needed: {need} each)"
    )
    return {"verdict": verdict, "robust": robust, "spread": spread, "wins": wins, "need": need, "sentence": sentence}


def at_common_epoch(curves: list[list[list[float]]]) -> dict | None:
    """Where seeds stopped at different epochs, their mean is of different things: the mean ± std at
    the last epoch every seed reached (each seed's last evaluation at or before it), else None."""
    if len(curves) < 2:
        return None
    ends = [c[-1][0] for c in curves]
    epoch = min(ends)
    if max(ends) - epoch < 0.05:
        return None
    vals = [[v for e, v in c if e <= epoch + 1e-9][-1] for c in curves if c[0][0] <= epoch + 1e-9]
    if len(vals) < 2:
        return None
    return {"epoch": epoch, "mean": statistics.fmean(vals), "std": statistics.stdev(vals), "n": len(vals)}


def markdown(data: dict) -> str:
    lines = [
        f"# {data['title']}",
        "",
        f"Paper: {data['paper']}." if data["paper"] else "",
        f"Table `{data['table']}`, produced by `ganworks reproduce {data['table']} --report`. "
        "Ours: the last evaluation of each run, mean ± sample std over the seeds that have one.",
        "",
        f"Report written on: {data['machine']}.",
        "",
    ]
    if data["notes"]:
        lines += [data["notes"], ""]
    if data.get("extractor_sha256"):
        lines += [f"Every score from one feature extractor: weights sha256 `{data['extractor_sha256']}`.", ""]
    if data.get("verdict"):
        lines += [f"**Verdict** (the table's [claim]): {data['verdict']['sentence']}.", ""]
    if data.get("outcomes"):
        o = data["outcomes"]
        seeds = [x for r in data["rows"] for x in r["seeds"]]
        counts = {k: sum(x.get("outcome") == k for x in seeds) for k in ("ok", "diverged", "collapsed", "missing")}
        lines += [
            f"Outcomes of {len(seeds)} runs: "
            + ", ".join(f"{v} {k}" for k, v in counts.items() if v)
            + f" (diverged: stopped by a non-finite loss, or final {o['metric']} above "
            f"{o.get('diverged_factor', 2.0)}x the run's best; collapsed: fewer than "
            f"{o.get('collapsed_classes', 3.0)} effective classes among the samples at the end).",
            "",
        ]
        by_series: dict[str, list[str]] = {}
        for r in data["rows"]:
            for x in r["seeds"]:
                by_series.setdefault(r.get("series") or r["id"], []).append(x.get("outcome"))
        if any(r.get("series") for r in data["rows"]):
            lines += ["| series | runs | diverged | collapsed |", "|---|---|---|---|"]
            lines += [
                f"| {k} | {len(v)} | {v.count('diverged')} ({v.count('diverged') / len(v):.0%}) | "
                f"{v.count('collapsed')} ({v.count('collapsed') / len(v):.0%}) |"
                for k, v in by_series.items()
            ]
            lines += [""]
    caps = [c for c in data["caps"] if any(v is not None for v in c.values())]
    if caps:
        lines += [
            "**Caps**: the runs were trained under "
            + "; ".join(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in c.items() if v is not None) for c in caps)
            + " (not the full recipe where these stop a run early).",
            "",
        ]
    else:
        lines += ["Caps: none (each run's full recipe).", ""]
    lines += [
        "| row | metric | ours (mean ± std) | seeds (of asked) | finished | epochs trained | paper |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        ep = (
            "–"
            if r["epochs_min"] is None
            else (
                f"{r['epochs_min']:.1f}"
                if abs(r["epochs_min"] - r["epochs_max"]) < 0.05
                else f"{r['epochs_min']:.1f}–{r['epochs_max']:.1f}"
            )
        )
        for m, s in r["summary"].items():
            ours = (
                "–"
                if s["mean"] is None
                else f"{_fmt(s['mean'], m)} ± {_fmt(s['std'], m)}"
                if s["n"] > 1
                else f"{_fmt(s['mean'], m)} (one seed)"
            )
            c = s.get("common")
            if c:
                ours += (
                    f" (seeds at different epochs; at epoch {c['epoch']:.1f}, the last all {c['n']} reached: "
                    f"{_fmt(c['mean'], m)} ± {_fmt(c['std'], m)})"
                )
            paper = (
                "–"
                if s["published"] is None
                else (
                    _fmt(s["published"], m)
                    + (f" ± {_fmt(s['published_std'], m)}" if s["published_std"] is not None else "")
                )
            )
            lines.append(
                f"| {r['label']} | {m} | {ours} | {s['n']} of {len(r['seeds_asked'])} | "
                f"{r['finished']} | {ep} | {paper} |"
            )
    extra = data.get("outcomes") and True
    lines += [
        "",
        "Per seed:",
        "",
        "| row | seed | "
        + " | ".join(data["metrics"])
        + " | epochs | finished | "
        + ("outcome | sample classes | minutes | " if extra else "")
        + "run |",
        "|---|---|" + "---|" * len(data["metrics"]) + "---|---|" + ("---|---|---|" if extra else "") + "---|",
    ]
    for r in data["rows"]:
        for x in r["seeds"]:
            vals = " | ".join(_fmt(x["final"].get(m), m) for m in data["metrics"])
            ep = "–" if x["epochs"] is None else f"{x['epochs']:.1f}"
            more = ""
            if extra:
                mins = "–" if x.get("wall_time_s") is None else f"{x['wall_time_s'] / 60:.1f}"
                cls = "–" if x.get("sample_classes") is None else f"{x['sample_classes']:.1f}"
                more = f"{x.get('outcome', '–')} | {cls} | {mins} | "
            lines.append(
                f"| {r['id']} | {x['seed']} | {vals} | {ep} | {'yes' if x['finished'] else 'no'} | {more}"
                f"`{x['run_dir']}` |"
            )
    return "\n".join(lines) + "\n"


def plot_row(row: dict, metrics: list[str], path: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drawn = [m for m in metrics if any(x["curve"][m] for x in row["seeds"])]
    if not drawn:
        return None
    fig, axes = plt.subplots(1, len(drawn), figsize=(5.5 * len(drawn), 3.8), squeeze=False)
    for ax, m in zip(axes[0], drawn):
        for x in row["seeds"]:
            pts = x["curve"][m]
            if pts:
                ax.plot(
                    [p[0] for p in pts],
                    [p[1] for p in pts],
                    marker="." if len(pts) < 30 else None,
                    label=f"seed {x['seed']}",
                )
        pub = row["summary"][m]["published"]
        if pub is not None:
            ax.axhline(pub, color="k", linestyle="--", label=f"paper {pub:g}")
            std = row["summary"][m]["published_std"]
            if std:
                ax.axhspan(pub - std, pub + std, color="k", alpha=0.08)
        values = [p[1] for x in row["seeds"] for p in x["curve"][m]] + ([pub] if pub is not None else [])
        if min(values) > 0 and max(values) / min(values) > 20:  # e.g. test errors: 2000 -> 90
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(m)
        ax.set_title(f"{row['label']}: {m}", fontsize=9)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_groups(data: dict, metric: str, path: Path) -> Path | None:
    """Grouped bars of each row's mean final ``metric``: x = the rows' groups, one bar per series
    (seeds as dots); a run that diverged or collapsed is marked with a letter above its bar."""
    rows = [r for r in data["rows"] if r.get("group") and r.get("series")]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({r["group"] for r in rows})
    series = list(dict.fromkeys(r["series"] for r in rows))
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(1.2 + 1.3 * len(groups) * max(1, len(series) / 3), 3.8))
    top = max(
        [v for r in rows for x in r["seeds"] for v in [x["final"].get(metric)] if v is not None and math.isfinite(v)]
        or [1.0]
    )
    for i, name in enumerate(series):
        xs, hs = [], []
        for j, g in enumerate(groups):
            r = next((r for r in rows if r["group"] == g and r["series"] == name), None)
            if r is None:
                continue
            x0 = j - 0.4 + width * (i + 0.5)
            mean = r["summary"][metric]["mean"]
            if mean is not None and math.isfinite(mean):
                xs.append(x0), hs.append(mean)
            for x in r["seeds"]:
                v = x["final"].get(metric)
                if v is not None and math.isfinite(v):
                    ax.plot([x0], [v], "k.", markersize=3)
                mark = {"diverged": "D", "collapsed": "C", "missing": "?"}.get(x.get("outcome", "ok"))
                if mark:
                    ax.text(
                        x0,
                        min(v, top) if v is not None and math.isfinite(v) else top,
                        mark,
                        ha="center",
                        va="bottom",
                        fontsize=8,
                        color="crimson",
                    )
        ax.bar(xs, hs, width=width * 0.95, label=name)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_xlabel("setting")
    ax.set_ylabel(metric + (" (lower is better)" if data.get("outcomes") else ""))
    ax.set_title(data["title"], fontsize=8)
    ax.legend(fontsize=7, ncol=len(series))
    ax.grid(axis="y", alpha=0.3)
    if data.get("outcomes"):
        ax.text(
            1.0, -0.16, "D: diverged, C: collapsed", transform=ax.transAxes, ha="right", fontsize=7, color="crimson"
        )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(table: Table, specs: list[RunSpec], report_dir: Path, results_dir: Path | None = None) -> dict:
    """Write report.md, report.json, a plot and a sample grid per row (and a grouped chart where the
    rows have groups) into ``report_dir``; runs without a run folder come from ``results_dir``."""
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    data = collect(table, specs, results_dir)
    for r in data["rows"]:
        r["plot"] = None
        p = plot_row(r, data["metrics"], report_dir / f"{r['id']}.png")
        if p:
            r["plot"] = p.name
        r["samples"] = None
        for x in sorted(r["seeds"], key=lambda x: (not x["finished"], x["seed"])):
            if x["samples"] and Path(x["samples"]).is_file():
                shutil.copyfile(x["samples"], report_dir / f"{r['id']}-samples.png")
                r["samples"] = f"{r['id']}-samples.png"
                break
    md = markdown(data)
    chart_metric = (table.outcomes or {}).get("metric", table.metrics[0])
    if plot_groups(data, chart_metric, report_dir / "chart.png"):
        data["chart"] = "chart.png"
        md += f"\n## {chart_metric} by group and series\n\n![chart](chart.png)\n"
    figures = [f"![{r['id']}]({r['plot']})" for r in data["rows"] if r["plot"]]
    grids = [f"![{r['id']} samples]({r['samples']})" for r in data["rows"] if r["samples"]]
    if figures:
        md += "\n## Over training\n\n" + "\n".join(figures) + "\n"
    if grids:
        md += "\n## Samples (last grid of one seed per row)\n\n" + "\n".join(grids) + "\n"
    (report_dir / "report.md").write_text(md)
    (report_dir / "report.json").write_text(json.dumps(data, indent=2) + "\n")
    return data
