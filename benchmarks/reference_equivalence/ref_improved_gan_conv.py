"""Runs under the Theano reference environment (NOT ganworks'): one of the authors' SVHN / CIFAR-10 training
scripts (``--script``, e.g. ``train_svhn_feature_matching.py``, ``train_svhn_minibatch_discrimination.py``,
``train_cifar_minibatch_discrimination.py``), executed as written up to ``# select labeled data`` (models,
losses, the script's Adam updates and Theano functions), on weights, inputs and random draws read from an .npz.

Substitutions made from outside (``theano_improved_gan.py``): cuDNN conv → Lasagne's CPU ``Conv2DLayer``
(``flip_filters=False``), the data loaders (``svhn_data.load`` / ``cifar10_data.load``) return a tiny dummy
set (the data is never used), ``plotting`` is empty, ``--batch_size`` is made an int, every random stream
(z, dropout masks, Gaussian noise) is a shared variable set from the .npz, ``theano.function`` compiles lazily.

``--mode grads``: [if ``x_init`` is given] the script's ``init_param`` (data-dependent init) from ``pre_``
weights; then, from ``post_`` weights, the D loss ``loss_lab + unlabeled_weight·loss_unl`` (the script's
expressions) with its forward outputs and its gradient w.r.t. every D parameter, and the script's ``loss_gen``
(feature matching or −mean softplus(l_gen)) with its gradient w.r.t. every G parameter.

``--mode step``: from ``post_`` weights, the script's own ``train_batch_disc`` once, then ``train_batch_gen``
``g_steps`` times (with ``x_unl2`` where it takes a batch: the feature-matching scripts); the parameters and
Adam's moments and step count (``adam_d_``, ``adam_g<j>_``) after each, and the script's test-time average
``disc_param_avg`` after them.
[if ``avgin_`` weights are given] those are put into ``disc_param_avg`` (and D's non-trainable parameters among
them into those parameters) and the script's test-time pass on ``x_lab`` is run with it (``test_batch``:
``givens=disc_avg_givens``, ``deterministic=True``): logits and error.
"""
import argparse

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--improved-gan", required=True)
ap.add_argument("--lasagne", required=True)
ap.add_argument("--script", required=True)
ap.add_argument("--mode", choices=["grads", "step"], required=True)
ap.add_argument("inp")
ap.add_argument("out")
a = ap.parse_args()

import theano_improved_gan as U  # noqa: E402

nn = U.setup(a.improved_gan, a.lasagne)
import theano as th  # noqa: E402
import theano.tensor as T  # noqa: E402
import lasagne  # noqa: E402

floatX = th.config.floatX
d = dict(np.load(a.inp))
n = int(d["n"])
script_path = a.improved_gan.rstrip("/") + "/mnist_svhn_cifar10/" + a.script
ns = U.exec_script(script_path, n, "# select labeled data")
gen_layers, disc_layers = ns["gen_layers"], ns["disc_layers"]
P = U.conv_model_params(nn, gen_layers, disc_layers)
name_of = {v: k for k, v in P.items()}
z_calls = ns["theano_rng"].calls
assert len(z_calls) == 1, len(z_calls)
z_var = z_calls[0]
noise_layers = [l for l in disc_layers
                if isinstance(l, (lasagne.layers.DropoutLayer, lasagne.layers.GaussianNoiseLayer))]
# each get_output pass of D in training mode draws once per noise layer, in the script's order
fm = "m1" in ns
PASSES = ["init", "lab", "unl", "gen"] + (["fmunl", "fmgen"] if fm else [])
for k, l in enumerate(noise_layers):
    assert len(l._srng.calls) == len(PASSES), (k, len(l._srng.calls), PASSES)


def cast(x):
    return np.asarray(x).astype(floatX)


def set_params(prefix):
    for k, v in P.items():
        v.set_value(cast(d[prefix + k]))


def set_draws(prefix):
    """Fill each noise layer's draw of pass ``ps`` from d['<prefix>_<ps>_<layer>']."""
    found = 0
    for ps in PASSES:
        for k, l in enumerate(noise_layers):
            key = "%s_%s_%d" % (prefix, ps, k)
            if key in d:
                l._srng.calls[PASSES.index(ps)].set_value(cast(d[key]))
                found += 1
    assert found, prefix


def adam_state(prefix, updates):
    """Adam's state after a step, from the script's update list (nn.adam_updates: per parameter (v, v_t) the
    first moment, (mg, mg_t) the second, (p, p_t); then (t, t + 1)): ``<prefix>m_<name>``, ``<prefix>v_<name>``,
    ``<prefix>t``."""
    for i in range(len(updates) // 3):
        (m, _), (v, _), (p, _) = updates[3 * i:3 * i + 3]
        out[prefix + "m_" + name_of[p]], out[prefix + "v_" + name_of[p]] = m.get_value(), v.get_value()
    out[prefix + "t"] = np.asarray(updates[-1][0].get_value())


out = {}
disc_params, gen_params = ns["disc_params"], ns["gen_params"]
if a.mode == "grads":
    if "x_init" in d:
        set_params("pre_")
        z_var.set_value(cast(d["z_init"]))
        set_draws("ipass")
        ns["init_param"](cast(d["x_init"]))
        for k, v in P.items():
            if not k.endswith("_W") and not k.endswith("_theta"):
                out["init_" + k] = v.get_value()
    set_params("post_")
    z_var.set_value(cast(d["z"]))
    x_lab, labels, x_unl = ns["x_lab"], ns["labels"], ns["x_unl"]
    loss_d = ns["loss_lab"] + ns["args"].unlabeled_weight * ns["loss_unl"]
    d_outs = [ns["output_before_softmax_lab"], ns["output_before_softmax_unl"], ns["output_before_softmax_gen"],
              ns["gen_dat"], ns["loss_lab"], ns["loss_unl"]]
    f_d = th.function([x_lab, labels, x_unl], d_outs + T.grad(loss_d, disc_params))
    g_outs = [ns["loss_gen"]] + ([ns["m1"], ns["m2"]] if fm else [])
    f_g = th.function([x_unl], g_outs + T.grad(ns["loss_gen"], gen_params), on_unused_input="ignore")
    set_draws("dpass")
    r = f_d(cast(d["x_lab"]), d["y_lab"].astype(np.int32), cast(d["x_unl"]))
    for k, v in zip(["d_logits_lab", "d_logits_unl", "d_logits_gen", "g_out", "loss_lab", "loss_unl"], r):
        out["step_" + k] = np.asarray(v)
    for p, g in zip(disc_params, r[len(d_outs):]):
        out["step_grad_d_" + name_of[p]] = np.asarray(g)
    set_draws("gpass0")
    r = f_g(cast(d["x_unl2"]))
    for k, v in zip(["loss_gen", "feat_mean_unl", "feat_mean_gen"], r[:len(g_outs)]):
        out["step_" + k] = np.asarray(v)
    for p, g in zip(gen_params, r[len(g_outs):]):
        out["step_grad_g_" + name_of[p]] = np.asarray(g)
else:
    set_params("post_")
    lr = cast(d["lr"])
    z_var.set_value(cast(d["z_d"]))
    set_draws("dpass")
    r = ns["train_batch_disc"](cast(d["x_lab"]), d["y_lab"].astype(np.int32), cast(d["x_unl"]), lr)
    out["dstep_loss_lab"], out["dstep_loss_unl"], out["dstep_train_err"] = [np.asarray(v) for v in r]
    for p in disc_params:
        out["after_d_" + name_of[p]] = p.get_value()
    adam_state("adam_d_", ns["disc_param_updates"])
    f_gen = ns["train_batch_gen"]
    gen_x = len(f_gen.kwargs["inputs"]) == 2  # the FM scripts' train_batch_gen(x_unl, lr); MD: (lr)
    for j in range(int(d["g_steps"])):
        z_var.set_value(cast(d["z_g%d" % j]))
        set_draws("gpass%d" % j)
        f_gen(*(([cast(d["x_unl2"])] if gen_x else []) + [lr]))
        for p in gen_params:
            out["after_g%d_%s" % (j, name_of[p])] = p.get_value()
        adam_state("adam_g%d_" % j, ns["gen_param_updates"])
    for p in disc_params:  # the G steps must leave D alone
        out["after_gsteps_" + name_of[p]] = p.get_value()
    avg = ns["disc_param_avg"]
    for p, v in zip(disc_params, avg):
        out["avg_" + name_of[p]] = v.get_value()
    if any(k.startswith("avgin_") for k in d):
        for p, v in zip(disc_params, avg):
            v.set_value(cast(d["avgin_" + name_of[p]]))
        # D's non-trainable parameters (the conv layers' g: train_g=False) are not averaged; the test pass uses
        # them as they are. They were set (post_) to give ganworks' effective weight with the V of then; given
        # here for the averaged V (identical without the epsilon difference; set after every output above)
        trained = set(id(p) for p in disc_params)
        fixed = [p for p in P.values() if id(p) not in trained and "avgin_" + name_of[p] in d]
        out["test_fixed_params"] = np.asarray(sorted(name_of[p] for p in fixed))
        for p in fixed:
            p.set_value(cast(d["avgin_" + name_of[p]]))
        f_test = th.function([ns["x_lab"]], ns["output_before_softmax"], givens=ns["disc_avg_givens"])
        out["test_logits_avg"] = np.asarray(f_test(cast(d["x_lab"])))
        out["test_err_avg"] = np.asarray(ns["test_batch"](cast(d["x_lab"]), d["y_lab"].astype(np.int32)))
np.savez(a.out, **out)
print("%s (%s) reference side done" % (a.script, a.mode))
