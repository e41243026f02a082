"""Spectral normalization [SN-GAN, Miyato et al. 2018, §2.1 eq. 8 and Appendix A, Algorithm 1].

W̄_SN = W / σ(W), with σ(W) the largest singular value of W estimated by power iteration
(docs/papers.md §B.1):

* A persistent pair of singular-vector estimates (u, v) is kept per layer and recycled between
  steps. Each **training-mode** forward does **one** power step, then σ̂ = uᵀ W v. In eval mode
  u and v are left unchanged (docs/papers.md §C.1; the Chainer SNConvolution2D behaviour).
* σ̂ is part of the autograd graph: gradients flow through W (in W and in σ̂), with u and v treated
  as constants, exactly as in the reference ``max_sv`` (docs/papers.md §B.1).
* A convolution weight (out, in, kh, kw) is normalised as the (out × in·kh·kw) matrix
  [SN-paper §4, footnote 3]; a transposed convolution's weight (in, out, kh, kw) is first permuted
  so that its output axis comes first, i.e. it is treated as (out × in·kh·kw) as well. Linear and
  Embedding weights are used as they are (σ does not depend on the orientation).
* Norms are taken as x / max(‖x‖₂, 1e-12); the Chainer reference divides by ‖x‖₂ + 1e-12. The two
  differ by a relative 1e-12/‖x‖₂ per normalisation: below float32 rounding, about 1e-12 to 1e-11
  in the float64 comparisons of ``benchmarks/reference_equivalence``.

This is ``torch.nn.utils.parametrizations.spectral_norm`` with ``n_power_iterations=1`` and
``eps=1e-12``, whose source (torch 2.x) does all of the above. Two differences from Algorithm 1,
both benign (docs/papers.md §C.1):

* PyTorch orders the half-steps u ← Wv/‖Wv‖, v ← Wᵀu/‖Wᵀu‖ (Algorithm 1: v first, then u), so its
  σ̂ = ‖Wᵀu‖ while Chainer's is ‖Wv‖. Either is one power iteration per step and a lower bound
  on σ(W) that converges at the same rate.
* At registration PyTorch runs 15 power iterations (a warm start, pytorch PR #59564); Chainer
  starts from a random u, so its σ̂ underestimates σ(W) during the first steps of training.

Under autocast (``train.amp``) the power iteration and W/σ are computed in float32 with autocast
disabled (``_SpectralNormFP32``), so u, v and σ never drop to bf16/fp16.

The layer's parameters become ``<layer>.parametrizations.weight.original`` (the raw W) and the
buffers ``<layer>.parametrizations.weight.0._u`` / ``._v`` (saved in the state dict). Called on its
own, every training-mode forward does a power step (the Chainer updater's two D calls per update
make two). The training loop computes parametrized weights once per optimizer step
(``torch.nn.utils.parametrize.cached``), so there it is one power step per update, as Algorithm 1
states; ``train.power_iteration = "per-call"`` drops that cache, for chainer-gan-lib's schedule.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrizations, parametrize

try:  # the parametrization class (private in torch, stable since 1.11)
    from torch.nn.utils.parametrizations import _SpectralNorm
except ImportError:  # pragma: no cover - a torch without it cannot run this module anyway
    _SpectralNorm = None

#: Layer types ``apply_spectral_norm`` normalises.
SN_LAYERS = (
    nn.Linear,
    nn.Bilinear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Embedding,
)

#: Power-method epsilon of the reference implementation (docs/papers.md §B.1).
EPS = 1e-12


def spectral_norm(module: nn.Module, name: str = "weight") -> nn.Module:
    """Spectrally normalise ``module.<name>`` in place (Algorithm 1, one power step per training
    forward) and return the module.

    Works on Linear, ConvNd, ConvTransposeNd (output axis 1) and Embedding layers.
    """
    if not isinstance(getattr(module, name, None), torch.Tensor):
        raise TypeError(f"{type(module).__name__} has no tensor {name!r} to normalise")
    if is_spectral_normed(module, name):
        raise ValueError(f"{type(module).__name__}.{name} is already spectrally normalised")
    parametrizations.spectral_norm(module, name=name, n_power_iterations=1, eps=EPS)
    if _SpectralNorm is not None:
        module.parametrizations[name][0].__class__ = _SpectralNormFP32
    return module


def is_spectral_normed(module: nn.Module, name: str = "weight") -> bool:
    """Whether ``module.<name>`` carries a spectral-norm parametrization."""
    return parametrize.is_parametrized(module, name) and any(_is_sn(p) for p in module.parametrizations[name])


def apply_spectral_norm(model: nn.Module) -> nn.Module:
    """Spectrally normalise every Linear/Conv/ConvTranspose/Embedding weight of ``model``.

    Layers already normalised are left alone, so the call is idempotent. Returns ``model``.
    """
    for module in list(model.modules()):
        if isinstance(module, SN_LAYERS) and not is_spectral_normed(module):
            spectral_norm(module)
    return model


@torch.no_grad()
def spectral_norms(model: nn.Module, normalized: bool = False) -> dict[str, float]:
    """The current σ estimate of every spectrally normalised weight, by qualified layer name.

    ``normalized=False`` (default): σ̂ = uᵀ W v from the stored u, v and the current raw W, without
    a power step (what the next eval-mode forward divides by). ``normalized=True``: the exact
    largest singular value of the normalised weight W/σ̂ (an SVD per layer; the SN paper App. C.1
    reports these staying within about 1 to 1.05 during training).
    """
    out = {}
    for qualname, module in model.named_modules():
        if not parametrize.is_parametrized(module):
            continue
        for tensor_name, plist in module.parametrizations.items():
            for idx, p in enumerate(plist):
                if not _is_sn(p):
                    continue
                if idx != 0:
                    raise ValueError(f"{qualname}.{tensor_name}: spectral norm must be the first parametrization")
                w_mat = p._reshape_weight_to_matrix(plist.original)
                sigma = torch.vdot(p._u, torch.mv(w_mat, p._v))
                key = ".".join(filter(None, [qualname, "" if tensor_name == "weight" else tensor_name]))
                key = key or tensor_name
                if normalized:
                    out[key] = float(torch.linalg.matrix_norm(w_mat / sigma, ord=2))
                else:
                    out[key] = float(sigma)
    return out


if _SpectralNorm is not None:

    class _SpectralNormFP32(_SpectralNorm):
        """torch's spectral norm with the power iteration and the σ division always in float32,
        outside any autocast region (mixed-precision training, ``train.amp``); the layer's own
        op (conv, matmul) still runs in the autocast dtype."""

        def forward(self, weight):
            low = weight.dtype in (torch.float16, torch.bfloat16)  # float64 models stay float64
            with torch.autocast(weight.device.type, enabled=False):
                out = super().forward(weight.float() if low else weight)
            return out.to(weight.dtype)


def _is_sn(p: nn.Module) -> bool:
    return _SpectralNorm is not None and isinstance(p, _SpectralNorm)
