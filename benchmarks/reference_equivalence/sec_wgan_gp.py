"""Section ``wgan-gp``: chainer-gan-lib's WGAN-GP updater (``wgan_gp/updater.py``, with its
``common/net.py`` ``WGANDiscriminator`` and ``DCGANGenerator``; ``ref_wgan_gp.py``) vs ganworks, in
float32 and float64 of the same instance (float64 to 1e-10, float32 judged by the measured rounding
noise, ``compare.check_measured``). Two parts:

**One D step at full width** (``WGANDiscriminator.differentiable_backward`` hard-codes 512 channels):
ganworks' Wasserstein critic loss + λ·``regularizers.gradient_penalty`` on ``sngan-cnn-d``
(``layout="chainer"``, ``norm="none"``) vs one ``update_core`` with n_dis = 1, on identical weights,
real and generated batches and interpolation weights α: the losses, the mean input-gradient norm at the
interpolates, and the gradients w.r.t. every D parameter.

**Whole updates** (``_dynamics_checks``): from identical weights, real batches, z and α, T = 3 updates of the
reference's ``Updater.update()`` (n_dis D steps; inside the first, after D's forward passes, one G
step on that D step's fakes: ``loss_gen = −ΣD(G(z₀))/B``, then D's step on the same fakes ``G_old(z₀)``;
Chainer's Adam on both models) vs ganworks' ``train/loop.py`` ``train_iteration`` on an ``Experiment``
built from the ``sngan/cifar10-cnn-wgan-gp`` preset (Wasserstein loss, λ = 10, Adam setting A: lr 1e-4,
β = (0.5, 0.9), n_dis = 5; ``layout=chainer`` for both models, width 1/8, batch 8, synthetic data
replaced by the harness's batches; the reference is given the same lr, betas, n_dis and λ). The harness
replays its draws into ganworks through ``harness.Draws`` (``G.sample_z`` and the α of
``regularizers.gradient_penalty``, both wrapped from outside). After each update: every parameter of G
and D, Adam's m and v, G's BN running statistics, and the losses of the G step and every D step.
Variants:

* ``reference order`` (must pass): ganworks' objective given the reference's order by the harness:
  its G step (first in ``objective.schedule``) draws z₀, and the first D step that follows reuses that
  step's fakes (detached) instead of drawing new ones from the just-updated G; everything else
  (losses, penalty, schedule, Adam) is ganworks' own. Adam eps 1e-30 on both sides.
* ``ganworks order`` (deviation): ganworks as it trains — its first D step draws fresh fakes from the
  updated G (the harness gives it z₀ again, so that only the order differs); Adam eps 1e-30 on both sides.
  The note measures how far apart the first D step's fakes and the parameters end up.

The G biases that feed a BN have an exact gradient of 0 and move by rounding noise on each side (info rows,
as in ``sngan_dynamics``); G's BN running means contain them, so they are judged less that part
(``running_mean_less_bias``), raw in an info row.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import compare as C
import numpy as np
import torch
from harness import Draws, Section, as_numpy, run_reference, seed_all
from sec_sngan import _chainer_names as chainer_names
from sngan_dynamics import BN_FED_NOTE, CNN_G, EPS_OFF, FLIP, _Batches, _bn_fed_bias

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


# ---- whole updates -------------------------------------------------------------------------------

PRESET = "sngan/cifar10-cnn-wgan-gp"
UPDATES = 3
DYN_BATCH = 8
WIDTH = 1 / 8
#: {our module path: (Chainer link path, is BN)} of WGANDiscriminator
WGAN_D = {f"body.{2 * j}": (f"/{c}", False) for j, c in enumerate(LINKS)}
WGAN_D["out"] = ("/l4", False)
G_BN = {mod: link for mod, (link, is_bn) in CNN_G.items() if is_bn}
#: variant: (order, Adam eps); the reference runs once per eps
VARIANTS = {
    "reference order": ("reference", EPS_OFF),
    "ganworks order": ("ganworks", EPS_OFF),
}


@contextlib.contextmanager
def replayed_alpha(draws: Draws):
    """``regularizers.gradient_penalty`` (looked up by ``objectives/gan.py`` at call time) with its
    per-example α taken from ``draws`` (key "alpha") instead of ``torch.rand``."""
    from ganworks import regularizers

    orig = regularizers.gradient_penalty

    def gradient_penalty(D, real, fake, center=1.0, mode="wgan-gp", alpha=None):
        if alpha is None:
            alpha = draws.draw("alpha", lambda: torch.rand(real.shape[0], dtype=real.dtype, device=real.device))
        return orig(D, real, fake, center=center, mode=mode, alpha=alpha)

    regularizers.gradient_penalty = gradient_penalty
    try:
        yield
    finally:
        regularizers.gradient_penalty = orig


def give_reference_order(objective) -> None:
    """From outside: the first D step after each G step reuses the G step's fakes (detached), as
    chainer-gan-lib's ``update_core`` does (its G step and first D step share ``G_old(z₀)``); the other
    D steps draw fresh fakes as before."""
    orig_fake, orig_g_loss = objective.fake, objective.g_loss
    state = {"in_g": False, "stash": []}

    def fake(n, device):
        if state["in_g"]:
            x = orig_fake(n, device)
            state["stash"].append(x.detach())
            return x
        if state["stash"]:
            x = state["stash"].pop()
            assert x.shape[0] == n, (x.shape, n)
            return x
        return orig_fake(n, device)

    def g_loss(batch):
        state["in_g"] = True
        try:
            return orig_g_loss(batch)
        finally:
            state["in_g"] = False

    objective.fake, objective.g_loss = fake, g_loss


def _draws(dtype: str, rs: np.random.RandomState, n_dis: int) -> dict:
    """The harness's real batches, z and α for every D step of every update, float32 values in the
    run's precision (the float64 run is the float32 instance upcast)."""
    n = UPDATES * n_dis
    x = rs.uniform(-1, 1, (n, DYN_BATCH, 3, 32, 32))
    z = rs.uniform(-1, 1, (n, DYN_BATCH, 128))  # DCGANGenerator's (and layout=chainer's) U[-1, 1]
    alpha = rs.uniform(0, 1, (n, DYN_BATCH))
    return {k: v.astype(np.float32).astype(dtype) for k, v in dict(x=x, z=z, alpha=alpha).items()}


def _experiment(eps: float, dtype: str):
    from ganworks.config import resolve
    from ganworks.train.experiment import Experiment

    cfg = resolve(
        PRESET,
        [
            "model.generator.layout=chainer",
            "model.discriminator.layout=chainer",
            "data.name=synthetic",
            "data.image_size=32",
            "data.channels=3",
            f"data.batch_size={DYN_BATCH}",
            "data.train_limit=64",
            "data.test_limit=16",
            f"model.generator.width={WIDTH}",
            f"model.discriminator.width={WIDTH}",
            "eval.quality_samples=0",
            f"train.iterations={UPDATES}",
            "train.compile=false",
            f"optim.eps={eps}",
        ],
    )
    o = cfg["objective"]
    assert (o["loss"], o["gradient_penalty"], o["gp_mode"]) == ("wasserstein", LAM, "wgan-gp"), o
    assert cfg["model"]["discriminator"]["norm"] == "none", cfg["model"]["discriminator"]
    torch.manual_seed(0)  # the same initial weights in every variant
    exp = Experiment(cfg, torch.device("cpu"))
    # the reference's G step uses the D step's batch size; no averages, a constant lr
    assert exp.objective.g_batch_multiplier == 1 and not exp.ema and cfg["optim"]["decay"] == "constant"
    tdt = torch.float64 if dtype == "float64" else torch.float32
    exp.G.to(tdt), exp.D.to(tdt)
    return cfg, exp


def _run_ours(variant: str, dtype: str, dr: dict) -> tuple[dict, dict, dict, list]:
    """ganworks' side of one variant: (initial weights by Chainer name, our arrays per update, config, the
    fakes of each update's first D step)."""
    from ganworks.train.loop import train_iteration

    order, eps = VARIANTS[variant]
    np_dt = np.dtype(dtype).type
    cfg, exp = _experiment(eps, dtype)
    G, D, obj = exp.G, exp.D, exp.objective
    names = {"G": chainer_names(G, CNN_G), "D": chainer_names(D, WGAN_D)}
    n_dis = cfg["objective"]["n_dis"]
    draws = Draws()
    zs = [torch.from_numpy(z) for z in dr["z"]]
    for t in range(UPDATES):
        step_z = zs[t * n_dis : (t + 1) * n_dis]
        # G step: z₀ (the reference's G step sees G(z₀)); ganworks' order then draws z₀ again for D step 0
        draws.replay["z"].extend([step_z[0]] + (step_z[1:] if order == "reference" else step_z))
    draws.replay["alpha"].extend(torch.from_numpy(a) for a in dr["alpha"])
    n_z, n_alpha = len(draws.replay["z"]), len(draws.replay["alpha"])
    orig_sample_z = G.sample_z

    def sample_z(n, device=None):
        z = draws.draw("z", lambda: orig_sample_z(n, device=device))
        assert z.shape[0] == n, (z.shape, n)
        return z

    G.sample_z = sample_z
    exp.stream = _Batches(torch.from_numpy(dr["x"]))
    if order == "reference":
        give_reference_order(obj)
    fakes0, orig_fake, orig_d_loss = [], obj.fake, obj.d_loss
    d_calls = {"n": 0}

    def d_loss(batch):  # the fakes of each update's first D step, for the deviation's measured size
        d_calls["n"] += 1
        return orig_d_loss(batch)

    def fake(n, device):
        x = orig_fake(n, device)
        if (d_calls["n"] - 1) % n_dis == 0 and not torch.is_grad_enabled():
            fakes0.append(as_numpy(x, np.float64))
        return x

    obj.fake, obj.d_loss = fake, d_loss
    init = {}
    for role, m in (("G", G), ("D", D)):
        for pname, p in m.named_parameters():
            cname = names[role][pname]
            init[f"{role}{cname}"] = FLIP.get(cname, lambda w: w)(as_numpy(p, np_dt))
    ours = {}
    G.train(), D.train()
    with replayed_alpha(draws):
        for t in range(UPDATES):
            phases = train_iteration(exp)
            d_i = 0
            for phase, logs in phases:
                if phase == "g":
                    ours[f"t{t}/loss/loss_gen/0"] = as_numpy(logs["loss_g"], np_dt)
                else:
                    ours[f"t{t}/loss/loss_dis/{d_i}"] = as_numpy(logs["d_fake"] - logs["d_real"], np_dt)
                    ours[f"t{t}/loss/loss_gp/{d_i}"] = as_numpy(LAM * logs["gradient_penalty"], np_dt)
                    d_i += 1
            for role, m in (("G", G), ("D", D)):
                opt = exp.optimizers[role.lower()]
                for pname, p in m.named_parameters():
                    cname = names[role][pname]
                    f = FLIP.get(cname, lambda w: w)
                    st = opt.state[p]
                    ours[f"t{t}/{role}{cname}"] = f(as_numpy(p, np_dt))
                    ours[f"t{t}/{role}{cname}/m"] = f(as_numpy(st["exp_avg"], np_dt))
                    ours[f"t{t}/{role}{cname}/v"] = f(as_numpy(st["exp_avg_sq"], np_dt))
            mods = dict(G.named_modules())
            for mod, link in G_BN.items():
                ours[f"t{t}/G{link}/avg_mean"] = as_numpy(mods[mod].running_mean, np_dt)
                ours[f"t{t}/G{link}/avg_var"] = as_numpy(mods[mod].running_var, np_dt)
    assert exp.stream.i == len(dr["x"]), "real batches left unused"
    assert not draws.replay["z"] and not draws.replay["alpha"], "draws left unused"
    assert (len(draws.record["z"]), len(draws.record["alpha"])) == (n_z, n_alpha), "fresh draws made"
    assert len(fakes0) == UPDATES, len(fakes0)
    return init, ours, cfg, fakes0


def _dynamics_run(a, tmp: Path, dtype: str) -> tuple[dict, dict, dict, dict]:
    """Both sides of every variant in ``dtype``: ({variant: ours}, {variant: reference}, {variant: initial
    weights}, the run's settings)."""
    rs = seed_all(0)
    np_dt = np.dtype(dtype).type
    dr = _draws(dtype, rs, n_dis=5)
    ours, inits, inp, fakes0 = {}, {}, {}, {}
    for variant, (order, eps) in VARIANTS.items():
        init, o, cfg, fakes0[variant] = _run_ours(variant, dtype, dr)
        assert cfg["objective"]["n_dis"] == 5, cfg["objective"]
        ours[variant], inits[variant] = o, init
        tag = f"eps{eps:g}"
        if f"{tag}/cfg/dtype" in inp:
            assert all(np.array_equal(init[k], inp[f"{tag}/{k}"]) for k in init), "initial weights differ"
            continue
        o_cfg = cfg["optim"]
        meta = dict(
            dtype=dtype,
            g_ch=int(512 * WIDTH),
            d_ch=int(512 * WIDTH),
            lr=o_cfg["lr"],
            beta1=o_cfg["beta1"],
            beta2=o_cfg["beta2"],
            eps=eps,
            n_dis=cfg["objective"]["n_dis"],
            lam=LAM,
            updates=UPDATES,
        )
        inp.update({f"{tag}/cfg/{k}": np.asarray(v) for k, v in meta.items()})
        inp.update({f"{tag}/{k}": v for k, v in init.items()})
        inp.update({f"{tag}/{k}": dr[k].astype(np_dt) for k in ("x", "z", "alpha")})
    ref = run_reference(
        a.chainer_python,
        "ref_wgan_gp.py",
        ["--chainer-gan-lib", a.chainer_gan_lib, "--mode", "dynamics"],
        inp,
        {},
        tmp,
        "wgan-gp-dynamics-" + dtype,
    )
    refs = {}
    for variant, (_, eps) in VARIANTS.items():
        tag = f"eps{eps:g}/"
        refs[variant] = {k[len(tag) :]: v for k, v in ref.items() if k.startswith(tag) and "/loss/g/" not in k}
    meta["fakes0"] = fakes0
    return ours, refs, inits, meta


def _moved(o: dict, r: dict, init: dict, lr: float) -> str:
    """The measured size of a difference, per update: ‖θ_ours − θ_ref‖ / ‖θ_ref − θ₀‖ over all of D's and
    all of G's parameters (BN-fed G biases left out), and the largest single difference in units of lr."""
    parts, worst = [], 0.0
    for role in ("D", "G"):
        per_t = []
        for t in range(UPDATES):
            keys = [
                k
                for k in r
                if k.startswith(f"t{t}/{role}/")
                and not k.endswith(("/m", "/v"))
                and "/avg_" not in k
                and not _bn_fed_bias(k)
            ]
            d2 = sum(float(np.sum((o[k].astype(np.float64) - r[k]) ** 2)) for k in keys)
            m2 = sum(float(np.sum((r[k].astype(np.float64) - init[k[len(f"t{t}/") :]]) ** 2)) for k in keys)
            worst = max([worst] + [float(np.max(np.abs(o[k].astype(np.float64) - r[k]))) for k in keys])
            per_t.append(f"{np.sqrt(d2 / m2):.3g}")
        parts.append(f"{role} " + ", ".join(per_t))
    return (
        f"‖θ_ours − θ_ref‖ / ‖θ_ref − θ₀‖ after updates 1-{UPDATES}: "
        + "; ".join(parts)
        + f"; largest single parameter difference {worst / lr:.3g}·lr"
    )


#: G's BNs and the layer whose bias feeds each (sngan-cnn-g, layout=chainer / DCGANGenerator)
BN_BIAS = {"/bn0": "/l0", "/bn1": "/dc1", "/bn2": "/dc2", "/bn3": "/dc3"}


def running_mean_less_bias(side: dict, init: dict, n_dis: int, momentum: float = 0.1) -> dict:
    """Each G BN's running mean less the part its BN-fed bias b put in it, in the reference order (per
    update one G forward at the G step with the bias before the update, then n_dis − 1 with the updated
    one; a BN's batch mean is mean(W·h) + b, and running mean ← (1 − momentum)·running mean + momentum·batch
    mean), computed in float64 from one side's own biases after each update."""
    out = {}
    for bn, lin in BN_BIAS.items():
        part, b_prev = 0.0, init[f"G{lin}/b"].astype(np.float64)
        for t in range(UPDATES):
            b = side[f"t{t}/G{lin}/b"].astype(np.float64)
            part = (1 - momentum) * part + momentum * b_prev
            for _ in range(n_dis - 1):
                part = (1 - momentum) * part + momentum * b
            out[f"t{t}/G{bn}/avg_mean_less_bias"] = side[f"t{t}/G{bn}/avg_mean"].astype(np.float64) - part
            b_prev = b
    return out


def _dynamics_checks(a, tmp: Path) -> list[C.Check]:
    runs = {dt: _dynamics_run(a, tmp, dt) for dt in ("float64", "float32")}
    meta64 = runs["float64"][3]
    lr, n_dis = meta64["lr"], meta64["n_dis"]
    # how far apart the first D step's fakes are: G_new(z₀) (ganworks' order) vs G_old(z₀) (the reference's,
    # which the reference-order rows show equal on both sides)
    f_own, f_ref = meta64["fakes0"]["ganworks order"], meta64["fakes0"]["reference order"]
    fake_diff = ", ".join(f"{np.linalg.norm(a - b) / np.linalg.norm(b):.3g}" for a, b in zip(f_own, f_ref))
    # the reference-order runs: each side's G BN running means less their BN-fed biases' part
    for dt, (ours, refs, inits, _) in runs.items():
        init = inits["reference order"]
        np_dt = np.dtype(dt).type
        for side in (ours["reference order"], refs["reference order"]):
            side.update({k: v.astype(np_dt) for k, v in running_mean_less_bias(side, init, n_dis).items()})
    secs = {dt: Section("wgan-gp", dt) for dt in runs}
    refname = (
        "chainer-gan-lib wgan_gp/updater.py: Updater.update_core (common/net.py DCGANGenerator, "
        "WGANDiscriminator; chainer.optimizers.Adam)"
    )
    for variant in VARIANTS:
        deviation = variant != "reference order"
        o64, r64, init64 = (runs["float64"][i][variant] for i in range(3))
        size = _moved(o64, r64, init64, lr)
        notes = {
            "reference order": "the harness gives ganworks' objective the reference's order (its first D step "
            "reuses the G step's fakes); Adam eps 1e-30 on both sides. Float64 " + size,
            "ganworks order": "deviation (the known order difference; objectives/gan.py gives every loss "
            "sngan_projection's order, G step then n_dis D steps on fresh fakes, which its docstring calls the "
            "reference updaters' order): ganworks' first D step of an update draws fresh fakes from the "
            "just-updated G, chainer-gan-lib's WGAN-GP updater reuses its G step's fakes G_old(z₀) "
            "(same z₀ given to both, Adam eps 1e-30 on both sides): the order alone. Float64: the first D step's "
            f"fakes differ by ‖G_new(z₀) − G_old(z₀)‖ / ‖G_old(z₀)‖ = {fake_diff} in updates 1-{UPDATES}; " + size,
        }
        bn_fed64 = [k for k in r64 if _bn_fed_bias(k) and not k.endswith(("/m", "/v"))]
        bias_diff = max(float(np.max(np.abs(o64[k].astype(np.float64) - r64[k]))) for k in bn_fed64)
        title = f"WGAN-GP whole updates ({PRESET}, width 1/8, batch 8), {variant}"
        for dt, sec in secs.items():
            o, r = runs[dt][0][variant], runs[dt][1][variant]
            assert set(o) == set(r), sorted(set(o) ^ set(r))
            bn_fed = sorted(k for k in r if _bn_fed_bias(k))
            groups = [
                (
                    f"losses of the G step and of every D step, each of {UPDATES} updates",
                    "train.loop.train_iteration logs (loss_g; d_fake − d_real; λ·gradient_penalty)",
                    sorted(k for k in r if "/loss/" in k),
                    notes[variant],
                    False,
                )
            ]
            for role in ("D", "G"):
                keys = [k for k in r if k[3:4] == role and "/loss/" not in k and not _bn_fed_bias(k)]
                groups.append(
                    (
                        f"{role} parameters after each update",
                        "train.loop.train_iteration",
                        sorted(k for k in keys if not k.endswith(("/m", "/v")) and "/avg_" not in k),
                        "",
                        False,
                    )
                )
                groups.append(
                    (
                        f"{role} Adam moments m, v after each update",
                        "torch.optim.Adam exp_avg, exp_avg_sq (vs Chainer Adam m, v)",
                        sorted(k for k in keys if k.endswith(("/m", "/v"))),
                        "",
                        False,
                    )
                )
            bn_ours = "nn.BatchNorm running_mean, running_var (vs Chainer avg_mean, avg_var)"
            if deviation:
                groups.append(
                    (
                        "G BN running statistics after each update",
                        bn_ours,
                        sorted(k for k in r if k.endswith(("/avg_mean", "/avg_var"))),
                        "ganworks' order runs G 6 times per update in training mode, the reference 5",
                        False,
                    )
                )
            else:
                groups += [
                    (
                        "G BN running variances after each update",
                        bn_ours,
                        sorted(k for k in r if k.endswith("/avg_var")),
                        "5 G forwards in training mode per update on both sides in this order",
                        False,
                    ),
                    (
                        "G BN running means less the part their BN-fed biases put in them, after each update",
                        bn_ours + " − sec_wgan_gp.running_mean_less_bias",
                        sorted(k for k in r if k.endswith("/avg_mean_less_bias")),
                        "a BN's batch mean is mean(W·h) + b, b the bias of the layer before it, whose exact "
                        "gradient is 0 and whose value each side moves by its own rounding noise (row below); "
                        "that part is computed from each side's own b after each update and taken out",
                        False,
                    ),
                    (
                        "G BN running means after each update (they contain the BN-fed biases)",
                        bn_ours,
                        sorted(k for k in r if k.endswith("/avg_mean")),
                        "not judged: each running mean contains the bias of the layer before its BN, which each "
                        f"side moves by ±lr steps of rounding noise (the row below: up to {bias_diff:.3g} apart in "
                        "float64 after 3 updates); less that part (computed from each side's biases) they agree "
                        "(row above)",
                        True,
                    ),
                ]
            for what, ours_name, keys, note, info in groups:
                comp = f"{title}: {what}"
                if dt == "float32" and not deviation and not info:
                    sec.checks.append(
                        C.check_measured(
                            comp,
                            refname,
                            ours_name,
                            {k: (o[k], r[k], o64[k], r64[k]) for k in keys},
                            note=note,
                            section=sec.name,
                        )
                    )
                else:
                    sec.check(
                        comp,
                        refname,
                        ours_name,
                        {k: (o[k], r[k]) for k in keys},
                        rtol=C.RTOL_FLOAT64 if dt == "float64" else C.RTOL_STEP,
                        deviation=deviation,
                        note=note,
                        info=info,
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
    return secs["float64"].checks + secs["float32"].checks


# ---- the section --------------------------------------------------------------------------------


def _step_checks(a, tmp: Path) -> list[C.Check]:
    rs_state = seed_all(0).get_state()
    runs = {}
    for dt in ("float64", "float32"):
        inp, ours = _ours(dt, rs_state)
        ref = run_reference(
            a.chainer_python,
            "ref_wgan_gp.py",
            ["--chainer-gan-lib", a.chainer_gan_lib, "--mode", "step"],
            inp,
            {},
            tmp,
            "wgan-gp-" + dt,
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


def section(a, tmp: Path) -> list[C.Check]:
    """The one-step rows (full width), then the whole-update rows (width 1/8)."""
    return _step_checks(a, tmp) + _dynamics_checks(a, tmp)
