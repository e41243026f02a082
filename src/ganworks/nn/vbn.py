"""Virtual batch normalization [Improved-GAN §3.5; reference ``imagenet/model.py`` class VBN;
docs/papers.md §A.5].

A reference batch is fixed once at the start of training and re-run through the network with the
current weights at every step. Each VBN layer then normalises

* the reference rows with the reference batch's own per-channel statistics (mean and mean of
  squares over N, H, W), and
* every other ("live") example x with statistics mixed from itself and the reference batch:
  mean = μ_x/(N+1) + N·μ_ref/(N+1) and mean_sq = ms_x/(N+1) + N·ms_ref/(N+1), where μ_x and ms_x
  are x's own per-channel mean and mean of squares over its spatial dims only (over nothing for a
  dense layer's (n, F) output) and N is the reference batch size;

then y = γ·(x − mean)/√(eps + mean_sq − mean²) + β, with eps = 1e-5, γ ~ N(1, 0.02²) and β = 0
shared by the reference and live paths. A live example's output therefore depends only on itself
and the reference batch, never on the other live examples of its batch. Gradients flow through the
reference statistics, as in the reference code.

Convention: the layer's input holds the reference batch in its first ``ref_size`` rows, followed
by the live rows. A network using VBN prepends its fixed reference input (e.g. a generator's fixed
noise batch ``z_ref``) to the live input, so every VBN layer receives the reference activations
computed with the current weights, and drops the reference rows from its output.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class VirtualBatchNorm(nn.Module):
    """VBN over the channel axis 1 of (n, F) or (n, C, *spatial) inputs whose first ``ref_size``
    rows are the reference batch."""

    def __init__(self, num_features: int, ref_size: int, eps: float = 1e-5, gamma_std: float = 0.02) -> None:
        super().__init__()
        if ref_size < 1:
            raise ValueError(f"ref_size must be >= 1, got {ref_size}")
        self.num_features = num_features
        self.ref_size = int(ref_size)
        self.eps = float(eps)
        self.gamma = nn.Parameter(1.0 + gamma_std * torch.randn(num_features))
        self.beta = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: Tensor) -> Tensor:
        n_ref = self.ref_size
        if x.dim() < 2 or x.shape[1] != self.num_features:
            raise ValueError(f"expected (n, {self.num_features}, ...) input, got shape {tuple(x.shape)}")
        if x.shape[0] < n_ref:
            raise ValueError(f"VBN input must start with the {n_ref}-row reference batch, got only {x.shape[0]} rows")
        ref, live = x[:n_ref], x[n_ref:]
        spatial = tuple(range(2, x.dim()))
        ref_dims = (0,) + spatial
        ref_mean = ref.mean(dim=ref_dims, keepdim=True)  # (1, C, 1, ...)
        ref_mean_sq = ref.square().mean(dim=ref_dims, keepdim=True)
        out_ref = self._normalize(ref, ref_mean, ref_mean_sq)
        if live.shape[0] == 0:
            return out_ref
        if spatial:
            own_mean = live.mean(dim=spatial, keepdim=True)  # (n_live, C, 1, ...)
            own_mean_sq = live.square().mean(dim=spatial, keepdim=True)
        else:
            own_mean, own_mean_sq = live, live.square()
        new = 1.0 / (n_ref + 1.0)
        old = 1.0 - new
        mean = new * own_mean + old * ref_mean
        mean_sq = new * own_mean_sq + old * ref_mean_sq
        return torch.cat([out_ref, self._normalize(live, mean, mean_sq)], dim=0)

    def _normalize(self, x: Tensor, mean: Tensor, mean_sq: Tensor) -> Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        std = torch.sqrt(self.eps + mean_sq - mean.square())
        return (x - mean) / std * self.gamma.view(shape) + self.beta.view(shape)

    def extra_repr(self) -> str:
        return f"{self.num_features}, ref_size={self.ref_size}, eps={self.eps}"
