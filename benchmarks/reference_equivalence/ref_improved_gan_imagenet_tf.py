"""Runs under the TensorFlow reference environment (NOT ganworks'): openai/improved-gan's ImageNet
code (``imagenet/model.py`` class ``VBN`` through ``DCGAN.vbn``; ``imagenet/discriminator.py``
``discriminator``, whose minibatch discrimination is inline) through ``tf.compat.v1`` graph mode,
on weights/inputs read from an .npz.

The reference is TF 0.x-era Python 2 code. It is imported from the checkout given, never copied;
the substitutions, all made from outside, are:

* **Python 2 source**: the modules are loaded by an import hook that, in memory, expands tabs to
  multiples of 8 columns (Python 2's rule; ``model.py`` mixes tabs and spaces) and turns each
  ``print a, b`` statement into ``print(a, b)``. Nothing else of the text is changed.
* **a module named ``tensorflow``** is put on ``sys.modules``: ``tf.compat.v1`` (after
  ``disable_v2_behavior()``) plus
  - ``concat(axis, values)``, the 0.x argument order, mapped to ``concat(values, axis)`` (calls in
    the 1.x order pass through); every concat's inputs are recorded, which is how the script
    reads the discriminator's features ``h`` and minibatch features ``[f1, f2]`` (the
    ``tf.concat(1, [h] + minibatch_features)`` call);
  - ``random_normal`` (the discriminator's input noise, N(0, 0.1²)) returns mean + stddev × a
    standard-normal draw read from the .npz;
  - ``nn.sigmoid_cross_entropy_with_logits`` and ``nn.sparse_softmax_cross_entropy_with_logits``
    take the 0.x positional order ``(logits, targets/labels)`` (1.x+ takes keywords only);
  - in the float64 run only: ``float32`` is ``float64``, ``get_variable`` defaults to float64, and
    the float32 NumPy identity that ``discriminator`` builds (``big``) is cast to float64 in
    ``expand_dims``, so that the whole graph is float64.
  ``keep_dims=``, ``tf.log``, ``tf.random_normal_initializer``, ``tf.nn.moments``,
  ``tf.nn.batch_norm_with_global_normalization`` etc. exist in ``tf.compat.v1`` as they are.
* ``scipy.misc`` (image I/O helpers of ``utils.py``, unused here) is an empty module.
* The reference builds its VBN/D variables inside a ``DCGAN`` object whose constructor builds the
  whole model and data pipeline; the script calls the unbound methods ``DCGAN.vbn`` and
  ``DCGAN.bnx`` on a small stand-in object with the attributes they read (``disable_vbn``,
  ``batch_size``, ``df_dim``, ``y_dim``). The second ``vbn`` call (the live batch) runs under a
  reusing variable scope, as ``generator.py`` does on its second pass.
* Weights the comparison needs (VBN γ, β; ``d_h`` = the minibatch layer's dense map;
  ``d_indiv_logits``) are assigned from the .npz after TF's initializer ran; the rest of the
  discriminator (its conv tower, only used to produce the minibatch layer's input ``h``) keeps
  TF's seeded initial values, which the script returns (``init:<name>``); an .npz that holds
  ``init:<name>`` values (the float64 run: the float32 run's values, upcast) has them loaded instead,
  so that both precisions run the same instance.
* The losses of ``build_model.py`` (``build_model_single_gpu``: ``d_loss_real`` with one-sided label
  smoothing through ``model.sigmoid_kl_with_logits``, ``d_loss_fake``, ``d_loss_class``, ``g_loss``)
  need the whole multi-GPU model there; the script runs those lines (and ``discriminator.py``'s last
  lines, 1001 logits → GAN logits) on joint-batch logits read from the .npz, with
  ``d_label_smooth`` and ``generator_target_prob`` read from ``train_imagenet.py``'s ``DCGAN(...)`` call.

Usage (the driver calls it): python ref_improved_gan_imagenet_tf.py --improved-gan DIR IN.npz OUT.npz
"""
import argparse
import importlib.abc
import importlib.util
import os
import re
import sys
import types

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--improved-gan", required=True)
ap.add_argument("inp")
ap.add_argument("out")
a = ap.parse_args()
REF = os.path.join(a.improved_gan, "imagenet")
d = dict(np.load(a.inp))
DT = np.dtype(str(d["dtype"]))

import tensorflow.compat.v1 as tf1  # noqa: E402

tf1.disable_v2_behavior()
TFDT = tf1.as_dtype(DT)

# ---- the `tensorflow` module the reference imports ----------------------------------------------
shim = types.ModuleType("tensorflow")
for _k in dir(tf1):
    if not _k.startswith("__"):
        setattr(shim, _k, getattr(tf1, _k))
CONCATS = []


def _concat(x, y, *args, **kw):
    if isinstance(x, int):  # 0.x order: concat(axis, values)
        x, y = y, x
    out = tf1.concat(x, y, *args, **kw)
    CONCATS.append((list(x), out))
    return out


def _random_normal(shape, mean=0.0, stddev=1.0, dtype=None, **kw):
    draw = d["normal_draw"]
    assert list(draw.shape) == list(shape), (draw.shape, shape)
    return tf1.constant(mean + stddev * draw.astype(DT))


def _nn_0x(fn, second):
    """A tf.nn loss in the 0.x positional order ``fn(logits, <second>)`` (1.x+: keywords only)."""

    def wrapped(*args, **kw):
        if args:
            kw.update(zip(("logits", second, "name")[: len(args)], args))
        return fn(**kw)

    return wrapped


shim.concat = _concat
shim.random_normal = _random_normal
shim.nn = types.ModuleType("tensorflow.nn")
for _k in dir(tf1.nn):
    if not _k.startswith("__"):
        setattr(shim.nn, _k, getattr(tf1.nn, _k))
shim.nn.sigmoid_cross_entropy_with_logits = _nn_0x(tf1.nn.sigmoid_cross_entropy_with_logits, "labels")
shim.nn.sparse_softmax_cross_entropy_with_logits = _nn_0x(tf1.nn.sparse_softmax_cross_entropy_with_logits, "labels")
if DT == np.float64:
    shim.float32 = tf1.float64

    def _get_variable(name, shape=None, dtype=None, *args, **kw):
        return tf1.get_variable(name, shape, tf1.float64 if dtype in (None, tf1.float32) else dtype, *args, **kw)

    def _expand_dims(x, *args, **kw):
        if isinstance(x, np.ndarray) and x.dtype == np.float32:
            x = x.astype(np.float64)
        return tf1.expand_dims(x, *args, **kw)

    shim.get_variable = _get_variable
    shim.expand_dims = _expand_dims
sys.modules["tensorflow"] = shim
scipy_stub = types.ModuleType("scipy")
scipy_stub.misc = types.ModuleType("scipy.misc")
sys.modules.setdefault("scipy", scipy_stub)
sys.modules.setdefault("scipy.misc", scipy_stub.misc)


# ---- Python 2 modules of the checkout, converted in memory ----------------------------------------
PRINT = re.compile(r"^(\s*)print\s+(?!\()(.*?)\s*$")


def py2_to_py3(src):
    lines = []
    for line in src.splitlines():
        line = line.expandtabs(8)
        m = PRINT.match(line)
        lines.append(f"{m.group(1)}print({m.group(2)})" if m else line)
    return "\n".join(lines) + "\n"


class Py2Checkout(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    NAMES = {"model", "ops", "utils", "discriminator", "generator", "build_model"}

    def find_spec(self, name, path=None, target=None):
        if name in self.NAMES:
            return importlib.util.spec_from_file_location(name, os.path.join(REF, name + ".py"), loader=self)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        with open(module.__file__) as f:
            src = py2_to_py3(f.read())
        exec(compile(src, module.__file__, "exec"), module.__dict__)


sys.meta_path.insert(0, Py2Checkout())
import model  # noqa: E402  (imagenet/model.py: DCGAN, VBN)
import discriminator  # noqa: E402  (imagenet/discriminator.py)

tf = tf1
tf.set_random_seed(int(d["seed"]))
sess = tf.Session(config=tf.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1))
out = {}


class Shell(object):
    """The attributes of DCGAN that DCGAN.vbn / DCGAN.bnx / discriminator() read."""
    disable_vbn = False
    y_dim = None
    vbn = model.DCGAN.vbn
    bnx = model.DCGAN.bnx


# ---- VBN: reference batch, then a live batch, through DCGAN.vbn ------------------------------------
vbn_jobs = []
for case in [k[4:-6] for k in d if k.startswith("vbn_") and k.endswith("_x_ref")]:
    p = "vbn_%s_" % case
    shell = Shell()
    x_ref = tf.placeholder(TFDT, d[p + "x_ref"].shape)
    x_live = tf.placeholder(TFDT, d[p + "x_live"].shape)
    name = "g_vbn_" + case
    y_ref = shell.vbn(x_ref, name)
    with tf.variable_scope(tf.get_variable_scope(), reuse=True):
        y_live = shell.vbn(x_live, name)
    vbn_obj = getattr(shell, name)
    assert isinstance(vbn_obj, model.VBN) and vbn_obj.epsilon == 1e-5
    gamma = [v for v in tf.global_variables() if v.name == name + "/gamma:0"]
    beta = [v for v in tf.global_variables() if v.name == name + "/beta:0"]
    assert len(gamma) == 1 and len(beta) == 1
    loss = tf.reduce_sum(y_ref * d[p + "w_ref"]) + tf.reduce_sum(y_live * d[p + "w_live"])
    g = tf.gradients(loss, [x_ref, x_live, gamma[0], beta[0]])
    vbn_jobs.append((p, x_ref, x_live, gamma[0], beta[0], y_ref, y_live, g))

# ---- discriminator: its inline minibatch discrimination and the logits after it -----------------
B = int(d["md_batch_size"])
shell = Shell()
shell.batch_size, shell.df_dim = B, int(d["md_df_dim"])
image = tf.placeholder(TFDT, d["md_image"].shape)
n_concat = len(CONCATS)
class_logits_real, _, gan_logits_real, _, gan_logits_fake = discriminator.discriminator(shell, image)
md_concat = [c for c in CONCATS[n_concat:] if len(c[0]) == 3 and c[0][1].get_shape().as_list() == [2 * B, 300]]
assert len(md_concat) == 1, [[v.get_shape().as_list() for v in c[0]] for c in CONCATS[n_concat:]]
h, f1, f2 = md_concat[0][0]
f = tf.concat([f1, f2], 1)
var = {v.name[:-2]: v for v in tf.global_variables()}
md_vars = [var["d_h/Matrix"], var["d_h/bias"]]
head_vars = md_vars + [var["d_indiv_logits/Matrix"], var["d_indiv_logits/bias"]]
loss_md = tf.reduce_sum(f * d["md_w_f"])
loss_head = (tf.reduce_sum(class_logits_real * d["md_w_cls"])
             + tf.reduce_sum(tf.concat([gan_logits_real, gan_logits_fake], 0) * d["md_w_gan"]))
g_md = tf.gradients(loss_md, [h] + md_vars)
g_head = tf.gradients(loss_head, [h] + head_vars)

# ---- the losses of build_model.py on given joint 1001-way logits ------------------------------
# d_label_smooth and generator_target_prob are read from train_imagenet.py's DCGAN(...) call (the
# released run's values); the GAN logits are discriminator.py's last lines, the losses
# build_model.py's lines (0.x argument order, through the shim) with model.sigmoid_kl_with_logits.
TRAIN = open(os.path.join(REF, "train_imagenet.py")).read()
HP = {
    k: float(eval(re.search(r"\b%s\s*=\s*([^,\n]+)," % k, TRAIN).group(1)))
    for k in ("d_label_smooth", "generator_target_prob")
}
loss_jobs = []
if "loss_logits" in d:
    L = tf.placeholder(TFDT, d["loss_logits"].shape)
    sparse_labels = tf.constant(d["loss_labels"].astype(np.int32))
    batch_size, num_classes = d["loss_logits"].shape
    half_batch = batch_size // 2
    class_logits = L
    # discriminator.py, from `generated_class_logits = ...` to the returned slices
    generated_class_logits = tf.squeeze(tf.slice(class_logits, [0, num_classes - 1], [batch_size, 1]))
    positive_class_logits = tf.slice(class_logits, [0, 0], [batch_size, num_classes - 1])
    mx = tf.reduce_max(positive_class_logits, 1, keep_dims=True)
    safe_pos_class_logits = positive_class_logits - mx
    gan_logits = tf.log(tf.reduce_sum(tf.exp(safe_pos_class_logits), 1)) + tf.squeeze(mx) - generated_class_logits
    class_logits = tf.slice(class_logits, [0, 0], [half_batch, num_classes])
    D_on_data_logits = tf.slice(gan_logits, [0], [half_batch])
    D_on_G_logits = tf.slice(gan_logits, [half_batch], [half_batch])
    # build_model.py (build_model_single_gpu)
    sigmoid_kl_with_logits = model.sigmoid_kl_with_logits
    d_label_smooth = HP["d_label_smooth"]
    d_loss_real = sigmoid_kl_with_logits(D_on_data_logits, 1.0 - d_label_smooth)
    class_loss_weight = 1.0
    d_loss_class = class_loss_weight * shim.nn.sparse_softmax_cross_entropy_with_logits(
        class_logits, tf.to_int64(sparse_labels)
    )
    d_loss_fake = shim.nn.sigmoid_cross_entropy_with_logits(D_on_G_logits, tf.zeros_like(D_on_G_logits))
    g_loss = sigmoid_kl_with_logits(D_on_G_logits, HP["generator_target_prob"])
    d_loss_class = tf.reduce_mean(d_loss_class)
    d_loss_real = tf.reduce_mean(d_loss_real)
    d_loss_fake = tf.reduce_mean(d_loss_fake)
    g_loss = tf.reduce_mean(g_loss)
    d_loss = d_loss_real + d_loss_fake + d_loss_class
    loss_jobs = (
        [d_loss_real, d_loss_fake, d_loss_class, d_loss, g_loss] + tf.gradients(d_loss, L) + tf.gradients(g_loss, L)
    )

sess.run(tf.global_variables_initializer())
# the variables TF initialised (the conv tower that produces h, BN gammas): given by the .npz when it
# holds them (the float64 run receives the float32 run's values), else returned as TF drew them
LOADED = {"d_h/Matrix", "d_h/bias", "d_indiv_logits/Matrix", "d_indiv_logits/bias"}
LOADED |= {v.name[:-2] for _, _, _, gamma, beta, *_ in vbn_jobs for v in (gamma, beta)}
for v in tf.global_variables():
    name = v.name[:-2]
    if name in LOADED:
        continue
    key = "init:" + name.replace("/", "|")
    if key in d:
        v.load(d[key], sess)
    else:
        out[key] = sess.run(v)
for p, x_ref, x_live, gamma, beta, y_ref, y_live, g in vbn_jobs:
    gamma.load(d[p + "gamma"], sess)
    beta.load(d[p + "beta"], sess)
    r = sess.run([y_ref, y_live] + g, {x_ref: d[p + "x_ref"], x_live: d[p + "x_live"]})
    for k, v in zip(["y_ref", "y_live", "grad_x_ref", "grad_x_live", "grad_gamma", "grad_beta"], r):
        out[p + k] = v
for k in ("d_h/Matrix", "d_h/bias", "d_indiv_logits/Matrix", "d_indiv_logits/bias"):
    var[k].load(d["md_" + k.replace("/", "_")], sess)
fd = {image: d["md_image"]}
r = sess.run([h, f, class_logits_real, gan_logits_real, gan_logits_fake] + g_md + g_head, fd)
names = ["h", "f", "class_logits_real", "gan_logits_real", "gan_logits_fake",
         "gmd_h", "gmd_d_h_Matrix", "gmd_d_h_bias",
         "ghead_h", "ghead_d_h_Matrix", "ghead_d_h_bias", "ghead_d_indiv_logits_Matrix", "ghead_d_indiv_logits_bias"]
for k, v in zip(names, r):
    out["md_" + k] = np.asarray(v)
if loss_jobs:
    r = sess.run(loss_jobs, {L: d["loss_logits"]})
    for k, v in zip(
        ["d_loss_real", "d_loss_fake", "d_loss_class", "d_loss", "g_loss", "grad_d_loss", "grad_g_loss"], r
    ):
        out["loss_" + k] = np.asarray(v)
    out["loss_hp"] = np.array([HP["d_label_smooth"], HP["generator_target_prob"]])
np.savez(a.out, **out)
print("tensorflow reference side done (%s)" % DT)
