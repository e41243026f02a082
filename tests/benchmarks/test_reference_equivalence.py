"""The comparison logic of benchmarks/reference_equivalence (runs without the reference stacks)."""

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "reference_equivalence"))
import compare as C  # noqa: E402

from ganworks.models.improved_gan_mnist import MnistDiscriminator  # noqa: E402


def test_diff_relative_to_the_array_scale():
    ref = np.array([[10.0, 0.0], [-5.0, 1.0]])
    ours = ref + np.array([[0.0, 1e-5], [0.0, 0.0]])
    d = C.diff("w", ours, ref, rtol=1e-5)
    assert d.max_abs == pytest.approx(1e-5)
    assert d.max_rel == pytest.approx(1e-6)  # 1e-5 / max|ref| = 10, although the entry's ref is 0
    assert d.passed
    assert not C.diff("w", ours * 1.001, ref, rtol=1e-5).passed


def test_shape_mismatch_nan_and_missing_arrays_fail():
    assert not C.diff("w", np.zeros((2, 3)), np.zeros((3, 2)), rtol=1).passed
    assert not C.diff("w", np.array([np.nan]), np.array([1.0]), rtol=1).passed
    assert not C.check("c", "ref", "ours", {}).passed  # no arrays: nothing was compared
    with pytest.raises(KeyError, match="one side only"):
        C.pair_up({"a": 1, "b": 2}, {"a": 1})


def test_all_zero_arrays_pass_only_within_atol():
    assert C.diff("g", np.zeros(3), np.zeros(3), rtol=1e-5).passed
    assert not C.diff("g", np.full(3, 1e-9), np.zeros(3), rtol=1e-5).passed
    assert C.diff("g", np.full(3, 1e-9), np.zeros(3), rtol=1e-5, atol=1e-8).passed


def _numpy_mnist_d(params, x):
    """An independent float64 forward of the MNIST discriminator in eval mode (no noise)."""
    h = x.reshape(len(x), -1)
    for i, (V, g, b) in enumerate(params):
        W = V * (g.reshape(-1, 1) / np.sqrt((V**2).sum(axis=1, keepdims=True)))
        h = h @ W.T + b
        if i < len(params) - 1:
            h = np.maximum(h, 0)
    return h


def _params(D):
    out = []
    for lin in [h[0] for h in D.hidden] + [D.out]:
        w = lin.parametrizations.weight
        out.append(
            [
                w.original1.detach().double().numpy().copy(),
                w.original0.detach().double().numpy().copy(),
                lin.bias.detach().double().numpy().copy(),
            ]
        )
    return out


def test_a_perturbed_weight_fails_the_check():
    torch.manual_seed(0)
    D = MnistDiscriminator(image_shape=(1, 8, 8), hidden=(16, 12), width=1.0).eval()
    x = torch.rand(5, 1, 8, 8)
    with torch.no_grad():
        ours = D(x).numpy()
    params = _params(D)
    good = C.check(
        "D forward", "numpy", "MnistDiscriminator", {"logits": (ours, _numpy_mnist_d(params, x.double().numpy()))}
    )
    assert good.passed and good.status == "pass"
    V = params[-1][0]  # one weight entry (the largest) of the output layer, changed by 0.1 %
    V[np.unravel_index(np.abs(V).argmax(), V.shape)] *= 1 + 1e-3
    bad = C.check(
        "D forward", "numpy", "MnistDiscriminator", {"logits": (ours, _numpy_mnist_d(params, x.double().numpy()))}
    )
    assert not bad.passed and bad.status == "FAIL"
    assert bad.max_rel > C.RTOL_STEP


def test_deviation_rows_never_fail_and_results_files(tmp_path):
    a = C.check("same", "ref.py: f", "ours", {"x": (np.ones(3), np.ones(3))}, section="s1")
    b = C.check(
        "off by design",
        "ref.py: g",
        "ours",
        {"x": (np.ones(3), 2 * np.ones(3))},
        deviation=True,
        note="documented",
        section="s1",
    )
    c = C.check("broken", "ref.py: h", "ours", {"y": (np.ones((2, 2)), np.zeros((2, 2)) + 3)}, section="s2")
    assert [r.status for r in (a, b, c)] == ["pass", "deviation", "FAIL"]
    assert math.isclose(b.max_rel, 0.5)
    old = C.merge_rows([], [a, b, c], {"s1", "s2"})
    rows = C.merge_rows(
        old, [C.check("same again", "ref.py: f", "ours", {"x": (np.ones(3), np.ones(3))}, section="s1")], {"s1"}
    )
    assert [r["component"] for r in rows] == ["broken", "same again"]  # s1 replaced, s2 kept
    C.write_results(rows, {"device": "test"}, tmp_path / "r.json", tmp_path / "r.md")
    data = json.loads((tmp_path / "r.json").read_text())
    assert [r["status"] for r in data["checks"]] == ["FAIL", "pass"]
    md = (tmp_path / "r.md").read_text()
    assert "| broken | ref.py: h |" in md and "FAIL" in md and "broken / y" in md


def test_zero_by_construction_arrays_are_judged_against_the_checks_largest_array():
    pairs = {
        "big": (np.array([1.0, 2.0]), np.array([1.0, 2.0])),
        "zero": (np.array([3e-9]), np.array([-2e-9])),
    }  # rounding noise around an exact 0
    assert not C.check("g", "r", "o", pairs).passed
    assert C.check("g", "r", "o", pairs, atol_of_check=True).passed
    pairs["zero"] = (np.array([1e-3]), np.array([0.0]))  # a real error is still caught
    assert not C.check("g", "r", "o", pairs, atol_of_check=True).passed
    pairs["zero"] = (np.array([3e-9]), np.array([-2e-9]))
    row = C.check("g", "r", "o", pairs, atol_of_check=True).to_dict()
    assert C.judged_rel(row) == (0.0, 1)  # the noise array is reported apart, not as the row's max rel
    assert "(+1 atol)" in C.render_markdown([row], {})


def test_info_rows_are_reported_but_never_fail():
    c = C.check("diagnostic", "r", "o", {"x": (np.ones(2), 3 * np.ones(2))}, info=True)
    assert c.status == "info" and not c.passed
    assert "| info |" in C.render_markdown([c.to_dict()], {})


def _rounding_pair(exact, rng):
    """float32 results of ``exact`` by two routes that round differently (as two frameworks do)."""
    a = (exact + rng.standard_normal(exact.shape) * 1e-7 * np.abs(exact)).astype(np.float32)
    b = (exact + rng.standard_normal(exact.shape) * 1e-7 * np.abs(exact)).astype(np.float32)
    return a, b


def test_measured_tolerance_accepts_rounding_and_rejects_a_difference_beyond_the_measured_noise():
    rng = np.random.default_rng(0)
    exact = rng.standard_normal(50)
    o32, r32 = _rounding_pair(exact, rng)
    o64 = exact + 1e-15 * rng.standard_normal(50)  # the float64 runs: ~exact on both sides
    r64 = exact.copy()
    good = C.check_measured("w", "ref", "ours", {"w": (o32, r32, o64, r64)})
    assert good.passed and good.arrays[0].bound_ratio <= 1.0
    # an implementation difference of 1e-5 relative in one entry (in both of ganworks' precisions, as a real
    # difference is): within a flat 1e-4 rtol, but ~100 x the measured rounding, so caught here
    bad32, bad64 = o32.copy(), o64.copy()
    i = int(np.argmax(np.abs(exact)))
    bad64[i] = exact[i] * (1 + 1e-5)
    bad32[i] = np.float32(bad64[i])
    bad = C.check_measured("w", "ref", "ours", {"w": (bad32, r32, bad64, r64)})
    assert C.diff("w", bad32, r32, rtol=1e-4).passed
    assert not bad.passed and bad.status == "FAIL" and bad.arrays[0].bound_ratio > 1.0


def test_measured_tolerance_grows_with_the_noise_each_side_measures():
    exact = np.array([1.0, -2.0, 0.5])
    r32 = exact.astype(np.float32)
    o32 = (exact + np.array([0.0, 1e-3, 0.0])).astype(np.float32)  # 1e-3 off on one entry
    # ganworks' float32 run is itself 1e-3 away from its float64 run there: the difference is its rounding
    o64 = exact.copy()
    assert C.diff_measured("x", o32, r32, o64, exact).passed
    # if both float64 runs agree with the float32 ones, the same 1e-3 is a real difference
    assert not C.diff_measured("x", o32, r32, o32.astype(np.float64), r32.astype(np.float64)).passed


def test_measured_tolerance_floor_is_four_float32_ulp_of_the_arrays_largest_magnitude():
    ref = np.array([4.0, 1e-3], dtype=np.float32)
    ulp = float(np.spacing(np.float32(4.0)))
    same64 = ref.astype(np.float64)
    for k, ok in ((3, True), (5, False)):  # no measured noise on either side: only the ulp floor is left
        ours = ref + np.float32([0, k * ulp])
        assert C.diff_measured("x", ours, ref, ours.astype(np.float64), same64).passed is ok
    assert not C.diff_measured("x", ref[:1], ref, same64, same64).passed  # shape mismatch
    assert not C.diff_measured("x", np.float32([np.nan, 0]), ref, same64, same64).passed


def test_report_names_each_checks_worst_array():
    rng = np.random.default_rng(1)
    exact = rng.standard_normal(8)
    o32, r32 = _rounding_pair(exact, rng)
    worse, worse64 = o32.copy(), exact.copy()
    worse64[0] += 1e-2  # a real difference: in both of ganworks' precisions
    worse[0] = np.float32(worse64[0])
    c = C.check_measured("row", "ref", "ours", {"fine": (o32, r32, exact, exact), "off": (worse, r32, worse64, exact)})
    assert c.worst == "off" and c.status == "FAIL"
    row = c.to_dict()
    md = C.render_markdown([row], {})
    assert "worst: off" in md and C.MEASURED in md and "row / off" in md
    flat = C.check("flat", "ref", "ours", {"a": (np.ones(2), np.ones(2)), "b": (np.ones(2) * 1.1, np.ones(2))})
    assert flat.worst == "b" and "(worst: b)" in C.render_markdown([flat.to_dict()], {})


def test_measure_sections_rejudges_each_float32_row_by_its_float64_twin():
    rng = np.random.default_rng(2)
    exact = rng.standard_normal(20)
    o32, r32 = _rounding_pair(exact, rng)
    row32 = C.check("grads", "ref", "ours", {"w": (o32, r32)}, rtol=1e-12, section="s")  # fails a flat rtol
    row64 = C.check("grads [float64]", "ref", "ours", {"w": (exact + 1e-17, exact)}, section="s-float64")
    only32 = C.check("diagnostic", "ref", "ours", {"w": (o32, o32)}, info=True, section="s")
    out = C.measure_sections([row32, only32], [row64])
    narrow, kept, wide = out
    assert not row32.passed and narrow.passed and narrow.tolerance == C.MEASURED
    assert wide.rtol == C.RTOL_FLOAT64 and wide.passed and wide.section == "s-float64"
    assert kept is only32
    # a float64 pair that differs by 1e-6 fails 1e-10 (even though it passed its old 1e-5), and so does
    # its float32 twin: the difference is real, not rounding
    off64 = C.check("grads [float64]", "ref", "ours", {"w": (exact * (1 + 1e-6), exact)})
    assert off64.passed
    narrow, wide = C.measure_pair(row32, off64)
    assert not wide.passed and wide.status == "FAIL"
    o32_off = (exact * (1 + 1e-6)).astype(np.float32)
    narrow, wide = C.measure_pair(C.check("grads", "ref", "ours", {"w": (o32_off, r32)}), off64)
    assert narrow.status == "FAIL"
    # ... unless the float64 row is a documented deviation: then both rows are deviations
    dev64 = C.check("grads [float64]", "ref", "ours", {"w": (exact * (1 + 1e-6), exact)}, deviation=True)
    narrow, wide = C.measure_pair(C.check("grads", "ref", "ours", {"w": (o32_off, r32)}), dev64)
    assert narrow.status == wide.status == "deviation"
    with pytest.raises(KeyError):
        C.measure_pair(row32, C.check("grads [float64]", "ref", "ours", {"v": (exact, exact)}))


def test_improved_gan_conv_layout_names_shapes_and_epsilon_adjustment():
    """sec_igan_conv.py's mapping of the CIFAR/SVHN models onto the reference scripts' parameters (tiny models)."""
    import sec_igan_conv as R

    from ganworks.models import build_model

    torch.manual_seed(0)
    G = build_model(name="improved-gan-svhn-g", width=0.125)
    for variant, dense in (("fm", "d14"), ("md", "d15")):
        D = build_model(name="improved-gan-svhn-d", variant=variant, width=0.125)
        P = R._igan_conv_layout(G, D)
        wn = sorted(k[:-2] for k in P if k.endswith("_g"))
        assert wn == sorted([f"d{i}" for i in R._IGAN_D_CONVS] + [dense, "g5"])
        assert ("d14_theta" in P) == (variant == "md")
        assert P["d11_W"].shape == (D.body[16].weight.shape[1], D.body[16].weight.shape[0])  # NIN: (in, out)
        assert P[dense + "_W"].shape == tuple(D.out.weight.shape[::-1])  # Lasagne's dense W is (in, out)
        adj = R._igan_conv_layout(G, D, eps_adjust=True)
        for k in wn:  # same effective scale: g_ref / sqrt(|V|^2 + eps) == g / |V|
            np.testing.assert_allclose(
                R._igan_eff_scale({**P, k + "_g": adj[k + "_g"]}, k, R._IGAN_EPS),
                R._igan_eff_scale(P, k, 0.0),
                rtol=1e-6,
            )
            np.testing.assert_allclose(R._igan_ref_g_as_ours(adj, k), P[k + "_g"], rtol=1e-6)


def test_cifar_weight_norm_factor_converts_the_references_g_and_its_gradient():
    """sec_cifar._wn_factor: the reference's g of ganworks' effective weight is ganworks' g × c, and its
    gradient (Adam's moments with it) is ganworks' / c (chain rule; float64, a dense layer in Lasagne's layout)."""
    import sec_cifar as S
    import sec_igan_conv as R

    from ganworks.models import build_model

    torch.manual_seed(0)
    G = build_model(name="improved-gan-svhn-g", width=0.125)
    D = build_model(name="improved-gan-svhn-d", variant="fm", width=0.125)
    P, adj = R._igan_conv_layout(G, D), R._igan_conv_layout(G, D, eps_adjust=True)
    for k in sorted(k[:-2] for k in P if k.endswith("_g")):
        np.testing.assert_allclose(adj[k + "_g"], P[k + "_g"] * S._wn_factor(P, k), rtol=1e-6)
    V = torch.randn(6, 4, dtype=torch.float64) * 0.05  # (in, out); ‖V‖² ≈ 0.015: c − 1 ≈ 3e-5
    g = torch.rand(4, dtype=torch.float64) + 0.5
    x, r = torch.randn(3, 6, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    c = torch.from_numpy(S._wn_factor({"d_W": V.numpy()}, "d"))
    g_ours, g_ref = g.clone().requires_grad_(True), (g * c).requires_grad_(True)
    loss_ours = (r * (x @ (V * g_ours / V.square().sum(0).sqrt()))).sum()
    loss_ref = (r * (x @ (V * g_ref / (V.square().sum(0) + R._IGAN_EPS).sqrt()))).sum()
    torch.testing.assert_close(loss_ours, loss_ref, rtol=1e-14, atol=0)
    (d_ours,), (d_ref,) = torch.autograd.grad(loss_ours, [g_ours]), torch.autograd.grad(loss_ref, [g_ref])
    assert not torch.allclose(d_ours, d_ref, rtol=1e-7, atol=0)  # the factor matters at this scale
    torch.testing.assert_close(d_ours, c * d_ref, rtol=1e-13, atol=0)


def test_cifar_float64_run_must_be_the_float32_instance():
    """sec_cifar._same_instance: the float64 run's inputs and draws must be the float32 run's, upcast."""
    import sec_cifar as S

    rs = np.random.RandomState(0)
    inp32 = {"mask_lab_0": (rs.rand(4, 3) < 0.5).astype(np.float32), "z": rs.rand(4, 2).astype(np.float32)}
    S._same_instance("t", "float32", {**inp32, "post_d2_g": np.ones(3, np.float32)}, ("post_",))
    inp64 = {k: v.astype(np.float64) for k, v in inp32.items()}
    S._same_instance("t", "float64", {**inp64, "post_d2_g": np.full(3, 2.0)}, ("post_",))  # computed: not compared
    inp64["z"] = inp64["z"] + 1e-12  # a draw made in float64 is not the float32 one
    with pytest.raises(AssertionError, match="z"):
        S._same_instance("t", "float64", inp64, ("post_",))
