"""Inception-v3 features for IS / FID / KID, through torch-fidelity's TensorFlow-faithful port.

We do not re-port the network: ``torch_fidelity.feature_extractor_inceptionv3.FeatureExtractorInceptionV3``
reproduces the 2015-12-05 TF graph used by the OpenAI IS code and by TTUR's FID (TF1-style bilinear
resize to 299, (x − 128)/128, ``pool_3`` 2048-d features, 1008-way logits without bias;
docs/papers.md §A.6, §C.2).  This module only resolves *which weights file* to load and records its
sha256 so every result says exactly which network produced it.

Weights resolution: explicit argument (``--inception-weights``) → ``$GANWORKS_INCEPTION_WEIGHTS`` →
torch hub's checkpoint dir (where torch-fidelity caches its download) → download from
torch-fidelity's release.  Offline with none of these, one :class:`GanworksError` line says which
file to fetch and where to put it.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import torch

from ganworks.errors import GanworksError
from ganworks.metrics.defaults import DEFAULTS, INCEPTION_WEIGHTS_FILE, INCEPTION_WEIGHTS_URL

OFFICIAL_SHA256_PREFIX = "6726825d"  # torch hub convention: the file name carries its sha256 prefix
EXTRACTOR_NAME = "inception-v3-compat"


def _hub_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS_FILE


def _download(dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(INCEPTION_WEIGHTS_URL, str(dst), hash_prefix=OFFICIAL_SHA256_PREFIX, progress=False)


def resolve_inception_weights(weights: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Path of the Inception weights file to use (see module docstring for the order)."""
    env = DEFAULTS["weights_env"]
    for source, value in (("--inception-weights", weights), (f"${env}", os.environ.get(env) or None)):
        if value is not None:
            p = Path(value).expanduser()
            if not p.is_file():
                raise GanworksError(f"Inception weights file {p} (from {source}) not found")
            return p
    hub = _hub_path()
    if hub.is_file():
        return hub
    if download:
        try:
            _download(hub)
            return hub
        except Exception:  # noqa: BLE001 - offline, proxy, HTTP error: all mean "supply the file"
            pass
    raise GanworksError(
        f"Inception weights not available offline: download {INCEPTION_WEIGHTS_FILE} (torch-fidelity's FID "
        f"Inception weights, {INCEPTION_WEIGHTS_URL}) and set ${env}=PATH (or `ganworks metrics --inception-weights "
        f"PATH`, `ganworks train --set eval.quality_weights=PATH`), or put it at {hub}; to train without IS/FID "
        f"use --set eval.quality_samples=0"
    )


@lru_cache(maxsize=16)
def _sha256_cached(path: str, size: int, mtime: float) -> str:
    from ganworks.metrics.classifier import file_sha256

    return file_sha256(path)


def weights_sha256(path) -> str:
    st = os.stat(path)
    return _sha256_cached(str(Path(path).resolve()), st.st_size, st.st_mtime)


class InceptionExtractor:
    """Callable: uint8 N×3×H×W → (2048-d pool features, 1008 unbiased logits), float32 on ``device``."""

    kind = "inception"
    name = EXTRACTOR_NAME
    feature_dim = 2048
    feature_layer = "2048"
    logits_layer = "logits_unbiased"
    channels = 3

    def __init__(self, weights=None, device="cpu", download=True):
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        path = resolve_inception_weights(weights, download=download)
        try:
            self.net = FeatureExtractorInceptionV3(
                EXTRACTOR_NAME, [self.feature_layer, self.logits_layer], feature_extractor_weights_path=str(path)
            )
        except Exception as e:  # noqa: BLE001 - a wrong or truncated file
            raise GanworksError(
                f"Inception weights file {path} could not be loaded ({type(e).__name__}); "
                f"expected torch-fidelity's {INCEPTION_WEIGHTS_FILE}"
            ) from None
        self.net.to(device)
        self.device = torch.device(device)
        self.weights_path = str(path)
        self.weights_sha256 = weights_sha256(path)
        self.official = self.weights_sha256.startswith(OFFICIAL_SHA256_PREFIX)

    @property
    def weights_id(self) -> str:
        return self.weights_sha256 if self.official else f"unofficial:{self.weights_sha256}"

    def __call__(self, x_uint8: torch.Tensor):
        return self.net(x_uint8)

    def describe(self) -> dict:
        return {
            "extractor": self.name,
            "features": "pool_3 (2048)",
            "logits": "1008, no bias (logits_unbiased)",
            "weights_file": Path(self.weights_path).name,
            "weights_sha256": self.weights_sha256,
            "weights_official": self.official,
            "implementation": "torch-fidelity FeatureExtractorInceptionV3",
        }


def save_random_inception_weights(path, seed: int = 0, calibration_images: int = 16) -> Path:
    """Write a *randomly initialised* torch-fidelity Inception state dict to ``path`` (tests, benchmarks).

    PyTorch's default init shrinks activations through 90+ layers until all features collapse, so
    convolutions get He-normal weights and the BatchNorm running statistics are calibrated on a
    fixed batch of random images (one pass in training mode): features then differ between images
    and the IS/FID/KID comparisons in the tests are meaningful.
    """
    from unittest import mock

    import torch_fidelity.feature_extractor_inceptionv3 as fe

    g = torch.Generator().manual_seed(seed)
    with (
        mock.patch.object(fe, "load_state_dict_from_url", lambda *a, **k: None),
        mock.patch.object(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd, *a, **k: None),
    ):
        net = fe.FeatureExtractorInceptionV3("random", ["2048"])
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
            elif isinstance(m, torch.nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None  # cumulative average over the calibration pass
        # varied calibration images: smooth random patterns with random brightness and contrast
        n = calibration_images
        low = torch.nn.functional.interpolate(torch.rand(n, 3, 4, 4, generator=g), size=32, mode="bilinear")
        fine = torch.rand(n, 3, 32, 32, generator=g)
        mix = torch.rand(n, 1, 1, 1, generator=g)
        x = (mix * low + (1 - mix) * fine) * torch.rand(n, 1, 1, 1, generator=g) * 2
        x = ((x + torch.rand(n, 1, 1, 1, generator=g) - 0.5).clamp(0, 1) * 255).to(torch.uint8)
        net.train()
        net(x)
        net.eval()
        (feats,) = net(x)
        # 1008 logits with a spread of ~3 across images: soft, non-degenerate class probabilities
        w = torch.randn(net.fc.weight.shape, generator=g)
        net.fc.weight.copy_(w * 3.0 / (feats - feats.mean(0)).matmul(w.T).std().clamp_min(1e-12))
        net.fc.bias.copy_(torch.randn(net.fc.bias.shape, generator=g))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
    return path
