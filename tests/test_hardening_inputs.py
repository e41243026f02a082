"""Issue #9 items 5-13: every bad input is one line and exit 2, numbers are validated with their
range, runs are never written over other files, the image cache sees every edit, a missing data
root is left alone, and the protocol options (IS splits, no test-set selection, dequantisation,
truncation, one-way dependencies) are there and recorded."""

import ast
import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganworks
from ganworks.cli import main
from ganworks.config import list_presets, resolve
from ganworks.data import load_dataset, to_float, to_uint8
from ganworks.errors import ConfigError, DataError

TINY_RUN = {}  # one tiny finished run shared by the tests below (built once)


def _sets(overrides):
    return [a for o in overrides for a in ("--set", o)]


@pytest.fixture
def tiny_run(tmp_path_factory, tiny_digits):
    if "dir" not in TINY_RUN:
        run = tmp_path_factory.mktemp("tiny") / "run"
        assert (
            main(
                [
                    "train",
                    "improved-gan/mnist-100",
                    *_sets(tiny_digits),
                    "--iterations",
                    "4",
                    "--set",
                    "eval.every=2",
                    "--out",
                    str(run),
                    "--no-progress",
                ]
            )
            == 0
        )
        TINY_RUN["dir"] = run
    return TINY_RUN["dir"]


def _one_line_error(capsys, code, message):
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("error: ") and message in err and "\n" not in err and "Traceback" not in err, err
    return err


# ---- a small MNIST tree of our own, to corrupt ------------------------------------------------------


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _mnist_tree(root: Path) -> Path:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 300), ("t10k", 50)):
        (raw / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(rng.integers(0, 255, (n, 28, 28)))))
        (raw / f"{split}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(np.arange(n) % 10)))
    return raw


@pytest.mark.parametrize("damage", ["truncated", "crc", "directory"])
def test_damaged_mnist_files_are_one_line(damage, tmp_path, capsys):
    raw = _mnist_tree(tmp_path)
    assert load_dataset("mnist", root=tmp_path, download=False).images.shape == (300, 1, 28, 28)
    f = raw / "train-images-idx3-ubyte.gz"
    data = f.read_bytes()
    if damage == "truncated":
        f.write_bytes(data[: len(data) // 2])
    elif damage == "crc":
        f.write_bytes(data[:-8] + bytes(b ^ 0xFF for b in data[-8:-4]) + data[-4:])
    else:
        f.unlink()
        f.mkdir()
    code = main(
        [
            "train",
            "improved-gan/mnist-100",
            "--data-root",
            str(tmp_path),
            "--set",
            "data.download=false",
            "--set",
            "data.batch_size=10",
            "--set",
            "model.init_examples=20",
            "--iterations",
            "1",
            "--out",
            str(tmp_path / "run"),
            "--no-progress",
        ]
    )
    _one_line_error(capsys, code, "train-images-idx3-ubyte.gz")


def test_image_folder_whose_first_file_is_not_an_image_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("GANWORKS_CACHE", str(tmp_path / "cache"))
    (tmp_path / "imgs" / "train" / "a").mkdir(parents=True)
    (tmp_path / "imgs" / "train" / "a" / "0.png").write_bytes(b"not a png at all")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "imgs" / "train" / "a" / "1.png")
    with pytest.raises(DataError, match="cannot read image .*0.png"):
        load_dataset(f"imagefolder:{tmp_path / 'imgs'}", "train")


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["train.epochs=inf"], "'train.epochs' is inf; it must be a number in [0, 1e+06]"),
        (["data.batch_size=0"], "'data.batch_size' is 0; it must be an integer in [1, inf)"),
        (["data.batch_size=-7"], "'data.batch_size' is -7; it must be an integer in [1, inf)"),
        (["optim.lr=-1"], "'optim.lr' is -1.0; it must be a number in (0, inf)"),
        (["optim.lr=inf"], "'optim.lr' is inf"),
        (["optim.lr=nan"], "'optim.lr' is nan"),
        (["train.iterations=2.5"], "'train.iterations' is 2.5; it must be an integer"),
        (["train.ema_d=1.0"], "'train.ema_d' is 1.0; it must be a number in [0, 1)"),
        (['eval.quality_uint8="floor"'], "allowed: 'round', 'truncate'"),
        (['train.amp="fp8"'], "allowed: 'none', 'bf16', 'fp16'"),
        (["data.workers=-1"], "'data.workers' is -1; it must be an integer in [0, 256]"),
    ],
)
def test_numbers_are_validated_with_their_range(overrides, message, capsys):
    code = main(["train", "improved-gan/mnist-100", *_sets(overrides), "--no-progress"])
    _one_line_error(capsys, code, message)


def test_cli_flags_are_validated_like_config_keys(capsys):
    _one_line_error(
        capsys, main(["train", "improved-gan/mnist-100", "--epochs", "inf", "--no-progress"]), "'train.epochs' is inf"
    )
    _one_line_error(
        capsys,
        main(["train", "improved-gan/mnist-100", "--iterations", "-3", "--no-progress"]),
        "'train.iterations' is -3",
    )
    assert resolve("improved-gan/mnist-100", ["train.iterations=3.0"])["train"]["iterations"] == 3
    with pytest.raises(ConfigError):
        resolve("improved-gan/mnist-100", ["optim.beta2=1"])


def test_sample_and_metrics_arguments_are_validated(tiny_run, tmp_path, capsys):
    _one_line_error(
        capsys,
        main(["sample", str(tiny_run), "--n", "100000000", "--out", str(tmp_path / "a.png")]),
        "--n must be between 1 and 10000",
    )
    (tmp_path / "dir.png").mkdir()
    _one_line_error(capsys, main(["sample", str(tiny_run), "--out", str(tmp_path / "dir.png")]), "is a folder")
    _one_line_error(capsys, main(["metrics", str(tiny_run), "--num-samples", "0"]), "--num-samples must be at least 1")


def test_resume_from_best_pt(tiny_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(tiny_run, run)
    assert main(["train", "--resume", str(run / "checkpoints" / "best.pt"), "--iterations", "6", "--no-progress"]) == 0
    assert "resuming from" in capsys.readouterr().err
    rows = [json.loads(line)["iteration"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows == [2, 4, 6]
    (tmp_path / "loose").mkdir()
    shutil.copy(run / "checkpoints" / "best.pt", tmp_path / "loose" / "x.pt")
    _one_line_error(
        capsys,
        main(["train", "--resume", str(tmp_path / "loose" / "x.pt"), "--no-progress"]),
        "--resume takes a run directory",
    )


def test_out_dir_with_other_files_is_refused(tmp_path, tiny_digits, capsys):
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    _one_line_error(
        capsys,
        main(
            [
                "train",
                "improved-gan/mnist-100",
                *_sets(tiny_digits),
                "--iterations",
                "2",
                "--out",
                str(other),
                "--no-progress",
            ]
        ),
        "holds other files and is not a run",
    )
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (
        main(
            [
                "train",
                "improved-gan/mnist-100",
                *_sets(tiny_digits),
                "--iterations",
                "2",
                "--out",
                str(empty),
                "--no-progress",
            ]
        )
        == 0
    )
    capsys.readouterr()
    _one_line_error(
        capsys,
        main(
            [
                "train",
                "improved-gan/mnist-100",
                *_sets(tiny_digits),
                "--iterations",
                "2",
                "--out",
                str(empty),
                "--no-progress",
            ]
        ),
        "already holds a run",
    )


def test_image_cache_sees_an_edit_anywhere_in_the_tree(tmp_path, monkeypatch):
    monkeypatch.setenv("GANWORKS_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "imgs" / "train"
    for c in ("a", "b"):
        (folder / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((4, 4, 3), 10 * i, np.uint8)).save(folder / c / f"{i}.png")
    first = load_dataset(f"imagefolder:{tmp_path / 'imgs'}", "train")
    assert first.images[1].max() == 10
    edited = folder / "a" / "1.png"  # not the last file: the old key (count + last mtime) missed it
    st = edited.stat()
    Image.fromarray(np.full((4, 4, 3), 200, np.uint8)).save(edited)
    os.utime(edited, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    again = load_dataset(f"imagefolder:{tmp_path / 'imgs'}", "train")
    assert again.images[1].min() == 200 and torch.equal(again.images[0], first.images[0])
    assert len(list((tmp_path / "cache" / "imagefolder").glob("*.npz"))) == 2


def test_a_missing_data_root_is_not_created(tmp_path, capsys):
    missing = tmp_path / "no-such-root"
    code = main(["train", "improved-gan/mnist-100", "--data-root", str(missing), "--no-progress"])
    _one_line_error(capsys, code, "the data root itself does not exist")
    assert not missing.exists()


# ---- protocol items ------------------------------------------------------------------------------------


def test_sngan_in_training_is_uses_one_split_and_rows_say_so(monkeypatch):
    from ganworks.metrics.evaluator import SampleQualityEvaluator
    from ganworks.train import Experiment

    for name in list_presets():
        cfg = resolve(name)
        if name.startswith("sngan/") and cfg["eval"]["quality_samples"] == 5000:
            assert cfg["eval"]["quality_splits"] == 1, name
    monkeypatch.setattr(SampleQualityEvaluator, "prepare", lambda self, device: None)
    calls = {}

    def fake_call(self, G, scale, device):
        calls["splits"], calls["uint8"] = self.is_splits, self.uint8
        return {"IS": 1.0, "IS_std": 0.0}

    monkeypatch.setattr(SampleQualityEvaluator, "__call__", fake_call)
    cfg = resolve(
        "sngan/cifar10-cnn-sn",
        [
            "data.name=synthetic",
            "data.image_size=32",
            "data.channels=3",
            "data.batch_size=8",
            "model.generator.width=0.04",
            "model.discriminator.width=0.04",
            "train.iterations=1",
            "eval.quality_samples=20",
            'eval.quality_uint8="truncate"',
        ],
    )
    exp = Experiment(cfg, torch.device("cpu"))
    row = exp.evaluate()
    assert calls == {"splits": 1, "uint8": "truncate"}
    assert row["IS_splits"] == 1 and row["IS_samples"] == 20


def test_no_test_set_selection_by_default_and_a_validation_split(tmp_path, tiny_digits):
    from ganworks.train import Experiment, load_checkpoint, train

    for name in list_presets():
        cfg = resolve(name)
        assert not cfg["eval"]["best"].startswith("test_"), name
    cfg = resolve(
        "improved-gan/mnist-100",
        tiny_digits + ["data.validation=200", 'eval.best="val_error_ema"', "train.iterations=4", "eval.every=2"],
    )
    exp = Experiment(cfg, torch.device("cpu"))
    assert len(exp.train_data) == 1300 and len(exp.val_data) == 200
    assert exp.stream.labeled_idx.max() < 1300  # labels come from what is left for training
    row = train(exp, tmp_path / "run", progress=False)
    assert 0 <= row["val_error_ema"] <= 1 and "test_error_ema" in row
    assert load_checkpoint(tmp_path / "run", which="best")["best"]["metric"] == "val_error_ema"
    with pytest.warns(UserWarning, match="selects best.pt on the test set"):
        Experiment(
            resolve("improved-gan/mnist-100", tiny_digits + ['eval.best="test_error_ema"', "train.iterations=1"]),
            torch.device("cpu"),
        )


def test_dequantisation_truncation_and_label_smoothing_notes(tiny_digits, tmp_path, capsys):
    from ganworks.train import Experiment

    y = torch.tensor([[10.6, 10.4, 254.9, -3.0, 300.0]]) / 127.5 - 1
    assert to_uint8(y, "minus_one_one").tolist() == [[11, 10, 255, 0, 255]]
    assert to_uint8(y, "minus_one_one", "truncate").tolist() == [[10, 10, 254, 0, 255]]

    cfg = resolve("improved-gan/mnist-100", tiny_digits + ["data.dequantize=true", "train.iterations=1"])
    exp = Experiment(cfg, torch.device("cpu"))
    batch = exp.stream.batch(0, 0)
    idx = exp.stream.orders(0)[1][:50]
    clean = to_float(exp.stream.images[idx], exp.scale)
    noise = batch["x_unl"] - clean
    assert noise.min() >= 0 and noise.max() < 1 / 128 + 1e-6 and noise.std() > 1e-3

    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "improved-gan/mnist-100",
                *_sets(tiny_digits),
                "--set",
                "data.dequantize=true",
                "--iterations",
                "2",
                "--out",
                str(run),
                "--no-progress",
            ]
        )
        == 0
    )
    saved = json.loads((run / "config.json").read_text())
    assert saved["data"]["dequantize"] is True and saved["eval"]["quality_uint8"] == "round"
    notes = resolve("improved-gan/cifar10-table3-full")["meta"]["notes"]
    assert "0.75" in notes and "0.375" in notes


def test_metrics_never_imports_train():
    root = Path(ganworks.__file__).parent / "metrics"
    offenders = []
    for f in root.glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            offenders += [f"{f.name}: {n}" for n in names if n.startswith(("ganworks.train", "..train"))]
    assert offenders == []
    from ganworks.data import data_scale

    assert data_scale({"name": "mnist", "scale": ""}) == "zero_one"
    assert data_scale({"name": "imagefolder:/x", "scale": "improved_gan_cifar"}) == "improved_gan_cifar"


# ---- issue #22: bad input that used to end in a traceback or be accepted -------------------------------


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--threads", "-3"], "--threads must be between 1 and 1024, got -3"),
        (["--threads", "100000"], "--threads must be between 1 and 1024, got 100000"),
        (["--threads", "0"], "--threads must be between 1 and 1024, got 0"),
        (["--iterations", "0"], "--iterations 0 trains nothing"),
        (["--epochs", "1", "--iterations", "2"], "give --epochs or --iterations, not both"),
        (["--nproc", "0"], "--nproc must be at least 1, got 0"),
        (["--nproc", "-2"], "--nproc must be at least 1, got -2"),
        (["--out", ""], "--out is empty"),
    ],
)
def test_train_flags_that_make_no_sense_are_one_line(flags, message, tmp_path, tiny_digits, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # --out "" must not put a run into the working folder either
    code = main(["train", "improved-gan/mnist-100", *_sets(tiny_digits), *flags, "--no-progress"])
    _one_line_error(capsys, code, message)
    assert list(tmp_path.iterdir()) == []


def test_private_base_preset_is_refused(capsys):
    code = main(["train", "sngan/_cifar10-cnn", "--no-progress"])
    err = _one_line_error(capsys, code, "'sngan/_cifar10-cnn' holds settings shared by several presets")
    assert "sngan/cifar10-cnn-" in err  # names presets that extend it


@pytest.mark.parametrize(
    "best, message",
    [
        ('"FIDD"', "eval.best='FIDD' is not a number this run writes, so best.pt would never be written"),
        ('"val_error_ema"', "eval.best='val_error_ema' is measured on a validation split, and there is none"),
    ],
)
def test_eval_best_must_name_a_number_the_run_writes(best, message, tmp_path, tiny_digits, capsys):
    code = main(
        [
            "train",
            "improved-gan/mnist-100",
            *_sets(tiny_digits),
            "--set",
            f"eval.best={best}",
            "--iterations",
            "2",
            "--out",
            str(tmp_path / "run"),
            "--no-progress",
        ]
    )
    _one_line_error(capsys, code, message)
    assert not (tmp_path / "run").exists()


def test_image_folder_classes_are_picked_or_refused(tmp_path, monkeypatch):
    from ganworks.config import DEFAULTS
    from ganworks.train.build import load_split

    monkeypatch.setenv("GANWORKS_CACHE", str(tmp_path / "cache"))
    for c, value in (("a", 10), ("b", 20), ("c", 30)):
        (tmp_path / "imgs" / "train" / c).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((4, 4, 3), value, np.uint8)).save(tmp_path / "imgs" / "train" / c / f"{i}.png")
    d = dict(DEFAULTS["data"], name=f"imagefolder:{tmp_path / 'imgs'}", download=False)
    with pytest.raises(DataError, match="data.classes names folders that .* does not have: zz"):
        load_split(dict(d, classes=["zz"]), "train")
    picked = load_split(dict(d, classes=["c", "a"]), "train")
    assert picked.num_classes == 2 and picked.labels.tolist() == [0, 0, 1, 1]
    assert picked.images[:, 0, 0, 0].tolist() == [10, 10, 30, 30]
    with pytest.raises(ConfigError, match="data.classes picks class folders of an image-folder dataset"):
        load_split(dict(DEFAULTS["data"], name="digits", classes=["zz"]), "train")


def test_huge_image_is_refused_naming_the_file_before_decoding(tmp_path, monkeypatch):
    import warnings

    monkeypatch.setenv("GANWORKS_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "imgs" / "train" / "a"
    folder.mkdir(parents=True)
    Image.new("1", (12000, 12000)).save(folder / "0.png")  # 144 megapixels, a few KiB on disk
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(folder / "1.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning either
        with pytest.raises(DataError, match=r"image .*0.png is 12000x12000 pixels, too large"):
            load_dataset(f"imagefolder:{tmp_path / 'imgs'}", "train")
        from ganworks.metrics.datasets import load_image_folder

        with pytest.raises(DataError, match=r"image .*0.png is 12000x12000 pixels, too large"):
            load_image_folder(tmp_path / "imgs")


def test_cache_that_is_a_file_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "cachefile").write_text("x")
    monkeypatch.setenv("GANWORKS_CACHE", str(tmp_path / "cachefile"))
    (tmp_path / "imgs" / "train" / "a").mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "imgs" / "train" / "a" / "0.png")
    with pytest.raises(DataError, match="GANWORKS_CACHE .*cachefile is a file, not a folder"):
        load_dataset(f"imagefolder:{tmp_path / 'imgs'}", "train")


def test_data_root_that_is_a_file_says_so(tmp_path, monkeypatch, capsys):
    f = tmp_path / "existing.txt"
    f.write_text("x")
    err = _one_line_error(
        capsys,
        main(["train", "improved-gan/mnist-100", "--data-root", str(f), "--no-progress"]),
        f"the data root {f} (--data-root) is a file, not a folder",
    )
    assert "does not exist" not in err
    monkeypatch.setenv("GANWORKS_DATA", str(f))
    _one_line_error(
        capsys,
        main(["train", "improved-gan/mnist-100", "--no-progress"]),
        f"the data root {f} (GANWORKS_DATA) is a file, not a folder",
    )


def test_channel_mismatch_suggests_data_channels(capsys):
    code = main(
        [
            "train",
            "sngan/cifar10-cnn-sn",
            "--set",
            "data.name=synthetic",
            "--set",
            "data.image_size=32",
            "--device",
            "cpu",
            "--no-progress",
        ]
    )
    err = _one_line_error(capsys, code, "has 1x32x32 images but the generator 'sngan-cnn-g' is built for 3x32x32")
    assert "set data.channels=3" in err and "image_size" not in err


def test_sample_on_a_read_only_file_system_is_one_line(tiny_run, tmp_path, capsys, monkeypatch):
    import errno

    import torchvision.utils

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "ro" / "s.png"))

    monkeypatch.setattr(torchvision.utils, "save_image", read_only)
    _one_line_error(
        capsys,
        main(["sample", str(tiny_run), "--out", str(tmp_path / "ro" / "s.png")]),
        f"{tmp_path / 'ro' / 's.png'} (Read-only file system)",
    )


def test_train_out_on_a_read_only_file_system_is_one_line(tmp_path, tiny_digits, capsys, monkeypatch):
    import errno
    import pathlib

    ro = tmp_path / "ro"
    real_mkdir = pathlib.Path.mkdir

    def mkdir(self, *args, **kwargs):
        if str(self).startswith(str(ro)):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", mkdir)
    code = main(
        [
            "train",
            "improved-gan/mnist-100",
            *_sets(tiny_digits),
            "--iterations",
            "2",
            "--out",
            str(ro / "run"),
            "--no-progress",
        ]
    )
    _one_line_error(capsys, code, f"cannot write in {ro / 'run'} (Read-only file system)")


def test_in_training_is_with_one_image_per_split_is_refused(tmp_path, tiny_digits, capsys):
    code = main(
        [
            "train",
            "improved-gan/mnist-100",
            *_sets(tiny_digits),
            "--set",
            "eval.quality_samples=10",
            "--iterations",
            "2",
            "--out",
            str(tmp_path / "run"),
            "--no-progress",
        ]
    )
    _one_line_error(capsys, code, "eval.quality_samples=10 gives the Inception Score fewer than 2 images per split")
