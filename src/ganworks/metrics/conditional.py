"""Evaluation of class-conditional generators [SN-GAN §4.2; Miyato & Koyama 2018 §5; code
SNP:evaluations/calc_intra_FID.py, calc_ref_stats.py, gen_interpolated_images.py].

* ``intra_fid``: per class c, the FID between G's images of class c (``per_class`` of them; the
  reference 5000) and the real images of class c (statistics from ``class_statistics``), then
  the mean over the classes. Also returns every per-class FID.
* ``class_grid``: one row per class, ``per_class`` images in each, the same noise down a column.
* ``class_interpolation``: per noise row, ``steps`` images whose conditional-BN parameters go
  from class a to class b (class weights (1 − t, t), t = 0 … 1), the released script's figure.
* ``generate_with_classes``: uint8 images for given classes (indices or weights).

Every function runs G in eval mode without autograd; images are uint8 in G's data scale.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.scaling import to_uint8
from ..errors import ConfigError
from .extract import extract_features
from .fid import feature_statistics, frechet_distance


def _check_conditional(G) -> int:
    k = getattr(G, "num_classes", 0)
    if not k:
        raise ConfigError(
            "this generator is not class-conditional (num_classes = 0): use `ganworks sample` / "
            "`ganworks metrics` without classes"
        )
    return k


def _check_class(c: int, k: int) -> int:
    if not 0 <= int(c) < k:
        raise ConfigError(f"class {c} is out of range: the generator has classes 0..{k - 1}")
    return int(c)


@torch.no_grad()
def generate_with_classes(
    G, y: torch.Tensor, scale: str, device, batch_size: int = 100, z: torch.Tensor | None = None
) -> torch.Tensor:
    """uint8 images G(z, y) for class indices (N,) or class weights (N, K); fresh z unless given."""
    k = _check_conditional(G)
    if not y.is_floating_point():
        bad = y[(y < 0) | (y >= k)]
        if len(bad):
            _check_class(int(bad[0]), k)
    was = G.training
    G.eval()
    out = []
    try:
        for s in range(0, len(y), batch_size):
            yb = y[s : s + batch_size].to(device)
            zb = G.sample_z(len(yb), device=device) if z is None else z[s : s + batch_size].to(device)
            out.append(to_uint8(G(zb, yb), scale).cpu())
    finally:
        G.train(was)
    return torch.cat(out)


def class_grid(G, classes, per_class: int, scale: str, device) -> torch.Tensor:
    """len(classes) × per_class uint8 images, row-major (save with ``nrow=per_class``)."""
    k = _check_conditional(G)
    classes = [_check_class(c, k) for c in classes]
    z = G.sample_z(per_class, device=device).repeat(len(classes), 1)
    y = torch.tensor(classes).repeat_interleave(per_class)
    return generate_with_classes(G, y, scale, device, z=z)


def class_interpolation(G, a: int, b: int, n_z: int, steps: int, scale: str, device) -> torch.Tensor:
    """n_z × steps uint8 images, row-major: per row one z, the class weights going from a to b."""
    k = _check_conditional(G)
    a, b = _check_class(a, k), _check_class(b, k)
    if steps < 2 or n_z < 1:
        raise ConfigError("class interpolation needs at least 2 steps and 1 noise row")
    t = torch.linspace(0, 1, steps)
    w = torch.zeros(steps, k)
    w[:, a] += 1 - t
    w[:, b] += t
    z = G.sample_z(n_z, device=device).repeat_interleave(steps, dim=0)
    return generate_with_classes(G, w.repeat(n_z, 1), scale, device, z=z)


def class_statistics(extractor, images_of_class, batch_size: int = 64, progress: bool = False) -> dict:
    """{class: (mean, covariance)} of the extractor's features, from {class: uint8 images or a dataset of them}."""
    out = {}
    for c, images in images_of_class.items():
        feats, _ = extract_features(extractor, images, batch_size=batch_size, progress=progress, desc=f"class {c}")
        out[int(c)] = feature_statistics(feats)
    return out


def intra_fid(
    G, extractor, reference: dict, per_class: int, scale: str, device, batch_size: int = 100, progress: bool = False
) -> dict:
    """Mean over the reference's classes of FID(G's images of class c, real images of class c).

    ``reference`` maps each class to its real (mean, covariance) (``class_statistics``).
    Returns ``{"intra_FID": mean, "FID_per_class": {c: fid}}``.
    """
    k = _check_conditional(G)
    if not reference:
        raise ConfigError("intra-FID needs reference statistics for at least one class")
    per = {}
    for c, (mu_r, sigma_r) in sorted(reference.items()):
        imgs = generate_with_classes(G, torch.full((per_class,), _check_class(c, k)), scale, device, batch_size)
        feats, _ = extract_features(extractor, imgs, batch_size=batch_size, progress=progress, desc=f"class {c}")
        per[int(c)] = frechet_distance(*feature_statistics(feats), mu_r, sigma_r)
    return {"intra_FID": float(np.mean(list(per.values()))), "FID_per_class": per}
