"""Runs under the Theano reference environment (NOT ganworks'): the authors' CIFAR-10 feature-matching
models (``train_cifar_feature_matching.py``) and their minibatch-discrimination layer (``nn.MinibatchLayer``)
on weights, inputs and random draws read from an .npz.

The training script is executed as written up to its ``# costs`` section, which builds the generator and
the discriminator layer stacks. Substitutions made from outside (``theano_improved_gan.py``, shared with
``ref_improved_gan_conv.py``):

* ``lasagne.layers.dnn`` (cuDNN) is replaced by a module whose ``Conv2DDNNLayer`` is Lasagne's CPU
  ``Conv2DLayer`` with the cuDNN layer's default ``flip_filters=False`` (the same cross-correlation);
* ``cifar10_data.load`` returns a tiny dummy set (the data loading at the top of the script; the data is
  never used here) and ``plotting`` is an empty module (it needs matplotlib);
* the parsed ``--batch_size`` is made an int (the script's argparse has no ``type`` for it);
* every random stream (z, dropout masks) is replaced by shared variables set from the .npz.

The init, forward and feature-matching expressions below are the script's own lines, evaluated with
those draws.

The learning-rate schedule: the script's own ``lr = ...`` line (the first after ``for epoch in range(...):``)
is executed in the script's namespace at every epoch of that range; the script's
``nr_batches_train = ...`` line is evaluated with ``trainx`` of ``n_train`` (CIFAR-10's 50000) images and the
parser's default ``--batch_size`` (the run's own batch is the harness's small one).
"""
import argparse
import re
import sys

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--improved-gan", required=True)
ap.add_argument("--lasagne", required=True)
ap.add_argument("inp")
ap.add_argument("out")
a = ap.parse_args()

import theano_improved_gan as U  # noqa: E402  (the substitutions; see its docstring)

nn = U.setup(a.improved_gan, a.lasagne)
import theano as th  # noqa: E402
import theano.tensor as T  # noqa: E402
import lasagne  # noqa: E402
import lasagne.layers  # noqa: E402

floatX = th.config.floatX
d = dict(np.load(a.inp))
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
script_path = a.improved_gan.rstrip("/") + "/mnist_svhn_cifar10/train_cifar_feature_matching.py"
ns = U.exec_script(script_path, n, "# costs")
gen_layers, disc_layers = ns["gen_layers"], ns["disc_layers"]
z_var = ns["theano_rng"].calls
assert len(z_var) == 1
z_var = z_var[0]
P = U.conv_model_params(nn, gen_layers, disc_layers)
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

# ---- the learning-rate schedule: the script's own lines ------------------------------------------
src = open(script_path).read()
loop = re.search(r"^for epoch in range\((.+)\):$", src, re.M)
lr_line = next(line.strip() for line in src[loop.end():].splitlines() if line.strip().startswith("lr = "))
env = dict(ns)
lrs = []
for epoch in range(eval(loop.group(1), env)):
    env["epoch"] = epoch
    exec(lr_line, env)
    lrs.append(env["lr"])
out["lr_epoch"] = np.asarray(lrs)
out["lr_line"] = np.asarray(lr_line)
nr_line = next(line for line in src.splitlines() if line.startswith("nr_batches_train = "))
args_default = argparse.Namespace(**vars(ns["args"]))
args_default.batch_size = ns["parser"].get_default("batch_size")
env = dict(ns, trainx=np.empty((int(d["n_train"]), 0)), args=args_default)
exec(nr_line, env)
out["nr_batches_train"] = np.asarray(env["nr_batches_train"])
np.savez(a.out, **out)
print("cifar reference side done")
