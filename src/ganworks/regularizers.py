"""Regularizers and discriminator constraints, as pure functions or small in-place operations.

Each function's docstring names the paper section it implements.
"""

from __future__ import annotations

# ---------------------------------------------------------------------------------------------
# Historical averaging  [Improved-GAN §3.3; docs/papers.md §A.5]
# ---------------------------------------------------------------------------------------------
# Section-local imports: other sections of this shared file manage their own.
import torch as _torch  # noqa: E402
from torch import nn as _nn  # noqa: E402

#: The paper gives no coefficient and the released code never implements historical averaging
#: (UNVERIFIED). 1.0 takes the paper's ‖θ − θ̄‖² literally, with no factor in front.
HISTORICAL_AVERAGING_WEIGHT = 1.0


class HistoricalAverage:
    """Historical averaging: the penalty λ·‖θ − θ̄‖² with ``θ̄ = (1/t)·Σ_{i≤t} θ[i]`` [Improved-GAN §3.3].

    θ̄ is the average of all values the player's trainable parameters have taken, maintained online:
    it starts at the parameters given to the constructor (t = 1), and ``update(model)``, called
    after each optimizer step, folds the new values in (θ̄ ← θ̄ + (θ − θ̄)/t). ``penalty(model)`` is
    λ·Σ_params ‖θ − θ̄‖² (a sum over every element), to be added to that player's loss before its
    backward pass; θ̄ is a constant there, so the gradient is 2λ(θ − θ̄). Parameters that do not
    require a gradient (e.g. the fixed weight-norm scales) are left out: they never change.

    Not to be confused with the evaluation-only exponential moving average of D's weights in the
    reference scripts.
    """

    def __init__(self, model: _nn.Module, weight: float = HISTORICAL_AVERAGING_WEIGHT) -> None:
        if weight < 0:
            raise ValueError(f"historical-averaging weight must be >= 0, got {weight}")
        self.weight = float(weight)
        self.count = 1
        self.average = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}

    def _params(self, model: _nn.Module) -> dict:
        params = dict(model.named_parameters())
        missing = [name for name in self.average if name not in params]
        if missing:
            raise ValueError(f"model lacks averaged parameters: {', '.join(missing[:5])}")
        return params

    def penalty(self, model: _nn.Module) -> _torch.Tensor:
        """λ·Σ ‖θ − θ̄‖² as a scalar tensor (differentiable in θ)."""
        params = self._params(model)
        total = sum((params[name] - avg).square().sum() for name, avg in self.average.items())
        if not isinstance(total, _torch.Tensor):  # a model without trainable parameters
            return _torch.zeros(())
        return self.weight * total

    @_torch.no_grad()
    def update(self, model: _nn.Module) -> None:
        """Fold the model's current parameters into the running average."""
        params = self._params(model)
        self.count += 1
        for name, avg in self.average.items():
            avg.add_(params[name].detach() - avg, alpha=1.0 / self.count)

    def state_dict(self) -> dict:
        return {
            "weight": self.weight,
            "count": self.count,
            "average": {name: t.clone() for name, t in self.average.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        if set(state["average"]) != set(self.average):
            raise ValueError("historical-average state does not match this model's parameters")
        self.weight = float(state["weight"])
        self.count = int(state["count"])
        for name, t in state["average"].items():
            self.average[name].copy_(t)


# ---------------------------------------------------------------------------------------------
# Lipschitz baselines of the SN paper: gradient penalty, weight clipping, orthonormal
# regularization  [SN-paper §4.1, Table 2; docs/papers.md §B.4]
# ---------------------------------------------------------------------------------------------
# Section-local imports, as above.
import torch as _torch  # noqa: E402,F811
from torch import nn as _nn  # noqa: E402,F811

#: λ of WGAN-GP and GAN-GP in the SN paper's comparisons (SN-paper §4.1; Gulrajani et al. 2017).
#: ``gradient_penalty`` returns the unweighted penalty; the caller multiplies by this.
GRADIENT_PENALTY_WEIGHT = 10.0
#: Weight-clipping bound c of the WGAN baseline (SN-paper §4.1; Arjovsky et al. 2017).
WEIGHT_CLIP = 0.01
GRADIENT_PENALTY_MODES = ("wgan-gp", "gan-gp")

#: Layers whose ``weight`` is a matrix (or a tensor read as one) for the orthonormal baseline.
_MATRIX_LAYERS = (
    _nn.Linear,
    _nn.Conv1d,
    _nn.Conv2d,
    _nn.Conv3d,
    _nn.ConvTranspose1d,
    _nn.ConvTranspose2d,
    _nn.ConvTranspose3d,
    _nn.Embedding,
)


def gradient_penalty(
    D: _nn.Module,
    real: _torch.Tensor,
    fake: _torch.Tensor,
    center: float = 1.0,
    mode: str = "wgan-gp",
    alpha: _torch.Tensor | None = None,
) -> _torch.Tensor:
    """The gradient penalty E_x̂ (‖∇_x̂ D(x̂)‖₂ − center)² on real/fake interpolates, unweighted.

    x̂ = α·x + (1 − α)·x̃ with one α ~ U[0, 1) per example (``alpha``, shape (N,), fixes it), x a
    real and x̃ a generated batch of the same size (both detached: the penalty trains D only).
    D(x̂) is D's raw output (the logit), the norm is taken over all of an example's input
    dimensions, and the graph is kept (``create_graph``) so the penalty backpropagates into D's
    parameters. Add ``GRADIENT_PENALTY_WEIGHT · penalty`` (λ = 10, SN-paper §4.1) to D's loss.
    D runs in the mode it is in; the call is one more D forward (a spectrally normalised D would
    take one more power step).

    ``mode``:

    * ``"wgan-gp"``: WGAN-GP (Gulrajani et al. 2017, Algorithm 1/eq. 3), to pair with the
      Wasserstein loss (``d_loss_wasserstein``).
    * ``"gan-gp"``: the SN paper's "GAN-GP" baseline (Table 2). The SN paper defines it only by name
      (docs/papers.md lists the row and λ = 10); we read it, with Fedus et al. 2018 ("Many paths to
      equilibrium", whose "GAN-GP" it is), as the standard GAN loss (eq. 15, ``d_loss_standard``)
      plus the *same* penalty: the same interpolates, centre 1 and λ. So the computation is the
      same in both modes; only the loss the caller pairs it with differs. UNVERIFIED against the
      SN authors' baseline code, which is not released.
    """
    if mode not in GRADIENT_PENALTY_MODES:
        raise ValueError(f"gradient-penalty mode must be one of {GRADIENT_PENALTY_MODES}, got {mode!r}")
    if real.shape != fake.shape:
        raise ValueError(
            f"real and fake batches must have the same shape, got {tuple(real.shape)} and {tuple(fake.shape)}"
        )
    n = real.shape[0]
    if alpha is None:
        alpha = _torch.rand(n, device=real.device, dtype=real.dtype)
    if alpha.shape != (n,):
        raise ValueError(f"alpha must have shape ({n},), got {tuple(alpha.shape)}")
    alpha = alpha.view(n, *([1] * (real.dim() - 1)))
    x_hat = (alpha * real.detach() + (1.0 - alpha) * fake.detach()).requires_grad_(True)
    out = D(x_hat)
    if isinstance(out, tuple):
        out = out[0]
    (grad,) = _torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - center).square().mean()


@_torch.no_grad()
def clip_weights_(model: _nn.Module, c: float = WEIGHT_CLIP) -> _nn.Module:
    """Clamp every trainable parameter of ``model`` to [−c, c] in place; returns ``model``.

    The WGAN critic constraint (Arjovsky et al. 2017, Algorithm 1; the SN paper's weight-clipping
    baseline with c = 0.01, §4.1), applied after each D update. As in the WGAN reference code all
    parameters are clipped, biases included; parameters that do not require gradients (fixed gains)
    are left alone.
    """
    if c <= 0:
        raise ValueError(f"clipping bound must be > 0, got {c}")
    for p in model.parameters():
        if p.requires_grad:
            p.clamp_(-c, c)
    return model


def _weight_layers(model: _nn.Module):
    return [
        m
        for m in model.modules()
        if isinstance(m, _MATRIX_LAYERS) and isinstance(getattr(m, "weight", None), _torch.Tensor)
    ]


def _output_axis(module: _nn.Module) -> int:
    return 1 if isinstance(module, _nn.modules.conv._ConvTransposeNd) else 0


def _as_matrix(module: _nn.Module, w: _torch.Tensor) -> _torch.Tensor:
    """The (d_out × d_in·kh·kw) matrix of a layer's weight (transposed convs: output axis first)."""
    if _output_axis(module) == 1:
        w = w.transpose(0, 1)
    return w.reshape(w.shape[0], -1)


def orthonormal_penalty(model: _nn.Module) -> _torch.Tensor:
    """Σ_layers ‖WᵀW − I‖²_F over the weight matrices of ``model`` (Brock et al. 2016, as the SN
    paper's orthonormal-regularization baseline states it, §4.1 / docs/papers.md §B.4).

    W is each Linear/Conv/ConvTranspose/Embedding weight as the d_out × d_in matrix of
    h_out = W h_in (convolutions: d_out × d_in·kh·kw, as for spectral normalization), so WᵀW is the
    d_in × d_in Gram matrix of W's columns. Biases and normalization gains are not included. The
    coefficient is the caller's (the SN paper does not state it). Brock et al.'s released code
    penalises a different, per-filter L1 form; we follow the formula the SN paper writes.

    ‖WᵀW − I_in‖²_F = Σ_i (σ_i² − 1)² + (d_in − r), r = min(d_in, d_out); the row-side
    ‖WWᵀ − I_out‖²_F differs from it only by the constant d_in − d_out, so both drive every singular
    value to 1 with identical gradients. For wide matrices (d_in > d_out, most convolutions) the
    smaller d_out × d_out Gram is computed and the constant added: the value is exactly the
    column-side formula at a fraction of the cost.
    """
    total = None
    for m in _weight_layers(model):
        w = _as_matrix(m, m.weight)
        d_out, d_in = w.shape
        if d_in <= d_out:
            gram, offset = w.T @ w, 0
        else:
            gram, offset = w @ w.T, d_in - d_out
        term = (gram - _torch.eye(gram.shape[0], dtype=w.dtype, device=w.device)).square().sum() + offset
        total = term if total is None else total + term
    if total is None:
        return _torch.zeros(())
    return total


@_torch.no_grad()
def orthonormal_init_(model: _nn.Module) -> _nn.Module:
    """Orthogonal initialisation (Saxe et al. 2014) of every weight matrix of ``model``, in place;
    the init half of the SN paper's orthonormal baseline (§4.1). Returns ``model``.

    Each Linear/Conv/ConvTranspose/Embedding weight, viewed as d_out × d_in·kh·kw as in
    :func:`orthonormal_penalty`, gets orthonormal rows (d_out ≤ d_in) or columns (d_out > d_in),
    gain 1. Biases are left as they are. Meant for unnormalised models (``norm="none"``); on a
    parametrized layer the raw (original) weight is overwritten.
    """
    for m in _weight_layers(model):
        parametrized = hasattr(m, "parametrizations") and "weight" in m.parametrizations
        target = m.parametrizations.weight.original if parametrized else m.weight
        shape = target.shape
        if _output_axis(m) == 1:
            shape = (shape[1], shape[0], *shape[2:])
        mat = _torch.empty(shape[0], int(target.numel() // shape[0]), dtype=target.dtype, device=target.device)
        _nn.init.orthogonal_(mat)
        w = mat.view(shape)
        if _output_axis(m) == 1:
            w = w.transpose(0, 1)
        target.copy_(w)
    return model
