"""Speed of Inception feature extraction: ganworks vs torch-fidelity, plus the classifier-score pipeline.

Runs on the CPU (or ``--device cuda``).  Both pipelines get the same uint8 images and the same
weights file; each is timed end to end for an Inception Score (network construction + feature
extraction + score) and for feature extraction alone, best of ``--repeats`` interleaved runs.
The agreement of the two IS values (OpenAI protocol = torch-fidelity with ``samples_shuffle=False``)
and of the raw features is recorded too.

Weights: ``--inception-weights`` / $GANWORKS_INCEPTION_WEIGHTS, else a randomly initialised file
(the speed is the same; the scores then mean nothing and the JSON says so).

    python benchmarks/metrics_speed.py --num-images 200 --classifier classifier-mnist.pt

Writes ``benchmarks/results/metrics_speed_<device>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import device_name  # noqa: E402

from ganworks.metrics.datasets import ImageTensorDataset  # noqa: E402


def load_images(n, data_root):
    from ganworks.metrics.datasets import load_split

    src = Path(data_root or os.environ.get("GANWORKS_DATA", "")) / "cifar10-jpeg"
    if src.is_dir():
        x, _, _ = load_split("imagefolder:" + str(src), "test", None)
        idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:n]
        return x[idx], f"CIFAR-10 (JPEG q75) test, {n} random images"
    g = torch.Generator().manual_seed(0)
    return (torch.rand(n, 3, 32, 32, generator=g) * 255).to(torch.uint8), f"{n} uniform-noise 32x32 images"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num-images", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all allowed CPUs)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--inception-weights", default=os.environ.get("GANWORKS_INCEPTION_WEIGHTS"))
    ap.add_argument("--classifier", default=None, help="classifier file for the classifier-score pipeline")
    ap.add_argument("--classifier-images", type=int, default=10000)
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--out-dir", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args(argv)

    import torch_fidelity
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    from torch_fidelity.utils import get_featuresdict_from_dataset

    from ganworks.metrics.extract import available_cpus, extract_features
    from ganworks.metrics.inception import InceptionExtractor, save_random_inception_weights
    from ganworks.metrics.inception_score import inception_score

    torch.set_num_threads(args.threads or available_cpus())
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    tmp = tempfile.TemporaryDirectory()
    weights, weights_kind = args.inception_weights, "given"
    if not weights:
        weights, weights_kind = save_random_inception_weights(Path(tmp.name) / "random.pth"), "random-init"
    images, image_desc = load_images(args.num_images, args.data_root)
    n = len(images)
    bs, splits = args.batch_size, 10

    def ours_end_to_end():
        ext = InceptionExtractor(weights, device=device)
        _, logits = extract_features(ext, images, batch_size=bs, progress=False)
        return inception_score(logits, splits=splits)["IS"]

    def tf_end_to_end():
        r = torch_fidelity.calculate_metrics(
            input1=ImageTensorDataset(images),
            isc=True,
            isc_splits=splits,
            samples_shuffle=False,
            feature_extractor_weights_path=str(weights),
            cuda=cuda,
            cache=False,
            verbose=False,
            batch_size=bs,
        )
        return r["inception_score_mean"]

    ours_ext = InceptionExtractor(weights, device=device)
    tf_ext = FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=str(weights)
    ).to(device)

    def ours_extract():
        return extract_features(ours_ext, images, batch_size=bs, progress=False)

    def tf_extract():
        d = get_featuresdict_from_dataset(ImageTensorDataset(images), tf_ext, bs, cuda, False, False)
        return d["2048"].double().numpy(), d["logits_unbiased"].double().numpy()

    times = {k: [] for k in ("ours_e2e", "tf_e2e", "ours_extract", "tf_extract")}
    vals = {}
    for rep in range(args.repeats):
        for key, fn in (
            ("ours_e2e", ours_end_to_end),
            ("tf_e2e", tf_end_to_end),
            ("ours_extract", ours_extract),
            ("tf_extract", tf_extract),
        ):
            t = time.perf_counter()
            vals[key] = fn()
            times[key].append(time.perf_counter() - t)
            print(f"repeat {rep + 1}: {key:13s} {times[key][-1]:7.2f} s", file=sys.stderr)
    best = {k: min(v) for k, v in times.items()}
    f_o, l_o = vals["ours_extract"]
    f_t, l_t = vals["tf_extract"]
    is_rel = abs(vals["ours_e2e"] - vals["tf_e2e"]) / abs(vals["tf_e2e"])
    feat_rel = float(np.max(np.abs(f_o - f_t)) / (np.max(np.abs(f_t)) + 1e-30))

    clf = None
    if args.classifier:
        from ganworks.metrics.classifier import ClassifierExtractor
        from ganworks.metrics.datasets import load_split

        ce = ClassifierExtractor(args.classifier, device=device)
        name = (
            ce.dataset
            if ce.dataset != "cifar10-jpeg"
            else "imagefolder:" + str(Path(args.data_root or os.environ.get("GANWORKS_DATA", "")) / "cifar10-jpeg")
        )
        cx, _, _ = load_split(name, "test", args.data_root)
        cx = cx[: args.classifier_images]
        ct = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            _, cl = extract_features(ce, cx, batch_size=500, progress=False)
            inception_score(cl, splits=splits)
            ct.append(time.perf_counter() - t)
        clf = {
            "classifier": ce.name,
            "classifier_file_sha256": ce.weights_sha256,
            "images": len(cx),
            "batch_size": 500,
            "seconds": round(min(ct), 3),
            "images_per_s": round(len(cx) / min(ct), 1),
        }

    result = {
        "benchmark": "Inception feature extraction speed, ganworks vs torch-fidelity calculate_metrics",
        "device": str(device) if cuda else f"cpu: {device_name(torch.device('cpu'))}",
        "cpus_allowed": available_cpus(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "torch_fidelity": torch_fidelity.__version__,
        "python": platform.python_version(),
        "settings": {
            "images": image_desc,
            "n": n,
            "batch_size": bs,
            "repeats": args.repeats,
            "is_splits": splits,
            "weights": weights_kind,
            "weights_note": "random weights: speed is representative, score values are not"
            if weights_kind == "random-init"
            else "given weights file",
            "torch_fidelity_num_workers": "min(4, 2*cpu_count) (its default)",
            "ganworks_num_workers": "0 (in-memory tensor)",
        },
        "seconds_best": {k: round(v, 3) for k, v in best.items()},
        "images_per_s": {
            "ganworks_end_to_end_IS": round(n / best["ours_e2e"], 2),
            "torch_fidelity_calculate_metrics_IS": round(n / best["tf_e2e"], 2),
            "ganworks_extraction_only": round(n / best["ours_extract"], 2),
            "torch_fidelity_extraction_only": round(n / best["tf_extract"], 2),
        },
        "speed_ratio_end_to_end": round(best["tf_e2e"] / best["ours_e2e"], 3),
        "speed_ratio_extraction": round(best["tf_extract"] / best["ours_extract"], 3),
        "agreement": {
            "IS_ganworks": vals["ours_e2e"],
            "IS_torch_fidelity": vals["tf_e2e"],
            "IS_relative_difference": is_rel,
            "features_max_rel_difference": feat_rel,
            "within_1e-4": bool(is_rel <= 1e-4),
        },
        "classifier_pipeline": clf,
    }
    tag = "cuda" if cuda else "cpu"
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"metrics_speed_{tag}.json").write_text(json.dumps(result, indent=2) + "\n")
    ips = result["images_per_s"]
    md = [
        f"# Metrics speed ({result['device']}, {result['torch_threads']} threads, torch {torch.__version__}, "
        f"torch-fidelity {torch_fidelity.__version__})",
        "",
        f"{image_desc}; batch {bs}; best of {args.repeats}; weights: {weights_kind}.",
        "",
        "| pipeline | ganworks img/s | torch-fidelity img/s | ratio (ours / tf) |",
        "|---|---|---|---|",
        f"| IS end to end (load net + extract + score) | {ips['ganworks_end_to_end_IS']} | "
        f"{ips['torch_fidelity_calculate_metrics_IS']} | {result['speed_ratio_end_to_end']} |",
        f"| feature extraction only | {ips['ganworks_extraction_only']} | {ips['torch_fidelity_extraction_only']} | "
        f"{result['speed_ratio_extraction']} |",
        "",
        f"IS agreement: ganworks {vals['ours_e2e']:.6f} vs torch-fidelity {vals['tf_e2e']:.6f} "
        f"(relative difference {is_rel:.2e}); max relative feature difference {feat_rel:.2e}.",
    ]
    if clf:
        md += [
            "",
            f"Classifier-score pipeline ({clf['classifier']}, {clf['images']} images, extraction + IS): "
            f"**{clf['images_per_s']} img/s**.",
        ]
    (out / f"metrics_speed_{tag}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
