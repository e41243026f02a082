"""Runs under the Theano reference environment (NOT ganworks'): the authors' MNIST model, losses and
updates, executed from their own script, on weights/inputs/random draws read from an .npz.

The reference training script ``mnist_svhn_cifar10/train_mnist_feature_matching.py`` is executed
as written up to its data loading (everything that builds the models, the losses, the Adam updates
and compiles the Theano functions), with two substitutions made from outside:

* every random stream (``MRG_RandomStreams``: the Gaussian noise layers and the generator's
  uniform z) is replaced by shared variables whose values this script sets before each call, so
  both sides see the same draws;
* ``lasagne.layers.dnn`` (cuDNN) is an empty module: the MNIST model does not use it.

Usage (the driver calls it): python ref_improved_gan_mnist.py --improved-gan DIR --lasagne DIR IN.npz OUT.npz
"""
import argparse
import sys
import time
import types

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--improved-gan", required=True)
ap.add_argument("--lasagne", required=True)
ap.add_argument("inp")
ap.add_argument("out")
a = ap.parse_args()
src_dir = a.improved_gan.rstrip("/") + "/mnist_svhn_cifar10"
sys.path[:0] = [a.lasagne, src_dir]

import theano as th  # noqa: E402
import theano.sandbox.rng_mrg  # noqa: E402
import theano.tensor as T  # noqa: E402
import lasagne  # noqa: E402
import lasagne.layers  # noqa: E402

dnn = types.ModuleType("lasagne.layers.dnn")
sys.modules["lasagne.layers.dnn"] = dnn
lasagne.layers.dnn = dnn

floatX = th.config.floatX


class InjectedStreams(object):
    """Stands in for MRG_RandomStreams: each draw is a shared variable that we fill before each call."""
    def __init__(self, *args, **kwargs):
        self.calls = []

    def _new(self, kind):
        v = th.shared(np.zeros((1, 1), dtype=floatX), name="injected_%s_%d" % (kind, len(self.calls)))
        self.calls.append(v)
        return v

    def normal(self, size, avg=0.0, std=1.0, **kwargs):
        return avg + std * self._new("normal")

    def uniform(self, size, low=0.0, high=1.0, **kwargs):
        assert low == 0.0 and high == 1.0
        return self._new("uniform")


theano.sandbox.rng_mrg.MRG_RandomStreams = InjectedStreams
import nn  # noqa: E402  (the reference's nn.py)
nn.RandomStreams = InjectedStreams

d = dict(np.load(a.inp))
assert floatX == str(d["dtype"]), "THEANO_FLAGS floatX must be %s" % d["dtype"]
bs = int(d["batch_size"])
script_path = src_dir + "/train_mnist_feature_matching.py"
source = open(script_path).read()
cut = source.index("# load MNIST data")
sys.argv = [script_path, "--batch_size", str(bs), "--unlabeled_weight", str(float(d["unlabeled_weight"]))]
ns = {"__name__": "reference_mnist"}
t0 = time.time()
exec(compile(source[:cut], script_path, "exec"), ns)
print("reference graph built and compiled in %.0fs" % (time.time() - t0))
sys.stdout.flush()

layers, gen_layers = ns["layers"], ns["gen_layers"]
dense = [l for l in layers if isinstance(l, nn.DenseLayer)]
noise_layers = [l for l in layers if isinstance(l, nn.GaussianNoiseLayer)]
z_var = ns["theano_rng"].calls
assert len(z_var) == 1, z_var
z_var = z_var[0]
# draws per noise layer, in graph-building order: init, lab, unl, fake, then (FM layers only) gen, real
PASSES = ["init", "lab", "unl", "fake", "gen", "real"]
noise = []
for k, l in enumerate(noise_layers):
    n_expected = 6 if k < len(noise_layers) - 1 else 4
    assert len(l._srng.calls) == n_expected, (k, len(l._srng.calls))
    noise.append(dict(zip(PASSES, l._srng.calls)))


def params_of(layer):
    return {p.name: p for p in layer.get_params()}


# name -> shared variable, in ganworks' naming (D.hidden.i / D.out, G.body / G.out)
P = {}
for i, l in enumerate(dense):
    p = params_of(l)
    P["d%d_theta" % i], P["d%d_b" % i], P["d%d_scale" % i] = p["theta"], p["b"], p["weight_scale"]
for i, bn in enumerate([gen_layers[1], gen_layers[2]]):
    P["g%d_W" % i] = params_of(bn.input_layer)["W"]
    P["g%d_bnb" % i] = params_of(bn)["b"]
p = params_of(gen_layers[3])
P["g2_W"], P["g2_b"], P["g2_scale"] = p["W"], p["b"], p["W_scale"]
disc_params, gen_params, disc_avg = ns["disc_params"], ns["gen_params"], ns["disc_param_avg"]
name_of = {v: k for k, v in P.items()}
assert all(p in name_of for p in disc_params + gen_params)


def set_params(prefix):
    for k, v in P.items():
        v.set_value(d[prefix + k].astype(floatX))


def set_noise(i, passes):
    for k, nd in enumerate(noise):
        for ps in passes:
            if ps in nd:
                nd[ps].set_value(d["noise_%s_%d" % (ps, k)][i].astype(floatX))


out = {}
# ---- data-dependent init (the script's init_param on the init batch, noise injected) ----------
set_params("pre_")
for k, nd in enumerate(noise):
    nd["init"].set_value(d["init_noise_%d" % k].astype(floatX))
z_var.set_value(d["z_d"][0].astype(floatX))  # G's init pass has no init updates; z is only needed to evaluate
ns["init_param"](d["init_x"].astype(floatX))
for i in range(len(dense)):
    out["init_d%d_scale" % i] = P["d%d_scale" % i].get_value()
    out["init_d%d_b" % i] = P["d%d_b" % i].get_value()

# ---- one step's quantities, from ganworks' post-init weights, iteration 0's batch and draws -----
x_lab, labels, x_unl = ns["x_lab"], ns["labels"], ns["x_unl"]
w = float(d["unlabeled_weight"])
f_d = th.function([x_lab, labels, x_unl],
                  [ns["output_before_softmax_lab"], ns["output_before_softmax_unl"], ns["output_before_softmax_fake"],
                   ns["gen_dat"], ns["loss_lab"], ns["loss_unl"]]
                  + T.grad(ns["loss_lab"] + w * ns["loss_unl"], disc_params))
f_g = th.function([x_unl], [ns["gen_dat"], ns["mom_gen"], ns["mom_real"], ns["loss_gen"]] + T.grad(ns["loss_gen"], gen_params))
set_params("post_")
set_noise(0, ["lab", "unl", "fake"])
z_var.set_value(d["z_d"][0].astype(floatX))
r = f_d(d["x_lab"][0].astype(floatX), d["y_lab"][0].astype(np.int32), d["x_unl"][0].astype(floatX))
for k, v in zip(["d_logits_lab", "d_logits_unl", "d_logits_fake", "g_out_dstep", "loss_lab", "loss_unl"], r[:6]):
    out["step_" + k] = np.asarray(v)
for p, g in zip(disc_params, r[6:]):
    out["step_grad_d_" + name_of[p]] = np.asarray(g)
set_noise(0, ["gen", "real"])
z_var.set_value(d["z_g"][0].astype(floatX))
r = f_g(d["x_unl2"][0].astype(floatX))
for k, v in zip(["g_out_gstep", "feat_mean_fake", "feat_mean_real", "loss_gen"], r[:4]):
    out["step_" + k] = np.asarray(v)
for p, g in zip(gen_params, r[4:]):
    out["step_grad_g_" + name_of[p]] = np.asarray(g)

# ---- nn.adam_updates in isolation: given gradients, several steps --------------------------------
ap0 = d["adam_p0"].astype(floatX)
p_sh = th.shared(ap0.copy())
g_sh = th.shared(np.zeros_like(ap0))
adam_step = th.function([], [], updates=nn.adam_updates([p_sh], T.sum(p_sh * g_sh), lr=float(d["adam_lr"]),
                                                        mom1=float(d["adam_b1"]), mom2=float(d["adam_b2"])))
for t, g in enumerate(d["adam_grads"]):
    g_sh.set_value(g.astype(floatX))
    adam_step()
    out["adam_p%d" % t] = p_sh.get_value()

# ---- whole training iterations (train_batch_disc then train_batch_gen, as the script's loop) ------
set_params("post_")
lr = float(d["lr"])
n_it = d["x_lab"].shape[0]
t0 = time.time()
for i in range(n_it):
    set_noise(i, ["lab", "unl", "fake"])
    z_var.set_value(d["z_d"][i].astype(floatX))
    ns["train_batch_disc"](d["x_lab"][i].astype(floatX), d["y_lab"][i].astype(np.int32), d["x_unl"][i].astype(floatX), lr)
    set_noise(i, ["gen", "real"])
    z_var.set_value(d["z_g"][i].astype(floatX))
    ns["train_batch_gen"](d["x_unl2"][i].astype(floatX), lr)
    for k, v in P.items():
        out["traj%d_%s" % (i, k)] = v.get_value()
    for p, avg in zip(disc_params, disc_avg):
        out["traj%d_avg_%s" % (i, name_of[p])] = avg.get_value()
print("%d reference iterations in %.1fs" % (n_it, time.time() - t0))
np.savez(a.out, **out)
