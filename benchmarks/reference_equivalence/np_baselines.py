"""Independent NumPy versions of the SN paper's Table 2 baselines and of the weight averages, for the
``sn-baselines`` and ``averaging`` sections (no torch, no ganworks: what ganworks computes is judged
against these).

Neither chainer-gan-lib nor sngan_projection has code for weight clipping, orthonormal regularization,
layer norm or weight norm (the SN authors' baseline code is not released), and improved-gan never
implements historical averaging; these are the papers' formulas written out by hand, forward and
backward (the gradients are derived here, not taken from an autodiff system):

* weight clipping, W ← clip(W, −c, c) (Arjovsky et al. 2017, Algorithm 1; SN-paper §4.1, c = 0.01);
* orthonormal regularization, Σ_layers ‖WᵀW − I‖²_F with gradient 4 W (WᵀW − I) (Brock et al. 2016 as
  the SN paper writes it, §4.1; docs/papers.md §B.4), W the d_out × d_in matrix of h_out = W h_in;
* batch norm without the γ multiplier (Ioffe & Szegedy 2015; SN-paper §4.1 "the γ multiplier was
  removed"), training mode (batch statistics, biased variance, running statistics updated with the
  unbiased variance) and eval mode (running statistics);
* layer norm without γ (Ba et al. 2016), statistics over (C, H, W) per example, a bias per channel;
* weight norm W = g V/‖V‖ per output unit (Salimans & Kingma 2016), g fixed at 1 (γ removed);
* the standard-CNN discriminator (SN-paper Table 3, chainer-gan-lib's channel layout) with one of these
  normalizations: forward and the gradients of Σ_i r_i·D(x)_i w.r.t. every parameter and the input;
* the averages: improved-gan's test-time average a ← a + 0.0001 (p − a) from a = 0
  (``train_*_feature_matching.py``: ``disc_avg_updates``), chainer-gan-lib's smoothed generator
  (``progressive/train.py`` ``copy_param`` then ``common/misc.py`` ``soft_copy_param`` with
  τ = 1 − 0.999 after every G step, BN statistics averaged too), and historical averaging
  θ̄_t = (1/t) Σ_{i≤t} θ_i with the penalty λ‖θ − θ̄‖² and its gradient 2λ(θ − θ̄) (Improved-GAN §3.3;
  docs/papers.md §A.5).

Every function computes in the dtype of its inputs (float32 or float64), so the same code gives the
reference side of the float32 and the float64 rows.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# ---- layers -------------------------------------------------------------------------------------


def _windows(x: np.ndarray, k: int, stride: int, pad: int) -> np.ndarray:
    """(N, C, Ho, Wo, k, k) views of the zero-padded input."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    return sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]


def conv2d(x, W, b, stride: int, pad: int):
    """Cross-correlation y[n, o] = Σ_c W[o, c] ⋆ x[n, c] + b[o] (PyTorch's and Chainer's conv)."""
    y = np.einsum("nchwij,ocij->nohw", _windows(x, W.shape[2], stride, pad), W, optimize=True)
    return y + b.reshape(1, -1, 1, 1)


def conv2d_backward(x, W, dy, stride: int, pad: int):
    """(dx, dW, db) of ``conv2d`` for the upstream gradient ``dy``."""
    k = W.shape[2]
    dW = np.einsum("nchwij,nohw->ocij", _windows(x, k, stride, pad), dy, optimize=True)
    db = dy.sum(axis=(0, 2, 3))
    n, c, h, w = x.shape
    dxp = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=x.dtype)
    ho, wo = dy.shape[2:]
    for i in range(k):
        for j in range(k):
            dxp[:, :, i : i + stride * ho : stride, j : j + stride * wo : stride] += np.einsum(
                "nohw,oc->nchw", dy, W[:, :, i, j]
            )
    return dxp[:, :, pad : pad + h, pad : pad + w], dW, db


def leaky_relu(x, slope: float):
    return np.where(x > 0, x, x * x.dtype.type(slope))


def leaky_relu_backward(x, dy, slope: float):
    return np.where(x > 0, dy, dy * x.dtype.type(slope))


def _normalize(x, axes, eps):
    """x̂ = (x − mean) / √(var + eps) over ``axes`` (biased variance); returns x̂ and 1/√(var + eps)."""
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    inv = 1 / np.sqrt(var + x.dtype.type(eps))
    return (x - mean) * inv, inv


def _normalize_backward(xhat, inv, dxhat, axes):
    """dx of x̂ = (x − mean)/√(var + eps): inv·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) over ``axes``."""
    return inv * (dxhat - dxhat.mean(axis=axes, keepdims=True) - xhat * (dxhat * xhat).mean(axis=axes, keepdims=True))


def batch_norm_train(x, beta, eps: float, running_mean, running_var, momentum: float):
    """BN without γ in training mode over (N, H, W) per channel: y = x̂ + β. Returns y, a cache for
    the backward pass and the updated running statistics (running_var with the unbiased variance)."""
    axes = (0, 2, 3)
    xhat, inv = _normalize(x, axes, eps)
    m = x.size // x.shape[1]
    mean = x.mean(axis=axes)
    var_unbiased = ((x - mean.reshape(1, -1, 1, 1)) ** 2).sum(axis=axes) / (m - 1)
    mom = x.dtype.type(momentum)
    new_mean = (1 - mom) * running_mean + mom * mean
    new_var = (1 - mom) * running_var + mom * var_unbiased
    return xhat + beta.reshape(1, -1, 1, 1), (xhat, inv), new_mean, new_var


def batch_norm_train_backward(cache, dy):
    xhat, inv = cache
    return _normalize_backward(xhat, inv, dy, (0, 2, 3)), dy.sum(axis=(0, 2, 3))


def batch_norm_eval(x, beta, eps: float, running_mean, running_var):
    r = lambda v: v.reshape(1, -1, 1, 1)  # noqa: E731
    return (x - r(running_mean)) / np.sqrt(r(running_var) + x.dtype.type(eps)) + r(beta)


def layer_norm(x, beta, eps: float):
    """Layer norm without γ: x̂ over (C, H, W) of each example, y = x̂ + β (one β per channel)."""
    xhat, inv = _normalize(x, (1, 2, 3), eps)
    return xhat + beta.reshape(1, -1, 1, 1), (xhat, inv)


def layer_norm_backward(cache, dy):
    xhat, inv = cache
    return _normalize_backward(xhat, inv, dy, (1, 2, 3)), dy.sum(axis=(0, 2, 3))


def weight_norm(V, g):
    """W = g V/‖V‖, the norm per output unit (axis 0) over every other axis."""
    axes = tuple(range(1, V.ndim))
    norm = np.sqrt((V**2).sum(axis=axes, keepdims=True))
    return g.reshape(norm.shape) * V / norm


def weight_norm_backward(V, g, dW):
    """dV of ``weight_norm``: (g/‖V‖)(dW − V̂ ⟨V̂, dW⟩) with V̂ = V/‖V‖, per output unit."""
    axes = tuple(range(1, V.ndim))
    norm = np.sqrt((V**2).sum(axis=axes, keepdims=True))
    vhat = V / norm
    return g.reshape(norm.shape) / norm * (dW - vhat * (vhat * dW).sum(axis=axes, keepdims=True))


# ---- the standard-CNN discriminator with a Table 2 normalization ---------------------------------

#: (kernel, stride) of the seven convolutions, all with padding 1 (SN-paper Table 3)
D_GEOMETRY = [(3, 1), (4, 2)] * 3 + [(3, 1)]


def cnn_d(
    params: dict, x, r, norm: str, slope: float, eps: float = 0.0, momentum: float = 0.1, running: dict | None = None
):
    """Forward and backward of the standard-CNN D: seven convs, each but the first followed by the
    normalization ``norm`` ("none", "batch", "layer"; "weight" normalises every layer's weight
    instead), leaky ReLU, then a dense layer to one logit.

    ``params``: "conv{i}.W" (O, C, k, k) or, for norm "weight", "conv{i}.V" and "conv{i}.g", "conv{i}.b",
    "out.W" (1, F) / "out.V", "out.g", "out.b"; BN/LN biases "norm{i}.beta" (i = 1..6). ``running``:
    BN's running statistics "norm{i}.mean", "norm{i}.var" (batch norm only).
    Returns (logits (N,), {name: gradient of Σ r_i logit_i} for every parameter but the fixed g, and
    "x" for the input, {updated running statistics}).
    """

    def weight(name):
        return weight_norm(params[name + ".V"], params[name + ".g"]) if norm == "weight" else params[name + ".W"]

    h, tape, new_running = x, [], {}
    for i, (k, s) in enumerate(D_GEOMETRY):
        W = weight(f"conv{i}")
        pre = conv2d(h, W, params[f"conv{i}.b"], s, 1)
        cache = None
        if i > 0 and norm == "batch":
            z, cache, m, v = batch_norm_train(
                pre, params[f"norm{i}.beta"], eps, running[f"norm{i}.mean"], running[f"norm{i}.var"], momentum
            )
            new_running.update({f"norm{i}.mean": m, f"norm{i}.var": v})
        elif i > 0 and norm == "layer":
            z, cache = layer_norm(pre, params[f"norm{i}.beta"], eps)
        else:
            z = pre
        tape.append((h, W, cache, z))
        h = leaky_relu(z, slope)
    feat = h.reshape(len(h), -1)
    Wout = weight("out")
    logits = feat @ Wout.T[:, 0] + params["out.b"][0]

    grads = {}
    dlog = r.reshape(-1, 1).astype(x.dtype)
    dWout = dlog.T @ feat
    grads["out.b"] = dlog.sum(axis=0)
    dh = (dlog @ Wout).reshape(h.shape)
    _store_weight_grad(grads, params, "out", Wout, dWout, norm)
    for i in reversed(range(len(D_GEOMETRY))):
        h_in, W, cache, z = tape[i]
        dz = leaky_relu_backward(z, dh, slope)
        if cache is not None:
            dpre, grads[f"norm{i}.beta"] = (batch_norm_train_backward if norm == "batch" else layer_norm_backward)(
                cache, dz
            )
        else:
            dpre = dz
        k, s = D_GEOMETRY[i]
        dh, dW, grads[f"conv{i}.b"] = conv2d_backward(h_in, W, dpre, s, 1)
        _store_weight_grad(grads, params, f"conv{i}", W, dW, norm)
    grads["x"] = dh
    return logits, grads, new_running


def cnn_d_eval(params: dict, x, norm: str, slope: float, eps: float, running: dict):
    """The batch-norm D's forward in eval mode (running statistics)."""
    assert norm == "batch"
    h = x
    for i, (k, s) in enumerate(D_GEOMETRY):
        z = conv2d(h, params[f"conv{i}.W"], params[f"conv{i}.b"], s, 1)
        if i > 0:
            z = batch_norm_eval(z, params[f"norm{i}.beta"], eps, running[f"norm{i}.mean"], running[f"norm{i}.var"])
        h = leaky_relu(z, slope)
    return h.reshape(len(h), -1) @ params["out.W"].T[:, 0] + params["out.b"][0]


def _store_weight_grad(grads, params, name, W, dW, norm):
    if norm == "weight":
        grads[name + ".V"] = weight_norm_backward(params[name + ".V"], params[name + ".g"], dW)
    else:
        grads[name + ".W"] = dW


# ---- weight clipping and orthonormal regularization --------------------------------------------------


def clip_weights(params: dict, c: float) -> dict:
    """Every array clamped to [−c, c] (the WGAN critic's constraint; biases included)."""
    return {k: np.clip(v, -v.dtype.type(c), v.dtype.type(c)) for k, v in params.items()}


def as_matrix(W, kind: str):
    """The d_out × d_in matrix of a layer's weight: Linear (out, in) as is; Conv2d (out, in, kh, kw)
    → (out, in·kh·kw); ConvTranspose2d (in, out, kh, kw) → (out, in·kh·kw)."""
    if kind == "deconv":
        W = W.transpose(1, 0, 2, 3)
    return W.reshape(W.shape[0], -1)


def from_matrix(M, shape, kind: str):
    """Inverse of ``as_matrix`` (for gradients)."""
    if kind == "deconv":
        return M.reshape(shape[1], shape[0], *shape[2:]).transpose(1, 0, 2, 3)
    return M.reshape(shape)


def orthonormal_penalty(weights: dict):
    """Σ ‖WᵀW − I‖²_F over ``weights`` = {name: (array, kind)}, W as ``as_matrix``, the column Gram
    WᵀW (d_in × d_in) computed as written, whatever the shape; and its gradient 4 W (WᵀW − I)."""
    total, grads = None, {}
    for name, (W, kind) in weights.items():
        M = as_matrix(W, kind)
        E = M.T @ M - np.eye(M.shape[1], dtype=M.dtype)
        term = (E**2).sum()
        total = term if total is None else total + term
        grads[name] = from_matrix(4 * (M @ E), W.shape, kind)
    return total, grads


# ---- averages ---------------------------------------------------------------------------------------


def improved_gan_average(snapshots: list[dict], rate: float = 0.0001) -> list[dict]:
    """improved-gan's ``disc_avg_updates``: a starts at 0 (``0.*p.get_value()``) and after each step
    a ← a + rate (p − a), p the parameters given for that step. Returns a after each step."""
    a = {k: np.zeros_like(v) for k, v in snapshots[0].items()}
    out = []
    for p in snapshots:
        for k in a:
            a[k] = a[k] + p[k].dtype.type(rate) * (p[k] - a[k])
        out.append({k: v.copy() for k, v in a.items()})
    return out


def soft_copy_average(start: dict, snapshots: list[dict], smoothing: float = 0.999) -> list[dict]:
    """chainer-gan-lib's smoothed generator: ``copy_param(gs, gen)`` once (gs = the start), then after
    every G step ``soft_copy_param(gs, gen, 1 − smoothing)``: gs ← gs·(1 − τ) + τ·p for every
    parameter and every BN's avg_mean / avg_var. Returns gs after each step."""
    gs = {k: v.copy() for k, v in start.items()}
    out = []
    for p in snapshots:
        for k in gs:
            tau = p[k].dtype.type(1.0 - smoothing)
            gs[k] *= 1 - tau
            gs[k] += tau * p[k]
        out.append({k: v.copy() for k, v in gs.items()})
    return out


def historical_average(snapshots: list[dict], weight: float) -> list[dict]:
    """Historical averaging [Improved-GAN §3.3]: θ̄_t = (1/t) Σ_{i≤t} θ_i, θ_1 the parameters when
    averaging starts and θ_t those after the (t − 1)-th optimizer step, i.e. the parameters at which the
    t-th step's loss is taken; there the penalty λ Σ‖θ_t − θ̄_t‖² and its gradient 2λ(θ_t − θ̄_t).
    Returns one dict per snapshot with "avg/<k>", "grad/<k>" and "penalty"."""
    out = []
    acc = {k: np.zeros_like(v) for k, v in snapshots[0].items()}
    for t, theta in enumerate(snapshots, start=1):
        for k in acc:
            acc[k] = acc[k] + theta[k]
        avg = {k: v / v.dtype.type(t) for k, v in acc.items()}
        lam = theta[next(iter(theta))].dtype.type(weight)
        entry = {f"avg/{k}": v for k, v in avg.items()}
        entry["penalty"] = lam * sum(((theta[k] - avg[k]) ** 2).sum() for k in avg)
        entry.update({f"grad/{k}": 2 * lam * (theta[k] - avg[k]) for k in avg})
        out.append(entry)
    return out
