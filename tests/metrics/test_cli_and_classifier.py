"""CLI end to end on tiny inputs (npz, image folder; random Inception or a tiny classifier), bad input,
classifier-based scores and the training-loop evaluator."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from ganworks.cli.metrics import add_parser


def _run(argv):
    """Run a subcommand the way the top-level CLI does (GanworksError → one line, exit 2)."""
    from ganworks.cli import main

    return main(argv)


def test_parser_wiring():
    sub = argparse.ArgumentParser().add_subparsers()
    add_parser(sub)
    args = argparse.ArgumentParser()
    s = args.add_subparsers()
    add_parser(s)
    ns = args.parse_args(["metrics", "x.npz"])
    assert ns.func.__name__ == "cmd_metrics" and ns.is_splits == 10 and ns.kid_subset_size == 1000
    assert ns.is_protocol == "openai" and ns.reference == "cifar10:test"
    ns = args.parse_args(["train-classifier", "mnist"])
    assert ns.func.__name__ == "cmd_train_classifier"


# ------------------------------------------------------------------ tiny classifier on sklearn digits


@pytest.fixture(scope="module")
def digits_classifier(tmp_path_factory):
    pytest.importorskip("sklearn")
    d = tmp_path_factory.mktemp("clf")
    rc = _run(
        [
            "train-classifier",
            "digits",
            "--epochs",
            "8",
            "--width",
            "8",
            "--lr",
            "0.1",
            "--batch-size",
            "32",
            "--quiet",
            "--out",
            str(d / "clf.pt"),
            "--result-json",
            str(d / "clf.json"),
            "--device",
            "cpu",
        ]
    )
    assert rc == 0
    return d / "clf.pt", json.loads((d / "clf.json").read_text())


@pytest.mark.slow
def test_train_classifier_learns(digits_classifier):
    _, info = digits_classifier
    assert info["dataset"] == "digits" and info["epochs"] == 8
    assert info["test_accuracy"] > 0.6  # chance is 0.1
    assert "pixel_scaling" in info and info["arch"] == "smallcnn"


def test_classifier_scores_via_cli(digits_classifier, tmp_path, monkeypatch):
    from ganworks.data import load_dataset
    from ganworks.metrics.classifier import ClassifierExtractor
    from ganworks.metrics.extract import extract_features
    from ganworks.metrics.fid import fid_from_features

    monkeypatch.setenv("GANWORKS_CACHE", str(tmp_path / "cache"))
    clf, _ = digits_classifier
    test = load_dataset("digits", "test").images  # 297 × 1 × 8 × 8
    fake = test[::2].clone()
    fake[:, :, :4] = 0  # blank the top half: a visibly different distribution
    np.savez(tmp_path / "fake.npz", fake.numpy())  # NCHW, first array (no 'images' key)
    out = tmp_path / "r.json"
    rc = _run(
        [
            "metrics",
            str(tmp_path / "fake.npz"),
            "--classifier",
            str(clf),
            "--reference",
            "digits:test",
            "--is-splits",
            "3",
            "--kid-subsets",
            "5",
            "--kid-subset-size",
            "50",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert rc == 0
    r = json.loads(out.read_text())
    s, p = r["scores"], r["protocol"]
    assert set(s) == {
        "digits-classifier-IS",
        "digits-classifier-IS_std",
        "digits-classifier-FID",
        "digits-classifier-KID",
        "digits-classifier-KID_std",
    }
    assert not any(k in s for k in ("IS", "FID", "KID"))
    assert p["n_fake"] == len(fake) and p["n_real"] == 297 and p["reference_split"] == "test"
    assert p["extractor"] == "digits-classifier" and len(p["weights_sha256"]) == 64
    assert p["is_splits"] == 3 and p["is_shuffled"] is False and p["kid_subset_size"] == 50
    # the FID equals an independent computation on the classifier's own features
    ext = ClassifierExtractor(clf)
    ff, _ = extract_features(ext, fake, progress=False)
    fr, _ = extract_features(ext, test, progress=False)
    assert s["digits-classifier-FID"] == pytest.approx(fid_from_features(ff, fr), rel=1e-9)
    assert s["digits-classifier-FID"] > 0
    # the reference statistics were cached; a second run hits the cache and gives the same numbers
    out2 = tmp_path / "r2.json"
    assert (
        _run(
            [
                "metrics",
                str(tmp_path / "fake.npz"),
                "--classifier",
                str(clf),
                "--reference",
                "digits:test",
                "--is-splits",
                "3",
                "--kid-subsets",
                "5",
                "--kid-subset-size",
                "50",
                "--out",
                str(out2),
                "--quiet",
            ]
        )
        == 0
    )
    r2 = json.loads(out2.read_text())
    assert r2["protocol"]["reference_source"]["cache_hit"] is True
    assert r2["scores"] == pytest.approx(s)


def test_classifier_fid_of_reference_against_itself_is_zero(digits_classifier, tmp_path):
    from ganworks.data import load_dataset
    from ganworks.metrics.api import compute_metrics

    clf, _ = digits_classifier
    test = load_dataset("digits", "test").images
    r = compute_metrics(
        test,
        reference="digits:test",
        metrics=("fid",),
        classifier=clf,
        device="cpu",
        cache_dir=tmp_path,
        progress=False,
    )
    assert abs(r.scores["digits-classifier-FID"]) < 1e-6
    json.loads(r.to_json())  # serialisable


def test_evaluator_with_classifier(digits_classifier, tmp_path, monkeypatch):
    pytest.importorskip("ganworks.data.scaling")
    from ganworks.metrics.evaluator import SampleQualityEvaluator

    monkeypatch.setenv("GANWORKS_CACHE", str(tmp_path))
    clf, _ = digits_classifier

    class TinyG(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 64)

        def sample_z(self, n, device=None):
            return torch.randn(n, 4, device=device)

        def forward(self, z):
            return torch.tanh(self.lin(z)).view(-1, 1, 8, 8)

    torch.manual_seed(0)
    ev = SampleQualityEvaluator(60, "digits:test", classifier=str(clf), batch_size=32)
    out = ev(TinyG().eval(), "minus_one_one", "cpu")
    assert set(out) == {
        "digits-classifier-IS",
        "digits-classifier-IS_std",
        "digits-classifier-FID",
        "sample_classes",
        "quality_weights_sha256",
    }
    assert out.pop("quality_weights_sha256") == ev.last_protocol["weights_sha256"]
    assert all(isinstance(v, float) and np.isfinite(v) for v in out.values())
    assert 1.0 <= out["sample_classes"] <= 10.0
    assert out["digits-classifier-IS"] >= 1.0 and out["digits-classifier-FID"] > 0
    assert ev.last_protocol["n_fake"] == 60


def test_effective_classes_from_the_predicted_label_histogram():
    from ganworks.metrics.evaluator import effective_classes

    one_hot = np.eye(4)
    assert effective_classes(one_hot[[2] * 50]) == pytest.approx(1.0)  # every sample the same class
    assert effective_classes(one_hot[[0, 1, 2, 3] * 25]) == pytest.approx(4.0)  # uniform over 4
    p = np.array([0.5, 0.25, 0.25])
    assert effective_classes(one_hot[[0, 0, 1, 2] * 10]) == pytest.approx(np.exp(-(p * np.log(p)).sum()))


# ------------------------------------------------------------------ Inception (random weights) via the CLI


@pytest.mark.slow
def test_cli_npz_and_image_folder_with_random_inception(
    random_inception_weights, image_tree, fake_images, tmp_path, monkeypatch
):
    from PIL import Image

    monkeypatch.setenv("GANWORKS_CACHE", str(tmp_path / "cache"))
    ref = f"imagefolder:{image_tree / 'ref'}:test"
    common = [
        "--reference",
        ref,
        "--inception-weights",
        str(random_inception_weights),
        "--metrics",
        "is,kid",
        "--is-splits",
        "2",
        "--kid-subsets",
        "3",
        "--kid-subset-size",
        "8",
        "--quiet",
        "--device",
        "cpu",
    ]
    assert _run(["metrics", str(image_tree / "fake.npz"), "--out", str(tmp_path / "a.json"), *common]) == 0
    folder = tmp_path / "fakes"
    folder.mkdir()
    for i, img in enumerate(fake_images):
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(folder / f"{i:03d}.png")
    assert _run(["metrics", str(folder), "--out", str(tmp_path / "b.json"), *common]) == 0
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("a.json", "b.json"))
    assert a["scores"] == pytest.approx(b["scores"], rel=1e-9)  # PNG is lossless: same images, same numbers
    p = a["protocol"]
    assert p["n_fake"] == 24 and p["n_real"] == 16 and p["extractor"] == "inception-v3-compat"
    assert p["weights_official"] is False and p["is_protocol"] == "openai"
    assert b["protocol"]["reference_source"]["cache_hit"] is True
    assert set(a["scores"]) == {"IS", "IS_std", "KID", "KID_std"}


# ------------------------------------------------------------------ bad input: one line, non-zero exit


def _one_line_error(capsys, argv):
    rc = _run(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_bad_input_path(capsys, tmp_path, random_inception_weights):
    msg = _one_line_error(
        capsys,
        [
            "metrics",
            str(tmp_path / "nope"),
            "--inception-weights",
            str(random_inception_weights),
            "--metrics",
            "is",
            "--quiet",
        ],
    )
    assert "does not exist" in msg


def test_wrong_reference_name(capsys, tmp_path, image_tree, random_inception_weights, monkeypatch):
    monkeypatch.setenv("GANWORKS_CACHE", str(tmp_path))
    msg = _one_line_error(
        capsys,
        [
            "metrics",
            str(image_tree / "fake.npz"),
            "--reference",
            "nosuchset:test",
            "--inception-weights",
            str(random_inception_weights),
            "--quiet",
        ],
    )
    assert "nosuchset" in msg


def test_missing_weights_offline(capsys, tmp_path, image_tree, monkeypatch):
    import ganworks.metrics.inception as inc

    monkeypatch.delenv("GANWORKS_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(inc, "_download", lambda dst: (_ for _ in ()).throw(OSError("offline")))
    msg = _one_line_error(capsys, ["metrics", str(image_tree / "fake.npz"), "--quiet"])
    assert "weights-inception-2015-12-05-6726825d.pth" in msg and "GANWORKS_INCEPTION_WEIGHTS" in msg


def test_bad_classifier_metric_name_and_dtype(capsys, tmp_path, image_tree, digits_classifier):
    clf, _ = digits_classifier
    assert "classifier" in _one_line_error(
        capsys, ["metrics", str(image_tree / "fake.npz"), "--classifier", str(tmp_path / "x.pt"), "--quiet"]
    )
    assert "unknown metric" in _one_line_error(
        capsys, ["metrics", str(image_tree / "fake.npz"), "--classifier", str(clf), "--metrics", "is,isx", "--quiet"]
    )
    bad = tmp_path / "x.npz"
    np.savez(bad, images=np.zeros((4, 8, 8, 1), np.float32))
    assert "uint8" in _one_line_error(
        capsys, ["metrics", str(bad), "--classifier", str(clf), "--metrics", "is", "--is-splits", "2", "--quiet"]
    )


def test_npz_layouts(tmp_path):
    from ganworks.errors import DataError
    from ganworks.metrics.datasets import load_npz_images

    x = (np.arange(2 * 5 * 6 * 3) % 256).astype(np.uint8).reshape(2, 5, 6, 3)
    np.savez(tmp_path / "nhwc.npz", images=x)
    np.savez(tmp_path / "nchw.npz", other=x.transpose(0, 3, 1, 2))
    a, b = load_npz_images(tmp_path / "nhwc.npz"), load_npz_images(tmp_path / "nchw.npz")
    assert tuple(a.shape) == (2, 3, 5, 6) and torch.equal(a, b)
    np.savez(tmp_path / "f.npz", images=x.astype(np.float32))
    with pytest.raises(DataError, match="uint8"):
        load_npz_images(tmp_path / "f.npz")


def test_metrics_on_a_training_run_and_during_training(digits_classifier, tmp_path, monkeypatch, tiny_digits):
    """A run directory as input (it generates samples) and the in-loop evaluator, offline."""
    from ganworks.cli import main

    monkeypatch.setenv("GANWORKS_CACHE", str(tmp_path / "cache"))
    clf, _ = digits_classifier
    run = tmp_path / "run"
    sets = tiny_digits + [
        "eval.quality_samples=60",
        "eval.quality_reference='digits:test'",
        f"eval.quality_classifier='{clf}'",
        "eval.best=digits-classifier-FID",
    ]
    assert (
        main(
            [
                "train",
                "improved-gan/mnist-100",
                *[a for s in sets for a in ("--set", s)],
                "--iterations",
                "4",
                "--out",
                str(run),
                "--no-progress",
            ]
        )
        == 0
    )
    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert row["digits-classifier-FID"] > 0 and row["digits-classifier-IS"] >= 1
    out = tmp_path / "r.json"
    assert (
        _run(
            [
                "metrics",
                str(run),
                "--classifier",
                str(clf),
                "--reference",
                "digits:test",
                "--num-samples",
                "60",
                "--is-splits",
                "3",
                "--metrics",
                "is,fid",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    r = json.loads(out.read_text())
    assert r["protocol"]["n_fake"] == 60 and r["scores"]["digits-classifier-FID"] > 0


# ------------------------------------------------------------------ issue #22: metrics inputs and --out


def _digits_npz(path, n=60):
    from ganworks.data import load_dataset

    np.savez(path, images=load_dataset("digits", "test").images[:n].numpy())
    return path


def test_metrics_out_never_overwrites_a_users_file(digits_classifier, tmp_path, capsys):
    clf, _ = digits_classifier
    fake = _digits_npz(tmp_path / "fake.npz")
    mine = tmp_path / "existing.txt"
    mine.write_text("my notes\n")
    common = ["--classifier", str(clf), "--reference", "none", "--is-splits", "3", "--quiet"]
    msg = _one_line_error(capsys, ["metrics", str(fake), "--out", str(mine), *common])
    assert "exists and is not a `ganworks metrics` result" in msg and "--force" in msg
    assert mine.read_text() == "my notes\n"
    out = tmp_path / "r.json"
    assert _run(["metrics", str(fake), "--out", str(out), *common]) == 0
    assert _run(["metrics", str(fake), "--out", str(out), *common]) == 0  # its own earlier result: replaced
    assert _run(["metrics", str(fake), "--out", str(mine), "--force", *common]) == 0
    assert "scores" in json.loads(mine.read_text())


def test_metrics_reference_none_means_is_only(digits_classifier, tmp_path, capsys):
    clf, _ = digits_classifier
    out = tmp_path / "r.json"
    assert (
        _run(
            [
                "metrics",
                str(_digits_npz(tmp_path / "fake.npz")),
                "--classifier",
                str(clf),
                "--reference",
                "none",
                "--is-splits",
                "3",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert set(json.loads(out.read_text())["scores"]) == {"digits-classifier-IS", "digits-classifier-IS_std"}
    capsys.readouterr()
    msg = _one_line_error(
        capsys,
        [
            "metrics",
            str(tmp_path / "fake.npz"),
            "--classifier",
            str(clf),
            "--reference",
            "none",
            "--metrics",
            "is,fid",
            "--quiet",
        ],
    )  # asked for FID by name: still needs one
    assert "FID/KID need a reference" in msg


def test_metrics_refuses_too_few_images_per_is_split(digits_classifier, tmp_path, capsys):
    clf, _ = digits_classifier
    msg = _one_line_error(
        capsys,
        [
            "metrics",
            str(_digits_npz(tmp_path / "ten.npz", n=10)),
            "--classifier",
            str(clf),
            "--reference",
            "none",
            "--quiet",
        ],
    )  # the default 10 splits: 1 image each
    assert "10 images in 10 splits has fewer than 2 images per split" in msg and "--is-splits" in msg


def test_metrics_folder_whose_first_file_is_not_an_image(digits_classifier, tmp_path, capsys):
    from PIL import Image

    clf, _ = digits_classifier
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "000.png").write_text("this is text, not a PNG")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "001.png")
    msg = _one_line_error(
        capsys, ["metrics", str(folder), "--classifier", str(clf), "--reference", "none", "--is-splits", "1", "--quiet"]
    )
    assert "cannot read image" in msg and "000.png" in msg


def test_metrics_mixed_size_folder_names_the_file(tmp_path):
    from PIL import Image

    from ganworks.errors import DataError
    from ganworks.metrics.datasets import load_image_folder

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, size in enumerate((8, 8, 9, 8)):
        Image.fromarray(np.zeros((size, size, 3), np.uint8)).save(folder / f"{i:03d}.png")
    with pytest.raises(DataError, match=r"image .*002.png is 9x9 with 3 channel\(s\) but .*000.png is 8x8"):
        load_image_folder(folder)


def test_metrics_on_a_text_file_named_npz(tmp_path):
    from ganworks.errors import DataError
    from ganworks.metrics.datasets import load_npz_images

    (tmp_path / "x.npz").write_text("hello\n")
    with pytest.raises(DataError, match="is not an .npz file") as e:
        load_npz_images(tmp_path / "x.npz")
    assert "pickle" not in str(e.value)
