"""Each command end to end on tiny inputs, and bad input ending in one line and exit status 2."""

import json
import subprocess
import sys

import pytest
from PIL import Image

from ganworks.cli import main


def _sets(overrides):
    return [a for o in overrides for a in ("--set", o)]


def test_train_eval_sample_end_to_end(tmp_path, tiny_digits, capsys):
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "improved-gan/mnist-100",
                *_sets(tiny_digits),
                "--iterations",
                "12",
                "--set",
                "eval.every=6",
                "--out",
                str(run),
                "--no-progress",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["iteration"] == 12 and 0 <= last["test_error_ema"] <= 1
    assert (run / "config.json").exists() and len((run / "metrics.jsonl").read_text().splitlines()) == 2
    assert list((run / "tb").glob("events.out.tfevents.*"))
    assert {p.name for p in (run / "checkpoints").iterdir()} == {"last.pt", "best.pt"}
    assert len(list((run / "samples").glob("*.png"))) == 2

    assert main(["train", "--resume", str(run), "--iterations", "18", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["iteration"] == 18

    assert main(["eval", str(run), "--json", str(tmp_path / "eval.json")]) == 0
    out = capsys.readouterr().out
    assert "raw D:" in out and "averaged D:" in out
    result = json.loads((tmp_path / "eval.json").read_text())
    assert result["n"] == 200 and result["test_errors_averaged"] == round(result["test_error_averaged"] * 200)

    png = tmp_path / "grid.png"
    assert main(["sample", str(run / "checkpoints" / "best.pt"), "--n", "9", "--out", str(png)]) == 0
    assert Image.open(png).size == (3 * 8 + 4, 3 * 8 + 4)  # 3x3 grid of 8x8 with 1-px padding


def test_presets_lists_every_mnist_row(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for n, published in (("20", "1677"), ("50", "221"), ("100", "93 ± 6.5"), ("200", "90 ± 4.2")):
        assert f"improved-gan/mnist-{n} " in out and published in out


def test_console_script_runs():
    proc = subprocess.run([sys.executable, "-m", "ganworks.cli", "presets", "--json"], capture_output=True, text=True)
    assert proc.returncode == 0 and any(r["preset"] == "improved-gan/mnist-100" for r in json.loads(proc.stdout))


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "improved-gan/mnist-1000"], "unknown preset 'improved-gan/mnist-1000'"),
        (
            ["train", "improved-gan/mnist-100", "--set", "optim.learning_rate=1"],
            "unknown config key 'optim.learning_rate'",
        ),
        (["train", "improved-gan/mnist-100", "--set", "optim.lr=fast"], "expects a float"),
        (
            ["train", "improved-gan/mnist-100", "--data-root", "{tmp}/no-data", "--set", "data.download=false"],
            "not found under",
        ),
        (["train", "improved-gan/mnist-100", "--set", "data.name=digits"], "has 1x8x8 images but the generator"),
        (["eval", "{tmp}/nowhere"], "no such run directory or checkpoint"),
        (["sample", "{tmp}/nowhere", "--out", "{tmp}/x.png"], "no such run directory or checkpoint"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path, capsys):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main(args + (["--no-progress"] if args[0] == "train" else [])) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err and "Traceback" not in err


def test_output_piped_into_a_reader_that_stops_early_ends_quietly():
    """`ganworks presets | head -1`: the reader closes the pipe; ganworks exits 0 without a traceback."""
    import subprocess
    import sys
    from pathlib import Path

    src = str(Path(__file__).resolve().parents[1] / "src")
    code = (
        "import os, sys; r, w = os.pipe(); os.close(r); os.dup2(w, 1); "  # stdout: a pipe nobody reads
        "from ganworks.cli import main; sys.exit(main(['presets']))"
    )
    out = subprocess.run(
        [sys.executable, "-u", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": src, "PATH": "/usr/bin:/bin"},
    )
    assert "Traceback" not in out.stderr and "BrokenPipeError" not in out.stderr, out.stderr
    assert out.returncode == 0
