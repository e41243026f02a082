"""Section ``wgan-gp``: the WGAN-GP baseline's D step, ganworks' Wasserstein critic loss +
λ·``regularizers.gradient_penalty`` vs chainer-gan-lib's ``wgan_gp/updater.py`` with its
``WGANDiscriminator`` (``ref_wgan_gp.py``), on identical weights, real and generated batches and
interpolation weights α: the losses, the mean input-gradient norm at the interpolates, and the
gradients w.r.t. every D parameter. Float32 and float64 runs of the same instance; float64 to 1e-10,
float32 judged by the measured rounding noise (``compare.check_measured``).

ganworks' critic is ``sngan-cnn-d`` with ``layout="chainer"`` and ``norm="none"`` at full width
(``WGANDiscriminator.differentiable_backward`` hard-codes 512 channels).
"""

from __future__ import annotations

from pathlib import Path

import compare as C
import numpy as np
import torch
from harness import Section, run_reference, seed_all

BATCH = 4
LAM = 10.0
LINKS = ["c0", "c1", "c1_0", "c2", "c2_0", "c3", "c3_0"]


def _ours(dtype: str, rs_state) -> tuple[dict, dict]:
    from ganworks import losses, regularizers
    from ganworks.models import build_model

    rs = np.random.RandomState()
    rs.set_state(rs_state)
    np_dt = np.dtype(dtype).type
    tdt = torch.float64 if dtype == "float64" else torch.float32
    torch.manual_seed(0)
    D = build_model(name="sngan-cnn-d", layout="chainer", norm="none").train()
    names = {
        f"body.{2 * j}.{leaf}": f"/{c}/{'W' if leaf == 'weight' else 'b'}"
        for j, c in enumerate(LINKS)
        for leaf in ("weight", "bias")
    }
    names.update({"out.weight": "/l4/W", "out.bias": "/l4/b"})
    assert set(names) == {n for n, _ in D.named_parameters()}, sorted(n for n, _ in D.named_parameters())
    D = D.to(tdt)
    f32 = lambda x: x.astype(np.float32).astype(np_dt)  # noqa: E731  (the float64 run is the float32 instance)
    with torch.no_grad():  # weights at a scale where the critic's outputs and gradients are O(1)
        for p in D.parameters():
            p.copy_(torch.from_numpy(f32(rs.randn(*p.shape) * (0.05 if p.dim() > 1 else 0.01))))
    x_real = f32(rs.uniform(-1, 1, (BATCH, 3, 32, 32)))
    x_fake = f32(rs.uniform(-1, 1, (BATCH, 3, 32, 32)))
    alpha = f32(rs.uniform(0, 1, BATCH))
    inp = {"dtype": dtype, "lam": LAM, "x_real": x_real, "x_fake": x_fake, "alpha": alpha}
    inp.update({"D" + names[n]: p.detach().numpy().astype(np_dt) for n, p in D.named_parameters()})
    xr, xf, al = (torch.from_numpy(v) for v in (x_real, x_fake, alpha))
    dr, df = D(xr), D(xf)
    loss_w = losses.d_loss_wasserstein(dr, df)
    gp = regularizers.gradient_penalty(D, xr, xf, alpha=al, mode="wgan-gp")
    params = dict(D.named_parameters())
    grads = torch.autograd.grad(loss_w + LAM * gp, list(params.values()))
    x_hat = (al.view(-1, 1, 1, 1) * xr + (1 - al.view(-1, 1, 1, 1)) * xf).requires_grad_(True)
    (g,) = torch.autograd.grad(D(x_hat).sum(), x_hat)
    ours = {
        "loss_dis": loss_w.detach().numpy(),
        "loss_gp": (LAM * gp).detach().numpy(),
        "g": g.flatten(1).norm(dim=1).mean().detach().numpy(),
        "loss_gen": (-df.mean()).detach().numpy(),
    }
    ours.update({"D_grad" + names[n]: gr.numpy() for n, gr in zip(params, grads)})
    return inp, {k: np.asarray(v, dtype=np_dt) for k, v in ours.items()}


def section(a, tmp: Path) -> list[C.Check]:
    rs_state = seed_all(0).get_state()
    runs = {}
    for dt in ("float64", "float32"):
        inp, ours = _ours(dt, rs_state)
        ref = run_reference(
            a.chainer_python, "ref_wgan_gp.py", ["--chainer-gan-lib", a.chainer_gan_lib], inp, {}, tmp, "wgan-gp-" + dt
        )
        runs[dt] = (ours, ref)
    secs = {dt: Section("wgan-gp", dt) for dt in runs}
    ref_fn = "chainer-gan-lib wgan_gp/updater.py: Updater.update_core + common/net.py: WGANDiscriminator"
    groups = [
        (
            "WGAN-GP D step: critic loss E D(G(z)) − E D(x), λ·penalty, mean ‖∇D(x̂)‖, G's loss −E D(G(z))",
            "losses.d_loss_wasserstein + regularizers.gradient_penalty",
            ["loss_dis", "loss_gp", "g", "loss_gen"],
        ),
        (
            "WGAN-GP D step: gradients of critic loss + λ·penalty w.r.t. every D parameter "
            "(the penalty's double backward vs WGANDiscriminator.differentiable_backward)",
            "autograd",
            sorted(k for k in runs["float64"][1] if k.startswith("D_grad")),
        ),
    ]
    o64, r64 = runs["float64"]
    o32, r32 = runs["float32"]
    for title, ours_name, keys in groups:
        secs["float64"].check(title, ref_fn, ours_name, {k: (o64[k], r64[k]) for k in keys}, rtol=C.RTOL_FLOAT64)
        secs["float32"].checks.append(
            C.check_measured(
                title,
                ref_fn,
                ours_name,
                {k: (o32[k], r32[k], o64[k], r64[k]) for k in keys},
                section=secs["float32"].name,
            )
        )
    return secs["float64"].checks + secs["float32"].checks
