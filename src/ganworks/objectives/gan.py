"""The unconditional GAN objective of the SN-GAN experiments [SN-GAN §4, App. B; docs/papers.md §B.2].

Each iteration is one G step followed by ``n_dis`` D steps (the order of sngan_projection's and
chainer-gan-lib's standard updaters), each D step on a fresh real batch and a fresh generated batch of
the same size; the G step draws ``g_batch_multiplier`` × batch fakes (2 in sngan_projection's CIFAR
configs). chainer-gan-lib's WGAN-GP updater orders it otherwise: its G step trains on the fakes of its
first D step, made before G's update (a documented deviation, measured in
benchmarks/reference_equivalence, section ``wgan-gp``).

``loss`` names a (D, G) pair from ``losses.ADVERSARIAL_LOSSES``: "nonsaturating" (eq. 15),
"hinge" (eq. 16-17), "wasserstein" (weight clipping, WGAN-GP), "minimax". The D constraints that
are not layers (those are chosen with the model's ``norm``) are options here:

* ``gradient_penalty`` = λ (10 in the paper) with ``gp_mode`` "wgan-gp" or "gan-gp";
* ``weight_clip`` = c (0.01), applied after every D step;
* ``orthonormal`` = the weight of Brock et al.'s ‖WᵀW − I‖²_F penalty, with orthonormal init of D;
* ``real_target`` < 1: one-sided label smoothing of the standard loss [Improved-GAN §3.4];
* ``historical_averaging`` (see ``base``).

A K-class discriminator (the Improved-GAN minibatch model without labels, Table 3 "−L") is scored
by logsumexp of its logits, its (K+1)-th logit fixed at 0.
"""

from __future__ import annotations

import torch

from .. import losses, regularizers
from .base import Objective, scalar_logit


class GAN(Objective):
    stream = "unsupervised"

    def __init__(
        self,
        G,
        D,
        *,
        loss: str = "nonsaturating",
        n_dis: int = 1,
        g_batch_multiplier: int = 1,
        gradient_penalty: float = 0.0,
        gp_mode: str = "wgan-gp",
        weight_clip: float = 0.0,
        orthonormal: float = 0.0,
        real_target: float = 1.0,
        historical_averaging: float = 0.0,
    ) -> None:
        super().__init__(G, D, historical_averaging)
        if loss not in losses.ADVERSARIAL_LOSSES:
            raise ValueError(f"loss must be one of {', '.join(losses.ADVERSARIAL_LOSSES)}, got {loss!r}")
        if real_target != 1.0 and loss not in ("nonsaturating", "minimax"):
            raise ValueError("label smoothing (real_target < 1) applies to the standard cross-entropy losses only")
        if n_dis < 1 or g_batch_multiplier < 1:
            raise ValueError("n_dis and g_batch_multiplier must be at least 1")
        self.d_fn, self.g_fn = losses.ADVERSARIAL_LOSSES[loss]
        self.schedule = ("g",) + ("d",) * n_dis
        self.g_batch_multiplier = g_batch_multiplier
        self.gradient_penalty, self.gp_mode = gradient_penalty, gp_mode
        self.weight_clip = weight_clip
        self.orthonormal = orthonormal
        self.real_target = real_target
        if orthonormal > 0:
            regularizers.orthonormal_init_(D)

    def d_loss(self, batch):
        x = batch["x"]
        with torch.no_grad():
            fake = self.fake(x.shape[0], x.device)
        real_logit, fake_logit = scalar_logit(self.D(x)), scalar_logit(self.D(fake))
        if self.real_target != 1.0:
            loss = self.d_fn(real_logit, fake_logit, real_target=self.real_target)
        else:
            loss = self.d_fn(real_logit, fake_logit)
        logs = {"d_real": real_logit.mean(), "d_fake": fake_logit.mean()}
        if self.gradient_penalty:
            gp = regularizers.gradient_penalty(self.D, x, fake, mode=self.gp_mode)
            loss = loss + self.gradient_penalty * gp
            logs["gradient_penalty"] = gp
        if self.orthonormal:
            ortho = regularizers.orthonormal_penalty(self.D)
            loss = loss + self.orthonormal * ortho
            logs["orthonormal_penalty"] = ortho
        return loss, logs

    def g_loss(self, batch):
        device = next(self.G.parameters()).device
        fake = self.fake(self.batch_size * self.g_batch_multiplier, device)
        loss = self.g_fn(scalar_logit(self.D(fake)))
        return loss, {}

    def after_step(self, phase: str) -> None:
        super().after_step(phase)
        if phase == "d" and self.weight_clip:
            regularizers.clip_weights_(self.D, self.weight_clip)
