"""Section ``bn-dcgan``: the SN paper's batch-norm baseline D, ganworks' ``sngan-cnn-d`` with
``norm="batch"`` (``layout="chainer"``) vs chainer-gan-lib's ``common/net.py`` ``DCGANDiscriminator``
(BN without γ after convs 2-7) run by ``ref_dcgan_bn.py`` in the Chainer environment, on identical
weights, running statistics and inputs: training-mode logits, the gradients of Σ r_i·D(x)_i w.r.t. every
parameter and the input, the running statistics after the forward, and eval-mode logits.

The one Table 2 baseline besides WGAN-GP that has reference code; ``sn-baselines`` compares the same D
with the NumPy formula. Width 1/16 (chainer-gan-lib's ``ch`` = 32), batch 4, 32×32. Float32 and float64
runs of the same instance: float64 to 1e-10, float32 by the measured rounding noise.
"""

from __future__ import annotations

from pathlib import Path

import compare as C
import numpy as np
import torch
from harness import Section, run_reference, seed_all
from sec_sn_baselines import BATCH, WIDTH, _d_names, _fill

CONVS = ["c0_0", "c0_1", "c1_0", "c1_1", "c2_0", "c2_1", "c3_0"]
BNS = [None, "bn0_1", "bn1_0", "bn1_1", "bn2_0", "bn2_1", "bn3_0"]


def chainer_name(ours: str) -> str:
    """A NumPy-side name of ``sec_sn_baselines._d_names`` as chainer-gan-lib's link path."""
    layer, leaf = ours.split(".")
    if layer == "out":
        return f"/l4/{leaf}"
    i = int(layer[4:])
    if layer.startswith("conv"):
        return f"/{CONVS[i]}/{leaf}"
    return f"/{BNS[i]}/" + {"beta": "beta", "mean": "avg_mean", "var": "avg_var"}[leaf]


def _instance(dtype: str, rs_state) -> tuple[dict, dict]:
    from ganworks.models import build_model

    rs = np.random.RandomState()
    rs.set_state(rs_state)
    np_dt = np.dtype(dtype).type
    tdt = torch.float64 if dtype == "float64" else torch.float32
    f32 = lambda x: np.asarray(x).astype(np.float32).astype(np_dt)  # noqa: E731
    x, x2, r = (
        f32(rs.uniform(-1, 1, (BATCH, 3, 32, 32))),
        f32(rs.uniform(-1, 1, (BATCH, 3, 32, 32))),
        f32(rs.randn(BATCH)),
    )
    torch.manual_seed(0)
    D = build_model("sngan-cnn-d", layout="chainer", width=WIDTH, norm="batch").to(tdt).train()
    names = _d_names(D)
    _fill(D, rs, f32, names)
    state = {**dict(D.named_parameters()), **dict(D.named_buffers())}
    inp = {"dtype": dtype, "ch": int(round(512 * WIDTH)), "bottom_width": 4, "x": x, "x2": x2, "r": r}
    for n, nn_name in names.items():
        if nn_name.endswith(".gain"):
            continue  # γ removed: fixed at 1 in ganworks, absent in chainer-gan-lib
        key = chainer_name(nn_name)
        inp[("run" if nn_name.endswith((".mean", ".var")) else "D") + key] = state[n].detach().numpy().astype(np_dt)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    logits = D(xt)
    trainable = {n: p for n, p in D.named_parameters() if p.requires_grad}
    grads = torch.autograd.grad((torch.from_numpy(r) * logits).sum(), [xt, *trainable.values()])
    ours = {"logits": logits.detach().numpy(), "grad/x": grads[0].numpy()}
    ours.update({"grad" + chainer_name(names[n]): g.numpy() for n, g in zip(trainable, grads[1:])})
    bufs = dict(D.named_buffers())
    ours.update({"run" + chainer_name(names[n]): b.numpy().copy() for n, b in bufs.items() if n in names})
    with torch.no_grad():
        ours["eval_logits"] = D.eval()(torch.from_numpy(x2)).numpy()
    return inp, {k: np.asarray(v, dtype=np_dt) for k, v in ours.items()}


def section(a, tmp: Path) -> list[C.Check]:
    rs_state = seed_all(0).get_state()
    runs = {}
    for dt in ("float64", "float32"):
        inp, ours = _instance(dt, rs_state)
        ref = run_reference(
            a.chainer_python,
            "ref_dcgan_bn.py",
            ["--chainer-gan-lib", a.chainer_gan_lib],
            inp,
            {},
            tmp,
            "bn-dcgan-" + dt,
        )
        runs[dt] = (ours, ref)
    secs = {dt: Section("bn-dcgan", dt) for dt in runs}
    ref_fn = "chainer-gan-lib common/net.py: DCGANDiscriminator (L.BatchNormalization use_gamma=False)"
    ours_fn = "models.sngan_cnn CNNDiscriminator(norm='batch', layout='chainer')"
    keys = sorted(runs["float64"][1])
    grads = [k for k in keys if k.startswith("grad")]
    bn_fed = [k for k in grads if k.startswith("grad/c") and k.endswith("/b") and not k.startswith("grad/c0_0")]
    groups = [
        (
            "SN Table 2 batch-norm D (training mode): logits and BN running statistics after the forward",
            ours_fn,
            ["logits"] + [k for k in keys if k.startswith("run")],
            False,
            "",
        ),
        (
            "SN Table 2 batch-norm D (training mode): gradients of Σ r·D(x) w.r.t. every parameter and x",
            ours_fn + " + autograd",
            grads,
            True,
            f"{len(bn_fed)} conv biases feed a BN: exact gradient 0, rounding noise on both sides, judged in float64 "
            "against the row's largest gradient (+atol)",
        ),
        ("SN Table 2 batch-norm D: eval-mode logits on the running statistics", ours_fn, ["eval_logits"], False, ""),
    ]
    o64, r64 = runs["float64"]
    o32, r32 = runs["float32"]
    for title, ours_name, ks, atol_of_check, note in groups:
        secs["float64"].check(
            title,
            ref_fn,
            ours_name,
            C.pair_up({k: o64[k] for k in ks}, {k: r64[k] for k in ks}),
            rtol=C.RTOL_FLOAT64,
            atol_of_check=atol_of_check,
            note=note,
        )
        secs["float32"].checks.append(
            C.check_measured(
                title,
                ref_fn,
                ours_name,
                {k: (o32[k], r32[k], o64[k], r64[k]) for k in ks},
                note=note,
                section=secs["float32"].name,
            )
        )
    return secs["float64"].checks + secs["float32"].checks
