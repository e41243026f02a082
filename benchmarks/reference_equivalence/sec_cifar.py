"""Improved-GAN CIFAR-10 feature matching (Theano + Lasagne): sections ``cifar`` and ``cifar64eps``.

``train_cifar_feature_matching.py`` and its ``nn.MinibatchLayer`` against ganworks, in four parts:

* the minibatch-discrimination layer on its own (data-dependent init, forward, gradients);
* the script's models (``ref_improved_gan_cifar.py``): data-dependent init, D forward on a labeled batch,
  G forward, the feature-matching G loss and its gradients;
* one whole training iteration (``ref_improved_gan_conv.py --mode step``): the script's own
  ``train_batch_disc`` (semi-supervised D loss, its Adam, its test-time average) and ``train_batch_gen``
  (feature-matching G loss, its Adam) against ganworks' ``train_iteration`` on an experiment built from the
  preset ``improved-gan/cifar10-4000`` (its objective, optimizers, lr schedules and averaged D), from identical
  weights, batches and draws: every parameter and Adam's moments after each update;
* the learning-rate schedule: the script's own ``lr = ...`` line at every epoch of its loop against the lr
  ganworks' scheduler (``train.optim.build_scheduler`` with the preset's ``optim``) gives at every iteration.

Every random draw (z, dropout masks) is made in float32 and, in the float64 run, cast: that run is the
float32 instance in double precision (asserted against the float32 run when both run in one process).
``match_eps`` (float64 only, section ``cifar64eps``): every weight-normalised layer of ganworks is given the
reference's g·V/√(‖V‖² + 1e-6) after the init (the one documented difference), for the rows after the init.
"""

from __future__ import annotations

import contextlib
import types
import warnings
from pathlib import Path

import compare as C
import harness as H
import numpy as np
import torch
from harness import LAST_OURS, Draws, npy, run_reference
from sec_averaging import ema_reference_form
from sec_igan_conv import (
    _IGAN_EPS,
    _igan_conv_layout,
    _igan_conv_params,
    _igan_match_eps,
    _igan_ref_g_as_ours,
    _igan_theano,
    _igan_wn_axes,
)

PRESET = "improved-gan/cifar10-4000"
SCRIPT = "train_cifar_feature_matching.py"
REF_FILE = f"mnist_svhn_cifar10/{SCRIPT}"
#: CIFAR-10's training images: the number of unlabeled images each epoch passes over on both sides
#: (ganworks' stream: len(images) // batch_size batches; the script: int(trainx.shape[0] / batch_size))
CIFAR10_TRAIN = 50000
#: the float32 run's inputs and draws, to assert that the float64 run is the same instance upcast
_INPUTS32: dict = {}
#: ganworks' lr at every iteration (the same Python floats in both precisions: computed once)
_LR_CACHE: dict = {}


@contextlib.contextmanager
def _dropout_draws(D, draws: Draws):
    """Record every dropout mask of D (key ``drop<k>``, k in module order = the order of the script's
    DropoutLayers), drawn in float32 whatever D's precision and cast to it (so that the float64 run is the
    float32 instance), applied as Lasagne does: rescale, then mask."""
    from ganworks.nn.noise import GaussianNoise

    assert not any(isinstance(m, GaussianNoise) for m in D.modules())  # the FM D has dropout only
    keys = {id(m): f"drop{k}" for k, m in enumerate(m for m in D.modules() if isinstance(m, torch.nn.Dropout))}
    orig = torch.nn.Dropout.forward

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        mask = draws.draw(keys[id(self)], lambda: torch.bernoulli(torch.full(x.shape, 1 - self.p)).to(x.dtype))
        return x / (1 - self.p) * mask

    torch.nn.Dropout.forward = forward
    try:
        yield len(keys)
    finally:
        torch.nn.Dropout.forward = orig


def _same_instance(name: str, dtype: str, inp: dict, computed: tuple[str, ...]) -> None:
    """In float32 keep ``inp``; in float64 assert that every input and draw not computed from the weights
    (keys not starting with ``computed``) is the float32 run's value upcast."""
    keep = {k: np.asarray(v) for k, v in inp.items() if not k.startswith(computed)}
    if dtype == "float32":
        _INPUTS32[name] = keep
        return
    ref = _INPUTS32.get(name)
    if ref is None:
        return  # no float32 run in this process (e.g. cifar64eps alone)
    assert set(ref) == set(keep), sorted(set(ref) ^ set(keep))
    for k, v in keep.items():
        assert np.array_equal(v, ref[k].astype(v.dtype)), f"{name}: {k} is not the float32 run's value upcast"


def _wn_factor(P: dict, k: str) -> np.ndarray:
    """c = √(‖V‖² + 1e-6)/‖V‖ per unit of weight-normalised layer ``k`` (V in the reference's layout, from
    ``P``): the reference's g is ganworks' g × c for the same effective weight, so d/dg_ours = c · d/dg_ref."""
    W = P[k + "_W"].astype(np.float64)
    nv2 = (W**2).sum(axis=_igan_wn_axes(k, W))
    return np.sqrt((nv2 + _IGAN_EPS) / nv2)


def _eps_sizes(P: dict, names) -> dict:
    """max ε/‖V‖² over each weight-normalised layer's units: the relative size of the epsilon's effect"""
    out = {}
    for k in names:
        W = P[k + "_W"].astype(np.float64)
        out[k] = float(np.max(_IGAN_EPS / (W**2).sum(axis=_igan_wn_axes(k, W))))
    return out


def cifar_section(a, tmp: Path, dtype: str = "float32", match_eps: bool = False) -> list[C.Check]:
    H.DTYPE = np.dtype(dtype).type
    wide = dtype == "float64"
    assert wide or not match_eps, "match_eps is a float64 diagnostic"
    sec = H.Section("improved-gan-cifar", dtype)
    if match_eps:
        sec.name += "-eps"
        sec.tag = " [float64, WN eps matched]"
    ref = _minibatch_and_models(a, tmp, dtype, sec, match_eps)
    if not match_eps:
        _lr_schedule(sec, ref)
    _whole_iteration(a, tmp, dtype, sec, match_eps)
    return sec.checks


# ---- the minibatch layer and the script's models ---------------------------------------------------------------


def _minibatch_and_models(a, tmp: Path, dtype: str, sec: H.Section, match_eps: bool) -> dict:
    """The rows of the first two parts; returns the reference run's arrays (they hold the script's lr too)."""
    from torch.nn.utils import parametrize

    from ganworks.models import build_model
    from ganworks.nn.minibatch_discrimination import MinibatchDiscrimination
    from ganworks.nn.weight_norm import data_dependent_init
    from ganworks.objectives import OBJECTIVES

    tdt = torch.float64 if dtype == "float64" else torch.float32
    torch.manual_seed(0)
    rs = np.random.RandomState(1)
    inp: dict = {"n": 8}
    n = inp["n"]

    # ---- minibatch discrimination on its own (nn.MinibatchLayer), incl. its data-dependent init ----
    md = MinibatchDiscrimination(24, num_kernels=10, dim_per_kernel=5).to(tdt)
    inp.update(
        md_theta=npy(md.theta),
        md_lws=npy(md.log_weight_scale),
        md_b=npy(md.bias),
        md_x_init=rs.randn(16, 24).astype(np.float32).astype(H.DTYPE),
        md_x=rs.randn(n, 24).astype(np.float32).astype(H.DTYPE),
        md_R=rs.randn(n, 34).astype(np.float32).astype(H.DTYPE),
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
    G = build_model(name="improved-gan-cifar-g").train().to(tdt)
    D = build_model(name="improved-gan-cifar-d", variant="fm").train().to(tdt)
    names = _igan_conv_params(G, D)
    draws = Draws()
    pre = _igan_conv_layout(G, D)
    pre.update({k: np.ones_like(v) for k, v in pre.items() if k.endswith("_g")})  # the reference starts at g = 1
    with _dropout_draws(D, draws) as n_drop:
        z_init = G.sample_z(n).to(tdt)
        data_dependent_init(G, z_init)
        x_init = (torch.rand(16, 3, 32, 32) * 2 - 1).to(tdt)
        data_dependent_init(D, x_init)
        init_masks = {k: v[0] for k, v in draws.record.items()}
        draws.record.clear()
        # ganworks' g after init, and the reference's g of the same effective weight (unless matched)
        post_plain = _igan_conv_layout(G, D)
        post = _igan_conv_layout(G, D, eps_adjust=not match_eps)
        if match_eps:
            _igan_match_eps(G, D)
        x_lab, x_unl = ((torch.rand(n, 3, 32, 32) * 2 - 1).to(tdt) for _ in range(2))
        z = G.sample_z(n).to(tdt)
        G.sample_z = lambda m, device=None: z
        gnames = {k: v for k, v in names.items() if k[0] == "g" and v[0].requires_grad}
        with parametrize.cached():
            logits = D(x_lab)
            obj = OBJECTIVES["semi-supervised"](G, D, feature_matching="l1")
            outs = []
            h = D.register_forward_hook(lambda m, i, o: outs.append(o))
            loss, _ = obj.g_loss({"x_unl2": x_unl})
            h.remove()
            gr = torch.autograd.grad(loss, [v[0] for v in gnames.values()])
        with torch.no_grad():
            g_out = G(z)
    ours_step = {
        "d_logits_lab": npy(logits),
        "g_out": npy(g_out),
        "feat_mean_unl": npy(outs[0][1].mean(0)),
        "feat_mean_gen": npy(outs[1][1].mean(0)),
        "loss_gen": npy(loss),
    }
    ours_gg = {f"grad_g_{k}": v[1](npy(t)) for (k, v), t in zip(gnames.items(), gr)}
    # masks per dropout layer: init, then lab (D(x_lab)), unl, gen (the objective's two feature passes)
    for k in range(n_drop):
        inp[f"mask_init_{k}"] = npy(init_masks[f"drop{k}"])
        rec = draws.record[f"drop{k}"]
        assert len(rec) == 3, len(rec)
        for ps, m in zip(("lab", "unl", "gen"), rec):
            inp[f"mask_{ps}_{k}"] = npy(m)
    inp.update({f"pre_{k}": v for k, v in pre.items()})
    inp.update({f"post_{k}": v for k, v in post.items()})
    inp.update(z_init=npy(z_init), x_init=npy(x_init), z=npy(z), x_lab=npy(x_lab), x_unl=npy(x_unl))
    inp["n_train"] = CIFAR10_TRAIN
    _same_instance("cifar-models", dtype, inp, ("post_",))

    compiledir = Path(a.theano_compiledir).expanduser()
    flags = f"device=cpu,floatX={dtype},blas.ldflags=,base_compiledir={compiledir}"
    ref = run_reference(
        a.theano_python,
        "ref_improved_gan_cifar.py",
        ["--improved-gan", a.improved_gan, "--lasagne", a.lasagne],
        inp,
        {"THEANO_FLAGS": flags},
        tmp,
        f"cifar-{dtype}" + ("-eps" if match_eps else ""),
    )
    LAST_OURS[f"cifar-{dtype}" + ("-eps" if match_eps else "")] = {"inp": inp, "ref": ref}

    wn_names = sorted({k[:-2] for k in names if k.endswith("_g")})
    eps = _eps_sizes(post, wn_names)
    eps_note = (
        f"ε/‖V‖² (the weight-norm epsilon's relative size, measured on these weights): up to {eps['d2']:.2g} on "
        f"D's first conv, {max(v for k, v in eps.items() if k.startswith('d') and k != 'd2'):.2g} on its other "
        f"layers, {eps['g5']:.2g} on G's output layer"
    )
    if not match_eps:
        sec.check(
            "Minibatch discrimination: data-dependent init (log scale, bias, output)",
            "nn.py: MinibatchLayer (init=True)",
            "nn.minibatch_discrimination.MinibatchDiscrimination.data_dependent_init_",
            {k: (md_ours["md_init_" + k], ref["md_init_" + k]) for k in ("out", "lws", "b")},
        )
        sec.check(
            "Minibatch discrimination: forward and gradients (θ, log scale, bias, input)",
            "nn.py: MinibatchLayer",
            "nn.minibatch_discrimination.MinibatchDiscrimination",
            {k: (md_ours["md_" + k], ref["md_" + k]) for k in ("out", "grad_theta", "grad_lws", "grad_b", "grad_x")},
        )

        def eff(P, k, e):
            W, gg = P[k + "_W"].astype(np.float64), P[k + "_g"].astype(np.float64)
            return gg / np.sqrt((W**2).sum(axis=_igan_wn_axes(k, W)) + e)

        sec.check(
            "CIFAR-10 data-dependent init: effective scale g/‖V‖ and bias of every weight-normalised layer (D and G)",
            f"{REF_FILE}: init_updates (nn.WeightNormLayer init=True)",
            "nn.weight_norm.data_dependent_init",
            {
                **{
                    f"{k}_scale": (
                        eff(post_plain, k, 0.0),
                        eff({**pre, **{k + "_g": ref[f"init_{k}_g"]}}, k, _IGAN_EPS),
                    )
                    for k in wn_names
                },
                **{f"{k}_b": (post_plain[k + "_b"], ref[f"init_{k}_b"]) for k in wn_names},
            },
        )
        raw = {f"{k}_g": (post_plain[k + "_g"], ref[f"init_{k}_g"]) for k in wn_names}
        size = max(float(np.max(np.abs(o / r - 1))) for o, r in raw.values())
        sec.check(
            "CIFAR-10 weight-norm scale g after init (raw parameter)",
            f"{REF_FILE}: init_updates",
            "nn.weight_norm.data_dependent_init",
            raw,
            deviation=True,
            note="by design (README 'Weight-norm epsilon'): the reference divides by √(‖V‖² + 1e-6), ganworks by "
            "‖V‖, so the same effective weight needs a g larger by √(1 + 1e-6/‖V‖²) on the reference side; "
            f"measured here: the raw g differ by up to {size:.2g} relative ({eps_note}) — the row above shows "
            "the effective weights agree",
        )
    g_note = (
        "the reference's g set to give ganworks' effective weight (see the init rows)"
        if not match_eps
        else "the harness gives every weight-normalised layer of ganworks the reference's g·V/√(‖V‖² + 1e-6)"
    )
    sec.check(
        "CIFAR-10 D forward, dropout masks injected (logits on a labeled batch)",
        f"{REF_FILE}: disc_layers (get_output deterministic=False)",
        "models.improved_gan_cifar.CifarDiscriminator",
        {"d_logits_lab": (ours_step["d_logits_lab"], ref["step_d_logits_lab"])},
        note=g_note,
    )
    sec.check(
        "CIFAR-10 G forward (BN batch statistics)",
        f"{REF_FILE}: gen_dat",
        "models.improved_gan_cifar.CifarGenerator",
        {"g_out": (ours_step["g_out"], ref["step_g_out"])},
    )
    sec.check(
        "CIFAR-10 feature-matching G loss (L1 of the feature means) and the matched means",
        f"{REF_FILE}: loss_gen = mean|m1 − m2|",
        "objectives.SemiSupervisedGAN.g_loss (feature_matching='l1')",
        {k: (ours_step[k], ref["step_" + k]) for k in ("loss_gen", "feat_mean_unl", "feat_mean_gen")},
    )
    ref_gg = {k[5:]: v for k, v in ref.items() if k.startswith("step_grad_g_")}
    if not match_eps:  # d/dg_ours = c · d/dg_ref for the reference's g = c · ganworks' g (same effective weight)
        ref_gg = {k: (v * _wn_factor(post, k[7:-2]) if k.endswith("_g") else v) for k, v in ref_gg.items()}
    eps_dev = sec.wide and not match_eps
    sec.check(
        "CIFAR-10 G gradients of the feature-matching loss w.r.t. every parameter",
        f"{REF_FILE}: T.grad(loss_gen, gen_params)",
        "autograd",
        C.pair_up(ours_gg, ref_gg),
        atol_of_check=True,
        deviation=eps_dev,
        note="G's dense/deconv layers feed a BN: gradients zero by construction are judged against the row's "
        "largest gradient (compare.py); "
        + (
            "the reference's gradient w.r.t. its g is given as ganworks' (× √(‖V‖² + 1e-6)/‖V‖, the chain rule of "
            "the g set above); what differs is the weight-norm epsilon of G's output layer (README 'Weight-norm "
            f"epsilon'): the gradient w.r.t. its V changes by ~ε/‖V‖²; {eps_note}; the "
            "[float64, WN eps matched] row shows the gradients equal once ganworks is given the epsilon"
            if eps_dev
            else g_note
        ),
    )
    return ref


# ---- the learning-rate schedule --------------------------------------------------------------------------------


def _ganworks_lrs() -> tuple[np.ndarray, int]:
    """ganworks' lr at every iteration of the preset's run (the scheduler ``train.build`` gives its optimizers,
    stepped as ``train_iteration`` steps it: once after each iteration), and the iterations per epoch."""
    if "lrs" not in _LR_CACHE:
        from ganworks.config import resolve
        from ganworks.models import build_model
        from ganworks.train.build import build_objective, run_length
        from ganworks.train.optim import build_optimizer, build_scheduler

        cfg = resolve(PRESET, [])
        G = build_model(**cfg["model"]["generator"])
        D = build_model(**cfg["model"]["discriminator"])
        objective = build_objective(cfg, G, D)
        # ganworks' SemiSupervisedStream: batches_per_epoch = len(unlabeled images) // batch_size
        stream = types.SimpleNamespace(batches_per_epoch=CIFAR10_TRAIN // cfg["data"]["batch_size"])
        per_epoch, total = run_length(cfg, stream, objective)
        p = torch.nn.Parameter(torch.zeros(1))
        opt = build_optimizer([p], cfg["optim"], cfg["optim"]["lr"])
        sched = build_scheduler(opt, cfg["optim"], total)
        lrs = np.empty(total)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scheduler.step() without optimizer.step(): nothing to train here
            for it in range(total):
                lrs[it] = opt.param_groups[0]["lr"]
                sched.step()
        _LR_CACHE.update(lrs=lrs, per_epoch=per_epoch, optim=cfg["optim"])
    return _LR_CACHE["lrs"], _LR_CACHE["per_epoch"]


def _lr_schedule(sec: H.Section, ref: dict) -> None:
    """ganworks' lr at every iteration against the script's lr line, which ``ref`` (the reference run of
    ``ref_improved_gan_cifar.py``) evaluated at every epoch of the script's loop."""
    ours, per_epoch = _ganworks_lrs()
    ref_epoch = ref["lr_epoch"]
    n_epochs, ref_per_epoch = len(ref_epoch), int(ref["nr_batches_train"])
    assert per_epoch == ref_per_epoch, (per_epoch, ref_per_epoch)
    lr_line = str(ref["lr_line"])
    sec.check(
        f"CIFAR-10 learning rate at the first iteration of each of the script's {n_epochs} epochs",
        f"{REF_FILE}: `{lr_line}` (evaluated by the reference run at every epoch)",
        f"train.optim.build_scheduler ({PRESET}: optim.decay, decay_start, decay_end), stepped once per iteration",
        {"lr_epoch_start": (ours[: n_epochs * per_epoch : per_epoch], ref_epoch)},
        note=f"{per_epoch} iterations per epoch on both sides (CIFAR-10's {CIFAR10_TRAIN} training images, batch "
        f"{CIFAR10_TRAIN // per_epoch}); ganworks' lr at iteration e·{per_epoch} against the script's at epoch e",
    )
    ref_it = np.repeat(ref_epoch, per_epoch)
    ok = len(ours) == len(ref_it)
    if ok:
        d = np.abs(ours - ref_it.astype(np.float64))
        worst = int(np.argmax(d))
        start = int(np.argmax(ours < ours[0]))  # ganworks' first lowered lr
        o = _LR_CACHE["optim"]
        note = (
            f"measured: the schedules agree to {float(np.max(d[:start])):.2g} before iteration {start} and at the "
            f"first iteration of every epoch (row above); from there the script keeps each epoch's lr for the "
            f"epoch's {per_epoch} iterations (it sets lr once per epoch) while ganworks' LambdaLR (optim.decay="
            f"'{o['decay']}', decay_start {o['decay_start']}, decay_end {o['decay_end']}) lowers it every iteration: the largest "
            f"difference is {float(d[worst]):.3g} ({float(d[worst] / ref_it[worst]):.3g} of the script's lr there) "
            f"at iteration {worst}, the last of epoch {worst // per_epoch}; summed over the decay ganworks' lr is "
            f"{float(1 - ours[start:].sum() / ref_it[start:].astype(np.float64).sum()):.3g} below the script's. "
            "Documented deviation (docs/fidelity.md): ganworks' linear decay is stepped per iteration, so a run "
            "resumed or stopped mid-epoch has the same lr as an uninterrupted one"
        )
    else:
        note = f"ganworks' run has {len(ours)} iterations, the script {len(ref_it)}"
    sec.check(
        f"CIFAR-10 learning rate at every iteration ({n_epochs} epochs × {per_epoch})",
        f"{REF_FILE}: `{lr_line}` once per epoch, held for the epoch's {per_epoch} train_batch_disc/gen calls",
        f"train.optim.build_scheduler ({PRESET}), stepped by train.loop.train_iteration after each iteration",
        {"lr_iteration": (ours, ref_it)},
        note=note,
        deviation=ok,
    )


# ---- one whole training iteration ------------------------------------------------------------------------------


def _whole_iteration(a, tmp: Path, dtype: str, sec: H.Section, match_eps: bool) -> None:
    """One train_iteration of ganworks on an experiment built from the preset against the script's
    train_batch_disc then train_batch_gen, from identical weights, batches and draws."""
    from ganworks.config import resolve
    from ganworks.models import build_model
    from ganworks.nn.weight_norm import data_dependent_init
    from ganworks.train.averaging import EMA
    from ganworks.train.build import build_objective, build_optimizers, run_length
    from ganworks.train.loop import train_iteration

    tdt = torch.float64 if dtype == "float64" else torch.float32
    torch.manual_seed(3)
    n = 8
    cfg = resolve(PRESET, [])
    G = build_model(**cfg["model"]["generator"]).train().to(tdt)
    D = build_model(**cfg["model"]["discriminator"]).train().to(tdt)
    names = _igan_conv_params(G, D)
    trainable = {k: v for k, v in names.items() if v[0].requires_grad}
    draws = Draws()
    orig_sample_z = G.sample_z
    G.sample_z = lambda m, device=None: draws.draw("z", lambda: orig_sample_z(m, device=device).to(tdt))
    with _dropout_draws(D, draws) as n_drop:
        data_dependent_init(G, G.sample_z(n))
        data_dependent_init(D, (torch.rand(16, 3, 32, 32) * 2 - 1).to(tdt))
        draws.record.clear()
        if match_eps:
            _igan_match_eps(G, D)
        post = _igan_conv_layout(G, D, eps_adjust=not match_eps)
        x_lab, x_unl, x_unl2 = ((torch.rand(n, 3, 32, 32) * 2 - 1).to(tdt) for _ in range(3))
        y_lab = torch.randint(0, 10, (n,))
        batch = {"x_lab": x_lab, "y_lab": y_lab, "x_unl": x_unl, "x_unl2": x_unl2}

        objective = build_objective(cfg, G, D)
        stream = types.SimpleNamespace(batches_per_epoch=CIFAR10_TRAIN // cfg["data"]["batch_size"])
        _, total = run_length(cfg, stream, objective)
        params, optimizers, schedulers = build_optimizers(cfg, G, D, torch.device("cpu"), total)
        after, moments = {}, {}

        class Snapshot:
            """the optimizer ``train.build`` made, recording the parameters and Adam's moments after each step"""

            def __init__(self, role, opt):
                self.role, self.opt, self.k = role, opt, 0

            def zero_grad(self, **kw):
                self.opt.zero_grad(**kw)

            def step(self):
                self.opt.step()
                key = "d" if self.role == "d" else f"g{self.k}"
                mine = {k: v for k, v in trainable.items() if k[0] == self.role}
                after[key] = {k: v[1](npy(v[0])) for k, v in mine.items()}
                st = {k: self.opt.state[v[0]] for k, v in mine.items()}
                moments[key] = {
                    **{f"m_{k}": mine[k][1](npy(s["exp_avg"])) for k, s in st.items()},
                    **{f"v_{k}": mine[k][1](npy(s["exp_avg_sq"])) for k, s in st.items()},
                    "t": np.asarray([float(s["step"]) for s in st.values()]),
                }
                self.k += 1

        ema = {"d": EMA(D, cfg["train"]["ema_d"])}
        exp = types.SimpleNamespace(
            position={"epoch": 0, "index": 0, "iteration": 0},
            G=G,
            D=D,
            stream=types.SimpleNamespace(batch=lambda epoch, index: batch, batches_per_epoch=stream.batches_per_epoch),
            objective=objective,
            params=params,
            phase_context=lambda phase: contextlib.nullcontext(),
            optimizers={k: Snapshot(k, o) for k, o in optimizers.items()},
            ema=ema,
            schedulers=schedulers,
            phase_loss=None,
        )
        logs = train_iteration(exp)
        d_final = {k: v[1](npy(v[0])) for k, v in trainable.items() if k[0] == "d"}
    assert [ph for ph, _ in logs] == ["d", "g"], logs
    lr = cfg["optim"]["lr"]
    inp = {
        "n": n,
        "g_steps": 1,
        "lr": lr,
        "x_lab": npy(x_lab),
        "y_lab": y_lab.numpy().astype(np.int32),
        "x_unl": npy(x_unl),
        "x_unl2": npy(x_unl2),
    }
    z = draws.record["z"]
    assert len(z) == 2, len(z)
    inp["z_d"], inp["z_g0"] = npy(z[0]), npy(z[1])
    for k in range(n_drop):
        rec = draws.record[f"drop{k}"]
        assert len(rec) == 5, len(rec)  # the D step's lab, unl, gen passes; the G step's two feature passes
        for ps, m in zip(("lab", "unl", "gen"), rec[:3]):
            inp[f"dpass_{ps}_{k}"] = npy(m)
        for ps, m in zip(("fmunl", "fmgen"), rec[3:]):
            inp[f"gpass0_{ps}_{k}"] = npy(m)
    inp.update({f"post_{k}": v for k, v in post.items()})
    _same_instance("cifar-iteration", dtype, inp, ("post_",))
    ref = _igan_theano(a, SCRIPT, "step", inp, dtype, tmp, f"cifar-fm-step-{dtype}" + ("-eps" if match_eps else ""))
    LAST_OURS[f"cifar-fm-step-{dtype}" + ("-eps" if match_eps else "")] = {
        "after": after,
        "moments": moments,
        "inp": inp,
        "ref": ref,
    }

    what = "CIFAR-10 FM whole iteration"

    def ref_after(prefix):
        P = {k[len(prefix) :]: v for k, v in ref.items() if k.startswith(prefix)}
        if match_eps:
            return P
        return {k: (_igan_ref_g_as_ours(P, k[:-2]) if k.endswith("_g") else v) for k, v in P.items()}

    def ref_moments(prefix):
        """the reference's Adam moments (its v is m, its mg is v) as ganworks' for its g (see _wn_factor)"""
        P = {k[len(prefix) :]: v for k, v in ref.items() if k.startswith(prefix) and not k.endswith("_t")}
        if not match_eps:
            for k in list(P):
                if k.endswith("_g"):
                    c = _wn_factor(post, k[2:-2])  # the gradient was taken at the weights before the step
                    P[k] = P[k] * (c if k.startswith("m_") else c**2)
        P["t"] = np.full(len(P) // 2, float(ref[prefix + "t"]) - 1.0)  # its t starts at 1 and counts ahead
        return P

    eps_dev = sec.wide and not match_eps
    wn_names = sorted({k[:-2] for k in names if k.endswith("_g")})
    eps = _eps_sizes(post, wn_names)
    if match_eps:
        note_g = (
            "the harness gives every weight-normalised layer of ganworks the reference's formula "
            "g·V/√(‖V‖² + 1e-6), to show that nothing else differs"
        )
    else:
        note_g = (
            "weight-norm scales g (and their Adam moments) are compared as ganworks' g of the same effective "
            "weight: the reference's g·‖V‖/√(‖V‖² + 1e-6) (moments × √(‖V‖² + 1e-6)/‖V‖, its square for v)"
        )
    if eps_dev:
        note_g += (
            "; what differs is the weight-norm epsilon (README 'Weight-norm epsilon'): it changes the gradients "
            f"w.r.t. V by ~ε/‖V‖² (measured here: up to {eps['d2']:.2g} on D's first conv, {eps['g5']:.2g} on G's "
            "output layer), which Adam's first step g/√(g² + 1e-8) turns into larger relative changes of entries "
            "with gradients near 1e-4; the G step then runs through D after that update, so every G gradient "
            "carries the difference; the [float64, WN eps matched] rows show the same iteration equal once "
            "ganworks is given the epsilon"
        )
    d_logs = logs[0][1]
    sec.check(
        f"{what}: D step losses and training error",
        f"{REF_FILE}: train_batch_disc outputs loss_lab, loss_unl, train_err",
        "train.loop.train_iteration",
        {
            "loss_lab": (npy(d_logs["loss_lab"]), ref["dstep_loss_lab"]),
            "loss_unl": (npy(d_logs["loss_unl"]), ref["dstep_loss_unl"]),
            "train_err": (npy(d_logs["train_error"]), ref["dstep_train_err"]),
        },
    )
    sec.check(
        f"{what}: every D parameter after the D update (semi-supervised loss, Adam with ε inside √, β1 0.5)",
        f"{REF_FILE}: train_batch_disc (nn.adam_updates)",
        f"train.loop.train_iteration + train.build.build_optimizers ({PRESET}: train.optim.AdamEpsInsideSqrt)",
        C.pair_up(after["d"], ref_after("after_d_")),
        note=note_g,
        deviation=eps_dev,
    )
    sec.check(
        f"{what}: Adam's moments m, v and step count of every D parameter after the D update",
        f"{REF_FILE}: nn.adam_updates (shared v, mg, t of disc_param_updates)",
        "train.optim.AdamEpsInsideSqrt state (exp_avg, exp_avg_sq, step)",
        C.pair_up(moments["d"], ref_moments("adam_d_")),
        deviation=eps_dev,
        note=""
        if not eps_dev
        else "the moments hold the gradients, which differ by the weight-norm epsilon (see the D parameter row)",
    )
    sec.check(
        f"{what}: every G parameter after the G update (feature-matching loss on x_unl2, fresh z and D dropout)",
        f"{REF_FILE}: train_batch_gen (nn.adam_updates)",
        "train.loop.train_iteration + objectives.SemiSupervisedGAN.g_loss (feature_matching='l1')",
        C.pair_up(after["g0"], ref_after("after_g0_")),
        note=note_g,
        deviation=eps_dev,
    )
    sec.check(
        f"{what}: Adam's moments m, v and step count of every G parameter after the G update",
        f"{REF_FILE}: nn.adam_updates (shared v, mg, t of gen_param_updates)",
        "train.optim.AdamEpsInsideSqrt state (exp_avg, exp_avg_sq, step)",
        C.pair_up(moments["g0"], ref_moments("adam_g0_")),
        deviation=eps_dev,
        note=""
        if not eps_dev
        else "the moments of g5_W hold its gradient, which differs by the weight-norm "
        "epsilon (see the D parameter row)",
    )
    sec.check(
        f"{what}: D parameters after the G update (the G step leaves D alone)",
        f"{REF_FILE}: train_batch_gen (updates gen_params only)",
        "train.loop.train_iteration (D frozen during the G phase)",
        C.pair_up(d_final, ref_after("after_gsteps_")),
        note=note_g,
        deviation=eps_dev,
    )
    beta = cfg["train"]["ema_d"]
    d_keys = [k for k in post if "avg_" + k in ref]  # the script averages its trainable D parameters
    assert d_keys and len(d_keys) == sum(k.startswith("avg_") for k in ref), d_keys
    assert set(d_keys) == {k for k in trainable if k[0] == "d"}, d_keys
    form = ema_reference_form([{k: np.asarray(post[k]) for k in d_keys}], beta)[0]
    sec.check(
        f"{what}: averaged D after the D update, as the reference keeps it: ganworks' EMA fed the parameters before "
        "the step, × (1 − 0.9999)",
        f"{REF_FILE}: disc_param_avg, disc_avg_updates",
        "train.averaging.EMA (sec_averaging.ema_reference_form) on ganworks' initial D parameters",
        {k: (form[k], ref["avg_" + k]) for k in d_keys},
        note="the script's average starts at 0 and is a ← a + 0.0001 (p − a), with p the parameters before the D "
        "step (Theano applies train_batch_disc's updates at once); ganworks' average differs from it by design "
        "(bias-corrected, after the step: README 'Deliberate deviations', the cifar-md rows measure it)",
    )
