"""Runs under the Theano reference environment (NOT ganworks'): the authors' CIFAR-10 feature-matching
models (``train_cifar_feature_matching.py``) and their minibatch-discrimination layer (``nn.MinibatchLayer``)
on weights, inputs and random draws read from an .npz.

The training script is executed as written up to its ``# costs`` section, which builds the generator and
the discriminator layer stacks. Substitutions made from outside:

* ``lasagne.layers.dnn`` (cuDNN) is replaced by a module whose ``Conv2DDNNLayer`` is Lasagne's CPU
  ``Conv2DLayer`` with the cuDNN layer's default ``flip_filters=False`` (the same cross-correlation);
* ``cifar10_data.load`` returns a tiny dummy set (the data loading at the top of the script; the data is
  never used here) and ``plotting`` is an empty module (it needs matplotlib);
* the parsed ``--batch_size`` is made an int (the script's argparse has no ``type`` for it);
* every random stream (z, dropout masks) is replaced by shared variables set from the .npz.

The init, forward and feature-matching expressions below are the script's own lines, evaluated with
those draws.
"""
import argparse
import sys
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
import lasagne.layers.noise  # noqa: E402
import lasagne.utils  # noqa: E402

floatX = th.config.floatX
d = dict(np.load(a.inp))


class Conv2DDNNLayer(lasagne.layers.Conv2DLayer):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("flip_filters", False)  # lasagne.layers.dnn.Conv2DDNNLayer's default
        super(Conv2DDNNLayer, self).__init__(*args, **kwargs)


dnn = types.ModuleType("lasagne.layers.dnn")
dnn.Conv2DDNNLayer = Conv2DDNNLayer
dnn.as_tuple = lasagne.utils.as_tuple
sys.modules["lasagne.layers.dnn"] = dnn
lasagne.layers.dnn = dnn
sys.modules["plotting"] = types.ModuleType("plotting")
cifar_stub = types.ModuleType("cifar10_data")
cifar_stub.load = lambda *args, **kw: (np.zeros((4, 3, 32, 32), floatX), np.zeros(4, np.int32))
sys.modules["cifar10_data"] = cifar_stub


class InjectedStreams(object):
    """Stands in for MRG_RandomStreams: each draw is a shared variable that we fill before each call."""
    registry = []

    def __init__(self, *args, **kwargs):
        self.calls = []

    def _new(self, ndim):
        v = th.shared(np.zeros((1,) * ndim, dtype=floatX))
        self.calls.append(v)
        return v

    def uniform(self, size, low=0.0, high=1.0, **kwargs):
        return self._new(len(size))

    def binomial(self, size, n=1, p=0.5, dtype=None, **kwargs):
        return self._new(_ndim(size))

    def normal(self, size, avg=0.0, std=1.0, **kwargs):
        return avg + std * self._new(_ndim(size))


def _ndim(size):
    return len(size) if isinstance(size, (tuple, list)) else T.get_vector_length(size)


theano.sandbox.rng_mrg.MRG_RandomStreams = InjectedStreams
lasagne.layers.noise.RandomStreams = InjectedStreams
import nn  # noqa: E402
nn.RandomStreams = InjectedStreams

out = {}

# ---- nn.MinibatchLayer on its own: init pass and forward, gradients -----------------------------
x_in = T.matrix()
l_in = lasagne.layers.InputLayer((None, int(d["md_theta"].shape[0])))
md = nn.MinibatchLayer(l_in, num_kernels=int(d["md_theta"].shape[1]), dim_per_kernel=int(d["md_theta"].shape[2]))
md.theta.set_value(d["md_theta"].astype(floatX))
md.log_weight_scale.set_value(d["md_lws"].astype(floatX))
md.b.set_value(d["md_b"].astype(floatX))
init_out = lasagne.layers.get_output(md, x_in, init=True)
f_md_init = th.function([x_in], init_out, updates=md.init_updates)
out["md_init_out"] = f_md_init(d["md_x_init"].astype(floatX))
out["md_init_lws"], out["md_init_b"] = md.log_weight_scale.get_value(), md.b.get_value()
R = T.matrix()
y = lasagne.layers.get_output(md, x_in)
f_md = th.function([x_in, R], [y] + T.grad(T.sum(y * R), [md.theta, md.log_weight_scale, md.b, x_in]))
r = f_md(d["md_x"].astype(floatX), d["md_R"].astype(floatX))
for k, v in zip(["out", "grad_theta", "grad_lws", "grad_b", "grad_x"], r):
    out["md_" + k] = np.asarray(v)

if "n" not in d:
    np.savez(a.out, **out)
    sys.exit(0)

# ---- the CIFAR-10 feature-matching script's models ---------------------------------------------
n = int(d["n"])
script_path = src_dir + "/train_cifar_feature_matching.py"
source = open(script_path).read()
cut = source.index("# costs")
sys.argv = [script_path, "--batch_size", str(n)]
_parse = argparse.ArgumentParser.parse_args


def _parse_int_batch(self, *args, **kwargs):
    ns = _parse(self, *args, **kwargs)
    if hasattr(ns, "batch_size"):
        ns.batch_size = int(ns.batch_size)
    return ns


argparse.ArgumentParser.parse_args = _parse_int_batch
ns = {"__name__": "reference_cifar"}
exec(compile(source[:cut], script_path, "exec"), ns)
argparse.ArgumentParser.parse_args = _parse
gen_layers, disc_layers = ns["gen_layers"], ns["disc_layers"]
z_var = ns["theano_rng"].calls
assert len(z_var) == 1
z_var = z_var[0]


def params_of(layer):
    return {p.name: p for p in layer.get_params()}


P = {}
for i, l in enumerate(disc_layers):
    if isinstance(l, nn.WeightNormLayer):
        P["d%d_W" % i] = l.input_layer.W_param
        P["d%d_b" % i], P["d%d_g" % i] = l.b, l.g
for i in (1, 3, 4):
    P["g%d_W" % i] = gen_layers[i].input_layer.W
    P["g%d_b" % i] = gen_layers[i].b
P["g5_W"], P["g5_b"], P["g5_g"] = gen_layers[5].input_layer.W_param, gen_layers[5].b, gen_layers[5].g
dropouts = [l for l in disc_layers if isinstance(l, lasagne.layers.DropoutLayer)]


def set_params(prefix):
    for k, v in P.items():
        v.set_value(d[prefix + k].astype(floatX))


# the script's lines: init pass, forward on labeled data, feature matching (draws injected)
x_lab, x_unl = T.tensor4(), T.tensor4()
temp = lasagne.layers.get_output(gen_layers[-1], deterministic=False, init=True)
temp = lasagne.layers.get_output(disc_layers[-1], x_lab, deterministic=False, init=True)
init_updates = [u for l in gen_layers + disc_layers for u in getattr(l, 'init_updates', [])]
logits_lab = lasagne.layers.get_output(disc_layers[-1], x_lab, deterministic=False)
output_unl = lasagne.layers.get_output(disc_layers[-2], x_unl, deterministic=False)
output_gen = lasagne.layers.get_output(disc_layers[-2], ns["gen_dat"], deterministic=False)
m1 = T.mean(output_unl, axis=0)
m2 = T.mean(output_gen, axis=0)
loss_gen = T.mean(abs(m1 - m2))
gen_params = lasagne.layers.get_all_params(gen_layers, trainable=True)
name_of = {v: k for k, v in P.items()}
PASSES = ["init", "lab", "unl", "gen"]
for k, l in enumerate(dropouts):
    assert len(l._srng.calls) == 4, (k, len(l._srng.calls))

init_param = th.function([x_lab], [], updates=init_updates)
f_step = th.function([x_lab, x_unl], [logits_lab, ns["gen_dat"], m1, m2, loss_gen] + T.grad(loss_gen, gen_params))


def set_masks(ps):
    for k, l in enumerate(dropouts):
        l._srng.calls[PASSES.index(ps)].set_value(d["mask_%s_%d" % (ps, k)].astype(floatX))


set_params("pre_")
z_var.set_value(d["z_init"].astype(floatX))
set_masks("init")
init_param(d["x_init"].astype(floatX))
for k, v in P.items():
    if k.endswith(("_g", "_b")):
        out["init_" + k] = v.get_value()

set_params("post_")
z_var.set_value(d["z"].astype(floatX))
for ps in ("lab", "unl", "gen"):
    set_masks(ps)
r = f_step(d["x_lab"].astype(floatX), d["x_unl"].astype(floatX))
for k, v in zip(["d_logits_lab", "g_out", "feat_mean_unl", "feat_mean_gen", "loss_gen"], r[:5]):
    out["step_" + k] = np.asarray(v)
for p, g in zip(gen_params, r[5:]):
    out["step_grad_g_" + name_of[p]] = np.asarray(g)
np.savez(a.out, **out)
print("cifar reference side done")
