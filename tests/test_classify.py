"""`ganworks classify`: a trained run's averaged D on new images, into a CSV."""

import csv
import json

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ganworks.checkpoints import load_discriminators
from ganworks.cli import main


def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_classify_errors_on_the_runs_test_folder_equal_evals_averaged_count(own_run, tmp_path, capsys):
    run, data, root = own_run
    assert main(["eval", str(run), "--json", str(tmp_path / "eval.json")]) == 0
    expected = json.loads((tmp_path / "eval.json").read_text())["test_errors_averaged"]
    assert main(["classify", str(run), str(data / "test"), "--out", str(tmp_path / "p.csv")]) == 0
    rows = _read(tmp_path / "p.csv")
    assert len(rows) == 40 == len(list((data / "test").rglob("*.png")))
    errors = sum(r["predicted"] != r["file"].split("/")[0] for r in rows)
    assert errors == expected
    assert f"{expected:5d} / 40 errors" in capsys.readouterr().out


def test_classify_probabilities_are_the_softmax_of_the_averaged_d_on_the_resized_image(own_run, tmp_path):
    run, data, _ = own_run
    assert main(["classify", str(run), str(data / "test"), "--out", str(tmp_path / "p.csv")]) == 0
    rows = _read(tmp_path / "p.csv")
    _, D_avg, cfg = load_discriminators(run)
    names = cfg["data"]["class_names"]
    for row in rows[:3]:
        pixels = torch.from_numpy(np.array(Image.open(data / "test" / row["file"]))).float()[None, None]
        x = F.interpolate(pixels, size=(28, 28), mode="bilinear", align_corners=False).round().clamp(0, 255) / 255
        with torch.no_grad():
            p = torch.softmax(D_avg(x), 1)[0].numpy()
        got = np.array([float(row[f"prob_{c}"]) for c in names])
        assert np.allclose(got, p, atol=2e-6) and row["predicted"] == names[int(p.argmax())]


def test_classify_top_k_writes_the_k_most_probable_classes(own_run, tmp_path):
    run, data, _ = own_run
    main(["classify", str(run), str(data / "unlabeled"), "--out", str(tmp_path / "all.csv")])
    main(["classify", str(run), str(data / "unlabeled"), "--out", str(tmp_path / "top.csv"), "--top-k", "2"])
    full, top = _read(tmp_path / "all.csv"), _read(tmp_path / "top.csv")
    assert list(top[0]) == ["file", "predicted", "class_1", "prob_1", "class_2", "prob_2"]
    assert [r["file"] for r in top] == [r["file"] for r in full] and any("/" in r["file"] for r in top)  # nested
    for f, t in zip(full, top):
        probs = sorted(((float(v), k[5:]) for k, v in f.items() if k.startswith("prob_")), reverse=True)
        assert (t["class_1"], t["class_2"]) == (probs[0][1], probs[1][1]) == (f["predicted"], probs[1][1])
        assert float(t["prob_1"]) == probs[0][0]


def test_classify_npz_gives_the_same_predictions_as_the_folder_with_an_index_column(own_run, tmp_path):
    run, data, _ = own_run
    files = sorted((data / "test").rglob("*.png"))
    x = np.stack([np.asarray(Image.open(f)) for f in files])
    np.savez(tmp_path / "new.npz", x=(x / 255.0).astype(np.float64))  # float in [0, 1], (N, H, W)
    main(["classify", str(run), str(data / "test"), "--out", str(tmp_path / "folder.csv")])
    assert main(["classify", str(run), str(tmp_path / "new.npz"), "--out", str(tmp_path / "npz.csv")]) == 0
    a, b = _read(tmp_path / "folder.csv"), _read(tmp_path / "npz.csv")
    assert [r["index"] for r in b] == [str(i) for i in range(len(files))]
    assert [r["predicted"] for r in a] == [r["predicted"] for r in b]


def test_classify_refuses_to_overwrite_a_file_it_did_not_write(own_run, tmp_path, capsys):
    run, data, _ = own_run
    precious = tmp_path / "notes.csv"
    precious.write_text("my,own\n1,2\n")
    assert main(["classify", str(run), str(data / "test"), "--out", str(precious)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --out") and "--force" in err and "\n" not in err
    assert precious.read_text() == "my,own\n1,2\n"
    assert main(["classify", str(run), str(data / "test"), "--out", str(precious), "--force"]) == 0
    assert precious.read_text().startswith("file,predicted,")
    # its own earlier output it may overwrite
    assert main(["classify", str(run), str(data / "test"), "--out", str(precious), "--top-k", "1"]) == 0
    assert precious.read_text().startswith("file,predicted,class_1,prob_1\n")


def test_classify_bad_inputs_end_in_one_line(own_run, tmp_path, capsys):
    run, data, _ = own_run
    cases = [
        [str(run), str(tmp_path / "missing"), "--out", str(tmp_path / "a.csv")],
        [str(run), str(data / "test"), "--out", str(tmp_path / "b.csv"), "--top-k", "9"],
        [str(tmp_path), str(data / "test"), "--out", str(tmp_path / "c.csv")],
    ]
    for argv in cases:
        assert main(["classify", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err, err
