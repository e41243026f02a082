"""The class-conditional GAN objective of the SN-GAN ImageNet and conditional CIFAR-10 runs
[SN-GAN §4.2; Miyato & Koyama 2018 (projection discriminator); docs/papers.md §B.2-B.4; code
SNP:updater.py with ``conditional: True``].

Each iteration is one G step followed by ``n_dis`` D steps, as the unconditional ``gan`` objective:

* D step: a real batch (x, y) from the stream, D(x, y) on it; and as many fakes G(z, y') with
  classes y' drawn **uniformly** over the classes, scored as D(G(z, y'), y').
* G step: ``n_gen_samples`` fakes (``0``: the data batch size) with uniform classes, scored by
  D(G(z, y'), y').

``loss`` names a (D, G) pair of ``losses.ADVERSARIAL_LOSSES``; the released configs use "hinge".
The generator and discriminator must be conditional on the same number of classes.
"""

from __future__ import annotations

import torch

from .. import losses
from .base import Objective, scalar_logit


class ConditionalGAN(Objective):
    stream = "unsupervised"  # batches carry "x" and "y"

    def __init__(
        self, G, D, *, loss: str = "hinge", n_dis: int = 5, n_gen_samples: int = 0, historical_averaging: float = 0.0
    ) -> None:
        super().__init__(G, D, historical_averaging)
        if loss not in losses.ADVERSARIAL_LOSSES:
            raise ValueError(f"loss must be one of {', '.join(losses.ADVERSARIAL_LOSSES)}, got {loss!r}")
        if n_dis < 1 or n_gen_samples < 0:
            raise ValueError("n_dis must be at least 1 and n_gen_samples at least 0 (0: the batch size)")
        k_g, k_d = getattr(G, "num_classes", 0), getattr(D, "num_classes", 0)
        if not k_g or k_g != k_d:
            raise ValueError(
                f"the conditional objective needs a generator and a discriminator conditional on the "
                f"same classes (got num_classes {k_g} and {k_d}): set model.generator.num_classes and "
                f"model.discriminator.num_classes"
            )
        self.num_classes = k_g
        self.d_fn, self.g_fn = losses.ADVERSARIAL_LOSSES[loss]
        self.schedule = ("g",) + ("d",) * n_dis
        self.n_gen_samples = n_gen_samples

    def fake_with_classes(self, n: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, self.num_classes, (n,), device=device)
        return self.G(self.G.sample_z(n, device=device), y), y

    def d_loss(self, batch):
        x, y = batch["x"], batch["y"]
        with torch.no_grad():
            fake, y_fake = self.fake_with_classes(x.shape[0], x.device)
        real_logit = scalar_logit(self.D(x, y))
        fake_logit = scalar_logit(self.D(fake, y_fake))
        return self.d_fn(real_logit, fake_logit), {"d_real": real_logit.mean(), "d_fake": fake_logit.mean()}

    def g_loss(self, batch):
        device = next(self.G.parameters()).device
        fake, y_fake = self.fake_with_classes(self.n_gen_samples or self.batch_size, device)
        return self.g_fn(scalar_logit(self.D(fake, y_fake))), {}
