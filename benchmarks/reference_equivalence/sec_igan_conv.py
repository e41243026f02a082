"""Improved-GAN SVHN (both scripts) and the CIFAR-10 minibatch-discrimination script's whole step: sections ``svhn``, ``svhn64``, ``svhn64eps``, ``cifar-md``, ``cifar-md64``, ``cifar-md64eps``.

Moved out of run.py unchanged (issue 23, item 5); the shared pieces (the exchange of arrays with the
reference scripts, the recorded draws, the run's precision ``H.DTYPE``) are in harness.py.
"""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path

import compare as C
import harness as H
import numpy as np
import torch
from harness import LAST_OURS, Draws, npy, run_reference
from sec_averaging import ema_reference_form

_IGAN_EPS = 1e-6  # inside the reference WeightNormLayer's square root
_IGAN_D_CONVS = [2, 3, 4, 6, 7, 8, 10, 11, 12]  # WeightNormLayer conv indices in the scripts' disc_layers


def _igan_conv_params(G, D) -> dict:
    """{reference name (theano_improved_gan.conv_model_params): (our parameter, to-reference-layout
    function, (V, reduction dims) for a weight-norm scale g else None)} for every parameter of G and D."""
    ident = lambda v: v  # noqa: E731
    tr = lambda v: np.ascontiguousarray(v.T)  # noqa: E731
    flip = lambda v: np.ascontiguousarray(v[:, :, ::-1, ::-1])  # noqa: E731  Theano's transposed conv flips
    nin = lambda v: np.ascontiguousarray(v.reshape(v.shape[0], -1).T)  # noqa: E731  NINLayer: W (in, out)
    out = {}

    def wn(prefix, layer, to_ref, red):
        w = layer.parametrizations.weight
        out[prefix + "_W"] = (w.original1, to_ref, None)
        out[prefix + "_g"] = (w.original0, lambda v: v.reshape(-1), (w.original1, red))
        out[prefix + "_b"] = (layer.bias, ident, None)

    convs = [m for m in D.body if isinstance(m, torch.nn.Conv2d)]
    for i, conv in zip(_IGAN_D_CONVS, convs):
        wn(f"d{i}", conv, nin if conv.kernel_size == (1, 1) else ident, (1, 2, 3))
    dense = 14
    if D.minibatch is not None:
        mb = D.minibatch
        out.update(
            d14_theta=(mb.theta, ident, None), d14_lws=(mb.log_weight_scale, ident, None), d14_b=(mb.bias, ident, None)
        )
        dense = 15
    wn(f"d{dense}", D.out, tr, (1,))
    out.update(
        g1_W=(G.dense.weight, tr, None),
        g1_b=(G.norm0.bias, ident, None),
        g3_W=(G.deconv1.weight, flip, None),
        g3_b=(G.norm1.bias, ident, None),
        g4_W=(G.deconv2.weight, flip, None),
        g4_b=(G.norm2.bias, ident, None),
    )
    wn("g5", G.out, flip, (0, 2, 3))
    return out


def _igan_conv_layout(G, D, eps_adjust: bool = False) -> dict:
    """ganworks' parameters in the reference's layout; with eps_adjust the reference's g is set so that its
    effective weight g·V/√(‖V‖² + 1e-6) equals ours g·V/‖V‖."""
    P = {}
    for name, (p, to_ref, wn) in _igan_conv_params(G, D).items():
        if wn is not None and eps_adjust:
            V, red = wn
            nv = V.detach().double().square().sum(dim=red).sqrt().reshape(-1)
            P[name] = npy(p.detach().double().reshape(-1) * torch.sqrt(nv**2 + _IGAN_EPS) / nv)
        else:
            P[name] = to_ref(npy(p))
    return P


def _igan_wn_axes(name: str, W: np.ndarray) -> tuple:
    """reduction axes of ‖V‖ per output unit, for a weight V in the reference's layout"""
    if W.ndim == 2:
        return (0,)
    return (0, 2, 3) if name.startswith("g5") else (1, 2, 3)


def _igan_eff_scale(P: dict, k: str, eps: float) -> np.ndarray:
    W, g = P[k + "_W"].astype(np.float64), P[k + "_g"].astype(np.float64)
    return g / np.sqrt((W**2).sum(axis=_igan_wn_axes(k, W)) + eps)


def _igan_eps_size(P: dict, keys) -> tuple[float, str]:
    """The weight-norm epsilon's largest relative size 1e-6/‖V‖² over the output units of the weight-normalised
    layers ``keys`` (weights ``P[k + "_W"]`` in the reference's layout), and the layer where it is largest: the
    relative change of their gradients w.r.t. g and V that the epsilon makes (README 'Weight-norm epsilon')."""
    sizes = {}
    for k in keys:
        W = np.asarray(P[k + "_W"], dtype=np.float64)
        sizes[k] = float(np.max(_IGAN_EPS / (W**2).sum(axis=_igan_wn_axes(k, W))))
    worst = max(sizes, key=sizes.get)
    return sizes[worst], worst


def _eps_note(c: C.Check, P: dict, keys, matched_row: str) -> None:
    """Append to a float64 row that differs from the reference by the weight-norm epsilon its measured size."""
    size, layer = _igan_eps_size(P, keys)
    top = max(a.ref_scale for a in c.arrays)
    big = [a for a in c.arrays if a.ref_scale >= 1e-6 * top]  # not the arrays that are zero by construction
    worst = max(big, key=lambda a: a.max_rel)
    c.note += (
        f"{'; ' if c.note else ''}float64: differs from the reference by the weight-norm epsilon only (README "
        f"'Weight-norm epsilon'; deviation): the reference's gradients w.r.t. V and g carry 1/√(‖V‖² + 1e-6) "
        f"where ganworks' carry 1/‖V‖, a relative change up to 1e-6/‖V‖² = {size:.2g} here (layer {layer}); "
        f"measured in this run: max rel {worst.max_rel:.2g} (worst array {worst.name}); {matched_row}"
    )


def _igan_ref_g_as_ours(P_ref: dict, k: str) -> np.ndarray:
    """the reference's g expressed as ganworks' g of the same effective weight: g·‖V‖/√(‖V‖² + 1e-6)"""
    W = P_ref[k + "_W"].astype(np.float64)
    nv2 = (W**2).sum(axis=_igan_wn_axes(k, W))
    return P_ref[k + "_g"] * np.sqrt(nv2 / (nv2 + _IGAN_EPS))


@contextlib.contextmanager
def _igan_record_noise(D, draws: Draws):
    """Record every dropout mask and Gaussian-noise draw of D (keys noise<k>, k in module order = the
    order of the reference's noise layers); dropout as Lasagne computes it: rescale, then mask.

    Every draw is made in float32 and then cast to the model's dtype, so that a float64 run draws the
    same values as the float32 run of the same seed (PyTorch's float64 ``randn`` and ``bernoulli`` on
    float64 probabilities consume the generator differently and give other values)."""
    from ganworks.nn.noise import GaussianNoise

    mods = [m for m in D.modules() if isinstance(m, (torch.nn.Dropout, GaussianNoise))]
    for k, m in enumerate(mods):
        m.eq_noise_key = f"noise{k}"  # an attribute, so that a deep copy of D draws under the same keys
    orig = torch.nn.Dropout.forward, GaussianNoise.forward

    def dropout_forward(self, x):
        if not self.training or self.p == 0:
            return x
        mask = draws.draw(
            self.eq_noise_key,
            lambda: torch.bernoulli(torch.full_like(x, 1 - self.p, dtype=torch.float32)).to(x.dtype),
        )
        return x / (1 - self.p) * mask

    def noise_forward(self, x):
        if not self.training or self.sigma == 0.0:
            return x
        return x + self.sigma * draws.draw(
            self.eq_noise_key, lambda: torch.randn_like(x, dtype=torch.float32).to(x.dtype)
        )

    torch.nn.Dropout.forward, GaussianNoise.forward = dropout_forward, noise_forward
    try:
        yield len(mods)
    finally:
        torch.nn.Dropout.forward, GaussianNoise.forward = orig


def _igan_models(dataset: str, variant: str, tdt):
    from ganworks.models import build_model

    G = build_model(name=f"improved-gan-{dataset}-g").train().to(tdt)
    D = build_model(name=f"improved-gan-{dataset}-d", variant=variant).train().to(tdt)
    orig_sample_z = G.sample_z
    G.sample_z = lambda m, device=None: orig_sample_z(m, device=device).to(tdt)
    return G, D


def _igan_theano(a, script: str, mode: str, inp: dict, dtype: str, tmp: Path, tag: str) -> dict:
    compiledir = Path(a.theano_compiledir).expanduser()
    flags = f"device=cpu,floatX={dtype},blas.ldflags=,base_compiledir={compiledir}"
    return run_reference(
        a.theano_python,
        "ref_improved_gan_conv.py",
        ["--improved-gan", a.improved_gan, "--lasagne", a.lasagne, "--script", script, "--mode", mode],
        inp,
        {"THEANO_FLAGS": flags},
        tmp,
        tag,
    )


def _igan_losses_and_grads(G, D, z, x_lab, y_lab, x_unl, x_unl2, fm: bool):
    """ganworks' D loss and G loss (the semi-supervised objective) on one batch with G's z fixed: forward
    outputs, losses, gradients w.r.t. every trainable parameter in the reference's names and layout."""
    from torch.nn.utils import parametrize

    from ganworks.objectives import OBJECTIVES

    names = _igan_conv_params(G, D)
    G.sample_z = lambda m, device=None: z
    obj = OBJECTIVES["semi-supervised"](G, D, feature_matching="l1" if fm else "", unlabeled_weight=1.0)
    d_outs, g_outs = [], []
    hd = D.register_forward_hook(lambda m, i, o: d_outs.append(o))
    hg = G.register_forward_hook(lambda m, i, o: g_outs.append(o))
    try:
        with parametrize.cached():
            total, logs = obj.d_loss({"x_lab": x_lab, "y_lab": y_lab, "x_unl": x_unl})
            dn = {k: v for k, v in names.items() if k.startswith("d") and v[0].requires_grad}
            dg = torch.autograd.grad(total, [v[0] for v in dn.values()])
        ours = {
            "d_logits_lab": npy(d_outs[0]),
            "d_logits_unl": npy(d_outs[1]),
            "d_logits_gen": npy(d_outs[2]),
            "g_out": npy(g_outs[0]),
            "loss_lab": npy(logs["loss_lab"]),
            "loss_unl": npy(logs["loss_unl"]),
        }
        ours_gd = {f"grad_d_{k}": v[1](npy(g)) for (k, v), g in zip(dn.items(), dg)}
        d_outs.clear()
        with parametrize.cached():
            gloss, _ = obj.g_loss({"x_unl2": x_unl2})
            gn = {k: v for k, v in names.items() if k.startswith("g") and v[0].requires_grad}
            gg = torch.autograd.grad(gloss, [v[0] for v in gn.values()])
    finally:
        hd.remove(), hg.remove()
    ours["loss_gen"] = npy(gloss)
    if fm:
        ours["feat_mean_unl"], ours["feat_mean_gen"] = npy(d_outs[0][1].mean(0)), npy(d_outs[1][1].mean(0))
    ours_gg = {f"grad_g_{k}": v[1](npy(g)) for (k, v), g in zip(gn.items(), gg)}
    return ours, ours_gd, ours_gg


def _igan_conv_grads(
    a, tmp: Path, dtype: str, dataset: str, variant: str, script: str, sec: str, tag: str, match_eps: bool = False
) -> list[C.Check]:
    """Init, D and G forward, D loss and G loss with their gradients: ganworks vs ``script``."""
    from ganworks.nn.weight_norm import data_dependent_init

    tdt = torch.float64 if dtype == "float64" else torch.float32
    fm = variant == "fm"
    torch.manual_seed(0 if fm else 1)
    n = 8
    G, D = _igan_models(dataset, variant, tdt)
    names = _igan_conv_params(G, D)
    pre = _igan_conv_layout(G, D)
    pre.update({k: np.ones_like(v) for k, v in pre.items() if k.endswith("_g")})  # the reference starts at g = 1
    draws = Draws()
    with _igan_record_noise(D, draws) as n_noise:
        z_init = G.sample_z(n)
        data_dependent_init(G, z_init)
        x_init = (torch.rand(16, 3, 32, 32) * 2 - 1).to(tdt)
        data_dependent_init(D, x_init)
        assert all(len(v) == 1 for v in draws.record.values()) and len(draws.record) == n_noise
        init_draws = {k: v[0] for k, v in draws.record.items()}
        draws.record.clear()
        post_plain, post = _igan_conv_layout(G, D), _igan_conv_layout(G, D, eps_adjust=not match_eps)
        if match_eps:
            _igan_match_eps(G, D)
        x_lab, x_unl, x_unl2 = ((torch.rand(n, 3, 32, 32) * 2 - 1).to(tdt) for _ in range(3))
        y_lab = torch.randint(0, 10, (n,))
        z = G.sample_z(n)
        ours, ours_gd, ours_gg = _igan_losses_and_grads(G, D, z, x_lab, y_lab, x_unl, x_unl2, fm)
        wide64 = None
        if dtype == "float32":
            # diagnostic: ganworks' side again in float64 on this very instance (weights, inputs, draws upcast)
            rec = {k: list(v) for k, v in draws.record.items()}
            for k, v in rec.items():
                draws.replay[k].extend(t.double() for t in v)
            G64, D64 = copy.deepcopy(G).double(), copy.deepcopy(D).double()
            H.DTYPE = np.float64
            try:
                wide64 = _igan_losses_and_grads(
                    G64, D64, z.double(), x_lab.double(), y_lab, x_unl.double(), x_unl2.double(), fm
                )
            finally:
                H.DTYPE = np.float32
            assert all(not q for q in draws.replay.values())
            draws.record.clear()
            draws.record.update(rec)
    # per noise layer: the D loss's lab, unl, gen passes; then the G loss's passes
    g_passes = ("fmunl", "fmgen") if fm else ("gen",)
    inp = {
        "n": n,
        "z_init": npy(z_init),
        "x_init": npy(x_init),
        "z": npy(z),
        "x_lab": npy(x_lab),
        "y_lab": y_lab.numpy().astype(np.int32),
        "x_unl": npy(x_unl),
        "x_unl2": npy(x_unl2),
    }
    for k in range(n_noise):
        inp[f"ipass_init_{k}"] = npy(init_draws[f"noise{k}"])
        rec = draws.record[f"noise{k}"]
        assert len(rec) == 3 + len(g_passes), len(rec)
        for ps, m in zip(("lab", "unl", "gen"), rec[:3]):
            inp[f"dpass_{ps}_{k}"] = npy(m)
        for ps, m in zip(g_passes, rec[3:]):
            inp[f"gpass0_{ps}_{k}"] = npy(m)
    inp.update({f"pre_{k}": v for k, v in pre.items()})
    inp.update({f"post_{k}": v for k, v in post.items()})
    ref = _igan_theano(a, script, "grads", inp, dtype, tmp, f"{dataset}-{variant}-{dtype}")

    checks = []
    ref_file = f"mnist_svhn_cifar10/{script}"
    what = f"{dataset.upper() if dataset == 'svhn' else 'CIFAR-10'} {variant.upper()}"
    dname = f"models.improved_gan_cifar.CifarDiscriminator ({dataset} '{variant}')"

    def ck(component, *args, **kw):
        checks.append(C.check(f"{what} {component}{tag}", *args, section=sec, **kw))
        return checks[-1]

    # float64 without the matched epsilon: the gradients w.r.t. V and g differ by the weight-norm epsilon
    # (a documented deviation, measured in the note; the svhn64eps rows show that nothing else differs)
    eps_dev = dtype == "float64" and not match_eps
    matched = (
        f"with the epsilon matched, the '{what} … [float64, WN eps matched]' row of the same gradients "
        "(section svhn64eps) shows what is left"
    )
    wn_names = sorted({k[:-2] for k in names if k.endswith("_g")})
    pairs = {
        f"{k}_scale": (
            _igan_eff_scale(post_plain, k, 0.0),
            _igan_eff_scale({**pre, k + "_g": ref[f"init_{k}_g"]}, k, _IGAN_EPS),
        )
        for k in wn_names
    }
    pairs.update({f"{k}_b": (post_plain[k + "_b"], ref[f"init_{k}_b"]) for k in wn_names})
    if not fm:
        pairs.update({k: (post_plain[k], ref["init_" + k]) for k in ("d14_lws", "d14_b")})
    ck(
        "data-dependent init: effective scale g/‖V‖ and bias of every weight-normalised layer (D and G)"
        + ("" if fm else ", minibatch layer's log scale and bias"),
        f"{ref_file}: init_param (init_updates)",
        "nn.weight_norm.data_dependent_init",
        pairs,
        note="the raw g differs by design by √(1 + 1e-6/‖V‖²) (the reference's weight-norm epsilon; see the "
        "CIFAR-10 rows); from here on the reference's g is set to give ganworks' effective weight",
    )
    noise = "dropout masks" if fm else "Gaussian input noise and dropout masks"
    ck(
        f"D forward, {noise} injected: logits on labeled, unlabeled, generated batches",
        f"{ref_file}: output_before_softmax_{{lab,unl,gen}}",
        dname,
        {k: (ours[k], ref["step_" + k]) for k in ("d_logits_lab", "d_logits_unl", "d_logits_gen")},
    )
    ck(
        "G forward (BN batch statistics)",
        f"{ref_file}: gen_dat",
        "models.improved_gan_cifar.CifarGenerator",
        {"g_out": (ours["g_out"], ref["step_g_out"])},
    )
    ck(
        "semi-supervised D loss (supervised and unsupervised parts)",
        f"{ref_file}: loss_lab, loss_unl",
        "objectives.SemiSupervisedGAN.d_loss",
        {k: (ours[k], ref["step_" + k]) for k in ("loss_lab", "loss_unl")},
    )
    c = ck(
        "D gradients of loss_lab + loss_unl w.r.t. every parameter",
        f"{ref_file}: T.grad(loss_lab + unlabeled_weight·loss_unl, disc_params)",
        "autograd",
        C.pair_up(ours_gd, {k[5:]: v for k, v in ref.items() if k.startswith("step_grad_d_")}),
        atol_of_check=True,
        note=""
        if wide64 is None
        else "float32, the epsilon matched in both precisions: judged by the rounding noise measured on both sides"
        if match_eps
        else "float32: judged by the rounding noise measured on both sides (the float64 run of the same instance); "
        "its float64 twin differs by the weight-norm epsilon, which this row then carries too (a deviation through "
        "that twin); the same row with the epsilon matched in both precisions ('… [float32, WN eps matched]', "
        "section svhn32eps) shows whether anything beyond the epsilon and rounding is left",
        deviation=eps_dev,
    )
    if eps_dev:
        _eps_note(c, post_plain, [k for k in wn_names if k.startswith("d")], matched)
    if fm:
        ck(
            "feature-matching G loss (L1 of the feature means) and the matched means",
            f"{ref_file}: loss_gen = mean|m1 − m2|",
            "objectives.SemiSupervisedGAN.g_loss (feature_matching='l1')",
            {k: (ours[k], ref["step_" + k]) for k in ("loss_gen", "feat_mean_unl", "feat_mean_gen")},
        )
    else:
        ck(
            "G loss −mean softplus(logsumexp(D(G(z))))",
            f"{ref_file}: loss_gen = −mean(softplus(l_gen))",
            "objectives.SemiSupervisedGAN.g_loss (feature_matching='': losses.g_loss_minimax)",
            {"loss_gen": (ours["loss_gen"], ref["step_loss_gen"])},
        )
    c = ck(
        "G gradients of the G loss w.r.t. every parameter",
        f"{ref_file}: T.grad(loss_gen, gen_params)",
        "autograd",
        C.pair_up(ours_gg, {k[5:]: v for k, v in ref.items() if k.startswith("step_grad_g_")}),
        atol_of_check=True,
        note="G's dense/deconv layers feed a BN: gradients that are zero by construction are judged against the "
        "check's largest gradient (compare.py)",
        deviation=eps_dev,
    )
    if eps_dev:
        _eps_note(c, post_plain, [k for k in wn_names if k.startswith("g")], matched)
    if wide64 is not None:
        _, gd64, gg64 = wide64
        for role, mine, w64 in (("D", ours_gd, gd64), ("G", ours_gg, gg64)):
            rr = {k[5:]: v for k, v in ref.items() if k.startswith(f"step_grad_{role.lower()}_")}
            for who, grads_of in (("ganworks float32", mine), ("reference float32", rr)):
                ck(
                    f"{role} gradients, {who} vs ganworks in float64 (same instance)",
                    "ganworks in float64",
                    "autograd" if who.startswith("ganworks") else "reference in float32",
                    C.pair_up(grads_of, w64),
                    atol_of_check=True,
                    info=True,
                    note="diagnostic: the float64 computation is the closest thing to exact here (it carries the "
                    "weight-norm epsilon difference of ~1e-5 on the first conv's gradients, see the [float64] "
                    "rows); a float32 side far from it carries float32 rounding",
                )
    return checks


def svhn_section(a, tmp: Path, dtype: str = "float32", match_eps: bool = False) -> list[C.Check]:
    """Improved-GAN SVHN: both released scripts (feature matching, minibatch discrimination)."""
    H.DTYPE = np.dtype(dtype).type
    wide = dtype == "float64"
    sec = "improved-gan-svhn" + ("-float64" if wide else "") + ("-eps" if match_eps else "")
    tag = (" [float64" + (", WN eps matched]" if match_eps else "]")) if wide else ""
    checks = []
    for variant, script in (("fm", "train_svhn_feature_matching.py"), ("md", "train_svhn_minibatch_discrimination.py")):
        checks += _igan_conv_grads(a, tmp, dtype, "svhn", variant, script, sec, tag, match_eps)
    return checks


def cifar_md_section(a, tmp: Path, dtype: str = "float32", match_eps: bool = False) -> list[C.Check]:
    """The CIFAR-10 minibatch-discrimination script's whole iteration: one D update (its train_batch_disc:
    semi-supervised loss, its Adam, its test-time parameter average disc_avg_updates) and its three G updates
    (train_batch_gen: −mean softplus(l_gen), Adam), vs ganworks' train_iteration with the same recipe (and its
    averaged D, train.averaging.EMA), from identical weights, batches and draws; then the test-time D (the
    script's test_batch: averaged parameters, dropout and noise off) on ganworks' averaged D."""
    import types

    from ganworks.config import resolve
    from ganworks.nn.weight_norm import data_dependent_init
    from ganworks.objectives import OBJECTIVES
    from ganworks.train.averaging import EMA
    from ganworks.train.loop import train_iteration
    from ganworks.train.optim import build_optimizer

    H.DTYPE = np.dtype(dtype).type
    wide = dtype == "float64"
    sec = "improved-gan-cifar-md" + ("-float64" if wide else "") + ("-eps" if match_eps else "")
    tag = (" [float64" + (", WN eps matched]" if match_eps else "]")) if wide else ""
    script = "train_cifar_minibatch_discrimination.py"
    ref_file = f"mnist_svhn_cifar10/{script}"
    tdt = torch.float64 if wide else torch.float32
    torch.manual_seed(2)
    n, g_steps = 8, 3
    cfg = resolve("improved-gan/cifar10-4000", [])
    optim = cfg["optim"]  # lr 3e-4, β1 0.5, β2 0.999, eps 1e-8 inside √
    beta = cfg["train"]["ema_d"]  # 0.9999, the script's a ← a + 0.0001 (p − a)
    G, D = _igan_models("cifar", "md", tdt)
    draws = Draws()
    with _igan_record_noise(D, draws) as n_noise:
        data_dependent_init(G, G.sample_z(n))
        data_dependent_init(D, (torch.rand(16, 3, 32, 32) * 2 - 1).to(tdt))
        draws.record.clear()
        if match_eps:
            _igan_match_eps(G, D)
        post = _igan_conv_layout(G, D, eps_adjust=not match_eps)
        x_lab, x_unl = ((torch.rand(n, 3, 32, 32) * 2 - 1).to(tdt) for _ in range(2))
        y_lab = torch.randint(0, 10, (n,))
        # x_unl2 only sets the G step's batch size (the minimax G loss uses no data, as train_batch_gen)
        batch = {"x_lab": x_lab, "y_lab": y_lab, "x_unl": x_unl, "x_unl2": x_unl}
        orig_sample_z = G.sample_z
        G.sample_z = lambda m, device=None: draws.draw("z", lambda: orig_sample_z(m, device=device))
        G0, D0 = copy.deepcopy(G), copy.deepcopy(D)

        def iterate(G, D):
            """ganworks' train_iteration (one D step, g_steps G steps) on G, D; the parameters after each step,
            and D's average as ganworks keeps it for testing"""
            names = _igan_conv_params(G, D)
            obj = OBJECTIVES["semi-supervised"](G, D, feature_matching="", unlabeled_weight=1.0, g_steps=g_steps)
            params = {
                "d": [p for p in D.parameters() if p.requires_grad],
                "g": [p for p in G.parameters() if p.requires_grad],
            }
            after = {}

            class Opt:
                """the optimizer as ganworks builds it; snapshots the parameters after each step"""

                def __init__(self, role):
                    self.role, self.opt, self.k = role, build_optimizer(params[role], optim, optim["lr"]), 0

                def zero_grad(self, **kw):
                    self.opt.zero_grad(**kw)

                def step(self):
                    self.opt.step()
                    after["d" if self.role == "d" else f"g{self.k}"] = {
                        k: v[1](npy(v[0])) for k, v in names.items() if k[0] == self.role[0] and v[0].requires_grad
                    }
                    self.k += 1

            ema = {"d": EMA(D, beta)}
            exp = types.SimpleNamespace(
                position={"epoch": 0, "index": 0, "iteration": 0},
                G=G,
                D=D,
                stream=types.SimpleNamespace(batch=lambda epoch, index: batch, batches_per_epoch=10**9),
                objective=obj,
                params=params,
                phase_context=lambda phase: contextlib.nullcontext(),
                optimizers={"d": Opt("d"), "g": Opt("g")},
                ema=ema,
                schedulers={},
                phase_loss=None,
            )
            return train_iteration(exp), after, ema["d"]

        logs, after, ema = iterate(G, D)
        after_ulp = None
        if not wide:
            # float32 sensitivity: ganworks again from the same weights moved by ~1 ulp, same batch and draws
            rec = {k: list(v) for k, v in draws.record.items()}
            for k, v in rec.items():
                draws.replay[k].extend(v)
            with torch.no_grad():
                for p in list(G0.parameters()) + list(D0.parameters()):
                    p.mul_(1 + 2.0**-23)
            _, after_ulp, _ = iterate(G0, D0)
            assert all(not q for q in draws.replay.values())
            draws.record.clear()
            draws.record.update(rec)
    assert [ph for ph, _ in logs] == ["d"] + ["g"] * g_steps
    inp = {
        "n": n,
        "g_steps": g_steps,
        "lr": optim["lr"],
        "x_lab": npy(x_lab),
        "y_lab": y_lab.numpy().astype(np.int32),
        "x_unl": npy(x_unl),
    }
    z = draws.record["z"]
    assert len(z) == 1 + g_steps
    inp["z_d"] = npy(z[0])
    inp.update({f"z_g{j}": npy(z[1 + j]) for j in range(g_steps)})
    for k in range(n_noise):
        rec = draws.record[f"noise{k}"]
        assert len(rec) == 3 + g_steps, len(rec)
        for ps, m in zip(("lab", "unl", "gen"), rec[:3]):
            inp[f"dpass_{ps}_{k}"] = npy(m)
        for j in range(g_steps):
            inp[f"gpass{j}_gen_{k}"] = npy(rec[3 + j])
    inp.update({f"post_{k}": v for k, v in post.items()})
    # ganworks' averaged D (bias-corrected: after one D step, the parameters after it), in the reference's layout,
    # to be put into the script's disc_param_avg for its test-time pass; and ganworks' own test-time pass
    avg_ours = {k: v for k, v in _igan_conv_layout(G, ema.model, eps_adjust=not match_eps).items() if k[0] == "d"}
    inp.update({f"avgin_{k}": v for k, v in avg_ours.items()})
    with torch.no_grad():
        test_logits = ema.model.eval()(x_lab)
    test_err = (test_logits.argmax(1) != y_lab).to(tdt).mean()
    ref = _igan_theano(a, script, "step", inp, dtype, tmp, f"cifar-md-{dtype}")
    LAST_OURS["cifar-md-" + dtype] = {"after": after, "inp": inp, "ref": ref}  # kept for ad hoc inspection

    checks = []

    def ck(component, *args, **kw):
        checks.append(C.check(f"CIFAR-10 MD whole iteration: {component}{tag}", *args, section=sec, **kw))
        return checks[-1]

    def ref_after(prefix):
        P = {k[len(prefix) :]: v for k, v in ref.items() if k.startswith(prefix)}
        if match_eps:
            return P
        return {k: (_igan_ref_g_as_ours(P, k[:-2]) if k.endswith("_g") else v) for k, v in P.items()}

    d_logs = logs[0][1]
    ck(
        "D step losses",
        f"{ref_file}: train_batch_disc outputs loss_lab, loss_unl",
        "train.loop.train_iteration",
        {k: (npy(d_logs[k]), ref["dstep_" + k]) for k in ("loss_lab", "loss_unl")},
    )
    note_g = (
        (
            "trainable weight-norm scales g are compared as ganworks' g of the same effective weight: the "
            "reference's g·‖V‖/√(‖V‖² + 1e-6)"
        )
        if not match_eps
        else (
            "the harness gives every weight-normalised layer of ganworks the reference's formula "
            "g·V/√(‖V‖² + 1e-6), to show that nothing else differs"
        )
    )
    # float64 without the matched epsilon: what is left is the weight-norm epsilon (a documented deviation,
    # shown to be the only difference by the [float64, WN eps matched] rows); float32: rounding, see the 1-ulp row
    eps_dev = wide and not match_eps
    if eps_dev:
        note_g += (
            "; Adam's first step g/√(g² + 1e-8) turns the epsilon's relative change of a gradient entry into a larger "
            "relative change of the update where the entry is small"
        )
    elif not wide and match_eps:
        note_g += "; float32: judged by the rounding noise measured on both sides (float64 runs, epsilon matched)"
    elif not wide:
        note_g += (
            "; float32: judged by the rounding noise measured on both sides (their float64 runs of the same "
            "instance); it is a deviation where its float64 twin differs by the weight-norm epsilon; the same row "
            "with the epsilon matched in both precisions ('… [float32, WN eps matched]', section cifar-md32eps) "
            "shows whether anything beyond the epsilon and rounding is left. The 1-ulp row (ganworks against "
            "itself) measures how far float32 rounding alone moves one whole iteration"
        )
    matched = (
        "with the epsilon matched, the same row '… [float64, WN eps matched]' (section cifar-md64eps) shows what "
        "is left"
    )
    wn_all = sorted({k[:-2] for k in post if k.endswith("_g")})
    c = ck(
        "every D parameter after the D update (semi-supervised loss, Adam with ε inside √, β1 0.5)",
        f"{ref_file}: train_batch_disc (nn.adam_updates)",
        "train.loop.train_iteration + train.optim.AdamEpsInsideSqrt",
        C.pair_up(after["d"], ref_after("after_d_")),
        note=note_g,
        deviation=eps_dev,
    )
    if eps_dev:
        _eps_note(c, post, [k for k in wn_all if k[0] == "d"], matched)
    for j in range(g_steps):
        c = ck(
            f"every G parameter after G update {j + 1} of {g_steps} (−mean softplus(l_gen), fresh z and D noise)",
            f"{ref_file}: train_batch_gen (nn.adam_updates)",
            "train.loop.train_iteration + objectives.SemiSupervisedGAN.g_loss (feature_matching='')",
            C.pair_up(after[f"g{j}"], ref_after(f"after_g{j}_")),
            rtol=C.RTOL_STEP,
            note=note_g if j == 0 else "",
            deviation=eps_dev,
        )
        if eps_dev:  # G's updates see D after its update: every weight-normalised layer's epsilon enters
            _eps_note(c, post, wn_all, matched)
    avg_file = f"{ref_file}: disc_param_avg, disc_avg_updates"
    d_keys = [k for k in post if "avg_" + k in ref]  # the script averages its trainable D parameters
    assert d_keys and len(d_keys) == sum(k.startswith("avg_") for k in ref), d_keys
    form = ema_reference_form([{k: np.asarray(post[k]) for k in d_keys}], beta)[0]
    ck(
        "averaged D after the D update, as the reference keeps it: ganworks' EMA fed the parameters before the step, "
        "× (1 − 0.9999)",
        avg_file,
        "train.averaging.EMA (through sec_averaging.ema_reference_form) fed the D parameters before the step",
        {k: (form[k], ref["avg_" + k]) for k in d_keys},
        note="the script's average starts at 0 and is a ← a + 0.0001 (p − a), with p the parameters from BEFORE "
        "the D step (Theano applies all of train_batch_disc's updates at once): after one step it is "
        "0.0001 × the initial D parameters; here ganworks' EMA module is given those parameters and its "
        "bias-corrected average put in the reference's form; the MNIST rows check the same over 20 iterations",
    )
    ck(
        "averaged D after the D update: ganworks' (bias-corrected) vs the reference's divided by (1 − 0.9999)",
        avg_file,
        "train.averaging.EMA",
        {k: (avg_ours[k], ref["avg_" + k] / (1.0 - beta)) for k in d_keys},
        deviation=True,
        note="by design (README 'Deliberate deviations'): ganworks bias-corrects the average and updates it after "
        "the optimizer step, so after one step it is the parameters after that step; the reference's, "
        "corrected, is those before it. The difference is one Adam step (~lr = 3e-4 per entry) and fades as "
        "thousands of steps are averaged",
    )
    ck(
        "test-time D on the averaged parameters (logits and error; dropout and noise off), ganworks' average "
        "put into the reference's disc_param_avg",
        f"{ref_file}: test_batch (givens disc_avg_givens, deterministic=True)",
        "train.averaging.EMA.model in eval mode (error: argmax ≠ label, as metrics.classification.count_errors)",
        {"logits": (npy(test_logits), ref["test_logits_avg"]), "test_err": (npy(test_err), ref["test_err_avg"])},
        rtol=C.RTOL_STEP,
        note="the script averages only its trainable D parameters; its test pass uses the others as they are: "
        f"the conv layers' g ({len(ref['test_fixed_params'])} arrays, train_g=False), which the harness gives it "
        "for the averaged V "
        + (
            "(no change: the formulas are matched)"
            if match_eps
            else "(the reference's g of ganworks' effective weight g·V/‖V‖ depends on V through the epsilon)"
        ),
    )
    if after_ulp is not None:
        ck(
            "ganworks vs ganworks with every weight moved by 1 ulp (no reference): every parameter after each update",
            "ganworks (same batch and draws)",
            "train.loop.train_iteration",
            {f"{s_}/{k}": (after_ulp[s_][k], v) for s_ in after for k, v in after[s_].items()},
            deviation=True,
            note="float32 sensitivity of one whole iteration: Adam's first step g/√(g² + 1e-8) turns a gradient entry "
            "near 1e-4 or below into an update of order lr, so float32 rounding in such entries (relative to the "
            "array's largest gradient) moves parameters by a sizeable fraction of lr; the [float64] rows show "
            "what is left without rounding",
        )
    return checks


def _igan_match_eps(G, D) -> None:
    """For a harness experiment only: every weight-normalised layer of G and D computes the reference's
    g·V/√(‖V‖² + 1e-6) instead of ganworks' g·V/‖V‖ (the one documented difference of the CIFAR/SVHN models)."""
    for m in list(G.modules()) + list(D.modules()):
        if hasattr(m, "parametrizations") and "weight" in m.parametrizations:
            wn = m.parametrizations.weight[0]
            dim = wn.dim

            def forward(weight_g, weight_v, dim=dim):
                red = [i for i in range(weight_v.dim()) if i != dim]
                return weight_v * (weight_g / torch.sqrt(_IGAN_EPS + weight_v.square().sum(dim=red, keepdim=True)))

            wn.forward = forward


def eps_matched_float32(fn, a, tmp: Path) -> list[C.Check]:
    """``fn`` (``svhn_section`` or ``cifar_md_section``) with every weight-normalised layer of ganworks given the
    reference's epsilon, in float32 and the same instance in float64: the float32 rows judged by the measured
    rounding noise (``compare.measure_sections``). Without the epsilon difference nothing but rounding is left,
    so these rows say whether the float32 rows of ``svhn`` / ``cifar-md`` that exceed their bound (deviations
    through their float64 twins) are the epsilon and rounding. Only the measured float32 rows are returned (the
    float64 ones are those of ``svhn64eps`` / ``cifar-md64eps``; the float32-only diagnostics are left out)."""
    c32 = fn(a, tmp, "float32", match_eps=True)
    c64 = fn(a, tmp, "float64", match_eps=True)
    out = []
    for c in C.measure_sections(c32, c64, tag=" [float64, WN eps matched]"):
        if c.tolerance == C.MEASURED:
            c.component += " [float32, WN eps matched]"
            out.append(c)
    return out
