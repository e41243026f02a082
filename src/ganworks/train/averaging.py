"""Exponential moving average of a model's weights, bias-corrected.

The Improved-GAN reference evaluates an average of D's weights, a ← a + (1 − β)(p − a) after every
D step with β = 0.9999 (docs/papers.md §A.2, §C.4e), started at zero and never bias-corrected, which
makes its test errors meaningless for the first tens of thousands of steps. We keep the
bias-corrected average â_t = a_t / (1 − β^t) directly: it equals the reference's average once
β^t ≈ 0 and is a proper average from the first step. In the update form used here,
â_t = â_{t−1} + w_t (p_t − â_{t−1}) with w_t = (1 − β) / (1 − β^t) (w_1 = 1: a copy).

The same class averages G's weights for sampling (SN-GAN option). Buffers (BN statistics, the
spectral-norm vectors u, v) are copied, not averaged.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.steps = 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.steps += 1
        w = (1.0 - self.decay) / (1.0 - self.decay**self.steps)
        avg = [p for p in self.model.parameters()]
        cur = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(avg, cur, w)
        for b_avg, b in zip(self.model.buffers(), model.buffers()):
            b_avg.copy_(b)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "steps": self.steps, "model": self.model.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.decay, self.steps = state["decay"], state["steps"]
        self.model.load_state_dict(state["model"])
