"""Regularizers and discriminator constraints, as pure functions or small in-place operations.

Each function's docstring names the paper section it implements.
"""

from __future__ import annotations


# ---------------------------------------------------------------------------------------------
# Historical averaging  [Improved-GAN §3.3; papers.md §A.5]
# ---------------------------------------------------------------------------------------------
# Section-local imports: other sections of this shared file manage their own.
import torch as _torch  # noqa: E402
from torch import nn as _nn  # noqa: E402

#: The paper gives no coefficient and the released code never implements historical averaging
#: (UNVERIFIED). 1.0 takes the paper's ‖θ − θ̄‖² literally, with no factor in front.
HISTORICAL_AVERAGING_WEIGHT = 1.0


class HistoricalAverage:
    """Historical averaging: the penalty λ·‖θ − θ̄‖² with θ̄ = (1/t)·Σ_{i≤t} θ[i] [Improved-GAN §3.3].

    θ̄ is the average of all values the player's trainable parameters have taken, maintained online:
    it starts at the parameters given to the constructor (t = 1), and ``update(model)``, called
    after each optimizer step, folds the new values in (θ̄ ← θ̄ + (θ − θ̄)/t). ``penalty(model)`` is
    λ·Σ_params ‖θ − θ̄‖² (a sum over every element), to be added to that player's loss before its
    backward pass; θ̄ is a constant there, so the gradient is 2λ(θ − θ̄). Parameters that do not
    require a gradient (e.g. the fixed weight-norm scales) are left out: they never change.

    Not to be confused with the evaluation-only exponential moving average of D's weights in the
    reference scripts.
    """

    def __init__(self, model: _nn.Module, weight: float = HISTORICAL_AVERAGING_WEIGHT) -> None:
        if weight < 0:
            raise ValueError(f"historical-averaging weight must be >= 0, got {weight}")
        self.weight = float(weight)
        self.count = 1
        self.average = {
            name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad
        }

    def _params(self, model: _nn.Module) -> dict:
        params = dict(model.named_parameters())
        missing = [name for name in self.average if name not in params]
        if missing:
            raise ValueError(f"model lacks averaged parameters: {', '.join(missing[:5])}")
        return params

    def penalty(self, model: _nn.Module) -> _torch.Tensor:
        """λ·Σ ‖θ − θ̄‖² as a scalar tensor (differentiable in θ)."""
        params = self._params(model)
        total = sum((params[name] - avg).square().sum() for name, avg in self.average.items())
        if not isinstance(total, _torch.Tensor):  # a model without trainable parameters
            return _torch.zeros(())
        return self.weight * total

    @_torch.no_grad()
    def update(self, model: _nn.Module) -> None:
        """Fold the model's current parameters into the running average."""
        params = self._params(model)
        self.count += 1
        for name, avg in self.average.items():
            avg.add_(params[name].detach() - avg, alpha=1.0 / self.count)

    def state_dict(self) -> dict:
        return {
            "weight": self.weight,
            "count": self.count,
            "average": {name: t.clone() for name, t in self.average.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        if set(state["average"]) != set(self.average):
            raise ValueError("historical-average state does not match this model's parameters")
        self.weight = float(state["weight"])
        self.count = int(state["count"])
        for name, t in state["average"].items():
            self.average[name].copy_(t)
