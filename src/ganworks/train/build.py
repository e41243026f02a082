"""The parts of an experiment, each built from the config by one small function: the data, the models,
the objective, the batch stream, the run's length, the optimizers and the in-training evaluator.

``Experiment.__init__`` (experiment.py) calls them in a fixed order (the global RNG is seeded before the
models are built, and everything after draws from it in the same order as before), so the same config
builds the same experiment, bit for bit.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch

from ..data import (
    SemiSupervisedStream,
    UnsupervisedStream,
    balanced_labeled_subset,
    data_permutation,
    load_dataset,
    to_float,
)
from ..data.folder import LAZY_DATASETS, FolderStream, load_folder_dataset
from ..data.own import has_test_split
from ..errors import ConfigError, DataError
from ..models import build_model
from ..nn.weight_norm import data_dependent_init, needs_data_dependent_init
from ..objectives import OBJECTIVES
from .compiled import compile_update_wanted
from .optim import build_optimizer, build_scheduler

# ---- data ------------------------------------------------------------------------------------------


def load_split(data_cfg: dict, split: str, root=None):
    """The ``split`` of a config's dataset, with its options and ``train_limit``/``test_limit``."""
    d = data_cfg
    opts = {"path": d["path"]} if d["path"] else {}
    if d["classes"]:
        if not d["name"].startswith("imagefolder"):
            raise ConfigError(
                f"data.classes picks class folders of an image-folder dataset (imagefolder:<path> or "
                f"imagenet), not of {d['name']!r}: remove it"
            )
        opts["classes"] = list(d["classes"])
    if d["name"] == "synthetic":
        opts["channels"] = d["channels"]
    if d["name"] == "own":  # the run's channels and class order (data/own_recipe.py fills them in)
        opts.update(channels=d["channels"], class_names=tuple(d["class_names"]))
    data = load_dataset(
        d["name"], split, root=root or d["root"] or None, download=d["download"], image_size=d["image_size"], **opts
    )
    n = d[f"{split}_limit"]
    if n and n < len(data):
        data.images, data.labels = data.images[:n], data.labels[:n]
    return data


def split_off(data, n: int):
    """Keep the first ``n`` images of ``data`` in place; return the rest as a new split (validation)."""
    rest = type(data)(data.images[n:], data.labels[n:], data.num_classes, f"{data.name}:validation")
    data.images, data.labels = data.images[:n], data.labels[:n]
    return rest


@dataclass
class Splits:
    """A run's data: the training images, the test and validation splits (None when there are none),
    and whether the training images are read lazily from disk (``data.folder``)."""

    train: object
    test: object
    validation: object
    lazy: bool


def build_data(cfg: dict) -> Splits:
    """The training, test and validation splits of ``cfg["data"]`` (``data.validation`` images held out
    of the training split); warns when ``eval.best`` would select ``best.pt`` on the test set."""
    d = cfg["data"]
    lazy = d["name"] in LAZY_DATASETS
    if lazy:  # read from disk by DataLoader workers, never held in memory
        train, test = load_folder_dataset(d), None
    else:
        train = load_split(d, "train")
        test = load_split(d, "test") if d["name"] != "own" or has_test_split(d["path"]) else None
    validation = None
    if d["validation"]:
        n_val, n = d["validation"], len(train)
        if n_val >= n - d["batch_size"]:
            raise ConfigError(
                f"data.validation={n_val} leaves less than one batch of the {n} training images: "
                f"hold out fewer (at most {n - d['batch_size'] - 1})"
            )
        validation = split_off(train, n - n_val)
    best = cfg["eval"]["best"]
    if best.startswith("test_"):
        warnings.warn(
            f"eval.best={best!r} selects best.pt on the test set, which flatters any number read from "
            f"it: hold out data.validation and select on {best.replace('test_', 'val_', 1)!r}",
            stacklevel=3,
        )
    return Splits(train, test, validation, lazy)


def build_stream(cfg: dict, objective, splits: Splits, scale: str, device: torch.device):
    """The batches the objective trains on: semi-supervised (labeled + unlabeled), unsupervised, or
    read lazily from an image folder."""
    d, seed = cfg["data"], cfg["train"]["seed"]
    train = splits.train
    if splits.lazy:
        if objective.stream != "unsupervised":
            raise ConfigError(
                f"dataset {d['name']!r} is read lazily and serves the unsupervised/conditional "
                f"objectives only, not {cfg['objective']['name']!r}"
            )
        stream = FolderStream(
            train, d["batch_size"], scale, seed, device, workers=d["workers"], dequantize=d["dequantize"]
        )
    elif objective.stream == "semi_supervised":
        if d["labels"] <= 0:
            raise ConfigError("the semi-supervised objective needs labels: set data.labels (e.g. 100)")
        labeled = train.labeled  # a dataset that says which images are labeled (own)
        if labeled is None:
            labeled = balanced_labeled_subset(train.labels, d["labels"], train.num_classes, d["seed_data"])
        stream = SemiSupervisedStream(train, labeled, d["batch_size"], scale, seed, device)
    else:
        stream = UnsupervisedStream(train, d["batch_size"], scale, seed, device)
    stream.dequantize = bool(d["dequantize"])
    return stream


# ---- models and objective ----------------------------------------------------------------------------


def build_models(cfg: dict, device: torch.device, train_data, scale: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """G and D on ``device``, checked against the images' shape, with the data-dependent init of
    weight-normalized models on ``model.init_examples`` training images (draws from the global RNG)."""
    G = build_model(**cfg["model"]["generator"]).to(device)
    D = build_model(**cfg["model"]["discriminator"]).to(device)
    for role, model in (("generator", G), ("discriminator", D)):
        _check_image_shape(cfg, role, model, train_data.image_shape)
    n_init = cfg["model"]["init_examples"]
    if n_init:
        data_dependent_init_pass(cfg, G, D, train_data, scale, device, n_init)
    return G, D


def _check_image_shape(cfg: dict, role: str, model, image_shape) -> None:
    """The model must be built for the dataset's images; the error names the keys that fix it."""
    if tuple(model.image_shape) == image_shape:
        return
    d = cfg["data"]
    c, h, w = image_shape
    mc, mh, _ = model.image_shape
    fixes = []
    if (h, w) != tuple(model.image_shape[1:]):
        fixes.append(f"set model.{role}.image_size={h} or data.image_size={mh}")
    if c != mc:
        fixes.append(
            f"set data.channels={mc}"
            if d["name"] == "synthetic"
            else f"pick a preset for {c}-channel images (or model.{role}.channels={c} where the model takes it)"
        )
    raise DataError(
        f"dataset {d['name']!r} has {c}x{h}x{w} images but the {role} "
        f"{cfg['model'][role]['name']!r} is built for {'x'.join(map(str, model.image_shape))}: "
        f"{'; and '.join(fixes)}"
    )


def data_dependent_init_pass(cfg: dict, G, D, train_data, scale: str, device: torch.device, n: int) -> None:
    """Reference: D's init pass on the first n examples of the seed_data-permuted training set;
    G's on one batch of noise (its batch size, as the reference's symbolic noise batch)."""
    idx = torch.from_numpy(data_permutation(len(train_data), cfg["data"]["seed_data"])[:n])
    x = to_float(train_data.images[idx], scale).to(device)
    D.train()
    data_dependent_init(D, x)
    if needs_data_dependent_init(G):
        G.train()
        data_dependent_init(G, G.sample_z(cfg["data"]["batch_size"], device=device))


def build_objective(cfg: dict, G, D):
    """The objective ``objective.name`` over G and D, with the objective's other keys as its options."""
    name = cfg["objective"]["name"]
    if name not in OBJECTIVES:
        raise ConfigError(f"unknown objective {name!r}; known: {', '.join(OBJECTIVES)}")
    kwargs = {k: v for k, v in cfg["objective"].items() if k != "name"}
    try:
        objective = OBJECTIVES[name](G, D, **kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"objective {name!r}: {e}") from None
    objective.batch_size = cfg["data"]["batch_size"]
    return objective


def run_length(cfg: dict, stream, objective) -> tuple[int, int]:
    """``(iterations per epoch, total iterations)``: an epoch is one pass of D's batches over the
    training set; the total is ``train.iterations``, else ``train.epochs`` epochs."""
    t = cfg["train"]
    d_per_iter = objective.schedule.count("d")
    per_epoch = max(1, stream.batches_per_epoch // max(1, d_per_iter))
    total = t["iterations"] or int(math.ceil(t["epochs"] * per_epoch))
    if total <= 0:
        raise ConfigError("nothing to train: set train.epochs or train.iterations (or --epochs)")
    return per_epoch, total


# ---- optimizers ------------------------------------------------------------------------------------


def build_optimizers(cfg: dict, G, D, device: torch.device, total_iterations: int) -> tuple[dict, dict, dict]:
    """``(params, optimizers, schedulers)``, each keyed ``"d"`` and ``"g"``: the trainable parameters,
    the optimizer of each player (``optim.lr_d`` / ``optim.lr_g``, else ``optim.lr``; the update compiled
    when ``train.compile`` asks for it) and its learning-rate schedule over the run."""
    o = cfg["optim"]
    params = {"d": [p for p in D.parameters() if p.requires_grad], "g": [p for p in G.parameters() if p.requires_grad]}
    optimizers = {k: build_optimizer(params[k], o, o[f"lr_{k}"] or o["lr"]) for k in ("d", "g")}
    if compile_update_wanted(cfg, device, total_iterations):  # the reference's Adam: one fused pass
        for opt in optimizers.values():
            getattr(opt, "compile_update", lambda: None)()
    schedulers = {k: build_scheduler(opt, o, total_iterations) for k, opt in optimizers.items()}
    return params, optimizers, schedulers


# ---- evaluator ---------------------------------------------------------------------------------------


def build_evaluator(cfg: dict, device: torch.device):
    """IS/FID/KID of G's samples (``eval.quality_*``), set up now so a missing weights file fails before
    training; None when ``eval.quality_samples`` is 0."""
    e = cfg["eval"]
    if not e["quality_samples"]:
        return None
    from ..metrics.evaluator import SampleQualityEvaluator

    classifier = e["quality_classifier"] or None
    if "is" in e["quality_metrics"] and e["quality_samples"] < 2 * e["quality_splits"]:
        raise ConfigError(
            f"eval.quality_samples={e['quality_samples']} gives the Inception Score fewer than 2 "
            f"images per split (eval.quality_splits={e['quality_splits']}; one per split always "
            f"scores 1 ± 0): raise quality_samples or lower quality_splits"
        )
    evaluator = SampleQualityEvaluator(
        e["quality_samples"],
        e["quality_reference"] or None,
        extractor="classifier" if classifier else e["quality_extractor"],
        weights=e["quality_weights"] or None,
        classifier=classifier,
        data_root=cfg["data"]["root"] or None,
        metrics=e["quality_metrics"],
        is_splits=e["quality_splits"],
        uint8=e["quality_uint8"],
    )
    evaluator.prepare(device)
    return evaluator


def check_best(cfg: dict, objective, evaluator, has_validation: bool, averages_d: bool) -> None:
    """``eval.best`` must name a number the evaluation rows hold, else best.pt would never be written."""
    best = cfg["eval"]["best"]
    if not best or best.startswith(("loss_", "sigma")):  # losses and σ: what the objective logs
        return
    written = set()
    if objective.stream == "semi_supervised":
        for prefix in ("test", "val") if has_validation else ("test",):
            for key in (f"{prefix}_errors", f"{prefix}_error"):
                written |= {key, f"{key}_ema"} if averages_d else {key}
    if evaluator is not None:
        from ..metrics.api import score_names

        ext = getattr(evaluator, "_ext", None)
        names = score_names(ext) if ext is not None else {k: k for k in ("IS", "IS_std", "FID", "KID", "KID_std")}
        for m in evaluator.metrics:
            written |= {names[k] for k in {"is": ("IS", "IS_std"), "fid": ("FID",), "kid": ("KID", "KID_std")}[m]}
    if best in written:
        return
    scores = ("IS", "IS_std", "FID", "KID", "KID_std")
    if evaluator is None and (best in scores or best.endswith(tuple(f"-{k}" for k in scores))):
        # a preset's FID selection in a run with the scores switched off (smoke runs)
        warnings.warn(
            f"eval.best={best!r} but eval.quality_samples=0 computes no scores: best.pt is not written in this run",
            stacklevel=3,
        )
        return
    if best.startswith("val_") and not has_validation:
        raise ConfigError(
            f"eval.best={best!r} is measured on a validation split, and there is none: hold out "
            f"training images with data.validation (e.g. data.validation=5000)"
        )
    raise ConfigError(
        f"eval.best={best!r} is not a number this run writes, so best.pt would never be written; "
        f"it writes {', '.join(sorted(written)) or 'no scores'} (or a loss_*/sigma_* key)"
    )
