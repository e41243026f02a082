"""The per-phase loss of the training loop, eager or compiled with ``torch.compile``.

``PhaseLoss(objective, compile=...)`` is what ``train_iteration`` calls for each phase: the
objective's loss with parametrized weights (weight norm, spectral norm) computed once for the
phase (``parametrize.cached``): for spectral norm one power step per optimizer step, Algorithm 1 of
the SN-GAN paper (``train.power_iteration = "per-step"``). With ``"per-call"`` the weights are
recomputed on every forward call, so each training-mode discriminator call does a power step, as
chainer-gan-lib's updater (1 + 2·n_dis per SN-GAN update; docs/fidelity-round2.md measures the
difference). Compiled, TorchDynamo captures the phase's forward passes and loss
(one graph per phase: the frozen player's ``requires_grad`` flags are part of the guards) and
AOTAutograd compiles the matching backward; inductor emits C++ (CPU, built with the system's C
compiler) or Triton kernels (CUDA), and on CUDA a small model also runs through CUDA graphs
(``mode="reduce-overhead"``). The mathematics is unchanged: random ops fall back to PyTorch's own
generator (``fallback_random``), so a compiled step draws the same noise as the eager one and
the checkpoint's RNG state means the same thing either way; results agree to float32 rounding.

``train.compile``: ``true`` (the phases and the optimizers' update), ``"optimizer"`` (only the
reference Adam's update, fused into one pass over each tensor's p, g, m, v: ``train/optim.py``;
the forward and backward passes stay eager), ``false``, or ``"auto"``: each part on where it was
measured to be faster (``FASTER_COMPILED``, ``FASTER_COMPILED_UPDATE``) and the run is long enough
to repay the compile time (``MIN_ITERATIONS``); see benchmarks/results/improved_gan_step_compiled.md.
If compilation fails, the run continues eagerly after a one-line warning.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..errors import ConfigError

#: (device type, discriminator builder) where the compiled step was measured faster than eager.
#: Empty: on the CPU of benchmarks/results/improved_gan_step_compiled.md the compiled MNIST step was
#: slower than eager (0.89x at 1 thread, 0.91x at 2), so ``auto`` compiles no step until a measurement (e.g. on a
#: GPU) says otherwise.
FASTER_COMPILED: set[tuple[str, str]] = set()
#: (device type, discriminator builder) where compiling only the optimizer's update (the phases
#: eager) was measured faster than eager: the MNIST step on CPU, the reference Adam's eight foreach
#: passes over 2.6M parameters becoming one (benchmarks/results/improved_gan_step_compiled.md).
FASTER_COMPILED_UPDATE: set[tuple[str, str]] = {("cpu", "improved-gan-mnist-d")}
#: ``auto`` compiles only runs of at least this many iterations (compiling takes ~0.5-2 minutes).
MIN_ITERATIONS = 2000
#: CUDA graphs (``mode="reduce-overhead"``) for models up to this many parameters (G + D).
SMALL_MODEL_PARAMS = 20_000_000


def _compile_setting(cfg: dict):
    setting = cfg["train"].get("compile", "auto")
    if isinstance(setting, str) and setting.lower() in ("true", "false"):
        setting = setting.lower() == "true"
    if isinstance(setting, bool) or setting in ("auto", "optimizer"):
        return setting
    raise ConfigError(f'train.compile must be true, false, "optimizer" or "auto", got {setting!r}')


def _measured_faster(table: set[tuple[str, str]], cfg: dict, device: torch.device, total_iterations: int) -> bool:
    """``auto``: this (device, discriminator) is in ``table`` and the run repays the compile time."""
    key = (device.type, cfg["model"]["discriminator"].get("name", ""))
    return key in table and total_iterations >= MIN_ITERATIONS


def compile_wanted(cfg: dict, device: torch.device, total_iterations: int) -> bool:
    """Whether ``train.compile`` asks for compiled phases (forward, loss, backward) on ``device``."""
    setting = _compile_setting(cfg)
    if setting != "auto":
        return setting is True
    return _measured_faster(FASTER_COMPILED, cfg, device, total_iterations)


def compile_update_wanted(cfg: dict, device: torch.device, total_iterations: int) -> bool:
    """Whether ``train.compile`` asks for the optimizers' fused, compiled update on ``device``
    (always with compiled phases; alone with ``"optimizer"``, or where ``auto`` measured it faster)."""
    setting = _compile_setting(cfg)
    if setting != "auto":
        return setting is True or setting == "optimizer"
    return compile_wanted(cfg, device, total_iterations) or _measured_faster(
        FASTER_COMPILED_UPDATE, cfg, device, total_iterations
    )


def _rng_state(device: torch.device):
    return torch.get_rng_state(), (torch.cuda.get_rng_state(device) if device.type == "cuda" else None)


def _set_rng_state(state, device: torch.device) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)


def _one_line(e: BaseException) -> str:
    """The root cause of a compiler error, on one line."""
    cause = getattr(e, "inner_exception", None) or e.__cause__ or e
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return f"{type(cause).__name__}: {lines[0][:200]}" if lines else type(cause).__name__


class PhaseLoss:
    """``(phase, batch) -> (loss, logs)``: the objective's loss for one phase, eager or compiled."""

    def __init__(
        self,
        objective,
        compile: bool = False,
        device: torch.device | None = None,
        models: tuple[nn.Module, ...] = (),
        per_call: bool = False,
    ) -> None:
        self.objective = objective
        self.per_call = per_call  # no parametrize.cached: a power step on every training-mode call
        self.device = torch.device(device or "cpu")
        self.compiled = None
        self.cuda_graphs = False
        self._ok: set[str] = set()  # phases that have run compiled at least once
        if compile:
            import torch._inductor.config as inductor_config

            # random ops through PyTorch's generator, as eager: same noise, same RNG state
            inductor_config.fallback_random = True
            n_params = sum(p.numel() for m in models for p in m.parameters())
            self.cuda_graphs = self.device.type == "cuda" and n_params <= SMALL_MODEL_PARAMS
            self.compiled = torch.compile(
                self.eager, mode="reduce-overhead" if self.cuda_graphs else None, dynamic=False
            )

    @property
    def is_compiled(self) -> bool:
        return self.compiled is not None

    def eager(self, phase: str, batch):
        if self.per_call:
            return self.objective.loss(phase, batch)
        with parametrize.cached():
            return self.objective.loss(phase, batch)

    def __call__(self, phase: str, batch):
        if self.compiled is None:
            return self.eager(phase, batch)
        if phase in self._ok:
            out = self.compiled(phase, batch)
        else:  # first call: compiles; on failure fall back to eager with the RNG as it was
            rng = _rng_state(self.device)
            try:
                out = self.compiled(phase, batch)
            except Exception as e:  # noqa: BLE001 - any compiler failure means: run eagerly
                warnings.warn(
                    f"train.compile: compiling the {phase.upper()} step failed ({_one_line(e)}); "
                    "training eagerly (set train.compile=false to skip the attempt)",
                    stacklevel=2,
                )
                self.compiled = None
                _set_rng_state(rng, self.device)
                return self.eager(phase, batch)
            self._ok.add(phase)
        if self.cuda_graphs:  # CUDA-graph outputs are overwritten by the next replay
            loss, logs = out
            return loss.clone(), {k: v.clone() for k, v in logs.items()}
        return out
