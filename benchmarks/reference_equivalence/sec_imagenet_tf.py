"""Improved-GAN ImageNet (TensorFlow through tf.compat.v1): VBN, minibatch discrimination, the D head
and the losses with one-sided label smoothing: section ``imagenet-tf`` (run.py runs it in float32 and
float64 and re-judges the pairs, ``compare.measure_sections``).

The float64 run is the float32 instance upcast: every draw is made in float32 and then cast, the
ganworks modules are initialised (and edited) in float32 and then ``.to(float64)``, and the
reference's own TF-initialised variables (the conv tower producing the minibatch layer's input h)
are, in the float64 run, the float32 run's values upcast (``_TF_INIT``). The shared pieces (the
exchange of arrays with the reference scripts, the run's precision ``H.DTYPE``) are in harness.py.
"""

from __future__ import annotations

from pathlib import Path

import compare as C
import harness as H
import numpy as np
import torch
from harness import LAST_OURS, npy, run_reference

#: the reference's TF-initialised variables of the last float32 run ("init:<name>"), given upcast to
#: the float64 run so that both runs hold the same instance
_TF_INIT: dict[str, np.ndarray] = {}
#: the inputs of the last float32 run: the float64 run's must be these, upcast (checked)
_INP32: dict[str, np.ndarray] = {}


def imagenet_tf_section(a, tmp: Path, dtype: str = "float32") -> list[C.Check]:
    """VBN (model.py class VBN through DCGAN.vbn) and the discriminator's inline minibatch
    discrimination (discriminator.py) vs ganworks' VirtualBatchNorm and JointMinibatchDiscrimination,
    on the same inputs and weights; forward values and gradients of a fixed random linear loss. Then
    build_model.py's losses (one-sided label smoothing) vs the preset's objective on the same logits."""
    wide = dtype == "float64"
    if wide and not _TF_INIT:  # the float64 instance needs the float32 run's TF-initialised variables
        imagenet_tf_section(a, tmp, "float32")
    H.DTYPE = np.dtype(dtype).type
    tag = " [float64]" if wide else ""
    sec = "improved-gan-imagenet-tf" + ("-float64" if wide else "")
    from ganworks.models.improved_gan_imagenet import ImageNetDiscriminator
    from ganworks.nn.vbn import VirtualBatchNorm
    from ganworks.objectives.improved_gan_imagenet import gan_logit_from_1001

    tdt = torch.float64 if wide else torch.float32
    torch.manual_seed(12)
    rs = np.random.RandomState(12)
    T = lambda x: torch.from_numpy(np.ascontiguousarray(x)).to(tdt)  # noqa: E731
    # every draw in float32, then in the run's precision (the float64 run: the float32 values upcast)
    f32 = lambda x: np.asarray(x, dtype=np.float32).astype(H.DTYPE)  # noqa: E731
    nhwc = lambda x: np.ascontiguousarray(np.moveaxis(x, 1, -1)) if x.ndim == 4 else x  # noqa: E731
    inp = {"dtype": dtype, "seed": 0}
    ours = {}
    # ---- VBN: a reference batch of 16 (the per-GPU batch) and a live batch of 5 -------------------
    n_ref, n_live = 16, 5
    for case, shape in (("conv", (6, 4, 4)), ("dense", (7,))):
        p = f"vbn_{case}_"
        xr = f32(rs.randn(n_ref, *shape) * 2 + 0.5)
        xl = f32(rs.randn(n_live, *shape) * 2 + 0.5)
        wr, wl = f32(rs.randn(*xr.shape)), f32(rs.randn(*xl.shape))
        vbn = VirtualBatchNorm(shape[0], n_ref)  # float32: γ drawn and β set there, then upcast
        with torch.no_grad():
            vbn.beta.copy_(torch.from_numpy((0.1 * rs.randn(shape[0])).astype(np.float32)))
        vbn = vbn.to(tdt)
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
    D = ImageNetDiscriminator(df=df)  # float32: initialised and scaled there, then upcast
    with torch.no_grad():
        # at init (N(0, 0.02²) weights) the L1 distances over 50 dims are ~15 and every exp(−d) is ~1e-6
        # or less; scaled by 0.1 the distances are O(1), so the similarities (and their gradients) matter
        D.md.linear.weight.mul_(0.1)
        D.md.linear.bias.copy_(0.01 * torch.randn(D.md.linear.bias.shape))
    D = D.to(tdt)
    inp.update(
        {
            "md_batch_size": B,
            "md_df_dim": df,
            "md_image": f32(rs.uniform(-1, 1, (2 * B, 128, 128, 3))),
            "normal_draw": f32(rs.randn(2 * B, 128, 128, 3)),
            "md_w_f": f32(rs.randn(2 * B, 600)),
            "md_w_cls": f32(rs.randn(B, 1001)),
            "md_w_gan": f32(rs.randn(2 * B)),
            "md_d_h_Matrix": npy(D.md.linear.weight).T,
            "md_d_h_bias": npy(D.md.linear.bias),
            "md_d_indiv_logits_Matrix": npy(D.out.weight).T,
            "md_d_indiv_logits_bias": npy(D.out.bias),
        }
    )
    # ---- the losses (build_model.py) on one joint batch of 1001-way logits: 16 real + 16 fake rows
    # (the per-GPU batch), the generated-class logit set so that the GAN logits are O(1) ------------
    BL = 16
    lg = rs.randn(2 * BL, 1001) * 2
    lg[:, -1] = np.log(np.exp(lg[:, :-1]).sum(1)) + 1.5 * rs.randn(2 * BL)
    inp.update({"loss_logits": f32(lg), "loss_labels": rs.randint(0, 1000, BL).astype(np.int64)})
    if wide:  # the same instance: every float input is the float32 run's, upcast (exactly)
        bad = [
            k
            for k, v in inp.items()
            if np.asarray(v).dtype.kind == "f"
            and not (k in _INP32 and np.array_equal(v, np.asarray(_INP32[k]).astype(np.float64)))
        ]
        if bad or set(inp) != set(_INP32):
            raise RuntimeError(f"the float64 run is not the float32 instance upcast: {bad or set(inp) ^ set(_INP32)}")
    if wide:  # the reference's TF-initialised variables: the float32 run's values, upcast
        inp.update({k: v.astype(H.DTYPE) for k, v in _TF_INIT.items()})
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
    if not wide:
        _INP32.clear()
        _INP32.update(inp)
        _TF_INIT.clear()
        _TF_INIT.update({k: v for k, v in ref.items() if k.startswith("init:")})
    elif any(k.startswith("init:") for k in ref):  # a TF-initialised variable the float32 run did not give
        raise RuntimeError(f"float64 run: TF initialised {sorted(k for k in ref if k.startswith('init:'))}")

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

    # ganworks' objective of the preset (improved-gan/imagenet128) on the same logits: a stand-in D
    # returns them for the joint batch, a stand-in G gives the (ignored) fakes
    from ganworks.config import load_preset
    from ganworks.train.build import build_objective

    class FixedLogits(torch.nn.Module):
        def forward(self, x):
            assert x.shape[0] == 2 * BL
            return self.logits

    class NoG(torch.nn.Module):
        def sample_z(self, n, device=None):
            return torch.zeros(n, 1, dtype=tdt, device=device)

        def forward(self, z):
            return z

    Dl = FixedLogits()
    obj = build_objective(load_preset("improved-gan/imagenet128"), NoG(), Dl)
    batch = {"x": torch.zeros(BL, 1, dtype=tdt), "y": torch.from_numpy(inp["loss_labels"])}
    Dl.logits = T(inp["loss_logits"]).requires_grad_()
    d_loss, logs = obj.d_loss(batch)
    (gd,) = torch.autograd.grad(d_loss, [Dl.logits])
    g_loss, _ = obj.g_loss(batch)
    (gg,) = torch.autograd.grad(g_loss, [Dl.logits])
    lo = {
        "d_loss_real": npy(logs["d_loss_real"]),
        "d_loss_fake": npy(logs["d_loss_fake"]),
        "d_loss_class": npy(logs["d_loss_class"]),
        "d_loss": npy(d_loss),
        "g_loss": npy(g_loss),
        "grad_d_loss": npy(gd),
        "grad_g_loss": npy(gg),
        # (1 − real target, G target) vs the reference's (d_label_smooth, generator_target_prob)
        "hp": np.array([1 - obj.real_target, obj.g_target]),
    }
    LAST_OURS["imagenet-tf-" + dtype] = {"vbn": ours, "md": o, "loss": lo, "ref": ref}

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
    lref = "imagenet/build_model.py: d_loss_real, d_loss_fake, d_loss_class, g_loss (+ model.sigmoid_kl_with_logits)"
    hp = ref["loss_hp"]
    ck(
        f"ImageNet losses (joint batch 2×{BL}, 1001 logits): D loss terms (real, one-sided label smoothing; "
        "fake; class), D loss, G loss, label targets",
        lref,
        "objectives.ImageNetSemiSupervisedGAN (preset improved-gan/imagenet128)",
        {
            k: (lo[k], ref["loss_" + k])
            for k in ("d_loss_real", "d_loss_fake", "d_loss_class", "d_loss", "g_loss", "hp")
        },
        note=f"targets of the reference run (train_imagenet.py): d_label_smooth {hp[0]:g} (real target "
        f"{1 - hp[0]:g}, fake target 0), generator_target_prob {hp[1]:g}; the KL form subtracts the target's "
        "entropy (model.sigmoid_kl_with_logits); the GAN logits are discriminator.py's logsumexp of the "
        "1000 class logits minus the generated logit; the generated logits were drawn so that the GAN "
        "logits are O(1) (sigmoids not saturated)",
    )
    ck(
        "ImageNet losses: gradients of the D loss and the G loss w.r.t. the joint batch's 1001 logits",
        f"{lref} + tf.gradients",
        "autograd",
        {k: (lo[k], ref["loss_" + k]) for k in ("grad_d_loss", "grad_g_loss")},
    )
    return checks
