"""Committed results of a table's runs, so that a table can be completed over several sittings.

Run folders hold checkpoints and may not outlive the machine that trained them (a 3-hour session, a
cluster's scratch disk). ``ganworks reproduce TABLE --results DIR`` copies what the report needs of
every run that ended (finished, or stopped by a non-finite loss: a divergence is a result too) into
``DIR/runs/<row>/seed<N>.json`` (its evaluation rows, status and settings, a few KB) and
``DIR/runs/<row>/seed<N>-samples.png`` (its last sample grid). ``--report --results DIR`` then
rebuilds the report from those files plus whichever run folders are still present (a run folder
wins over its copy). Commit DIR; never the run folders.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from .runner import read_metrics, read_status
from .tables import RunSpec

FORMAT = "ganworks-run-result-v1"


def result_path(results_dir: Path, spec: RunSpec) -> Path:
    return Path(results_dir) / "runs" / spec.row.id / f"seed{spec.seed}.json"


def ended_by_divergence(status: dict) -> bool:
    """A run that stopped because a loss or its state became non-finite: ``ganworks train``'s one
    error line (``... became nan at iteration N ...`` / ``... became non-finite ...``), kept by the runner."""
    text = str(status.get("error", "")).lower()
    return not status.get("finished") and any(
        w in text for w in ("became nan", "became inf", "became -inf", "non-finite")
    )


def export_run(spec: RunSpec, results_dir: Path) -> Path | None:
    """Copy an ended run's result into ``results_dir`` (None when it has not ended yet)."""
    status = read_status(spec.run_dir) or {}
    if not (status.get("finished") or ended_by_divergence(status)):
        return None
    rows = read_metrics(spec.run_dir)
    path = result_path(results_dir, spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = None
    last = next((r["samples"] for r in reversed(rows) if r.get("samples")), None)
    if last and (spec.run_dir / last).is_file():
        samples = path.with_name(f"seed{spec.seed}-samples.png")
        shutil.copyfile(spec.run_dir / last, samples)
    try:
        config = json.loads((spec.run_dir / "config.json").read_text())
    except (OSError, ValueError):
        config = None
    data = {
        "format": FORMAT,
        "table": spec.table.name,
        "row": spec.row.id,
        "seed": spec.seed,
        "preset": spec.row.preset,
        "overrides": spec.overrides,
        "status": status,
        "device": (config or {}).get("train", {}).get("device"),
        "metrics": [{k: v for k, v in r.items() if k != "samples"} for r in rows],
        "samples": samples.name if samples else None,
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)
    return path


def read_result(results_dir: Path | None, spec: RunSpec) -> dict | None:
    """The committed result of ``spec`` (with ``samples`` as a full path), or None."""
    if results_dir is None:
        return None
    path = result_path(results_dir, spec)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if data.get("format") != FORMAT:
        return None
    if data.get("samples"):
        data["samples"] = str(path.with_name(data["samples"]))
    return data
