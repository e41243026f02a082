"""Section ``sn-baselines``: the SN paper's Table 2 baselines that have no reference code, ganworks'
own modules vs independent NumPy versions of the papers' formulas (``np_baselines.py``).

Neither chainer-gan-lib nor sngan_projection implements weight clipping, orthonormal regularization,
layer norm or weight norm (the SN authors' baseline code is not released), so every row here is
labelled "no reference code": what is checked is that ganworks computes the formula the paper states
(SN-paper §4.1, docs/papers.md §B.4), forward values and gradients, on identical inputs. Batch norm
has a counterpart in chainer-gan-lib (``common/net.py`` ``DCGANDiscriminator``, ``use_gamma=False``),
which section ``bn-dcgan`` runs in the Chainer environment; here it is compared with the NumPy formula
as well, which needs no reference environment.

Compared, on the standard-CNN discriminator ``sngan-cnn-d`` (``layout="chainer"``, width 1/16, batch 4,
32×32) in training mode:

* norm "none" (the D of weight clipping, WGAN-GP, GAN-GP and orthonormal), "batch", "layer", "weight":
  the logits and the gradients of Σ r_i·D(x)_i (r fixed random weights) w.r.t. every trainable parameter
  and the input; for "batch" also the running statistics after the forward and an eval-mode forward;
* weight clipping: ``objectives.GAN(weight_clip=0.01).after_step("d")`` (→ ``regularizers.clip_weights_``)
  on the "none" and the "batch" D (whose fixed BN gains must stay 1);
* orthonormal regularization: ``regularizers.orthonormal_penalty`` of D and of the standard-CNN G
  (``sngan-cnn-g``, with its transposed convolutions), value and the gradient w.r.t. every weight; and
  (float64 only) ``regularizers.orthonormal_init_``: every weight matrix's Gram against I.

Float32 and float64 runs of the same instance (drawn in float32, upcast): float64 to 1e-10, float32 by
the rounding noise measured on both sides (``compare.check_measured``).
"""

from __future__ import annotations

from pathlib import Path

import compare as C
import np_baselines as NB
import numpy as np
import torch
from harness import Section, seed_all
from torch import nn

BATCH = 4
WIDTH = 1 / 16
IMAGE = 32
SLOPE = 0.2  # layout "chainer"
NORMS = ("none", "batch", "layer", "weight")
BN_EPS, BN_MOMENTUM, LN_EPS = 2e-5, 0.1, 1e-5  # ganworks' sngan_cnn (Chainer's BN defaults) and GroupNorm's
CLIP = 0.01
NO_REF = "no reference code (the SN authors' baseline code is not released): NumPy of the paper's formula"
NO_REF_BN = (
    "NumPy of the formula (chainer-gan-lib common/net.py DCGANDiscriminator has this BN, use_gamma=False: "
    "section bn-dcgan runs it)"
)


def _d_names(D) -> dict:
    """{ganworks parameter or buffer name: NumPy name} for the standard-CNN D."""
    names, conv, i = {}, 0, 0
    for idx, m in enumerate(D.body):
        if isinstance(m, nn.Conv2d):
            i = conv
            conv += 1
            if hasattr(m, "parametrizations"):
                names.update(
                    {
                        f"body.{idx}.parametrizations.weight.original1": f"conv{i}.V",
                        f"body.{idx}.parametrizations.weight.original0": f"conv{i}.g",
                    }
                )
            else:
                names[f"body.{idx}.weight"] = f"conv{i}.W"
            names[f"body.{idx}.bias"] = f"conv{i}.b"
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            names.update({f"body.{idx}.weight": f"norm{i}.gain", f"body.{idx}.bias": f"norm{i}.beta"})
            if isinstance(m, nn.BatchNorm2d):
                names.update({f"body.{idx}.running_mean": f"norm{i}.mean", f"body.{idx}.running_var": f"norm{i}.var"})
    if hasattr(D.out, "parametrizations"):
        names.update(
            {"out.parametrizations.weight.original1": "out.V", "out.parametrizations.weight.original0": "out.g"}
        )
    else:
        names["out.weight"] = "out.W"
    names["out.bias"] = "out.b"
    return names


def _fill(model, rs, f32, names=None, std=None) -> None:
    """Overwrite every parameter (and BN running statistics) with the harness's float32 draws, N(0, std²)
    (default ``_stds``); fixed gains (the removed γ, weight norm's g) stay 1."""
    stds = _stds(model)
    state = dict(model.named_parameters())
    state.update({n: b for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var"))})
    with torch.no_grad():
        for n in sorted(state):
            t = state[n]
            if n.endswith("running_var"):
                v = rs.uniform(0.5, 1.5, t.shape)
            elif n.endswith("running_mean"):
                v = rs.randn(*t.shape) * 0.1
            elif names and names[n].endswith((".g", ".gain")):
                continue  # the removed γ / weight-norm gain: fixed at 1 by the model
            else:
                v = rs.randn(*t.shape) * (std if std is not None else stds[n])
            t.copy_(torch.from_numpy(f32(v)))


def _stds(model) -> dict:
    """{parameter name: std of its draw}: weights 1/√fan-in (activations of order 1), the rest 0.1."""
    out = {}
    for mn, m in model.named_modules():
        for pn, p in m.named_parameters(recurse=False):
            fan_in = p[0].numel() if p.dim() > 1 else 0
            if isinstance(m, nn.ConvTranspose2d) and pn == "weight":
                fan_in = p.shape[0] * p[0, 0].numel() // 4  # stride 2: a quarter of the taps reach an output
            out[f"{mn}.{pn}" if mn else pn] = 1.0 / np.sqrt(fan_in) if fan_in else 0.1
    return out


def _instance(dtype: str, rs_state) -> dict:
    """ganworks' side and the NumPy side of one precision; the float64 run is the float32 instance upcast."""
    from ganworks import regularizers
    from ganworks.models import build_model
    from ganworks.objectives.gan import GAN

    rs = np.random.RandomState()
    rs.set_state(rs_state)
    np_dt = np.dtype(dtype).type
    tdt = torch.float64 if dtype == "float64" else torch.float32
    f32 = lambda x: np.asarray(x).astype(np.float32).astype(np_dt)  # noqa: E731
    ours, ref = {}, {}
    x = f32(rs.uniform(-1, 1, (BATCH, 3, IMAGE, IMAGE)))
    x2 = f32(rs.uniform(-1, 1, (BATCH, 3, IMAGE, IMAGE)))
    r = f32(rs.randn(BATCH))
    torch.manual_seed(0)

    # ---- the four D variants: forward and gradients ----
    for norm in NORMS:
        D = build_model("sngan-cnn-d", image_size=IMAGE, layout="chainer", width=WIDTH, norm=norm).to(tdt).train()
        names = _d_names(D)
        have = {n for n, _ in D.named_parameters()} | {n for n, _ in D.named_buffers() if n.endswith(("_mean", "_var"))}
        assert set(names) == have, sorted(set(names) ^ have)
        _fill(D, rs, f32, names)
        state = {**dict(D.named_parameters()), **dict(D.named_buffers())}
        params = {names[n]: state[n].detach().numpy().copy() for n in names if not names[n].endswith((".mean", ".var"))}
        running = {names[n]: state[n].detach().numpy().copy() for n in names if names[n].endswith((".mean", ".var"))}
        assert all(np.all(v == 1) for k, v in params.items() if k.endswith((".g", ".gain")))
        xt = torch.from_numpy(x.copy()).requires_grad_(True)
        logits = D(xt)
        trainable = {n: p for n, p in D.named_parameters() if p.requires_grad}
        grads = torch.autograd.grad((torch.from_numpy(r) * logits).sum(), [xt, *trainable.values()])
        ours[f"{norm}/logits"] = logits.detach().numpy()
        ours[f"{norm}/grad/x"] = grads[0].numpy()
        ours.update({f"{norm}/grad/{names[n]}": g.numpy() for n, g in zip(trainable, grads[1:])})
        eps = {"batch": BN_EPS, "layer": LN_EPS}.get(norm, 0.0)
        rl, rg, new_running = NB.cnn_d(params, x, r, norm, SLOPE, eps, BN_MOMENTUM, running)
        ref[f"{norm}/logits"] = rl
        ref.update({f"{norm}/grad/{k}": v for k, v in rg.items()})
        if norm == "batch":
            bufs = dict(D.named_buffers())
            ours.update(
                {
                    f"{norm}/running/{names[n]}": bufs[n].numpy().copy()
                    for n in names
                    if n in bufs and not n.endswith("num_batches_tracked")
                }
            )
            ref.update({f"{norm}/running/{k}": v for k, v in new_running.items()})
            with torch.no_grad():
                ours["batch/eval_logits"] = D.eval()(torch.from_numpy(x2)).numpy()
            ref["batch/eval_logits"] = NB.cnn_d_eval(params, x2, norm, SLOPE, BN_EPS, new_running)

        # ---- weight clipping on the "none" D (the WGAN baseline) and the "batch" D (fixed gains) ----
        if norm in ("none", "batch"):
            Dc = build_model("sngan-cnn-d", image_size=IMAGE, layout="chainer", width=WIDTH, norm=norm).to(tdt).train()
            _fill(Dc, rs, f32, names, 0.015)  # about half the entries beyond ±c
            before = {names[n]: p.detach().numpy().copy() for n, p in Dc.named_parameters()}
            G0 = build_model("sngan-cnn-g", image_size=IMAGE, layout="chainer", width=WIDTH).to(tdt)
            GAN(G0, Dc, loss="wasserstein", weight_clip=CLIP).after_step("d")
            ours.update({f"clip/{norm}/{names[n]}": p.detach().numpy() for n, p in Dc.named_parameters()})
            trainable_before = {k: v for k, v in before.items() if not k.endswith((".g", ".gain"))}
            ref.update({f"clip/{norm}/{k}": v for k, v in NB.clip_weights(trainable_before, CLIP).items()})
            ref.update({f"clip/{norm}/{k}": v for k, v in before.items() if k.endswith((".g", ".gain"))})
            if norm == "none":
                frac = float(np.mean([np.mean(np.abs(v) > CLIP) for v in trainable_before.values()]))
                ours["clip/fraction_clipped"] = ref["clip/fraction_clipped"] = np.asarray(frac)

    # ---- orthonormal regularization: D ("none") and G ----
    D = build_model("sngan-cnn-d", image_size=IMAGE, layout="chainer", width=WIDTH, norm="none").to(tdt)
    G = build_model("sngan-cnn-g", image_size=IMAGE, layout="chainer", width=WIDTH).to(tdt)
    weights = {}
    for tag, model in (("D", D), ("G", G)):
        _fill(model, rs, f32)
        for n, m in model.named_modules():
            if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
                kind = "deconv" if isinstance(m, nn.ConvTranspose2d) else "dense"
                weights[f"{tag}.{n}.weight"] = (m.weight, kind)
        pen = regularizers.orthonormal_penalty(model)
        mats = {k: v for k, v in weights.items() if k.startswith(tag + ".")}
        grads = torch.autograd.grad(pen, [w for w, _ in mats.values()])
        ours[f"ortho/{tag}/penalty"] = pen.detach().numpy()
        ours.update({f"ortho/{tag}/grad/{k}": g.numpy() for k, g in zip(mats, grads)})
        val, rgrads = NB.orthonormal_penalty({k: (w.detach().numpy().copy(), kind) for k, (w, kind) in mats.items()})
        ref[f"ortho/{tag}/penalty"] = val
        ref.update({f"ortho/{tag}/grad/{k}": v for k, v in rgrads.items()})
    if dtype == "float64":
        for tag, model in (("D", D), ("G", G)):
            regularizers.orthonormal_init_(model)
            for k, (w, kind) in weights.items():
                if k.startswith(tag + "."):
                    M = NB.as_matrix(w.detach().numpy(), kind)
                    gram = M @ M.T if M.shape[0] <= M.shape[1] else M.T @ M
                    ours[f"init/{k}"], ref[f"init/{k}"] = gram, np.eye(len(gram))
    return {
        "ours": {k: np.asarray(v, dtype=np_dt) for k, v in ours.items()},
        "ref": {k: np.asarray(v, dtype=np_dt) for k, v in ref.items()},
    }


def rows(runs: dict) -> list[dict]:
    """Every row: title, ours, ref (names), keys, wide_only (float64 only), atol_of_check (float64: arrays
    zero by construction judged against the row's largest array, ``compare.check``)."""
    keys = sorted(runs["float64"]["ref"])
    pick = lambda p: [k for k in keys if k.startswith(p)]  # noqa: E731
    out = []
    row = lambda title, ours, ref, ks, **kw: out.append(dict(title=title, ours=ours, ref=ref, keys=ks, **kw))  # noqa: E731
    what = {
        "none": "no normalization (the D of weight clipping, WGAN-GP, GAN-GP, orthonormal)",
        "batch": "batch norm without γ (training mode)",
        "layer": "layer norm without γ",
        "weight": "weight norm without γ (W = V/‖V‖)",
    }
    module = {
        "none": "models.sngan_cnn CNNDiscriminator(norm='none')",
        "batch": "models.sngan_cnn CNNDiscriminator(norm='batch') (nn.BatchNorm2d, weight fixed at 1)",
        "layer": "models.sngan_cnn CNNDiscriminator(norm='layer') (nn.GroupNorm(1, C), weight fixed at 1)",
        "weight": "models.sngan_cnn CNNDiscriminator(norm='weight') (nn.weight_norm, g fixed at 1)",
    }
    for norm in NORMS:
        refname = NO_REF_BN if norm == "batch" else NO_REF
        fwd = [f"{norm}/logits"] + (pick("batch/running/") if norm == "batch" else [])
        row(
            f"SN Table 2 baseline D, {what[norm]}: logits"
            + (" and BN running statistics after the forward" if norm == "batch" else ""),
            module[norm],
            refname,
            fwd,
        )
        row(
            f"SN Table 2 baseline D, {what[norm]}: gradients of Σ r·D(x) w.r.t. every trainable parameter and x",
            module[norm] + " + autograd",
            refname,
            pick(f"{norm}/grad/"),
            atol_of_check=norm == "batch",
            note=(
                "the biases of convs 2-7 feed a BN: their exact gradient is 0 (the bias cancels in the "
                "normalization) and both sides return rounding noise (≤ 3.4e-16 of the row's largest gradient in "
                "float64, ≤ 3.4e-7 in float32), judged in float64 against the row's largest gradient (+atol)"
            )
            if norm == "batch"
            else "",
        )
    row(
        "SN Table 2 baseline D, batch norm without γ: eval-mode logits on the running statistics",
        module["batch"],
        NO_REF_BN,
        ["batch/eval_logits"],
    )
    row(
        "SN Table 2 weight clipping (c = 0.01) after a D step: every parameter of the plain and the BN D "
        "(fixed BN gains left at 1)",
        "objectives.GAN(weight_clip=0.01).after_step('d') → regularizers.clip_weights_",
        NO_REF,
        pick("clip/"),
    )
    for tag, model in (("D", "standard-CNN D"), ("G", "standard-CNN G (transposed convs)")):
        row(
            f"SN Table 2 orthonormal regularization Σ‖WᵀW − I‖²_F of the {model}: value and gradient w.r.t. "
            "every weight",
            "regularizers.orthonormal_penalty + autograd",
            NO_REF,
            pick(f"ortho/{tag}/"),
        )
    row(
        "SN Table 2 orthonormal initialisation: every weight matrix's Gram (WWᵀ or WᵀW, the smaller) vs I",
        "regularizers.orthonormal_init_",
        "no reference code: the identity",
        pick("init/"),
        wide_only=True,
    )
    return out


def section(a, tmp: Path) -> list[C.Check]:
    rs_state = seed_all(0).get_state()
    runs = {dt: _instance(dt, rs_state) for dt in ("float64", "float32")}
    return checks_of(runs)


def checks_of(runs: dict) -> list[C.Check]:
    """The section's checks from the two precisions' arrays (``_instance``)."""
    secs = {dt: Section("sn-baselines", dt) for dt in runs}
    o64, r64 = runs["float64"]["ours"], runs["float64"]["ref"]
    o32, r32 = runs["float32"]["ours"], runs["float32"]["ref"]
    for r in rows(runs):
        title, ours_name, ref_name, keys, note = r["title"], r["ours"], r["ref"], r["keys"], r.get("note", "")
        secs["float64"].check(
            title,
            ref_name,
            ours_name,
            C.pair_up({k: o64[k] for k in keys}, {k: r64[k] for k in keys}),
            rtol=C.RTOL_FLOAT64,
            atol_of_check=r.get("atol_of_check", False),
            note=note,
        )
        if not r.get("wide_only"):
            secs["float32"].checks.append(
                C.check_measured(
                    title,
                    ref_name,
                    ours_name,
                    {k: (o32[k], r32[k], o64[k], r64[k]) for k in keys},
                    note=note,
                    section=secs["float32"].name,
                )
            )
    return secs["float64"].checks + secs["float32"].checks
