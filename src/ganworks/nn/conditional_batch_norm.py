"""Categorical conditional batch normalization [SN-GAN §4.2 and App. B.3 (conditional BN in G for
the ImageNet cGANs); de Vries et al. 2017, Dumoulin et al. 2017; docs/papers.md §B.3; code
SNP:source/links/categorical_conditional_batch_normalization.py].

y = γ_c · (x − μ_B) / √(σ²_B + eps) + β_c, where the batch statistics μ_B, σ²_B (and the running
averages used in eval mode) are shared by all classes, exactly as plain BN without its affine
part, and (γ_c, β_c) are looked up per example from two K × C embedding tables indexed by the
example's class c. γ starts at 1 and β at 0 for every class, so at initialisation the layer is plain
BN with γ = 1, β = 0.

The class argument is either a LongTensor of class indices (N,), or a float tensor (N, K) of class
weights w: then γ = Σ_c w_c γ_c and β = Σ_c w_c β_c, which is how the released
``gen_interpolated_images.py`` interpolates between classes (weights (1 − t, t) on two classes).

Defaults follow Chainer's BatchNormalization (decay 0.9 = PyTorch momentum 0.1, eps 2e-5).
"""

from __future__ import annotations

from torch import Tensor, nn


class CategoricalConditionalBatchNorm2d(nn.Module):
    """BN over (N, C, H, W) with per-class γ, β (K classes)."""

    def __init__(self, num_features: int, num_classes: int, eps: float = 2e-5, momentum: float = 0.1) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_features, self.num_classes = num_features, num_classes
        self.bn = nn.BatchNorm2d(num_features, eps=eps, momentum=momentum, affine=False)
        self.gammas = nn.Embedding(num_classes, num_features)
        self.betas = nn.Embedding(num_classes, num_features)
        nn.init.ones_(self.gammas.weight)
        nn.init.zeros_(self.betas.weight)

    def class_params(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """(γ, β) of shape (N, C) for class indices (N,) or class weights (N, K)."""
        if y.is_floating_point():
            if y.dim() != 2 or y.shape[1] != self.num_classes:
                raise ValueError(f"class weights must be (N, {self.num_classes}), got {tuple(y.shape)}")
            return y @ self.gammas.weight, y @ self.betas.weight
        return self.gammas(y), self.betas(y)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        gamma, beta = self.class_params(y)
        h = self.bn(x)
        return h * gamma.to(h.dtype)[:, :, None, None] + beta.to(h.dtype)[:, :, None, None]


def batch_norm_or_conditional(num_features: int, num_classes: int, eps: float, momentum: float) -> nn.Module:
    """Plain BN (γ = 1, β = 0 init) when ``num_classes`` is 0, else the categorical conditional BN."""
    if num_classes:
        return CategoricalConditionalBatchNorm2d(num_features, num_classes, eps, momentum)
    return nn.BatchNorm2d(num_features, eps=eps, momentum=momentum)


def is_conditional(module: nn.Module) -> bool:
    return isinstance(module, CategoricalConditionalBatchNorm2d)
