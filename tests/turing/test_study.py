"""Study creation: the top-k % filter by per-image Inception Score (here a trained classifier's), the
CLI's create command, and bad options ending in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ganworks.cli import main
from ganworks.metrics.inception_score import inception_score
from ganworks.turing.study import per_image_inception_score


def test_per_image_scores_average_to_the_inception_score():
    logits = torch.randn(64, 10, generator=torch.Generator().manual_seed(0)) * 3
    s = per_image_inception_score(logits)
    assert np.exp(s.mean()) == pytest.approx(inception_score(logits.numpy(), splits=1)["IS"], rel=1e-9)


@pytest.fixture(scope="module")
def digits_classifier(tmp_path_factory):
    pytest.importorskip("sklearn")
    out = tmp_path_factory.mktemp("turing-clf") / "clf.pt"
    assert (
        main(
            [
                "train-classifier",
                "digits",
                "--epochs",
                "1",
                "--width",
                "4",
                "--batch-size",
                "64",
                "--quiet",
                "--out",
                str(out),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    return out


def test_top_percent_keeps_the_best_scored_fakes(tiny_run, digits_classifier, tmp_path, capsys):
    from ganworks.metrics.api import load_input
    from ganworks.metrics.classifier import ClassifierExtractor

    d = tmp_path / "top"
    assert (
        main(
            [
                "turing",
                "create",
                str(d),
                "--real",
                "digits:test",
                "--fake",
                str(tiny_run),
                "--images-per-source",
                "8",
                "--tutorial",
                "0",
                "--attention",
                "0",
                "--top-percent",
                "25",
                "--classifier",
                str(digits_classifier),
                "--seed",
                "5",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert "study top: 16 images" in capsys.readouterr().out
    s = json.loads((d / "study.json").read_text())
    f = s["sources"][1]["filter"]
    assert (f["from"], f["kept"], f["scorer"]) == (32, 8, "classifier")
    # regenerate the same 32 samples (the recorded seed) and rank them independently, in NumPy
    torch.manual_seed(s["sources"][1]["seed"])
    imgs, _ = load_input(str(tiny_run), num_samples=32, device="cpu", progress=False)
    with torch.no_grad():
        _, logits = ClassifierExtractor(digits_classifier)(imgs)
    z = logits.double().numpy()
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    kl = (p * (np.log(p) - np.log(p.mean(0, keepdims=True)))).sum(1)
    best = {imgs[i, 0].numpy().tobytes() for i in np.argsort(-kl)[:8]}
    stored = set()
    for iid, m in s["images"].items():
        if m["truth"] == "fake":
            with Image.open(d / "images" / f"{iid}.png") as im:  # 8×8 grey: PNG is lossless, no resize
                stored.add(np.asarray(im).tobytes())
    assert stored == best


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--real-fraction", "1.5"], "--real-fraction must be between 0 and 1"),
        (["--top-percent", "0"], "--top-percent must be in (0, 100]"),
        (["--staircase"], "--staircase needs a starting --exposure-ms"),
        (["--real", "nowhere-at-all/x"], "no such file or folder"),
    ],
)
def test_create_bad_options_are_one_line(extra, message, tiny_run, tmp_path, capsys):
    argv = [
        "turing",
        "create",
        str(tmp_path / "s"),
        "--real",
        "digits:test",
        "--fake",
        str(tiny_run),
        "--device",
        "cpu",
    ]
    if extra[0] == "--real":
        argv[argv.index("--real") + 1] = extra[1]
        extra = []
    assert main(argv + extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_an_existing_study_is_not_overwritten(tiny_run, tmp_path, capsys):
    argv = [
        "turing",
        "create",
        str(tmp_path / "s"),
        "--real",
        "digits:test",
        "--fake",
        str(tiny_run),
        "--images-per-source",
        "4",
        "--tutorial",
        "0",
        "--device",
        "cpu",
    ]
    assert main(argv) == 0
    assert main(argv) == 2 and "already exists" in capsys.readouterr().err
    assert main(argv + ["--overwrite"]) == 0
    assert len(list((tmp_path / "s" / "images").glob("*.png"))) == 4 + 4 + 2
