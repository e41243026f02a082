"""Runs under the Chainer reference environment (NOT ganworks'): chainer-gan-lib's batch-norm
discriminator ``common/net.py`` ``DCGANDiscriminator`` (BN without γ, ``use_gamma=False``, after convs 2-7;
the SN paper's "batch norm" baseline D in the author-pointed code), on weights, running statistics and
inputs read from an .npz: in training mode the logits, the gradients of Σ r_i·D(x)_i w.r.t. every
parameter and the input, and BN's running statistics after the forward; then the logits in eval mode
(``chainer.using_config("train", False)``) on a second batch.

Nothing of the reference code is changed; the links are created in the run's dtype
(``chainer.global_config.dtype``) and every parameter and running statistic is overwritten from the .npz.

Usage (the driver calls it): python ref_dcgan_bn.py --chainer-gan-lib DIR IN.npz OUT.npz
"""
import argparse
import sys

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--chainer-gan-lib", required=True)
ap.add_argument("inp")
ap.add_argument("out")
a = ap.parse_args()
sys.path[:0] = [a.chainer_gan_lib.rstrip("/") + "/common", a.chainer_gan_lib]

import chainer  # noqa: E402
import chainer.functions as F  # noqa: E402
import net  # noqa: E402  (chainer-gan-lib/common/net.py)

d = dict(np.load(a.inp))
dtype = np.dtype(str(d["dtype"]))
chainer.global_config.dtype = dtype
D = net.DCGANDiscriminator(bottom_width=int(d["bottom_width"]), ch=int(d["ch"]))
params = dict(D.namedparams())
names = sorted(k[1:] for k in d if k.startswith("D/"))
assert sorted(params) == names, sorted(set(params) ^ set(names))
for name, p in params.items():
    assert p.array.shape == d["D" + name].shape and p.array.dtype == dtype, (name, p.array.shape, p.array.dtype)
    p.array[...] = d["D" + name]
bns = {name: link for name, link in D.namedlinks() if isinstance(link, chainer.links.BatchNormalization)}
for name, bn in bns.items():
    assert bn.avg_mean.dtype == dtype and bn.gamma is None, name
    bn.avg_mean[...] = d["run" + name + "/avg_mean"]
    bn.avg_var[...] = d["run" + name + "/avg_var"]

out = {}
x = chainer.Variable(d["x"].copy())
logits = D(x)
loss = F.sum(logits * d["r"].reshape(-1, 1))
D.cleargrads()
loss.backward()
out["logits"] = logits.array.reshape(-1)
out["grad/x"] = x.grad
out.update({"grad" + name: p.grad for name, p in D.namedparams()})
out.update({"run" + name + "/avg_mean": bn.avg_mean.copy() for name, bn in bns.items()})
out.update({"run" + name + "/avg_var": bn.avg_var.copy() for name, bn in bns.items()})
with chainer.using_config("train", False):
    out["eval_logits"] = D(d["x2"].copy()).array.reshape(-1)
np.savez(a.out, **out)
print("chainer-gan-lib DCGANDiscriminator (BN) done")
