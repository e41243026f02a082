"""Every preset resolves, builds and trains 2 iterations on CPU at a tiny width and batch."""

import pytest
import torch

from ganworks.config import list_presets, load_preset, resolve
from ganworks.train import Experiment, train

PRESETS = list_presets()


def tiny(cfg: dict) -> list[str]:
    g, d = cfg["model"]["generator"], cfg["model"]["discriminator"]
    size = g.get("image_size", 28 if "mnist" in g["name"] else 32)
    channels = 1 if "mnist" in g["name"] else 3
    over = [
        "data.name=synthetic",
        f"data.image_size={size}",
        f"data.channels={channels}",
        "data.batch_size=8",
        "model.generator.width=0.04",
        "model.discriminator.width=0.04",
        "train.iterations=2",
        "eval.grid=4",
        "eval.quality_samples=0",
        "eval.batch_size=50",
        "data.test_limit=50",
        "data.train_limit=200",
    ]
    if cfg["data"]["labels"] or cfg["data"]["name"] == "own":  # own: every labeled image at data.path
        over.append("data.labels=20")
    if cfg["model"]["init_examples"]:
        over.append("model.init_examples=16")
    if cfg["optim"]["decay_start"]:  # a decay starting after the 2 iterations (e.g. 400K) is an error
        over.append("optim.decay_start=0")
    if cfg["objective"].get("n_gen_samples"):
        over.append("objective.n_gen_samples=8")
    if "vbn_ref_size" in g:
        over.append("model.generator.vbn_ref_size=8")
    if "num_kernels" in d or d.get("variant") == "md":
        over.append("model.discriminator.num_kernels=" + ("0" if d.get("num_kernels") == 0 else "4"))
    return over


def test_there_is_a_preset_for_every_table_row():
    assert len([p for p in PRESETS if p.startswith("improved-gan/mnist-")]) == 4
    assert len([p for p in PRESETS if p.startswith("improved-gan/cifar10-") and "table3" not in p]) == 4
    assert len([p for p in PRESETS if p.startswith("improved-gan/svhn-")]) == 3
    assert len([p for p in PRESETS if "table3" in p]) == 6
    assert (
        len([p for p in PRESETS if p.startswith("sngan/cifar10-")]) == 11 + 6 + 1
    )  # Table 2 rows + settings A-F + projection
    assert len([p for p in PRESETS if p.startswith("sngan/stl10-")]) == 11
    assert len([p for p in PRESETS if p.startswith("sngan/imagenet")]) == 4
    for name in PRESETS:
        meta = load_preset(name)["meta"]
        assert meta["paper"] and meta["table"] and meta["row"] and meta["published"], name


@pytest.mark.slow
@pytest.mark.parametrize("name", PRESETS)
def test_preset_trains_two_iterations(name, tmp_path):
    cfg = resolve(name, tiny(load_preset(name)))
    exp = Experiment(cfg, torch.device("cpu"))
    row = train(exp, tmp_path, progress=False)
    assert row["iteration"] == 2
    losses = [v for k, v in row.items() if k.startswith("loss_")]
    assert losses and all(torch.isfinite(torch.tensor(v)) for v in losses)
    if cfg["model"]["discriminator"].get("norm") == "spectral":
        assert 0 < row["sigma_max"] < 1e6
