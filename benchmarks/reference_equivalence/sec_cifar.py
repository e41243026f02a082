"""Improved-GAN CIFAR-10 (Theano + Lasagne): feature-matching models, minibatch discrimination: section ``cifar``.

Moved out of run.py unchanged (issue 23, item 5); the shared pieces (the exchange of arrays with the
reference scripts, the recorded draws, the run's precision ``H.DTYPE``) are in harness.py.
"""

from __future__ import annotations

from pathlib import Path

import compare as C
import harness as H
import numpy as np
import torch
from harness import Draws, npy, run_reference


def cifar_section(a, tmp: Path) -> list[C.Check]:
    from torch.nn.utils import parametrize

    from ganworks.models import build_model
    from ganworks.nn.minibatch_discrimination import MinibatchDiscrimination
    from ganworks.nn.weight_norm import data_dependent_init
    from ganworks.objectives import OBJECTIVES

    H.DTYPE = np.float32
    sec = "improved-gan-cifar"
    ref_file = "mnist_svhn_cifar10/train_cifar_feature_matching.py"
    torch.manual_seed(0)
    rs = np.random.RandomState(1)
    inp: dict = {"n": 8}
    n = inp["n"]

    # ---- minibatch discrimination on its own (nn.MinibatchLayer), incl. its data-dependent init ----
    md = MinibatchDiscrimination(24, num_kernels=10, dim_per_kernel=5)
    inp.update(
        md_theta=npy(md.theta),
        md_lws=npy(md.log_weight_scale),
        md_b=npy(md.bias),
        md_x_init=rs.randn(16, 24).astype(np.float32),
        md_x=rs.randn(n, 24).astype(np.float32),
        md_R=rs.randn(n, 34).astype(np.float32),
    )
    md_ours = {
        "md_init_out": npy(md.data_dependent_init_(torch.from_numpy(inp["md_x_init"]))),
        "md_init_lws": npy(md.log_weight_scale),
        "md_init_b": npy(md.bias),
    }
    x = torch.from_numpy(inp["md_x"]).requires_grad_(True)
    y = md(x)
    g = torch.autograd.grad((y * torch.from_numpy(inp["md_R"])).sum(), [md.theta, md.log_weight_scale, md.bias, x])
    md_ours.update(
        {
            "md_out": npy(y),
            "md_grad_theta": npy(g[0]),
            "md_grad_lws": npy(g[1]),
            "md_grad_b": npy(g[2]),
            "md_grad_x": npy(g[3]),
        }
    )

    # ---- the CIFAR-10 feature-matching G and D -----------------------------------------------
    G = build_model(name="improved-gan-cifar-g").train()
    D = build_model(name="improved-gan-cifar-d", variant="fm").train()
    draws = Draws()
    drop_keys = {id(m): f"drop{k}" for k, m in enumerate(mm for mm in D.modules() if isinstance(mm, torch.nn.Dropout))}
    orig_dropout = torch.nn.Dropout.forward

    def dropout_forward(self, x):
        if not self.training or self.p == 0:
            return x
        mask = draws.draw(drop_keys[id(self)], lambda: torch.bernoulli(torch.full_like(x, 1 - self.p)))
        return x / (1 - self.p) * mask  # Lasagne's order: rescale, then mask

    wn_convs = [m for m in D.body if isinstance(m, torch.nn.Conv2d)]
    ref_idx = [2, 3, 4, 6, 7, 8, 10, 11, 12]  # WeightNormLayers in the script's disc_layers
    EPS = 1e-6  # inside the reference WeightNormLayer's square root

    def ref_layout(G, D, eps_adjust: bool) -> dict:
        """ganworks' parameters in the reference's layout; with eps_adjust the reference's g is set so
        that its effective weight g·V/√(‖V‖² + 1e-6) equals ours g·V/‖V‖."""
        P = {}

        def wn(prefix, layer, to_ref, red):
            w = layer.parametrizations.weight
            V, gg = w.original1.detach().double(), w.original0.detach().double().reshape(-1)
            if eps_adjust:
                nv = V.square().sum(dim=red).sqrt()
                gg = gg * torch.sqrt(nv**2 + EPS) / nv
            P[prefix + "_W"] = to_ref(npy(V))
            P[prefix + "_g"], P[prefix + "_b"] = npy(gg), npy(layer.bias)

        for i, conv in zip(ref_idx, wn_convs):
            if conv.kernel_size == (1, 1):  # NINLayer: W (in, out)
                wn(f"d{i}", conv, lambda v: np.ascontiguousarray(v.reshape(v.shape[0], -1).T), (1, 2, 3))
            else:
                wn(f"d{i}", conv, lambda v: v, (1, 2, 3))
        wn("d14", D.out, lambda v: np.ascontiguousarray(v.T), (1,))
        flip = lambda v: np.ascontiguousarray(v[:, :, ::-1, ::-1])  # noqa: E731  Theano's transposed conv flips
        P["g1_W"], P["g1_b"] = np.ascontiguousarray(npy(G.dense.weight).T), npy(G.norm0.bias)
        P["g3_W"], P["g3_b"] = flip(npy(G.deconv1.weight)), npy(G.norm1.bias)
        P["g4_W"], P["g4_b"] = flip(npy(G.deconv2.weight)), npy(G.norm2.bias)
        wn("g5", G.out, flip, (0, 2, 3))
        return P

    pre = ref_layout(G, D, eps_adjust=False)
    pre.update({k: np.ones_like(v) for k, v in pre.items() if k.endswith("_g")})  # the reference starts at g = 1
    torch.nn.Dropout.forward = dropout_forward
    try:
        z_init = G.sample_z(n)
        data_dependent_init(G, z_init)
        x_init = torch.rand(16, 3, 32, 32) * 2 - 1
        data_dependent_init(D, x_init)
        init_masks = {k: v[0] for k, v in draws.record.items()}
        draws.record.clear()
        # effective per-unit scale g/‖V‖ after init (equal on both sides by construction of the init)
        post_plain = ref_layout(G, D, eps_adjust=False)
        post = ref_layout(G, D, eps_adjust=True)
        x_lab, x_unl = torch.rand(n, 3, 32, 32) * 2 - 1, torch.rand(n, 3, 32, 32) * 2 - 1
        z = G.sample_z(n)
        G.sample_z = lambda m, device=None: z
        with parametrize.cached():
            logits = D(x_lab)
            obj = OBJECTIVES["semi-supervised"](G, D, feature_matching="l1")
            outs = []
            h = D.register_forward_hook(lambda m, i, o: outs.append(o))
            loss, _ = obj.g_loss({"x_unl2": x_unl})
            h.remove()
            gparams = {
                "g1_W": G.dense.weight,
                "g1_b": G.norm0.bias,
                "g3_W": G.deconv1.weight,
                "g3_b": G.norm1.bias,
                "g4_W": G.deconv2.weight,
                "g4_b": G.norm2.bias,
                "g5_W": G.out.parametrizations.weight.original1,
                "g5_g": G.out.parametrizations.weight.original0,
                "g5_b": G.out.bias,
            }
            gr = torch.autograd.grad(loss, list(gparams.values()))
        with torch.no_grad():
            g_out = G(z)
    finally:
        torch.nn.Dropout.forward = orig_dropout
    flip = lambda v: np.ascontiguousarray(v[:, :, ::-1, ::-1])  # noqa: E731
    conv_g = {
        "g1_W": lambda v: np.ascontiguousarray(v.T),
        "g3_W": flip,
        "g4_W": flip,
        "g5_W": flip,
        "g5_g": lambda v: v.reshape(-1),
    }
    ours_step = {
        "d_logits_lab": npy(logits),
        "g_out": npy(g_out),
        "feat_mean_unl": npy(outs[0][1].mean(0)),
        "feat_mean_gen": npy(outs[1][1].mean(0)),
        "loss_gen": npy(loss),
    }
    ours_gg = {f"grad_g_{k}": conv_g.get(k, lambda v: v)(npy(t)) for k, t in zip(gparams, gr)}
    # masks per dropout layer: init, then lab (D(x_lab)), unl, gen (the objective's two feature passes)
    n_drop = len(drop_keys)
    for k in range(n_drop):
        inp[f"mask_init_{k}"] = npy(init_masks[f"drop{k}"])
        rec = draws.record[f"drop{k}"]
        assert len(rec) == 3, len(rec)
        for ps, m in zip(("lab", "unl", "gen"), rec):
            inp[f"mask_{ps}_{k}"] = npy(m)
    inp.update({f"pre_{k}": v for k, v in pre.items()})
    inp.update({f"post_{k}": v for k, v in post.items()})
    inp.update(z_init=npy(z_init), x_init=npy(x_init), z=npy(z), x_lab=npy(x_lab), x_unl=npy(x_unl))

    compiledir = Path(a.theano_compiledir).expanduser()
    flags = f"device=cpu,floatX=float32,blas.ldflags=,base_compiledir={compiledir}"
    ref = run_reference(
        a.theano_python,
        "ref_improved_gan_cifar.py",
        ["--improved-gan", a.improved_gan, "--lasagne", a.lasagne],
        inp,
        {"THEANO_FLAGS": flags},
        tmp,
        "cifar",
    )

    checks = []

    def ck(*args, **kw):
        checks.append(C.check(*args, section=sec, **kw))

    ck(
        "Minibatch discrimination: data-dependent init (log scale, bias, output)",
        "nn.py: MinibatchLayer (init=True)",
        "nn.minibatch_discrimination.MinibatchDiscrimination.data_dependent_init_",
        {k: (md_ours["md_init_" + k], ref["md_init_" + k]) for k in ("out", "lws", "b")},
    )
    ck(
        "Minibatch discrimination: forward and gradients (θ, log scale, bias, input)",
        "nn.py: MinibatchLayer",
        "nn.minibatch_discrimination.MinibatchDiscrimination",
        {k: (md_ours["md_" + k], ref["md_" + k]) for k in ("out", "grad_theta", "grad_lws", "grad_b", "grad_x")},
    )

    def eff(P, k, eps):
        W, gg = P[k + "_W"].astype(np.float64), P[k + "_g"].astype(np.float64)
        axes = (0, 2, 3) if k == "g5" else ((1, 2, 3) if W.ndim == 4 else (0,))
        return gg / np.sqrt((W**2).sum(axis=axes) + eps)

    wn_names = [f"d{i}" for i in ref_idx] + ["d14", "g5"]
    ck(
        "CIFAR-10 data-dependent init: effective scale g/‖V‖ and bias of every weight-normalised layer (D and G)",
        f"{ref_file}: init_updates (nn.WeightNormLayer init=True)",
        "nn.weight_norm.data_dependent_init",
        {
            **{
                f"{k}_scale": (eff(post_plain, k, 0.0), eff({**pre, **{k + "_g": ref[f"init_{k}_g"]}}, k, EPS))
                for k in wn_names
            },
            **{f"{k}_b": (post_plain[k + "_b"], ref[f"init_{k}_b"]) for k in wn_names},
        },
    )
    ck(
        "CIFAR-10 weight-norm scale g after init (raw parameter)",
        f"{ref_file}: init_updates",
        "nn.weight_norm.data_dependent_init",
        {f"{k}_g": (post_plain[k + "_g"], ref[f"init_{k}_g"]) for k in wn_names},
        deviation=True,
        note="by design (README 'Weight-norm epsilon'): the reference divides by √(‖V‖² + 1e-6), ganworks by ‖V‖, "
        "so the same effective weight needs a g larger by √(1 + 1e-6/‖V‖²) on the reference side; for the "
        "first conv (‖V‖² ≈ 27·0.05² ≈ 0.07) that is ~7e-6 — the row above shows the effective weights agree",
    )
    ck(
        "CIFAR-10 D forward, dropout masks injected (logits on a labeled batch)",
        f"{ref_file}: disc_layers (get_output deterministic=False)",
        "models.improved_gan_cifar.CifarDiscriminator",
        {"d_logits_lab": (ours_step["d_logits_lab"], ref["step_d_logits_lab"])},
        note="reference's g set to the value with the same effective weight (see the init rows)",
    )
    ck(
        "CIFAR-10 G forward (BN batch statistics)",
        f"{ref_file}: gen_dat",
        "models.improved_gan_cifar.CifarGenerator",
        {"g_out": (ours_step["g_out"], ref["step_g_out"])},
    )
    ck(
        "CIFAR-10 feature-matching G loss (L1 of the feature means) and the matched means",
        f"{ref_file}: loss_gen = mean|m1 − m2|",
        "objectives.SemiSupervisedGAN.g_loss (feature_matching='l1')",
        {k: (ours_step[k], ref["step_" + k]) for k in ("loss_gen", "feat_mean_unl", "feat_mean_gen")},
    )
    ck(
        "CIFAR-10 G gradients of the feature-matching loss w.r.t. every parameter",
        f"{ref_file}: T.grad(loss_gen, gen_params)",
        "autograd",
        C.pair_up(ours_gg, {k[5:]: v for k, v in ref.items() if k.startswith("step_grad_g_")}),
        atol_of_check=True,
    )
    return checks
