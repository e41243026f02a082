"""What an objective is to the training loop.

An objective owns no optimizer and no data: it turns a batch into a loss for one player. Its
``schedule`` lists the phases of one iteration in order: ``"d"`` is a discriminator step that takes
a fresh batch from the stream, ``"g"`` a generator step that reuses the last batch (or none). The
loop does the rest: zeroing, backward, optimizer step, averaging, NaN checks, logging.

Historical averaging [Improved-GAN §3.3] is available to every objective: with
``historical_averaging=λ > 0`` each player's loss gets λ‖θ − θ̄‖², θ̄ the running mean of that
player's past parameters, updated after each of its steps.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..regularizers import HistoricalAverage


class Objective:
    #: phases of one iteration, in order
    schedule: tuple[str, ...] = ("d", "g")
    #: which batch stream feeds it: "semi_supervised" or "unsupervised"
    stream: str = "unsupervised"
    #: the data's batch size, set by the experiment (for G steps that come before any batch)
    batch_size: int = 64

    def __init__(self, G: nn.Module, D: nn.Module, historical_averaging: float = 0.0) -> None:
        self.G, self.D = G, D
        self.historical = (
            {"d": HistoricalAverage(D, historical_averaging), "g": HistoricalAverage(G, historical_averaging)}
            if historical_averaging > 0
            else {}
        )

    def d_loss(self, batch: dict) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError

    def g_loss(self, batch: dict | None) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError

    def loss(self, phase: str, batch: dict | None) -> tuple[Tensor, dict[str, Tensor]]:
        """The phase's loss, with its historical-averaging penalty when enabled."""
        loss, logs = self.d_loss(batch) if phase == "d" else self.g_loss(batch)
        if phase in self.historical:
            penalty = self.historical[phase].penalty(self.D if phase == "d" else self.G)
            loss = loss + penalty
            logs = {**logs, f"historical_penalty_{phase}": penalty}
        return loss, logs

    def after_step(self, phase: str) -> None:
        """Called after each optimizer step of ``phase`` (weight clipping, averages, ...)."""
        if phase in self.historical:
            self.historical[phase].update(self.D if phase == "d" else self.G)

    def state_dict(self) -> dict:
        return {"historical": {k: h.state_dict() for k, h in self.historical.items()}}

    def load_state_dict(self, state: dict) -> None:
        for k, h in self.historical.items():
            h.load_state_dict(state["historical"][k])

    def fake(self, n: int, device) -> Tensor:
        return self.G(self.G.sample_z(n, device=device))


def scalar_logit(out: Tensor) -> Tensor:
    """D's real-vs-fake logit: (N,) or (N, 1) as is; K > 1 class logits → logsumexp (the K+1 trick)."""
    if out.dim() == 2 and out.shape[1] > 1:
        return torch.logsumexp(out, dim=1)
    return out.reshape(out.shape[0])
