"""One table of defaults for the evaluation code (IS / FID / KID, classifier training).

In the style of torch-fidelity's ``defaults.py``: every Python entry point (``compute_metrics``,
``SampleQualityEvaluator``, ``train_classifier``) and every CLI flag of ``ganworks metrics`` /
``ganworks train-classifier`` takes its default from this table, so the two cannot drift apart.

Protocol sources:

* IS: Salimans et al. 2016 §4 and the OpenAI reference code (docs/papers.md §A.6): 1008 logits without
  bias, softmax, 10 contiguous unshuffled splits, mean ± population std.  torch-fidelity's variant
  shuffles the samples with seed 2020 first (docs/papers.md §C.2).
* FID: Heusel et al. 2017, as used in Miyato et al. 2018 App. B.1 (docs/papers.md §B.5): 2048-d pool3.
* KID: Bińkowski et al. 2018, with torch-fidelity's subset defaults (1000 × 100, cubic polynomial
  kernel, gamma = 1/d, coef0 = 1).
"""

DEFAULTS = {
    # what to compute
    "metrics": ("is", "fid", "kid"),
    "extractor": "inception",
    "reference": "cifar10:test",
    "num_samples": 50_000,  # images generated from a checkpoint / run dir (IG-paper Table 3: 50k)
    "reference_count": None,  # None: the whole reference split
    # Inception Score (docs/papers.md §A.6)
    "is_splits": 10,
    "is_protocol": "openai",  # "openai": contiguous, unshuffled; "torch-fidelity": shuffled with is_seed
    "is_seed": 2020,
    # FID
    "fid_imag_tol": 1e-3,  # warn when sqrtm's imaginary part exceeds this (it is dropped either way)
    # KID (torch-fidelity defaults)
    "kid_subsets": 100,
    "kid_subset_size": 1000,
    "kid_degree": 3,
    "kid_gamma": None,  # None: 1 / feature dimension
    "kid_coef0": 1.0,
    "kid_seed": 2020,
    # feature extraction
    "batch_size": 64,
    "num_workers": 2,  # further bounded by len(os.sched_getaffinity(0))
    "device": "auto",
    "progress": True,
    # environment
    "weights_env": "GANWORKS_INCEPTION_WEIGHTS",
    # train-classifier
    "clf_epochs": {"mnist": 8, "default": 20},
    "clf_batch_size": 128,
    "clf_lr": {"mnist": 0.05, "default": 0.1},
    "clf_weight_decay": 5e-4,
    "clf_seed": 0,
    "clf_threads": None,  # None: leave torch's default
}

INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_WEIGHTS_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + INCEPTION_WEIGHTS_FILE


def default_for_dataset(key: str, dataset: str):
    """Per-dataset default from a ``{"mnist": .., "default": ..}`` entry of :data:`DEFAULTS`."""
    table = DEFAULTS[key]
    return table.get(dataset, table["default"])
