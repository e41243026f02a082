"""Intra-FID, class grids and class interpolation of conditional generators; the CLI commands."""

import numpy as np
import torch
from torch import nn

from ganworks.cli import main
from ganworks.config import resolve
from ganworks.metrics.conditional import class_grid, class_interpolation, generate_with_classes, intra_fid
from ganworks.metrics.fid import fid_from_features
from ganworks.train import Experiment, train


class ToyG(nn.Module):
    """Image = tanh(class-weighted level + 0.1·z) per pixel: the class decides the brightness."""

    num_classes = 3
    image_shape = (3, 4, 4)

    def __init__(self):
        super().__init__()
        self.levels = nn.Parameter(torch.tensor([-0.8, 0.0, 0.8]))

    def sample_z(self, n, device=None):
        return torch.randn(n, 48, device=device)

    def forward(self, z, y):
        w = y if y.is_floating_point() else nn.functional.one_hot(y, 3).float()
        return torch.tanh((w @ self.levels)[:, None] + 0.1 * z).view(-1, 3, 4, 4)


class ToyExtractor:
    """Features: per-channel means and standard deviations (6-d)."""

    device = torch.device("cpu")
    channels = 3
    name = "toy"

    def __call__(self, x):
        x = x.float() / 255
        f = torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1)
        return f, f


def test_intra_fid_is_the_mean_of_per_class_fids():
    torch.manual_seed(0)
    G = ToyG()
    ext = ToyExtractor()
    real = {c: (torch.rand(40, 3, 4, 4) * 60 + 40 + 70 * c).to(torch.uint8) for c in range(3)}
    from ganworks.metrics.fid import feature_statistics

    ref = {c: feature_statistics(ext(im)[0].double().numpy()) for c, im in real.items()}
    torch.manual_seed(1)
    got = intra_fid(G, ext, ref, per_class=30, scale="minus_one_one", device="cpu")
    torch.manual_seed(1)
    want = {}
    for c in range(3):
        imgs = generate_with_classes(G, torch.full((30,), c), "minus_one_one", "cpu")
        want[c] = fid_from_features(ext(imgs)[0].double().numpy(), ext(real[c])[0].double().numpy())
    assert got["FID_per_class"] == want
    assert abs(got["intra_FID"] - np.mean(list(want.values()))) < 1e-12
    # a generator with the classes swapped is further from the per-class references
    with torch.no_grad():
        G.levels.copy_(G.levels.flip(0))
    assert intra_fid(G, ext, ref, 30, "minus_one_one", "cpu")["intra_FID"] > got["intra_FID"]


def test_class_grid_and_interpolation():
    torch.manual_seed(0)
    G = ToyG()
    grid = class_grid(G, [2, 0], per_class=4, scale="minus_one_one", device="cpu")
    assert grid.shape == (8, 3, 4, 4) and grid[:4].float().mean() > grid[4:].float().mean()
    inter = class_interpolation(G, 0, 2, n_z=2, steps=5, scale="minus_one_one", device="cpu")
    assert inter.shape == (10, 3, 4, 4)
    means = inter.float().mean(dim=(1, 2, 3)).view(2, 5)
    assert torch.all(means[:, 1:] > means[:, :-1])  # brighter from class 0 towards class 2
    torch.manual_seed(3)
    z = G.sample_z(1)
    end = generate_with_classes(G, torch.tensor([2]), "minus_one_one", "cpu", z=z)
    mid = generate_with_classes(G, torch.tensor([[0.5, 0.0, 0.5]]), "minus_one_one", "cpu", z=z)
    assert end.float().mean() > mid.float().mean()


def test_cli_sample_class_grid_and_interpolate(tmp_path, capsys):
    over = [
        "data.name=synthetic",
        "data.image_size=32",
        "data.channels=3",
        "data.batch_size=8",
        "data.train_limit=64",
        "data.test_limit=16",
        "model.generator.width=0.04",
        "model.discriminator.width=0.04",
        "objective.n_gen_samples=8",
        "objective.n_dis=1",
        "train.iterations=1",
        "eval.grid=4",
        "eval.quality_samples=0",
    ]
    exp = Experiment(resolve("sngan/cifar10-resnet-projection", over), torch.device("cpu"))
    run = tmp_path / "run"
    train(exp, run, progress=False)
    assert (
        main(["sample", str(run), "--class", "3", "--n", "4", "--out", str(tmp_path / "c3.png"), "--device", "cpu"])
        == 0
    )
    assert (
        main(
            [
                "interpolate",
                str(run),
                "--classes",
                "1",
                "7",
                "--n-z",
                "2",
                "--steps",
                "3",
                "--out",
                str(tmp_path / "i.png"),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "class-grid",
                str(run),
                "--classes",
                "0",
                "1",
                "--per-class",
                "3",
                "--out",
                str(tmp_path / "g.png"),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    for name in ("c3.png", "i.png", "g.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert main(["sample", str(run), "--class", "10", "--out", str(tmp_path / "bad.png"), "--device", "cpu"]) == 2
    assert "out of range" in capsys.readouterr().err
