"""Mixed precision: ``train.amp = "none" | "bf16" | "fp16"``.

Each phase's losses run inside ``torch.autocast`` (bf16 or fp16, on the run's device type); the
parameters, the optimizer state and the losses stay float32. Spectral norm's power iteration and
σ division run in float32 outside autocast (``nn/spectral_norm.py``).

fp16 uses a ``torch.amp.GradScaler`` without touching the loop: the phase's loss passes through an
identity whose backward multiplies the incoming gradient by the scaler's scale (what
``scaler.scale(loss).backward()`` does), and each optimizer is wrapped so that ``step()`` is
``scaler.step(opt); scaler.update()`` (unscale, skip the step on inf/NaN gradients, adapt the
scale). The loss values logged are unscaled. The scaler's state (scale, growth tracker) is part of
the checkpoint, so a resumed fp16 run goes on with the scale it had (bf16 needs no scaler).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from ..errors import ConfigError

AMP_MODES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class _ScaleGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, loss, scale):
        ctx.save_for_backward(scale)
        return loss.view_as(loss)

    @staticmethod
    def backward(ctx, grad):
        (scale,) = ctx.saved_tensors
        return grad * scale.to(grad.dtype), None


class _ScaledOptimizer:
    """``step()`` through the GradScaler; everything else is the wrapped optimizer's."""

    def __init__(self, optimizer, scaler) -> None:
        self.optimizer, self.scaler = optimizer, scaler

    def step(self):
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def __getattr__(self, name):
        return getattr(self.optimizer, name)


def setup_amp(exp) -> None:
    """Apply ``train.amp`` to an experiment (called by ``Experiment.__init__``)."""
    mode = exp.cfg["train"].get("amp", "none")
    if mode not in AMP_MODES:
        raise ConfigError(f"train.amp must be one of {', '.join(map(repr, AMP_MODES))}, got {mode!r}")
    dtype = AMP_MODES[mode]
    exp.amp_scaler = None
    if dtype is None:
        return
    device_type = exp.device.type
    scaler = None
    if mode == "fp16":
        scaler = torch.amp.GradScaler(device_type)
        exp.optimizers = {k: _ScaledOptimizer(o, scaler) for k, o in exp.optimizers.items()}
        objective = exp.objective
        plain_loss = objective.loss

        def scaled_loss(phase, batch):
            loss, logs = plain_loss(phase, batch)
            scale = scaler.scale(torch.ones((), device=loss.device))  # also initialises the scaler
            return _ScaleGrad.apply(loss.float(), scale.detach()), logs

        objective.loss = scaled_loss
    exp.amp_scaler = scaler
    outer = exp.phase_context

    @contextmanager
    def phase_context(phase: str):
        with outer(phase), torch.autocast(device_type, dtype=dtype):
            yield

    exp.phase_context = phase_context
