"""Section ``averaging``: ganworks' weight averages run through several updates, against NumPy
transcriptions of the reference scripts' updates (``np_baselines.py``).

* ``train.averaging.EMA`` of D (β = 0.9999) vs improved-gan's test-time average ``disc_avg_updates``
  (``train_mnist_feature_matching.py`` and the CIFAR-10/SVHN scripts: a starts at 0, a ← a + 0.0001 (p − a)
  after every D step): ganworks' bias-corrected average against the reference's divided by
  (1 − 0.9999^t), and ganworks' average in the reference's own form (× (1 − 0.9999^t), the function
  ``ema_reference_form`` that the ``mnist`` and ``cifar-md`` rows use for their averaged-D rows). The
  Theano sections compare the reference's own ``disc_param_avg`` with that form; this section closes the
  chain from ganworks' module to the transcription without the Theano environment.
* ``train.averaging.EMA`` of G (β = 0.999) vs chainer-gan-lib's smoothed generator (``progressive/train.py``:
  ``copy_param(generator_smooth, generator)`` once, then ``progressive/updater.py`` calls
  ``common/misc.py`` ``soft_copy_param(gs, gen, 1 − 0.999)`` after every G step; the only EMA in
  chainer-gan-lib and sngan_projection, neither of which averages the SN-GAN models). Two documented
  differences, each measured in a deviation row: the reference's average keeps the starting copy with
  weight β^t, ganworks' (bias-corrected) does not; the reference averages BN's running statistics,
  ganworks copies them. With the first difference put back (β^t p_0 + (1 − β^t) â_t) the parameters must
  agree.
* historical averaging (``regularizers.HistoricalAverage`` through ``objectives.GAN(historical_averaging=λ)``:
  the penalty in ``Objective.loss``, the average's update in ``Objective.after_step``) for D and G over
  several steps: θ̄, the penalty λ‖θ − θ̄‖² and its gradient. No reference code: improved-gan's released
  code never implements historical averaging (docs/papers.md §A.5); the NumPy side is the paper's formula.

Between updates the harness moves every parameter (and G's BN running statistics) by a random step, in
place of an optimizer. Float32 and float64 runs of the same instance: float64 to 1e-10, float32 by the
measured rounding noise (``compare.check_measured``).
"""

from __future__ import annotations

from pathlib import Path

import compare as C
import np_baselines as NB
import numpy as np
import torch
from harness import Section, seed_all
from torch import nn

UPDATES = 5
BETA_D = 0.9999  # improved-gan's disc_avg_updates rate 0.0001; ganworks' improved-gan presets ema_d
SMOOTHING = 0.999  # chainer-gan-lib progressive/train.py --generator_smoothing default
LAMBDA = 0.5  # historical-averaging weight (not 1, so that the weight is exercised)
WIDTH = 1 / 16
BATCH = 4

REF_IGAN = (
    "improved-gan mnist_svhn_cifar10/train_*_feature_matching.py: disc_param_avg, disc_avg_updates "
    "(NumPy transcription)"
)
REF_CGL = (
    "chainer-gan-lib progressive/train.py: copy_param, progressive/updater.py + common/misc.py: "
    "soft_copy_param(gs, gen, 1 − 0.999) (NumPy transcription)"
)
REF_HA = (
    "no reference code (improved-gan never implements historical averaging): NumPy of Improved-GAN §3.3's "
    "λ‖θ − (1/t)Σθ_i‖²"
)


class _Arrays(nn.Module):
    """A module whose parameters are given arrays (in sorted key order), for running ganworks' EMA over
    arrays kept in another layout (the reference's)."""

    def __init__(self, arrays: dict) -> None:
        super().__init__()
        self.keys = sorted(arrays)
        self.values = nn.ParameterList(
            [nn.Parameter(torch.from_numpy(np.array(arrays[k])), requires_grad=False) for k in self.keys]
        )

    @torch.no_grad()
    def load(self, arrays: dict) -> None:
        for k, p in zip(self.keys, self.values):
            p.copy_(torch.from_numpy(np.asarray(arrays[k])))

    def arrays(self) -> dict:
        return {k: p.detach().numpy().copy() for k, p in zip(self.keys, self.values)}


def ema_reference_form(snapshots: list[dict], decay: float) -> list[dict]:
    """ganworks' ``train.averaging.EMA`` run over ``snapshots`` (dicts of arrays, one per update, in any
    layout), returned after each update t in improved-gan's form: the bias-corrected average × (1 − decay^t),
    which is the reference's a_t (started at 0, a ← a + (1 − decay)(p − a)) when the EMA is given the same p."""
    from ganworks.train.averaging import EMA

    holder = _Arrays(snapshots[0])
    ema = EMA(holder, decay)
    out = []
    for t, snap in enumerate(snapshots, start=1):
        holder.load(snap)
        ema.update(holder)
        avg = dict(zip(holder.keys, (p.detach().numpy().copy() for p in ema.model.values)))
        out.append({k: v * v.dtype.type(1.0 - decay**t) for k, v in avg.items()})
    return out


def _trainable(model) -> dict:
    return {n: p.detach().numpy().copy() for n, p in model.named_parameters() if p.requires_grad}


@torch.no_grad()
def _step(model, rs, f32, buffers: bool = False) -> None:
    """Stand-in for an optimizer step: every trainable parameter moves by N(0, 0.05²) (float32 draws);
    with ``buffers``, BN running means move by N(0, 0.05²) and running variances are scaled by U(0.9, 1.1)."""
    for n, p in sorted(model.named_parameters()):
        if p.requires_grad:
            p.add_(torch.from_numpy(f32(rs.randn(*p.shape) * 0.05)))
    if buffers:
        for n, b in sorted(model.named_buffers()):
            if n.endswith("running_mean"):
                b.add_(torch.from_numpy(f32(rs.randn(*b.shape) * 0.05)))
            elif n.endswith("running_var"):
                b.mul_(torch.from_numpy(f32(rs.uniform(0.9, 1.1, b.shape))))


def _instance(dtype: str, rs_state) -> dict:
    from ganworks.models import build_model
    from ganworks.objectives.gan import GAN
    from ganworks.train.averaging import EMA

    rs = np.random.RandomState()
    rs.set_state(rs_state)
    np_dt = np.dtype(dtype).type
    tdt = torch.float64 if dtype == "float64" else torch.float32
    f32 = lambda x: np.asarray(x).astype(np.float32).astype(np_dt)  # noqa: E731
    ours, ref = {}, {}
    torch.manual_seed(0)

    def fill(model):
        with torch.no_grad():
            for n, p in sorted(model.named_parameters()):
                if p.requires_grad:
                    p.copy_(torch.from_numpy(f32(rs.randn(*p.shape) * 0.1)))

    # ---- EMA of D vs improved-gan's disc_avg_updates ----
    D = build_model("improved-gan-mnist-d", width=0.05).to(tdt)
    fill(D)
    ema = EMA(D, BETA_D)
    snaps = []
    for t in range(1, UPDATES + 1):
        _step(D, rs, f32)
        ema.update(D)
        snaps.append(_trainable(D))
        avg = dict(ema.model.named_parameters())
        ours.update({f"igan/it{t}/{k}": avg[k].detach().numpy().copy() for k in snaps[-1]})
    for t, a in enumerate(NB.improved_gan_average(snaps, 0.0001), start=1):
        ref.update({f"igan/it{t}/{k}": v / v.dtype.type(1.0 - BETA_D**t) for k, v in a.items()})
        ref.update({f"igan_raw/it{t}/{k}": v for k, v in a.items()})
    for t, a in enumerate(ema_reference_form(snaps, BETA_D), start=1):
        ours.update({f"igan_raw/it{t}/{k}": v for k, v in a.items()})

    # ---- EMA of G vs chainer-gan-lib's soft_copy_param ----
    G = build_model("sngan-cnn-g", layout="chainer", width=WIDTH).to(tdt)
    fill(G)
    _step(G, rs, f32, buffers=True)  # BN statistics away from 0 / 1
    start = {**_trainable(G), **{n: b.numpy().copy() for n, b in G.named_buffers() if n.endswith(("_mean", "_var"))}}
    ema = EMA(G, SMOOTHING)
    gsnaps = []
    for t in range(1, UPDATES + 1):
        _step(G, rs, f32, buffers=True)
        ema.update(G)
        gsnaps.append({**_trainable(G), **{n: b.numpy().copy() for n, b in G.named_buffers() if n in start}})
        state = {**dict(ema.model.named_parameters()), **dict(ema.model.named_buffers())}
        for k in start:
            v = state[k].detach().numpy().copy()
            if k.endswith(("_mean", "_var")):
                ours[f"cgl_bn/it{t}/{k}"] = v
            else:
                ours[f"cgl_raw/it{t}/{k}"] = v
                w = v.dtype.type(SMOOTHING**t)
                ours[f"cgl/it{t}/{k}"] = w * start[k] + (1 - w) * v
    for t, gs in enumerate(NB.soft_copy_average(start, gsnaps, SMOOTHING), start=1):
        for k, v in gs.items():
            if k.endswith(("_mean", "_var")):
                ref[f"cgl_bn/it{t}/{k}"] = v
            else:
                ref[f"cgl/it{t}/{k}"] = ref[f"cgl_raw/it{t}/{k}"] = v

    # ---- historical averaging through the GAN objective ----
    G = build_model("sngan-cnn-g", layout="chainer", width=WIDTH).to(tdt).train()
    D = build_model("sngan-cnn-d", layout="chainer", width=WIDTH, norm="batch").to(tdt).train()  # fixed BN gains
    fill(G)
    fill(D)
    obj = GAN(G, D, loss="nonsaturating", historical_averaging=LAMBDA)
    obj.batch_size = BATCH
    default = torch.get_default_dtype()
    torch.set_default_dtype(tdt)  # G.sample_z draws in the default dtype
    try:
        _historical(obj, G, D, rs, f32, ours, ref)
    finally:
        torch.set_default_dtype(default)
    return {
        "ours": {k: np.asarray(v, dtype=np_dt) for k, v in ours.items()},
        "ref": {k: np.asarray(v, dtype=np_dt) for k, v in ref.items()},
    }


def _historical(obj, G, D, rs, f32, ours: dict, ref: dict) -> None:
    """Historical averaging of D and G through the objective: the penalty, its gradient and θ̄ at each step."""
    for phase, model in (("d", D), ("g", G)):
        snaps = []
        for t in range(1, UPDATES + 1):
            batch = {"x": torch.from_numpy(f32(rs.uniform(-1, 1, (BATCH, 3, 32, 32))))} if phase == "d" else None
            snaps.append(_trainable(model))
            _, logs = obj.loss(phase, batch)
            pen = logs[f"historical_penalty_{phase}"]
            params = {n: p for n, p in model.named_parameters() if p.requires_grad}
            grads = torch.autograd.grad(pen, list(params.values()))
            ours[f"ha_{phase}/it{t}/penalty"] = pen.detach().numpy()
            ours.update({f"ha_{phase}/it{t}/grad/{n}": g.numpy() for n, g in zip(params, grads)})
            ours.update(
                {f"ha_{phase}/it{t}/avg/{n}": v.numpy().copy() for n, v in obj.historical[phase].average.items()}
            )
            _step(model, rs, f32)
            obj.after_step(phase)
        for t, e in enumerate(NB.historical_average(snaps, LAMBDA), start=1):
            ref.update({f"ha_{phase}/it{t}/{k}": v for k, v in e.items()})


NOTE_IGAN = (
    "float64 differences of ~4e-13 relative: ganworks' weight (1 − β)/(1 − β^t) takes 1 − β from β = 0.9999 "
    "in binary (1.0000000000287557e-4, 2.9e-13 relative from the reference's literal 0.0001), and 1 − β^t "
    "loses about four digits to cancellation"
)


def rows() -> list[dict]:
    return [
        dict(
            prefix="igan/",
            ref=REF_IGAN,
            ours="train.averaging.EMA (decay 0.9999)",
            title=f"EMA of D (improved-gan-mnist-d), {UPDATES} updates: ganworks' bias-corrected average vs the "
            "reference's a ← a + 0.0001 (p − a) from 0, divided by (1 − 0.9999^t)",
            note=NOTE_IGAN,
        ),
        dict(
            prefix="igan_raw/",
            ref=REF_IGAN,
            ours="train.averaging.EMA × (1 − 0.9999^t) (sec_averaging.ema_reference_form)",
            title=f"EMA of D, {UPDATES} updates, in the reference's form: ganworks' average × (1 − 0.9999^t) vs "
            "a ← a + 0.0001 (p − a) from 0 (the form the mnist and cifar-md averaged-D rows now take)",
            note=NOTE_IGAN,
        ),
        dict(
            prefix="cgl/",
            ref=REF_CGL,
            ours="train.averaging.EMA (decay 0.999), recombined β^t p_0 + (1 − β^t) â_t",
            title=f"EMA of G (sngan-cnn-g, chainer layout), {UPDATES} updates: every parameter of ganworks' average with "
            "the starting copy's weight β^t put back, vs chainer-gan-lib's smoothed generator",
        ),
        dict(
            prefix="cgl_raw/",
            ref=REF_CGL,
            ours="train.averaging.EMA (decay 0.999)",
            deviation=True,
            title=f"EMA of G, {UPDATES} updates: ganworks' average as it is vs chainer-gan-lib's smoothed generator",
            note="by design (train/averaging.py): ganworks' average is bias-corrected and starts from the first "
            "update (w_1 = 1), chainer-gan-lib's starts as a copy of G and keeps it with weight 0.999^t; "
            "reference − ganworks = 0.999^t (p_0 − â_t), which fades over a few thousand G steps (after "
            "5 updates, as here, the reference's average is still 99.5 % the starting copy)",
        ),
        dict(
            prefix="cgl_bn/",
            ref=REF_CGL,
            ours="train.averaging.EMA (buffers copied)",
            deviation=True,
            title=f"EMA of G, {UPDATES} updates: BN running statistics of the averaged G",
            note="by design (train/averaging.py): ganworks copies the buffers (BN statistics) of the trained G, "
            "chainer-gan-lib's soft_copy_param averages avg_mean and avg_var like the parameters",
        ),
        dict(
            prefix="ha_d/",
            ref=REF_HA,
            ours="objectives.GAN(historical_averaging=0.5): Objective.loss + "
            "after_step → regularizers.HistoricalAverage",
            title=f"historical averaging of D (BN D, fixed gains left out), {UPDATES} steps: θ̄, λ‖θ − θ̄‖² and its "
            "gradient at each step",
        ),
        dict(
            prefix="ha_g/",
            ref=REF_HA,
            ours="objectives.GAN(historical_averaging=0.5): Objective.loss + "
            "after_step → regularizers.HistoricalAverage",
            title=f"historical averaging of G, {UPDATES} steps: θ̄, λ‖θ − θ̄‖² and its gradient at each step",
        ),
    ]


def section(a, tmp: Path) -> list[C.Check]:
    rs_state = seed_all(0).get_state()
    return checks_of({dt: _instance(dt, rs_state) for dt in ("float64", "float32")})


def checks_of(runs: dict) -> list[C.Check]:
    secs = {dt: Section("averaging", dt) for dt in runs}
    o64, r64 = runs["float64"]["ours"], runs["float64"]["ref"]
    o32, r32 = runs["float32"]["ours"], runs["float32"]["ref"]
    for r in rows():
        keys = sorted(k for k in r64 if k.startswith(r["prefix"]))
        dev, note = r.get("deviation", False), r.get("note", "")
        secs["float64"].check(
            r["title"],
            r["ref"],
            r["ours"],
            C.pair_up({k: o64[k] for k in keys}, {k: r64[k] for k in keys}),
            rtol=C.RTOL_FLOAT64,
            deviation=dev,
            note=note,
        )
        secs["float32"].checks.append(
            C.check_measured(
                r["title"],
                r["ref"],
                r["ours"],
                {k: (o32[k], r32[k], o64[k], r64[k]) for k in keys},
                deviation=dev,
                note=note,
                section=secs["float32"].name,
            )
        )
    return secs["float64"].checks + secs["float32"].checks
