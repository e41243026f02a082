"""Runs under the Chainer reference environment (NOT ganworks'): the SN-GAN authors' layers, models,
losses and Chainer's Adam, on weights/inputs read from an .npz.

Imports pfnet-research/sngan_projection (``source/``, ``gen_models/``, ``dis_models/``,
``updater.py``) and pfnet-research/chainer-gan-lib (``common/net.py``, ``common/sn/``) from the
checkouts given. One substitution, made from outside: sngan_projection's ``max_sv._l2normalize`` is
written as two CUDA kernels (``cuda.reduce``/``cuda.elementwise``) that do not run on a CPU; it is
replaced by the same formula in NumPy, x / (sqrt(sum x²) + eps) (chainer-gan-lib's own max_sv.py is
that NumPy formula already).

Usage (the driver calls it): python ref_sngan.py --sngan-projection DIR --chainer-gan-lib DIR IN.npz OUT.npz
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
import chainer.functions as F  # noqa: E402
import source.functions.max_sv as max_sv  # noqa: E402


def _l2normalize_numpy(v, eps=1e-12):
    return v / (np.sqrt((v * v).sum()) + eps)


max_sv._l2normalize = _l2normalize_numpy

from source.links.sn_linear import SNLinear  # noqa: E402
from source.links.sn_convolution_2d import SNConvolution2D  # noqa: E402
from source.links.sn_embed_id import SNEmbedID  # noqa: E402
from gen_models.resnet_32 import ResNetGenerator  # noqa: E402
from dis_models.snresnet_32 import SNResNetProjectionDiscriminator  # noqa: E402
import updater  # noqa: E402  (sngan_projection/updater.py: the losses)
import net  # noqa: E402  (chainer-gan-lib/common/net.py)

d = dict(np.load(a.inp))
dtype = np.dtype(str(d["dtype"]))
chainer.global_config.dtype = dtype  # links are created in this dtype
out = {}

# ---- one power iteration from the same u --------------------------------------------------------
for kind, cls in (("linear", SNLinear), ("conv", SNConvolution2D), ("embed", SNEmbedID)):
    W, u0 = d["pi_%s_W" % kind], d["pi_%s_u" % kind]
    if kind == "linear":
        link = SNLinear(W.shape[1], W.shape[0])
        W_mat = W
    elif kind == "conv":
        link = SNConvolution2D(W.shape[1], W.shape[0], ksize=W.shape[2], pad=1)
        W_mat = W.reshape(W.shape[0], -1)
    else:
        link = SNEmbedID(W.shape[0], W.shape[1])
        W_mat = W
    link.W.array[...] = W
    sigma, _u, _v = max_sv.max_singular_value(chainer.Variable(W_mat), u0.copy(), 1)
    link.u = u0.copy()
    W_bar = link.W_bar
    out["pi_%s_sigma" % kind] = np.asarray(sigma.array)
    out["pi_%s_u" % kind] = link.u.reshape(-1).copy()
    out["pi_%s_v" % kind] = _v.reshape(-1)
    out["pi_%s_Wbar" % kind] = W_bar.array


# ---- models ---------------------------------------------------------------------------------------
def load(model, prefix):
    params = dict(model.namedparams())
    names = sorted(k[len(prefix):] for k in d if k.startswith(prefix + "/") and not k.endswith("/u"))
    assert sorted(params) == names, (prefix, sorted(set(params) ^ set(names)))
    for name, p in params.items():
        assert p.array.shape == d[prefix + name].shape, (prefix, name, p.array.shape, d[prefix + name].shape)
        p.array[...] = d[prefix + name]
    for name, link in model.namedlinks():
        if prefix + name + "/u" in d:
            link.u = d[prefix + name + "/u"].copy()


def grads(model, prefix):
    return {"%s_grad%s" % (prefix, name): p.grad.copy() for name, p in model.namedparams() if p.grad is not None}


def dis_out(D, x):
    return D(x).array.reshape(-1)


def run_pair(prefix, G_link, D, loss_d, loss_g):
    def G(z):
        if isinstance(G_link, ResNetGenerator):
            return G_link(batchsize=len(z), z=z)
        return G_link(z)

    load(G_link, prefix + "G")
    load(D, prefix + "D")
    z, x_real = d[prefix + "z"], d[prefix + "x_real"]
    # D step, as sngan_projection's Updater: real first, then the generated batch (no gradient to G)
    x_fake = G(z).array
    out[prefix + "g_out"] = x_fake
    dr, df = D(x_real), D(x_fake)
    out[prefix + "d_real"], out[prefix + "d_fake"] = dr.array.reshape(-1), df.array.reshape(-1)
    L = loss_d(df, dr)
    D.cleargrads()
    L.backward()
    out[prefix + "loss_d"] = np.asarray(L.array)
    out.update(grads(D, prefix + "D"))
    # G step: a fresh pass of the same z through G and D; gradients w.r.t. G's parameters
    load(D, prefix + "D")
    G_link.cleargrads()
    D.cleargrads()
    L = loss_g(D(G(z)))
    L.backward()
    out[prefix + "loss_g"] = np.asarray(L.array)
    out.update(grads(G_link, prefix + "G"))


with chainer.using_config("train", True):
    run_pair("resh", ResNetGenerator(ch=256, dim_z=128, bottom_width=4), SNResNetProjectionDiscriminator(ch=128),
             updater.loss_hinge_dis, updater.loss_hinge_gen)
    run_pair("resn", ResNetGenerator(ch=256, dim_z=128, bottom_width=4), SNResNetProjectionDiscriminator(ch=128),
             updater.loss_dcgan_dis, updater.loss_dcgan_gen)
    run_pair("cnn", net.DCGANGenerator(n_hidden=128, bottom_width=4, ch=512), net.SNDCGANDiscriminator(bottom_width=4, ch=512),
             updater.loss_dcgan_dis, updater.loss_dcgan_gen)

# ---- Chainer's Adam, settings A-F ----------------------------------------------------------------
for name in [k[5:-3] for k in d if k.startswith("adam_") and k.endswith("_lr")]:
    link = chainer.Link()
    with link.init_scope():
        link.p = chainer.Parameter(d["adam_p0"].copy())
    opt = chainer.optimizers.Adam(alpha=float(d["adam_%s_lr" % name]), beta1=float(d["adam_%s_b1" % name]),
                                  beta2=float(d["adam_%s_b2" % name]))
    opt.setup(link)
    for t, g in enumerate(d["adam_%s_grads" % name]):
        link.p.grad = g.copy()
        opt.update()
        out["adam_%s_p%d" % (name, t)] = link.p.array.copy()

np.savez(a.out, **out)
print("chainer reference side done")
