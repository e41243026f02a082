"""Reference-equivalence driver: ganworks vs the authors' code, number for number.

Runs in ganworks' environment. For each section it computes ganworks' side, writes the weights,
inputs and every random draw to an .npz, runs one of our small scripts (``ref_*.py``) under the
reference environment's Python — which imports the authors' modules from the checkouts given on
the command line — reads the outputs back and compares (``compare.py``). Nothing of the reference
code is imported into this process.

    PYTHONPATH=src python benchmarks/reference_equivalence/run.py \\
        --improved-gan ~/.cache/ganworks/refsrc/improved-gan --lasagne ~/.cache/ganworks/refsrc/Lasagne \\
        --sngan-projection ~/.cache/ganworks/refsrc/sngan_projection \\
        --chainer-gan-lib ~/.cache/ganworks/refsrc/chainer-gan-lib \\
        --theano-python ~/.cache/ganworks/refenv/theano/bin/python \\
        --chainer-python ~/.cache/ganworks/refenv/chainer/bin/python \\
        --tf-python ~/.cache/ganworks/refenv/tf/bin/python  [--only mnist,sngan,imagenet-tf]

Writes benchmarks/results/reference_equivalence.{json,md} (sections not run keep their old rows).
See README.md in this folder for setting the reference environments up.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import defaultdict, deque
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
import compare as C  # noqa: E402
import sngan_dynamics  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
LAST_OURS: dict = {}


def run_reference(python: str, script: str, args: list[str], inp: dict, env_extra: dict, tmp: Path, tag: str) -> dict:
    """Write ``inp`` to an .npz, run ``script`` under ``python``, return its output .npz as a dict."""
    fin, fout = tmp / f"{tag}-in.npz", tmp / f"{tag}-out.npz"
    np.savez(fin, **{k: np.asarray(v) for k, v in inp.items()})
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **env_extra}
    env.pop("PYTHONPATH", None)
    cmd = ["nice", "-n", "10", python, str(HERE / script), *args, str(fin), str(fout)]
    t0 = time.time()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    print(proc.stdout[-2000:], end="")
    if proc.returncode != 0:
        print(proc.stderr[-6000:], file=sys.stderr)
        raise SystemExit(f"reference script {script} failed (exit {proc.returncode})")
    print(f"[{tag}] reference side ran in {time.time() - t0:.0f}s")
    return dict(np.load(fout))


DTYPE = np.float32


def npy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(DTYPE)


class Draws:
    """Every random draw of ganworks' side, recorded per source; optionally replayed from a queue."""

    def __init__(self) -> None:
        self.record: dict[str, list[torch.Tensor]] = defaultdict(list)
        self.replay: dict[str, deque] = defaultdict(deque)

    def draw(self, key: str, fresh):
        q = self.replay[key]
        x = q.popleft() if q else fresh()
        self.record[key].append(x.detach().clone())
        return x


# =========================================================================================
# Improved-GAN MNIST (Theano + Lasagne)
# =========================================================================================

def mnist_section(a, tmp: Path, dtype: str = "float32", match_g_eps: bool = False) -> list[C.Check]:
    """Improved-GAN MNIST in ``dtype``: float32 is the target; float64 separates implementation
    differences from float32 rounding amplified by training (ReLU kinks, Adam's per-entry scaling)."""
    global DTYPE
    DTYPE = np.dtype(dtype).type
    wide = dtype == "float64"
    tag = (" [float64" + (", G eps matched]" if match_g_eps else "]")) if wide else ""
    from torch.nn.utils import parametrize

    import ganworks.train.experiment as E
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
        eps = draws.draw(keys.get(id(self), f"unnamed{id(self)}"), lambda: torch.randn_like(x))
        return x + self.sigma * eps

    init_inputs = []
    orig_ddi = E.data_dependent_init

    def ddi(model, *inputs, **kw):
        init_inputs.append(inputs[0].detach().clone())
        return orig_ddi(model, *inputs, **kw)

    cfg = resolve("improved-gan/mnist-100", ["train.epochs=1", "eval.grid=0"])
    orig_forward = GaussianNoise.forward
    GaussianNoise.forward = noise_forward
    E.data_dependent_init = ddi
    try:
        exp = E.Experiment(cfg, torch.device("cpu"))
    finally:
        E.data_dependent_init = orig_ddi
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
        G.sample_z = lambda n, device=None: draws.draw("z", lambda: orig_sample_z(n, device=device).to(D.out.bias.dtype))
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
            return {G.body[0].weight: "g0_W", G.body[1].bias: "g0_bnb", G.body[3].weight: "g1_W",
                    G.body[4].bias: "g1_bnb", w.original1: "g2_W", w.original0: "g2_scale", G.out.bias: "g2_b"}

        def to_ref_shape(name, t):
            x = npy(t)
            if name.endswith(("_theta", "_W")):
                return x.T
            if name.endswith("_scale"):
                return x.reshape(-1)
            return x

        post = ref_layout(G, D)
        pre = {k: (np.ones_like(v) if k.startswith("d") and k.endswith("_scale") else
                   np.zeros_like(v) if k.startswith("d") and k.endswith("_b") else v) for k, v in post.items()}

        # ---- one step on our side: D loss, G loss, their gradients (iteration 0's batch and draws) ----
        state0 = exp.state_dict()
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
        ours_step = {"d_logits_lab": npy(d_outs[0]), "d_logits_unl": npy(d_outs[1]), "d_logits_fake": npy(d_outs[2]),
                     "g_out_dstep": npy(g_outs[0]).reshape(g_outs[0].shape[0], -1),
                     "loss_lab": npy(logs["loss_lab"]), "loss_unl": npy(logs["loss_unl"])}
        ours_gd = {f"grad_d_{n}": to_ref_shape(n, g) for (p, n), g in zip(dnames.items(), dgrads)}
        d_outs.clear(), g_outs.clear()
        with parametrize.cached():
            gloss, _ = obj.g_loss(batch0)
            gnames = {p: n for p, n in g_param_names(G).items() if p.requires_grad}
            ggrads = torch.autograd.grad(gloss, list(gnames))
        hd.remove(), hg.remove()
        ours_step.update({"g_out_gstep": npy(g_outs[0]).reshape(g_outs[0].shape[0], -1),
                          "feat_mean_real": npy(d_outs[0][1].mean(0)), "feat_mean_fake": npy(d_outs[1][1].mean(0)),
                          "loss_gen": npy(gloss)})
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
            with torch.no_grad():
                for p in list(G.parameters()) + list(D.parameters()):
                    p.mul_(1 + 2.0 ** -23)
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
                draws.record[f"noise{k}"] += [*rec[3 * i].split(n_b), *rec[3 * i + 1:3 * i + 3]]
    inp = {"dtype": dtype, "batch_size": cfg["data"]["batch_size"], "unlabeled_weight": cfg["objective"]["unlabeled_weight"],
           "lr": cfg["optim"]["lr"], "init_x": npy(init_inputs[0]).reshape(init_inputs[0].shape[0], -1)}
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
    p0 = rs.randn(50, 20).astype(DTYPE)
    grads = rs.randn(4, 50, 20).astype(DTYPE) * np.logspace(-7, 0, 20, dtype=DTYPE)
    grads[:, :3, :] = 0.0
    inp.update(adam_p0=p0, adam_grads=grads, adam_lr=cfg["optim"]["lr"], adam_b1=cfg["optim"]["beta1"],
               adam_b2=cfg["optim"]["beta2"])
    p = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    opt = AdamEpsInsideSqrt([p], lr=cfg["optim"]["lr"], betas=(cfg["optim"]["beta1"], cfg["optim"]["beta2"]),
                            eps=cfg["optim"]["eps"])
    adam_ours = []
    for g in grads:
        p.grad = torch.from_numpy(g.copy())
        opt.step()
        adam_ours.append(npy(p))

    compiledir = Path(a.theano_compiledir).expanduser()
    flags = f"device=cpu,floatX={dtype},blas.ldflags=,base_compiledir={compiledir}"
    ref = run_reference(a.theano_python, "ref_improved_gan_mnist.py",
                        ["--improved-gan", a.improved_gan, "--lasagne", a.lasagne], inp,
                        {"THEANO_FLAGS": flags}, tmp, "mnist-" + dtype)

    checks = []

    def ck(component, *args, **kw):
        checks.append(C.check(component + tag, *args, section=sec, **kw))

    if not wide:
      ck("MNIST data-dependent init (D: g and b of all 6 layers)", f"{ref_file}: init_param (nn.DenseLayer init=True)",
       "nn.weight_norm.data_dependent_init",
       {f"{k}_{n}": (post[f"{k}_{n}"], ref[f"init_{k}_{n}"]) for k in [f"d{i}" for i in range(6)] for n in ("scale", "b")})
    ck("MNIST D forward (noise injected): logits on labeled, unlabeled, generated batch",
       f"{ref_file}: output_before_softmax_{{lab,unl,fake}}", "models.improved_gan_mnist.MnistDiscriminator",
       {k: (ours_step[k], ref["step_" + k]) for k in ("d_logits_lab", "d_logits_unl", "d_logits_fake")})
    ck("MNIST G forward (BN batch statistics)", f"{ref_file}: gen_dat", "models.improved_gan_mnist.MnistGenerator",
       {k: (ours_step[k], ref["step_" + k]) for k in ("g_out_dstep", "g_out_gstep")})
    ck("MNIST semi-supervised D loss (L_lab, L_unl)", f"{ref_file}: loss_lab, loss_unl",
       "objectives.SemiSupervisedGAN.d_loss", {k: (ours_step[k], ref["step_" + k]) for k in ("loss_lab", "loss_unl")})
    ck("MNIST D gradients w.r.t. every trainable parameter", f"{ref_file}: T.grad(loss_lab + w·loss_unl, disc_params)",
       "autograd", C.pair_up(ours_gd, {k[5:]: v for k, v in ref.items() if k.startswith("step_grad_d_")}))
    ck("MNIST feature-matching G loss (and the matched feature means)", f"{ref_file}: loss_gen, mom_gen, mom_real",
       "objectives.SemiSupervisedGAN.g_loss",
       {k: (ours_step[k], ref["step_" + k]) for k in ("loss_gen", "feat_mean_real", "feat_mean_fake")})
    ck("MNIST G gradients w.r.t. every trainable parameter", f"{ref_file}: T.grad(loss_gen, gen_params)", "autograd",
       C.pair_up(ours_gg, {k[5:]: v for k, v in ref.items() if k.startswith("step_grad_g_")}))
    ck("Adam with eps inside the sqrt, 4 steps on given gradients (lr 0.003, β1 0.5)", "nn.py: adam_updates",
       "train.optim.AdamEpsInsideSqrt", {f"step{t + 1}": (adam_ours[t], ref[f"adam_p{t}"]) for t in range(len(grads))})
    traj_pairs = {}
    for i, P in enumerate(traj_ours):
        for k, v in P.items():
            if not k.startswith("avg_"):
                traj_pairs[f"it{i + 1}/{k}"] = (v, ref[f"traj{i}_{k}"])
    ck(f"MNIST {n_it} whole training iterations: every parameter after each iteration",
       f"{ref_file}: train_batch_disc + train_batch_gen", "train.loop.train_iteration", traj_pairs,
       rtol=C.RTOL_TRAJECTORY)
    for i in (0, n_it - 1):
        ck(f"MNIST training trajectory after iteration {i + 1}", f"{ref_file}: train_batch_disc + train_batch_gen",
           "train.loop.train_iteration", {k: v for k, v in traj_pairs.items() if k.startswith(f"it{i + 1}/")},
           rtol=C.RTOL_TRAJECTORY)
    if traj_perturbed:
        pairs = {f"it{i + 1}/{k}": (traj_perturbed[i][k], traj_ours[i][k]) for i in range(n_it) for k in traj_perturbed[i]}
        ck(f"MNIST {n_it} iterations, ganworks vs ganworks with every weight moved by 1 ulp (no reference)",
           "(none: float32 rounding floor)", "train.loop.train_iteration", pairs, rtol=C.RTOL_TRAJECTORY,
           deviation=True, note="same batches and random draws; measures how far float32 rounding alone carries "
                                "a training trajectory (ReLU units near 0 flip, Adam rescales small gradient entries)")
    beta = cfg["train"]["ema_d"]
    avg_raw, avg_corr = {}, {}
    for i, P in enumerate(traj_ours):
        for k, v in P.items():
            if k.startswith("avg_") and f"traj{i}_{k}" in ref:
                r = ref[f"traj{i}_{k}"]
                avg_raw[f"it{i + 1}/{k}"] = (v, r)
                avg_corr[f"it{i + 1}/{k}"] = (v, r / (1.0 - beta ** (i + 1)))
    ck("MNIST averaged D for testing, as the reference keeps it", f"{ref_file}: disc_avg_updates", "train.averaging.EMA",
       avg_raw, deviation=True,
       note="by design: ganworks bias-corrects the average (README 'Deliberate deviations'); the reference's "
            "average starts at 0 and is a ← a + 1e-4 (p − a), so after t steps it is (1 − 0.9999^t) times ours")
    ck("MNIST averaged D, reference divided by (1 − 0.9999^t)", f"{ref_file}: disc_avg_updates",
       "train.averaging.EMA", avg_corr, rtol=C.RTOL_TRAJECTORY, deviation=True,
       note="still differs after the bias correction: Theano applies all updates of train_batch_disc at once, so "
            "the reference's a ← a + 1e-4 (p − a) uses the parameters from BEFORE that D step (it averages "
            "p_0 … p_(t−1)); ganworks' EMA is updated after the optimizer step (p_1 … p_t). A one-step lag, "
            "negligible once thousands of steps are averaged; see the next row")
    # the reference's average recomputed from ganworks' own trajectory with that one-step lag
    lagged, prev = {}, [post] + traj_ours[:-1]
    acc = {k: np.zeros_like(v, dtype=np.float64) for k, v in post.items() if k.startswith("d")}
    for i in range(n_it):
        for k in acc:
            acc[k] += (1.0 - beta) * (prev[i][k].astype(np.float64) - acc[k])
            if f"traj{i}_avg_{k}" in ref:
                lagged[f"it{i + 1}/avg_{k}"] = (acc[k].copy(), ref[f"traj{i}_avg_{k}"])
    ck("MNIST averaged D: reference = uncorrected EMA of ganworks' parameters before each D step",
       f"{ref_file}: disc_avg_updates", "(trajectory above)", lagged, rtol=C.RTOL_TRAJECTORY,
       note="confirms the one-step lag of the reference's average (and that nothing else differs in it); "
            "its accuracy is bounded by the trajectory row's")
    return checks


# =========================================================================================
# Improved-GAN CIFAR-10 (Theano + Lasagne): feature-matching models, minibatch discrimination
# =========================================================================================

def cifar_section(a, tmp: Path) -> list[C.Check]:
    from torch.nn.utils import parametrize

    from ganworks.models import build_model
    from ganworks.nn.minibatch_discrimination import MinibatchDiscrimination
    from ganworks.nn.weight_norm import data_dependent_init
    from ganworks.objectives import OBJECTIVES

    global DTYPE
    DTYPE = np.float32
    sec = "improved-gan-cifar"
    ref_file = "mnist_svhn_cifar10/train_cifar_feature_matching.py"
    torch.manual_seed(0)
    rs = np.random.RandomState(1)
    inp: dict = {"n": 8}
    n = inp["n"]

    # ---- minibatch discrimination on its own (nn.MinibatchLayer), incl. its data-dependent init ----
    md = MinibatchDiscrimination(24, num_kernels=10, dim_per_kernel=5)
    inp.update(md_theta=npy(md.theta), md_lws=npy(md.log_weight_scale), md_b=npy(md.bias),
               md_x_init=rs.randn(16, 24).astype(np.float32), md_x=rs.randn(n, 24).astype(np.float32),
               md_R=rs.randn(n, 34).astype(np.float32))
    md_ours = {"md_init_out": npy(md.data_dependent_init_(torch.from_numpy(inp["md_x_init"]))),
               "md_init_lws": npy(md.log_weight_scale), "md_init_b": npy(md.bias)}
    x = torch.from_numpy(inp["md_x"]).requires_grad_(True)
    y = md(x)
    g = torch.autograd.grad((y * torch.from_numpy(inp["md_R"])).sum(), [md.theta, md.log_weight_scale, md.bias, x])
    md_ours.update({"md_out": npy(y), "md_grad_theta": npy(g[0]), "md_grad_lws": npy(g[1]), "md_grad_b": npy(g[2]),
                    "md_grad_x": npy(g[3])})

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
                gg = gg * torch.sqrt(nv ** 2 + EPS) / nv
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
            gparams = {"g1_W": G.dense.weight, "g1_b": G.norm0.bias, "g3_W": G.deconv1.weight, "g3_b": G.norm1.bias,
                       "g4_W": G.deconv2.weight, "g4_b": G.norm2.bias,
                       "g5_W": G.out.parametrizations.weight.original1, "g5_g": G.out.parametrizations.weight.original0,
                       "g5_b": G.out.bias}
            gr = torch.autograd.grad(loss, list(gparams.values()))
        with torch.no_grad():
            g_out = G(z)
    finally:
        torch.nn.Dropout.forward = orig_dropout
    flip = lambda v: np.ascontiguousarray(v[:, :, ::-1, ::-1])  # noqa: E731
    conv_g = {"g1_W": lambda v: np.ascontiguousarray(v.T), "g3_W": flip, "g4_W": flip, "g5_W": flip,
              "g5_g": lambda v: v.reshape(-1)}
    ours_step = {"d_logits_lab": npy(logits), "g_out": npy(g_out), "feat_mean_unl": npy(outs[0][1].mean(0)),
                 "feat_mean_gen": npy(outs[1][1].mean(0)), "loss_gen": npy(loss)}
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
    ref = run_reference(a.theano_python, "ref_improved_gan_cifar.py",
                        ["--improved-gan", a.improved_gan, "--lasagne", a.lasagne], inp,
                        {"THEANO_FLAGS": flags}, tmp, "cifar")

    checks = []

    def ck(*args, **kw):
        checks.append(C.check(*args, section=sec, **kw))

    ck("Minibatch discrimination: data-dependent init (log scale, bias, output)", "nn.py: MinibatchLayer (init=True)",
       "nn.minibatch_discrimination.MinibatchDiscrimination.data_dependent_init_",
       {k: (md_ours["md_init_" + k], ref["md_init_" + k]) for k in ("out", "lws", "b")})
    ck("Minibatch discrimination: forward and gradients (θ, log scale, bias, input)", "nn.py: MinibatchLayer",
       "nn.minibatch_discrimination.MinibatchDiscrimination",
       {k: (md_ours["md_" + k], ref["md_" + k]) for k in ("out", "grad_theta", "grad_lws", "grad_b", "grad_x")})

    def eff(P, k, eps):
        W, gg = P[k + "_W"].astype(np.float64), P[k + "_g"].astype(np.float64)
        axes = (0, 2, 3) if k == "g5" else ((1, 2, 3) if W.ndim == 4 else (0,))
        return gg / np.sqrt((W ** 2).sum(axis=axes) + eps)

    wn_names = [f"d{i}" for i in ref_idx] + ["d14", "g5"]
    ck("CIFAR-10 data-dependent init: effective scale g/‖V‖ and bias of every weight-normalised layer (D and G)",
       f"{ref_file}: init_updates (nn.WeightNormLayer init=True)", "nn.weight_norm.data_dependent_init",
       {**{f"{k}_scale": (eff(post_plain, k, 0.0), eff({**pre, **{k + "_g": ref[f"init_{k}_g"]}}, k, EPS))
           for k in wn_names},
        **{f"{k}_b": (post_plain[k + "_b"], ref[f"init_{k}_b"]) for k in wn_names}})
    ck("CIFAR-10 weight-norm scale g after init (raw parameter)", f"{ref_file}: init_updates",
       "nn.weight_norm.data_dependent_init",
       {f"{k}_g": (post_plain[k + "_g"], ref[f"init_{k}_g"]) for k in wn_names}, deviation=True,
       note="by design (README 'Weight-norm epsilon'): the reference divides by √(‖V‖² + 1e-6), ganworks by ‖V‖, "
            "so the same effective weight needs a g larger by √(1 + 1e-6/‖V‖²) on the reference side; for the "
            "first conv (‖V‖² ≈ 27·0.05² ≈ 0.07) that is ~7e-6 — the row above shows the effective weights agree")
    ck("CIFAR-10 D forward, dropout masks injected (logits on a labeled batch)",
       f"{ref_file}: disc_layers (get_output deterministic=False)", "models.improved_gan_cifar.CifarDiscriminator",
       {"d_logits_lab": (ours_step["d_logits_lab"], ref["step_d_logits_lab"])},
       note="reference's g set to the value with the same effective weight (see the init rows)")
    ck("CIFAR-10 G forward (BN batch statistics)", f"{ref_file}: gen_dat", "models.improved_gan_cifar.CifarGenerator",
       {"g_out": (ours_step["g_out"], ref["step_g_out"])})
    ck("CIFAR-10 feature-matching G loss (L1 of the feature means) and the matched means",
       f"{ref_file}: loss_gen = mean|m1 − m2|", "objectives.SemiSupervisedGAN.g_loss (feature_matching='l1')",
       {k: (ours_step[k], ref["step_" + k]) for k in ("loss_gen", "feat_mean_unl", "feat_mean_gen")})
    ck("CIFAR-10 G gradients of the feature-matching loss w.r.t. every parameter",
       f"{ref_file}: T.grad(loss_gen, gen_params)", "autograd",
       C.pair_up(ours_gg, {k[5:]: v for k, v in ref.items() if k.startswith("step_grad_g_")}), atol_of_check=True)
    return checks


# =========================================================================================
# SN-GAN (Chainer): sngan_projection and chainer-gan-lib
# =========================================================================================

def _chainer_names(model: torch.nn.Module, links: dict[str, tuple[str, bool]]) -> dict[str, str]:
    """our parameter name -> Chainer parameter name, given {our module path: (Chainer link path, is BN)}."""
    out = {}
    for name, _ in model.named_parameters():
        mod, _, leaf = name.rpartition(".")
        if mod.endswith("parametrizations.weight"):
            mod, leaf = mod[: -len(".parametrizations.weight")], "weight"
        link, is_bn = links[mod]
        out[name] = link + "/" + ({"weight": "gamma", "bias": "beta"} if is_bn else {"weight": "W", "bias": "b"})[leaf]
    return out


def _sn_modules(model):
    from torch.nn.utils import parametrize
    return {n: m for n, m in model.named_modules() if parametrize.is_parametrized(m, "weight")
            and hasattr(m.parametrizations.weight[0], "_u")}


def sngan_section(a, tmp: Path, dtype: str = "float32") -> list[C.Check]:
    from torch.nn.utils import parametrize

    from ganworks import losses
    from ganworks.models import build_model
    from ganworks.nn.spectral_norm import spectral_norm, spectral_norms
    from ganworks.train.optim import ADAM_SETTINGS, build_optimizer

    global DTYPE
    DTYPE = np.dtype(dtype).type
    wide = dtype == "float64"
    tdt = torch.float64 if wide else torch.float32
    sec = "sngan" + ("-float64" if wide else "")
    tag = " [float64]" if wide else ""
    torch.manual_seed(0)
    rs = np.random.RandomState(0)
    inp, ours = {"dtype": dtype}, {}
    n = 8

    # ---- one power iteration from the same u: linear, conv, embedding ----------------------------
    layers = {"linear": torch.nn.Linear(64, 32), "conv": torch.nn.Conv2d(16, 24, 3, padding=1),
              "embed": torch.nn.Embedding(10, 48)}
    for kind, layer in layers.items():
        layer.to(tdt)
        spectral_norm(layer)
        p = layer.parametrizations.weight
        W = torch.from_numpy(rs.randn(*p.original.shape).astype(DTYPE))
        u0 = torch.from_numpy(rs.randn(W.shape[0]).astype(DTYPE))
        with torch.no_grad():
            p.original.copy_(W)
            # Chainer's step is v ← Wᵀu/‖·‖ then u ← Wv/‖·‖; PyTorch's is u ← Wv/‖·‖ then v ← Wᵀu/‖·‖.
            # Giving PyTorch v = Wᵀu0/‖·‖ (Chainer's first half-step) makes both produce the same u.
            v0 = W.reshape(W.shape[0], -1).t() @ u0
            p[0]._v.copy_(v0 / (v0.norm() + 1e-12))
            p[0]._u.copy_(u0)
        layer.train()
        with parametrize.cached():
            wbar = layer.weight.detach().clone()
        inp[f"pi_{kind}_W"], inp[f"pi_{kind}_u"] = npy(W), npy(u0)[None]
        ours[f"pi_{kind}_u"] = npy(p[0]._u)
        ours[f"pi_{kind}_sigma"] = DTYPE(spectral_norms(layer)["weight"])
        ours[f"pi_{kind}_Wbar"] = npy(wbar)

    # ---- models: ResNet G/D at 32x32 (sngan_projection), standard CNN G/D (chainer-gan-lib) -------
    res_g = {"dense": ("/l1", False), "bn": ("/b5", True), "out": ("/c5", False)}
    for i in range(3):
        res_g.update({f"blocks.{i}.{c}": (f"/block{i + 2}/{c}", False) for c in ("c1", "c2", "c_sc")})
        res_g.update({f"blocks.{i}.{b}": (f"/block{i + 2}/{b}", True) for b in ("b1", "b2")})
    res_d = {f"blocks.{i}.{c}": (f"/block{i + 1}/{c}", False) for i in range(4) for c in ("c1", "c2", "c_sc")}
    res_d["out"] = ("/l5", False)
    cnn_g = {"dense": ("/l0", False), "dense_post.0": ("/bn0", True), "body.0": ("/dc1", False), "body.1": ("/bn1", True),
             "body.3": ("/dc2", False), "body.4": ("/bn2", True), "body.6": ("/dc3", False), "body.7": ("/bn3", True),
             "out": ("/dc4", False)}
    cnn_d = {f"body.{2 * j}": (f"/{c}", False) for j, c in enumerate(["c0_0", "c0_1", "c1_0", "c1_1", "c2_0", "c2_1", "c3_0"])}
    cnn_d["out"] = ("/l4", False)
    # G's last layer: our 3x3 Conv2d vs the code's stride-1 Deconvolution2D (transposed, flipped kernel)
    flip = {"/dc4/W": lambda w: np.ascontiguousarray(w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])}

    pairs_spec = [
        ("resh", "sngan-resnet-g", {}, "sngan-resnet-d", {}, res_g, res_d, "hinge", "normal"),
        ("resn", "sngan-resnet-g", {}, "sngan-resnet-d", {}, res_g, res_d, "ns", "normal"),
        ("cnn", "sngan-cnn-g", {"layout": "chainer"}, "sngan-cnn-d", {"layout": "chainer"}, cnn_g, cnn_d, "ns", "uniform"),
    ]
    results_models = {}
    for prefix, gname, gkw, dname, dkw, gmap, dmap, loss, zdist in pairs_spec:
        G, D = build_model(name=gname, **gkw).train().to(tdt), build_model(name=dname, **dkw).train().to(tdt)
        # converged singular vectors (exact SVD) for every SN layer, on both sides: one power step then
        # leaves sigma at the largest singular value, so the comparison isolates the architecture
        with torch.no_grad():
            for mname, m in _sn_modules(D).items():
                p = m.parametrizations.weight
                Wm = p.original.detach().double().reshape(p.original.shape[0], -1).numpy()
                U, S, Vt = np.linalg.svd(Wm, full_matrices=False)
                p[0]._u.copy_(torch.from_numpy(U[:, 0]))
                p[0]._v.copy_(torch.from_numpy(Vt[0]))
                inp[f"{prefix}D{dmap[mname][0]}/u"] = U[:, 0][None].astype(DTYPE)
        names_g, names_d = _chainer_names(G, gmap), _chainer_names(D, dmap)
        for model, names, role in ((G, names_g, "G"), (D, names_d, "D")):
            for pname, p in model.named_parameters():
                cname = names[pname]
                inp[f"{prefix}{role}{cname}"] = flip.get(cname, lambda w: w)(npy(p))
        z = rs.randn(n, 128) if zdist == "normal" else rs.uniform(-1, 1, (n, 128))
        x_real = rs.uniform(-1, 1, (n, 3, 32, 32))
        inp[prefix + "z"], inp[prefix + "x_real"] = z.astype(DTYPE), x_real.astype(DTYPE)
        zt, xt = torch.from_numpy(inp[prefix + "z"]), torch.from_numpy(inp[prefix + "x_real"])
        d_loss = losses.d_loss_hinge if loss == "hinge" else losses.d_loss_standard
        g_loss = losses.g_loss_hinge if loss == "hinge" else losses.g_loss_nonsaturating
        o = {}
        with parametrize.cached():
            with torch.no_grad():
                fake = G(zt)
            dr, df = D(xt), D(fake)
            L = d_loss(dr, df)
            dparams = dict(D.named_parameters())
            gr = torch.autograd.grad(L, list(dparams.values()))
        o.update({"g_out": npy(fake), "d_real": npy(dr).reshape(-1), "d_fake": npy(df).reshape(-1), "loss_d": npy(L)})
        o.update({f"D_grad{names_d[k]}": flip.get(names_d[k], lambda w: w)(npy(g)) for k, g in zip(dparams, gr)})
        with parametrize.cached():
            L = g_loss(D(G(zt)))
            gparams = dict(G.named_parameters())
            gr = torch.autograd.grad(L, list(gparams.values()))
        o["loss_g"] = npy(L)
        o.update({f"G_grad{names_g[k]}": flip.get(names_g[k], lambda w: w)(npy(g)) for k, g in zip(gparams, gr)})
        results_models[prefix] = o

    # ---- Adam, settings A-F: torch.optim.Adam as ganworks builds it vs chainer.optimizers.Adam ------
    p0 = rs.randn(40, 30).astype(DTYPE)
    normal_grads = rs.randn(3, 40, 30).astype(DTYPE)
    tiny_grads = (normal_grads * 1e-8).astype(DTYPE)
    inp["adam_p0"] = p0
    adam_ours = {}
    for name, (lr, b1, b2, _) in list(ADAM_SETTINGS.items()) + [("C_tiny", ADAM_SETTINGS["C"])]:
        grads = tiny_grads if name.endswith("tiny") else normal_grads
        inp.update({f"adam_{name}_lr": lr, f"adam_{name}_b1": b1, f"adam_{name}_b2": b2, f"adam_{name}_grads": grads})
        p = torch.nn.Parameter(torch.from_numpy(p0.copy()))
        opt = build_optimizer([p], {"name": "adam", "beta1": b1, "beta2": b2, "eps": 1e-8, "eps_inside_sqrt": False}, lr)
        for t, g in enumerate(grads):
            p.grad = torch.from_numpy(g.copy())
            opt.step()
            adam_ours[f"adam_{name}_p{t}"] = npy(p)

    LAST_OURS["sngan-" + dtype] = results_models  # kept for ad hoc inspection (e.g. float32 vs float64)
    ref = run_reference(a.chainer_python, "ref_sngan.py",
                        ["--sngan-projection", a.sngan_projection, "--chainer-gan-lib", a.chainer_gan_lib],
                        inp, {}, tmp, "sngan")

    ref64 = None
    if not wide:
        # the reference again, in float64 on the same (upcast) weights and inputs: tells float32
        # rounding on either side apart from a real difference
        inp64 = {k: (v.astype(np.float64) if isinstance(v, np.ndarray) and v.dtype == np.float32 else v)
                 for k, v in ((k, np.asarray(v)) for k, v in inp.items())}
        inp64["dtype"] = "float64"
        ref64 = run_reference(a.chainer_python, "ref_sngan.py",
                              ["--sngan-projection", a.sngan_projection, "--chainer-gan-lib", a.chainer_gan_lib],
                              inp64, {}, tmp, "sngan-ref64")

    checks = []

    def ck(component, *args, **kw):
        checks.append(C.check(component + tag, *args, section=sec, **kw))

    snp, cgl = "sngan_projection", "chainer-gan-lib"
    for kind, ref_fn in (("linear", "source/links/sn_linear.py: SNLinear.W_bar"),
                         ("conv", "source/links/sn_convolution_2d.py: SNConvolution2D.W_bar"),
                         ("embed", "source/links/sn_embed_id.py: SNEmbedID.W_bar")):
        ck(f"SN one power iteration, {kind}: updated u", f"{snp} {ref_fn}", "nn.spectral_norm",
           {"u": (ours[f"pi_{kind}_u"], ref[f"pi_{kind}_u"])})
        ck(f"SN one power iteration, {kind}: σ and W/σ", f"{snp} {ref_fn} (max_sv.max_singular_value)",
           "nn.spectral_norm", {"sigma": (ours[f"pi_{kind}_sigma"], ref[f"pi_{kind}_sigma"]),
                                "W_bar": (ours[f"pi_{kind}_Wbar"], ref[f"pi_{kind}_Wbar"])}, deviation=True,
           note="by design (nn/spectral_norm.py docstring): PyTorch's half-steps run u then v, Chainer's v then u, "
                "so from the same u one step gives σ = ‖Wᵀu₁‖ vs ‖Wv₁‖ (both lower bounds of σ(W) that converge "
                "at the same rate); equal once u has converged (see the model rows)")
    labels = {"resh": ("ResNet 32x32, hinge loss", f"{snp} gen_models/resnet_32.py: ResNetGenerator",
                      f"{snp} dis_models/snresnet_32.py: SNResNetProjectionDiscriminator", "models.sngan_resnet",
                      f"{snp} updater.py: loss_hinge_dis / loss_hinge_gen", "losses.d_loss_hinge / g_loss_hinge"),
              "resn": ("ResNet 32x32, non-saturating loss", f"{snp} gen_models/resnet_32.py: ResNetGenerator",
                         f"{snp} dis_models/snresnet_32.py: SNResNetProjectionDiscriminator", "models.sngan_resnet",
                         f"{snp} updater.py: loss_dcgan_dis / loss_dcgan_gen",
                         "losses.d_loss_standard / g_loss_nonsaturating"),
              "cnn": ("standard CNN (layout=chainer), non-saturating loss", f"{cgl} common/net.py: DCGANGenerator",
                      f"{cgl} common/net.py: SNDCGANDiscriminator", "models.sngan_cnn",
                      f"{snp} updater.py: loss_dcgan_dis / loss_dcgan_gen",
                      "losses.d_loss_standard / g_loss_nonsaturating")}
    for prefix, o in results_models.items():
        title, gref, dref, ourmod, lref, lours = labels[prefix]
        r = {k[len(prefix):]: v for k, v in ref.items() if k.startswith(prefix)}
        if prefix in ("resh", "cnn"):
            ck(f"SN-GAN {title.split(',')[0]}: G forward (BN training mode)", gref, ourmod, {"g_out": (o["g_out"], r["g_out"])})
            ck(f"SN-GAN {title.split(',')[0]}: D forward on real and generated batches", dref, ourmod,
               {k: (o[k], r[k]) for k in ("d_real", "d_fake")})
        ck(f"SN-GAN {title}: D loss and G loss", lref, lours, {k: (o[k], r[k]) for k in ("loss_d", "loss_g")})
        ck(f"SN-GAN {title}: D gradients w.r.t. every parameter (through σ)", f"{dref} + {lref.split(':')[0]}",
           "autograd", C.pair_up({k: v for k, v in o.items() if k.startswith("D_grad")},
                                 {k: v for k, v in r.items() if k.startswith("D_grad")}), atol_of_check=True)
        ck(f"SN-GAN {title}: G gradients w.r.t. every parameter", f"{gref} + D + loss", "autograd",
           C.pair_up({k: v for k, v in o.items() if k.startswith("G_grad")},
                     {k: v for k, v in r.items() if k.startswith("G_grad")}), atol_of_check=True,
           note="G's conv biases feed a BN, so their exact gradient is 0 and both sides return rounding noise: "
                "such arrays are judged against the check's largest gradient (see compare.py)")
        if ref64 is not None:
            r64 = {k[len(prefix):]: v for k, v in ref64.items() if k.startswith(prefix)}
            for who, grads_of in (("ganworks float32", o), ("reference float32", r)):
                for role in ("D", "G"):
                    ks = [k for k in r64 if k.startswith(role + "_grad")]
                    ck(f"SN-GAN {title}: {role} gradients, {who} vs the reference in float64 (same instance)",
                       f"{dref if role == 'D' else gref} (run in float64)", "autograd" if who.startswith("ganworks")
                       else "reference in float32", {k: (grads_of[k], r64[k]) for k in ks}, atol_of_check=True,
                       info=True, note="diagnostic: the float64 reference is the closest thing to exact here; "
                                       "whichever float32 side is far from it carries the float32 error")
    for name in ADAM_SETTINGS:
        lr, b1, b2, _ = ADAM_SETTINGS[name]
        ck(f"Adam setting {name} (lr {lr:g}, β1 {b1}, β2 {b2}), 3 steps", "chainer.optimizers.Adam (Chainer 7.8.1)",
           "train.optim.build_optimizer (torch.optim.Adam)",
           {f"step{t + 1}": (adam_ours[f"adam_{name}_p{t}"], ref[f"adam_{name}_p{t}"]) for t in range(3)})
    ck("Adam setting C, 3 steps on gradients of size 1e-8", "chainer.optimizers.Adam (Chainer 7.8.1)",
       "train.optim.build_optimizer (torch.optim.Adam)",
       {f"step{t + 1}": (adam_ours[f"adam_C_tiny_p{t}"], ref[f"adam_C_tiny_p{t}"]) for t in range(3)},
       deviation=True, note="by design of the frameworks: Chainer adds eps to √v, PyTorch to √v̂ = √v/√(1−β2^t); "
                            "visible only where √v is of order eps (1e-8)")
    return checks


# =========================================================================================
# SN-GAN, class-conditional pieces (sngan_projection, Chainer)
# =========================================================================================

#: conditional model pairs: prefix -> (image size, G width, D width, D conditioning, Chainer G module,
#: Chainer D module and class, G's last BN / conv link names); widths are small so that a pair runs in
#: seconds; the Chainer ``ch`` that gives the same channel counts is passed to the reference script.
COND_PAIRS = {
    "p32": (32, 1 / 16, 1 / 8, "projection", "gen_models/resnet_32.py", "dis_models/snresnet_32.py: SNResNetProjectionDiscriminator"),
    "p64": (64, 1 / 16, 1 / 16, "projection", "gen_models/resnet_64.py", "dis_models/snresnet_64.py: SNResNetProjectionDiscriminator"),
    "p128": (128, 1 / 16, 1 / 16, "projection", "gen_models/resnet.py", "dis_models/snresnet.py: SNResNetProjectionDiscriminator"),
    "c128": (128, 1 / 16, 1 / 16, "concat", "gen_models/resnet.py", "dis_models/snresnet.py: SNResNetConcatDiscriminator"),
}
COND_CLASSES = 10


def _cond_links(model: torch.nn.Module, role: str, image_size: int) -> dict[str, tuple[str, bool]]:
    """{our module path: (Chainer link path, is BN)} for sngan_projection's ResNet G / D: blocks are
    ``block2``... in G and ``block1``... in D; a conditional BN's tables are ``bN/gammas``, ``bN/betas``;
    the last layers are numbered after the blocks (``b5``/``c5`` in resnet_32.py, ``b6``/``l6``,
    ``b7``/``l7`` in resnet_64.py / resnet.py; ``l5``/``l6``/``l7`` and ``l_y`` in D)."""
    nb = len(model.blocks)
    off = 2 if role == "G" else 1
    out = {}
    for name, mod in model.named_modules():
        if not any(True for _ in mod.parameters(recurse=False)) and not name.endswith("parametrizations.weight"):
            continue
        name = name[: -len(".parametrizations.weight")] if name.endswith("parametrizations.weight") else name
        parts = name.split(".")
        if parts[0] == "blocks":
            link = f"/block{int(parts[1]) + off}/" + "/".join(parts[2:])
            out[name] = (link, parts[-1] in ("b1", "b2"))
        elif role == "G":
            last = {"dense": "/l1", "bn": f"/b{nb + 2}", "out": f"/c{nb + 2}" if image_size == 32 else f"/l{nb + 2}"}
            out[name] = (last[name], name == "bn")
        else:
            out[name] = ({"out": f"/l{nb + 1}", "embed": "/l_y"}[name], False)
    return out


def sngan_cond_section(a, tmp: Path, dtype: str = "float32") -> list[C.Check]:
    """The class-conditional SN-GAN pieces vs sngan_projection: categorical conditional BN, the
    conditional ResNet G (32, 64, 128 px), the projection D (32, 64, 128 px) and the concat D (128 px)
    with the hinge loss; weights, z, images, classes and converged SN vectors identical on both sides."""
    from torch.nn.utils import parametrize

    from ganworks import losses
    from ganworks.models import build_model
    from ganworks.nn.conditional_batch_norm import CategoricalConditionalBatchNorm2d

    global DTYPE
    DTYPE = np.dtype(dtype).type
    wide = dtype == "float64"
    tdt = torch.float64 if wide else torch.float32
    sec = "sngan-cond" + ("-float64" if wide else "")
    tag = " [float64]" if wide else ""
    torch.manual_seed(0)
    rs = np.random.RandomState(12)
    inp, ours = {"dtype": dtype, "n_classes": COND_CLASSES}, {}
    n, K = 8, COND_CLASSES

    # ---- categorical conditional BN on its own ------------------------------------------------------
    Cc = 16
    cbn = CategoricalConditionalBatchNorm2d(Cc, K).to(tdt).train()
    inp["cbn_gammas"] = (1 + 0.3 * rs.randn(K, Cc)).astype(DTYPE)
    inp["cbn_betas"] = (0.3 * rs.randn(K, Cc)).astype(DTYPE)
    inp["cbn_x"] = (0.5 + 2 * rs.randn(n, Cc, 6, 6)).astype(DTYPE)
    inp["cbn_y"] = rs.randint(0, K, n).astype(np.int32)
    inp["cbn_r"] = rs.randn(n, Cc, 6, 6).astype(DTYPE)            # loss = Σ out · r
    inp["cbn_w"] = rs.dirichlet(np.ones(K), n).astype(DTYPE)       # class weights (interpolation)
    inp["cbn_rmean"] = (0.3 * rs.randn(Cc)).astype(DTYPE)          # running statistics for eval mode
    inp["cbn_rvar"] = rs.uniform(0.5, 2.0, Cc).astype(DTYPE)
    with torch.no_grad():
        cbn.gammas.weight.copy_(torch.from_numpy(inp["cbn_gammas"]))
        cbn.betas.weight.copy_(torch.from_numpy(inp["cbn_betas"]))
    x = torch.from_numpy(inp["cbn_x"]).requires_grad_(True)
    y = torch.from_numpy(inp["cbn_y"]).long()
    out = cbn(x, y)
    gx, gg, gb = torch.autograd.grad((out * torch.from_numpy(inp["cbn_r"])).sum(), [x, cbn.gammas.weight, cbn.betas.weight])
    ours.update({"cbn_out": npy(out), "cbn_grad_x": npy(gx), "cbn_grad_gammas": npy(gg), "cbn_grad_betas": npy(gb),
                 "cbn_avg_mean": npy(cbn.bn.running_mean), "cbn_avg_var": npy(cbn.bn.running_var)})
    with torch.no_grad():
        ours["cbn_out_weights"] = npy(cbn(x, torch.from_numpy(inp["cbn_w"])))
        cbn.bn.running_mean.copy_(torch.from_numpy(inp["cbn_rmean"]))
        cbn.bn.running_var.copy_(torch.from_numpy(inp["cbn_rvar"]))
        cbn.eval()
        ours["cbn_out_eval"] = npy(cbn(x, y))

    # ---- conditional G and projection / concat D, hinge loss ---------------------------------------
    results_models = {}
    for prefix, (size, gw, dw, cond, _, _) in COND_PAIRS.items():
        G = build_model(name="sngan-resnet-g", image_size=size, width=gw, num_classes=K).train().to(tdt)
        D = build_model(name="sngan-resnet-d", image_size=size, width=dw, num_classes=K,
                        conditioning=cond).train().to(tdt)
        # non-trivial per-class γ, β (they start at 1 and 0 for every class)
        with torch.no_grad():
            for m in G.modules():
                if isinstance(m, CategoricalConditionalBatchNorm2d):
                    m.gammas.weight.add_(0.2 * torch.randn_like(m.gammas.weight))
                    m.betas.weight.add_(0.2 * torch.randn_like(m.betas.weight))
        gmap, dmap = _cond_links(G, "G", size), _cond_links(D, "D", size)
        inp[f"{prefix}_ch_g"] = G.blocks[-1].c2.out_channels        # Chainer ch: G's last block width
        inp[f"{prefix}_ch_d"] = D.blocks[0].c1.out_channels         # Chainer ch: D's first block width
        with torch.no_grad():  # converged singular vectors (exact SVD) for every SN layer, both sides
            for mname, m in _sn_modules(D).items():
                p = m.parametrizations.weight
                Wm = p.original.detach().double().reshape(p.original.shape[0], -1).numpy()
                U, S, Vt = np.linalg.svd(Wm, full_matrices=False)
                p[0]._u.copy_(torch.from_numpy(U[:, 0]))
                p[0]._v.copy_(torch.from_numpy(Vt[0]))
                inp[f"{prefix}D{dmap[mname][0]}/u"] = U[:, 0][None].astype(DTYPE)
        names_g, names_d = _chainer_names(G, gmap), _chainer_names(D, dmap)
        for model, names, role in ((G, names_g, "G"), (D, names_d, "D")):
            for pname, p in model.named_parameters():
                inp[f"{prefix}{role}{names[pname]}"] = npy(p)
        inp[prefix + "z"] = rs.randn(n, 128).astype(DTYPE)
        inp[prefix + "x_real"] = rs.uniform(-1, 1, (n, 3, size, size)).astype(DTYPE)
        inp[prefix + "y_real"] = rs.randint(0, K, n).astype(np.int32)
        inp[prefix + "y_fake"] = rs.randint(0, K, n).astype(np.int32)
        zt, xt = torch.from_numpy(inp[prefix + "z"]), torch.from_numpy(inp[prefix + "x_real"])
        yr, yf = (torch.from_numpy(inp[prefix + k]).long() for k in ("y_real", "y_fake"))
        o = {}
        with parametrize.cached():
            with torch.no_grad():
                fake = G(zt, yf)
            dr, df = D(xt, yr), D(fake, yf)
            L = losses.d_loss_hinge(dr, df)
            dparams = dict(D.named_parameters())
            gr = torch.autograd.grad(L, list(dparams.values()))
        o.update({"g_out": npy(fake), "d_real": npy(dr).reshape(-1), "d_fake": npy(df).reshape(-1), "loss_d": npy(L)})
        o.update({f"D_grad{names_d[k]}": npy(g) for k, g in zip(dparams, gr)})
        with parametrize.cached():
            L = losses.g_loss_hinge(D(G(zt, yf), yf))
            gparams = dict(G.named_parameters())
            gr = torch.autograd.grad(L, list(gparams.values()))
        o["loss_g"] = npy(L)
        o.update({f"G_grad{names_g[k]}": npy(g) for k, g in zip(gparams, gr)})
        results_models[prefix] = o

    LAST_OURS["sngan-cond-" + dtype] = {"cbn": ours, **results_models}
    ref = run_reference(a.chainer_python, "ref_sngan_cond.py", ["--sngan-projection", a.sngan_projection],
                        inp, {}, tmp, "sngan-cond" + ("64" if wide else ""))
    ref64 = None
    if not wide:  # the reference again in float64 on the same (upcast) inputs, as in sngan_section
        inp64 = {k: (v.astype(np.float64) if v.dtype == np.float32 else v) for k, v in
                 ((k, np.asarray(v)) for k, v in inp.items())}
        inp64["dtype"] = "float64"
        ref64 = run_reference(a.chainer_python, "ref_sngan_cond.py", ["--sngan-projection", a.sngan_projection],
                              inp64, {}, tmp, "sngan-cond-ref64")

    checks = []

    def ck(component, *args, **kw):
        checks.append(C.check(component + tag, *args, section=sec, **kw))

    snp = "sngan_projection"
    cbn_ref = f"{snp} source/links/categorical_conditional_batch_normalization.py: CategoricalConditionalBatchNormalization"
    cbn_ours = "nn.conditional_batch_norm.CategoricalConditionalBatchNorm2d"
    ck("Categorical conditional BN: forward, training mode (batch statistics, per-class γ, β)", cbn_ref, cbn_ours,
       {"out": (ours["cbn_out"], ref["cbn_out"])})
    ck("Categorical conditional BN: gradients w.r.t. input, γ table and β table", cbn_ref, "autograd",
       {k: (ours[f"cbn_grad_{k}"], ref[f"cbn_grad_{k}"]) for k in ("x", "gammas", "betas")})
    ck("Categorical conditional BN: forward with class weights (class interpolation)",
       f"{cbn_ref} (c = all classes, weights=w)", cbn_ours + " (y = class weights)",
       {"out": (ours["cbn_out_weights"], ref["cbn_out_weights"])})
    ck("Categorical conditional BN: forward, eval mode (the same running statistics)", cbn_ref, cbn_ours,
       {"out": (ours["cbn_out_eval"], ref["cbn_out_eval"])})
    ck("Categorical conditional BN: running mean after one training step", cbn_ref, cbn_ours,
       {"avg_mean": (ours["cbn_avg_mean"], ref["cbn_avg_mean"])})
    ck("Categorical conditional BN: running variance after one training step",
       f"{snp} source/links/conditional_batch_normalization.py: ConditionalBatchNormalization.avg_var", cbn_ours,
       {"avg_var": (ours["cbn_avg_var"], ref["cbn_avg_var"])}, deviation=True,
       note="the reference's conditional BN starts its running variance at 0 (numpy.zeros), ganworks (torch "
            "BatchNorm2d, as Chainer's own L.BatchNormalization) at 1: after t training steps the two differ by "
            "0.9^t exactly (0.9 here, 0.005 after 50 steps, < 1e-5 after 110); the running statistics are used "
            "only in eval mode (sample generation), so only samples drawn in the first ~100 iterations differ")
    for prefix, o in results_models.items():
        size, _, _, cond, gfile, dref = COND_PAIRS[prefix]
        r = {k[len(prefix):]: v for k, v in ref.items() if k.startswith(prefix)}
        title = f"cond. ResNet {size}x{size}, {cond} D, {K} classes"
        gref = f"{snp} {gfile}: ResNetGenerator(n_classes)"
        dref = f"{snp} {dref}"
        lref = f"{snp} updater.py: loss_hinge_dis / loss_hinge_gen"
        ck(f"SN-GAN {title}: G(z, y) forward (conditional BN, training mode)", gref,
           "models.sngan_resnet (num_classes)", {"g_out": (o["g_out"], r["g_out"])})
        eps_note = ("float64: ~1e-11 rather than ~1e-16 because the power iteration's norm is ‖x‖ + 1e-12 in the "
                    "reference and max(‖x‖, 1e-12) in ganworks, a relative 1e-12/‖x‖ per normalisation (below float32 "
                    "rounding); with the reference script's _l2normalize given max(‖x‖, 1e-12) instead, these float64 "
                    "rows measured 1e-16 to 2e-14 (2026-11-24)") if wide else ""
        ck(f"SN-GAN {title}: D(x, y) forward on real and generated batches", dref,
           f"models.sngan_resnet (conditioning={cond})", {k: (o[k], r[k]) for k in ("d_real", "d_fake")}, note=eps_note)
        ck(f"SN-GAN {title}: D loss and G loss (hinge)", lref, "losses.d_loss_hinge / g_loss_hinge",
           {k: (o[k], r[k]) for k in ("loss_d", "loss_g")})
        ck(f"SN-GAN {title}: D gradients w.r.t. every parameter (through σ, incl. the SN class embedding)",
           f"{dref} + {lref.split(':')[0]}", "autograd",
           C.pair_up({k: v for k, v in o.items() if k.startswith("D_grad")},
                     {k: v for k, v in r.items() if k.startswith("D_grad")}), atol_of_check=True, note=eps_note)
        ck(f"SN-GAN {title}: G gradients w.r.t. every parameter (incl. per-class γ, β)", f"{gref} + D + loss",
           "autograd", C.pair_up({k: v for k, v in o.items() if k.startswith("G_grad")},
                                 {k: v for k, v in r.items() if k.startswith("G_grad")}), atol_of_check=True,
           note="G's conv biases feed a BN, so their exact gradient is 0 and both sides return rounding noise: "
                "such arrays are judged against the check's largest gradient (see compare.py)")
        if ref64 is not None:
            r64 = {k[len(prefix):]: v for k, v in ref64.items() if k.startswith(prefix)}
            fwd = ("g_out", "d_real", "d_fake", "loss_d", "loss_g")
            for who, vals in (("ganworks float32", o), ("reference float32", r)):
                note = ("diagnostic: the float64 reference is the closest thing to exact here; whichever float32 "
                        "side is far from it carries the float32 error")
                ck(f"SN-GAN {title}: G/D outputs and losses, {who} vs the reference in float64 (same instance)",
                   f"{gref} + {dref} (run in float64)", "ours" if who.startswith("ganworks") else "reference in float32",
                   {k: (vals[k], r64[k]) for k in fwd}, info=True, note=note)
                for role in ("D", "G"):
                    ks = [k for k in r64 if k.startswith(role + "_grad")]
                    ck(f"SN-GAN {title}: {role} gradients, {who} vs the reference in float64 (same instance)",
                       f"{gref} + {dref} (run in float64)", "autograd" if who.startswith("ganworks") else
                       "reference in float32", {k: (vals[k], r64[k]) for k in ks}, atol_of_check=True, info=True,
                       note=note)
    return checks


# =========================================================================================
# Improved-GAN ImageNet (TensorFlow through tf.compat.v1): VBN and minibatch discrimination
# =========================================================================================

def imagenet_tf_section(a, tmp: Path, dtype: str = "float32") -> list[C.Check]:
    """VBN (model.py class VBN through DCGAN.vbn) and the discriminator's inline minibatch
    discrimination (discriminator.py) vs ganworks' VirtualBatchNorm and JointMinibatchDiscrimination,
    on the same inputs and weights; forward values and gradients of a fixed random linear loss."""
    global DTYPE
    DTYPE = np.dtype(dtype).type
    wide = dtype == "float64"
    tag = " [float64]" if wide else ""
    sec = "improved-gan-imagenet-tf" + ("-float64" if wide else "")
    from ganworks.models.improved_gan_imagenet import ImageNetDiscriminator
    from ganworks.nn.vbn import VirtualBatchNorm
    from ganworks.objectives.improved_gan_imagenet import gan_logit_from_1001

    tdt = torch.float64 if wide else torch.float32
    torch.manual_seed(12)
    rs = np.random.RandomState(12)
    T = lambda x: torch.from_numpy(np.ascontiguousarray(x)).to(tdt)  # noqa: E731
    nhwc = lambda x: np.ascontiguousarray(np.moveaxis(x, 1, -1)) if x.ndim == 4 else x  # noqa: E731
    inp = {"dtype": dtype, "seed": 0}
    ours = {}
    # ---- VBN: a reference batch of 16 (the per-GPU batch) and a live batch of 5 -------------------
    n_ref, n_live = 16, 5
    for case, shape in (("conv", (6, 4, 4)), ("dense", (7,))):
        p = f"vbn_{case}_"
        xr = (rs.randn(n_ref, *shape) * 2 + 0.5).astype(DTYPE)
        xl = (rs.randn(n_live, *shape) * 2 + 0.5).astype(DTYPE)
        wr, wl = rs.randn(*xr.shape).astype(DTYPE), rs.randn(*xl.shape).astype(DTYPE)
        vbn = VirtualBatchNorm(shape[0], n_ref).to(tdt)
        with torch.no_grad():
            vbn.beta.copy_(T(0.1 * rs.randn(shape[0])))
        inp.update({p + "x_ref": nhwc(xr), p + "x_live": nhwc(xl), p + "w_ref": nhwc(wr), p + "w_live": nhwc(wl),
                    p + "gamma": npy(vbn.gamma), p + "beta": npy(vbn.beta)})
        xr_t, xl_t = T(xr).requires_grad_(), T(xl).requires_grad_()
        y = vbn(torch.cat([xr_t, xl_t]))
        loss = (y[:n_ref] * T(wr)).sum() + (y[n_ref:] * T(wl)).sum()
        g = torch.autograd.grad(loss, [xr_t, xl_t, vbn.gamma, vbn.beta])
        ours.update({p + "y_ref": nhwc(npy(y[:n_ref])), p + "y_live": nhwc(npy(y[n_ref:])),
                     p + "grad_x_ref": nhwc(npy(g[0])), p + "grad_x_live": nhwc(npy(g[1])),
                     p + "grad_gamma": npy(g[2]), p + "grad_beta": npy(g[3])})
    # ---- minibatch discrimination: the reference's D (df_dim 4, per-half batch 4) produces h ------
    B, df = 4, 4
    D = ImageNetDiscriminator(df=df).to(tdt)
    with torch.no_grad():
        # at init (N(0, 0.02²) weights) the L1 distances over 50 dims are ~15 and every exp(−d) is ~1e-6
        # or less; scaled by 0.1 the distances are O(1), so the similarities (and their gradients) matter
        D.md.linear.weight.mul_(0.1)
        D.md.linear.bias.copy_(0.01 * torch.randn(D.md.linear.bias.shape))
    inp.update({"md_batch_size": B, "md_df_dim": df,
                "md_image": rs.uniform(-1, 1, (2 * B, 128, 128, 3)).astype(DTYPE),
                "normal_draw": rs.randn(2 * B, 128, 128, 3).astype(DTYPE),
                "md_w_f": rs.randn(2 * B, 600).astype(DTYPE), "md_w_cls": rs.randn(B, 1001).astype(DTYPE),
                "md_w_gan": rs.randn(2 * B).astype(DTYPE),
                "md_d_h_Matrix": npy(D.md.linear.weight).T, "md_d_h_bias": npy(D.md.linear.bias),
                "md_d_indiv_logits_Matrix": npy(D.out.weight).T, "md_d_indiv_logits_bias": npy(D.out.bias)})
    env = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0"}
    ref = run_reference(a.tf_python, "ref_improved_gan_imagenet_tf.py", ["--improved-gan", a.improved_gan],
                        inp, env, tmp, "imagenet-tf-" + dtype)

    # ganworks on the reference's h (the input of the minibatch layer)
    w_f, w_cls, w_gan = T(inp["md_w_f"]), T(inp["md_w_cls"]), T(inp["md_w_gan"])
    h = T(ref["md_h"]).requires_grad_()
    f = D.md(h)
    g = torch.autograd.grad((f * w_f).sum(), [h, D.md.linear.weight, D.md.linear.bias])
    o = {"f": npy(f), "gmd_h": npy(g[0]), "gmd_d_h_Matrix": npy(g[1]).T, "gmd_d_h_bias": npy(g[2])}
    logits = D.out(torch.cat([h, D.md(h)], dim=1))  # ImageNetDiscriminator.forward after the features
    gan = gan_logit_from_1001(logits)
    loss = (logits[:B] * w_cls).sum() + (gan * w_gan).sum()
    g = torch.autograd.grad(loss, [h, D.md.linear.weight, D.md.linear.bias, D.out.weight, D.out.bias])
    o.update({"class_logits_real": npy(logits[:B]), "gan_logits_real": npy(gan[:B]), "gan_logits_fake": npy(gan[B:]),
              "ghead_h": npy(g[0]), "ghead_d_h_Matrix": npy(g[1]).T, "ghead_d_h_bias": npy(g[2]),
              "ghead_d_indiv_logits_Matrix": npy(g[3]).T, "ghead_d_indiv_logits_bias": npy(g[4])})
    LAST_OURS["imagenet-tf-" + dtype] = {"vbn": ours, "md": o, "ref": ref}

    checks = []

    def ck(component, *args, **kw):
        checks.append(C.check(component + tag, *args, section=sec, **kw))

    mref, dref = "imagenet/model.py: VBN (DCGAN.vbn)", "imagenet/discriminator.py: discriminator"
    for case, label in (("conv", "conv (16+5, 6, 4, 4)"), ("dense", "dense (16+5, 7)")):
        p = f"vbn_{case}_"
        ck(f"ImageNet VBN, {label}: reference rows and live rows", mref, "nn.vbn.VirtualBatchNorm",
           {k: (ours[p + k], ref[p + k]) for k in ("y_ref", "y_live")})
        ck(f"ImageNet VBN, {label}: gradients w.r.t. reference batch, live batch, γ, β", f"{mref} + tf.gradients",
           "autograd", {k: (ours[p + k], ref[p + k]) for k in ("grad_x_ref", "grad_x_live", "grad_gamma", "grad_beta")})
    md_note = ("the denominator of each half's sum is the reference's tf.reduce_sum(half(mask, s)), one scalar "
               f"B(2B−1) (= {B * (2 * B - 1)} here), which ganworks follows (not a per-row mean; see "
               "JointMinibatchDiscrimination)")
    ck(f"ImageNet minibatch discrimination (300 kernels × 50, joint batch 2×{B}): features",
       f"{dref}: f1, f2", "models.improved_gan_imagenet.JointMinibatchDiscrimination",
       {"f": (o["f"], ref["md_f"])}, note=md_note)
    ck("ImageNet minibatch discrimination: gradients w.r.t. h, d_h W, d_h b",
       f"{dref} + tf.gradients", "autograd",
       {k: (o[k], ref["md_" + k]) for k in ("gmd_h", "gmd_d_h_Matrix", "gmd_d_h_bias")}, atol_of_check=True,
       note="the d_h bias's exact gradient is 0 (it shifts every sample's M alike, so no L1 distance changes); "
            "both sides return rounding noise, judged against the check's largest gradient (compare.py)")
    ck("ImageNet D head from h (MD → 1001 class logits → GAN logit): forward",
       f"{dref}: class_logits, gan_logits", "models.improved_gan_imagenet + objectives.gan_logit_from_1001",
       {k: (o[k], ref["md_" + k]) for k in ("class_logits_real", "gan_logits_real", "gan_logits_fake")})
    ck("ImageNet D head from h: gradients w.r.t. h and every head parameter",
       f"{dref} + tf.gradients", "autograd",
       {k: (o[k], ref["md_" + k]) for k in ("ghead_h", "ghead_d_h_Matrix", "ghead_d_h_bias",
                                           "ghead_d_indiv_logits_Matrix", "ghead_d_indiv_logits_bias")},
       atol_of_check=True)
    return checks


# =========================================================================================
# Improved-GAN SVHN (both scripts) and the CIFAR-10 minibatch-discrimination script's whole step
# =========================================================================================

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
        out.update(d14_theta=(mb.theta, ident, None), d14_lws=(mb.log_weight_scale, ident, None),
                   d14_b=(mb.bias, ident, None))
        dense = 15
    wn(f"d{dense}", D.out, tr, (1,))
    out.update(g1_W=(G.dense.weight, tr, None), g1_b=(G.norm0.bias, ident, None),
               g3_W=(G.deconv1.weight, flip, None), g3_b=(G.norm1.bias, ident, None),
               g4_W=(G.deconv2.weight, flip, None), g4_b=(G.norm2.bias, ident, None))
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
            P[name] = npy(p.detach().double().reshape(-1) * torch.sqrt(nv ** 2 + _IGAN_EPS) / nv)
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
    return g / np.sqrt((W ** 2).sum(axis=_igan_wn_axes(k, W)) + eps)


def _igan_ref_g_as_ours(P_ref: dict, k: str) -> np.ndarray:
    """the reference's g expressed as ganworks' g of the same effective weight: g·‖V‖/√(‖V‖² + 1e-6)"""
    W = P_ref[k + "_W"].astype(np.float64)
    nv2 = (W ** 2).sum(axis=_igan_wn_axes(k, W))
    return P_ref[k + "_g"] * np.sqrt(nv2 / (nv2 + _IGAN_EPS))


@contextlib.contextmanager
def _igan_record_noise(D, draws: Draws):
    """Record every dropout mask and Gaussian-noise draw of D (keys noise<k>, k in module order = the
    order of the reference's noise layers); dropout as Lasagne computes it: rescale, then mask."""
    from ganworks.nn.noise import GaussianNoise

    mods = [m for m in D.modules() if isinstance(m, (torch.nn.Dropout, GaussianNoise))]
    for k, m in enumerate(mods):
        m.eq_noise_key = f"noise{k}"  # an attribute, so that a deep copy of D draws under the same keys
    orig = torch.nn.Dropout.forward, GaussianNoise.forward

    def dropout_forward(self, x):
        if not self.training or self.p == 0:
            return x
        mask = draws.draw(self.eq_noise_key, lambda: torch.bernoulli(torch.full_like(x, 1 - self.p)))
        return x / (1 - self.p) * mask

    def noise_forward(self, x):
        if not self.training or self.sigma == 0.0:
            return x
        return x + self.sigma * draws.draw(self.eq_noise_key, lambda: torch.randn_like(x))

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
    return run_reference(a.theano_python, "ref_improved_gan_conv.py",
                         ["--improved-gan", a.improved_gan, "--lasagne", a.lasagne, "--script", script,
                          "--mode", mode], inp, {"THEANO_FLAGS": flags}, tmp, tag)


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
        ours = {"d_logits_lab": npy(d_outs[0]), "d_logits_unl": npy(d_outs[1]), "d_logits_gen": npy(d_outs[2]),
                "g_out": npy(g_outs[0]), "loss_lab": npy(logs["loss_lab"]), "loss_unl": npy(logs["loss_unl"])}
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


def _igan_conv_grads(a, tmp: Path, dtype: str, dataset: str, variant: str, script: str, sec: str,
                     tag: str, match_eps: bool = False) -> list[C.Check]:
    """Init, D and G forward, D loss and G loss with their gradients: ganworks vs ``script``."""
    from ganworks.nn.weight_norm import data_dependent_init

    global DTYPE
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
            DTYPE = np.float64
            try:
                wide64 = _igan_losses_and_grads(G64, D64, z.double(), x_lab.double(), y_lab, x_unl.double(),
                                                x_unl2.double(), fm)
            finally:
                DTYPE = np.float32
            assert all(not q for q in draws.replay.values())
            draws.record.clear()
            draws.record.update(rec)
    # per noise layer: the D loss's lab, unl, gen passes; then the G loss's passes
    g_passes = ("fmunl", "fmgen") if fm else ("gen",)
    inp = {"n": n, "z_init": npy(z_init), "x_init": npy(x_init), "z": npy(z), "x_lab": npy(x_lab),
           "y_lab": y_lab.numpy().astype(np.int32), "x_unl": npy(x_unl), "x_unl2": npy(x_unl2)}
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

    wn_names = sorted({k[:-2] for k in names if k.endswith("_g")})
    pairs = {f"{k}_scale": (_igan_eff_scale(post_plain, k, 0.0),
                            _igan_eff_scale({**pre, k + "_g": ref[f"init_{k}_g"]}, k, _IGAN_EPS)) for k in wn_names}
    pairs.update({f"{k}_b": (post_plain[k + "_b"], ref[f"init_{k}_b"]) for k in wn_names})
    if not fm:
        pairs.update({k: (post_plain[k], ref["init_" + k]) for k in ("d14_lws", "d14_b")})
    ck("data-dependent init: effective scale g/‖V‖ and bias of every weight-normalised layer (D and G)"
       + ("" if fm else ", minibatch layer's log scale and bias"),
       f"{ref_file}: init_param (init_updates)", "nn.weight_norm.data_dependent_init", pairs,
       note="the raw g differs by design by √(1 + 1e-6/‖V‖²) (the reference's weight-norm epsilon; see the "
            "CIFAR-10 rows); from here on the reference's g is set to give ganworks' effective weight")
    noise = "dropout masks" if fm else "Gaussian input noise and dropout masks"
    ck(f"D forward, {noise} injected: logits on labeled, unlabeled, generated batches",
       f"{ref_file}: output_before_softmax_{{lab,unl,gen}}", dname,
       {k: (ours[k], ref["step_" + k]) for k in ("d_logits_lab", "d_logits_unl", "d_logits_gen")})
    ck("G forward (BN batch statistics)", f"{ref_file}: gen_dat", "models.improved_gan_cifar.CifarGenerator",
       {"g_out": (ours["g_out"], ref["step_g_out"])})
    ck("semi-supervised D loss (supervised and unsupervised parts)", f"{ref_file}: loss_lab, loss_unl",
       "objectives.SemiSupervisedGAN.d_loss", {k: (ours[k], ref["step_" + k]) for k in ("loss_lab", "loss_unl")})
    ck("D gradients of loss_lab + loss_unl w.r.t. every parameter",
       f"{ref_file}: T.grad(loss_lab + unlabeled_weight·loss_unl, disc_params)", "autograd",
       C.pair_up(ours_gd, {k[5:]: v for k, v in ref.items() if k.startswith("step_grad_d_")}), atol_of_check=True,
       note="" if wide64 is None else
       "float32: where this row misses 1e-5 it is rounding — see the 'vs ganworks in float64 (same instance)' info "
       "rows: ganworks' float32 gradients of the first convs differ from its own float64 ones as much (PyTorch's "
       "float32 conv backward: measured 9e-5 with oneDNN, 7e-4 with torch.backends.mkldnn disabled, SVHN MD), "
       "while the [float64, WN eps matched] rows agree to ~1e-14")
    if fm:
        ck("feature-matching G loss (L1 of the feature means) and the matched means",
           f"{ref_file}: loss_gen = mean|m1 − m2|", "objectives.SemiSupervisedGAN.g_loss (feature_matching='l1')",
           {k: (ours[k], ref["step_" + k]) for k in ("loss_gen", "feat_mean_unl", "feat_mean_gen")})
    else:
        ck("G loss −mean softplus(logsumexp(D(G(z))))", f"{ref_file}: loss_gen = −mean(softplus(l_gen))",
           "objectives.SemiSupervisedGAN.g_loss (feature_matching='': losses.g_loss_minimax)",
           {"loss_gen": (ours["loss_gen"], ref["step_loss_gen"])})
    ck("G gradients of the G loss w.r.t. every parameter", f"{ref_file}: T.grad(loss_gen, gen_params)", "autograd",
       C.pair_up(ours_gg, {k[5:]: v for k, v in ref.items() if k.startswith("step_grad_g_")}), atol_of_check=True,
       note="G's dense/deconv layers feed a BN: gradients that are zero by construction are judged against the "
            "check's largest gradient (compare.py)")
    if wide64 is not None:
        _, gd64, gg64 = wide64
        for role, mine, w64 in (("D", ours_gd, gd64), ("G", ours_gg, gg64)):
            rr = {k[5:]: v for k, v in ref.items() if k.startswith(f"step_grad_{role.lower()}_")}
            for who, grads_of in (("ganworks float32", mine), ("reference float32", rr)):
                ck(f"{role} gradients, {who} vs ganworks in float64 (same instance)", "ganworks in float64",
                   "autograd" if who.startswith("ganworks") else "reference in float32",
                   C.pair_up(grads_of, w64), atol_of_check=True, info=True,
                   note="diagnostic: the float64 computation is the closest thing to exact here (it carries the "
                        "weight-norm epsilon difference of ~1e-5 on the first conv's gradients, see the [float64] "
                        "rows); a float32 side far from it carries float32 rounding")
    return checks


def svhn_section(a, tmp: Path, dtype: str = "float32", match_eps: bool = False) -> list[C.Check]:
    """Improved-GAN SVHN: both released scripts (feature matching, minibatch discrimination)."""
    global DTYPE
    DTYPE = np.dtype(dtype).type
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

    global DTYPE
    DTYPE = np.dtype(dtype).type
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
            params = {"d": [p for p in D.parameters() if p.requires_grad],
                      "g": [p for p in G.parameters() if p.requires_grad]}
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
                        k: v[1](npy(v[0])) for k, v in names.items() if k[0] == self.role[0] and v[0].requires_grad}
                    self.k += 1

            ema = {"d": EMA(D, beta)}
            exp = types.SimpleNamespace(
                position={"epoch": 0, "index": 0, "iteration": 0}, G=G, D=D,
                stream=types.SimpleNamespace(batch=lambda epoch, index: batch, batches_per_epoch=10 ** 9),
                objective=obj, params=params, phase_context=lambda phase: contextlib.nullcontext(),
                optimizers={"d": Opt("d"), "g": Opt("g")}, ema=ema, schedulers={}, phase_loss=None)
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
                    p.mul_(1 + 2.0 ** -23)
            _, after_ulp, _ = iterate(G0, D0)
            assert all(not q for q in draws.replay.values())
            draws.record.clear()
            draws.record.update(rec)
    assert [ph for ph, _ in logs] == ["d"] + ["g"] * g_steps
    inp = {"n": n, "g_steps": g_steps, "lr": optim["lr"], "x_lab": npy(x_lab), "y_lab": y_lab.numpy().astype(np.int32),
           "x_unl": npy(x_unl)}
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

    def ref_after(prefix):
        P = {k[len(prefix):]: v for k, v in ref.items() if k.startswith(prefix)}
        if match_eps:
            return P
        return {k: (_igan_ref_g_as_ours(P, k[:-2]) if k.endswith("_g") else v) for k, v in P.items()}

    d_logs = logs[0][1]
    ck("D step losses", f"{ref_file}: train_batch_disc outputs loss_lab, loss_unl", "train.loop.train_iteration",
       {k: (npy(d_logs[k]), ref["dstep_" + k]) for k in ("loss_lab", "loss_unl")})
    note_g = ("trainable weight-norm scales g are compared as ganworks' g of the same effective weight: the "
              "reference's g·‖V‖/√(‖V‖² + 1e-6)") if not match_eps else (
              "the harness gives every weight-normalised layer of ganworks the reference's formula "
              "g·V/√(‖V‖² + 1e-6), to show that nothing else differs")
    # float64 without the matched epsilon: what is left is the weight-norm epsilon (a documented deviation,
    # shown to be the only difference by the [float64, WN eps matched] rows); float32: rounding, see the 1-ulp row
    eps_dev = wide and not match_eps
    if eps_dev:
        note_g += ("; what differs is the weight-norm epsilon (README 'Weight-norm epsilon'): it changes the "
                   "gradients w.r.t. V by ~ε/‖V‖² (1e-5 on the first conv), which Adam's first step turns into "
                   "larger relative changes of entries with tiny gradients; with the epsilon matched the same "
                   "iteration agrees to ~1e-13")
    elif not wide:
        note_g += ("; float32: the target cannot be met by a whole Adam iteration — the 1-ulp row (ganworks "
                   "against itself) moves the same arrays by the same order (abs 1e-4 to 6e-4, a fraction of lr); "
                   "the worst arrays are G's BN shifts, which start at 0, so their scale is ~lr; the "
                   "[float64, WN eps matched] rows agree to ~1e-13")
    ck("every D parameter after the D update (semi-supervised loss, Adam with ε inside √, β1 0.5)",
       f"{ref_file}: train_batch_disc (nn.adam_updates)", "train.loop.train_iteration + train.optim.AdamEpsInsideSqrt",
       C.pair_up(after["d"], ref_after("after_d_")), note=note_g, deviation=eps_dev)
    for j in range(g_steps):
        ck(f"every G parameter after G update {j + 1} of {g_steps} (−mean softplus(l_gen), fresh z and D noise)",
           f"{ref_file}: train_batch_gen (nn.adam_updates)",
           "train.loop.train_iteration + objectives.SemiSupervisedGAN.g_loss (feature_matching='')",
           C.pair_up(after[f"g{j}"], ref_after(f"after_g{j}_")), rtol=C.RTOL_STEP, note=note_g if j == 0 else "",
           deviation=eps_dev)
    avg_file = f"{ref_file}: disc_param_avg, disc_avg_updates"
    d_keys = [k for k in post if "avg_" + k in ref]  # the script averages its trainable D parameters
    assert d_keys and len(d_keys) == sum(k.startswith("avg_") for k in ref), d_keys
    ck("averaged D after the D update, as the reference keeps it: 0.0001 × the parameters before the step",
       avg_file, "(ganworks' initial D parameters)",
       {k: ((1.0 - beta) * post[k].astype(np.float64), ref["avg_" + k]) for k in d_keys},
       note="the script's average starts at 0 and is a ← a + 0.0001 (p − a), with p the parameters from BEFORE "
            "the D step (Theano applies all of train_batch_disc's updates at once): after one step it is "
            "0.0001 × the initial D parameters, as here; the MNIST rows check the same formula over 20 iterations")
    ck("averaged D after the D update: ganworks' (bias-corrected) vs the reference's divided by (1 − 0.9999)",
       avg_file, "train.averaging.EMA", {k: (avg_ours[k], ref["avg_" + k] / (1.0 - beta)) for k in d_keys},
       deviation=True,
       note="by design (README 'Deliberate deviations'): ganworks bias-corrects the average and updates it after "
            "the optimizer step, so after one step it is the parameters after that step; the reference's, "
            "corrected, is those before it. The difference is one Adam step (~lr = 3e-4 per entry) and fades as "
            "thousands of steps are averaged")
    ck("test-time D on the averaged parameters (logits and error; dropout and noise off), ganworks' average "
       "put into the reference's disc_param_avg",
       f"{ref_file}: test_batch (givens disc_avg_givens, deterministic=True)",
       "train.averaging.EMA.model + metrics.classification.count_errors (D in eval mode)",
       {"logits": (npy(test_logits), ref["test_logits_avg"]), "test_err": (npy(test_err), ref["test_err_avg"])},
       rtol=C.RTOL_STEP)
    if after_ulp is not None:
        ck("ganworks vs ganworks with every weight moved by 1 ulp (no reference): every parameter after each update",
           "ganworks (same batch and draws)", "train.loop.train_iteration",
           {f"{s_}/{k}": (after_ulp[s_][k], v) for s_ in after for k, v in after[s_].items()}, deviation=True,
           note="float32 sensitivity of one whole iteration: Adam's first step g/√(g² + 1e-8) turns a gradient entry "
                "near 1e-4 or below into an update of order lr, so float32 rounding in such entries (relative to the "
                "array's largest gradient) moves parameters by a sizeable fraction of lr; the [float64] rows show "
                "what is left without rounding")
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


# =========================================================================================

SECTIONS = {"mnist": mnist_section, "cifar": cifar_section, "sngan": sngan_section, "mnist64": lambda a, tmp: mnist_section(a, tmp, "float64"),
            "sngan64": lambda a, tmp: sngan_section(a, tmp, "float64"),
            "mnist64eps": lambda a, tmp: mnist_section(a, tmp, "float64", match_g_eps=True),
            "sngan-cond": sngan_cond_section, "sngan-cond64": lambda a, tmp: sngan_cond_section(a, tmp, "float64"),
            "imagenet-tf": imagenet_tf_section,
            "imagenet-tf64": lambda a, tmp: imagenet_tf_section(a, tmp, "float64"),
            "svhn": svhn_section, "svhn64": lambda a, tmp: svhn_section(a, tmp, "float64"),
            "svhn64eps": lambda a, tmp: svhn_section(a, tmp, "float64", match_eps=True),
            "cifar-md": cifar_md_section, "cifar-md64": lambda a, tmp: cifar_md_section(a, tmp, "float64"),
            "cifar-md64eps": lambda a, tmp: cifar_md_section(a, tmp, "float64", match_eps=True),
            "sngan-dynamics": sngan_dynamics.section}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    home = Path("~/.cache/ganworks").expanduser()
    ap.add_argument("--improved-gan", default=str(home / "refsrc/improved-gan"))
    ap.add_argument("--lasagne", default=str(home / "refsrc/Lasagne"))
    ap.add_argument("--sngan-projection", default=str(home / "refsrc/sngan_projection"))
    ap.add_argument("--chainer-gan-lib", default=str(home / "refsrc/chainer-gan-lib"))
    ap.add_argument("--theano-python", default=str(home / "refenv/theano/bin/python"))
    ap.add_argument("--chainer-python", default=str(home / "refenv/chainer/bin/python"))
    ap.add_argument("--tf-python", default=str(home / "refenv/tf/bin/python"))
    ap.add_argument("--theano-compiledir", default=str(home / "refenv/theano-compiledir"))
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections: {', '.join(SECTIONS)}")
    ap.add_argument("--iterations", type=int, default=20, help="whole training iterations compared (MNIST)")
    ap.add_argument("--out", default=str(RESULTS / "reference_equivalence"), help="results path without suffix")
    ap.add_argument("--merge", nargs="*", default=[], metavar="JSON",
                    help="also merge the rows (by section) and meta of these results files, e.g. from "
                         "sections run in parallel with other --out paths; --only '' merges without running")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    os.environ.setdefault("GANWORKS_DATA", "/work/shared/data")
    names = [s for s in a.only.split(",") if s]
    if not names and not a.merge:
        ap.error("nothing to do: give --only sections and/or --merge files")
    unknown = set(names) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown sections {sorted(unknown)}; known: {', '.join(SECTIONS)}")
    checks = []
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            checks += SECTIONS[name](a, Path(tmp))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").exists() else {}
    rows = C.merge_rows(old.get("checks", []), checks, {c.section for c in checks})
    merged_meta = {}
    for path in a.merge:
        other = json.loads(Path(path).read_text())
        secs = {r["section"] for r in other["checks"]}
        rows = [r for r in rows if r.get("section") not in secs] + other["checks"]
        merged_meta.update(other["meta"])
    commits = {}
    for k in ("improved_gan", "lasagne", "sngan_projection", "chainer_gan_lib"):
        f = Path(getattr(a, k)).parent / "COMMITS"
        if f.exists():
            commits = dict(line.split() for line in f.read_text().splitlines() if line.strip())
    meta = {**old.get("meta", {}), **merged_meta,
            "device": f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores shared with other "
                      f"jobs), float32 unless a row says [float64], 1 thread per side",
            "ganworks torch": torch.__version__,
            # checkouts of this run over those of earlier runs (a machine may hold only some of them)
            "reference checkouts": ({**(old.get("meta", {}).get("reference checkouts") or {}), **commits}
                                    if isinstance(old.get("meta", {}).get("reference checkouts"), dict) or commits
                                    else "see README.md"),
            "targets": f"single step {C.RTOL_STEP:g} relative, {a.iterations}-iteration trajectory "
                       f"{C.RTOL_TRAJECTORY:g} relative (issue 12)",
            "reading guide": "float32 rows are the issue's targets; [float64] rows repeat them in double precision, "
                             "where rounding is ~1e-16 and any larger difference is a real one. A float32 training "
                             "trajectory diverges from itself when every weight moves by one ulp (the 'ganworks vs "
                             "ganworks' row), so the float32 20-iteration row cannot meet 1e-4; [float64, G eps "
                             "matched] shows the 20 iterations equal to ~1e-13 once the one documented MNIST "
                             "difference (1e-6 in G's output weight norm) is given to ganworks by the harness. "
                             "The side-by-side whole training runs (reference MNIST script vs ganworks train, 30 epochs "
                             "x 3 seeds) are in side_by_side_mnist.md. Not compared: the rest of the ImageNet TF code "
                             "(whole G and D, losses)."}
    if names:
        run = ",".join(names)
        meta.update({f"run {run}: finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                     f"run {run}: wall time": f"{time.time() - t0:.0f}s",
                     f"run {run}: load average (1, 5, 15 min) at the end": [round(x, 2) for x in os.getloadavg()]})
    meta = {k: v for k, v in meta.items() if not k.startswith(("last run", "load average at end", "wall time of last"))}
    C.write_results(rows, meta, out.with_suffix(".json"), out.with_suffix(".md"))
    for c in checks:
        print(f"{c.status:9s} max_rel {c.max_rel:9.3g}  {c.component}")
    print(f"wrote {out.with_suffix('.json')} and .md")
    return 1 if any(c.status == "FAIL" for c in checks) else 0


if __name__ == "__main__":
    raise SystemExit(main())
