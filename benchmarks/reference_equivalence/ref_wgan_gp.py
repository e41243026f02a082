"""Runs under the Chainer reference environment (NOT ganworks'): one D step of chainer-gan-lib's
WGAN-GP updater (``wgan_gp/updater.py`` ``Updater.update_core``, n_dis = 1) with its critic
``common/net.py`` ``WGANDiscriminator`` (whose ``differentiable_backward`` is the hand-written input
gradient the penalty uses), on weights, batches and interpolation weights read from an .npz.

Made from outside the reference code:

* the generator the updater calls is a stand-in returning the .npz's generated batch (``gen(z)``; the
  batch is the input of this comparison, so G's weights are not involved); its ``make_hidden`` returns
  zeros and its ``xp`` is NumPy except ``xp.random.uniform``, which returns the .npz's α (the updater's
  per-example interpolation weights);
* the iterator yields the .npz's real batch; D's optimizer is a ``chainer.optimizers.SGD`` with lr 0
  whose ``update`` first records D's gradients (after ``loss_dis.backward(); loss_gp.backward()``);
* the losses are read from a ``chainer.Reporter`` around the call;
* float64 run only: the updater's two ``astype("f")`` casts (real batch, α) become casts to float64
  (the module is executed from the checkout's source with that replacement, in memory).

Usage (the driver calls it): python ref_wgan_gp.py --chainer-gan-lib DIR IN.npz OUT.npz
"""
import argparse
import sys
import types

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--chainer-gan-lib", required=True)
ap.add_argument("inp")
ap.add_argument("out")
a = ap.parse_args()
sys.path[:0] = [a.chainer_gan_lib.rstrip("/") + "/common", a.chainer_gan_lib]

import chainer  # noqa: E402
import net  # noqa: E402  (chainer-gan-lib/common/net.py)

d = dict(np.load(a.inp))
dtype = np.dtype(str(d["dtype"]))
# the updater casts the real batch and α to float32 (astype("f")); in the float64 run only, those two
# casts are to the run's dtype instead (in memory; the float32 run executes the file as it is)
path = a.chainer_gan_lib.rstrip("/") + "/wgan_gp/updater.py"
src = open(path).read()
assert src.count('.astype("f")') == 2, "expected the updater's two float32 casts"
if dtype != np.float32:
    src = src.replace('.astype("f")', ".astype(%r)" % dtype.name)
updater_mod = types.ModuleType("wgan_gp_updater")
updater_mod.__file__ = path
exec(compile(src, path, "exec"), updater_mod.__dict__)
Updater = updater_mod.Updater
chainer.global_config.dtype = dtype
D = net.WGANDiscriminator()
params = dict(D.namedparams())
names = sorted(k[1:] for k in d if k.startswith("D/"))
assert sorted(params) == names, sorted(set(params) ^ set(names))
for name, p in params.items():
    assert p.array.shape == d["D" + name].shape, (name, p.array.shape)
    p.array[...] = d["D" + name]

xp = types.SimpleNamespace(asarray=np.asarray, ones_like=np.ones_like,
                           random=types.SimpleNamespace(uniform=lambda lo, hi, size: d["alpha"].copy()))


class _Gen(chainer.Chain):
    def __init__(self):
        super().__init__()
        self.xp_ = xp

    @property
    def xp(self):
        return self.xp_

    def make_hidden(self, n):
        return np.zeros((n, 1), dtype)

    def __call__(self, z):
        return chainer.Variable(d["x_fake"].copy())


class _Batches:
    def next(self):
        return list(d["x_real"])


out = {}
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
upd = Updater(models=(gen, D), iterator={"main": _Batches()}, optimizer={"opt_gen": opt_gen, "opt_dis": opt_dis},
              n_dis=1, lam=float(d["lam"]))
upd.get_iterator = lambda name: _Batches()
obs = {}
reporter = chainer.Reporter()
with reporter.scope(obs):
    upd.update_core()
for k in ("loss_dis", "loss_gp", "g", "loss_gen"):
    v = obs[k]
    out[k] = np.asarray(getattr(v, "array", v))
np.savez(a.out, **out)
print("chainer-gan-lib WGAN-GP D step done")
