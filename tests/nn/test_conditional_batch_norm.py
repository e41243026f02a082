"""Categorical conditional BN against per-class plain BN; the SN embedding's σ against an SVD."""

import torch
from torch import nn

from ganworks.nn.conditional_batch_norm import CategoricalConditionalBatchNorm2d
from ganworks.nn.spectral_norm import apply_spectral_norm, spectral_norms


def test_init_is_plain_bn():
    cbn = CategoricalConditionalBatchNorm2d(5, 7)
    assert torch.equal(cbn.gammas.weight, torch.ones(7, 5)) and torch.equal(cbn.betas.weight, torch.zeros(7, 5))


def test_matches_plain_bn_with_each_examples_class_affine():
    torch.manual_seed(0)
    C, K = 4, 3
    cbn = CategoricalConditionalBatchNorm2d(C, K, eps=2e-5, momentum=0.1)
    with torch.no_grad():
        cbn.gammas.weight.normal_(1, 0.5)
        cbn.betas.weight.normal_(0, 0.5)
    x = torch.randn(6, C, 5, 5) * 3 + 1
    y = torch.tensor([0, 2, 1, 2, 0, 0])
    out = cbn.train()(x, y)
    # independent computation: one plain BN over the whole batch (shared statistics), then per class
    # a plain BN whose affine parameters are that class's γ, β, applied with the same batch stats
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    for c in range(K):
        bn = nn.BatchNorm2d(C, eps=2e-5)
        with torch.no_grad():
            bn.weight.copy_(cbn.gammas.weight[c])
            bn.bias.copy_(cbn.betas.weight[c])
        rows = y == c
        want = (x[rows] - mean) / torch.sqrt(var + 2e-5) * bn.weight[None, :, None, None] + bn.bias[None, :, None, None]
        torch.testing.assert_close(out[rows], want, rtol=1e-5, atol=1e-5)
    # running statistics are shared: the same as a plain BN's after the same batch
    plain = nn.BatchNorm2d(C, eps=2e-5, momentum=0.1).train()
    plain(x)
    torch.testing.assert_close(cbn.bn.running_mean, plain.running_mean)
    torch.testing.assert_close(cbn.bn.running_var, plain.running_var)
    # eval mode: per class, exactly a plain BN with that class's γ, β and the running stats
    cbn.eval()
    plain.eval()
    for c in range(K):
        with torch.no_grad():
            plain.weight.copy_(cbn.gammas.weight[c])
            plain.bias.copy_(cbn.betas.weight[c])
        torch.testing.assert_close(cbn(x, torch.full((6,), c)), plain(x), rtol=1e-5, atol=1e-5)


def test_class_weights_interpolate_parameters():
    torch.manual_seed(1)
    cbn = CategoricalConditionalBatchNorm2d(3, 4).eval()
    with torch.no_grad():
        cbn.gammas.weight.normal_()
        cbn.betas.weight.normal_()
    x = torch.randn(2, 3, 2, 2)
    w = torch.tensor([[0.0, 0.25, 0.0, 0.75], [0.0, 0.0, 1.0, 0.0]])
    out = cbn(x, w)
    g = 0.25 * cbn.gammas.weight[1] + 0.75 * cbn.gammas.weight[3]
    b = 0.25 * cbn.betas.weight[1] + 0.75 * cbn.betas.weight[3]
    h = cbn.bn(x[:1])
    torch.testing.assert_close(out[:1], h * g[None, :, None, None] + b[None, :, None, None])
    torch.testing.assert_close(out[1:], cbn(x[1:], torch.tensor([2])))


def test_spectral_norm_embedding_sigma_matches_svd():
    torch.manual_seed(0)
    emb = nn.Embedding(10, 6)
    with torch.no_grad():
        emb.weight.mul_(5)
    raw = emb.weight.detach().clone()
    apply_spectral_norm(emb)
    emb.train()
    for _ in range(200):  # power iterations converge to the largest singular value
        emb(torch.tensor([0]))
    sigma = torch.linalg.svdvals(raw.double())[0].item()
    est = spectral_norms(emb)["weight"]
    assert abs(est - sigma) / sigma < 1e-4
    # the looked-up rows are rows of W / σ
    y = torch.tensor([3, 7])
    torch.testing.assert_close(emb.eval()(y), raw[y] / est, rtol=1e-4, atol=1e-6)
    assert spectral_norms(emb, normalized=True)["weight"] < 1 + 1e-4
