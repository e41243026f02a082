"""What an objective is to the training loop.

An objective owns no optimizer and no data: it turns a batch into a loss for one player. Its
``schedule`` lists the phases of one iteration in order: ``"d"`` is a discriminator step that takes
a fresh batch from the stream, ``"g"`` a generator step that reuses the last batch (or none). The
loop does the rest: zeroing, backward, optimizer step, averaging, NaN checks, logging.
"""

from __future__ import annotations

from torch import Tensor, nn


class Objective:
    #: phases of one iteration, in order
    schedule: tuple[str, ...] = ("d", "g")
    #: which batch stream feeds it: "semi_supervised" or "unsupervised"
    stream: str = "unsupervised"

    def __init__(self, G: nn.Module, D: nn.Module) -> None:
        self.G, self.D = G, D

    def d_loss(self, batch: dict) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError

    def g_loss(self, batch: dict | None) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError

    def after_d_step(self) -> None:
        """Called after each discriminator optimizer step (e.g. weight clipping)."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
