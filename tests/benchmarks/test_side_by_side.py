"""The collection and verdict logic of benchmarks/reference_equivalence/side_by_side.py, on synthetic logs."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "reference_equivalence"))
import side_by_side as S  # noqa: E402


def write_logs(work: Path, seeds, epochs, ref_raw, ours_raw, ref_avg, ours_avg, ours_resumed_at=None):
    """Reference JSON lines and ganworks metrics.jsonl rows as the two sides write them."""
    for i, s in enumerate(seeds):
        ref = work / "reference" / f"seed{s}.jsonl"
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.write_text(
            "".join(
                json.dumps(
                    {
                        "epoch": e + 1,
                        "seconds": 60.0 + e,
                        "test_errors_raw": ref_raw[i][e],
                        "test_errors_avg_corrected": ref_avg[i][e],
                        "test_errors_avg": 5000,
                    }
                )
                + "\n"
                for e in range(epochs)
            )
        )
        run = work / "ganworks" / f"seed{s}"
        run.mkdir(parents=True, exist_ok=True)
        rows, wall = [], 0.0
        for e in range(epochs):
            wall = 40.0 if ours_resumed_at == e else wall + 40.0  # wall_time_s restarts when a run resumes
            rows.append(
                {
                    "iteration": 600 * (e + 1),
                    "epoch": float(e + 1),
                    "wall_time_s": wall,
                    "test_errors": ours_raw[i][e],
                    "test_errors_ema": ours_avg[i][e],
                }
            )
            rows.append(
                {"iteration": 600 * (e + 1), "epoch": float(e + 1), "loss_d": 0.1}
            )  # rows without test errors are skipped
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_collect_reads_both_sides_and_seconds_per_epoch(tmp_path):
    raw = [[300, 200], [310, 220], [290, 180]]
    write_logs(tmp_path, [1, 2, 3], 2, raw, [[1, 2]] * 3, [[3, 4]] * 3, [[5, 6]] * 3, ours_resumed_at=1)
    series, secs = S.collect(tmp_path, [1, 2, 3], 2)
    np.testing.assert_array_equal(series["ref_raw"], raw)
    np.testing.assert_array_equal(series["ours_avg"][:, 1], [6, 6, 6])
    assert secs["ref"] == [60.0, 61.0] * 3
    assert secs["ours"] == []  # epoch 2 restarted the clock: no duration is inferred across the resume


def test_verdict_agrees_within_spread_and_fails_when_a_side_is_shifted(tmp_path):
    rng = np.random.RandomState(0)
    base = 120 + 10 * rng.randn(2, 3, 1)
    series = {"ref_raw": base[0], "ours_raw": base[1], "ref_avg": base[0] - 20, "ours_avg": base[1] - 20}
    v = {r["quantity"]: r for r in S.verdicts(series, 1)}
    assert v["raw D"]["verdict"] == "agree" and v["averaged D"]["verdict"] == "agree"
    pooled = np.sqrt((np.std(base[0], ddof=1) ** 2 + np.std(base[1], ddof=1) ** 2) / 2)
    assert v["raw D"]["pooled_std"] == pytest.approx(pooled)
    shifted = dict(series, ours_avg=series["ours_avg"] + 3 * pooled + 1)  # a real difference must show up
    v = {r["quantity"]: r for r in S.verdicts(shifted, 1)}
    assert v["raw D"]["verdict"] == "agree" and v["averaged D"]["verdict"] == "DIFFER"


def test_verdict_needs_two_seeds_a_side():
    series = {k: np.array([[100.0], [np.nan]]) for k in ("ref_raw", "ours_raw", "ref_avg", "ours_avg")}
    assert all(r["verdict"] == "not enough seeds" for r in S.verdicts(series, 1))


def test_report_writes_table_and_plot(tmp_path, monkeypatch):
    monkeypatch.setattr(S, "RESULTS", tmp_path / "results")
    work = tmp_path / "work"
    write_logs(
        work,
        [1, 2],
        3,
        [[300, 200, 150], [320, 210, 140]],
        [[310, 190, 145], [305, 205, 150]],
        [[250, 150, 100], [260, 160, 110]],
        [[240, 155, 105], [255, 150, 100]],
    )
    (work / "settings.json").write_text(json.dumps({"seeds": [1, 2], "epochs": 3}))
    assert S.main(["report", "--work", str(work)]) == 0
    md = (tmp_path / "results" / "side_by_side_mnist.md").read_text()
    assert "| raw D test errors at epoch 3 | 145.0 ± 7.1 | 147.5 ± 3.5 |" in md
    assert (tmp_path / "results" / "side_by_side_mnist.png").stat().st_size > 1000
    res = json.loads((tmp_path / "results" / "side_by_side_mnist.json").read_text())
    assert res["seconds_per_epoch"]["ours"]["mean"] == 40.0 and res["compared_at_epoch"] == 3


def test_report_takes_seeds_whose_logs_are_gone_from_the_report_it_replaces(tmp_path, monkeypatch):
    monkeypatch.setattr(S, "RESULTS", tmp_path / "results")
    first = tmp_path / "first"
    write_logs(
        first,
        [1, 2],
        3,
        [[300, 200, 150], [320, 210, 140]],
        [[310, 190, 145], [305, 205, 150]],
        [[250, 150, 100], [260, 160, 110]],
        [[240, 155, 105], [255, 150, 100]],
    )
    (first / "settings.json").write_text(json.dumps({"seeds": [1, 2], "epochs": 3}))
    assert S.main(["report", "--work", str(first)]) == 0
    later = tmp_path / "later"  # seed 3 run in another session; seeds 1 and 2's folders are gone
    write_logs(later, [3], 3, [[330, 220, 160]], [[300, 200, 155]], [[270, 170, 120]], [[250, 160, 110]])
    (later / "settings.json").write_text(json.dumps({"seeds": [3], "epochs": 3}))
    assert S.main(["report", "--work", str(later), "--seeds", "1", "2", "3"]) == 0
    res = json.loads((tmp_path / "results" / "side_by_side_mnist.json").read_text())
    assert res["seeds"] == [1, 2, 3] and res["seeds_from_earlier_report"]["seeds"] == [1, 2]
    assert res["per_epoch"]["ref_raw"]["per_seed"] == [[300, 200, 150], [320, 210, 140], [330, 220, 160]]
    raw = next(v for v in res["verdicts"] if v["quantity"] == "raw D")
    assert raw["n_ref"] == raw["n_ours"] == 3 and raw["ref_mean"] == 150.0
    md = (tmp_path / "results" / "side_by_side_mnist.md").read_text()
    assert "seeds [1, 2]: taken from the report written" in md


def test_other_label_counts_one_seed_a_side(tmp_path, monkeypatch):
    """--labels 20: the reference gets --count 2, ganworks the 20-label preset; with one seed a side the
    report compares at the last epoch both reached and says the verdict needs more seeds."""
    a = S.main.__globals__["argparse"].Namespace(
        nice=5, theano_python="py", improved_gan="ig", lasagne="l", epochs=3, labels=20, data_root="d"
    )
    cmd = S.ref_command(a, 2, Path("m.npz"), Path("log"))
    assert cmd[cmd.index("--count") + 1] == "2" and cmd[cmd.index("--seed_data") + 1] == "2"
    assert "improved-gan/mnist-20" in S.ours_command(a, 2, tmp_path / "none")
    monkeypatch.setattr(S, "RESULTS", tmp_path / "results")
    work = tmp_path / "work"
    write_logs(work, [2], 3, [[5000, 4800, 4700]], [[5100, 4900, 4600]], [[4900, 4700, 4600]], [[4500, 4300, 4000]])
    (work / "ganworks" / "seed2" / "metrics.jsonl").write_text(
        "".join(line + "\n" for line in (work / "ganworks" / "seed2" / "metrics.jsonl").read_text().splitlines()[:4])
    )
    (work / "settings.json").write_text(json.dumps({"seeds": [2], "epochs": 3, "labels": 20}))
    assert S.main(["report", "--work", str(work)]) == 0
    res = json.loads((tmp_path / "results" / "side_by_side_mnist20.json").read_text())
    assert res["labels"] == 20 and res["compared_at_epoch"] == 2  # ganworks reached epoch 2 only
    assert {v["verdict"] for v in res["verdicts"]} == {"not enough seeds"}
    assert "20 labels" in (tmp_path / "results" / "side_by_side_mnist20.md").read_text()
    assert (tmp_path / "results" / "side_by_side_mnist20.png").exists()
    assert not (tmp_path / "results" / "side_by_side_mnist.json").exists()


def test_run_schedules_every_seed_of_both_sides_and_skips_finished_ones(tmp_path, monkeypatch):
    """Stand-in commands write the logs the two sides write; a second `run` finds nothing to do."""

    def ref_command(a, seed, npz, log):
        rows = [
            {
                "epoch": e + 1,
                "seconds": 1.0,
                "test_errors_raw": 100 + seed,
                "test_errors_avg_corrected": 90,
                "test_errors_avg": 95,
            }
            for e in range(a.epochs)
        ]
        return [
            sys.executable,
            "-c",
            f"open({str(log)!r}, 'w').write({''.join(json.dumps(r) + chr(10) for r in rows)!r})",
        ]

    def ours_command(a, seed, run):
        rows = [
            {
                "iteration": 600 * (e + 1),
                "epoch": e + 1.0,
                "wall_time_s": 2.0 * (e + 1),
                "test_errors": 100 + seed,
                "test_errors_ema": 90,
            }
            for e in range(a.epochs)
        ]
        text = "".join(json.dumps(r) + "\n" for r in rows)
        return [
            sys.executable,
            "-c",
            f"import os; os.makedirs({str(run)!r}, exist_ok=True); "
            f"open({str(run / 'metrics.jsonl')!r}, 'w').write({text!r})",
        ]

    monkeypatch.setattr(S, "ref_command", ref_command)
    monkeypatch.setattr(S, "ours_command", ours_command)
    monkeypatch.setattr(S, "build_mnist_npz", lambda root, path: path)
    args = ["run", "--seeds", "1", "2", "3", "--epochs", "2", "--work", str(tmp_path), "--poll", "0.05"]
    assert S.main(args) == 0
    series, _ = S.collect(tmp_path, [1, 2, 3], 2)
    np.testing.assert_array_equal(series["ref_raw"][:, 1], [101, 102, 103])
    np.testing.assert_array_equal(series["ours_raw"][:, 1], [101, 102, 103])
    stamp = (tmp_path / "reference" / "seed1.jsonl").stat().st_mtime_ns
    assert S.main(args) == 0  # all done: nothing is run again
    assert (tmp_path / "reference" / "seed1.jsonl").stat().st_mtime_ns == stamp


def test_runs_into_one_work_folder_add_up_their_seeds(tmp_path, monkeypatch):
    monkeypatch.setattr(S, "build_mnist_npz", lambda root, path: path)
    monkeypatch.setattr(S, "ref_done", lambda log, epochs: True)
    monkeypatch.setattr(S, "ours_epochs", lambda run: 99)
    S.main(["run", "--seeds", "1", "2", "--epochs", "3", "--work", str(tmp_path), "--poll", "0.05"])
    S.main(["run", "--seeds", "3", "--epochs", "3", "--work", str(tmp_path), "--poll", "0.05"])
    assert json.loads((tmp_path / "settings.json").read_text())["seeds"] == [1, 2, 3]


@pytest.mark.parametrize("n", [2, 3, 5])
def test_power_detectable_difference_is_detected_80_percent_of_the_time(n):
    """Monte Carlo with normal seed-to-seed spread: at the reported detectable difference the rule (and the
    t-test) call DIFFER in about 80 % of the comparisons, at no difference at the reported false-alarm rate."""
    from scipy import stats

    rng = np.random.RandomState(n)
    sims = 40000
    p = S.power_of({"n_ref": n, "n_ours": n, "pooled_std": 1.0})
    crit_t = stats.t.ppf(0.975, 2 * n - 2) * np.sqrt(2 / n)

    def called_differ(delta, crit_in_pooled_std):
        r = rng.randn(sims, n)
        o = rng.randn(sims, n) + delta
        pooled = np.sqrt((r.var(axis=1, ddof=1) + o.var(axis=1, ddof=1)) / 2)
        return np.mean(np.abs(o.mean(axis=1) - r.mean(axis=1)) > crit_in_pooled_std * pooled)

    assert called_differ(p["detectable_difference_rule"], 2.0) == pytest.approx(0.8, abs=0.015)
    assert called_differ(0.0, 2.0) == pytest.approx(p["rule_false_alarm_rate"], abs=0.01)
    assert called_differ(p["detectable_difference_t_test"], crit_t) == pytest.approx(0.8, abs=0.015)
    assert called_differ(0.0, crit_t) == pytest.approx(0.05, abs=0.01)
    # the detectable difference scales with the spread, and more seeds detect smaller differences
    assert S.power_of({"n_ref": n, "n_ours": n, "pooled_std": 3.0})["detectable_difference_rule"] == pytest.approx(
        3 * p["detectable_difference_rule"], rel=1e-6
    )
    assert (
        S.power_of({"n_ref": n + 3, "n_ours": n + 3, "pooled_std": 1.0})["detectable_difference_t_test"]
        < p["detectable_difference_t_test"]
    )


def test_power_rewrites_the_markdown_from_the_json_alone(tmp_path, monkeypatch):
    """`power` needs no run logs: it adds the power to each verdict of the results JSON and renders the .md
    from it; the rest of the .md is what `report` wrote."""
    monkeypatch.setattr(S, "RESULTS", tmp_path / "results")
    work = tmp_path / "work"
    write_logs(
        work,
        [1, 2, 3],
        2,
        [[300, 200], [320, 210], [310, 190]],
        [[310, 190], [305, 205], [290, 230]],
        [[250, 150], [260, 160], [255, 170]],
        [[240, 155], [255, 150], [250, 140]],
    )
    (work / "settings.json").write_text(json.dumps({"seeds": [1, 2, 3], "epochs": 2}))
    assert S.main(["report", "--work", str(work)]) == 0
    stem = tmp_path / "results" / "side_by_side_mnist"
    before = stem.with_suffix(".md").read_text()
    res = json.loads(stem.with_suffix(".json").read_text())
    for v in res["verdicts"]:  # as a results file written before the power columns existed
        v.pop("power")
    stem.with_suffix(".json").write_text(json.dumps(res))
    import shutil

    shutil.rmtree(work)
    assert S.main(["power"]) == 0
    after = stem.with_suffix(".md").read_text()
    res = json.loads(stem.with_suffix(".json").read_text())
    raw = next(v for v in res["verdicts"] if v["quantity"] == "raw D")
    assert (
        raw["power"]["detectable_difference_rule"] == pytest.approx(S.power_of(raw)["detectable_difference_rule"])
        and raw["power"]["df"] == 4
    )
    assert f"{raw['power']['detectable_difference_rule']:.1f} (" in after and "false-alarm rate" in after
    drop = lambda md: [line for line in md.splitlines() if not line.startswith("Written")]  # noqa: E731
    assert drop(after) == drop(before)
