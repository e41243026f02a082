"""SN-GAN class-conditional pieces (sngan_projection, Chainer): section ``sngan-cond`` (run.py runs it in
float32 and, on the same instance upcast, in float64).

Moved out of run.py (issue 23, item 5); the shared pieces (the exchange of arrays with the reference
scripts, the recorded draws, the run's precision ``H.DTYPE``) are in harness.py. As in sec_sngan.py,
every draw is made in float32 first and every module is built and initialised in float32 before
``.to(tdt)``, so the float64 run is the float32 instance upcast.
"""

from __future__ import annotations

from pathlib import Path

import compare as C
import harness as H
import numpy as np
import torch
from harness import LAST_OURS, npy, run_reference
from sec_sngan import _chainer_names, _f32, _sn_modules

#: conditional model pairs: prefix -> (image size, G width, D width, D conditioning, Chainer G module,
#: Chainer D module and class, G's last BN / conv link names); widths are small so that a pair runs in
#: seconds; the Chainer ``ch`` that gives the same channel counts is passed to the reference script.
COND_PAIRS = {
    "p32": (
        32,
        1 / 16,
        1 / 8,
        "projection",
        "gen_models/resnet_32.py",
        "dis_models/snresnet_32.py: SNResNetProjectionDiscriminator",
    ),
    "p64": (
        64,
        1 / 16,
        1 / 16,
        "projection",
        "gen_models/resnet_64.py",
        "dis_models/snresnet_64.py: SNResNetProjectionDiscriminator",
    ),
    "p128": (
        128,
        1 / 16,
        1 / 16,
        "projection",
        "gen_models/resnet.py",
        "dis_models/snresnet.py: SNResNetProjectionDiscriminator",
    ),
    "c128": (
        128,
        1 / 16,
        1 / 16,
        "concat",
        "gen_models/resnet.py",
        "dis_models/snresnet.py: SNResNetConcatDiscriminator",
    ),
}
COND_CLASSES = 10


def _cond_links(model: torch.nn.Module, role: str, image_size: int) -> dict[str, tuple[str, bool]]:
    """{our module path: (Chainer link path, is BN)} for sngan_projection's ResNet G / D: blocks are
    ``block2``... in G and ``block1``... in D; a conditional BN's tables are ``bN/gammas``, ``bN/betas``;
    the last layers are numbered after the blocks (``b5``/``c5`` in resnet_32.py, ``b6``/``l6``,
    ``b7``/``l7`` in resnet_64.py / resnet.py; ``l5``/``l6``/``l7`` and ``l_y`` in D)."""
    nb = len(model.blocks)
    off = 2 if role == "G" else 1
    out = {}
    for name, mod in model.named_modules():
        if not any(True for _ in mod.parameters(recurse=False)) and not name.endswith("parametrizations.weight"):
            continue
        name = name[: -len(".parametrizations.weight")] if name.endswith("parametrizations.weight") else name
        parts = name.split(".")
        if parts[0] == "blocks":
            link = f"/block{int(parts[1]) + off}/" + "/".join(parts[2:])
            out[name] = (link, parts[-1] in ("b1", "b2"))
        elif role == "G":
            last = {"dense": "/l1", "bn": f"/b{nb + 2}", "out": f"/c{nb + 2}" if image_size == 32 else f"/l{nb + 2}"}
            out[name] = (last[name], name == "bn")
        else:
            out[name] = ({"out": f"/l{nb + 1}", "embed": "/l_y"}[name], False)
    return out


def sngan_cond_section(a, tmp: Path, dtype: str = "float32") -> list[C.Check]:
    """The class-conditional SN-GAN pieces vs sngan_projection: categorical conditional BN, the
    conditional ResNet G (32, 64, 128 px), the projection D (32, 64, 128 px) and the concat D (128 px)
    with the hinge loss; weights, z, images, classes and converged SN vectors identical on both sides."""
    from torch.nn.utils import parametrize

    from ganworks import losses
    from ganworks.models import build_model
    from ganworks.nn.conditional_batch_norm import CategoricalConditionalBatchNorm2d

    H.DTYPE = np.dtype(dtype).type
    wide = dtype == "float64"
    tdt = torch.float64 if wide else torch.float32
    sec = "sngan-cond" + ("-float64" if wide else "")
    tag = " [float64]" if wide else ""
    torch.manual_seed(0)
    rs = np.random.RandomState(12)
    inp, ours = {"dtype": dtype, "n_classes": COND_CLASSES}, {}
    n, K = 8, COND_CLASSES

    # ---- categorical conditional BN on its own ------------------------------------------------------
    Cc = 16
    cbn = CategoricalConditionalBatchNorm2d(Cc, K).to(tdt).train()
    inp["cbn_gammas"] = _f32(1 + 0.3 * rs.randn(K, Cc))
    inp["cbn_betas"] = _f32(0.3 * rs.randn(K, Cc))
    inp["cbn_x"] = _f32(0.5 + 2 * rs.randn(n, Cc, 6, 6))
    inp["cbn_y"] = rs.randint(0, K, n).astype(np.int32)
    inp["cbn_r"] = _f32(rs.randn(n, Cc, 6, 6))  # loss = Σ out · r
    inp["cbn_w"] = _f32(rs.dirichlet(np.ones(K), n))  # class weights (interpolation)
    inp["cbn_rmean"] = _f32(0.3 * rs.randn(Cc))  # running statistics for eval mode
    inp["cbn_rvar"] = _f32(rs.uniform(0.5, 2.0, Cc))
    with torch.no_grad():
        cbn.gammas.weight.copy_(torch.from_numpy(inp["cbn_gammas"]))
        cbn.betas.weight.copy_(torch.from_numpy(inp["cbn_betas"]))
    x = torch.from_numpy(inp["cbn_x"]).requires_grad_(True)
    y = torch.from_numpy(inp["cbn_y"]).long()
    out = cbn(x, y)
    gx, gg, gb = torch.autograd.grad(
        (out * torch.from_numpy(inp["cbn_r"])).sum(), [x, cbn.gammas.weight, cbn.betas.weight]
    )
    ours.update(
        {
            "cbn_out": npy(out),
            "cbn_grad_x": npy(gx),
            "cbn_grad_gammas": npy(gg),
            "cbn_grad_betas": npy(gb),
            "cbn_avg_mean": npy(cbn.bn.running_mean),
            "cbn_avg_var": npy(cbn.bn.running_var),
        }
    )
    with torch.no_grad():
        ours["cbn_out_weights"] = npy(cbn(x, torch.from_numpy(inp["cbn_w"])))
        cbn.bn.running_mean.copy_(torch.from_numpy(inp["cbn_rmean"]))
        cbn.bn.running_var.copy_(torch.from_numpy(inp["cbn_rvar"]))
        cbn.eval()
        ours["cbn_out_eval"] = npy(cbn(x, y))

    # ---- conditional G and projection / concat D, hinge loss ---------------------------------------
    results_models = {}
    for prefix, (size, gw, dw, cond, _, _) in COND_PAIRS.items():
        # built and initialised in float32 in both runs (the per-class γ, β below included), then cast
        G = build_model(name="sngan-resnet-g", image_size=size, width=gw, num_classes=K).train()
        D = (
            build_model(name="sngan-resnet-d", image_size=size, width=dw, num_classes=K, conditioning=cond)
            .train()
            .to(tdt)
        )
        # non-trivial per-class γ, β (they start at 1 and 0 for every class)
        with torch.no_grad():
            for m in G.modules():
                if isinstance(m, CategoricalConditionalBatchNorm2d):
                    m.gammas.weight.add_(0.2 * torch.randn_like(m.gammas.weight))
                    m.betas.weight.add_(0.2 * torch.randn_like(m.betas.weight))
        G.to(tdt)
        gmap, dmap = _cond_links(G, "G", size), _cond_links(D, "D", size)
        inp[f"{prefix}_ch_g"] = G.blocks[-1].c2.out_channels  # Chainer ch: G's last block width
        inp[f"{prefix}_ch_d"] = D.blocks[0].c1.out_channels  # Chainer ch: D's first block width
        with torch.no_grad():  # converged singular vectors (exact SVD) for every SN layer, both sides
            for mname, m in _sn_modules(D).items():
                p = m.parametrizations.weight
                Wm = p.original.detach().double().reshape(p.original.shape[0], -1).numpy()
                U, S, Vt = np.linalg.svd(Wm, full_matrices=False)
                p[0]._u.copy_(torch.from_numpy(U[:, 0]))
                p[0]._v.copy_(torch.from_numpy(Vt[0]))
                inp[f"{prefix}D{dmap[mname][0]}/u"] = U[:, 0][None].astype(H.DTYPE)
        names_g, names_d = _chainer_names(G, gmap), _chainer_names(D, dmap)
        for model, names, role in ((G, names_g, "G"), (D, names_d, "D")):
            for pname, p in model.named_parameters():
                inp[f"{prefix}{role}{names[pname]}"] = npy(p)
        inp[prefix + "z"] = _f32(rs.randn(n, 128))
        inp[prefix + "x_real"] = _f32(rs.uniform(-1, 1, (n, 3, size, size)))
        inp[prefix + "y_real"] = rs.randint(0, K, n).astype(np.int32)
        inp[prefix + "y_fake"] = rs.randint(0, K, n).astype(np.int32)
        zt, xt = torch.from_numpy(inp[prefix + "z"]), torch.from_numpy(inp[prefix + "x_real"])
        yr, yf = (torch.from_numpy(inp[prefix + k]).long() for k in ("y_real", "y_fake"))
        o = {}
        with parametrize.cached():
            with torch.no_grad():
                fake = G(zt, yf)
            dr, df = D(xt, yr), D(fake, yf)
            L = losses.d_loss_hinge(dr, df)
            dparams = dict(D.named_parameters())
            gr = torch.autograd.grad(L, list(dparams.values()))
        o.update({"g_out": npy(fake), "d_real": npy(dr).reshape(-1), "d_fake": npy(df).reshape(-1), "loss_d": npy(L)})
        o.update({f"D_grad{names_d[k]}": npy(g) for k, g in zip(dparams, gr)})
        with parametrize.cached():
            L = losses.g_loss_hinge(D(G(zt, yf), yf))
            gparams = dict(G.named_parameters())
            gr = torch.autograd.grad(L, list(gparams.values()))
        o["loss_g"] = npy(L)
        o.update({f"G_grad{names_g[k]}": npy(g) for k, g in zip(gparams, gr)})
        results_models[prefix] = o

    LAST_OURS["sngan-cond-" + dtype] = {"cbn": ours, **results_models}
    ref = run_reference(
        a.chainer_python,
        "ref_sngan_cond.py",
        ["--sngan-projection", a.sngan_projection],
        inp,
        {},
        tmp,
        "sngan-cond" + ("64" if wide else ""),
    )
    checks = []

    def ck(component, *args, **kw):
        checks.append(C.check(component + tag, *args, section=sec, **kw))

    snp = "sngan_projection"
    cbn_ref = (
        f"{snp} source/links/categorical_conditional_batch_normalization.py: CategoricalConditionalBatchNormalization"
    )
    cbn_ours = "nn.conditional_batch_norm.CategoricalConditionalBatchNorm2d"
    ck(
        "Categorical conditional BN: forward, training mode (batch statistics, per-class γ, β)",
        cbn_ref,
        cbn_ours,
        {"out": (ours["cbn_out"], ref["cbn_out"])},
    )
    ck(
        "Categorical conditional BN: gradients w.r.t. input, γ table and β table",
        cbn_ref,
        "autograd",
        {k: (ours[f"cbn_grad_{k}"], ref[f"cbn_grad_{k}"]) for k in ("x", "gammas", "betas")},
    )
    ck(
        "Categorical conditional BN: forward with class weights (class interpolation)",
        f"{cbn_ref} (c = all classes, weights=w)",
        cbn_ours + " (y = class weights)",
        {"out": (ours["cbn_out_weights"], ref["cbn_out_weights"])},
    )
    ck(
        "Categorical conditional BN: forward, eval mode (the same running statistics)",
        cbn_ref,
        cbn_ours,
        {"out": (ours["cbn_out_eval"], ref["cbn_out_eval"])},
    )
    ck(
        "Categorical conditional BN: running mean after one training step",
        cbn_ref,
        cbn_ours,
        {"avg_mean": (ours["cbn_avg_mean"], ref["cbn_avg_mean"])},
    )
    ck(
        "Categorical conditional BN: running variance after one training step",
        f"{snp} source/links/conditional_batch_normalization.py: ConditionalBatchNormalization.avg_var",
        cbn_ours,
        {"avg_var": (ours["cbn_avg_var"], ref["cbn_avg_var"])},
        deviation=True,
        note="the reference's conditional BN starts its running variance at 0 (numpy.zeros), ganworks (torch "
        "BatchNorm2d, as Chainer's own L.BatchNormalization) at 1: after t training steps the two differ by "
        "0.9^t exactly (0.9 here, 0.005 after 50 steps, < 1e-5 after 110); the running statistics are used "
        "only in eval mode (sample generation), so only samples drawn in the first ~100 iterations differ",
    )
    for prefix, o in results_models.items():
        size, _, _, cond, gfile, dref = COND_PAIRS[prefix]
        r = {k[len(prefix) :]: v for k, v in ref.items() if k.startswith(prefix)}
        title = f"cond. ResNet {size}x{size}, {cond} D, {K} classes"
        gref = f"{snp} {gfile}: ResNetGenerator(n_classes)"
        dref = f"{snp} {dref}"
        lref = f"{snp} updater.py: loss_hinge_dis / loss_hinge_gen"
        ck(
            f"SN-GAN {title}: G(z, y) forward (conditional BN, training mode)",
            gref,
            "models.sngan_resnet (num_classes)",
            {"g_out": (o["g_out"], r["g_out"])},
        )
        eps_note = (
            (
                "float64: ~1e-11 rather than ~1e-16 because the power iteration's norm is ‖x‖ + 1e-12 in the "
                "reference and max(‖x‖, 1e-12) in ganworks, a relative 1e-12/‖x‖ per normalisation (below float32 "
                "rounding); with the reference script's _l2normalize given max(‖x‖, 1e-12) instead, these float64 "
                "rows measured 1e-16 to 2e-14 (2026-11-24)"
            )
            if wide
            else ""
        )
        ck(
            f"SN-GAN {title}: D(x, y) forward on real and generated batches",
            dref,
            f"models.sngan_resnet (conditioning={cond})",
            {k: (o[k], r[k]) for k in ("d_real", "d_fake")},
            note=eps_note,
        )
        ck(
            f"SN-GAN {title}: D loss and G loss (hinge)",
            lref,
            "losses.d_loss_hinge / g_loss_hinge",
            {k: (o[k], r[k]) for k in ("loss_d", "loss_g")},
        )
        ck(
            f"SN-GAN {title}: D gradients w.r.t. every parameter (through σ, incl. the SN class embedding)",
            f"{dref} + {lref.split(':')[0]}",
            "autograd",
            C.pair_up(
                {k: v for k, v in o.items() if k.startswith("D_grad")},
                {k: v for k, v in r.items() if k.startswith("D_grad")},
            ),
            atol_of_check=True,
            note=eps_note,
        )
        ck(
            f"SN-GAN {title}: G gradients w.r.t. every parameter (incl. per-class γ, β)",
            f"{gref} + D + loss",
            "autograd",
            C.pair_up(
                {k: v for k, v in o.items() if k.startswith("G_grad")},
                {k: v for k, v in r.items() if k.startswith("G_grad")},
            ),
            atol_of_check=True,
            note="G's conv biases feed a BN, so their exact gradient is 0 and both sides return rounding noise: "
            "such arrays are judged against the check's largest gradient (see compare.py)",
        )
    return checks
