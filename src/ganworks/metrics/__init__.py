"""Evaluation: Inception Score, FID and KID (Inception via torch-fidelity, or a trained classifier).

Light on purpose: nothing heavy (torch_fidelity, scipy) is imported until a name is used.

* :func:`compute_metrics` (``ganworks.metrics.api``) — score images/a checkpoint against a reference.
* :func:`inception_score`, :func:`frechet_distance`, :func:`kernel_inception_distance` — the pure
  float64 score functions on features/logits.
* :class:`SampleQualityEvaluator` — periodic evaluation inside the training loop.
"""

_LAZY = {
    "compute_metrics": "ganworks.metrics.api",
    "MetricsResult": "ganworks.metrics.result",
    "inception_score": "ganworks.metrics.inception_score",
    "frechet_distance": "ganworks.metrics.fid",
    "fid_from_features": "ganworks.metrics.fid",
    "feature_statistics": "ganworks.metrics.fid",
    "kernel_inception_distance": "ganworks.metrics.kid",
    "SampleQualityEvaluator": "ganworks.metrics.evaluator",
    "DEFAULTS": "ganworks.metrics.defaults",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ganworks.metrics' has no attribute {name!r}")
