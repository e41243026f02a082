"""GAN objectives as pure functions of logits and features.

Every function takes tensors and returns a scalar tensor; none touches a model. Conventions:
``real`` / ``fake`` are the discriminator's scalar logits (shape ``(N,)`` or ``(N, 1)``) on real and
generated samples; ``class_logits`` are the K class logits of a semi-supervised discriminator.

Sources:
- Improved-GAN (Salimans et al., 2016) §5 and the reference code (docs/papers.md §A.1): the (K+1)-class
  semi-supervised loss with the (K+1)-th logit fixed at 0, feature matching (§3.1), one-sided label
  smoothing (§3.4), and the saturating generator loss of the minibatch-discrimination models.
- SN-GAN (Miyato et al., 2018) eq. 15-17 (docs/papers.md §B.2): non-saturating and hinge losses; the
  Wasserstein loss of the WGAN baselines.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# --------------------------------------------------------------------------------------------
# Semi-supervised (K+1)-class GAN  [Improved-GAN §5, docs/papers.md §A.1]
# --------------------------------------------------------------------------------------------


def gan_logit(class_logits: Tensor) -> Tensor:
    """The real-vs-fake logit of a K-class discriminator whose (K+1)-th logit is fixed at 0.

    With Z(x) = Σ_k exp l_k(x), D(x) = Z/(Z+1) = sigmoid(log Z), so the logit is logsumexp_k l_k(x),
    computed stably by ``torch.logsumexp``.
    """
    return torch.logsumexp(class_logits, dim=1)


def supervised_loss(class_logits: Tensor, labels: Tensor) -> Tensor:
    """L_supervised = −mean_i [l_{y_i}(x_i) − logsumexp_k l_k(x_i)]: K-way cross-entropy."""
    return F.cross_entropy(class_logits, labels)


def unsupervised_loss(logits_real: Tensor, logits_fake: Tensor, real_target: float = 1.0) -> Tensor:
    """L_unsupervised = ½·E_real[−log D(x)] + ½·E_fake[−log(1 − D(G(z)))] on class logits.

    With l = logsumexp(class logits): −log D = softplus(−l) = −l + softplus(l) and
    −log(1 − D) = softplus(l). ``real_target`` < 1 applies one-sided label smoothing
    [Improved-GAN §3.4] to the real half only: α·softplus(−l) + (1 − α)·softplus(l).
    """
    l_real = gan_logit(logits_real)
    l_fake = gan_logit(logits_fake)
    real_term = _smoothed_real_bce(l_real, real_target)
    return 0.5 * real_term + 0.5 * F.softplus(l_fake).mean()


def semi_supervised_d_loss(
    logits_lab: Tensor,
    labels: Tensor,
    logits_unl: Tensor,
    logits_fake: Tensor,
    unlabeled_weight: float = 1.0,
    real_target: float = 1.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """Total D loss ``L_sup + w·L_unsup`` of the semi-supervised GAN; returns (total, sup, unsup)."""
    sup = supervised_loss(logits_lab, labels)
    unsup = unsupervised_loss(logits_unl, logits_fake, real_target)
    return sup + unlabeled_weight * unsup, sup, unsup


# --------------------------------------------------------------------------------------------
# Feature matching  [Improved-GAN §3.1]
# --------------------------------------------------------------------------------------------


def feature_matching_loss(features_real: Tensor, features_fake: Tensor, distance: str = "l2") -> Tensor:
    """Distance between the batch means of an intermediate D feature on real and generated data.

    ``distance="l2"``: mean over feature dims of the squared difference (the MNIST reference code;
    the paper's ‖E f(x) − E f(G(z))‖²₂ up to the 1/dim factor). ``distance="l1"``: mean absolute
    difference, which is what the released CIFAR-10 and SVHN code uses (docs/papers.md §A.1, §C.4a).
    Features are flattened past the batch dimension.
    """
    diff = features_real.flatten(1).mean(0) - features_fake.flatten(1).mean(0)
    if distance == "l2":
        return diff.square().mean()
    if distance == "l1":
        return diff.abs().mean()
    raise ValueError(f"feature-matching distance must be 'l1' or 'l2', got {distance!r}")


# --------------------------------------------------------------------------------------------
# Unconditional GAN losses on a scalar logit  [SN-GAN eq. 15-17; WGAN]
# --------------------------------------------------------------------------------------------


def _smoothed_real_bce(real: Tensor, real_target: float) -> Tensor:
    """Binary cross-entropy of logits against target α (one-sided label smoothing when α < 1)."""
    if real_target == 1.0:
        return F.softplus(-real).mean()
    return (real_target * F.softplus(-real) + (1.0 - real_target) * F.softplus(real)).mean()


def d_loss_standard(real: Tensor, fake: Tensor, real_target: float = 1.0) -> Tensor:
    """D's cross-entropy: −E log D(x) − E log(1 − D(G(z))) = E softplus(−D(x)) + E softplus(D(G(z))).

    ``real_target`` < 1 is one-sided label smoothing [Improved-GAN §3.4]: the real target is α, the
    fake target stays 0.
    """
    return _smoothed_real_bce(real, real_target) + F.softplus(fake).mean()


def g_loss_nonsaturating(fake: Tensor) -> Tensor:
    """Non-saturating G loss −E log D(G(z)) = E softplus(−D(G(z))) [SN-GAN eq. 15]."""
    return F.softplus(-fake).mean()


def g_loss_minimax(fake: Tensor) -> Tensor:
    """Saturating (minimax) G loss E log(1 − D(G(z))) = −E softplus(D(G(z))).

    Used by the released minibatch-discrimination models (docs/papers.md §A.1), where ``fake`` is the
    semi-supervised GAN logit ``gan_logit(class_logits)``.
    """
    return -F.softplus(fake).mean()


def d_loss_hinge(real: Tensor, fake: Tensor) -> Tensor:
    """Hinge D loss E relu(1 − D(x)) + E relu(1 + D(G(z))) [SN-GAN eq. 16]."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def g_loss_hinge(fake: Tensor) -> Tensor:
    """Hinge G loss −E D(G(z)) [SN-GAN eq. 17]."""
    return -fake.mean()


def d_loss_wasserstein(real: Tensor, fake: Tensor) -> Tensor:
    """Critic loss E D(G(z)) − E D(x) of the WGAN baselines (weight clipping, WGAN-GP)."""
    return fake.mean() - real.mean()


def g_loss_wasserstein(fake: Tensor) -> Tensor:
    """WGAN generator loss −E D(G(z))."""
    return -fake.mean()


#: Loss pairs (D loss, G loss) by the names presets use.
ADVERSARIAL_LOSSES = {
    "nonsaturating": (d_loss_standard, g_loss_nonsaturating),
    "minimax": (d_loss_standard, g_loss_minimax),
    "hinge": (d_loss_hinge, g_loss_hinge),
    "wasserstein": (d_loss_wasserstein, g_loss_wasserstein),
}
