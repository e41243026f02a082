"""improved-gan/own-data: the models follow the images, and a run trains on labeled + unlabeled images."""

import numpy as np
import pytest
import torch

from ganworks.config import resolve
from ganworks.errors import ConfigError
from ganworks.train import Experiment

TINY = [
    "model.generator.width=0.05",
    "model.discriminator.width=0.05",
    "model.init_examples=20",
    "data.batch_size=15",
    "train.iterations=2",
    "eval.grid=4",
]


def test_grayscale_images_get_the_mnist_model_at_28x28_said_in_meta(own_folder):
    cfg = resolve("improved-gan/own-data", [f"data.path={own_folder}"])
    g, d = cfg["model"]["generator"], cfg["model"]["discriminator"]
    assert (g["name"], d["name"]) == ("improved-gan-mnist-g", "improved-gan-mnist-d")
    assert g["image_size"] == d["image_size"] == cfg["data"]["image_size"] == 28 and d["channels"] == 1
    assert d["num_classes"] == 3 and cfg["data"]["class_names"] == ["digit0", "digit1", "digit2"]
    assert cfg["data"]["labels"] == 15 and cfg["data"]["scale"] == "zero_one"
    assert (
        "resized from 8x8" in cfg["meta"]["data"]
        and "15 labeled images in 3 classes + 60 unlabeled" in cfg["meta"]["data"]
    )


def test_colour_images_get_the_cifar_recipe_and_keep_the_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv("GANWORKS_CACHE", str(tmp_path / "cache"))
    x = np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    y = np.r_[np.arange(10) % 2, -np.ones(30, int)]
    np.savez(tmp_path / "c.npz", x=x, y=y)
    cfg = resolve("improved-gan/own-data", [f"data.path={tmp_path / 'c.npz'}", "optim.lr=0.001", "train.epochs=3"])
    assert cfg["model"]["generator"]["name"] == "improved-gan-cifar-g"
    assert cfg["model"]["discriminator"]["name"] == "improved-gan-cifar-d"
    assert cfg["data"]["scale"] == "improved_gan_cifar" and cfg["objective"]["feature_matching"] == "l1"
    assert cfg["optim"]["lr"] == 0.001 and cfg["train"]["epochs"] == 3  # the user's overrides survive the switch
    assert cfg["meta"]["preset"] == "improved-gan/own-data" and "resized" not in cfg["meta"]["data"]


def test_own_data_refuses_a_labels_count_it_does_not_hold(own_folder):
    with pytest.raises(ConfigError, match="data.labels=100 but .* holds 15 labeled images"):
        resolve("improved-gan/own-data", [f"data.path={own_folder}", "data.labels=100"])


def test_labeled_images_are_the_given_ones_and_also_join_the_unlabeled_pool(own_folder):
    cfg = resolve("improved-gan/own-data", [f"data.path={own_folder}", *TINY])
    exp = Experiment(cfg, torch.device("cpu"))
    labels = exp.train_data.labels
    assert exp.stream.labeled_idx.tolist() == list(range(15)) and (labels[:15] >= 0).all() and (labels[15:] == -1).all()
    lab, unl, unl2 = exp.stream.orders(0)
    assert sorted(unl.tolist()) == list(range(75)) == sorted(unl2.tolist())  # every image, the labeled ones too
    assert set(lab.tolist()) == set(range(15))
    assert len(exp.test_data) == 30 and exp.test_data.images.shape[1:] == (1, 28, 28)


def test_own_folder_without_test_split_trains_and_eval_says_what_is_missing(own_folder, tmp_path, capsys):
    import shutil

    from ganworks.cli import main

    shutil.rmtree(own_folder / "test")
    sets = [a for o in [f"data.path={own_folder}", *TINY] for a in ("--set", o)]
    assert main(["train", "improved-gan/own-data", *sets, "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    assert "no test split" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "has no test/ folder" in err and "\n" not in err


def test_train_on_a_bad_layout_ends_in_one_line(own_folder, capsys):
    from PIL import Image

    from ganworks.cli import main

    Image.fromarray(np.zeros((10, 8), np.uint8)).save(own_folder / "unlabeled" / "odd.png")
    assert (
        main(
            [
                "train",
                "improved-gan/own-data",
                "--set",
                f"data.path={own_folder}",
                "--iterations",
                "1",
                "--out",
                str(own_folder.parent / "run"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: images of mixed sizes") and "8x10" in err[0]
    assert not (own_folder.parent / "run").exists()
