"""Runs under the Chainer reference environment (NOT ganworks'): chainer-gan-lib's WGAN-GP updater
(``wgan_gp/updater.py`` ``Updater.update_core``) with its critic ``common/net.py``
``WGANDiscriminator`` (whose ``differentiable_backward`` is the hand-written input gradient the
penalty uses), on weights, batches, z and interpolation weights read from an .npz. Two modes:

``--mode step``: one D step (n_dis = 1) at full width, on a given generated batch:

* the generator the updater calls is a stand-in returning the .npz's generated batch (``gen(z)``; the
  batch is the input of this comparison, so G's weights are not involved); its ``make_hidden`` returns
  zeros and its ``xp`` is NumPy except ``xp.random.uniform``, which returns the .npz's α (the updater's
  per-example interpolation weights);
* D's optimizer is a ``chainer.optimizers.SGD`` with lr 0 whose ``update`` first records D's gradients
  (after ``loss_dis.backward(); loss_gp.backward()``); the losses are read from a ``chainer.Reporter``.

``--mode dynamics``: whole updates (``Updater.update()``: n_dis D steps, the G step inside the first,
on the first D step's fakes, as ``update_core`` orders them) of chainer-gan-lib's ``DCGANGenerator``
and ``WGANDiscriminator`` at the .npz's width, ``chainer.optimizers.Adam`` on both (the run's lr, β1, β2,
eps), for T updates; after each it writes every parameter, Adam's m and v, G's BN running statistics,
and the losses each D step and the G step reported. Made from outside the reference code:

* the generator is ``DCGANGenerator`` itself, subclassed only so that ``make_hidden`` returns the
  .npz's next z (ganworks' draws; the updater draws z once per D step) and its ``xp`` (the updater's
  ``xp = self.gen.xp``) is NumPy except ``xp.random.uniform``, which returns the .npz's next α;
* the iterator yields the .npz's real batches in order;
* the losses are collected by a ``chainer.Reporter`` whose observation keeps every report;
* ``WGANDiscriminator.differentiable_backward`` hard-codes 512 channels in one reshape
  (``F.reshape(g, (x.shape[0], 512, 4, 4))``, correct at full width only); for the small widths of this
  mode ``common/net.py`` is executed from the checkout with that one ``512`` replaced by the model's own
  channel count (``self.c3_0.W.shape[0]``, 512 at full width; in memory; the text must occur once).
  ``--mode step`` uses the file as it is, at full width.

Both modes, float64 runs only: the updater's two ``astype("f")`` casts (real batch, α) become casts to
float64 (the module is executed from the checkout's source with that replacement, in memory).

Usage (the driver calls it): python ref_wgan_gp.py --chainer-gan-lib DIR [--mode step|dynamics] IN.npz OUT.npz
"""
import argparse
import sys
import types
from collections import deque

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--chainer-gan-lib", required=True)
ap.add_argument("--mode", choices=("step", "dynamics"), default="step")
ap.add_argument("inp")
ap.add_argument("out")
a = ap.parse_args()
CGL = a.chainer_gan_lib.rstrip("/")
sys.path[:0] = [CGL + "/common", CGL]

import chainer  # noqa: E402
import net  # noqa: E402  (chainer-gan-lib/common/net.py)

d = dict(np.load(a.inp))
out = {}


def exec_source(path, name, replace=()):
    """The module at ``path`` executed from its source with each (old, new, count) replacement."""
    src = open(path).read()
    for old, new, count in replace:
        assert src.count(old) == count, (path, old, src.count(old), count)
        src = src.replace(old, new)
    mod = types.ModuleType(name)
    mod.__file__ = path
    exec(compile(src, path, "exec"), mod.__dict__)
    return mod


def updater_class(dtype):
    """``wgan_gp/updater.py``'s ``Updater``; in a float64 run its two ``astype("f")`` casts are to float64."""
    rep = [('.astype("f")', ".astype(%r)" % dtype.name, 2)] if dtype != np.float32 else []
    if not rep:  # the float32 run executes the file as it is (still checking that the two casts are there)
        assert open(CGL + "/wgan_gp/updater.py").read().count('.astype("f")') == 2
    return exec_source(CGL + "/wgan_gp/updater.py", "wgan_gp_updater", rep).Updater


def load(model, prefix, src):
    params = dict(model.namedparams())
    names = sorted(k[len(prefix):] for k in src if k.startswith(prefix + "/"))
    assert sorted(params) == names, (prefix, sorted(set(params) ^ set(names)))
    for name, p in params.items():
        assert p.array.shape == src[prefix + name].shape, (prefix, name, p.array.shape, src[prefix + name].shape)
        p.array[...] = src[prefix + name]


class _Batches:
    def __init__(self, xs):
        self.xs, self.i = xs, 0

    def next(self):
        x = self.xs[self.i]
        self.i += 1
        return list(x)


class _Observation(dict):
    """A reporter's observation that keeps every reported value, in order, per key."""

    def update(self, values):
        for k, v in values.items():
            self.setdefault(k, []).append(np.asarray(getattr(v, "array", v)).copy())


def step():
    dtype = np.dtype(str(d["dtype"]))
    Updater = updater_class(dtype)
    chainer.global_config.dtype = dtype
    D = net.WGANDiscriminator()
    load(D, "D", d)
    xp = types.SimpleNamespace(asarray=np.asarray, ones_like=np.ones_like,
                               random=types.SimpleNamespace(uniform=lambda lo, hi, size: d["alpha"].copy()))

    class _Gen(chainer.Chain):
        @property
        def xp(self):
            return xp

        def make_hidden(self, n):
            return np.zeros((n, 1), dtype)

        def __call__(self, z):
            return chainer.Variable(d["x_fake"].copy())

    gen = _Gen()
    opt_gen, opt_dis = chainer.optimizers.SGD(lr=0.0), chainer.optimizers.SGD(lr=0.0)
    opt_gen.setup(gen)
    opt_dis.setup(D)
    _update = opt_dis.update

    def _record_then_update(*args, **kw):
        for name, p in D.namedparams():
            out["D_grad" + name] = p.grad.copy()
        return _update(*args, **kw)

    opt_dis.update = _record_then_update
    batches = _Batches(d["x_real"][None])
    upd = Updater(models=(gen, D), iterator={"main": batches},
                  optimizer={"opt_gen": opt_gen, "opt_dis": opt_dis}, n_dis=1, lam=float(d["lam"]))
    upd.get_iterator = lambda name: batches
    obs = _Observation()
    reporter = chainer.Reporter()
    with reporter.scope(obs):
        upd.update_core()
    for k in ("loss_dis", "loss_gp", "g", "loss_gen"):
        (out[k],) = obs[k]
    print("chainer-gan-lib WGAN-GP D step done")


def dynamics():
    # differentiable_backward's one hard-coded 512 (full width) -> the model's own channel count
    net_w = exec_source(CGL + "/common/net.py", "cgl_net_any_width",
                        [("g = F.reshape(g, (x.shape[0], 512, 4, 4))",
                          "g = F.reshape(g, (x.shape[0], self.c3_0.W.shape[0], 4, 4))", 1)])
    runs = sorted({k.split("/")[0] for k in d if "/" in k})
    for run in runs:
        c = lambda k: d[run + "/cfg/" + k].item()  # noqa: E731
        dtype = np.dtype(str(c("dtype")))
        chainer.global_config.dtype = dtype
        Updater = updater_class(dtype)
        zs = deque(d[run + "/z"])
        alphas = deque(d[run + "/alpha"])
        xp = types.SimpleNamespace(asarray=np.asarray, ones_like=np.ones_like,
                                   random=types.SimpleNamespace(uniform=lambda lo, hi, size: alphas.popleft()))

        class _Gen(net_w.DCGANGenerator):
            """DCGANGenerator; z and the updater's α come from the .npz (ganworks' draws)."""

            @property
            def xp(self):
                return xp

            def make_hidden(self, n):
                z = zs.popleft()
                assert z.shape == (n, self.n_hidden), (z.shape, n)
                return z.reshape(n, self.n_hidden, 1, 1)

        G = _Gen(n_hidden=128, bottom_width=4, ch=int(c("g_ch")))
        D = net_w.WGANDiscriminator(bottom_width=4, ch=int(c("d_ch")))
        load(G, "G", {k[len(run) + 1:]: v for k, v in d.items() if k.startswith(run + "/G/")})
        load(D, "D", {k[len(run) + 1:]: v for k, v in d.items() if k.startswith(run + "/D/")})
        opts = {}
        for key, model in (("opt_gen", G), ("opt_dis", D)):
            opt = chainer.optimizers.Adam(alpha=float(c("lr")), beta1=float(c("beta1")), beta2=float(c("beta2")),
                                          eps=float(c("eps")))
            opt.setup(model)
            opts[key] = opt
        batches = _Batches(d[run + "/x"])
        upd = Updater(models=(G, D), iterator={"main": batches}, optimizer=opts, n_dis=int(c("n_dis")),
                      lam=float(c("lam")))
        upd.get_iterator = lambda name, batches=batches: batches
        with chainer.using_config("train", True):
            for t in range(int(c("updates"))):
                obs = _Observation()
                reporter = chainer.Reporter()
                with reporter.scope(obs):
                    upd.update()
                for k, vs in obs.items():
                    for i, v in enumerate(vs):
                        out[f"{run}/t{t}/loss/{k}/{i}"] = v
                for role, model, opt in (("G", G, opts["opt_gen"]), ("D", D, opts["opt_dis"])):
                    for name, p in model.namedparams():
                        out[f"{run}/t{t}/{role}{name}"] = p.array.copy()
                        st = p.update_rule.state
                        out[f"{run}/t{t}/{role}{name}/m"] = st["m"].copy()
                        out[f"{run}/t{t}/{role}{name}/v"] = st["v"].copy()
                for name, link in G.namedlinks():
                    if isinstance(link, chainer.links.BatchNormalization):
                        out[f"{run}/t{t}/G{name}/avg_mean"] = link.avg_mean.copy()
                        out[f"{run}/t{t}/G{name}/avg_var"] = link.avg_var.copy()
        assert batches.i == len(d[run + "/x"]) and not zs and not alphas, ("draws left unused", run)
    print("chainer-gan-lib WGAN-GP updates done:", ", ".join(runs))


step() if a.mode == "step" else dynamics()
np.savez(a.out, **out)
