"""Runs under the Chainer reference environment (NOT ganworks'): whole SN-GAN updates of the authors'
updater, on weights, real batches and z read from an .npz.

For each run in the .npz it builds the reference models (chainer-gan-lib ``common/net.py``
``DCGANGenerator`` / ``SNDCGANDiscriminator``, or sngan_projection ``gen_models/resnet_32.py``
``ResNetGenerator`` / ``dis_models/snresnet_32.py`` ``SNResNetProjectionDiscriminator``), loads the
weights and every SN layer's u, sets up ``chainer.optimizers.Adam`` on each model and runs
sngan_projection's ``updater.Updater.update()`` (its ``update_core``: at i = 0 one G step, then n_dis
D steps; every D call in training mode does one power iteration and stores u) for T updates, with
sngan_projection ``train.py``'s ``extensions.LinearShift`` on alpha where the run decays the lr.
After each update it writes every parameter, Adam's m and v, and every SN layer's u.

Substitutions, made from outside the reference code:

* ``max_sv._l2normalize`` (two CUDA kernels) is the same formula in NumPy, as in ``ref_sngan.py``;
* the updater's ``get_batch`` (which reads the dataset iterator) returns the .npz's next real batch
  in the run's dtype (the reference casts to float32 with ``astype("f")``; the values are the same);
* the generator the updater calls is a small adapter: ``gen(n, y=None)`` runs the reference
  generator on the .npz's next z (ganworks' draws) instead of sampling z itself; for the standard
  CNN, the discriminator it calls drops the ``y=None`` argument chainer-gan-lib's
  ``SNDCGANDiscriminator`` does not take. chainer-gan-lib's
  own ``stdgan/updater.py`` (the one its SN-GAN CNN command uses) has the same schedule as
  sngan_projection's updater (G step at i = 0 on a fresh z, then per D step D(real), D(G(z))),
  with ``F.sum(F.softplus(.)) / batchsize`` in place of ``F.mean``; the runs use sngan_projection's.

Usage (the driver calls it): python ref_sngan_dynamics.py --sngan-projection DIR --chainer-gan-lib DIR IN.npz OUT.npz
"""
import argparse
import sys

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--sngan-projection", required=True)
ap.add_argument("--chainer-gan-lib", required=True)
ap.add_argument("inp")
ap.add_argument("out")
a = ap.parse_args()
sys.path[:0] = [a.sngan_projection, a.chainer_gan_lib.rstrip("/") + "/common", a.chainer_gan_lib]

import chainer  # noqa: E402
from chainer.training import extensions  # noqa: E402
import source.functions.max_sv as max_sv  # noqa: E402


def _l2normalize_numpy(v, eps=1e-12):
    return v / (np.sqrt((v * v).sum()) + eps)


max_sv._l2normalize = _l2normalize_numpy

from gen_models.resnet_32 import ResNetGenerator  # noqa: E402
from dis_models.snresnet_32 import SNResNetProjectionDiscriminator  # noqa: E402
import updater as snp_updater  # noqa: E402  (sngan_projection/updater.py)
import net  # noqa: E402  (chainer-gan-lib/common/net.py)

d = dict(np.load(a.inp))
out = {}


class _Gen:
    """What the updater calls as ``gen``: the reference generator on the next injected z."""

    def __init__(self, link, zs, resnet):
        self.link, self.zs, self.resnet, self.i = link, zs, resnet, 0
        self.xp = np

    def __call__(self, n, y=None):
        z = self.zs[self.i: self.i + n]
        assert len(z) == n, ("ran out of injected z", self.i, n)
        self.i += n
        return self.link(batchsize=n, z=z) if self.resnet else self.link(z)

    def cleargrads(self):
        self.link.cleargrads()


class _Dis:
    """chainer-gan-lib's SNDCGANDiscriminator takes no ``y``; sngan_projection's updater passes
    ``y=None`` (unconditional): this adapter drops it."""

    def __init__(self, link):
        self.link = link

    def __call__(self, x, y=None):
        return self.link(x)

    def cleargrads(self):
        self.link.cleargrads()


def load(model, P):
    params = dict(model.namedparams())
    names = sorted(k[len(P):] for k in d if k.startswith(P + "/") and not k.endswith("/u"))
    assert sorted(params) == names, (P, sorted(set(params) ^ set(names)))
    for name, p in params.items():
        assert p.array.shape == d[P + name].shape, (P, name, p.array.shape, d[P + name].shape)
        p.array[...] = d[P + name]
    for name, link in model.namedlinks():
        if P + name + "/u" in d:
            link.u = d[P + name + "/u"].copy()


def record(prefix, model, opt):
    for name, p in model.namedparams():
        out[prefix + name] = p.array.copy()
        st = p.update_rule.state
        out[prefix + name + "/m"] = st["m"].copy()
        out[prefix + name + "/v"] = st["v"].copy()
    for name, link in model.namedlinks():
        if hasattr(link, "u") and isinstance(link.u, np.ndarray):
            out[prefix + name + "/u"] = link.u.reshape(-1).copy()
    out[prefix + "alpha"] = np.asarray(opt.alpha)


runs = sorted({k.split("/")[0] for k in d if "/" in k})
for run in runs:
    c = lambda k: d[run + "/cfg/" + k].item()  # noqa: E731
    dtype = np.dtype(str(c("dtype")))
    chainer.global_config.dtype = dtype
    resnet = c("model") == "resnet"
    if resnet:
        G = ResNetGenerator(ch=int(c("g_ch")), dim_z=128, bottom_width=4)
        D = SNResNetProjectionDiscriminator(ch=int(c("d_ch")))
    else:
        G = net.DCGANGenerator(n_hidden=128, bottom_width=4, ch=int(c("g_ch")))
        D = net.SNDCGANDiscriminator(bottom_width=4, ch=int(c("d_ch")))
    load(G, run + "/G")
    load(D, run + "/D")
    opts = {}
    for key, model in (("opt_gen", G), ("opt_dis", D)):
        opt = chainer.optimizers.Adam(alpha=float(c("lr")), beta1=float(c("beta1")), beta2=float(c("beta2")),
                                      eps=float(c("eps")))
        opt.setup(model)
        opts[key] = opt
    xs = d[run + "/x"]
    it = chainer.iterators.SerialIterator([0], 1)  # never read: get_batch is replaced below
    upd = snp_updater.Updater(models={"gen": _Gen(G, d[run + "/z"], resnet), "dis": D if resnet else _Dis(D)},
                              iterator=it,
                              optimizer=opts, n_dis=int(c("n_dis")), loss_type=str(c("loss")),
                              conditional=False, n_gen_samples=int(c("n_gen")))
    counter = {"i": 0}

    def get_batch(xp, counter=counter, xs=xs):
        x = xs[counter["i"]]
        counter["i"] += 1
        return chainer.Variable(xp.asarray(x)), None

    upd.get_batch = get_batch
    shifts = []
    if int(c("decay_T")):  # sngan_projection train.py: LinearShift('alpha', (alpha, 0), (decay_start, iteration))
        for opt in opts.values():
            ext = extensions.LinearShift("alpha", (float(c("lr")), 0.), (0, int(c("decay_T"))), opt)
            ext.initialize(None)
            shifts.append(ext)
    with chainer.using_config("train", True):
        for t in range(int(c("updates"))):
            upd.update()
            for ext in shifts:  # trainer extensions run after each update
                ext(None)
            record(f"{run}/t{t}/G", G, opts["opt_gen"])
            record(f"{run}/t{t}/D", D, opts["opt_dis"])
    assert counter["i"] == len(xs), ("real batches left unused", counter["i"], len(xs))

np.savez(a.out, **out)
print("chainer reference dynamics side done:", ", ".join(runs))
