"""Your own labeled + unlabeled images (dataset ``own``): layouts, pixels, labels, and bad layouts in one line."""

import numpy as np
import pytest
import torch
from PIL import Image

from ganworks.data import load_dataset
from ganworks.errors import DataError


def _png_pixels(paths):
    return np.stack([np.asarray(Image.open(p)) for p in paths])


def test_own_folder_puts_labeled_images_first_and_marks_unlabeled_ones_minus_one(own_folder):
    data = load_dataset("own", "train", path=str(own_folder))
    assert data.class_names == ("digit0", "digit1", "digit2") and data.num_classes == 3
    labeled = sorted((own_folder / "labeled").glob("*/*.png"))
    unlabeled = sorted((own_folder / "unlabeled").rglob("*.png"))
    assert len(unlabeled) == 60 and any(len(p.relative_to(own_folder).parts) == 4 for p in unlabeled)  # nested
    assert len(data) == len(labeled) + len(unlabeled) == 75
    expected_labels = [int(p.parent.name[-1]) for p in labeled] + [-1] * len(unlabeled)
    assert data.labels.tolist() == expected_labels
    assert data.labeled.tolist() == list(range(15))
    assert data.images.shape == (75, 1, 8, 8) and data.images.dtype == torch.uint8
    assert np.array_equal(data.images[:, 0].numpy(), _png_pixels(labeled + unlabeled))


def test_own_folder_test_split_maps_class_folders_to_the_labeled_classes(own_folder, tmp_path):
    # a test folder that lacks a class keeps the training class indices
    for p in (own_folder / "test" / "digit0").iterdir():
        p.unlink()
    (own_folder / "test" / "digit0").rmdir()
    test = load_dataset("own", "test", path=str(own_folder))
    files = sorted((own_folder / "test").glob("*/*.png"))
    assert test.labels.tolist() == [int(p.parent.name[-1]) for p in files] and set(test.labels.tolist()) == {1, 2}
    assert np.array_equal(test.images[:, 0].numpy(), _png_pixels(files))


def test_own_npz_layouts_and_dtypes_give_the_same_images(tmp_path):
    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, (12, 5, 6), dtype=np.uint8)
    y = np.array([0, 1, 2, 0, 1, 2, -1, -1, -1, -1, -1, -1])
    np.savez(tmp_path / "hw.npz", x=u8, y=y)
    np.savez(tmp_path / "hwc_float.npz", x=(u8[..., None] / 255.0).astype(np.float32), y=y)
    a = load_dataset("own", "train", path=str(tmp_path / "hw.npz"))
    b = load_dataset("own", "train", path=str(tmp_path / "hwc_float.npz"))
    assert a.images.shape == (12, 1, 5, 6) and torch.equal(a.images, b.images)
    assert torch.equal(a.images[:, 0], torch.from_numpy(u8[np.argsort(np.where(y < 0, 99, y), kind="stable")]))
    assert a.labels.tolist() == [0, 0, 1, 1, 2, 2, -1, -1, -1, -1, -1, -1] and a.class_names == ("0", "1", "2")
    rgb = rng.integers(0, 256, (12, 4, 4, 3), dtype=np.uint8)
    np.savez(tmp_path / "rgb.npz", x=rgb, y=y, classes=np.array(["cat", "dog", "fox"]))
    c = load_dataset("own", "train", path=str(tmp_path / "rgb.npz"))
    assert c.images.shape == (12, 3, 4, 4) and c.class_names == ("cat", "dog", "fox")
    assert torch.equal(c.images[0], torch.from_numpy(rgb[0]).permute(2, 0, 1))


@pytest.mark.parametrize(
    "problem, match",
    [
        ("empty_class", "no labeled images for class 'digit2'"),
        ("mixed_sizes", "images of mixed sizes: .* is 9x8 but .* is 8x8"),
        ("no_labeled_folder", "has no labeled/ folder"),
        ("one_class", "at least 2 classes"),
        ("loose_labeled_file", "is not inside a class folder"),
    ],
)
def test_own_folder_bad_layout_is_one_line(own_folder, problem, match):
    if problem == "empty_class":
        for p in (own_folder / "labeled" / "digit2").iterdir():
            p.unlink()
    elif problem == "mixed_sizes":
        Image.fromarray(np.zeros((8, 9), np.uint8)).save(own_folder / "unlabeled" / "odd.png")
    elif problem == "no_labeled_folder":
        (own_folder / "labeled").rename(own_folder / "labelled")
    elif problem == "one_class":
        for c in ("digit1", "digit2"):
            for p in (own_folder / "labeled" / c).iterdir():
                p.unlink()
            (own_folder / "labeled" / c).rmdir()
    elif problem == "loose_labeled_file":
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(own_folder / "labeled" / "stray.png")
    with pytest.raises(DataError, match=match) as e:
        load_dataset("own", "train", path=str(own_folder))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "y, classes, match",
    [
        ([0, -1, -1, -1], ["a", "b", "c"], "1 labeled images for 3 classes"),
        ([0, 0, 2, -1], None, "no labeled images for class '1'"),
        ([0, 1, 5, -1], ["a", "b"], "values outside -1..1"),
    ],
)
def test_own_npz_bad_labels_are_one_line(tmp_path, y, classes, match):
    extra = {"classes": np.array(classes)} if classes else {}
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 3, 3), np.uint8), y=np.array(y), **extra)
    with pytest.raises(DataError, match=match):
        load_dataset("own", "train", path=str(tmp_path / "d.npz"))


def test_own_npz_float_outside_unit_range_is_refused(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.full((4, 3, 3), 255.0), y=np.array([0, 1, -1, -1]))
    with pytest.raises(DataError, match=r"float but not in \[0, 1\]"):
        load_dataset("own", "train", path=str(tmp_path / "d.npz"))
