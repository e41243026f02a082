"""``compute_metrics``: IS / FID / KID of an image source against a reference, with its protocol.

Ties the pieces together: image sources (:mod:`.datasets`), extractors (:mod:`.inception`,
:mod:`.classifier`), batched extraction (:mod:`.extract`), the pure score functions
(:mod:`.inception_score`, :mod:`.fid`, :mod:`.kid`) and the reference-statistics cache
(:mod:`.reference`).  Defaults come from :data:`.defaults.DEFAULTS`.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from ganworks.device import pick_device
from ganworks.errors import ConfigError, DataError
from ganworks.metrics.defaults import DEFAULTS
from ganworks.metrics.result import MetricsResult

KNOWN_METRICS = ("is", "fid", "kid")


def make_extractor(extractor="inception", weights=None, classifier=None, device="cpu"):
    """An :class:`InceptionExtractor` or a :class:`ClassifierExtractor`."""
    device = pick_device(device)
    if classifier is not None or extractor == "classifier":
        if classifier is None:
            raise ConfigError("the classifier extractor needs a classifier file (--classifier PATH)")
        from ganworks.metrics.classifier import ClassifierExtractor

        return ClassifierExtractor(classifier, device=device)
    if extractor != "inception":
        raise ConfigError(f"unknown extractor '{extractor}' (inception or classifier)")
    from ganworks.metrics.inception import InceptionExtractor

    return InceptionExtractor(weights, device=device)


def score_names(extractor) -> dict:
    """Result keys: plain IS/FID/KID for Inception, ``<dataset>-classifier-FID`` etc. for classifiers."""
    prefix = "" if extractor.kind == "inception" else f"{extractor.name}-"
    return {k: prefix + k for k in ("IS", "IS_std", "FID", "KID", "KID_std")}


def _is_run_dir(p: Path) -> bool:
    if p.is_file():
        return p.suffix.lower() in (".pt", ".pth", ".ckpt")
    return any((p / n).exists() for n in ("checkpoints", "config.json", "config.toml", "last.pt")) or any(
        p.glob("*.pt")
    )


def load_input(source, num_samples=DEFAULTS["num_samples"], device="cpu", progress=True, batch_size=100):
    """(uint8 images N×C×H×W, description dict) from a tensor/array, folder, .npz or run dir/checkpoint."""
    from ganworks.metrics import datasets as ds

    if isinstance(source, np.ndarray):
        source = torch.from_numpy(source)
    if isinstance(source, torch.Tensor):
        return source, {"kind": "tensor"}
    p = Path(source)
    if not p.exists():
        raise DataError(f"input {p} does not exist (expected an image folder, an .npz or a run directory)")
    if p.is_file() and p.suffix.lower() == ".npz":
        return ds.load_npz_images(p), {"kind": "npz", "path": str(p)}
    if _is_run_dir(p):
        from ganworks.checkpoints import load_generator
        from ganworks.data.scaling import data_scale

        dev = pick_device(device)
        g, config = load_generator(str(p), device=dev)
        scale = data_scale(config["data"])
        imgs = ds.generate_images(g, num_samples, scale, dev, batch_size=batch_size, progress=progress)
        return imgs, {"kind": "generator", "path": str(p), "scale": scale, "num_samples": num_samples}
    if p.is_dir():
        return ds.load_image_folder(p), {"kind": "image_folder", "path": str(p)}
    raise DataError(f"input {p}: not an image folder, an .npz or a run directory/checkpoint")


def scores_from_features(
    feats,
    logits,
    metrics=DEFAULTS["metrics"],
    ref=None,
    names=None,
    is_splits=DEFAULTS["is_splits"],
    is_protocol=DEFAULTS["is_protocol"],
    is_seed=DEFAULTS["is_seed"],
    kid_subsets=DEFAULTS["kid_subsets"],
    kid_subset_size=DEFAULTS["kid_subset_size"],
    kid_degree=DEFAULTS["kid_degree"],
    kid_gamma=DEFAULTS["kid_gamma"],
    kid_coef0=DEFAULTS["kid_coef0"],
    kid_seed=DEFAULTS["kid_seed"],
    fid_imag_tol=DEFAULTS["fid_imag_tol"],
):
    """(scores, protocol fragment, notes) from fake features/logits and reference stats ``ref``
    (a dict with ``mu``, ``sigma`` and optionally ``features``)."""
    from ganworks.metrics.fid import FIDWarning, feature_statistics, frechet_distance
    from ganworks.metrics.inception_score import inception_score
    from ganworks.metrics.kid import kernel_inception_distance

    names = names or {k: k for k in ("IS", "IS_std", "FID", "KID", "KID_std")}
    if is_protocol not in ("openai", "torch-fidelity"):
        raise ConfigError(f"unknown IS protocol '{is_protocol}' (openai or torch-fidelity)")
    scores, proto, notes = {}, {}, []
    if "is" in metrics:
        if len(logits) < is_splits:
            raise DataError(
                f"Inception Score with {is_splits} splits needs at least {is_splits} images, got {len(logits)}"
            )
        shuffle = is_protocol == "torch-fidelity"
        r = inception_score(logits, splits=is_splits, shuffle=shuffle, seed=is_seed)
        scores[names["IS"]], scores[names["IS_std"]] = r["IS"], r["IS_std"]
        proto.update(
            is_splits=is_splits,
            is_protocol=is_protocol,
            is_shuffled=shuffle,
            is_shuffle_seed=is_seed if shuffle else None,
            is_split_scores=r["split_scores"],
            is_logits_dim=int(logits.shape[1]),
        )
    if "fid" in metrics:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", FIDWarning)
            mu, sigma = feature_statistics(feats)
            scores[names["FID"]] = frechet_distance(mu, sigma, ref["mu"], ref["sigma"], imag_tol=fid_imag_tol)
        for w in caught:
            if issubclass(w.category, FIDWarning):
                notes.append(str(w.message))
                warnings.warn(w.message, FIDWarning, stacklevel=2)
        proto.update(fid_feature_dim=int(feats.shape[1]))
    if "kid" in metrics:
        if ref.get("features") is None:
            notes.append("KID skipped: the reference statistics file has no 'features' array")
        else:
            r = kernel_inception_distance(
                feats,
                ref["features"],
                subsets=kid_subsets,
                subset_size=kid_subset_size,
                degree=kid_degree,
                gamma=kid_gamma,
                coef0=kid_coef0,
                seed=kid_seed,
            )
            if r["subset_size"] != kid_subset_size:
                notes.append(
                    f"KID subset size reduced from {kid_subset_size} to {r['subset_size']} "
                    f"(fewer samples); not comparable with subset-size-{kid_subset_size} numbers"
                )
            scores[names["KID"]], scores[names["KID_std"]] = r["KID"], r["KID_std"]
            proto.update(
                kid_subsets=kid_subsets,
                kid_subset_size=r["subset_size"],
                kid_kernel=f"poly(degree={kid_degree}, gamma={kid_gamma or '1/d'}, coef0={kid_coef0})",
                kid_seed=kid_seed,
            )
    return scores, proto, notes


#: fewest images per Inception Score split (with one, p(y|x) is its own marginal: IS = 1 exactly)
MIN_PER_SPLIT = 2


def compute_metrics(
    input,
    reference=DEFAULTS["reference"],
    metrics=DEFAULTS["metrics"],
    extractor=DEFAULTS["extractor"],
    weights=None,
    classifier=None,
    num_samples=DEFAULTS["num_samples"],
    reference_count=DEFAULTS["reference_count"],
    is_splits=DEFAULTS["is_splits"],
    is_protocol=DEFAULTS["is_protocol"],
    is_seed=DEFAULTS["is_seed"],
    kid_subsets=DEFAULTS["kid_subsets"],
    kid_subset_size=DEFAULTS["kid_subset_size"],
    kid_degree=DEFAULTS["kid_degree"],
    kid_gamma=DEFAULTS["kid_gamma"],
    kid_coef0=DEFAULTS["kid_coef0"],
    kid_seed=DEFAULTS["kid_seed"],
    batch_size=DEFAULTS["batch_size"],
    num_workers=DEFAULTS["num_workers"],
    device=DEFAULTS["device"],
    data_root=None,
    cache_dir=None,
    use_cache=True,
    progress=DEFAULTS["progress"],
    extractor_obj=None,
) -> MetricsResult:
    """Score ``input`` (tensor/array of uint8 images, image folder, .npz, run dir or checkpoint).

    ``reference``: a dataset spec (``cifar10:test``, ``mnist:test``, ``imagefolder:/root:test``), a
    statistics ``.npz`` (``mu``, ``sigma``, optional ``features``), or None for IS only.
    """
    from ganworks.metrics.extract import extract_features
    from ganworks.metrics.reference import reference_statistics

    t0 = time.time()
    metrics = tuple(metrics)
    bad = [m for m in metrics if m not in KNOWN_METRICS]
    if bad or not metrics:
        raise ConfigError(f"unknown metric(s) {bad or metrics}; choose from {', '.join(KNOWN_METRICS)}")
    if isinstance(reference, str) and reference.lower() in ("", "none"):
        reference = None
    needs_ref = any(m in metrics for m in ("fid", "kid"))
    if needs_ref and reference is None:
        raise ConfigError("FID/KID need a reference (dataset split or statistics .npz)")
    if isinstance(input, (str, os.PathLike)) and not Path(input).exists():  # cheap checks before the network
        raise DataError(f"input {input} does not exist (expected an image folder, an .npz or a run directory)")
    ext = extractor_obj or make_extractor(extractor, weights=weights, classifier=classifier, device=device)
    # resolve the reference before the (slow) fake features, so a wrong reference fails fast
    ref = None
    if needs_ref:
        ref = reference_statistics(
            reference,
            ext,
            count=reference_count,
            data_root=data_root,
            cache_dir=cache_dir,
            use_cache=use_cache,
            batch_size=batch_size,
            num_workers=num_workers,
            progress=progress,
        )
    images, input_desc = load_input(input, num_samples=num_samples, device=device, progress=progress)
    if "is" in metrics and len(images) < MIN_PER_SPLIT * is_splits:
        raise ConfigError(
            f"the Inception Score of {len(images)} images in {is_splits} splits has fewer than "
            f"{MIN_PER_SPLIT} images per split (one image per split always scores 1 ± 0): score at "
            f"least {MIN_PER_SPLIT * is_splits} images or lower --is-splits"
        )
    feats, logits = extract_features(
        ext, images, batch_size=batch_size, num_workers=num_workers, progress=progress, desc="fake features"
    )
    scores, proto, notes = scores_from_features(
        feats,
        logits,
        metrics,
        ref,
        score_names(ext),
        is_splits=is_splits,
        is_protocol=is_protocol,
        is_seed=is_seed,
        kid_subsets=kid_subsets,
        kid_subset_size=kid_subset_size,
        kid_degree=kid_degree,
        kid_gamma=kid_gamma,
        kid_coef0=kid_coef0,
        kid_seed=kid_seed,
    )
    protocol = {
        "metrics": list(metrics),
        "n_fake": int(len(feats)),
        "n_real": ref["n"] if ref else None,
        "input": input_desc,
        "reference": str(ref["meta"].get("reference")) if ref else None,
        "reference_split": ref["meta"].get("split") if ref else None,
        "reference_source": ref["meta"] if ref else None,
        **ext.describe(),
        "extractor_kind": ext.kind,
        **proto,
        "image_shape": list(images.shape[1:]),
        "versions": _versions(),
        "seconds": round(time.time() - t0, 2),
    }
    if ext.kind == "inception" and not ext.official:
        notes.append(
            "Inception weights are not torch-fidelity's official file: numbers are not comparable with published IS/FID"
        )
    return MetricsResult(
        scores=scores, protocol=protocol, notes=notes, arrays={"fake_features": feats, "fake_logits": logits}
    )


def _versions() -> dict:
    import ganworks

    out = {"ganworks": ganworks.__version__, "torch": torch.__version__, "numpy": np.__version__}
    try:
        import torch_fidelity

        out["torch_fidelity"] = torch_fidelity.__version__
    except ImportError:  # pragma: no cover
        pass
    return out
