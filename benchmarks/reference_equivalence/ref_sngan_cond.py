"""Runs under the Chainer reference environment (NOT ganworks'): the class-conditional pieces of
sngan_projection — categorical conditional BN, the conditional ResNet generators, the projection and
concat discriminators and the hinge losses — on weights/inputs read from an .npz.

Imports pfnet-research/sngan_projection (``source/links``, ``gen_models/resnet_32.py``,
``resnet_64.py``, ``resnet.py``, ``dis_models/snresnet_32.py``, ``snresnet_64.py``,
``snresnet.py``, ``updater.py``) from the checkout given. Substitutions, made from outside:

* sngan_projection's ``max_sv._l2normalize`` is two CUDA kernels that do not run on a CPU; it is
  replaced by the same formula in NumPy, x / (sqrt(sum x²) + eps) (as in ``ref_sngan.py``);
* float64 run only: ``gen_models/resblocks.py`` builds its ``CategoricalConditionalBatchNormalization``
  links without a ``dtype``, so their γ/β tables and running statistics are float32 whatever
  Chainer's default dtype; here they are given the run's dtype (the loaded values are the same),
  so that the float64 run is float64 throughout. The float32 run changes nothing.

Usage (the driver calls it): python ref_sngan_cond.py --sngan-projection DIR IN.npz OUT.npz
"""
import argparse
import importlib
import sys

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--sngan-projection", required=True)
ap.add_argument("inp")
ap.add_argument("out")
a = ap.parse_args()
sys.path[:0] = [a.sngan_projection]

import chainer  # noqa: E402
import chainer.functions as F  # noqa: E402
import source.functions.max_sv as max_sv  # noqa: E402


def _l2normalize_numpy(v, eps=1e-12):
    return v / (np.sqrt((v * v).sum()) + eps)


max_sv._l2normalize = _l2normalize_numpy

from source.links.categorical_conditional_batch_normalization import (  # noqa: E402
    CategoricalConditionalBatchNormalization)
from source.links.conditional_batch_normalization import ConditionalBatchNormalization  # noqa: E402
import updater  # noqa: E402  (sngan_projection/updater.py: the losses)

d = dict(np.load(a.inp))
dtype = np.dtype(str(d["dtype"]))
chainer.global_config.dtype = dtype  # links are created in this dtype
K = int(d["n_classes"])
out = {}

# ---- categorical conditional BN on its own --------------------------------------------------------
with chainer.using_config("train", True):
    cbn = CategoricalConditionalBatchNormalization(d["cbn_gammas"].shape[1], K, dtype=dtype)
    cbn.gammas.W.array[...] = d["cbn_gammas"]
    cbn.betas.W.array[...] = d["cbn_betas"]
    x = chainer.Variable(d["cbn_x"].copy())
    h = cbn(x, d["cbn_y"])
    L = F.sum(h * d["cbn_r"])
    cbn.cleargrads()
    L.backward()
    out.update({"cbn_out": h.array, "cbn_grad_x": x.grad, "cbn_grad_gammas": cbn.gammas.W.grad,
                "cbn_grad_betas": cbn.betas.W.grad, "cbn_avg_mean": cbn.avg_mean.copy(),
                "cbn_avg_var": cbn.avg_var.copy()})
    n = len(d["cbn_x"])
    all_classes = np.tile(np.arange(K, dtype=np.int32), (n, 1))
    out["cbn_out_weights"] = cbn(d["cbn_x"], all_classes, weights=d["cbn_w"]).array
cbn.avg_mean[...] = d["cbn_rmean"]
cbn.avg_var[...] = d["cbn_rvar"]
with chainer.using_config("train", False):
    out["cbn_out_eval"] = cbn(d["cbn_x"], d["cbn_y"]).array


# ---- conditional models ---------------------------------------------------------------------------
def load(model, prefix):
    params = dict(model.namedparams())
    names = sorted(k[len(prefix):] for k in d if k.startswith(prefix + "/") and not k.endswith("/u"))
    assert sorted(params) == names, (prefix, sorted(set(params) ^ set(names)))
    for name, p in params.items():
        assert p.array.shape == d[prefix + name].shape, (prefix, name, p.array.shape, d[prefix + name].shape)
        if p.array.dtype == dtype:
            p.array[...] = d[prefix + name]
        else:  # a conditional BN's table in the float64 run (see the docstring)
            p.array = d[prefix + name].astype(dtype)
    for name, link in model.namedlinks():
        if prefix + name + "/u" in d:
            link.u = d[prefix + name + "/u"].copy()
        if isinstance(link, ConditionalBatchNormalization) and link.avg_mean.dtype != dtype:
            link.avg_mean, link.avg_var = link.avg_mean.astype(dtype), link.avg_var.astype(dtype)


def grads(model, prefix):
    return {"%s_grad%s" % (prefix, name): p.grad.copy() for name, p in model.namedparams() if p.grad is not None}


def run_pair(prefix, G_link, D, loss_d, loss_g):
    def G(z, y):
        return G_link(batchsize=len(z), z=z, y=y)

    load(G_link, prefix + "G")
    load(D, prefix + "D")
    z, x_real = d[prefix + "z"], d[prefix + "x_real"]
    y_real, y_fake = d[prefix + "y_real"], d[prefix + "y_fake"]
    # D step, as sngan_projection's Updater (conditional): dis(x_real, y=y_real), dis(x_fake, y=y_fake)
    x_fake = G(z, y_fake).array
    out[prefix + "g_out"] = x_fake
    dr, df = D(x_real, y=y_real), D(x_fake, y=y_fake)
    out[prefix + "d_real"], out[prefix + "d_fake"] = dr.array.reshape(-1), df.array.reshape(-1)
    L = loss_d(df, dr)
    D.cleargrads()
    L.backward()
    out[prefix + "loss_d"] = np.asarray(L.array)
    out.update(grads(D, prefix + "D"))
    # G step: a fresh pass of the same z and classes through G and D; gradients w.r.t. G's parameters
    load(D, prefix + "D")
    G_link.cleargrads()
    D.cleargrads()
    L = loss_g(D(G(z, y_fake), y=y_fake))
    L.backward()
    out[prefix + "loss_g"] = np.asarray(L.array)
    out.update(grads(G_link, prefix + "G"))


pairs = {"p32": ("gen_models.resnet_32", "dis_models.snresnet_32", "SNResNetProjectionDiscriminator"),
         "p64": ("gen_models.resnet_64", "dis_models.snresnet_64", "SNResNetProjectionDiscriminator"),
         "p128": ("gen_models.resnet", "dis_models.snresnet", "SNResNetProjectionDiscriminator"),
         "c128": ("gen_models.resnet", "dis_models.snresnet", "SNResNetConcatDiscriminator")}
with chainer.using_config("train", True):
    for prefix, (gmod, dmod, dcls) in pairs.items():
        if prefix + "z" not in d:
            continue
        G = importlib.import_module(gmod).ResNetGenerator(ch=int(d[prefix + "_ch_g"]), dim_z=128, bottom_width=4,
                                                           n_classes=K)
        D = getattr(importlib.import_module(dmod), dcls)(ch=int(d[prefix + "_ch_d"]), n_classes=K)
        run_pair(prefix, G, D, updater.loss_hinge_dis, updater.loss_hinge_gen)

np.savez(a.out, **out)
print("chainer reference side (conditional) done")
