"""Virtual batch normalization against the explicit mixing formula (docs/papers.md §A.5)."""

import pytest
import torch
import torch.nn.functional as F

from ganworks.nn.vbn import VirtualBatchNorm


def _vbn(c, n_ref, seed=0):
    torch.manual_seed(seed)
    vbn = VirtualBatchNorm(c, n_ref).double()
    with torch.no_grad():
        vbn.gamma.normal_(1.0, 0.3)
        vbn.beta.normal_(0.0, 0.5)
    return vbn


def _explicit(x, n_ref, gamma, beta, eps=1e-5):
    """Loop over live examples and channels: stats mixed 1/(N+1) own, N/(N+1) reference."""
    ref, live = x[:n_ref], x[n_ref:]
    out = torch.empty_like(live)
    c = x.shape[1]
    for ch in range(c):
        ref_vals = ref[:, ch].reshape(-1)
        mu_ref = ref_vals.sum() / ref_vals.numel()
        ms_ref = (ref_vals * ref_vals).sum() / ref_vals.numel()
        for i in range(live.shape[0]):
            own = live[i, ch].reshape(-1)  # the example's own spatial positions (one value if dense)
            mu_x = own.sum() / own.numel()
            ms_x = (own * own).sum() / own.numel()
            mean = mu_x / (n_ref + 1) + n_ref * mu_ref / (n_ref + 1)
            mean_sq = ms_x / (n_ref + 1) + n_ref * ms_ref / (n_ref + 1)
            std = (eps + mean_sq - mean * mean) ** 0.5
            out[i, ch] = gamma[ch] * (live[i, ch] - mean) / std + beta[ch]
    return out


@pytest.mark.parametrize("shape", [(5,), (4, 3, 3)], ids=["dense", "conv"])
def test_live_rows_match_mixing_formula(shape):
    n_ref, n_live = 6, 4
    vbn = _vbn(shape[0], n_ref)
    x = torch.randn(n_ref + n_live, *shape, dtype=torch.float64) * 2 + 0.7
    out = vbn(x)
    assert out.shape == x.shape
    expected = _explicit(x, n_ref, vbn.gamma.detach(), vbn.beta.detach())
    torch.testing.assert_close(out[n_ref:], expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape", [(5,), (4, 3, 3)], ids=["dense", "conv"])
def test_reference_rows_use_reference_stats_alone(shape):
    n_ref = 7
    vbn = _vbn(shape[0], n_ref)
    x = torch.randn(n_ref + 3, *shape, dtype=torch.float64) + 1.5
    ref = x[:n_ref]
    # independent computation: training-mode batch norm on the reference batch alone (biased var)
    expected = F.batch_norm(ref, None, None, vbn.gamma.detach(), vbn.beta.detach(), training=True, eps=1e-5)
    torch.testing.assert_close(vbn(x)[:n_ref], expected)
    torch.testing.assert_close(vbn(ref), expected)  # a reference-only input works too


def test_live_output_independent_of_other_live_samples():
    n_ref = 5
    vbn = _vbn(3, n_ref)
    ref = torch.randn(n_ref, 3, 4, 4, dtype=torch.float64)
    sample = torch.randn(1, 3, 4, 4, dtype=torch.float64)
    others_a = torch.randn(6, 3, 4, 4, dtype=torch.float64)
    others_b = 10 * torch.randn(2, 3, 4, 4, dtype=torch.float64) - 3
    alone = vbn(torch.cat([ref, sample]))[-1]
    with_a = vbn(torch.cat([ref, others_a, sample]))[-1]
    with_b = vbn(torch.cat([ref, sample, others_b]))[n_ref]
    torch.testing.assert_close(with_a, alone, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(with_b, alone, rtol=1e-12, atol=1e-12)
    # and no gradient flows from one live sample's output into another live sample
    live = torch.randn(4, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    ref_g = ref.clone().requires_grad_(True)
    vbn(torch.cat([ref_g, live]))[n_ref].sum().backward()
    assert live.grad[1:].abs().max() == 0
    assert live.grad[0].abs().max() > 0
    assert ref_g.grad.abs().max() > 0  # the reference statistics carry gradient, as in the reference code


def test_live_output_depends_on_reference_batch():
    n_ref = 5
    vbn = _vbn(3, n_ref)
    live = torch.randn(2, 3, dtype=torch.float64)
    a = vbn(torch.cat([torch.randn(n_ref, 3, dtype=torch.float64), live]))[n_ref:]
    b = vbn(torch.cat([torch.randn(n_ref, 3, dtype=torch.float64) + 2, live]))[n_ref:]
    assert (a - b).abs().max() > 1e-3


def test_initial_parameters_and_eps():
    torch.manual_seed(0)
    vbn = VirtualBatchNorm(20000, ref_size=3)
    assert vbn.eps == 1e-5
    assert abs(vbn.gamma.mean().item() - 1.0) < 1e-3
    assert abs(vbn.gamma.std().item() - 0.02) < 1e-3
    assert torch.equal(vbn.beta, torch.zeros(20000))
    assert vbn.gamma.requires_grad and vbn.beta.requires_grad
    # eps enters inside the square root: a constant channel maps to β exactly, without NaNs
    small = VirtualBatchNorm(2, ref_size=3)
    out = small(torch.ones(5, 2))
    torch.testing.assert_close(out, small.beta.detach().expand(5, 2))


def test_needs_the_reference_rows():
    vbn = VirtualBatchNorm(3, ref_size=4)
    with pytest.raises(ValueError):
        vbn(torch.randn(3, 3))
    with pytest.raises(ValueError):
        vbn(torch.randn(6, 5))
