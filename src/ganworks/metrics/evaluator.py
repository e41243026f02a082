"""Periodic sample-quality evaluation during training (IS / FID / KID of generator samples).

Salimans et al. 2016 §4 (IS) and Miyato et al. 2018 App. B.1 (FID) score generator samples that
were converted to uint8 (docs/papers.md §B.5: clip(x·127.5 + 127.5)); here via
``ganworks.data.scaling.to_uint8(x, scale)``.  The extractor and the reference statistics are
built once and reused at every call.
"""

from __future__ import annotations

from ganworks.metrics.defaults import DEFAULTS


class SampleQualityEvaluator:
    """``__call__(generator, scale, device) -> {"IS": .., "IS_std": .., "FID": .., ...}``.

    With a classifier (``extractor="classifier"`` or ``classifier=PATH``) the keys are
    ``<dataset>-classifier-IS`` etc.  ``reference=None`` computes IS only. Every call also returns
    ``sample_classes``: the effective number of classes among the samples, exp of the entropy of
    the extractor's predicted-label histogram (real CIFAR-10 with a CIFAR-10 classifier: about 10; a
    collapsed generator: near 1), and the extractor's ``weights_sha256`` (a string), so that numbers
    from different feature extractors are never mixed.
    """

    def __init__(
        self,
        num_samples,
        reference,
        extractor="inception",
        weights=None,
        classifier=None,
        batch_size=DEFAULTS["batch_size"],
        data_root=None,
        metrics=None,
        cache_dir=None,
        is_splits=DEFAULTS["is_splits"],
        kid_subsets=DEFAULTS["kid_subsets"],
        kid_subset_size=DEFAULTS["kid_subset_size"],
        progress=False,
        uint8="round",
    ):
        self.num_samples = int(num_samples)
        self.reference = reference
        self.extractor_name = "classifier" if classifier else extractor
        self.weights, self.classifier = weights, classifier
        self.batch_size, self.data_root, self.cache_dir = batch_size, data_root, cache_dir
        self.metrics = tuple(metrics) if metrics else (("is", "fid") if reference else ("is",))
        self.is_splits = min(is_splits, self.num_samples)
        self.kid_subsets, self.kid_subset_size = kid_subsets, kid_subset_size
        self.progress = progress
        self.uint8 = uint8  # "round" or "truncate" (chainer-gan-lib) when samples become uint8
        self._ext = None
        self._ref = None
        self._device = None
        self.last_protocol = None

    def prepare(self, device):
        """Build the extractor and reference statistics once (a missing weights file fails here)."""
        import torch

        from ganworks.metrics.api import make_extractor
        from ganworks.metrics.reference import reference_statistics

        device = torch.device(device)
        if self._ext is None or self._device != device:
            self._ext = make_extractor(self.extractor_name, self.weights, self.classifier, device=device)
            self._device = device
        if self._ref is None and any(m in self.metrics for m in ("fid", "kid")):
            self._ref = reference_statistics(
                self.reference,
                self._ext,
                data_root=self.data_root,
                cache_dir=self.cache_dir,
                batch_size=self.batch_size,
                progress=self.progress,
            )

    def __call__(self, generator, scale, device) -> dict:
        from ganworks.metrics.api import score_names, scores_from_features
        from ganworks.metrics.datasets import generate_images
        from ganworks.metrics.extract import extract_features

        self.prepare(device)
        images = generate_images(
            generator, self.num_samples, scale, device, batch_size=self.batch_size, uint8=self.uint8
        )
        feats, logits = extract_features(
            self._ext, images, batch_size=self.batch_size, progress=self.progress, desc="eval features"
        )
        scores, proto, notes = scores_from_features(
            feats,
            logits,
            self.metrics,
            self._ref,
            score_names(self._ext),
            is_splits=self.is_splits,
            kid_subsets=self.kid_subsets,
            kid_subset_size=self.kid_subset_size,
        )
        self.last_protocol = {
            "n_fake": len(feats),
            "n_real": self._ref["n"] if self._ref else None,
            "reference": self.reference,
            "uint8": self.uint8,
            **self._ext.describe(),
            **proto,
            "notes": notes,
        }
        out = {k: float(v) for k, v in scores.items()}
        out["sample_classes"] = effective_classes(logits)
        out["quality_weights_sha256"] = self.last_protocol.get("weights_sha256")
        return out


def effective_classes(logits) -> float:
    """exp(H(p)) of the histogram p of the predicted labels (argmax of ``logits``, N×K): the number of
    equally likely classes with the same entropy (1 for one class, K for a uniform spread)."""
    import numpy as np

    labels = np.asarray(logits).argmax(axis=1)
    p = np.bincount(labels).astype(np.float64)
    p = p[p > 0] / p.sum()
    return float(np.exp(-(p * np.log(p)).sum()))
