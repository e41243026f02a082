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
* ``<row>-samples.png``: the last sample grid of the row's lowest finished seed.
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
import time
from pathlib import Path

from .runner import read_status
from .tables import RunSpec, Table


def read_metrics(run_dir: Path) -> list[dict]:
    """The run's evaluation rows in iteration order, one per iteration (the last written wins)."""
    rows: dict[int, dict] = {}
    try:
        lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line cut by a kill
        rows[row.get("iteration", 0)] = row
    return [rows[k] for k in sorted(rows)]


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
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores{gpu}; "
            f"torch {torch.__version__}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")


def collect(table: Table, specs: list[RunSpec]) -> dict:
    """Per row: every seed's final metrics, curves and epochs; mean ± std over the seeds that have one."""
    out = {"table": table.name, "id": table.id, "title": table.title, "paper": table.paper, "notes": table.notes,
           "metrics": table.metrics, "rows": [], "machine": _machine()}
    caps_seen = []
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
            if status.get("caps_record") and status["caps_record"] not in caps_seen:
                caps_seen.append(status["caps_record"])
            last = rows[-1] if rows else {}
            seeds.append({
                "seed": s.seed, "run_dir": str(s.run_dir), "finished": bool(status.get("finished")),
                "epochs": last.get("epoch"), "iteration": last.get("iteration"),
                "final": {m: last.get(m) for m in table.metrics},
                "curve": {m: [[r.get("epoch"), r[m]] for r in rows if m in r] for m in table.metrics},
                "samples": str(s.run_dir / last["samples"]) if last.get("samples") else None,
            })
        summary = {}
        for m in table.metrics:
            vals = [x["final"][m] for x in seeds if x["final"].get(m) is not None]
            summary[m] = {"mean": statistics.fmean(vals) if vals else None,
                          "std": statistics.stdev(vals) if len(vals) > 1 else (0.0 if vals else None),
                          "n": len(vals), "published": row.published.get(m), "published_std": row.published_std.get(m),
                          "common": at_common_epoch([x["curve"][m] for x in seeds if x["curve"][m]])}
        epochs = [x["epochs"] for x in seeds if x["epochs"] is not None]
        out["rows"].append({"id": row.id, "label": row.label, "preset": row.preset, "seeds_asked": row.seeds,
                            "summary": summary, "epochs_min": min(epochs) if epochs else None,
                            "epochs_max": max(epochs) if epochs else None,
                            "finished": sum(x["finished"] for x in seeds), "seeds": seeds})
    out["caps"] = caps_seen
    return out


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
    lines = [f"# {data['title']}", "", f"Paper: {data['paper']}." if data["paper"] else "",
             f"Table `{data['table']}`, produced by `ganworks reproduce {data['table']} --report`. "
             "Ours: the last evaluation of each run, mean ± sample std over the seeds that have one.", "",
             f"Report written on: {data['machine']}.", ""]
    if data["notes"]:
        lines += [data["notes"], ""]
    caps = [c for c in data["caps"] if any(v is not None for v in c.values())]
    if caps:
        lines += ["**Caps**: the runs were trained under " + "; ".join(
            ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in c.items() if v is not None) for c in caps)
            + " (not the full recipe where these stop a run early).", ""]
    else:
        lines += ["Caps: none (each run's full recipe).", ""]
    lines += ["| row | metric | ours (mean ± std) | seeds (of asked) | finished | epochs trained | paper |",
              "|---|---|---|---|---|---|---|"]
    for r in data["rows"]:
        ep = "–" if r["epochs_min"] is None else (
            f"{r['epochs_min']:.1f}" if abs(r["epochs_min"] - r["epochs_max"]) < 0.05 else f"{r['epochs_min']:.1f}–{r['epochs_max']:.1f}")
        for m, s in r["summary"].items():
            ours = ("–" if s["mean"] is None else f"{_fmt(s['mean'], m)} ± {_fmt(s['std'], m)}" if s["n"] > 1
                    else f"{_fmt(s['mean'], m)} (one seed)")
            c = s.get("common")
            if c:
                ours += (f" (seeds at different epochs; at epoch {c['epoch']:.1f}, the last all {c['n']} reached: "
                         f"{_fmt(c['mean'], m)} ± {_fmt(c['std'], m)})")
            paper = "–" if s["published"] is None else (
                _fmt(s["published"], m) + (f" ± {_fmt(s['published_std'], m)}" if s["published_std"] is not None else ""))
            lines.append(f"| {r['label']} | {m} | {ours} | {s['n']} of {len(r['seeds_asked'])} | "
                         f"{r['finished']} | {ep} | {paper} |")
    lines += ["", "Per seed:", "", "| row | seed | " + " | ".join(data["metrics"]) + " | epochs | finished | run |",
              "|---|---|" + "---|" * len(data["metrics"]) + "---|---|---|"]
    for r in data["rows"]:
        for x in r["seeds"]:
            vals = " | ".join(_fmt(x["final"].get(m), m) for m in data["metrics"])
            ep = "–" if x["epochs"] is None else f"{x['epochs']:.1f}"
            lines.append(f"| {r['id']} | {x['seed']} | {vals} | {ep} | {'yes' if x['finished'] else 'no'} | `{x['run_dir']}` |")
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
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="." if len(pts) < 30 else None,
                        label=f"seed {x['seed']}")
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


def write_report(table: Table, specs: list[RunSpec], report_dir: Path) -> dict:
    """Write report.md, report.json, a plot and a sample grid per row into ``report_dir``."""
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    data = collect(table, specs)
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
    figures = [f"![{r['id']}]({r['plot']})" for r in data["rows"] if r["plot"]]
    grids = [f"![{r['id']} samples]({r['samples']})" for r in data["rows"] if r["samples"]]
    if figures:
        md += "\n## Over training\n\n" + "\n".join(figures) + "\n"
    if grids:
        md += "\n## Samples (last grid of one seed per row)\n\n" + "\n".join(grids) + "\n"
    (report_dir / "report.md").write_text(md)
    (report_dir / "report.json").write_text(json.dumps(data, indent=2) + "\n")
    return data
