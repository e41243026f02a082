"""Reference statistics for FID / KID: computed once per (dataset, split, count, extractor) and cached.

A cache entry is an ``.npz`` in ``$GANWORKS_CACHE`` (else ``~/.cache/ganworks``), under
``ref-stats/``, named from the four parts of the key (the extractor part is its name plus the
weights' sha256 prefix, so different weights never share an entry).  It holds ``mu`` and ``sigma``
(float64; FID) and ``features`` (float32; KID), plus a JSON ``meta`` string.  A user-supplied
statistics ``.npz`` needs ``mu`` and ``sigma``; ``features`` is optional (KID is skipped without it).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np

from ganworks.errors import DataError, GanworksError
from ganworks.metrics.defaults import DEFAULTS


def cache_root(cache_dir=None) -> Path:
    """``cache_dir`` if given, else the project's cache folder (``ganworks.data.cache_dir``)."""
    from ganworks.data import cache_dir as default_cache_dir

    return Path(cache_dir).expanduser() if cache_dir else default_cache_dir()


def cache_key(dataset: str, split: str, count, extractor_name: str, weights_sha256: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", dataset.replace("imagefolder:", "imagefolder-"))[-60:]
    dig = hashlib.sha256(dataset.encode()).hexdigest()[:8]
    return f"{safe}-{dig}-{split}-{count if count else 'all'}-{extractor_name}-{weights_sha256[:16]}"


def load_stats_file(path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as z:
            if "mu" not in z.files or "sigma" not in z.files:
                raise DataError(
                    f"{path}: a reference statistics .npz needs arrays 'mu' and 'sigma' "
                    f"(has {', '.join(z.files) or 'none'})"
                )
            out = {
                "mu": z["mu"].astype(np.float64),
                "sigma": z["sigma"].astype(np.float64),
                "features": z["features"].astype(np.float64) if "features" in z.files else None,
            }
            meta = json.loads(str(z["meta"])) if "meta" in z.files else {}
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not a readable statistics .npz ({e})") from None
    out["meta"] = {"reference": str(path), "split": meta.get("split"), "stats_file": str(path), **meta}
    out["n"] = meta.get("n") or (len(out["features"]) if out["features"] is not None else None)
    return out


def save_stats_file(path, mu, sigma, features, meta: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, mu=mu, sigma=sigma, features=np.asarray(features, np.float32), meta=json.dumps(meta))
    os.replace(tmp, path)
    return path


def reference_statistics(
    reference: str,
    extractor,
    count=None,
    data_root=None,
    cache_dir=None,
    use_cache=True,
    batch_size=DEFAULTS["batch_size"],
    num_workers=DEFAULTS["num_workers"],
    progress=True,
) -> dict:
    """``{"mu", "sigma", "features", "n", "meta"}`` for a dataset spec, a statistics ``.npz`` or
    in-memory uint8 images (N×C×H×W tensor/array; not cached)."""
    from ganworks.metrics.datasets import load_split, parse_dataset_spec
    from ganworks.metrics.extract import extract_features
    from ganworks.metrics.fid import feature_statistics

    if isinstance(reference, (np.ndarray,)) or type(reference).__name__ == "Tensor":
        import torch

        images = torch.as_tensor(reference)
        feats, _ = extract_features(
            extractor,
            images,
            batch_size=batch_size,
            num_workers=num_workers,
            progress=progress,
            desc="reference features",
        )
        mu, sigma = feature_statistics(feats)
        meta = {"reference": "in-memory images", "split": None, "n": int(len(feats)), "extractor": extractor.name}
        return {"mu": mu, "sigma": sigma, "features": feats, "n": int(len(feats)), "meta": meta}
    ref = str(reference)
    if ref.endswith(".npz"):
        if not Path(ref).is_file():
            raise DataError(f"reference statistics file {ref} not found")
        return load_stats_file(ref)
    name, split = parse_dataset_spec(ref)
    if name.startswith("imagefolder:"):
        name = "imagefolder:" + os.path.abspath(name[len("imagefolder:") :])
    key = cache_key(name, split, count, extractor.name, extractor.weights_sha256)
    path = cache_root(cache_dir) / "ref-stats" / f"{key}.npz"
    if use_cache and path.is_file():
        out = load_stats_file(path)
        out["meta"]["cache_hit"] = True
        return out
    try:
        images, _, _ = load_split(name, split, data_root)
    except GanworksError:
        raise
    except (KeyError, ValueError) as e:
        raise DataError(f"reference '{ref}': unknown dataset or split ({e})") from None
    if count:
        if count > len(images):
            raise DataError(f"reference '{ref}' has {len(images)} images, fewer than the requested {count}")
        images = images[:count]
    feats, _ = extract_features(
        extractor,
        images,
        batch_size=batch_size,
        num_workers=num_workers,
        progress=progress,
        desc=f"reference {name}:{split}",
    )
    mu, sigma = feature_statistics(feats)
    meta = {
        "reference": ref,
        "dataset": name,
        "split": split,
        "count": count,
        "n": int(len(feats)),
        "extractor": extractor.name,
        "weights_sha256": extractor.weights_sha256,
        "cache_key": key,
    }
    if use_cache:
        save_stats_file(path, mu, sigma, feats, meta)
        meta["cache_file"] = str(path)
    meta["cache_hit"] = False
    return {"mu": mu, "sigma": sigma, "features": feats, "n": int(len(feats)), "meta": meta}
