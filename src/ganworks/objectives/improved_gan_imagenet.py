"""The Improved-GAN ImageNet objective [Improved-GAN §3.4, §6.4; docs/papers.md §A.5; code
IG:imagenet/build_model.py, model.py ``sigmoid_kl_with_logits``].

D outputs 1001 logits (1000 classes + "generated") for the joint batch [real; fake]; the GAN logit
is l = logsumexp(class logits) − generated logit.

* D loss = KL-form sigmoid cross-entropy of l(real) against the smoothed target ``real_target``
  (0.75: ``d_label_smooth`` 0.25, one-sided) + sigmoid cross-entropy of l(fake) against 0 + the
  softmax cross-entropy of the real rows' 1001 logits against their labels (weight ``class_weight``, 1).
* G loss = the KL-form sigmoid cross-entropy of l(fake) against ``g_target`` (0.375 = 0.75/2).

"KL-form" is the reference's ``sigmoid_kl_with_logits``: BCE(l, t) − H(t), which has the same
gradients as BCE and is 0 at the optimum. One iteration is a D step then a G step on the same real
batch (the reference applies both updates in one TF step from the same forward pass; here the G
step re-draws its fakes after the D update: UNVERIFIED difference in effect).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .base import Objective


def gan_logit_from_1001(class_logits: torch.Tensor) -> torch.Tensor:
    """logsumexp over the real-class logits minus the explicit "generated" logit (the last one)."""
    return torch.logsumexp(class_logits[:, :-1], dim=1) - class_logits[:, -1]


def sigmoid_kl_with_logits(logits: torch.Tensor, target: float) -> torch.Tensor:
    """mean BCE(logits, target) − H(target) (the reference's sigmoid_kl_with_logits)."""
    entropy = 0.0 if target in (0.0, 1.0) else -target * math.log(target) - (1 - target) * math.log(1 - target)
    bce = F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))
    return bce - entropy


class ImageNetSemiSupervisedGAN(Objective):
    stream = "unsupervised"  # batches carry "x" and "y"
    schedule = ("d", "g")

    def __init__(
        self,
        G,
        D,
        *,
        real_target: float = 0.75,
        g_target: float = 0.375,
        class_weight: float = 1.0,
        historical_averaging: float = 0.0,
    ) -> None:
        super().__init__(G, D, historical_averaging)
        if not (0 < real_target <= 1 and 0 < g_target <= 1):
            raise ValueError("real_target and g_target must be in (0, 1]")
        self.real_target, self.g_target, self.class_weight = real_target, g_target, class_weight

    def _joint(self, x: torch.Tensor, fake: torch.Tensor):
        logits = self.D(torch.cat([x, fake], dim=0))
        b = x.shape[0]
        gan = gan_logit_from_1001(logits)
        return logits[:b], gan[:b], gan[b:]

    def d_loss(self, batch):
        x, y = batch["x"], batch["y"]
        with torch.no_grad():
            fake = self.fake(x.shape[0], x.device)
        class_logits, real, fake_l = self._joint(x, fake)
        loss_real = sigmoid_kl_with_logits(real, self.real_target)
        loss_fake = F.binary_cross_entropy_with_logits(fake_l, torch.zeros_like(fake_l))
        loss_class = F.cross_entropy(class_logits, y)
        loss = loss_real + loss_fake + self.class_weight * loss_class
        train_error = (class_logits.argmax(dim=1) != y).float().mean()
        return loss, {
            "d_loss_real": loss_real,
            "d_loss_fake": loss_fake,
            "d_loss_class": loss_class,
            "train_error": train_error,
        }

    def g_loss(self, batch):
        x = batch["x"]
        fake = self.fake(x.shape[0], x.device)
        _, _, fake_l = self._joint(x, fake)
        return sigmoid_kl_with_logits(fake_l, self.g_target), {}
