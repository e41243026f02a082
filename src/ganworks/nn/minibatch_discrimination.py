"""Minibatch discrimination [Improved-GAN §3.2; reference ``nn.MinibatchLayer``; docs/papers.md §A.4].

Given features f(x_i) ∈ R^A for the n samples of one batch, a tensor T ∈ R^{A×B×C} maps each
sample to M_i = f(x_i)·T ∈ R^{B×C}. For every kernel b the similarity of samples i and j is
c_b(i, j) = exp(−‖M_{i,b} − M_{j,b}‖₁) (L1 over the C axis), and the minibatch feature is

    o(x_i)_b = Σ_{j ≠ i} c_b(i, j) + bias_b,

which is concatenated to the input: the output is [f(x_i), o(x_i)] of shape (n, A + B).

As in the reference code (and unlike the paper's formula, whose sum includes j = i and so adds a
constant 1) a sample is not compared with itself. T is weight-normalised over the input axis A with
a learned log scale per (b, c): T = θ · exp(s) / ‖θ‖_A, θ ~ N(0, 0.05²), s = 0 at first (no
epsilon in the norm, as the reference). The per-kernel bias starts at −1.

Data-dependent initialisation (``data_dependent_init_``, the reference's ``init=True`` pass): on
the init batch, for each kernel take every sample's distance to its nearest neighbour, and divide
the log scale's factor by half their batch mean, so that the mean nearest-neighbour L1 distance
becomes 2; then set bias_b = −mean_i o(x_i)_b so the initial minibatch features have zero mean.
:func:`ganworks.nn.weight_norm.data_dependent_init` runs it inside the network's init forward
pass, together with the weight-normalised layers, layer after layer.

The features are computed within the batch passed in: feed real and generated samples as separate
batches ("computed separately", §3.2), as the reference does.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class MinibatchDiscrimination(nn.Module):
    """Append B minibatch features to A input features: (n, A) → (n, A + B).

    Args:
        in_features: A (inputs with more than two dims are flattened past the batch axis).
        num_kernels: B (100 in the CIFAR/SVHN models).
        dim_per_kernel: C (5).
        weight_std: std of θ's initial normal draw (0.05).
        init_bias: the bias's initial value (−1); data-dependent init overwrites it.
    """

    def __init__(
        self,
        in_features: int,
        num_kernels: int = 100,
        dim_per_kernel: int = 5,
        weight_std: float = 0.05,
        init_bias: float = -1.0,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.num_kernels = num_kernels
        self.dim_per_kernel = dim_per_kernel
        self.theta = nn.Parameter(torch.randn(in_features, num_kernels, dim_per_kernel) * weight_std)
        self.log_weight_scale = nn.Parameter(torch.zeros(num_kernels, dim_per_kernel))
        self.bias = nn.Parameter(torch.full((num_kernels,), float(init_bias)))

    @property
    def out_features(self) -> int:
        return self.in_features + self.num_kernels

    def weight(self) -> Tensor:
        """T = θ · exp(s) / ‖θ‖ with the norm over the input axis, shape (A, B, C)."""
        norm = self.theta.square().sum(dim=0).sqrt()
        return self.theta * (self.log_weight_scale.exp() / norm)

    def distances(self, x: Tensor) -> Tensor:
        """L1 distances d[b, i, j] = ‖M_{i,b} − M_{j,b}‖₁, shape (B, n, n); d[b, i, i] = 0."""
        m = x.flatten(1) @ self.weight().flatten(1)  # (n, B*C)
        m = m.view(x.shape[0], self.num_kernels, self.dim_per_kernel).transpose(0, 1)  # (B, n, C)
        return torch.cdist(m.contiguous(), m.contiguous(), p=1.0)

    def _similarity_sums(self, d: Tensor) -> Tensor:
        """Σ_{j≠i} exp(−d[b, i, j]) as (n, B)."""
        n = d.shape[-1]
        off_diagonal = 1.0 - torch.eye(n, dtype=d.dtype, device=d.device)
        return (torch.exp(-d) * off_diagonal).sum(dim=2).transpose(0, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(1)
        o = self._similarity_sums(self.distances(x)) + self.bias
        return torch.cat([x, o], dim=1)

    @torch.no_grad()
    def data_dependent_init_(self, x: Tensor) -> Tensor:
        """Initialise the log scale and bias on the batch ``x`` and return the layer's new output.

        Needs at least two samples (every sample needs a nearest neighbour).
        """
        x = x.flatten(1)
        if x.shape[0] < 2:
            raise ValueError("minibatch-discrimination init needs a batch of at least 2 samples")
        d = self.distances(x)
        n = d.shape[-1]
        eye = torch.eye(n, dtype=torch.bool, device=d.device)
        nearest = d.masked_fill(eye, math.inf).amin(dim=2)  # (B, n)
        half_mean_nearest = 0.5 * nearest.mean(dim=1)  # (B,)
        # L1 distances are linear in T, so scaling kernel b's weights by 1/m scales its distances by 1/m.
        self.log_weight_scale.sub_(half_mean_nearest.log().unsqueeze(1))
        o = self._similarity_sums(d / half_mean_nearest.view(-1, 1, 1))
        self.bias.copy_(-o.mean(dim=0))
        return torch.cat([x, o + self.bias], dim=1)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, num_kernels={self.num_kernels}, dim_per_kernel={self.dim_per_kernel}"
