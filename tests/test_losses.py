import math

import torch
import torch.nn.functional as F

from ganworks import losses


def test_semi_supervised_loss_matches_explicit_k_plus_1_softmax():
    torch.manual_seed(0)
    K, n = 10, 64
    lab, unl, fake = torch.randn(n, K) * 3, torch.randn(n, K) * 3, torch.randn(n, K) * 3
    y = torch.randint(0, K, (n,))
    total, sup, unsup = losses.semi_supervised_d_loss(lab, y, unl, fake)

    def probs(logits):  # explicit (K+1)-way softmax with the extra logit fixed at 0
        full = torch.cat([logits, torch.zeros(len(logits), 1)], 1).double()
        return full.softmax(1)

    p_lab = probs(lab)
    # supervised: -log p(y | x, y < K+1)
    sup_ref = -(p_lab[torch.arange(n), y] / p_lab[:, :K].sum(1)).log().mean()
    # unsupervised: -E_data log(1 - p(K+1|x)) - E_G log p(K+1|x), halved as in the reference
    unsup_ref = -0.5 * (1 - probs(unl)[:, K]).log().mean() - 0.5 * probs(fake)[:, K].log().mean()
    assert torch.allclose(sup.double(), sup_ref, atol=1e-5)
    assert torch.allclose(unsup.double(), unsup_ref, atol=1e-5)
    assert torch.allclose(total, sup + unsup)


def test_semi_supervised_loss_is_stable_for_huge_logits():
    big = torch.full((4, 10), 1e4)
    total, _, unsup = losses.semi_supervised_d_loss(big, torch.zeros(4, dtype=torch.long), big, -big)
    assert torch.isfinite(total) and torch.isfinite(unsup)


def test_label_smoothing_one_sided_values():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    a = 0.9
    expected = -(a * F.logsigmoid(real) + (1 - a) * F.logsigmoid(-real)).mean() - F.logsigmoid(-fake).mean()
    assert torch.allclose(losses.d_loss_standard(real, fake, real_target=a), expected)
    # the fake target is untouched: smoothing changes only the real term
    assert torch.allclose(
        losses.d_loss_standard(real, fake, 0.9) - losses.d_loss_standard(real, fake, 1.0),
        ((a - 1) * F.softplus(-real) + (1 - a) * F.softplus(real)).mean(),
    )
    # semi-supervised: smoothing on the GAN logit logsumexp(class logits)
    lg = torch.randn(5, 10)
    l = torch.logsumexp(lg, 1)
    got = losses.unsupervised_loss(lg, lg, real_target=a)
    want = 0.5 * (a * F.softplus(-l) + (1 - a) * F.softplus(l)).mean() + 0.5 * F.softplus(l).mean()
    assert torch.allclose(got, want)


def test_feature_matching_l2_and_l1():
    fr, ff = torch.randn(8, 5), torch.randn(8, 5)
    d = fr.mean(0) - ff.mean(0)
    assert math.isclose(losses.feature_matching_loss(fr, ff, "l2").item(), (d**2).mean().item(), rel_tol=1e-6)
    assert math.isclose(losses.feature_matching_loss(fr, ff, "l1").item(), d.abs().mean().item(), rel_tol=1e-6)


def test_adversarial_losses_against_formulas():
    r, f = torch.tensor([1.5, -0.5, 0.2]), torch.tensor([-2.0, 0.3, 1.0])
    sig = torch.sigmoid
    assert torch.allclose(losses.d_loss_standard(r, f), -(sig(r).log().mean() + (1 - sig(f)).log().mean()))
    assert torch.allclose(losses.g_loss_nonsaturating(f), -sig(f).log().mean())
    assert torch.allclose(losses.g_loss_minimax(f), (1 - sig(f)).log().mean())
    assert torch.allclose(
        losses.d_loss_hinge(r, f), torch.tensor([0.0, 1.5, 0.8]).mean() + torch.tensor([0.0, 1.3, 2.0]).mean()
    )
    assert torch.allclose(losses.g_loss_hinge(f), -f.mean())
    assert torch.allclose(losses.d_loss_wasserstein(r, f), f.mean() - r.mean())
