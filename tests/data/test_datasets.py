import numpy as np
import pytest
import torch

from ganworks.data import (
    SemiSupervisedStream,
    UnsupervisedStream,
    balanced_labeled_subset,
    load_dataset,
    resolve_data_root,
    to_float,
    to_uint8,
)
from ganworks.errors import DataError


def test_digits_and_synthetic_work_offline():
    train, test = load_dataset("digits"), load_dataset("digits", "test")
    assert train.images.shape == (1500, 1, 8, 8) and test.images.shape == (297, 1, 8, 8)
    assert train.images.dtype == torch.uint8 and train.images.max() == 255
    syn = load_dataset("synthetic", image_size=12, channels=3)
    assert syn.images.shape == (1000, 3, 12, 12) and syn.labels.max() == 9


def test_mnist_from_read_only_gz_files(mnist_root):
    train = load_dataset("mnist", root=mnist_root)
    assert train.images.shape == (60000, 1, 28, 28)
    assert train.labels.bincount().tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert abs(train.images.float().div(255).mean().item() - 0.1307) < 1e-3


def test_missing_dataset_is_one_clear_line(tmp_path):
    with pytest.raises(DataError) as e:
        load_dataset("cifar10", root=tmp_path / "nothing", download=False)
    assert "not found under" in str(e.value) and "--data-root" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(DataError, match="unknown dataset"):
        load_dataset("imagenet")


def test_data_root_order(monkeypatch, tmp_path):
    monkeypatch.setenv("GANWORKS_DATA", str(tmp_path / "env"))
    assert resolve_data_root(tmp_path / "flag") == tmp_path / "flag"
    assert resolve_data_root() == tmp_path / "env"
    monkeypatch.delenv("GANWORKS_DATA")
    monkeypatch.setenv("GANWORKS_CACHE", str(tmp_path / "cache"))
    assert resolve_data_root() == tmp_path / "cache" / "data"


def test_imagefolder_and_its_cache(tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.setenv("GANWORKS_CACHE", str(tmp_path / "cache"))
    for split in ("train", "test"):
        for c, name in enumerate(["cat", "dog"]):
            (tmp_path / "imgs" / split / name).mkdir(parents=True)
            for i in range(3):
                Image.fromarray(np.full((6, 6, 3), 40 * c + i, np.uint8)).save(
                    tmp_path / "imgs" / split / name / f"{i}.png"
                )
    data = load_dataset(f"imagefolder:{tmp_path / 'imgs'}", "test")
    assert data.images.shape == (6, 3, 6, 6) and data.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert data.images[4, 0, 0, 0] == 41
    assert list((tmp_path / "cache" / "imagefolder").glob("*.npz"))
    again = load_dataset("imagefolder", "test", root=tmp_path, path="imgs")
    assert torch.equal(again.images, data.images)


def test_svhn_mat_files_map_label_10_to_0(tmp_path):
    import scipy.io

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (32, 32, 3, 5), dtype=np.uint8)
    y = np.array([[10], [1], [2], [10], [9]], dtype=np.uint8)
    (tmp_path / "svhn").mkdir()
    scipy.io.savemat(tmp_path / "svhn" / "test_32x32.mat", {"X": x, "y": y})
    data = load_dataset("svhn", "test", root=tmp_path, download=False)
    assert data.images.shape == (5, 3, 32, 32)
    assert data.labels.tolist() == [0, 1, 2, 0, 9]
    assert torch.equal(data.images[2].permute(1, 2, 0), torch.from_numpy(x[..., 2]))


def test_balanced_subset_follows_the_reference_procedure():
    labels = torch.from_numpy(np.random.default_rng(3).integers(0, 10, 5000))
    idx = balanced_labeled_subset(labels, 100, 10, seed_data=7)
    # independent re-statement: permute with RandomState(seed_data), first 10 of each class
    perm = np.random.RandomState(7).permutation(5000)
    expected = []
    for c in range(10):
        expected += [i for i in perm if labels[i] == c][:10]
    assert idx.tolist() == expected
    assert labels[idx].bincount().tolist() == [10] * 10
    with pytest.raises(DataError):
        balanced_labeled_subset(labels, 105, 10, 1)


def test_semi_supervised_stream_tiles_and_is_deterministic():
    data = load_dataset("synthetic", size=300)
    lab = balanced_labeled_subset(data.labels, 20, 10, 1)
    s = SemiSupervisedStream(data, lab, 50, "zero_one", seed=5, device="cpu")
    assert s.batches_per_epoch == 6
    lab_order, unl, unl2 = s.orders(0)
    assert sorted(unl.tolist()) == list(range(300)) and not torch.equal(unl, unl2)
    # each tile of 20 is a permutation of the labeled set
    for t in range(0, 300, 20):
        assert sorted(lab_order[t : t + 20].tolist()) == sorted(lab.tolist())
    b = s.batch(0, 2)
    assert b["x_lab"].shape == (50, 1, 28, 28) and b["y_lab"].shape == (50,)
    s2 = SemiSupervisedStream(data, lab, 50, "zero_one", seed=5, device="cpu")
    assert torch.equal(s2.batch(0, 2)["x_unl"], b["x_unl"])
    assert not torch.equal(s2.batch(1, 2)["x_unl"], b["x_unl"])
    u = UnsupervisedStream(data, 64, "minus_one_one", seed=1, device="cpu")
    assert u.batches_per_epoch == 4 and u.batch(0, 0)["x"].min() >= -1


def test_scaling_round_trip():
    x = torch.arange(256, dtype=torch.uint8)
    for scale in ("zero_one", "minus_one_one", "improved_gan_cifar"):
        assert torch.equal(to_uint8(to_float(x, scale), scale), x)
    assert abs(to_float(x, "improved_gan_cifar")[-1].item() - 127.5 / 128) < 1e-6
