"""An experiment: data + G + D + objective + optimizers + schedule + evaluators, built from a config.

``Experiment(cfg, device)`` builds everything fresh (seeded, with data-dependent init);
``Experiment.load_state_dict`` then restores a checkpoint over it for ``--resume``.
"""

from __future__ import annotations

import math
import random
from contextlib import contextmanager, nullcontext

import numpy as np
import torch

from ..data.folder import LAZY_DATASETS, FolderStream, load_folder_dataset
from ..data.own import has_test_split
from ..data import (SemiSupervisedStream, data_scale, UnsupervisedStream, balanced_labeled_subset,
                    data_permutation, load_dataset, to_float)
from ..device import pick_device  # noqa: F401  (re-exported by ganworks.train)
from ..errors import CheckpointError, ConfigError, DataError
from ..metrics.classification import count_errors_of
from ..models import build_model
from ..nn.noise import ParallelGaussianStream, attach as attach_noise
from ..nn.spectral_norm import spectral_norms
from ..nn.weight_norm import data_dependent_init, needs_data_dependent_init
from ..objectives import OBJECTIVES
from .averaging import EMA
from ..checkpoints import FORMAT
from .compiled import PhaseLoss, compile_update_wanted, compile_wanted
from .optim import build_optimizer, build_scheduler


def load_split(data_cfg: dict, split: str, root=None):
    """The ``split`` of a config's dataset, with its options and ``train_limit``/``test_limit``."""
    d = data_cfg
    opts = {"path": d["path"]} if d["path"] else {}
    if d["classes"]:
        if not d["name"].startswith("imagefolder"):
            raise ConfigError(f"data.classes picks class folders of an image-folder dataset (imagefolder:<path> or "
                              f"imagenet), not of {d['name']!r}: remove it")
        opts["classes"] = list(d["classes"])
    if d["name"] == "synthetic":
        opts["channels"] = d["channels"]
    if d["name"] == "own":  # the run's channels and class order (train/own_data.py fills them in)
        opts.update(channels=d["channels"], class_names=tuple(d["class_names"]))
    data = load_dataset(d["name"], split, root=root or d["root"] or None, download=d["download"],
                        image_size=d["image_size"], **opts)
    n = d[f"{split}_limit"]
    if n and n < len(data):
        data.images, data.labels = data.images[:n], data.labels[:n]
    return data


def split_off(data, n: int):
    """Keep the first ``n`` images of ``data`` in place; return the rest as a new split (validation)."""
    rest = type(data)(data.images[n:], data.labels[n:], data.num_classes, f"{data.name}:validation")
    data.images, data.labels = data.images[:n], data.labels[:n]
    return rest


class Experiment:
    def __init__(self, cfg: dict, device: torch.device) -> None:
        self.cfg = cfg
        self.device = device
        d, t = cfg["data"], cfg["train"]
        self.scale = data_scale(d)
        self.lazy_data = d["name"] in LAZY_DATASETS
        if self.lazy_data:  # read from disk by DataLoader workers, never held in memory
            self.train_data, self.test_data = load_folder_dataset(d), None
        else:
            self.train_data = load_split(d, "train")
            self.test_data = load_split(d, "test") if d["name"] != "own" or has_test_split(d["path"]) else None
        self.val_data = None
        if d["validation"]:
            n_val, n = d["validation"], len(self.train_data)
            if n_val >= n - d["batch_size"]:
                raise ConfigError(f"data.validation={n_val} leaves less than one batch of the {n} training images: "
                                  f"hold out fewer (at most {n - d['batch_size'] - 1})")
            self.val_data = split_off(self.train_data, n - n_val)
        if cfg["eval"]["best"].startswith("test_"):
            import warnings

            warnings.warn(f"eval.best={cfg['eval']['best']!r} selects best.pt on the test set, which flatters any "
                          f"number read from it: hold out data.validation and select on "
                          f"{cfg['eval']['best'].replace('test_', 'val_', 1)!r}", stacklevel=2)

        seed_everything(t["seed"])
        self.G = build_model(**cfg["model"]["generator"]).to(device)
        self.D = build_model(**cfg["model"]["discriminator"]).to(device)
        for role, model in (("generator", self.G), ("discriminator", self.D)):
            if tuple(model.image_shape) != self.train_data.image_shape:
                c, h, w = self.train_data.image_shape
                mc, mh, _ = model.image_shape
                fixes = []
                if (h, w) != tuple(model.image_shape[1:]):
                    fixes.append(f"set model.{role}.image_size={h} or data.image_size={mh}")
                if c != mc:
                    fixes.append(f"set data.channels={mc}" if d["name"] == "synthetic" else
                                 f"pick a preset for {c}-channel images (or model.{role}.channels={c} where the "
                                 f"model takes it)")
                raise DataError(
                    f"dataset {d['name']!r} has {c}x{h}x{w} images but the {role} "
                    f"{cfg['model'][role]['name']!r} is built for {'x'.join(map(str, model.image_shape))}: "
                    f"{'; and '.join(fixes)}")

        n_init = cfg["model"]["init_examples"]
        if n_init:
            self._data_dependent_init(n_init)

        name = cfg["objective"]["name"]
        if name not in OBJECTIVES:
            raise ConfigError(f"unknown objective {name!r}; known: {', '.join(OBJECTIVES)}")
        kwargs = {k: v for k, v in cfg["objective"].items() if k != "name"}
        try:
            self.objective = OBJECTIVES[name](self.G, self.D, **kwargs)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"objective {name!r}: {e}") from None
        self.objective.batch_size = d["batch_size"]

        if self.lazy_data:
            if self.objective.stream != "unsupervised":
                raise ConfigError(f"dataset {d['name']!r} is read lazily and serves the unsupervised/conditional "
                                  f"objectives only, not {name!r}")
            self.stream = FolderStream(self.train_data, d["batch_size"], self.scale, t["seed"], device,
                                       workers=d["workers"], dequantize=d["dequantize"])
        elif self.objective.stream == "semi_supervised":
            if d["labels"] <= 0:
                raise ConfigError("the semi-supervised objective needs labels: set data.labels (e.g. 100)")
            labeled = self.train_data.labeled  # a dataset that says which images are labeled (own)
            if labeled is None:
                labeled = balanced_labeled_subset(self.train_data.labels, d["labels"], self.train_data.num_classes,
                                                  d["seed_data"])
            self.stream = SemiSupervisedStream(self.train_data, labeled, d["batch_size"], self.scale, t["seed"], device)
        else:
            self.stream = UnsupervisedStream(self.train_data, d["batch_size"], self.scale, t["seed"], device)
        self.stream.dequantize = bool(d["dequantize"])

        d_per_iter = self.objective.schedule.count("d")
        self.iterations_per_epoch = max(1, self.stream.batches_per_epoch // max(1, d_per_iter))
        self.total_iterations = t["iterations"] or int(math.ceil(t["epochs"] * self.iterations_per_epoch))
        if self.total_iterations <= 0:
            raise ConfigError("nothing to train: set train.epochs or train.iterations (or --epochs)")

        self.phase_loss = PhaseLoss(self.objective, compile_wanted(cfg, device, self.total_iterations), device,
                                    (self.G, self.D), per_call=t["power_iteration"] == "per-call")
        o = cfg["optim"]
        self.params = {"d": [p for p in self.D.parameters() if p.requires_grad],
                       "g": [p for p in self.G.parameters() if p.requires_grad]}
        self.optimizers = {k: build_optimizer(self.params[k], o, o[f"lr_{k}"] or o["lr"]) for k in ("d", "g")}
        if compile_update_wanted(cfg, device, self.total_iterations):  # the reference's Adam: one fused pass
            for opt in self.optimizers.values():
                getattr(opt, "compile_update", lambda: None)()
        self.schedulers = {k: build_scheduler(opt, o, self.total_iterations) for k, opt in self.optimizers.items()}
        self.ema = {k: EMA(m, t[f"ema_{k}"]) for k, m in (("d", self.D), ("g", self.G)) if t[f"ema_{k}"] > 0}
        # train.noise: the noise layers' draws from a counter-keyed stream filled in parallel (nn/noise.py)
        self.noise = None
        if t["noise"] != "global":
            self.noise = ParallelGaussianStream(seed=t["seed"], prefetch=t["noise"] == "prefetch")
            for model in (self.G, self.D):
                attach_noise(model, self.noise)
        self.position = {"iteration": 0, "epoch": 0, "index": 0}
        self.best = None
        self.loop_state = {}
        self.world_size = 1  # processes training this run (train/distributed.py)
        self.phase_context = _no_context  # what each phase's losses run inside (DDP, autocast)
        from .amp import setup_amp

        setup_amp(self)  # train.amp: autocast (and a GradScaler for fp16)
        self.quality = self._quality_evaluator()
        self._check_best()

    def _check_best(self) -> None:
        """``eval.best`` must name a number the evaluation rows hold, else best.pt would never be written."""
        best = self.cfg["eval"]["best"]
        if not best or best.startswith(("loss_", "sigma")):  # losses and σ: what the objective logs
            return
        written = set()
        if self.objective.stream == "semi_supervised":
            for prefix in ("test", "val") if self.val_data is not None else ("test",):
                for key in (f"{prefix}_errors", f"{prefix}_error"):
                    written |= {key, f"{key}_ema"} if "d" in self.ema else {key}
        if self.quality is not None:
            from ..metrics.api import score_names

            ext = getattr(self.quality, "_ext", None)
            names = score_names(ext) if ext is not None else {k: k for k in ("IS", "IS_std", "FID", "KID", "KID_std")}
            for m in self.quality.metrics:
                written |= {names[k] for k in {"is": ("IS", "IS_std"), "fid": ("FID",), "kid": ("KID", "KID_std")}[m]}
        if best in written:
            return
        scores = ("IS", "IS_std", "FID", "KID", "KID_std")
        if self.quality is None and (best in scores or best.endswith(tuple(f"-{k}" for k in scores))):
            import warnings  # a preset's FID selection in a run with the scores switched off (smoke runs)

            warnings.warn(f"eval.best={best!r} but eval.quality_samples=0 computes no scores: best.pt is not "
                          f"written in this run", stacklevel=2)
            return
        if best.startswith("val_") and self.val_data is None:
            raise ConfigError(f"eval.best={best!r} is measured on a validation split, and there is none: hold out "
                              f"training images with data.validation (e.g. data.validation=5000)")
        raise ConfigError(f"eval.best={best!r} is not a number this run writes, so best.pt would never be written; "
                          f"it writes {', '.join(sorted(written)) or 'no scores'} (or a loss_*/sigma_* key)")

    def _quality_evaluator(self):
        """IS/FID/KID of G's samples, set up now so a missing weights file fails before training."""
        e = self.cfg["eval"]
        if not e["quality_samples"]:
            return None
        from ..metrics.evaluator import SampleQualityEvaluator

        classifier = e["quality_classifier"] or None
        if "is" in e["quality_metrics"] and e["quality_samples"] < 2 * e["quality_splits"]:
            raise ConfigError(f"eval.quality_samples={e['quality_samples']} gives the Inception Score fewer than 2 "
                              f"images per split (eval.quality_splits={e['quality_splits']}; one per split always "
                              f"scores 1 ± 0): raise quality_samples or lower quality_splits")
        evaluator = SampleQualityEvaluator(
            e["quality_samples"], e["quality_reference"] or None,
            extractor="classifier" if classifier else e["quality_extractor"], weights=e["quality_weights"] or None,
            classifier=classifier, data_root=self.cfg["data"]["root"] or None, metrics=e["quality_metrics"],
            is_splits=e["quality_splits"], uint8=e["quality_uint8"])
        evaluator.prepare(self.device)
        return evaluator

    def _data_dependent_init(self, n: int) -> None:
        """Reference: D's init pass on the first n examples of the seed_data-permuted training set;
        G's on one batch of noise (its batch size, as the reference's symbolic noise batch)."""
        idx = torch.from_numpy(data_permutation(len(self.train_data), self.cfg["data"]["seed_data"])[:n])
        x = to_float(self.train_data.images[idx], self.scale).to(self.device)
        self.D.train()
        data_dependent_init(self.D, x)
        if needs_data_dependent_init(self.G):
            self.G.train()
            data_dependent_init(self.G, self.G.sample_z(self.cfg["data"]["batch_size"], device=self.device))

    # ---- evaluation ---------------------------------------------------------------------------

    def evaluate(self, final: bool = False) -> dict:
        """Evaluators for this experiment (test error, σ of spectral-normalized layers, IS/FID)."""
        out = {}
        sigmas = spectral_norms(self.D)
        if sigmas:
            out.update({f"sigma/{k}": v for k, v in sigmas.items()})
            out["sigma_max"], out["sigma_min"] = max(sigmas.values()), min(sigmas.values())
        every = self.cfg["eval"]["quality_every"]
        if self.quality is not None and (final or not every or self.position["iteration"] % every == 0):
            with self.sampling_generator(self.cfg["train"]["seed"]) as G:
                out.update(self.quality(G, self.scale, self.device))
            if "is" in self.quality.metrics:
                out.update(IS_samples=self.quality.num_samples, IS_splits=self.quality.is_splits)
        if self.objective.stream == "semi_supervised":
            bs = self.cfg["eval"]["batch_size"]
            for prefix, split in (("test", self.test_data), ("val", self.val_data)):
                if split is None:
                    continue
                n = len(split)
                # the raw and the averaged D scored in one pass over the split
                scored = {"": self.D, **({"_ema": self.ema["d"].model} if "d" in self.ema else {})}
                errors = count_errors_of(list(scored.values()), split.images, split.labels, self.scale, bs, self.device)
                for suffix, e in zip(scored, errors):
                    out.update({f"{prefix}_errors{suffix}": e, f"{prefix}_error{suffix}": e / n})
        return out

    @contextmanager
    def sampling_generator(self, seed: int):
        """The averaged G if any, else G, in eval mode, with the RNG seeded to ``seed`` inside the
        block and the training RNG streams untouched by it."""
        G = self.ema["g"].model if "g" in self.ema else self.G
        was = G.training
        G.eval()
        try:
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                torch.manual_seed(seed)
                yield G
        finally:
            G.train(was)

    @torch.no_grad()
    def samples(self, n: int, seed: int = 0) -> torch.Tensor:
        """n samples from a fixed noise seed (see ``sampling_generator``)."""
        with self.sampling_generator(seed) as G:
            return G(G.sample_z(n, device=self.device))

    # ---- checkpoint state ---------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {
            "format": FORMAT,
            "config": self.cfg,
            "models": {"G": self.G.state_dict(), "D": self.D.state_dict()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "ema": {k: e.state_dict() for k, e in self.ema.items()},
            "objective": self.objective.state_dict(),
            "rng": rng_state(self.device),
            "position": dict(self.position),
            "best": self.best,
            "world_size": self.world_size,
            "amp": self.amp_scaler.state_dict() if self.amp_scaler is not None else {},
            "noise": self.noise.state_dict() if self.noise is not None else {},
        }

    def load_state_dict(self, state: dict) -> None:
        check_world_size(state, self.world_size)
        self.G.load_state_dict(state["models"]["G"])
        self.D.load_state_dict(state["models"]["D"])
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        for k, s in self.schedulers.items():
            s.load_state_dict(state["schedulers"][k])
        for k, e in self.ema.items():
            e.load_state_dict(state["ema"][k])
        self.objective.load_state_dict(state.get("objective", {}))
        self.position = dict(state["position"])
        self.best = state.get("best")
        self.loop_state = state.get("loop", {})  # the loop's running loss window (train() reads it)
        if self.amp_scaler is not None and state.get("amp"):  # fp16: the GradScaler's scale and growth tracker
            self.amp_scaler.load_state_dict(state["amp"])
        if self.noise is not None:
            if not state.get("noise"):
                raise ConfigError("this checkpoint was written with train.noise=\"global\": resume it with "
                                  "--set train.noise=global (or start a new run)")
            self.noise.load_state_dict(state["noise"])
        set_rng_state(state["rng"], self.device)


def check_world_size(state: dict, world_size: int) -> None:
    """A checkpoint resumes exactly only on as many processes as wrote it (train/distributed.py)."""
    saved = state.get("world_size", 1)
    if saved != world_size:
        raise CheckpointError(f"this run was trained on {saved} process(es) and resumes exactly only on as many: "
                              f"use --nproc {saved} (a different count changes the batches and the noise)")


def _no_context(phase: str):
    return nullcontext()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state(device: torch.device) -> dict:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    random.setstate(tuple(state["python"]) if not isinstance(state["python"], tuple) else state["python"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])
