"""Committed run results (--results), run outcomes (ok / diverged / collapsed), the grouped chart and
the claim verdict of an outcome table (SN-GAN Figure 1 in miniature), on hand-made run folders."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from ganworks.cli import main
from ganworks.errors import ConfigError
from ganworks.reproduce import load_table, plan
from ganworks.reproduce.report import check_claim, collect, outcome, write_report
from ganworks.reproduce.results import export_run, read_result

TABLE = """
id = "fig"
title = "toy figure"
metrics = ["FID"]
[outcomes]
metric = "FID"
diverged_factor = 2.0
collapsed_classes = 3.0
[claim]
series = "sn"
baselines = ["wn"]
robust_factor = 1.5
aggressive = ["D", "E"]
"""


def _table(tmp_path, groups=("A", "D", "E"), series=("sn", "wn")):
    text = TABLE + "".join(
        f'[[rows]]\nid = "{g}-{s}"\npreset = "sngan/cifar10-cnn-sn"\nseeds = [1]\ngroup = "{g}"\nseries = "{s}"\n'
        for g in groups
        for s in series
    )
    path = tmp_path / "fig.toml"
    path.write_text(text)
    return path


def _fake_run(spec, fids, classes=9.0, sha="a" * 64, error=None):
    """A run folder as `ganworks train` leaves it: metrics rows (classifier-prefixed FID), a grid, status."""
    d = spec.run_dir
    (d / "samples").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, f in enumerate(fids, 1):
        grid = f"samples/iter_{i * 100:07d}.png"
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(d / grid)
        rows.append(
            {
                "iteration": i * 100,
                "epoch": i / 10,
                "wall_time_s": 60.0 * i,
                "data-classifier-FID": f,
                "sample_classes": classes,
                "quality_weights_sha256": sha,
                "samples": grid,
            }
        )
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    status = {"finished": error is None, "returncode": 0 if error is None else 2}
    if error:
        status["error"] = error
    (d / "status.json").write_text(json.dumps(status))


def test_outcome_definitions():
    rules = {"metric": "FID", "diverged_factor": 2.0, "collapsed_classes": 3.0}

    def seed(curve, classes=9.0, diverged=False):
        return {
            "final": {"FID": curve[-1]},
            "curve": {"FID": [[i, v] for i, v in enumerate(curve)]},
            "sample_classes": classes,
            "diverged": diverged,
        }

    assert outcome(seed([90, 60, 50]), rules) == "ok"
    assert outcome(seed([90, 40, 85]), rules) == "diverged"  # over 2x its own best
    assert outcome(seed([90, 60, 50], diverged=True), rules) == "diverged"  # a non-finite stop
    assert outcome(seed([90, 60, 50], classes=1.4), rules) == "collapsed"
    assert outcome({"final": {"FID": None}, "curve": {"FID": []}}, rules) == "missing"


def test_results_survive_the_run_folders_and_rebuild_the_same_report(tmp_path, capsys):
    table = load_table(str(_table(tmp_path)))
    specs = plan(table, tmp_path / "runs")
    finals = {"A-sn": 50, "D-sn": 55, "E-sn": 60, "A-wn": 45, "D-wn": 120, "E-wn": 70}
    for s in specs:
        _fake_run(s, [100, finals[s.row.id]], classes=1.5 if s.row.id == "E-wn" else 9.0)
    results = tmp_path / "committed"
    for s in specs:
        assert export_run(s, results) is not None
    before = collect(table, specs, results)
    shutil.rmtree(tmp_path / "runs")  # a later sitting: the run folders are gone
    assert read_result(results, specs[0])["metrics"][-1]["data-classifier-FID"] == finals[specs[0].row.id]
    after = collect(table, specs, results)
    assert [r["summary"]["FID"]["mean"] for r in after["rows"]] == [r["summary"]["FID"]["mean"] for r in before["rows"]]
    assert {r["id"]: r["seeds"][0]["outcome"] for r in after["rows"]}["E-wn"] == "collapsed"
    # through the command line: the report is written beside the committed results, with the chart
    code = main(
        ["reproduce", str(_table(tmp_path)), "--out", str(tmp_path / "runs"), "--report", "--results", str(results)]
    )
    assert code == 0
    md = (results / "report.md").read_text()
    assert "agrees" in md and (results / "chart.png").is_file()
    assert (results / "runs" / "A-sn" / "seed1-samples.png").is_file()
    assert f"`{'a' * 64}`" in md


def test_a_run_stopped_by_a_non_finite_loss_is_a_result(tmp_path):
    table = load_table(str(_table(tmp_path)))
    spec = plan(table, tmp_path / "runs", rows=["D-wn"])[0]
    _fake_run(spec, [100], error="error: loss_d became nan at iteration 140 (D step); last.pt is intact")
    assert export_run(spec, tmp_path / "committed") is not None
    seed = collect(table, [spec], tmp_path / "committed")["rows"][0]["seeds"][0]
    assert seed["outcome"] == "diverged" and not seed["finished"]


def test_an_unfinished_run_is_not_exported(tmp_path):
    table = load_table(str(_table(tmp_path)))
    spec = plan(table, tmp_path / "runs", rows=["A-sn"])[0]
    _fake_run(spec, [100])
    (spec.run_dir / "status.json").write_text(json.dumps({"finished": False, "returncode": 130}))
    assert export_run(spec, tmp_path / "committed") is None


def test_scores_of_two_feature_extractors_are_refused_in_one_report(tmp_path):
    table = load_table(str(_table(tmp_path)))
    specs = plan(table, tmp_path / "runs")
    for i, s in enumerate(specs):
        _fake_run(s, [100, 50], sha="b" * 64 if i == 3 else "a" * 64)
    with pytest.raises(ConfigError, match="2 different feature extractors"):
        write_report(table, specs, tmp_path / "report")


@pytest.mark.parametrize(
    "finals, verdict",
    [
        ({"A-sn": 50, "D-sn": 55, "E-sn": 60, "A-wn": 45, "D-wn": 120, "E-wn": 70}, "agrees"),
        ({"A-sn": 50, "D-sn": 95, "E-sn": 60, "A-wn": 45, "D-wn": 120, "E-wn": 70}, "partly"),  # SN not robust
        ({"A-sn": 50, "D-sn": 95, "E-sn": 90, "A-wn": 45, "D-wn": 80, "E-wn": 70}, "disagrees"),
    ],
)
def test_claim_verdict(tmp_path, finals, verdict):
    table = load_table(str(_table(tmp_path)))
    specs = plan(table, tmp_path / "runs")
    for s in specs:
        _fake_run(s, [100, finals[s.row.id]])
    data = collect(table, specs)
    assert data["verdict"]["verdict"] == verdict
    assert check_claim(data, table.claim, "FID")["verdict"] == verdict


def test_claim_is_incomplete_while_a_needed_row_is_missing(tmp_path):
    table = load_table(str(_table(tmp_path)))
    specs = [s for s in plan(table, tmp_path / "runs") if s.row.id != "E-wn"]
    for s in specs:
        _fake_run(s, [100, 50])
    v = collect(table, specs)["verdict"]
    assert v["verdict"] == "incomplete" and v["missing"] == ["E/wn"]
