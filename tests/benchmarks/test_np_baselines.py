"""The NumPy baselines of benchmarks/reference_equivalence (np_baselines.py) against finite differences
and against ganworks' own modules on tiny inputs; the sections sn-baselines and averaging end to end."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "reference_equivalence"))
import compare as C  # noqa: E402
import harness  # noqa: E402
import np_baselines as NB  # noqa: E402
import sec_averaging  # noqa: E402
import sec_sn_baselines  # noqa: E402

from ganworks import regularizers  # noqa: E402
from ganworks.models import build_model  # noqa: E402
from ganworks.regularizers import HistoricalAverage  # noqa: E402
from ganworks.train.averaging import EMA  # noqa: E402


def _tiny_d_params(rs, norm):
    """Parameters of a standard-CNN D with channels 2, 3, 3, 4, 4, 5, 5 on 8×8 inputs (bottom 1×1)."""
    chans, cin, p = [2, 3, 3, 4, 4, 5, 5], 3, {}
    for i, ((k, _), c) in enumerate(zip(NB.D_GEOMETRY, chans)):
        w = rs.randn(c, cin, k, k) / np.sqrt(cin * k * k)
        if norm == "weight":
            p[f"conv{i}.V"], p[f"conv{i}.g"] = w, np.ones(c)
        else:
            p[f"conv{i}.W"] = w
        p[f"conv{i}.b"] = rs.randn(c) * 0.1
        if i > 0 and norm in ("batch", "layer"):
            p[f"norm{i}.beta"] = rs.randn(c) * 0.1
        cin = c
    w = rs.randn(1, cin) / np.sqrt(cin)
    if norm == "weight":
        p["out.V"], p["out.g"] = w, np.ones(1)
    else:
        p["out.W"] = w
    p["out.b"] = rs.randn(1) * 0.1
    running = {
        f"norm{i}.{s}": (rs.randn(c) * 0.1 if s == "mean" else rs.uniform(0.5, 1.5, c))
        for i, c in enumerate(chans)
        if i > 0
        for s in ("mean", "var")
    }
    return p, running


@pytest.mark.parametrize("norm", ["none", "batch", "layer", "weight"])
def test_numpy_d_gradients_match_finite_differences(norm):
    """The hand-derived backward pass of np_baselines.cnn_d (conv, leaky ReLU, BN, LN, WN, dense)."""
    rs = np.random.RandomState(1)
    params, running = _tiny_d_params(rs, norm)
    x, r = rs.uniform(-1, 1, (3, 3, 8, 8)), rs.randn(3)
    eps = {"batch": 2e-5, "layer": 1e-5}.get(norm, 0.0)
    f = lambda p, xx: float(r @ NB.cnn_d(p, xx, r, norm, 0.2, eps, 0.1, running)[0])  # noqa: E731
    _, grads, _ = NB.cnn_d(params, x, r, norm, 0.2, eps, 0.1, running)
    h = 1e-6
    for name in [k for k in params if not k.endswith(".g")] + ["x"]:
        arr = x if name == "x" else params[name]
        for idx in [np.unravel_index(j, arr.shape) for j in rs.choice(arr.size, min(3, arr.size), replace=False)]:
            old = arr[idx]
            arr[idx] = old + h
            up = f(params, x)
            arr[idx] = old - h
            down = f(params, x)
            arr[idx] = old
            assert grads[name][idx] == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-8), (name, idx)


def test_orthonormal_gradient_matches_finite_differences_and_shapes():
    rs = np.random.RandomState(2)
    weights = {
        "tall": (rs.randn(6, 3), "dense"),
        "wide": (rs.randn(2, 3, 3, 3), "dense"),
        "deconv": (rs.randn(4, 2, 4, 4), "deconv"),
    }
    val, grads = NB.orthonormal_penalty(weights)
    assert grads["deconv"].shape == (4, 2, 4, 4)
    for name, (W, _) in weights.items():
        idx = np.unravel_index(int(rs.randint(W.size)), W.shape)
        old = W[idx]
        W[idx] = old + 1e-6
        up = NB.orthonormal_penalty(weights)[0]
        W[idx] = old - 1e-6
        down = NB.orthonormal_penalty(weights)[0]
        W[idx] = old
        assert grads[name][idx] == pytest.approx((up - down) / 2e-6, rel=1e-5)
    # an orthonormal matrix (rows, wide) costs exactly the d_in − d_out of the column-side formula
    q = np.linalg.qr(rs.randn(5, 2))[0].T  # 2 × 5, orthonormal rows
    assert NB.orthonormal_penalty({"q": (q, "dense")})[0] == pytest.approx(3.0)


def test_ganworks_orthonormal_penalty_matches_numpy_on_tall_wide_and_transposed_layers():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.Conv2d(6, 2, 3), torch.nn.ConvTranspose2d(2, 4, 4))
    model = model.double()
    ours = regularizers.orthonormal_penalty(model)
    grads = torch.autograd.grad(ours, [m.weight for m in model])
    kinds = ["dense", "dense", "deconv"]
    val, ref = NB.orthonormal_penalty(
        {str(i): (m.weight.detach().numpy().copy(), k) for i, (m, k) in enumerate(zip(model, kinds))}
    )
    assert float(ours.detach()) == pytest.approx(float(val), rel=1e-12)
    for i, g in enumerate(grads):
        np.testing.assert_allclose(g.numpy(), ref[str(i)], rtol=1e-10, atol=1e-12)


def _sn_runs(monkeypatch):
    monkeypatch.setattr(sec_sn_baselines, "IMAGE", 8)
    monkeypatch.setattr(sec_sn_baselines, "WIDTH", 1 / 32)
    rs_state = harness.seed_all(0).get_state()
    return {dt: sec_sn_baselines._instance(dt, rs_state) for dt in ("float64", "float32")}


def test_sn_baselines_section_passes_on_a_tiny_instance(monkeypatch):
    checks = sec_sn_baselines.checks_of(_sn_runs(monkeypatch))
    assert len(checks) == 13 + 12  # float64 rows (the init row is float64 only) + float32 rows
    bad = [(c.component, c.worst, c.max_rel) for c in checks if c.status != "pass"]
    assert not bad
    clip = next(c for c in checks if "weight clipping (c = 0.01)" in c.component and "float64" in c.component)
    assert any(a.name.endswith("norm1.gain") for a in clip.arrays)  # the fixed BN gains are in the check


def test_sn_baselines_detects_a_wrong_epsilon_and_a_gain(monkeypatch):
    """A ganworks D whose LN epsilon or BN gain differed from the paper's formula would fail the rows."""
    torch.manual_seed(0)
    rs = np.random.RandomState(3)
    x, r = rs.uniform(-1, 1, (4, 3, 8, 8)), rs.randn(4)
    for norm, spoil in (("layer", lambda m: setattr(m, "eps", 1e-3)), ("batch", lambda m: m.weight.data.fill_(1.01))):
        D = build_model("sngan-cnn-d", image_size=8, layout="chainer", width=1 / 32, norm=norm).double().train()
        names = sec_sn_baselines._d_names(D)
        state = {**dict(D.named_parameters()), **dict(D.named_buffers())}
        params = {names[n]: state[n].detach().numpy().copy() for n in names if not names[n].endswith((".mean", ".var"))}
        running = {names[n]: state[n].detach().numpy().copy() for n in names if names[n].endswith((".mean", ".var"))}
        eps = {"batch": 2e-5, "layer": 1e-5}[norm]
        ref = NB.cnn_d(params, x, r, norm, 0.2, eps, 0.1, running)[0]
        good = C.check(
            "D", "numpy", "ours", {"logits": (D(torch.from_numpy(x)).detach().numpy(), ref)}, rtol=C.RTOL_FLOAT64
        )
        assert good.passed
        spoil(D.body[-2])  # the last norm (an earlier one's scale would be undone by the next norm)
        bad = C.check(
            "D", "numpy", "ours", {"logits": (D(torch.from_numpy(x)).detach().numpy(), ref)}, rtol=C.RTOL_FLOAT64
        )
        assert not bad.passed, norm


def test_ema_reference_form_is_improved_gans_average_and_soft_copy_recombines():
    rs = np.random.RandomState(4)
    snaps = [{"w": rs.randn(3, 2), "b": rs.randn(2)} for _ in range(4)]
    ours = sec_averaging.ema_reference_form(snaps, 0.9999)
    ref = NB.improved_gan_average(snaps, 0.0001)
    for o, r in zip(ours, ref):
        for k in r:
            np.testing.assert_allclose(o[k], r[k], rtol=1e-10)  # 1 − 0.9999 in binary vs the literal 0.0001
    wrong = sec_averaging.ema_reference_form(snaps, 0.999)
    assert not np.allclose(wrong[-1]["w"], ref[-1]["w"], rtol=1e-3)
    # chainer-gan-lib's smoothed copy = β^t p_0 + (1 − β^t) × ganworks' bias-corrected average
    start = {"w": rs.randn(3, 2)}
    holder = sec_averaging._Arrays(start)
    ema = EMA(holder, 0.9)
    gs = NB.soft_copy_average(start, [{"w": s["w"]} for s in snaps], 0.9)
    for t, s in enumerate(snaps, start=1):
        holder.load({"w": s["w"]})
        ema.update(holder)
        avg = ema.model.values[0].detach().numpy()
        np.testing.assert_allclose(0.9**t * start["w"] + (1 - 0.9**t) * avg, gs[t - 1]["w"], rtol=1e-12)


def test_historical_average_module_matches_the_formula():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2).double()
    ha = HistoricalAverage(model, weight=0.5)
    snaps = []
    for t in range(4):
        snaps.append({n: p.detach().numpy().copy() for n, p in model.named_parameters()})
        ref = NB.historical_average(snaps, 0.5)[-1]
        pen = ha.penalty(model)
        grads = torch.autograd.grad(pen, list(model.parameters()))
        assert float(pen.detach()) == pytest.approx(float(ref["penalty"]), rel=1e-12, abs=1e-15)
        for (n, _), g in zip(model.named_parameters(), grads):
            np.testing.assert_allclose(g.numpy(), ref[f"grad/{n}"], rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(ha.average[n].numpy(), ref[f"avg/{n}"], rtol=1e-12)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        ha.update(model)
    assert float(NB.historical_average(snaps, 0.5)[-1]["penalty"]) > 0


def test_averaging_section_passes_and_measures_its_deviations(monkeypatch):
    monkeypatch.setattr(sec_averaging, "UPDATES", 3)
    checks = sec_averaging.section(None, None)
    by_status = {}
    for c in checks:
        by_status.setdefault(c.status, []).append(c.component)
    assert set(by_status) == {"pass", "deviation"}
    assert len(by_status["deviation"]) == 4 and all("EMA of G" in c for c in by_status["deviation"])
    dev = next(c for c in checks if c.deviation and "as it is" in c.component)
    assert dev.max_rel > 1e-2  # the starting copy's weight is a real, measured difference


def test_run_knows_the_new_sections_and_the_averaged_d_rows_use_ganworks_ema():
    import inspect

    import run
    import sec_igan_conv
    import sec_mnist

    assert {"sn-baselines", "averaging"} <= set(run.SECTIONS)
    for mod in (sec_mnist, sec_igan_conv):  # the rows that compared the harness's NumPy with itself
        assert "ema_reference_form(" in inspect.getsource(mod)


def test_bn_dcgan_maps_every_parameter_to_chainer_gan_libs_links():
    """ganworks' BN D at width 1/16 against chainer-gan-lib's DCGANDiscriminator(ch=32) link names and shapes
    (written out here from common/net.py: c0_0 … c3_0, bn0_1 … bn3_0 without γ, l4)."""
    import sec_bn_dcgan

    ch = 32
    convs = {
        "c0_0": (ch // 8, 3, 3),
        "c0_1": (ch // 4, ch // 8, 4),
        "c1_0": (ch // 4, ch // 4, 3),
        "c1_1": (ch // 2, ch // 4, 4),
        "c2_0": (ch // 2, ch // 2, 3),
        "c2_1": (ch, ch // 2, 4),
        "c3_0": (ch, ch, 3),
    }
    expected = {f"/{c}/W": (o, i, k, k) for c, (o, i, k) in convs.items()}
    expected.update({f"/{c}/b": (o,) for c, (o, _, _) in convs.items()})
    bn_size = {"bn0_1": ch // 4, "bn1_0": ch // 4, "bn1_1": ch // 2, "bn2_0": ch // 2, "bn2_1": ch, "bn3_0": ch}
    expected.update({f"/{b}/beta": (n,) for b, n in bn_size.items()})
    expected.update({"/l4/W": (1, 4 * 4 * ch), "/l4/b": (1,)})
    inp, ours = sec_bn_dcgan._instance("float64", harness.seed_all(0).get_state())
    assert {k[1:]: v.shape for k, v in inp.items() if k.startswith("D/")} == expected
    assert {k[4:]: v.shape for k, v in ours.items() if k.startswith("grad/") and k != "grad/x"} == expected
    assert {k for k in inp if k.startswith("run")} == {f"run/{b}/{s}" for b in bn_size for s in ("avg_mean", "avg_var")}
