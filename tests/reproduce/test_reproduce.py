"""`ganworks reproduce`: tables, skip/resume/start, locks, kill -9, reports, the submitit launcher."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ganworks.cli import main
from ganworks.config import list_presets, resolve
from ganworks.reproduce import Caps, list_tables, load_table, plan, run_state
from ganworks.reproduce.runner import LOG, Launch, describe_result, finish, train_command
from ganworks.train import load_checkpoint

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _tiny_table(tmp_path, tiny_digits, iterations=20):
    overrides = ", ".join(
        json.dumps(o) for o in tiny_digits + [f"train.iterations={iterations}", "eval.every=10", "data.labels=20"]
    )
    text = f"""
id = "tiny-table"
title = "Tiny digits table (test)"
metric = "test_errors_ema"
overrides = [{overrides}]

[[rows]]
id = "wide"
preset = "improved-gan/mnist-100"
seeds = [1, 2]
label = "width 0.05"
published = 90
published_std = 5

[[rows]]
id = "narrow"
preset = "improved-gan/mnist-100"
overrides = ["model.discriminator.width=0.03"]
seeds = [1, 2]
label = "D width 0.03"
published = 120
"""
    path = tmp_path / "tiny.toml"
    path.write_text(text)
    return path


def test_every_shipped_table_resolves():
    names = list_tables()
    for want in (
        "improved-gan/table1",
        "improved-gan/table2",
        "improved-gan/table3",
        "improved-gan/svhn",
        "sngan/table2-cifar10",
        "sngan/table2-stl10",
        "sngan/figure1",
        "sngan/figure1-mini",
    ):
        assert want in names
    presets = set(list_presets())
    for name in names:
        table = load_table(name)
        for spec in plan(table, Path("/nonexistent")):
            assert spec.row.preset in presets
            cfg = resolve(spec.row.preset, spec.overrides)
            assert cfg["train"]["seed"] == cfg["data"]["seed_data"] == spec.seed
    t1 = load_table("improved-gan/table1")
    assert t1.id == "improved-gan-table1" and t1.metrics == ["test_errors_ema"]
    rows = {r.id: r for r in t1.rows}
    assert (
        rows["mnist-100"].published == {"test_errors_ema": 93}
        and rows["mnist-100"].published_std["test_errors_ema"] == 6.5
    )
    assert len(rows["mnist-100"].seeds) >= 3 and all(
        len(rows[k].seeds) >= 2 for k in ("mnist-20", "mnist-50", "mnist-200")
    )
    assert [(rows[k].published["test_errors_ema"]) for k in ("mnist-20", "mnist-50", "mnist-200")] == [1677, 221, 90]
    spec = plan(t1, Path("/o"), rows=["mnist-100"])[0]
    assert spec.run_dir == Path("/o/improved-gan-table1/mnist-100/seed1")
    assert "own experiment" in load_table("sngan/figure1-mini").title


def test_seeds_pick_runs_and_an_unlisted_seed_is_refused(capsys):
    t1 = load_table("improved-gan/table1")
    keys = [s.key for s in plan(t1, Path("/o"), rows=["mnist-100", "mnist-20"], seeds=[3, 1])]
    assert keys == ["mnist-100/seed1", "mnist-100/seed3", "mnist-20/seed1"]
    assert main(["reproduce", "improved-gan/table1", "--rows", "mnist-20", "--seeds", "3", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "--seeds 3" in err and "they list 1, 2" in err


def test_unknown_table_names_the_known_ones(capsys):
    assert main(["reproduce", "improved-gan/tabel1"]) == 2
    assert "did you mean improved-gan/table1" in capsys.readouterr().err


@pytest.mark.slow
def test_table_end_to_end_skip_resume_and_report(tmp_path, tiny_digits, capsys):
    table = str(_tiny_table(tmp_path, tiny_digits))
    out = tmp_path / "out"
    base = ["reproduce", table, "--out", str(out), "--no-progress"]

    # capped at 10 iterations: every run stops there, and the cap is in the report
    assert main(base + ["--jobs", "2", "--iterations", "10"]) == 0
    for row in ("wide", "narrow"):
        for seed in (1, 2):
            status = json.loads((out / "tiny-table" / row / f"seed{seed}" / "status.json").read_text())
            assert status["iteration"] == 10 and status["finished"] and status["caps"]["iterations"] == 10
    assert main(base + ["--report"]) == 0
    assert "iterations 10" in (out / "tiny-table" / "report" / "report.md").read_text()  # the cap is reported
    capsys.readouterr()
    assert main(base + ["--iterations", "10", "--dry-run"]) == 0
    assert capsys.readouterr().out.count("skip (finished)") == 4

    # without the cap: the same runs are resumed (not restarted) to their 20 iterations
    assert main(base + ["--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert dry.count(" resume ") == 4 and "--resume" in dry
    assert main(base + ["--jobs", "2"]) == 0
    log = (out / "tiny-table" / "wide" / "seed1" / "reproduce.log").read_text()
    assert "--resume" in log and log.count("improved-gan/mnist-100 --out") == 1
    rows = [json.loads(x) for x in (out / "tiny-table" / "wide" / "seed1" / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [10, 20]
    assert main(base) == 0  # all finished: nothing runs
    assert capsys.readouterr().out.count("finished (skipped)") == 4

    assert main(base + ["--report"]) == 0
    rep = out / "tiny-table" / "report"
    data = json.loads((rep / "report.json").read_text())
    wide = data["rows"][0]
    vals = [s["final"]["test_errors_ema"] for s in wide["seeds"]]
    assert wide["id"] == "wide" and len(vals) == 2 and wide["epochs_min"] > 0
    mean = sum(vals) / 2
    assert wide["summary"]["test_errors_ema"]["mean"] == pytest.approx(mean)
    assert wide["summary"]["test_errors_ema"]["published"] == 90
    md = (rep / "report.md").read_text()
    assert f"| width 0.05 | test_errors_ema | {mean:.1f}" in md or f"| width 0.05 | test_errors_ema | {int(mean)}" in md
    assert "| 90 ± 5 |" in md and "2 of 2" in md and "Caps: none" in md  # now trained to full length
    for f in ("wide.png", "narrow.png", "wide-samples.png", "narrow-samples.png"):
        assert (rep / f).stat().st_size > 1000
    # the narrow row really is another configuration
    cfg = json.loads((out / "tiny-table" / "narrow" / "seed2" / "config.json").read_text())
    assert cfg["model"]["discriminator"]["width"] == 0.03 and cfg["train"]["seed"] == cfg["data"]["seed_data"] == 2


def test_hand_started_run_is_resumed_and_a_locked_one_is_left_alone(tmp_path, tiny_digits):
    table = load_table(str(_tiny_table(tmp_path, tiny_digits)))
    out = tmp_path / "out"
    spec = plan(table, out, rows=["wide"])[0]
    # the layout in use: `ganworks train PRESET --seed 1 --set data.seed_data=1 --out <out>/<table id>/<row>/seed1`
    sets = sum((["--set", o] for o in [*table.overrides, "data.seed_data=1"]), [])
    assert (
        main(
            [
                "train",
                "improved-gan/mnist-100",
                "--seed",
                "1",
                *sets,
                "--iterations",
                "10",
                "--no-progress",
                "--out",
                str(out / "tiny-table" / "wide" / "seed1"),
            ]
        )
        == 0
    )
    (spec.run_dir / "status.json").unlink()  # as written by a ganworks without status files
    assert run_state(spec, Caps()) == "partial"
    assert "--resume" in train_command(spec, "partial", Caps(), 1)

    launch = Launch(spec, [sys.executable, "-c", "import time; time.sleep(60)"], Caps(), 1)
    try:
        assert run_state(spec, Caps()) == "running"  # the lock is held while the child lives
        with pytest.raises(RuntimeError, match="locked"):
            Launch(spec, [sys.executable, "-c", "pass"], Caps(), 1)
    finally:
        launch.proc.kill()
        launch.proc.wait()
        launch.poll()
    assert run_state(spec, Caps()) == "partial"


@pytest.mark.slow
def test_kill_minus_9_mid_run_then_resume(tmp_path, tiny_digits):
    table = _tiny_table(tmp_path, tiny_digits, iterations=100000)
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=SRC)
    cmd = [
        sys.executable,
        "-m",
        "ganworks.cli",
        "reproduce",
        str(table),
        "--out",
        str(out),
        "--rows",
        "wide",
        "--no-progress",
        "--set",
        "eval.every=5",
        "--set",
        "eval.grid=0",
    ]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = out / "tiny-table" / "wide" / "seed1" / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline:
        time.sleep(0.3)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and its `ganworks train` child, mid-run
    proc.wait()
    assert ckpt.exists()
    spec = plan(load_table(str(table)), out, rows=["wide"])[0]
    deadline = time.time() + 30  # the killed child is reaped by init, not by us: give it a moment
    while run_state(spec, Caps()) == "running" and time.time() < deadline:
        time.sleep(0.2)
    assert run_state(spec, Caps()) == "partial"  # the lock died with them
    reached = load_checkpoint(spec.run_dir)["position"]["iteration"]
    assert (
        main(
            [
                "reproduce",
                str(table),
                "--out",
                str(out),
                "--rows",
                "wide",
                "--iterations",
                str(reached + 20),
                "--no-progress",
            ]
        )
        == 0
    )
    status = json.loads((spec.run_dir / "status.json").read_text())
    assert status["finished"] and status["iteration"] == reached + 20
    assert "--resume" in (spec.run_dir / "reproduce.log").read_text()


def test_a_run_stopped_by_a_signal_is_reported_interrupted_not_failed(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / LOG).write_text('interrupted (SIGTERM): saved ...\n{"iteration": 6449, "interrupted": "SIGTERM"}\n')
    assert (
        describe_result(finish(run, 143, Caps())) == "interrupted (SIGTERM; saved at iteration 6449: rerun to resume)"
    )
    (run / LOG).write_text("Traceback ...\nValueError: bad\n")
    assert describe_result(finish(run, 2, Caps())) == "failed (exit 2): ValueError: bad"
    assert describe_result(finish(run, 130, Caps())) == "interrupted (SIGINT; saved: rerun to resume)"
    assert describe_result({"returncode": 0, "finished": True}) == "finished"
    assert describe_result({"returncode": 0, "finished": False}) == "stopped (time cap)"


@pytest.mark.slow
def test_submitit_local_launcher(tmp_path, tiny_digits, capsys):
    pytest.importorskip("submitit")
    table = str(_tiny_table(tmp_path, tiny_digits, iterations=10))
    out = tmp_path / "out"
    assert (
        main(
            ["reproduce", table, "--out", str(out), "--rows", "narrow", "--launcher", "submitit-local", "--no-progress"]
        )
        == 0
    )
    for seed in (1, 2):
        status = json.loads((out / "tiny-table" / "narrow" / f"seed{seed}" / "status.json").read_text())
        assert status["finished"] and status["iteration"] == 10
    assert any((out / "tiny-table" / "submitit").iterdir())  # submitit's job folders
    assert capsys.readouterr().out.count("finished") == 2


def test_seeds_at_different_epochs_are_also_compared_at_their_common_epoch():
    from ganworks.reproduce.report import at_common_epoch

    # seed A stopped at epoch 3, seed B at 5: compare at epoch 3 (B's value there, not its last)
    c = at_common_epoch([[[1, 300], [2, 200], [3, 150]], [[1, 310], [2, 210], [3, 130], [4, 120], [5, 110]]])
    assert c["epoch"] == 3 and c["n"] == 2
    assert c["mean"] == pytest.approx(140) and c["std"] == pytest.approx(14.142, abs=1e-3)
    # B evaluated every 2 epochs: its last evaluation at or before epoch 3 counts
    c = at_common_epoch([[[1, 300], [3, 150]], [[2, 200], [4, 100]]])
    assert c["epoch"] == 3 and c["mean"] == pytest.approx(175)
    # same epochs, or one seed: nothing to add
    assert at_common_epoch([[[3, 150]], [[3, 130]]]) is None and at_common_epoch([[[3, 150]]]) is None


# ---- issue #22 items 10 and 15: tables and caps that used to crash or be accepted --------------------


def _table_file(tmp_path, table_id="t", row_id="r", seeds="[1]"):
    path = tmp_path / "t.toml"
    path.write_text(
        f'id = "{table_id}"\nmetric = "test_errors_ema"\n[[rows]]\nid = "{row_id}"\n'
        f'preset = "improved-gan/mnist-100"\nseeds = {seeds}\n'
    )
    return str(path)


def _one_line(capsys, code, message):
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and message in err and "\n" not in err, err
    assert "Traceback" not in err


def test_table_seeds_that_are_not_whole_numbers_are_one_line(tmp_path, capsys):
    table = _table_file(tmp_path, seeds='["a", -1]')
    _one_line(
        capsys,
        main(["reproduce", table, "--dry-run", "--out", str(tmp_path / "o")]),
        "has seeds ['a', -1]; seeds are whole numbers",
    )
    table = _table_file(tmp_path, seeds="[-1]")
    _one_line(capsys, main(["reproduce", table, "--dry-run", "--out", str(tmp_path / "o")]), "(-1 is not)")


@pytest.mark.parametrize("table_id, row_id", [("../../escape", "r"), ("t", "../up"), ("t", "a/b")])
def test_table_ids_cannot_plan_run_folders_outside_out(table_id, row_id, tmp_path, capsys):
    out = tmp_path / "deep" / "out"
    _one_line(
        capsys,
        main(["reproduce", _table_file(tmp_path, table_id, row_id), "--dry-run", "--out", str(out)]),
        "names a folder under --out, so it must be one plain name",
    )


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--iterations", "-3"], "--iterations must be at least 1"),
        (["--iterations", "0"], "--iterations must be at least 1"),
        (["--epochs", "-1"], "--epochs must be a number above 0"),
        (["--epochs", "1", "--iterations", "2"], "give --epochs or --iterations, not both"),
    ],
)
def test_reproduce_caps_are_checked(flags, message, tmp_path, capsys):
    _one_line(capsys, main(["reproduce", "improved-gan/table1", *flags, "--dry-run", "--out", str(tmp_path)]), message)


def test_launcher_slurm_without_slurm_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    _one_line(
        capsys,
        main(["reproduce", "improved-gan/table1", "--launcher", "slurm", "--out", str(tmp_path / "o")]),
        "--launcher slurm needs SLURM, and this machine has no `sbatch`",
    )
    assert not (tmp_path / "o").exists()
