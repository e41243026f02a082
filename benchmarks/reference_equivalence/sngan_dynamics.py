"""Section ``sngan-dynamics``: whole SN-GAN updates, ganworks' ``train_iteration`` vs the reference updater.

From identical weights, real batches and z, each side runs T = 3 whole updates (one G step, then
n_dis = 5 D steps, Adam on both models, the ResNet preset's linear lr decay):

* ganworks: ``train/loop.py`` ``train_iteration`` on an ``Experiment`` built from the SN-GAN
  presets (standard CNN ``sngan/cifar10-cnn-sn-A`` with ``layout=chainer``, ResNet
  ``sngan/cifar10-resnet-sn-hinge``; small widths, batch 8, synthetic data replaced by the harness's
  batches), the loss set per run (non-saturating or hinge);
* the reference: sngan_projection ``updater.Updater.update()`` with chainer-gan-lib's standard CNN
  or sngan_projection's ResNet (``ref_sngan_dynamics.py``).

After each update: every parameter of G and D, Adam's first and second moments, every SN layer's
u, and σ̂ = ‖Wᵀu‖ of every SN layer (the estimate the stored u gives for the current W, computed the
same way for both sides here).

Variants (one run each, per model and loss):

* ``as trained``: each side as it trains — ganworks' u warm-started by PyTorch's 15 power
  iterations at registration and one power step per phase (``parametrize.cached``: 1 + n_dis per
  update), the reference from a random u and one power step per D call (1 + 2·n_dis per update);
  each framework's Adam (eps 1e-8, added to √v̂ by PyTorch and to √v by Chainer). A deviation row;
  its note gives the measured σ̂ difference after each update.
* ``same u0``: both sides from the same random u (ganworks' v set so that its first step gives the
  reference's u), Adam eps 1e-30 on both sides (so that the eps placement cannot matter): isolates
  the power-iteration schedule. A deviation row, with the measured σ̂ difference.
* ``reference schedule``: as ``same u0``, and ganworks' SN layers given, by the harness, the
  reference's power step (v ← Wᵀu/(‖·‖+ε), u ← Wv/(‖·‖+ε), σ̂ = uᵀWv) on every training-mode
  forward, without ``parametrize.cached``: everything else (G-first order, n_dis, losses, fresh z
  per call, BN in training mode, Adam, lr decay) is ganworks' own. Must pass.
"""

from __future__ import annotations

import contextlib
from collections import deque
from pathlib import Path

import compare as C
import numpy as np
import torch
from harness import Section, as_numpy, run_reference, seed_all
from sec_sngan import _chainer_names as chainer_names

UPDATES = 3
N_DIS = 5
BATCH = 8
WIDTH = 1 / 16
EPS_OFF = 1e-30  # Adam eps "off" on both sides (0 would divide 0 by 0 on an exactly-zero gradient)

# {our module path: (Chainer link path, is BN)}
RES_G = {"dense": ("/l1", False), "bn": ("/b5", True), "out": ("/c5", False)}
for _i in range(3):
    RES_G.update({f"blocks.{_i}.{c}": (f"/block{_i + 2}/{c}", False) for c in ("c1", "c2", "c_sc")})
    RES_G.update({f"blocks.{_i}.{b}": (f"/block{_i + 2}/{b}", True) for b in ("b1", "b2")})
RES_D = {f"blocks.{i}.{c}": (f"/block{i + 1}/{c}", False) for i in range(4) for c in ("c1", "c2", "c_sc")}
RES_D["out"] = ("/l5", False)
CNN_G = {
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
CNN_D = {
    f"body.{2 * j}": (f"/{c}", False) for j, c in enumerate(["c0_0", "c0_1", "c1_0", "c1_1", "c2_0", "c2_1", "c3_0"])
}
CNN_D["out"] = ("/l4", False)
#: G's last layer: our 3x3 Conv2d vs chainer-gan-lib's stride-1 Deconvolution2D (transposed, flipped kernel)
FLIP = {"/dc4/W": lambda w: np.ascontiguousarray(w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])}

MODELS = {  # model: (preset, overrides, G map, D map, reference G ch, reference D ch, lr decay over)
    "cnn": (
        "sngan/cifar10-cnn-sn-A",
        ["model.generator.layout=chainer", "model.discriminator.layout=chainer"],
        CNN_G,
        CNN_D,
        512 * WIDTH,
        512 * WIDTH,
    ),
    "resnet": ("sngan/cifar10-resnet-sn-hinge", [], RES_G, RES_D, 256 * WIDTH, 128 * WIDTH),
}
LOSSES = {"ns": ("nonsaturating", "dcgan"), "hinge": ("hinge", "hinge")}
VARIANTS = ("as trained", "same u0", "reference schedule")


def sn_modules(model) -> dict:
    from torch.nn.utils import parametrize

    return {
        n: m.parametrizations.weight[0]
        for n, m in model.named_modules()
        if parametrize.is_parametrized(m, "weight") and hasattr(m.parametrizations.weight[0], "_u")
    }


def reference_power_step(p, eps: float = 1e-12):
    """The reference's SN forward (sngan_projection ``max_sv.max_singular_value``, Ip = 1, then
    W / σ), for one torch SN parametrization ``p``: the harness's stand-in for its forward."""

    def forward(weight):
        W = p._reshape_weight_to_matrix(weight)
        if p.training:
            with torch.no_grad():
                v = torch.mv(W.t(), p._u)
                v = v / (v.norm() + eps)
                u = torch.mv(W, v)
                u = u / (u.norm() + eps)
                p._u.copy_(u)
                p._v.copy_(v)
        return weight / torch.dot(p._u.clone(), torch.mv(W, p._v.clone()))

    return forward


@contextlib.contextmanager
def no_parametrize_cache():
    """``parametrize.cached()`` made a no-op: every forward recomputes its SN weight (and steps u)."""
    from torch.nn.utils import parametrize

    orig = parametrize.cached
    parametrize.cached = contextlib.nullcontext
    try:
        yield
    finally:
        parametrize.cached = orig


class _Batches:
    """The experiment's stream, replaced: the harness's real batches in order."""

    def __init__(self, xs: torch.Tensor) -> None:
        self.xs, self.i = xs, 0
        self.batches_per_epoch = 10**9

    def batch(self, epoch: int, index: int) -> dict:
        x = self.xs[self.i]
        self.i += 1
        return {"x": x}


def sigma_hat(W: np.ndarray, u: np.ndarray) -> float:
    W = np.asarray(W, np.float64).reshape(W.shape[0], -1)
    u = np.asarray(u, np.float64).reshape(-1)
    return float(np.linalg.norm(W.T @ (u / np.linalg.norm(u))))


def _build(model: str, loss: str, variant: str, dtype: str, rs: np.random.RandomState):
    """ganworks' side of one run; returns (inputs for the reference, our arrays per update)."""
    from ganworks.config import resolve
    from ganworks.train.experiment import Experiment
    from ganworks.train.loop import train_iteration

    preset, extra, gmap, dmap, g_ch, d_ch = MODELS[model]
    np_dt = np.dtype(dtype).type
    tdt = torch.float64 if dtype == "float64" else torch.float32
    eps = 1e-8 if variant == "as trained" else EPS_OFF
    decay_T = UPDATES + 1 if model == "resnet" else 0  # ResNet preset: linear decay to 0 over train.iterations
    cfg = resolve(
        preset,
        [
            *extra,
            "data.name=synthetic",
            "data.image_size=32",
            "data.channels=3",
            f"data.batch_size={BATCH}",
            "data.train_limit=64",
            "data.test_limit=16",
            f"model.generator.width={WIDTH}",
            f"model.discriminator.width={WIDTH}",
            f"objective.loss={LOSSES[loss][0]}",
            f"objective.n_dis={N_DIS}",
            "eval.quality_samples=0",
            f"train.iterations={decay_T or UPDATES}",
            "train.compile=false",
            f"optim.eps={eps}",
        ],
    )
    assert cfg["objective"]["n_dis"] == N_DIS, cfg["objective"]
    exp = Experiment(cfg, torch.device("cpu"))
    G, D = exp.G.to(tdt), exp.D.to(tdt)
    mult = exp.objective.g_batch_multiplier
    n_z = UPDATES * (BATCH * mult + N_DIS * BATCH)
    zdist = getattr(G, "z_distribution", "normal")
    z = rs.randn(n_z, 128) if zdist == "normal" else rs.uniform(-1, 1, (n_z, 128))
    xs = rs.uniform(-1, 1, (UPDATES * N_DIS, BATCH, 3, 32, 32))
    # float32 values in either precision: the float64 run is the float32 instance in double precision
    z, xs = z.astype(np.float32).astype(np_dt), xs.astype(np.float32).astype(np_dt)
    zq = deque(torch.from_numpy(z))

    def sample_z(n, device=None):
        return torch.stack([zq.popleft() for _ in range(n)])

    G.sample_z = sample_z
    exp.stream = _Batches(torch.from_numpy(xs))

    tag = f"{model}-{loss}-{variant.replace(' ', '_')}"
    inp = {
        f"{tag}/cfg/{k}": np.asarray(v)
        for k, v in dict(
            dtype=dtype,
            model=model,
            loss=LOSSES[loss][1],
            g_ch=int(g_ch),
            d_ch=int(d_ch),
            lr=cfg["optim"]["lr"],
            beta1=cfg["optim"]["beta1"],
            beta2=cfg["optim"]["beta2"],
            eps=eps,
            n_dis=N_DIS,
            n_gen=BATCH * mult,
            decay_T=decay_T,
            updates=UPDATES,
        ).items()
    }
    inp[f"{tag}/z"], inp[f"{tag}/x"] = z, xs
    names = {"G": chainer_names(G, gmap), "D": chainer_names(D, dmap)}
    for role, m in (("G", G), ("D", D)):
        for pname, p in m.named_parameters():
            cname = names[role][pname]
            inp[f"{tag}/{role}{cname}"] = FLIP.get(cname, lambda w: w)(as_numpy(p, np_dt))
    sn = sn_modules(D)
    for mname, p in sn.items():
        link = dmap[mname][0]
        u0 = rs.randn(p._u.shape[0]).astype(np.float32).astype(np_dt)
        inp[f"{tag}/D{link}/u"] = u0[None]
        if variant != "as trained":  # same u0 on both sides; v such that torch's u-first step gives Chainer's u
            with torch.no_grad():
                W = p._reshape_weight_to_matrix(dict(D.named_parameters())[_orig_name(D, p)])
                u = torch.from_numpy(u0)
                v0 = torch.mv(W.t(), u)
                p._u.copy_(u)
                p._v.copy_(v0 / (v0.norm() + 1e-12))
        if variant == "reference schedule":
            p.forward = reference_power_step(p)
    ours = {}
    ctx = no_parametrize_cache() if variant == "reference schedule" else contextlib.nullcontext()
    G.train(), D.train()
    with ctx:
        for t in range(UPDATES):
            train_iteration(exp)
            for role, m in (("G", G), ("D", D)):
                opt = exp.optimizers[role.lower()]
                for pname, p in m.named_parameters():
                    cname = names[role][pname]
                    f = FLIP.get(cname, lambda w: w)
                    ours[f"t{t}/{role}{cname}"] = f(as_numpy(p, np_dt))
                    st = opt.state[p]
                    ours[f"t{t}/{role}{cname}/m"] = f(as_numpy(st["exp_avg"], np_dt))
                    ours[f"t{t}/{role}{cname}/v"] = f(as_numpy(st["exp_avg_sq"], np_dt))
                ours[f"t{t}/{role}alpha"] = np.asarray(opt.param_groups[0]["lr"])
            for mname, p in sn.items():
                ours[f"t{t}/D{dmap[mname][0]}/u"] = as_numpy(p._u, np_dt)
    assert exp.stream.i == len(xs) and not zq, "draws left unused"
    return tag, inp, ours


def _orig_name(model, p) -> str:
    for n, m in model.named_modules():
        if hasattr(m, "parametrizations") and "weight" in m.parametrizations and m.parametrizations.weight[0] is p:
            return n + ".parametrizations.weight.original"
    raise KeyError("SN parametrization not found")


#: G's output layers: every other bias of both generators feeds a batch norm through linear ops only
G_OUT_LINKS = ("/c5", "/dc4")
BN_FED_NOTE = (
    "every G bias but the output layer's reaches a batch norm through linear ops only (a conv/linear "
    "followed by BN, or a residual sum followed by the next block's BN), so its exact gradient is 0 and "
    "G's output does not depend on it; both sides compute rounding noise (~1e-17 in float64), which Adam "
    "(g/√v) turns into steps of about ±lr of either sign. Not judged; the other G rows leave these "
    "arrays out"
)


def _bn_fed_bias(k: str) -> bool:
    """A key t<i>/G/<link>/b[/m|/v] of a G bias other than the output layer's."""
    parts = k.split("/")
    if parts[-1] in ("m", "v"):
        parts = parts[:-1]
    return len(parts) >= 4 and parts[1] == "G" and parts[-1] == "b" and "/" + "/".join(parts[2:-1]) not in G_OUT_LINKS


def _run(a, tmp: Path, dtype: str) -> tuple[dict, dict]:
    """Both sides of every run in ``dtype``: ({tag: our arrays}, {tag: the reference's arrays})."""
    rs = seed_all(0)
    inp, ours_all = {}, {}
    for model in MODELS:
        for loss in LOSSES:
            for variant in VARIANTS:
                tag, i, o = _build(model, loss, variant, dtype, rs)
                inp.update(i)
                ours_all[tag] = o
    ref = run_reference(
        a.chainer_python,
        "ref_sngan_dynamics.py",
        ["--sngan-projection", a.sngan_projection, "--chainer-gan-lib", a.chainer_gan_lib],
        inp,
        {},
        tmp,
        "sngan-dynamics-" + dtype,
    )
    refs = {tag: {k[len(tag) + 1 :]: v for k, v in ref.items() if k.startswith(tag + "/")} for tag in ours_all}
    return ours_all, refs


def _sigmas(o: dict, r: dict) -> tuple[dict, dict, list[float]]:
    """σ̂ after each update per SN layer on each side, and the worst relative difference per update."""
    u_keys = sorted(k for k in r if k.endswith("/u"))
    sig_o, sig_r, worst = {}, {}, []
    for t in range(UPDATES):
        rel_t = 0.0
        for k in (k for k in u_keys if k.startswith(f"t{t}/")):
            Wk = k[:-2] + "/W"
            so, sr = sigma_hat(o[Wk], o[k]), sigma_hat(r[Wk], r[k])
            sig_o[k[:-2] + "/sigma"], sig_r[k[:-2] + "/sigma"] = np.asarray(so), np.asarray(sr)
            rel_t = max(rel_t, abs(so - sr) / abs(sr))
        worst.append(rel_t)
    return sig_o, sig_r, worst


def section(a, tmp: Path) -> list[C.Check]:
    """Float32 and float64 runs of the same instance; float64 rows to ``RTOL_FLOAT64``, float32 rows of the
    matched schedule judged by the measured rounding noise (``compare.check_measured``)."""
    runs = {dt: _run(a, tmp, dt) for dt in ("float64", "float32")}
    sections = {dt: Section("sngan-dynamics", dt) for dt in runs}
    snp = "sngan_projection updater.py: Updater.update_core"
    for model in MODELS:
        for loss in LOSSES:
            for variant in VARIANTS:
                tag = f"{model}-{loss}-{variant.replace(' ', '_')}"
                title = (
                    f"SN-GAN dynamics, {'standard CNN' if model == 'cnn' else 'ResNet'}, "
                    f"{'non-saturating' if loss == 'ns' else 'hinge'} loss, {variant}"
                )
                refname = f"{snp} ({'chainer-gan-lib common/net.py' if model == 'cnn' else 'sngan_projection'} models)"
                deviation = variant != "reference schedule"
                o64, r64 = runs["float64"][0][tag], runs["float64"][1][tag]
                s64o, s64r, _ = _sigmas(o64, r64)
                for dt, sec in sections.items():
                    o, r = runs[dt][0][tag], runs[dt][1][tag]
                    sig_o, sig_r, worst = _sigmas(o, r)
                    if dt == "float32":
                        o.update(sig_o), r.update(sig_r)
                        o64.update(s64o), r64.update(s64r)
                    else:
                        o.update(sig_o), r.update(sig_r)
                    sig_note = (
                        "σ̂ = ‖Wᵀu‖ differs by up to "
                        + ", ".join(f"{100 * w:.3g} % after update {t + 1}" for t, w in enumerate(worst))
                        + " (worst SN layer)"
                    )
                    notes = {
                        "as trained": "documented deviation (nn/spectral_norm.py): ganworks does 1 + n_dis power steps "
                        "per update (one per phase, parametrize.cached) from PyTorch's 15-step warm "
                        "start, the reference 1 + 2·n_dis (one per D call) from a random u; Adam's eps "
                        "is added to √v̂ (PyTorch) vs √v (Chainer). Measured: " + sig_note,
                        "same u0": "documented deviation: the power-iteration schedule alone (same u0, Adam eps off on "
                        "both sides): 1 + n_dis power steps per update in ganworks vs 1 + 2·n_dis in the "
                        "reference, and PyTorch's u-then-v half-steps. Measured: " + sig_note,
                        "reference schedule": "the harness gives ganworks' SN layers the reference's power step on "
                        "every D call; everything else is train_iteration's own. " + sig_note,
                    }
                    u_keys = sorted(k for k in r if k.endswith("/u"))
                    sig_keys = sorted(k for k in r if k.endswith("/sigma"))
                    bn_fed = sorted(k for k in r if _bn_fed_bias(k))
                    groups = [
                        (
                            f"σ̂ of every SN layer after each of {UPDATES} updates",
                            "train.loop.train_iteration + nn.spectral_norm",
                            sig_keys,
                            notes[variant],
                        ),
                        ("u of every SN layer after each update", "nn.spectral_norm", u_keys, ""),
                    ]
                    for role in ("D", "G"):
                        groups.append(
                            (
                                f"{role} parameters after each update",
                                "train.loop.train_iteration",
                                sorted(
                                    k
                                    for k in r
                                    if k[3:4] == role
                                    and not k.endswith(("/u", "/m", "/v", "alpha", "/sigma"))
                                    and not _bn_fed_bias(k)
                                ),
                                "",
                            )
                        )
                        groups.append(
                            (
                                f"{role} Adam moments m, v after each update",
                                "torch.optim.Adam exp_avg, exp_avg_sq (vs Chainer Adam m, v)",
                                sorted(
                                    k for k in r if k[3:4] == role and k.endswith(("/m", "/v")) and not _bn_fed_bias(k)
                                ),
                                "",
                            )
                        )
                    if model == "resnet" and variant == "reference schedule":
                        groups.append(
                            (
                                "learning rate after each update (linear decay)",
                                "train.optim.build_scheduler",
                                sorted(k for k in r if k.endswith("alpha")),
                                "vs sngan_projection train.py's extensions.LinearShift('alpha')",
                            )
                        )
                    for what, ours_name, keys, note in groups:
                        comp = f"{title}: {what}"
                        if dt == "float32" and not deviation:
                            c = C.check_measured(
                                comp,
                                refname,
                                ours_name,
                                {k: (o[k], r[k], o64[k], r64[k]) for k in keys},
                                note=note,
                                section=sec.name,
                            )
                            sec.checks.append(c)
                        else:
                            sec.check(
                                comp,
                                refname,
                                ours_name,
                                {k: (o[k], r[k]) for k in keys},
                                rtol=C.RTOL_FLOAT64 if dt == "float64" else C.RTOL_STEP,
                                deviation=deviation,
                                note=note,
                            )
                    sec.check(
                        f"{title}: G biases that feed a BN, with their Adam m, v, after each update",
                        refname,
                        "train.loop.train_iteration",
                        {k: (o[k], r[k]) for k in bn_fed},
                        info=True,
                        atol_of_check=True,
                        note=BN_FED_NOTE,
                    )
    return sections["float64"].checks + sections["float32"].checks
