"""Improved-GAN MNIST (Theano + Lasagne): run.py sections ``mnist`` (float32 and float64) and ``mnist64eps``.

The shared pieces (the exchange of arrays with the reference scripts, the recorded draws, the run's
precision ``H.DTYPE``) are in harness.py. The float64 run is the float32 instance upcast: the init pass runs
in float32, the models are then cast with ``.double()``, every draw (noise, z) is made in float32 and cast,
and the run asserts that each array it hands the reference equals the float32 run's, upcast. The
``mnist64eps`` run gives ganworks' G output layer the reference's 1e-6 weight-norm epsilon; a plain float64
row that fails 1e-10 while its eps-matched twin agrees is a deviation with both sizes in its note.
"""

from __future__ import annotations

import copy
from pathlib import Path

import compare as C
import harness as H
import numpy as np
import torch
from harness import Draws, npy, run_reference
from sec_averaging import ema_reference_form

#: the float32 run's inputs to the reference (weights, batches, every draw), for the float64 runs' check
_INPUTS32: dict = {}


def _check_same_instance(inp: dict, wide: bool) -> None:
    """The float32 run keeps its inputs; a float64 run after it (in the same process) asserts that each of
    its inputs is the float32 run's, upcast: the condition for judging float32 by the float64 run."""
    arrays = {k: v for k, v in inp.items() if isinstance(v, np.ndarray) and v.dtype.kind in "fi"}
    if not wide:
        _INPUTS32.clear()
        _INPUTS32.update({k: v.copy() for k, v in arrays.items()})
        return
    if not _INPUTS32:
        print("[mnist float64] no float32 run in this process: same-instance check skipped")
        return
    bad = sorted(k for k in set(arrays) | set(_INPUTS32) if not np.array_equal(arrays.get(k), _INPUTS32.get(k)))
    assert not bad, f"the float64 run is not the float32 instance upcast: inputs {bad} differ"
    print(f"[mnist float64] the same instance: {len(arrays)} input arrays equal the float32 run's, upcast")


#: the float64 run with G's epsilon matched, run once per process (the plain float64 run judges its rows by it)
_EPS_RUN: dict = {}
#: the float32 run's checks by component: a float64 row that becomes a deviation explains its float32 twin's
_CHECKS32: dict = {}
EPS_TAG = " [float64, G eps matched]"


def mnist_section(a, tmp: Path, dtype: str = "float32", match_g_eps: bool = False) -> list[C.Check]:
    """Improved-GAN MNIST in ``dtype``: float32 is the target; float64 separates implementation
    differences from float32 rounding amplified by training (ReLU kinks, Adam's per-entry scaling).

    ``match_g_eps`` (float64 only): ganworks' G output layer gets the reference's 1e-6 weight-norm epsilon.
    The plain float64 run needs that run's rows (a plain float64 row that fails 1e-10 while its eps-matched
    twin agrees differs only by the epsilon: a deviation, with both sizes in its note), so it runs it first,
    once per process; a later ``match_g_eps`` call returns those rows."""
    if dtype == "float64":
        if "checks" not in _EPS_RUN:
            _EPS_RUN["checks"] = _mnist_run(a, tmp, "float64", match_g_eps=True)
        if match_g_eps:
            return _EPS_RUN["checks"]
        return _mnist_run(a, tmp, "float64", eps_twins={c.component: c for c in _EPS_RUN["checks"]})
    if match_g_eps:
        raise ValueError("match_g_eps is a float64 run")
    _CHECKS32.clear()
    return _mnist_run(a, tmp, dtype)


def _mnist_run(a, tmp: Path, dtype: str, match_g_eps: bool = False, eps_twins: dict | None = None) -> list[C.Check]:
    H.DTYPE = np.dtype(dtype).type
    wide = dtype == "float64"
    tag = (EPS_TAG if match_g_eps else " [float64]") if wide else ""
    from torch.nn.utils import parametrize

    import ganworks.train.build as B
    from ganworks.config import resolve
    from ganworks.nn.noise import GaussianNoise
    from ganworks.train.loop import train_iteration
    from ganworks.train.optim import AdamEpsInsideSqrt

    sec = "improved-gan-mnist" + ("-float64" if wide else "") + ("-eps" if match_g_eps else "")
    ref_file = "mnist_svhn_cifar10/train_mnist_feature_matching.py"
    draws = Draws()
    keys: dict[int, str] = {}

    def noise_forward(self, x):
        if not self.training or self.sigma == 0.0:
            return x
        # drawn in float32 and cast: the float64 run gets the float32 run's draws (same instance, upcast)
        eps = draws.draw(
            keys.get(id(self), f"unnamed{id(self)}"), lambda: torch.randn_like(x, dtype=torch.float32).to(x.dtype)
        )
        return x + self.sigma * eps

    init_inputs = []
    orig_ddi = B.data_dependent_init  # the init pass of the experiment's builders (train/build.py)

    def ddi(model, *inputs, **kw):
        init_inputs.append(inputs[0].detach().clone())
        return orig_ddi(model, *inputs, **kw)

    cfg = resolve("improved-gan/mnist-100", ["train.epochs=1", "eval.grid=0"])
    orig_forward = GaussianNoise.forward
    GaussianNoise.forward = noise_forward
    B.data_dependent_init = ddi
    try:
        from ganworks.train import Experiment

        exp = Experiment(cfg, torch.device("cpu"))
    finally:
        B.data_dependent_init = orig_ddi
    try:
        G, D = exp.G, exp.D
        if wide:  # the init pass ran in float32; everything after it runs in float64 on both sides
            G.double(), D.double(), exp.ema["d"].model.double()
        if match_g_eps:
            # the reference's nn.l2normalize (G's output layer) has 1e-6 inside the square root of
            # ‖V‖², ganworks' weight norm none (a documented deviation). For this experiment only,
            # the harness gives ganworks' layer the reference's formula, to show that nothing else differs.
            def wn_with_eps(weight_g, weight_v):
                return weight_v * (weight_g / torch.sqrt(1e-6 + weight_v.square().sum(dim=1, keepdim=True)))

            G.out.parametrizations.weight[0].forward = wn_with_eps
        noise_mods = [D.input_noise, *D.noise]
        for k, m in enumerate(noise_mods):
            keys[id(m)] = f"noise{k}"
        # the init pass ran before the modules had names: its draws are under 'unnamed<id>'
        init_noise = [draws.record.pop(f"unnamed{id(m)}")[0] for m in noise_mods]
        assert not draws.record, list(draws.record)
        orig_sample_z = G.sample_z
        G.sample_z = lambda n, device=None: draws.draw(
            "z", lambda: orig_sample_z(n, device=device).to(D.out.bias.dtype)
        )
        batches = []
        orig_batch = exp.stream.batch

        def rec_batch(epoch, index):
            b = orig_batch(epoch, index)
            b = {k: (v.to(D.out.bias.dtype) if v.is_floating_point() else v) for k, v in b.items()}
            batches.append(b)
            return b

        exp.stream.batch = rec_batch

        def ref_layout(G, D) -> dict:
            P = {}
            for i, lin in enumerate([h[0] for h in D.hidden] + [D.out]):
                w = lin.parametrizations.weight
                P[f"d{i}_theta"] = npy(w.original1).T
                P[f"d{i}_scale"] = npy(w.original0).reshape(-1)
                P[f"d{i}_b"] = npy(lin.bias)
            P["g0_W"], P["g0_bnb"] = npy(G.body[0].weight).T, npy(G.body[1].bias)
            P["g1_W"], P["g1_bnb"] = npy(G.body[3].weight).T, npy(G.body[4].bias)
            w = G.out.parametrizations.weight
            P["g2_W"], P["g2_scale"], P["g2_b"] = npy(w.original1).T, npy(w.original0).reshape(-1), npy(G.out.bias)
            return P

        def d_param_names(D) -> dict:
            """our D parameter object -> reference name"""
            out = {}
            for i, lin in enumerate([h[0] for h in D.hidden] + [D.out]):
                w = lin.parametrizations.weight
                out[w.original1] = f"d{i}_theta"
                out[w.original0] = f"d{i}_scale"
                out[lin.bias] = f"d{i}_b"
            return out

        def g_param_names(G) -> dict:
            w = G.out.parametrizations.weight
            return {
                G.body[0].weight: "g0_W",
                G.body[1].bias: "g0_bnb",
                G.body[3].weight: "g1_W",
                G.body[4].bias: "g1_bnb",
                w.original1: "g2_W",
                w.original0: "g2_scale",
                G.out.bias: "g2_b",
            }

        def to_ref_shape(name, t):
            x = npy(t)
            if name.endswith(("_theta", "_W")):
                return x.T
            if name.endswith("_scale"):
                return x.reshape(-1)
            return x

        post = ref_layout(G, D)
        # the documented epsilon's own size here: G's effective output weights g·V/‖V‖ (ganworks) and
        # g·V/√(‖V‖² + 1e-6) (reference) differ by 1 − ‖V‖/√(‖V‖² + 1e-6) relative, per output unit
        v_sq = np.square(post["g2_W"].astype(np.float64)).sum(axis=0)
        eps_size = float(np.max(1.0 - np.sqrt(v_sq / (v_sq + 1e-6))))
        pre = {
            k: (
                np.ones_like(v)
                if k.startswith("d") and k.endswith("_scale")
                else np.zeros_like(v)
                if k.startswith("d") and k.endswith("_b")
                else v
            )
            for k, v in post.items()
        }

        # ---- one step on our side: D loss, G loss, their gradients (iteration 0's batch and draws) ----
        state0 = copy.deepcopy(exp.state_dict())  # state_dict() holds the live tensors: copy them
        batch0 = exp.stream.batch(0, 0)
        batches.clear()
        obj = exp.objective
        d_outs, g_outs = [], []
        hd = D.register_forward_hook(lambda m, i, o: d_outs.append(o))
        hg = G.register_forward_hook(lambda m, i, o: g_outs.append(o))
        with parametrize.cached():
            total, logs = obj.d_loss(batch0)
            dnames = {p: n for p, n in d_param_names(D).items() if p.requires_grad}
            dgrads = torch.autograd.grad(total, list(dnames))
        fused = obj.fuse_d_passes  # the preset's one D pass over [lab; unl; fake]: split it as the reference's three
        n_b = batch0["x_unl"].shape[0]
        if fused:
            assert len(d_outs) == 1 and d_outs[0].shape[0] == 3 * n_b
            d_outs[:] = d_outs[0].split(n_b)
        ours_step = {
            "d_logits_lab": npy(d_outs[0]),
            "d_logits_unl": npy(d_outs[1]),
            "d_logits_fake": npy(d_outs[2]),
            "g_out_dstep": npy(g_outs[0]).reshape(g_outs[0].shape[0], -1),
            "loss_lab": npy(logs["loss_lab"]),
            "loss_unl": npy(logs["loss_unl"]),
        }
        ours_gd = {f"grad_d_{n}": to_ref_shape(n, g) for (p, n), g in zip(dnames.items(), dgrads)}
        d_outs.clear(), g_outs.clear()
        with parametrize.cached():
            gloss, _ = obj.g_loss(batch0)
            gnames = {p: n for p, n in g_param_names(G).items() if p.requires_grad}
            ggrads = torch.autograd.grad(gloss, list(gnames))
        hd.remove(), hg.remove()
        ours_step.update(
            {
                "g_out_gstep": npy(g_outs[0]).reshape(g_outs[0].shape[0], -1),
                "feat_mean_real": npy(d_outs[0][1].mean(0)),
                "feat_mean_fake": npy(d_outs[1][1].mean(0)),
                "loss_gen": npy(gloss),
            }
        )
        ours_gg = {f"grad_g_{n}": to_ref_shape(n, g) for (p, n), g in zip(gnames.items(), ggrads)}

        # ---- 20 whole iterations (the training loop's train_iteration), replaying iteration 0's draws ----
        for k, v in draws.record.items():
            draws.replay[k].extend(v)
        draws.record.clear()
        traj_ours = []
        ema = exp.ema["d"]
        for i in range(a.iterations):
            train_iteration(exp)
            P = ref_layout(G, D)
            avg = ref_layout(G, ema.model)
            P.update({f"avg_{k}": v for k, v in avg.items() if k.startswith("d")})
            traj_ours.append(P)
        assert all(not q for q in draws.replay.values()), "iteration 0 did not consume the single-step draws"
        for k in ("x_lab", "x_unl", "x_unl2", "y_lab"):
            assert torch.equal(batches[0][k], batch0[k])
        # float32 sensitivity: ours again from the same state with every weight moved by ~1 ulp,
        # same batches and draws: how far rounding alone carries the trajectory
        traj_perturbed = []
        if not wide:
            exp.load_state_dict(state0)
            assert all(np.array_equal(v, post[k]) for k, v in ref_layout(G, D).items()), "not back at the start"
            with torch.no_grad():
                for p in list(G.parameters()) + list(D.parameters()):
                    p.mul_(1 + 2.0**-23)
            for k, v in draws.record.items():
                draws.replay[k].extend(v)
            n_rec = {k: len(v) for k, v in draws.record.items()}
            n_batches = len(batches)
            for i in range(a.iterations):
                train_iteration(exp)
                traj_perturbed.append(ref_layout(G, D))
            for k, n in n_rec.items():
                del draws.record[k][n:]
            del batches[n_batches:]
            assert all(not q for q in draws.replay.values())
    finally:
        GaussianNoise.forward = orig_forward

    # per noise layer, ours: init, then per iteration lab, unl, fake (D step), real, fake (G step); with the fused
    # D pass the D step's draw is one array over [lab; unl; fake], split here into the reference's three passes
    n_it = a.iterations
    if fused:
        for k in range(len(noise_mods)):
            rec, draws.record[f"noise{k}"] = draws.record[f"noise{k}"], []
            assert len(rec) == 3 * n_it
            for i in range(n_it):
                assert rec[3 * i].shape[0] == 3 * n_b
                draws.record[f"noise{k}"] += [*rec[3 * i].split(n_b), *rec[3 * i + 1 : 3 * i + 3]]
    inp = {
        "dtype": dtype,
        "batch_size": cfg["data"]["batch_size"],
        "unlabeled_weight": cfg["objective"]["unlabeled_weight"],
        "lr": cfg["optim"]["lr"],
        "init_x": npy(init_inputs[0]).reshape(init_inputs[0].shape[0], -1),
    }
    inp.update({f"pre_{k}": v for k, v in pre.items()})
    inp.update({f"post_{k}": v for k, v in post.items()})
    for k in range(len(noise_mods)):
        inp[f"init_noise_{k}"] = npy(init_noise[k])
        rec = [npy(t) for t in draws.record[f"noise{k}"]]
        assert len(rec) == 5 * n_it
        for j, ps in enumerate(["lab", "unl", "fake", "real", "gen"]):
            inp[f"noise_{ps}_{k}"] = np.stack(rec[j::5])
    z = [npy(t) for t in draws.record["z"]]
    assert len(z) == 2 * n_it
    inp["z_d"], inp["z_g"] = np.stack(z[0::2]), np.stack(z[1::2])
    for k in ("x_lab", "x_unl", "x_unl2"):
        inp[k] = np.stack([npy(b[k]).reshape(b[k].shape[0], -1) for b in batches])
    inp["y_lab"] = np.stack([b["y_lab"].numpy().astype(np.int32) for b in batches])

    # Adam in isolation: given gradients (ordinary, tiny and zero entries), four steps
    rs = np.random.RandomState(0)
    p0 = rs.randn(50, 20).astype(np.float32).astype(H.DTYPE)  # made in float32, then cast (as every input)
    grads = (rs.randn(4, 50, 20).astype(np.float32) * np.logspace(-7, 0, 20, dtype=np.float32)).astype(H.DTYPE)
    grads[:, :3, :] = 0.0
    inp.update(
        adam_p0=p0,
        adam_grads=grads,
        adam_lr=cfg["optim"]["lr"],
        adam_b1=cfg["optim"]["beta1"],
        adam_b2=cfg["optim"]["beta2"],
    )
    _check_same_instance(inp, wide)
    p = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    opt = AdamEpsInsideSqrt(
        [p], lr=cfg["optim"]["lr"], betas=(cfg["optim"]["beta1"], cfg["optim"]["beta2"]), eps=cfg["optim"]["eps"]
    )
    adam_ours = []
    for g in grads:
        p.grad = torch.from_numpy(g.copy())
        opt.step()
        adam_ours.append(npy(p))

    compiledir = Path(a.theano_compiledir).expanduser()
    flags = f"device=cpu,floatX={dtype},blas.ldflags=,base_compiledir={compiledir}"
    ref = run_reference(
        a.theano_python,
        "ref_improved_gan_mnist.py",
        ["--improved-gan", a.improved_gan, "--lasagne", a.lasagne],
        inp,
        {"THEANO_FLAGS": flags},
        tmp,
        "mnist-" + dtype + ("-eps" if match_g_eps else ""),
    )

    checks = []

    def ck(component, *args, **kw):
        c = C.check(component + tag, *args, section=sec, **kw)
        checks.append(c)
        if not wide:
            _CHECKS32[component] = c
        twin = (eps_twins or {}).get(component + EPS_TAG)
        if twin is None or c.deviation:
            return
        plain64, eps64 = C.measure_pair_64(c), C.measure_pair_64(twin)
        if plain64.passed or not eps64.passed:
            return
        # fails 1e-10 where the same quantity with the reference's epsilon agrees: the epsilon is the difference
        c.deviation = True
        cause = (
            f"the documented 1e-6 weight-norm epsilon of G's output layer (the reference's nn.l2normalize divides by "
            f"√(‖V‖² + 1e-6), ganworks by ‖V‖; README 'Weight-norm epsilon'), which changes G's effective output "
            f"weights by up to {eps_size:.2g} relative here"
        )
        c.note = " ".join(
            x
            for x in (
                f"Differs from the reference by {plain64.max_rel:.3g} relative (worst: {plain64.worst}) through {cause}: "
                f"with the epsilon given to ganworks ('{twin.component}', section {twin.section}) the same quantity "
                f"agrees to {eps64.max_rel:.3g}.",
                c.note,
            )
            if x
        )
        c32 = _CHECKS32.get(component)
        if c32 is not None and not c32.deviation:
            c32.note = " ".join(
                x
                for x in (
                    c32.note,
                    f"A deviation through its [float64] twin (compare.measure_pair): in float64 the two sides differ "
                    f"by {plain64.max_rel:.3g} only through {cause}; with it matched they agree to {eps64.max_rel:.3g}.",
                )
                if x
            )

    if not wide:
        ck(
            "MNIST data-dependent init (D: g and b of all 6 layers)",
            f"{ref_file}: init_param (nn.DenseLayer init=True)",
            "nn.weight_norm.data_dependent_init",
            {
                f"{k}_{n}": (post[f"{k}_{n}"], ref[f"init_{k}_{n}"])
                for k in [f"d{i}" for i in range(6)]
                for n in ("scale", "b")
            },
        )
    ck(
        "MNIST D forward (noise injected): logits on labeled, unlabeled, generated batch",
        f"{ref_file}: output_before_softmax_{{lab,unl,fake}}",
        "models.improved_gan_mnist.MnistDiscriminator",
        {k: (ours_step[k], ref["step_" + k]) for k in ("d_logits_lab", "d_logits_unl", "d_logits_fake")},
    )
    ck(
        "MNIST G forward (BN batch statistics)",
        f"{ref_file}: gen_dat",
        "models.improved_gan_mnist.MnistGenerator",
        {k: (ours_step[k], ref["step_" + k]) for k in ("g_out_dstep", "g_out_gstep")},
    )
    ck(
        "MNIST semi-supervised D loss (L_lab, L_unl)",
        f"{ref_file}: loss_lab, loss_unl",
        "objectives.SemiSupervisedGAN.d_loss",
        {k: (ours_step[k], ref["step_" + k]) for k in ("loss_lab", "loss_unl")},
    )
    ck(
        "MNIST D gradients w.r.t. every trainable parameter",
        f"{ref_file}: T.grad(loss_lab + w·loss_unl, disc_params)",
        "autograd",
        C.pair_up(ours_gd, {k[5:]: v for k, v in ref.items() if k.startswith("step_grad_d_")}),
    )
    ck(
        "MNIST feature-matching G loss (and the matched feature means)",
        f"{ref_file}: loss_gen, mom_gen, mom_real",
        "objectives.SemiSupervisedGAN.g_loss",
        {k: (ours_step[k], ref["step_" + k]) for k in ("loss_gen", "feat_mean_real", "feat_mean_fake")},
    )
    ck(
        "MNIST G gradients w.r.t. every trainable parameter",
        f"{ref_file}: T.grad(loss_gen, gen_params)",
        "autograd",
        C.pair_up(ours_gg, {k[5:]: v for k, v in ref.items() if k.startswith("step_grad_g_")}),
    )
    ck(
        "Adam with eps inside the sqrt, 4 steps on given gradients (lr 0.003, β1 0.5)",
        "nn.py: adam_updates",
        "train.optim.AdamEpsInsideSqrt",
        {f"step{t + 1}": (adam_ours[t], ref[f"adam_p{t}"]) for t in range(len(grads))},
    )
    traj_pairs = {}
    for i, P in enumerate(traj_ours):
        for k, v in P.items():
            if not k.startswith("avg_"):
                traj_pairs[f"it{i + 1}/{k}"] = (v, ref[f"traj{i}_{k}"])

    def worst_rel(pairs: dict, i: int) -> float:
        """the largest max |a − b| / max |b| over the parameters after iteration i + 1"""
        return max(C.diff(k, o, r, 0.0).max_rel for k, (o, r) in pairs.items() if k.startswith(f"it{i + 1}/"))

    # how a difference grows along the trajectory (this run's own figures), and float32 rounding's own reach
    marks = sorted({0, *range(4, n_it, 5), n_it - 1})
    growth = ", worst relative difference after iteration " + ", ".join(
        f"{i + 1}: {worst_rel(traj_pairs, i):.2g}" for i in marks
    )
    if traj_perturbed:
        ulp_pairs = {
            f"it{i + 1}/{k}": (traj_perturbed[i][k], traj_ours[i][k]) for i in range(n_it) for k in traj_perturbed[i]
        }
        growth += (
            "; float32 rounding alone (ganworks vs ganworks with every weight moved by 1 ulp, same batches and draws): "
            + ", ".join(f"{i + 1}: {worst_rel(ulp_pairs, i):.2g}" for i in marks)
        )
    ck(
        f"MNIST {n_it} whole training iterations: every parameter after each iteration",
        f"{ref_file}: train_batch_disc + train_batch_gen",
        "train.loop.train_iteration",
        traj_pairs,
        rtol=C.RTOL_TRAJECTORY,
        note="Ours vs reference" + growth + ".",
    )
    for i in (0, n_it - 1):
        ck(
            f"MNIST training trajectory after iteration {i + 1}",
            f"{ref_file}: train_batch_disc + train_batch_gen",
            "train.loop.train_iteration",
            {k: v for k, v in traj_pairs.items() if k.startswith(f"it{i + 1}/")},
            rtol=C.RTOL_TRAJECTORY,
        )
    if traj_perturbed:
        pairs = {
            f"it{i + 1}/{k}": (traj_perturbed[i][k], traj_ours[i][k]) for i in range(n_it) for k in traj_perturbed[i]
        }
        ck(
            f"MNIST {n_it} iterations, ganworks vs ganworks with every weight moved by 1 ulp (no reference)",
            "(none: float32 rounding floor)",
            "train.loop.train_iteration",
            pairs,
            rtol=C.RTOL_TRAJECTORY,
            deviation=True,
            note="same batches and random draws; measures how far float32 rounding alone carries "
            "a training trajectory (ReLU units near 0 flip, Adam rescales small gradient entries)",
        )
    beta = cfg["train"]["ema_d"]
    avg_raw, avg_corr = {}, {}
    for i, P in enumerate(traj_ours):
        for k, v in P.items():
            if k.startswith("avg_") and f"traj{i}_{k}" in ref:
                r = ref[f"traj{i}_{k}"]
                avg_raw[f"it{i + 1}/{k}"] = (v, r)
                avg_corr[f"it{i + 1}/{k}"] = (v, r / (1.0 - beta ** (i + 1)))
    ck(
        "MNIST averaged D for testing, as the reference keeps it",
        f"{ref_file}: disc_avg_updates",
        "train.averaging.EMA",
        avg_raw,
        deviation=True,
        note="by design: ganworks bias-corrects the average (README 'Deliberate deviations'); the reference's "
        "average starts at 0 and is a ← a + 1e-4 (p − a), so after t steps it is (1 − 0.9999^t) times ours",
    )
    ck(
        "MNIST averaged D, reference divided by (1 − 0.9999^t)",
        f"{ref_file}: disc_avg_updates",
        "train.averaging.EMA",
        avg_corr,
        rtol=C.RTOL_TRAJECTORY,
        deviation=True,
        note="still differs after the bias correction: Theano applies all updates of train_batch_disc at once, so "
        "the reference's a ← a + 1e-4 (p − a) uses the parameters from BEFORE that D step (it averages "
        "p_0 … p_(t−1)); ganworks' EMA is updated after the optimizer step (p_1 … p_t). A one-step lag, "
        "negligible once thousands of steps are averaged; see the next row",
    )
    # ganworks' EMA (train.averaging.EMA) fed ganworks' own parameters from BEFORE each D step, in the
    # reference's form (× (1 − 0.9999^t)): the reference's average with its one-step lag
    lagged, prev = {}, [post] + traj_ours[:-1]
    d_keys = [k for k in post if k.startswith("d")]
    form = ema_reference_form([{k: np.asarray(prev[i][k]) for k in d_keys} for i in range(n_it)], beta)
    for i in range(n_it):
        for k in d_keys:
            if f"traj{i}_avg_{k}" in ref:
                lagged[f"it{i + 1}/avg_{k}"] = (form[i][k], ref[f"traj{i}_avg_{k}"])
    ck(
        "MNIST averaged D: reference = ganworks' EMA of ganworks' parameters before each D step, × (1 − 0.9999^t)",
        f"{ref_file}: disc_avg_updates",
        "train.averaging.EMA (sec_averaging.ema_reference_form) on the trajectory above",
        lagged,
        rtol=C.RTOL_TRAJECTORY,
        note="confirms the one-step lag of the reference's average (and that nothing else differs in it), through "
        "ganworks' own EMA module; its accuracy is bounded by the trajectory row's",
    )
    return checks
