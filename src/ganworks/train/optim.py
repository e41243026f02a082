"""Optimizers and learning-rate schedules built from the ``optim`` table of a configuration.

``AdamEpsInsideSqrt`` is the Improved-GAN reference's Adam (docs/papers.md §A.2, §C.4f):
p ← p − lr · m̂ / √(v̂ + ε), with ε inside the square root (torch.optim.Adam puts it outside:
√v̂ + ε). With ε = 1e-8 the reference's denominator never drops below 1e-4, which matters for
parameters with tiny gradients. Bias corrections as usual.
"""

from __future__ import annotations

import warnings

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from ..config import ADAM_SETTINGS  # noqa: F401  (SN-GAN Table 1; its home is config, which applies it)
from ..errors import ConfigError


def adam_eps_inside_sqrt_update(
    params, grads, exp_avgs, exp_avg_sqs, denoms, beta1: float, beta2: float, lr_over_c1, c2, eps: float
) -> None:
    """One update of every tensor in place, foreach: m ← lerp(m, g, 1−β1), v ← β2·v + (1−β2)·g²,
    p ← p − (lr / c1) · m / √(v / c2 + ε), with c1, c2 the bias corrections; ``denoms`` is scratch."""
    torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)
    torch._foreach_copy_(denoms, exp_avg_sqs)
    torch._foreach_div_(denoms, c2)
    torch._foreach_add_(denoms, eps)
    torch._foreach_sqrt_(denoms)
    if isinstance(lr_over_c1, torch.Tensor):
        torch._foreach_mul_(denoms, 1 / lr_over_c1)  # traced: lr/c1 is a tensor input
        torch._foreach_sub_(params, torch._foreach_div(exp_avgs, denoms))
    else:
        torch._foreach_addcdiv_(params, exp_avgs, denoms, value=-lr_over_c1)


class AdamEpsInsideSqrt(Optimizer):
    """The reference's Adam (ε inside the square root), foreach over each group's tensors.

    No per-step allocation: the square-root denominators live in scratch buffers kept outside
    ``state`` (so the state dict is exactly torch's Adam layout). ``compile_update()`` fuses the
    update into one compiled kernel per tensor shape (``torch.compile``; used with train.compile).
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8) -> None:
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps})
        self._scratch: dict[int, tuple[tuple[int, ...], list[torch.Tensor]]] = {}
        self._compiled = None
        self._compiled_ok = False

    def compile_update(self) -> None:
        self._compiled = torch.compile(adam_eps_inside_sqrt_update, dynamic=False)

    @property
    def is_compiled(self) -> bool:
        """Whether the update runs compiled (False again after a compiler failure fell back to eager)."""
        return self._compiled is not None

    def _denoms(self, i: int, params: list[torch.Tensor]) -> list[torch.Tensor]:
        key = tuple(id(p) for p in params)
        cached = self._scratch.get(i)
        if cached is None or cached[0] != key:
            cached = (key, [torch.empty_like(p) for p in params])
            self._scratch[i] = cached
        return cached[1]

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for i, group in enumerate(self.param_groups):
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            beta1, beta2 = group["betas"]
            grads, ms, vs = [], [], []
            for p in params:
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                grads.append(p.grad)
                ms.append(state["exp_avg"])
                vs.append(state["exp_avg_sq"])
            t = float(self.state[params[0]]["step"])  # a CPU tensor: no device sync
            lr_over_c1, c2 = group["lr"] / (1 - beta1**t), 1 - beta2**t
            if self._compiled is not None:
                try:  # bias corrections as 0-dim tensors: one compiled graph for every step
                    self._compiled(
                        params,
                        grads,
                        ms,
                        vs,
                        self._denoms(i, params),
                        beta1,
                        beta2,
                        torch.tensor(lr_over_c1, dtype=torch.float64),
                        torch.tensor(c2, dtype=torch.float64),
                        group["eps"],
                    )
                    self._compiled_ok = True
                    continue
                except Exception as e:  # noqa: BLE001 - a compiler failure: update eagerly from now on
                    if self._compiled_ok:
                        raise
                    warnings.warn(
                        f"train.compile: compiling the Adam update failed ({type(e).__name__}); updating eagerly",
                        stacklevel=2,
                    )
                    self._compiled = None
            adam_eps_inside_sqrt_update(
                params, grads, ms, vs, self._denoms(i, params), beta1, beta2, lr_over_c1, c2, group["eps"]
            )
        return loss


def build_optimizer(params, optim: dict, lr: float) -> Optimizer:
    betas = (optim["beta1"], optim["beta2"])
    if optim["name"] != "adam":
        raise ConfigError(f"unknown optimizer {optim['name']!r}: only 'adam' is supported")
    if optim["eps_inside_sqrt"]:
        return AdamEpsInsideSqrt(params, lr=lr, betas=betas, eps=optim["eps"])
    return torch.optim.Adam(params, lr=lr, betas=betas, eps=optim["eps"])


def lr_factor(optim: dict, total_iterations: int):
    """Multiplier of the base lr at an iteration: constant, or linear to 0 over [start, end]."""
    kind = optim["decay"]
    if kind == "constant":
        return lambda it: 1.0
    if kind != "linear":
        raise ConfigError(f"unknown lr decay {kind!r}: use 'constant' or 'linear'")
    start = optim["decay_start"]
    end = optim["decay_end"] or total_iterations
    if end <= start:
        raise ConfigError(f"optim.decay_end ({end}) must be after optim.decay_start ({start})")
    return lambda it: min(1.0, max(0.0, (end - it) / (end - start)))


def build_scheduler(optimizer: Optimizer, optim: dict, total_iterations: int) -> LambdaLR:
    return LambdaLR(optimizer, lr_factor(optim, total_iterations))
