"""An experiment: data + G + D + objective + optimizers + schedule + evaluators, built from a config.

``Experiment(cfg, device)`` builds everything fresh (seeded, with data-dependent init) from the
builders of ``train/build.py``; ``Experiment.load_state_dict`` then restores a checkpoint over it for
``--resume``.
"""

from __future__ import annotations

import random
from contextlib import contextmanager, nullcontext

import numpy as np
import torch

from ..checkpoints import FORMAT
from ..data import data_scale
from ..device import pick_device  # noqa: F401  (re-exported by ganworks.train)
from ..errors import CheckpointError, ConfigError
from ..metrics.classification import count_errors_of
from ..nn.noise import ParallelGaussianStream
from ..nn.noise import attach as attach_noise
from ..nn.spectral_norm import spectral_norms
from .averaging import EMA
from .build import (
    build_data,
    build_evaluator,
    build_models,
    build_objective,
    build_optimizers,
    build_stream,
    check_best,
    run_length,
)
from .compiled import PhaseLoss, compile_wanted


class Experiment:
    """Everything one run trains and evaluates; built from ``cfg`` on ``device`` by the builders of
    ``train/build.py`` (data, models, objective, stream, optimizers, evaluator), in a fixed order."""

    def __init__(self, cfg: dict, device: torch.device) -> None:
        self.cfg, self.device = cfg, device
        t = cfg["train"]
        self.scale = data_scale(cfg["data"])
        splits = build_data(cfg)
        self.train_data, self.test_data, self.val_data = splits.train, splits.test, splits.validation
        self.lazy_data = splits.lazy

        seed_everything(t["seed"])
        self.G, self.D = build_models(cfg, device, self.train_data, self.scale)
        self.objective = build_objective(cfg, self.G, self.D)
        self.stream = build_stream(cfg, self.objective, splits, self.scale, device)
        self.iterations_per_epoch, self.total_iterations = run_length(cfg, self.stream, self.objective)

        self.phase_loss = PhaseLoss(
            self.objective,
            compile_wanted(cfg, device, self.total_iterations),
            device,
            (self.G, self.D),
            per_call=t["power_iteration"] == "per-call",
        )
        self.params, self.optimizers, self.schedulers = build_optimizers(
            cfg, self.G, self.D, device, self.total_iterations
        )
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
        self.quality = build_evaluator(cfg, device)
        check_best(cfg, self.objective, self.quality, self.val_data is not None, "d" in self.ema)

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
                raise ConfigError(
                    'this checkpoint was written with train.noise="global": resume it with '
                    "--set train.noise=global (or start a new run)"
                )
            self.noise.load_state_dict(state["noise"])
        set_rng_state(state["rng"], self.device)


def check_world_size(state: dict, world_size: int) -> None:
    """A checkpoint resumes exactly only on as many processes as wrote it (train/distributed.py)."""
    saved = state.get("world_size", 1)
    if saved != world_size:
        raise CheckpointError(
            f"this run was trained on {saved} process(es) and resumes exactly only on as many: "
            f"use --nproc {saved} (a different count changes the batches and the noise)"
        )


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
