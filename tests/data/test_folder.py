"""The lazily read class-folder dataset (ILSVRC2012 train layout) and its stream."""

import numpy as np
import pytest
import torch
from PIL import Image

from ganworks.config import resolve
from ganworks.data.folder import ClassFolderDataset, FolderStream, reference_transform
from ganworks.errors import DataError
from ganworks.train import Experiment, train


def _image(w, h, seed, mode="RGB"):
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(h, w, 3) if mode == "RGB" else (h, w), dtype=np.uint8)
    return Image.fromarray(arr, mode)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "train"
    sizes = {"n02": [(40, 30), (24, 36), (32, 32)], "n01": [(50, 20), (33, 33)], "n03": [(30, 45), (36, 24)]}
    for k, (cls, shapes) in enumerate(sizes.items()):
        (root / cls).mkdir(parents=True)
        for i, (w, h) in enumerate(shapes):
            _image(w, h, 10 * k + i, "L" if (k, i) == (0, 1) else "RGB").save(root / cls / f"{cls}_{i}.png")
    (root / "n01" / "notes.txt").write_text("not an image")
    return root


def test_transform_against_a_hand_cropped_image():
    img = _image(40, 30, 0)  # w 40, h 30: the centre square is columns 5..34
    arr = np.asarray(img)
    same = reference_transform(img, 30)
    assert same.dtype == torch.uint8 and same.shape == (3, 30, 30)
    assert np.array_equal(same.permute(1, 2, 0).numpy(), arr[:, 5:35])
    want = Image.fromarray(arr[:, 5:35]).resize((16, 16), Image.BILINEAR)
    assert np.array_equal(reference_transform(img, 16).permute(1, 2, 0).numpy(), np.asarray(want))
    tall = _image(24, 37, 1)  # h 37: rows 6..29
    assert np.array_equal(reference_transform(tall, 24).permute(1, 2, 0).numpy(), np.asarray(tall)[6:30])
    grey = reference_transform(_image(8, 8, 2, "L"), 8)
    assert grey.shape == (3, 8, 8) and torch.equal(grey[0], grey[2])


def test_class_index_subset_order_and_limit(folder, tmp_path):
    ds = ClassFolderDataset(folder, 16)
    assert ds.class_names == ["n01", "n02", "n03"] and len(ds) == 7 and ds.num_classes == 3
    x, y = ds[0]
    assert x.shape == (3, 16, 16) and x.dtype == torch.uint8 and y == 0
    assert ds.labels.tolist() == [0, 0, 1, 1, 1, 2, 2]
    order = tmp_path / "dirname_to_label.txt"
    order.write_text("n03 0\nn01 1\nn02 2\n")
    ds = ClassFolderDataset(folder, 16, class_order=order)
    assert ds.class_names == ["n03", "n01", "n02"] and ds.labels.tolist() == [0, 0, 1, 1, 2, 2, 2]
    sub = ClassFolderDataset(folder, 16, class_order=order, classes=["n02", "n03"], limit_per_class=1)
    assert sub.class_names == ["n03", "n02"] and sub.labels.tolist() == [0, 1] and sub.num_classes == 2
    assert sub.files == ["n03/n03_0.png", "n02/n02_0.png"]
    with pytest.raises(DataError, match="n09"):
        ClassFolderDataset(folder, 16, classes=["n09"])
    with pytest.raises(DataError):
        ClassFolderDataset(tmp_path / "nowhere", 16)


def test_stream_visits_each_example_once_per_epoch_across_ranks(folder):
    ds = ClassFolderDataset(folder, 8)
    seen = []
    for rank in range(2):
        s = FolderStream(ds, 1, "imagenet", seed=3, device="cpu", workers=0, rank=rank, world_size=2)
        assert s.batches_per_epoch == 3
        seen += s.order(0).tolist()
    assert sorted(seen) == sorted(set(seen)) and len(seen) == 6  # 7 images, 3 per rank, none twice
    s = FolderStream(ds, 2, "imagenet", seed=3, device="cpu", workers=0)
    order = s.order(1)
    b = s.batch(1, 1)
    want = torch.stack([ds[i][0] for i in order[2:4]]).float() / 128 - 1
    assert torch.all(b["x"] >= want) and torch.all(b["x"] < want + 1 / 128) and not torch.equal(b["x"], want)
    assert b["y"].tolist() == ds.labels[order[2:4]].tolist()
    b2 = s.batch(1, 2)  # continues the same loader
    assert b2["y"].tolist() == ds.labels[order[4:6]].tolist()


def test_conditional_preset_trains_on_a_folder(folder, tmp_path):
    over = [
        "data.name=imagenet",
        f"data.path={folder}",
        "data.image_size=32",
        "data.batch_size=2",
        "data.workers=1",
        "data.limit_per_class=2",
        "model.generator.width=0.04",
        "model.discriminator.width=0.04",
        "model.generator.num_classes=3",
        "model.discriminator.num_classes=3",
        "objective.n_gen_samples=2",
        "objective.n_dis=1",
        "train.iterations=2",
        "eval.grid=4",
        "eval.quality_samples=0",
        "data.scale=imagenet",
    ]
    cfg = resolve("sngan/cifar10-resnet-projection", over)
    exp = Experiment(cfg, torch.device("cpu"))
    assert len(exp.train_data) == 6 and exp.test_data is None
    row = train(exp, tmp_path / "run", progress=False)
    assert row["iteration"] == 2 and np.isfinite(row["loss_d"])
