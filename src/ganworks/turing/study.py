"""Studies: a fixed pool of real and generated images, re-encoded so only their pixels differ.

A study is a folder::

    NAME/study.json        sources, options, and the image manifest (id → source, truth, kind)
    NAME/images/<id>.png   every image, decoded and re-encoded by the same code

Every image goes through one pipeline (uint8 array → PIL → one size and mode → PNG with no
metadata) and gets a random 16-hex id, so nothing in the bytes' format, the names, the URLs or the
headers says real or fake.  Image sources are whatever ``ganworks metrics`` reads
(:func:`ganworks.metrics.api.load_input`, :func:`ganworks.metrics.datasets.load_split`): a dataset
split (``mnist:test``, ``imagefolder:DIR:test``), a run directory or checkpoint (its generator makes
the images from a recorded seed), an image folder, an ``.npz``.

Besides the pool, a study holds a few *tutorial* images per source (shown first, with feedback,
never scored) and *attention checks* (uniform noise: any attentive rater calls them generated).
``top_percent`` keeps the fakes a generator makes best by per-image Inception Score (Salimans et
al. 2016 §4, the "top 1 %" human result of §A.7), or by a trained classifier's score when the
Inception weights are absent.
"""

from __future__ import annotations

import io
import json
import re
import secrets
import time
from pathlib import Path

import numpy as np

from ganworks.errors import ConfigError, DataError

FORMAT = "ganworks-turing-study-v1"
ID_RE = re.compile(r"^[0-9a-f]{16}$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

DEFAULTS = {
    "images_per_source": 100,
    "per_session": 20,
    "real_fraction": 0.5,
    "feedback": False,
    "exposure_ms": None,
    "staircase": False,
    "tutorial": 4,
    "attention": 2,
    "top_percent": None,
    "seed": 0,
    "device": "auto",
}


def _label_for(spec: str, taken: set) -> str:
    s = spec.rstrip("/")
    if s.startswith("imagefolder:"):
        s = s[len("imagefolder:") :]
    base = Path(s).name or s
    base = re.sub(r"[^A-Za-z0-9._:-]+", "-", base)[:40] or "source"
    if base in ("checkpoints", "last.pt", "best.pt") or base.endswith(".pt"):
        p = Path(s)
        base = (p.parent.parent.name if p.parent.name == "checkpoints" else p.parent.name) or base
    label, k = base, 2
    while label in taken:
        label, k = f"{base}-{k}", k + 1
    taken.add(label)
    return label


def load_source(spec: str, count: int, seed: int, device="auto", data_root=None, progress=False):
    """(uint8 images N×C×H×W with N ≤ ``count``, description) of a SPEC, drawn with ``seed``."""
    import torch  # imported here: the server needs this module but not torch

    from ganworks.metrics.api import load_input
    from ganworks.metrics.datasets import load_split, parse_dataset_spec

    if Path(spec).exists() and not spec.startswith("imagefolder:"):
        torch.manual_seed(seed)  # the recorded seed of a generator's samples
        images, desc = load_input(spec, num_samples=count, device=device, progress=progress)
    else:
        name, split = parse_dataset_spec(spec)
        if ":" not in spec and not re.match(r"^[a-z0-9]+$", spec):
            raise DataError(
                f"--real/--fake {spec!r}: no such file or folder, and not a dataset split "
                "like 'mnist:test' or 'imagefolder:DIR:test'"
            )
        images, _, _ = load_split(name, split, data_root)
        desc = {"kind": "dataset", "dataset": name, "split": split}
    n = len(images)
    if n > count:
        idx = np.sort(np.random.default_rng(seed).choice(n, size=count, replace=False))
        images = images[torch.from_numpy(idx)]
        desc["indices_seed"] = seed
    desc["available"] = n
    return images, desc


def per_image_inception_score(logits) -> np.ndarray:
    """KL(p(y|x) ‖ p(y)) of each image: its term in the Inception Score's exponent (Salimans §4)."""
    import torch

    logp = torch.log_softmax(logits.double(), dim=1)
    p = logp.exp()
    log_py = torch.log(p.mean(0, keepdim=True))
    return (p * (logp - log_py)).sum(1).numpy()


def top_by_score(images, keep: int, extractor, batch_size=100):
    """The ``keep`` images of ``images`` with the highest per-image Inception Score, and the scores."""
    import torch

    from ganworks.metrics.extract import extract_features

    _, logits = extract_features(extractor, images, batch_size=batch_size, progress=False)
    s = per_image_inception_score(torch.as_tensor(logits))
    order = np.argsort(-s, kind="stable")[:keep]
    return images[torch.from_numpy(np.sort(order))], s


def encode_png(image_chw: np.ndarray, size: tuple[int, int], mode: str) -> bytes:
    """One uint8 C×H×W image → PNG bytes of ``size`` (W, H) and ``mode`` ('L' or 'RGB'), no metadata."""
    from PIL import Image

    a = np.asarray(image_chw)
    a = a[0] if a.shape[0] == 1 else np.transpose(a, (1, 2, 0))
    im = Image.fromarray(np.ascontiguousarray(a))
    im = im.convert(mode)
    if im.size != size:
        im = im.resize(size, Image.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _scores_of_run(spec: str) -> dict:
    """IS/FID-like numbers the run itself logged (last ``metrics.jsonl`` record), if any."""
    p = Path(spec)
    run = p if p.is_dir() else (p.parent.parent if p.parent.name == "checkpoints" else p.parent)
    f = run / "metrics.jsonl"
    if not f.is_file():
        return {}
    lines = [ln for ln in f.read_text().splitlines() if ln.strip()]
    out = {}
    for ln in reversed(lines):
        try:
            rec = json.loads(ln)
        except ValueError:
            continue
        for k, v in rec.items():
            if isinstance(v, (int, float)) and re.search(r"(^|[-_])(IS|FID|KID)$", k) and k not in out:
                out[k] = float(v)
        if out:
            break
    return out


def create_study(
    path,
    real: str,
    fakes: list[str],
    images_per_source=DEFAULTS["images_per_source"],
    per_session=DEFAULTS["per_session"],
    real_fraction=DEFAULTS["real_fraction"],
    feedback=DEFAULTS["feedback"],
    exposure_ms=DEFAULTS["exposure_ms"],
    staircase=DEFAULTS["staircase"],
    tutorial=DEFAULTS["tutorial"],
    attention=DEFAULTS["attention"],
    top_percent=DEFAULTS["top_percent"],
    scorer="inception",
    inception_weights=None,
    classifier=None,
    scores=None,
    seed=DEFAULTS["seed"],
    device=DEFAULTS["device"],
    data_root=None,
    size=None,
    overwrite=False,
    progress=False,
) -> dict:
    """Build the study folder ``path``; return its ``study.json`` content."""
    path = Path(path)
    if not NAME_RE.match(path.name):
        raise ConfigError(f"study name {path.name!r}: use letters, digits, '.', '_' or '-' (max 64)")
    if (path / "study.json").exists() and not overwrite:
        raise ConfigError(f"study {path} already exists (choose another NAME or pass --overwrite)")
    if not fakes:
        raise ConfigError("a study needs at least one --fake SPEC")
    if images_per_source < 2:
        raise ConfigError("--images-per-source must be at least 2")
    if not 0 < real_fraction < 1:
        raise ConfigError(f"--real-fraction must be between 0 and 1, got {real_fraction}")
    if per_session < 2:
        raise ConfigError("--per-session must be at least 2")
    if exposure_ms is not None and not 10 <= exposure_ms <= 60000:
        raise ConfigError("--exposure-ms must be between 10 and 60000")
    if top_percent is not None and not 0 < top_percent <= 100:
        raise ConfigError(f"--top-percent must be in (0, 100], got {top_percent}")
    if tutorial < 0 or attention < 0:
        raise ConfigError("--tutorial and --attention must be ≥ 0")

    extra = tutorial  # tutorial images are drawn beside the pool, never scored
    taken: set = set()
    sources = []
    real_imgs, real_desc = load_source(real, images_per_source + extra, seed, device, data_root, progress)
    sources.append({"label": _label_for(real, taken), "spec": real, "truth": "real", "input": real_desc})
    pools = [real_imgs]
    extractor = None
    for j, spec in enumerate(fakes):
        want = images_per_source + extra
        is_run = Path(spec).exists() and _looks_like_run(Path(spec))
        gen_n = int(np.ceil(want * 100.0 / top_percent)) if (top_percent and is_run) else want
        imgs, desc = load_source(spec, gen_n, seed + 1 + j, device, data_root, progress)
        src = {"label": _label_for(spec, taken), "spec": spec, "truth": "fake", "input": desc, "seed": seed + 1 + j}
        if top_percent and top_percent < 100:
            if extractor is None:
                from ganworks.metrics.api import make_extractor

                extractor = make_extractor(
                    "classifier" if (classifier or scorer == "classifier") else "inception",
                    weights=inception_weights,
                    classifier=classifier,
                    device=device,
                )
            keep = min(want, max(1, int(round(len(imgs) * top_percent / 100.0))))
            imgs, s = top_by_score(imgs, keep, extractor)
            src["filter"] = {
                "top_percent": top_percent,
                "scorer": extractor.kind,
                "from": int(len(s)),
                "kept": int(len(imgs)),
                "min_kept_score": float(np.sort(s)[-keep]),
            }
        run_scores = dict(_scores_of_run(spec)) if Path(spec).exists() else {}
        run_scores.update((scores or {}).get(src["label"], {}))
        if run_scores:
            src["scores"] = run_scores
        sources.append(src)
        pools.append(imgs)
    for s, imgs in zip(sources, pools):
        if len(imgs) < 2 + extra:
            raise DataError(f"source {s['spec']!r} gave only {len(imgs)} images; need at least {2 + extra}")

    h, w = (size, size) if size else tuple(real_imgs.shape[-2:])
    mode = "RGB" if any(p.shape[1] == 3 for p in pools) else "L"
    rng = np.random.default_rng(seed)
    records = []
    for s, imgs in zip(sources, pools):
        n = len(imgs)
        order = rng.permutation(n)
        n_pool = min(images_per_source, n - extra)
        for r, i in enumerate(order[: n_pool + extra]):
            kind = "tutorial" if r >= n_pool else "main"
            records.append((s["label"], s["truth"], kind, int(i), imgs[int(i)].numpy()))
    noise_rng = np.random.default_rng(seed + 10_000)
    for k in range(attention):
        a = noise_rng.integers(0, 256, size=(3 if mode == "RGB" else 1, h, w), dtype=np.uint8)
        records.append(("attention", "fake", "attention", k, a))

    path.mkdir(parents=True, exist_ok=True)
    img_dir = path / "images"
    if img_dir.exists() and overwrite:
        for f in img_dir.glob("*.png"):
            f.unlink()
    img_dir.mkdir(exist_ok=True)
    manifest = {}
    for j in np.random.default_rng(seed + 1).permutation(len(records)):  # write in a shuffled order
        label, truth, kind, index, arr = records[int(j)]
        iid = secrets.token_hex(8)
        (img_dir / f"{iid}.png").write_bytes(encode_png(arr, (w, h), mode))
        manifest[iid] = {"source": label, "truth": truth, "kind": kind, "index": index}
    manifest = dict(sorted(manifest.items()))
    n_real_session = max(1, int(round(per_session * real_fraction)))
    study = {
        "format": FORMAT,
        "name": path.name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "options": {
            "images_per_source": images_per_source,
            "per_session": per_session,
            "real_fraction": real_fraction,
            "real_per_session": n_real_session,
            "fake_per_session": per_session - n_real_session,
            "feedback": bool(feedback),
            "exposure_ms": exposure_ms,
            "staircase": bool(staircase),
            "tutorial": tutorial,
            "attention": attention,
            "top_percent": top_percent,
            "seed": seed,
        },
        "image": {"width": w, "height": h, "mode": mode, "format": "png"},
        "sources": sources,
        "images": manifest,
    }
    (path / "study.json").write_text(json.dumps(study, indent=1) + "\n")
    return study


def _looks_like_run(p: Path) -> bool:
    from ganworks.metrics.api import _is_run_dir

    return _is_run_dir(p)


def load_study(path) -> dict:
    """The ``study.json`` of the study folder ``path`` (a ConfigError naming the fix if absent)."""
    f = Path(path) / "study.json"
    if not f.is_file():
        raise ConfigError(f"no study at {path} (create one with `ganworks turing create {path} --real ... --fake ...`)")
    study = json.loads(f.read_text())
    if study.get("format") != FORMAT:
        raise ConfigError(f"{f}: not a ganworks turing study (format {study.get('format')!r})")
    study["dir"] = str(Path(path))
    return study
