"""The semi-supervised (K+1)-class GAN of Improved-GAN §5, as the reference trains it (docs/papers.md §A.1).

D step: labeled, unlabeled and generated batches go through D in three separate forward passes
(each with its own noise/dropout sample); loss = L_supervised + w·L_unsupervised with the (K+1)-th
logit fixed at 0, optionally with one-sided label smoothing of the real target. With
``fuse_d_passes`` (the MNIST presets) the three batches go through D as one concatenated batch: the
same loss and gradients, each example still with its own noise sample (drawn in one call per layer
instead of three), one matrix product per layer instead of three and no accumulation of three weight
gradients. Only for a discriminator that treats every example on its own (``D.samplewise``: no
batch norm, no minibatch discrimination); the random draws then come from the generator in another
order than the reference's, so a run is reproducible under its seed with the same setting only.

G step, one of:
* feature matching (``feature_matching="l2"`` for MNIST, ``"l1"`` for the released CIFAR/SVHN
  code): match the batch mean of D's feature layer on the generator's real batch ``x_unl2``
  and on a fresh generated batch, D in training mode;
* ``feature_matching=""``: the saturating minimax loss E log(1 − D(G(z))) of the
  minibatch-discrimination models, with ``g_steps`` generator steps per D step (3 there).

``real_target`` < 1 is one-sided label smoothing [§3.4]; ``historical_averaging`` see ``base``.
"""

from __future__ import annotations

import torch

from .. import losses
from .base import Objective


class SemiSupervisedGAN(Objective):
    stream = "semi_supervised"

    def __init__(
        self,
        G,
        D,
        *,
        unlabeled_weight: float = 1.0,
        feature_matching: str = "l2",
        real_target: float = 1.0,
        g_steps: int = 1,
        historical_averaging: float = 0.0,
        fuse_d_passes: bool = False,
    ) -> None:
        super().__init__(G, D, historical_averaging)
        if feature_matching not in ("l1", "l2", ""):
            raise ValueError(f"feature_matching must be 'l1', 'l2' or '' (minimax), got {feature_matching!r}")
        if fuse_d_passes and not getattr(D, "samplewise", False):
            raise ValueError(
                f"fuse_d_passes needs a discriminator that treats every example on its own (no batch "
                f"norm, no minibatch discrimination); {type(D).__name__} does not declare samplewise = "
                f"True: set objective.fuse_d_passes=false"
            )
        self.fuse_d_passes = fuse_d_passes
        self.unlabeled_weight = unlabeled_weight
        self.feature_matching = feature_matching
        self.real_target = real_target
        self.schedule = ("d",) + ("g",) * g_steps

    def d_loss(self, batch):
        x_lab, x_unl = batch["x_lab"], batch["x_unl"]
        with torch.no_grad():
            fake = self.fake(x_unl.shape[0], x_unl.device)
        if self.fuse_d_passes:
            sizes = [x_lab.shape[0], x_unl.shape[0], fake.shape[0]]
            logits_lab, logits_unl, logits_fake = self.D(torch.cat([x_lab, x_unl, fake])).split(sizes)
        else:
            logits_lab = self.D(x_lab)
            logits_unl = self.D(x_unl)
            logits_fake = self.D(fake)
        total, sup, unsup = losses.semi_supervised_d_loss(
            logits_lab, batch["y_lab"], logits_unl, logits_fake, self.unlabeled_weight, self.real_target
        )
        train_err = (logits_lab.argmax(1) != batch["y_lab"]).float().mean()
        return total, {"loss_lab": sup, "loss_unl": unsup, "train_error": train_err}

    def g_loss(self, batch):
        x_real = batch["x_unl2"]
        fake = self.fake(x_real.shape[0], x_real.device)
        if self.feature_matching:
            with torch.no_grad():
                _, f_real = self.D(x_real, with_features=True)
            _, f_fake = self.D(fake, with_features=True)
            loss = losses.feature_matching_loss(f_real, f_fake, self.feature_matching)
        else:
            loss = losses.g_loss_minimax(losses.gan_logit(self.D(fake)))
        return loss, {"loss_g": loss}
