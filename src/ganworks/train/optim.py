"""Optimizers and learning-rate schedules built from the ``optim`` table of a configuration.

``AdamEpsInsideSqrt`` is the Improved-GAN reference's Adam (papers.md §A.2, §C.4f):
p ← p − lr · m̂ / √(v̂ + ε), with ε inside the square root (torch.optim.Adam puts it outside:
√v̂ + ε). With ε = 1e-8 the reference's denominator never drops below 1e-4, which matters for
parameters with tiny gradients. Bias corrections as usual.
"""

from __future__ import annotations

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from ..errors import ConfigError

#: SN-GAN Table 1: Adam (lr, β1, β2) and n_dis, the D steps per G step, by setting name.
ADAM_SETTINGS = {
    "A": (1e-4, 0.5, 0.9, 5),    # WGAN-GP (Gulrajani et al.)
    "B": (1e-4, 0.5, 0.999, 1),  # Warde-Farley & Bengio
    "C": (2e-4, 0.5, 0.999, 1),  # DCGAN (Radford et al.)
    "D": (1e-3, 0.5, 0.9, 5),
    "E": (1e-3, 0.5, 0.999, 5),
    "F": (1e-3, 0.9, 0.999, 5),
}


def apply_adam_setting(cfg: dict) -> dict:
    """Fill lr, β1, β2 and the objective's n_dis from ``optim.setting`` (SN-GAN Table 1), in place."""
    name = cfg["optim"].get("setting", "")
    if not name:
        return cfg
    if name not in ADAM_SETTINGS:
        raise ConfigError(f"unknown Adam setting {name!r}: choose one of {', '.join(ADAM_SETTINGS)} (SN-GAN Table 1)")
    if cfg["objective"].get("name") != "gan":
        raise ConfigError("optim.setting (SN-GAN Table 1) sets n_dis, which only the 'gan' objective has")
    lr, b1, b2, n_dis = ADAM_SETTINGS[name]
    cfg["optim"].update(lr=lr, beta1=b1, beta2=b2)
    cfg["objective"]["n_dis"] = n_dis
    return cfg


class AdamEpsInsideSqrt(Optimizer):
    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8) -> None:
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
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
            t = float(self.state[params[0]]["step"])
            torch._foreach_lerp_(ms, grads, 1 - beta1)
            torch._foreach_mul_(vs, beta2)
            torch._foreach_addcmul_(vs, grads, grads, value=1 - beta2)
            # denom = sqrt(v / (1 - beta2^t) + eps); update = lr / (1 - beta1^t) * m / denom
            denom = torch._foreach_div(vs, 1 - beta2 ** t)
            torch._foreach_add_(denom, group["eps"])
            torch._foreach_sqrt_(denom)
            torch._foreach_addcdiv_(params, ms, denom, value=-group["lr"] / (1 - beta1 ** t))
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
