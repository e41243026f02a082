"""ganworks.api: a run's models, samples, predictions and scores from Python; hubconf.py for torch.hub."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganworks import api
from ganworks.checkpoints import load_checkpoint
from ganworks.data.scaling import to_uint8
from ganworks.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_load_run_reads_the_classes_and_scale(own_run):
    run = api.load_run(own_run[0])
    assert run.class_names == ["digit0", "digit1", "digit2", "digit3"]
    assert run.scale == "zero_one" and run.preset == "improved-gan/own-data"


def test_sample_is_seeded_leaves_the_global_rng_alone_and_uses_the_averaged_g(own_run):
    run = api.load_run(own_run[0])
    torch.manual_seed(123)
    untouched = torch.rand(1)
    torch.manual_seed(123)
    a = api.sample(run, 6, seed=3)
    assert torch.equal(torch.rand(1), untouched)
    assert a.shape == (6, 1, 28, 28) and a.dtype == torch.uint8
    assert torch.equal(a, api.sample(str(own_run[0]), 6, seed=3))
    G = api.load_generator(run)
    torch.manual_seed(3)
    with torch.no_grad():
        assert torch.equal(a, to_uint8(G(G.sample_z(6)), "zero_one"))


def test_load_discriminator_gives_the_averaged_weights(own_run):
    state = load_checkpoint(own_run[0])
    D = api.load_discriminator(own_run[0])
    raw = api.load_discriminator(own_run[0], averaged=False)
    key = next(iter(state["ema"]["d"]["model"]))
    assert torch.equal(D.state_dict()[key], state["ema"]["d"]["model"][key])
    assert torch.equal(raw.state_dict()[key], state["models"]["D"][key])
    assert not torch.equal(D.state_dict()[key], raw.state_dict()[key])


def test_classify_arrays_tensors_and_folders_agree(own_run):
    run, data, _ = own_run
    files = sorted((data / "test").rglob("*.png"))
    x = np.stack([np.asarray(Image.open(f)) for f in files])  # (N, 8, 8) uint8
    from_folder = api.classify(run, data / "test")
    from_array = api.classify(run, x)
    clf = api.load_classifier(run)
    from_tensor = api.classify(clf, torch.from_numpy(x).unsqueeze(1).float() / 255)  # (N, 1, H, W) float
    assert from_folder.ids == [f.relative_to(data / "test").as_posix() for f in files]
    assert np.array_equal(from_folder.predicted, from_array.predicted)
    assert np.array_equal(from_array.predicted, from_tensor.predicted)
    assert np.allclose(from_folder.probs, from_tensor.probs) and np.allclose(from_folder.probs.sum(1), 1)
    labels = [run_class for run_class in (f.parent.name for f in files)]
    assert from_folder.errors([clf.class_names.index(c) for c in labels]) == sum(
        p != c for p, c in zip(from_folder.names, labels)
    )


def test_classify_a_colour_array_on_a_grayscale_run_converts_it_as_pil_does(own_run):
    rgb = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    grey = np.stack([np.asarray(Image.fromarray(a).convert("L")) for a in rgb])
    a, b = api.classify(own_run[0], rgb), api.classify(own_run[0], grey)
    assert np.array_equal(a.probs, b.probs)


@pytest.mark.slow
def test_metrics_scores_a_runs_samples(own_run, tmp_path):
    pytest.importorskip("torch_fidelity")
    from ganworks.metrics.inception import save_random_inception_weights

    weights = save_random_inception_weights(tmp_path / "inception.pth", seed=0)
    result = api.metrics(
        api.load_run(own_run[0]),
        metrics=("is",),
        num_samples=8,
        weights=str(weights),
        is_splits=2,
        progress=False,
        device="cpu",
    )
    assert result.protocol["n_fake"] == 8 and result.scores["IS"] >= 1.0


def test_torch_hub_loads_a_runs_weights(own_run):
    run, data, _ = own_run
    clf = torch.hub.load(str(REPO), "improved_gan_mnist", source="local", weights=str(run))
    x = np.stack([np.asarray(Image.open(f)) for f in sorted((data / "test").rglob("*.png"))])
    assert np.array_equal(clf.predict(x).probs, api.classify(run, x).probs)
    G = torch.hub.load(str(REPO), "improved_gan_mnist", source="local", weights=str(run), part="generator")
    ema_g = load_checkpoint(run)["ema"]["g"]["model"] if load_checkpoint(run)["ema"].get("g") else None
    expected = ema_g or load_checkpoint(run)["models"]["G"]
    assert all(torch.equal(G.state_dict()[k], v) for k, v in expected.items())
    fresh = torch.hub.load(str(REPO), "improved_gan_mnist", source="local", num_classes=4)
    assert fresh.class_names == ["0", "1", "2", "3"] and fresh.image_shape == (1, 28, 28)
    with pytest.raises(ConfigError, match="load it with 'improved_gan_mnist'"):
        torch.hub.load(str(REPO), "improved_gan_cifar10", source="local", weights=str(run))


TINY = {
    "model.generator.width": 0.05,
    "model.discriminator.width": 0.05,
    "model.init_examples": 20,
    "data.batch_size": 15,
    "eval.grid": 4,
}


def test_api_train_is_the_train_command(own_folder, tmp_path):
    from ganworks.cli import main

    overrides = {"data.path": str(own_folder), **TINY}
    run = api.train("improved-gan/own-data", tmp_path / "api", overrides, iterations=3, device="cpu", progress=False)
    assert isinstance(run, api.Run) and run.class_names == ["digit0", "digit1", "digit2"]
    sets = [a for k, v in overrides.items() for a in ("--set", f"{k}={v}")]
    assert (
        main(
            [
                "train",
                "improved-gan/own-data",
                *sets,
                "--iterations",
                "3",
                "--out",
                str(tmp_path / "cli"),
                "--device",
                "cpu",
                "--no-progress",
            ]
        )
        == 0
    )
    a, b = load_checkpoint(tmp_path / "api"), load_checkpoint(tmp_path / "cli")
    assert a["config"] == b["config"]
    assert all(torch.equal(v, b["models"]["D"][k]) for k, v in a["models"]["D"].items())
    resumed = api.train(None, tmp_path / "api", iterations=4, resume=True, progress=False)
    assert load_checkpoint(resumed.path)["position"]["iteration"] == 4
    with pytest.raises(ConfigError, match="already holds a run"):
        api.train("improved-gan/own-data", tmp_path / "api", overrides, iterations=3, progress=False)


def test_semi_supervised_classifier_fits_predicts_and_scores(tmp_path, monkeypatch):
    monkeypatch.setenv("GANWORKS_CACHE", str(tmp_path / "cache"))
    from sklearn.datasets import load_digits

    d = load_digits()
    x, names = (d.images / 16.0).astype(np.float32), np.array(["zero", "one", "two"])[np.minimum(d.target, 2)]
    keep = d.target < 3
    x, y = x[keep], names[keep]
    lab = np.r_[np.flatnonzero(y == "zero")[:4], np.flatnonzero(y == "one")[:4], np.flatnonzero(y == "two")[:4]]
    clf = api.SemiSupervisedClassifier(
        epochs=None, out=tmp_path / "est", overrides={**TINY, "train.iterations": 3}, device="cpu", progress=False
    )
    assert clf.fit(x[lab], y[lab], x[200:400]) is clf
    assert list(clf.classes_) == ["one", "two", "zero"] and clf.run_.class_names == ["one", "two", "zero"]
    test = x[400:460]
    proba, pred = clf.predict_proba(test), clf.predict(test)
    assert proba.shape == (60, 3) and np.allclose(proba.sum(1), 1)
    assert list(pred) == list(clf.classes_[proba.argmax(1)])
    assert clf.score(test, y[400:460]) == np.mean(pred == y[400:460])
    assert list(pred) == api.classify(clf.run_, test).names
