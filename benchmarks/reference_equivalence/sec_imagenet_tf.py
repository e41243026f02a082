"""Improved-GAN ImageNet (TensorFlow through tf.compat.v1), VBN and minibatch discrimination: sections ``imagenet-tf``, ``imagenet-tf64``.

Moved out of run.py unchanged (issue 23, item 5); the shared pieces (the exchange of arrays with the
reference scripts, the recorded draws, the run's precision ``H.DTYPE``) are in harness.py.
"""

from __future__ import annotations

from pathlib import Path

import compare as C
import harness as H
import numpy as np
import torch
from harness import LAST_OURS, npy, run_reference


def imagenet_tf_section(a, tmp: Path, dtype: str = "float32") -> list[C.Check]:
    """VBN (model.py class VBN through DCGAN.vbn) and the discriminator's inline minibatch
    discrimination (discriminator.py) vs ganworks' VirtualBatchNorm and JointMinibatchDiscrimination,
    on the same inputs and weights; forward values and gradients of a fixed random linear loss."""
    H.DTYPE = np.dtype(dtype).type
    wide = dtype == "float64"
    tag = " [float64]" if wide else ""
    sec = "improved-gan-imagenet-tf" + ("-float64" if wide else "")
    from ganworks.models.improved_gan_imagenet import ImageNetDiscriminator
    from ganworks.nn.vbn import VirtualBatchNorm
    from ganworks.objectives.improved_gan_imagenet import gan_logit_from_1001

    tdt = torch.float64 if wide else torch.float32
    torch.manual_seed(12)
    rs = np.random.RandomState(12)
    T = lambda x: torch.from_numpy(np.ascontiguousarray(x)).to(tdt)  # noqa: E731
    nhwc = lambda x: np.ascontiguousarray(np.moveaxis(x, 1, -1)) if x.ndim == 4 else x  # noqa: E731
    inp = {"dtype": dtype, "seed": 0}
    ours = {}
    # ---- VBN: a reference batch of 16 (the per-GPU batch) and a live batch of 5 -------------------
    n_ref, n_live = 16, 5
    for case, shape in (("conv", (6, 4, 4)), ("dense", (7,))):
        p = f"vbn_{case}_"
        xr = (rs.randn(n_ref, *shape) * 2 + 0.5).astype(H.DTYPE)
        xl = (rs.randn(n_live, *shape) * 2 + 0.5).astype(H.DTYPE)
        wr, wl = rs.randn(*xr.shape).astype(H.DTYPE), rs.randn(*xl.shape).astype(H.DTYPE)
        vbn = VirtualBatchNorm(shape[0], n_ref).to(tdt)
        with torch.no_grad():
            vbn.beta.copy_(T(0.1 * rs.randn(shape[0])))
        inp.update(
            {
                p + "x_ref": nhwc(xr),
                p + "x_live": nhwc(xl),
                p + "w_ref": nhwc(wr),
                p + "w_live": nhwc(wl),
                p + "gamma": npy(vbn.gamma),
                p + "beta": npy(vbn.beta),
            }
        )
        xr_t, xl_t = T(xr).requires_grad_(), T(xl).requires_grad_()
        y = vbn(torch.cat([xr_t, xl_t]))
        loss = (y[:n_ref] * T(wr)).sum() + (y[n_ref:] * T(wl)).sum()
        g = torch.autograd.grad(loss, [xr_t, xl_t, vbn.gamma, vbn.beta])
        ours.update(
            {
                p + "y_ref": nhwc(npy(y[:n_ref])),
                p + "y_live": nhwc(npy(y[n_ref:])),
                p + "grad_x_ref": nhwc(npy(g[0])),
                p + "grad_x_live": nhwc(npy(g[1])),
                p + "grad_gamma": npy(g[2]),
                p + "grad_beta": npy(g[3]),
            }
        )
    # ---- minibatch discrimination: the reference's D (df_dim 4, per-half batch 4) produces h ------
    B, df = 4, 4
    D = ImageNetDiscriminator(df=df).to(tdt)
    with torch.no_grad():
        # at init (N(0, 0.02²) weights) the L1 distances over 50 dims are ~15 and every exp(−d) is ~1e-6
        # or less; scaled by 0.1 the distances are O(1), so the similarities (and their gradients) matter
        D.md.linear.weight.mul_(0.1)
        D.md.linear.bias.copy_(0.01 * torch.randn(D.md.linear.bias.shape))
    inp.update(
        {
            "md_batch_size": B,
            "md_df_dim": df,
            "md_image": rs.uniform(-1, 1, (2 * B, 128, 128, 3)).astype(H.DTYPE),
            "normal_draw": rs.randn(2 * B, 128, 128, 3).astype(H.DTYPE),
            "md_w_f": rs.randn(2 * B, 600).astype(H.DTYPE),
            "md_w_cls": rs.randn(B, 1001).astype(H.DTYPE),
            "md_w_gan": rs.randn(2 * B).astype(H.DTYPE),
            "md_d_h_Matrix": npy(D.md.linear.weight).T,
            "md_d_h_bias": npy(D.md.linear.bias),
            "md_d_indiv_logits_Matrix": npy(D.out.weight).T,
            "md_d_indiv_logits_bias": npy(D.out.bias),
        }
    )
    env = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0"}
    ref = run_reference(
        a.tf_python,
        "ref_improved_gan_imagenet_tf.py",
        ["--improved-gan", a.improved_gan],
        inp,
        env,
        tmp,
        "imagenet-tf-" + dtype,
    )

    # ganworks on the reference's h (the input of the minibatch layer)
    w_f, w_cls, w_gan = T(inp["md_w_f"]), T(inp["md_w_cls"]), T(inp["md_w_gan"])
    h = T(ref["md_h"]).requires_grad_()
    f = D.md(h)
    g = torch.autograd.grad((f * w_f).sum(), [h, D.md.linear.weight, D.md.linear.bias])
    o = {"f": npy(f), "gmd_h": npy(g[0]), "gmd_d_h_Matrix": npy(g[1]).T, "gmd_d_h_bias": npy(g[2])}
    logits = D.out(torch.cat([h, D.md(h)], dim=1))  # ImageNetDiscriminator.forward after the features
    gan = gan_logit_from_1001(logits)
    loss = (logits[:B] * w_cls).sum() + (gan * w_gan).sum()
    g = torch.autograd.grad(loss, [h, D.md.linear.weight, D.md.linear.bias, D.out.weight, D.out.bias])
    o.update(
        {
            "class_logits_real": npy(logits[:B]),
            "gan_logits_real": npy(gan[:B]),
            "gan_logits_fake": npy(gan[B:]),
            "ghead_h": npy(g[0]),
            "ghead_d_h_Matrix": npy(g[1]).T,
            "ghead_d_h_bias": npy(g[2]),
            "ghead_d_indiv_logits_Matrix": npy(g[3]).T,
            "ghead_d_indiv_logits_bias": npy(g[4]),
        }
    )
    LAST_OURS["imagenet-tf-" + dtype] = {"vbn": ours, "md": o, "ref": ref}

    checks = []

    def ck(component, *args, **kw):
        checks.append(C.check(component + tag, *args, section=sec, **kw))

    mref, dref = "imagenet/model.py: VBN (DCGAN.vbn)", "imagenet/discriminator.py: discriminator"
    for case, label in (("conv", "conv (16+5, 6, 4, 4)"), ("dense", "dense (16+5, 7)")):
        p = f"vbn_{case}_"
        ck(
            f"ImageNet VBN, {label}: reference rows and live rows",
            mref,
            "nn.vbn.VirtualBatchNorm",
            {k: (ours[p + k], ref[p + k]) for k in ("y_ref", "y_live")},
        )
        ck(
            f"ImageNet VBN, {label}: gradients w.r.t. reference batch, live batch, γ, β",
            f"{mref} + tf.gradients",
            "autograd",
            {k: (ours[p + k], ref[p + k]) for k in ("grad_x_ref", "grad_x_live", "grad_gamma", "grad_beta")},
        )
    md_note = (
        "the denominator of each half's sum is the reference's tf.reduce_sum(half(mask, s)), one scalar "
        f"B(2B−1) (= {B * (2 * B - 1)} here), which ganworks follows (not a per-row mean; see "
        "JointMinibatchDiscrimination)"
    )
    ck(
        f"ImageNet minibatch discrimination (300 kernels × 50, joint batch 2×{B}): features",
        f"{dref}: f1, f2",
        "models.improved_gan_imagenet.JointMinibatchDiscrimination",
        {"f": (o["f"], ref["md_f"])},
        note=md_note,
    )
    ck(
        "ImageNet minibatch discrimination: gradients w.r.t. h, d_h W, d_h b",
        f"{dref} + tf.gradients",
        "autograd",
        {k: (o[k], ref["md_" + k]) for k in ("gmd_h", "gmd_d_h_Matrix", "gmd_d_h_bias")},
        atol_of_check=True,
        note="the d_h bias's exact gradient is 0 (it shifts every sample's M alike, so no L1 distance changes); "
        "both sides return rounding noise, judged against the check's largest gradient (compare.py)",
    )
    ck(
        "ImageNet D head from h (MD → 1001 class logits → GAN logit): forward",
        f"{dref}: class_logits, gan_logits",
        "models.improved_gan_imagenet + objectives.gan_logit_from_1001",
        {k: (o[k], ref["md_" + k]) for k in ("class_logits_real", "gan_logits_real", "gan_logits_fake")},
    )
    ck(
        "ImageNet D head from h: gradients w.r.t. h and every head parameter",
        f"{dref} + tf.gradients",
        "autograd",
        {
            k: (o[k], ref["md_" + k])
            for k in (
                "ghead_h",
                "ghead_d_h_Matrix",
                "ghead_d_h_bias",
                "ghead_d_indiv_logits_Matrix",
                "ghead_d_indiv_logits_bias",
            )
        },
        atol_of_check=True,
    )
    return checks
