"""SN-GAN (Chainer), sngan_projection and chainer-gan-lib: section ``sngan`` (run.py runs it in float32
and, on the same instance upcast, in float64).

Moved out of run.py (issue 23, item 5); the shared pieces (the exchange of arrays with the reference
scripts, the recorded draws, the run's precision ``H.DTYPE``) are in harness.py.

The float64 run is the float32 instance upcast (issue 23, "tolerances from measurement"): every NumPy
draw is made in float32 first (``_f32``), every torch module is built and initialised in float32 (SN
vectors and the conditional tables included) and only then cast with ``.to(tdt)``. The converged SN
vectors of the model rows are not draws but a function of the (float32) weights, the exact SVD,
computed in float64 in both runs and held in the run's precision.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import compare as C
import harness as H
import numpy as np
import torch
from harness import LAST_OURS, npy, run_reference


def _chainer_names(model: torch.nn.Module, links: dict[str, tuple[str, bool]]) -> dict[str, str]:
    """our parameter name -> Chainer parameter name, given {our module path: (Chainer link path, is BN)}."""
    out = {}
    for name, _ in model.named_parameters():
        mod, _, leaf = name.rpartition(".")
        if mod.endswith("parametrizations.weight"):
            mod, leaf = mod[: -len(".parametrizations.weight")], "weight"
        link, is_bn = links[mod]
        out[name] = link + "/" + ({"weight": "gamma", "bias": "beta"} if is_bn else {"weight": "W", "bias": "b"})[leaf]
    return out


def _f32(x) -> np.ndarray:
    """A value of the float32 instance in the run's precision ``H.DTYPE``: rounded to float32 first, so
    the float64 run sees the float32 run's values upcast."""
    return np.asarray(x).astype(np.float32).astype(H.DTYPE)


def _sn_eps_factor(W: np.ndarray, eps: float = 1e-12) -> float:
    """log(σ_ref / σ_ours) of one SN layer after one power step from its exact singular vectors: the
    reference normalises by ‖x‖ + eps (ref_sngan.py's NumPy ``_l2normalize``, v then u), ganworks by
    max(‖x‖, eps) = ‖x‖ (u then v). For a positively homogeneous D (no BN, no shortcut: the standard
    CNN) the sum over layers is log(ours / ref) of D's output and gradients."""
    U, _, Vt = np.linalg.svd(W, full_matrices=False)
    v = U[:, 0] @ W
    v = v / (np.sqrt(v @ v) + eps)
    u = v @ W.T
    u = u / (np.sqrt(u @ u) + eps)
    u2 = W @ Vt[0]
    u2 /= np.linalg.norm(u2)
    v2 = W.T @ u2
    v2 /= np.linalg.norm(v2)
    return float(np.log((u @ W @ v) / (u2 @ W @ v2)))


def _sn_modules(model):
    from torch.nn.utils import parametrize

    return {
        n: m
        for n, m in model.named_modules()
        if parametrize.is_parametrized(m, "weight") and hasattr(m.parametrizations.weight[0], "_u")
    }


def _float32_conditioning(G, D, z, x, d_loss) -> tuple[dict, dict, str]:
    """The D step's gradients in float32 and in float64 on the same instance (copies of G and D), and a
    note with two measured causes of float32 error: pre-activations of D's layers whose sign differs
    between the two precisions (a leaky-ReLU unit on the other slope), and the cancellation in each
    bias gradient, a sum over batch and positions of δ = ∂L/∂(layer output): its float32 error is
    about ε₃₂·Σ|δ|, so relative to the array's largest entry the expected error is
    ε₃₂·max_c Σ|δ_c| / max_c |Σ δ_c|."""
    from torch.nn.utils import parametrize

    runs = {}
    for dt in (torch.float32, torch.float64):
        Gc, Dc = copy.deepcopy(G).to(dt), copy.deepcopy(D).to(dt)
        pre, outs = {}, {}
        layers = {n: m for n, m in Dc.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))}

        def hook(name):
            def f(mod, inp, out):
                out.retain_grad()  # δ w.r.t. the pre-activation: the layer's (in-place) activation gets a copy
                outs[name] = out
                pre[name] = out.detach().clone()
                return out.clone()

            return f

        handles = [m.register_forward_hook(hook(n)) for n, m in layers.items()]
        with parametrize.cached():
            with torch.no_grad():
                fake = Gc(z.to(dt))
            real_out = {}
            dr = Dc(x.to(dt))
            real_out.update(pre), pre.clear()
            real_d = dict(outs)
            df = Dc(fake)
            fake_pre, fake_d = dict(pre), dict(outs)
            L = d_loss(dr, df)
            params = dict(Dc.named_parameters())
            L.backward()
        for h in handles:
            h.remove()
        grads = {k: p.grad.detach().double().numpy() for k, p in params.items()}
        deltas = {n: (real_d[n].grad.double(), fake_d[n].grad.double()) for n in layers}
        runs[dt] = (real_out, fake_pre, grads, deltas)
    (r32, f32, g32, _), (r64, f64, g64, d64) = runs[torch.float32], runs[torch.float64]
    flips, total = 0, 0
    per_layer = []
    for n in r64:
        k = int(((r32[n].double() > 0) != (r64[n] > 0)).sum() + ((f32[n].double() > 0) != (f64[n] > 0)).sum())
        flips += k
        total += r64[n].numel() + f64[n].numel()
        if k:
            per_layer.append(f"{n}: {k}")
    eps = float(np.finfo(np.float32).eps)
    worst = []
    for n, (dr_, df_) in d64.items():
        if n + ".bias" not in g64:
            continue
        dims = [0] + list(range(2, dr_.dim()))
        s = dr_.sum(dims) + df_.sum(dims)
        a = dr_.abs().sum(dims) + df_.abs().sum(dims)
        exp_rel = eps * float(a.max()) / max(float(s.abs().max()), 1e-300)
        meas = float(np.abs(g32[n + ".bias"] - g64[n + ".bias"]).max() / np.abs(g64[n + ".bias"]).max())
        worst.append((exp_rel, n, meas))
    worst.sort(reverse=True)
    note = (
        f"measured on this instance: {flips} of {total} pre-activations of D's layers change sign between "
        f"float32 and float64 ({', '.join(per_layer) or 'none'}); bias-gradient cancellation: expected float32 "
        f"error ε₃₂·max Σ|δ| / max |Σδ| vs measured, per layer (worst 3): "
        + "; ".join(f"{n}: {e:.2g} vs {m:.2g}" for e, n, m in worst[:3])
    )
    names = {k: k for k in g64}
    return {names[k]: g32[k] for k in g32}, {names[k]: g64[k] for k in g64}, note


def sngan_section(a, tmp: Path, dtype: str = "float32") -> list[C.Check]:
    from torch.nn.utils import parametrize

    from ganworks import losses
    from ganworks.models import build_model
    from ganworks.nn.spectral_norm import spectral_norm, spectral_norms
    from ganworks.train.optim import ADAM_SETTINGS, build_optimizer

    H.DTYPE = np.dtype(dtype).type
    wide = dtype == "float64"
    tdt = torch.float64 if wide else torch.float32
    sec = "sngan" + ("-float64" if wide else "")
    tag = " [float64]" if wide else ""
    torch.manual_seed(0)
    rs = np.random.RandomState(0)
    inp, ours = {"dtype": dtype}, {}
    n = 8

    # ---- one power iteration from the same u: linear, conv, embedding ----------------------------
    layers = {
        "linear": torch.nn.Linear(64, 32),
        "conv": torch.nn.Conv2d(16, 24, 3, padding=1),
        "embed": torch.nn.Embedding(10, 48),
    }
    for kind, layer in layers.items():
        spectral_norm(layer)  # its random u, v drawn in float32 (then overwritten) in both runs
        layer.to(tdt)
        p = layer.parametrizations.weight
        W = torch.from_numpy(_f32(rs.randn(*p.original.shape)))
        u0 = torch.from_numpy(_f32(rs.randn(W.shape[0])))
        with torch.no_grad():
            p.original.copy_(W)
            # Chainer's step is v ← Wᵀu/‖·‖ then u ← Wv/‖·‖; PyTorch's is u ← Wv/‖·‖ then v ← Wᵀu/‖·‖.
            # Giving PyTorch v = Wᵀu0/‖·‖ (Chainer's first half-step) makes both produce the same u.
            v0 = W.reshape(W.shape[0], -1).t() @ u0
            p[0]._v.copy_(v0 / (v0.norm() + 1e-12))
            p[0]._u.copy_(u0)
        layer.train()
        with parametrize.cached():
            wbar = layer.weight.detach().clone()
        inp[f"pi_{kind}_W"], inp[f"pi_{kind}_u"] = npy(W), npy(u0)[None]
        ours[f"pi_{kind}_u"] = npy(p[0]._u)
        ours[f"pi_{kind}_sigma"] = H.DTYPE(spectral_norms(layer)["weight"])
        ours[f"pi_{kind}_Wbar"] = npy(wbar)

    # ---- models: ResNet G/D at 32x32 (sngan_projection), standard CNN G/D (chainer-gan-lib) -------
    res_g = {"dense": ("/l1", False), "bn": ("/b5", True), "out": ("/c5", False)}
    for i in range(3):
        res_g.update({f"blocks.{i}.{c}": (f"/block{i + 2}/{c}", False) for c in ("c1", "c2", "c_sc")})
        res_g.update({f"blocks.{i}.{b}": (f"/block{i + 2}/{b}", True) for b in ("b1", "b2")})
    res_d = {f"blocks.{i}.{c}": (f"/block{i + 1}/{c}", False) for i in range(4) for c in ("c1", "c2", "c_sc")}
    res_d["out"] = ("/l5", False)
    cnn_g = {
        "dense": ("/l0", False),
        "dense_post.0": ("/bn0", True),
        "body.0": ("/dc1", False),
        "body.1": ("/bn1", True),
        "body.3": ("/dc2", False),
        "body.4": ("/bn2", True),
        "body.6": ("/dc3", False),
        "body.7": ("/bn3", True),
        "out": ("/dc4", False),
    }
    cnn_d = {
        f"body.{2 * j}": (f"/{c}", False)
        for j, c in enumerate(["c0_0", "c0_1", "c1_0", "c1_1", "c2_0", "c2_1", "c3_0"])
    }
    cnn_d["out"] = ("/l4", False)
    # G's last layer: our 3x3 Conv2d vs the code's stride-1 Deconvolution2D (transposed, flipped kernel)
    flip = {"/dc4/W": lambda w: np.ascontiguousarray(w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])}

    pairs_spec = [
        ("resh", "sngan-resnet-g", {}, "sngan-resnet-d", {}, res_g, res_d, "hinge", "normal"),
        ("resn", "sngan-resnet-g", {}, "sngan-resnet-d", {}, res_g, res_d, "ns", "normal"),
        (
            "cnn",
            "sngan-cnn-g",
            {"layout": "chainer"},
            "sngan-cnn-d",
            {"layout": "chainer"},
            cnn_g,
            cnn_d,
            "ns",
            "uniform",
        ),
    ]
    results_models, conditioning, eps_pred = {}, {}, {}
    for prefix, gname, gkw, dname, dkw, gmap, dmap, loss, zdist in pairs_spec:
        # built and initialised in float32 in both runs, then cast: the float64 run's weights are the float32 ones
        G, D = build_model(name=gname, **gkw).train().to(tdt), build_model(name=dname, **dkw).train().to(tdt)
        # converged singular vectors (exact SVD) for every SN layer, on both sides: one power step then
        # leaves sigma at the largest singular value, so the comparison isolates the architecture. The
        # SVD is a function of the float32 weights (computed in float64 in both runs), held in the run's
        # precision: rounding it to float32 in the float64 run too would leave u 1e-8 from converged,
        # which the two half-step orders (the power-iteration rows) carry differently.
        with torch.no_grad():
            for mname, m in _sn_modules(D).items():
                p = m.parametrizations.weight
                Wm = p.original.detach().double().reshape(p.original.shape[0], -1).numpy()
                U, S, Vt = np.linalg.svd(Wm, full_matrices=False)
                p[0]._u.copy_(torch.from_numpy(U[:, 0]))
                p[0]._v.copy_(torch.from_numpy(Vt[0]))
                inp[f"{prefix}D{dmap[mname][0]}/u"] = U[:, 0][None].astype(H.DTYPE)
        eps_pred[prefix] = math.expm1(
            sum(
                _sn_eps_factor(m.parametrizations.weight.original.detach().double().flatten(1).numpy())
                for m in _sn_modules(D).values()
            )
        )
        names_g, names_d = _chainer_names(G, gmap), _chainer_names(D, dmap)
        for model, names, role in ((G, names_g, "G"), (D, names_d, "D")):
            for pname, p in model.named_parameters():
                cname = names[pname]
                inp[f"{prefix}{role}{cname}"] = flip.get(cname, lambda w: w)(npy(p))
        z = rs.randn(n, 128) if zdist == "normal" else rs.uniform(-1, 1, (n, 128))
        x_real = rs.uniform(-1, 1, (n, 3, 32, 32))
        inp[prefix + "z"], inp[prefix + "x_real"] = _f32(z), _f32(x_real)
        zt, xt = torch.from_numpy(inp[prefix + "z"]), torch.from_numpy(inp[prefix + "x_real"])
        if not wide:  # the float32 error's cause, measured on this instance before anything steps u
            conditioning[prefix] = _float32_conditioning(
                G, D, zt, xt, losses.d_loss_hinge if loss == "hinge" else losses.d_loss_standard
            )
        d_loss = losses.d_loss_hinge if loss == "hinge" else losses.d_loss_standard
        g_loss = losses.g_loss_hinge if loss == "hinge" else losses.g_loss_nonsaturating
        o = {}
        with parametrize.cached():
            with torch.no_grad():
                fake = G(zt)
            dr, df = D(xt), D(fake)
            L = d_loss(dr, df)
            dparams = dict(D.named_parameters())
            gr = torch.autograd.grad(L, list(dparams.values()))
        o.update({"g_out": npy(fake), "d_real": npy(dr).reshape(-1), "d_fake": npy(df).reshape(-1), "loss_d": npy(L)})
        o.update({f"D_grad{names_d[k]}": flip.get(names_d[k], lambda w: w)(npy(g)) for k, g in zip(dparams, gr)})
        with parametrize.cached():
            L = g_loss(D(G(zt)))
            gparams = dict(G.named_parameters())
            gr = torch.autograd.grad(L, list(gparams.values()))
        o["loss_g"] = npy(L)
        o.update({f"G_grad{names_g[k]}": flip.get(names_g[k], lambda w: w)(npy(g)) for k, g in zip(gparams, gr)})
        results_models[prefix] = o

    # ---- Adam, settings A-F: torch.optim.Adam as ganworks builds it vs chainer.optimizers.Adam ------
    p0 = _f32(rs.randn(40, 30))
    normal32 = rs.randn(3, 40, 30).astype(np.float32)
    normal_grads = _f32(normal32)
    tiny_grads = _f32(normal32 * np.float32(1e-8))
    inp["adam_p0"] = p0
    adam_ours = {}
    for name, (lr, b1, b2, _) in list(ADAM_SETTINGS.items()) + [("C_tiny", ADAM_SETTINGS["C"])]:
        grads = tiny_grads if name.endswith("tiny") else normal_grads
        inp.update({f"adam_{name}_lr": lr, f"adam_{name}_b1": b1, f"adam_{name}_b2": b2, f"adam_{name}_grads": grads})
        p = torch.nn.Parameter(torch.from_numpy(p0.copy()))
        opt = build_optimizer(
            [p], {"name": "adam", "beta1": b1, "beta2": b2, "eps": 1e-8, "eps_inside_sqrt": False}, lr
        )
        for t, g in enumerate(grads):
            p.grad = torch.from_numpy(g.copy())
            opt.step()
            adam_ours[f"adam_{name}_p{t}"] = npy(p)
        # the same steps with Chainer's eps placement given to torch: Chainer's step is
        # α√(1−β2^t)/(1−β1^t) · m/(√v + eps), torch's α/(1−β1^t) · m/(√v/√(1−β2^t) + eps'), equal when
        # eps' = eps/√(1−β2^t); what then remains between the two is the rest of the update
        p = torch.nn.Parameter(torch.from_numpy(p0.copy()))
        opt = build_optimizer(
            [p], {"name": "adam", "beta1": b1, "beta2": b2, "eps": 1e-8, "eps_inside_sqrt": False}, lr
        )
        for t, g in enumerate(grads):
            opt.param_groups[0]["eps"] = 1e-8 / math.sqrt(1.0 - b2 ** (t + 1))
            p.grad = torch.from_numpy(g.copy())
            opt.step()
            adam_ours[f"adam_{name}_matched_p{t}"] = npy(p)

    LAST_OURS["sngan-" + dtype] = results_models  # kept for ad hoc inspection (e.g. float32 vs float64)
    ref = run_reference(
        a.chainer_python,
        "ref_sngan.py",
        ["--sngan-projection", a.sngan_projection, "--chainer-gan-lib", a.chainer_gan_lib],
        inp,
        {},
        tmp,
        "sngan-" + dtype,
    )

    checks = []

    def ck(component, *args, **kw):
        checks.append(C.check(component + tag, *args, section=sec, **kw))

    snp, cgl = "sngan_projection", "chainer-gan-lib"
    for kind, ref_fn in (
        ("linear", "source/links/sn_linear.py: SNLinear.W_bar"),
        ("conv", "source/links/sn_convolution_2d.py: SNConvolution2D.W_bar"),
        ("embed", "source/links/sn_embed_id.py: SNEmbedID.W_bar"),
    ):
        ck(
            f"SN one power iteration, {kind}: updated u",
            f"{snp} {ref_fn}",
            "nn.spectral_norm",
            {"u": (ours[f"pi_{kind}_u"], ref[f"pi_{kind}_u"])},
        )
        ck(
            f"SN one power iteration, {kind}: σ and W/σ",
            f"{snp} {ref_fn} (max_sv.max_singular_value)",
            "nn.spectral_norm",
            {
                "sigma": (ours[f"pi_{kind}_sigma"], ref[f"pi_{kind}_sigma"]),
                "W_bar": (ours[f"pi_{kind}_Wbar"], ref[f"pi_{kind}_Wbar"]),
            },
            deviation=True,
            note="by design (nn/spectral_norm.py docstring): PyTorch's half-steps run u then v, Chainer's v then u, "
            "so from the same u one step gives σ = ‖Wᵀu₁‖ vs ‖Wv₁‖ (both lower bounds of σ(W) that converge "
            "at the same rate); equal once u has converged (see the model rows)",
        )
    labels = {
        "resh": (
            "ResNet 32x32, hinge loss",
            f"{snp} gen_models/resnet_32.py: ResNetGenerator",
            f"{snp} dis_models/snresnet_32.py: SNResNetProjectionDiscriminator",
            "models.sngan_resnet",
            f"{snp} updater.py: loss_hinge_dis / loss_hinge_gen",
            "losses.d_loss_hinge / g_loss_hinge",
        ),
        "resn": (
            "ResNet 32x32, non-saturating loss",
            f"{snp} gen_models/resnet_32.py: ResNetGenerator",
            f"{snp} dis_models/snresnet_32.py: SNResNetProjectionDiscriminator",
            "models.sngan_resnet",
            f"{snp} updater.py: loss_dcgan_dis / loss_dcgan_gen",
            "losses.d_loss_standard / g_loss_nonsaturating",
        ),
        "cnn": (
            "standard CNN (layout=chainer), non-saturating loss",
            f"{cgl} common/net.py: DCGANGenerator",
            f"{cgl} common/net.py: SNDCGANDiscriminator",
            "models.sngan_cnn",
            f"{snp} updater.py: loss_dcgan_dis / loss_dcgan_gen",
            "losses.d_loss_standard / g_loss_nonsaturating",
        ),
    }
    for prefix, o in results_models.items():
        title, gref, dref, ourmod, lref, lours = labels[prefix]
        r = {k[len(prefix) :]: v for k, v in ref.items() if k.startswith(prefix)}
        eps_note = ""
        if wide:  # the float64 D rows' measured cause: the power iteration's epsilon (see _sn_eps_factor)
            q = np.concatenate([o[k] / r[k] - 1 for k in ("d_real", "d_fake")])
            eps_note = (
                f"float64: the power iteration's norm is ‖x‖ + 1e-12 in the reference and max(‖x‖, 1e-12) in "
                f"ganworks; from the weights, the product over D's SN layers of σ_ref/σ_ours − 1 is "
                f"{eps_pred[prefix]:.4g}, which is ours/ref − 1 of D's output for a positively homogeneous D "
                f"(the standard CNN; not the ResNet, whose shortcuts add paths through different layers); "
                f"measured ours/ref − 1 of D's outputs in this run: {q.min():.4g} to {q.max():.4g}"
            )
        if prefix in ("resh", "cnn"):
            ck(
                f"SN-GAN {title.split(',')[0]}: G forward (BN training mode)",
                gref,
                ourmod,
                {"g_out": (o["g_out"], r["g_out"])},
            )
            ck(
                f"SN-GAN {title.split(',')[0]}: D forward on real and generated batches",
                dref,
                ourmod,
                {k: (o[k], r[k]) for k in ("d_real", "d_fake")},
                note=eps_note,
            )
        ck(f"SN-GAN {title}: D loss and G loss", lref, lours, {k: (o[k], r[k]) for k in ("loss_d", "loss_g")})
        ck(
            f"SN-GAN {title}: D gradients w.r.t. every parameter (through σ)",
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
            f"SN-GAN {title}: G gradients w.r.t. every parameter",
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
        if prefix in conditioning:
            g32, g64, note = conditioning[prefix]
            ck(
                f"SN-GAN {title}: D gradients, ganworks float32 vs ganworks float64 (same instance): the float32 "
                f"error's cause",
                f"{dref} (not run: a measurement of ganworks alone)",
                "autograd",
                {k: (g32[k], g64[k]) for k in g64},
                atol_of_check=True,
                info=True,
                note=note,
            )
    chainer_adam = "chainer.optimizers.Adam (Chainer 7.8.1)"
    eps_design = (
        "by design of the frameworks: Chainer adds eps to √v, PyTorch to √v̂ = √v/√(1−β2^t); in Chainer's "
        "terms torch's denominator is √v + eps·√(1−β2^t), a relative difference of about "
        "eps·(1 − √(1−β2^t))/√v in each element's step, largest where √v is smallest"
    )
    for name in list(ADAM_SETTINGS) + ["C_tiny"]:
        lr, b1, b2, _ = ADAM_SETTINGS[name[0]]
        title = (
            "Adam setting C, 3 steps on gradients of size 1e-8"
            if name == "C_tiny"
            else f"Adam setting {name} (lr {lr:g}, β1 {b1}, β2 {b2}), 3 steps"
        )
        built = {f"step{t + 1}": (adam_ours[f"adam_{name}_p{t}"], ref[f"adam_{name}_p{t}"]) for t in range(3)}
        matched = {f"step{t + 1}": (adam_ours[f"adam_{name}_matched_p{t}"], ref[f"adam_{name}_p{t}"]) for t in range(3)}
        rel_built, rel_matched = C.check("", "", "", built).max_rel, C.check("", "", "", matched).max_rel
        ck(
            title,
            chainer_adam,
            "train.optim.build_optimizer (torch.optim.Adam)",
            built,
            deviation=True,
            note=f"{eps_design}: measured in this run, max rel {rel_built:.3g} as ganworks builds Adam and "
            f"{rel_matched:.3g} with eps/√(1−β2^t) given to torch (Chainer's placement; the next row, judged "
            "as any other)"
            + (
                "; with gradients of 1e-8, √v is of order eps and the difference of order 1e-4"
                if name == "C_tiny"
                else ""
            ),
        )
        ck(
            f"{title}, eps placed as Chainer's (harness)",
            chainer_adam,
            "train.optim.build_optimizer (torch.optim.Adam), eps set to eps/√(1−β2^t) before step t",
            matched,
            note="the previous row's one by-design difference removed by the harness: the rest of the update "
            "(moments, bias corrections, the step) compared",
        )
    return checks
