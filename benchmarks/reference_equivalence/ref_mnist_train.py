"""Runs under the Theano reference environment (NOT ganworks'): the authors' whole MNIST training
script, for the side-by-side runs of ``side_by_side.py``.

``mnist_svhn_cifar10/train_mnist_feature_matching.py`` is read from the checkout and executed as
written, with these substitutions made to its text from outside (each must match exactly once, so a
changed upstream script fails loudly instead of running something else):

* ``lasagne.layers.dnn`` (cuDNN) is an empty module: the MNIST model does not use it;
* the Python-2 integer division ``trainx_unl.shape[0]/txs.shape[0]`` becomes ``//``;
* ``np.load('mnist.npz')`` reads the file given by ``--mnist-npz`` (built by the driver from the
  canonical MNIST files: x_train = the first 50,000 training images, x_valid = the last 10,000,
  pixels in [0, 1]);
* ``range(300)`` epochs becomes ``range(--epochs)``;
* after ``test_batch`` is compiled, two more test functions are compiled from the same expression
  (raw D: no givens; averaged D scaled by a shared 1 / (1 - 0.9999^t));
* after the script's own per-epoch report (whose test error is the averaged D's: its ``test_batch``
  has ``givens=disc_avg_givens``) one JSON line is appended to ``--log`` with, in addition, the test
  error of the raw D and of the averaged D divided by (1 - 0.9999^t) (bias-corrected, as ganworks
  averages). These extra evaluations run after the script has taken its epoch time.

Usage (the driver calls it): python ref_mnist_train.py --improved-gan DIR --lasagne DIR
    --mnist-npz FILE --epochs N --log FILE.jsonl -- --seed S --seed_data S
"""
import argparse
import json
import os
import sys
import time
import types

ap = argparse.ArgumentParser()
ap.add_argument("--improved-gan", required=True)
ap.add_argument("--lasagne", required=True)
ap.add_argument("--mnist-npz", required=True)
ap.add_argument("--epochs", type=int, required=True)
ap.add_argument("--log", required=True)
ap.add_argument("script_args", nargs=argparse.REMAINDER)
a = ap.parse_args()
src_dir = a.improved_gan.rstrip("/") + "/mnist_svhn_cifar10"
script = os.path.join(src_dir, "train_mnist_feature_matching.py")
sys.path[:0] = [a.lasagne, src_dir]

import numpy as np  # noqa: E402
import theano as th  # noqa: E402
import lasagne  # noqa: E402
import lasagne.layers  # noqa: E402

dnn = types.ModuleType("lasagne.layers.dnn")
sys.modules["lasagne.layers.dnn"] = dnn
lasagne.layers.dnn = dnn

AVG_DECAY = 0.9999  # the script's disc_avg_updates: a <- a + 0.0001 (p - a)


def _setup(g):
    """Called by the patched script right after it compiles ``test_batch`` (while ``test_err`` is
    still the symbolic expression): the raw-D and bias-corrected averaged-D test functions."""
    x_lab, labels, err = g["x_lab"], g["labels"], g["test_err"]
    g["test_batch_raw"] = th.function(inputs=[x_lab, labels], outputs=err)
    g["avg_scale"] = th.shared(np.cast[th.config.floatX](1.0))
    givens = [(p, av * g["avg_scale"]) for p, av in zip(g["disc_params"], g["disc_param_avg"])]
    g["test_batch_avg_corrected"] = th.function(inputs=[x_lab, labels], outputs=err, givens=givens)


def _log_epoch(g):
    """Called by the patched script after its per-epoch print; ``g`` is the script's namespace."""
    t0 = time.time()
    steps = (g["epoch"] + 1) * g["nr_batches_train"]
    g["avg_scale"].set_value(np.cast[th.config.floatX](1.0 / (1.0 - AVG_DECAY ** steps)))
    bs, n = g["args"].batch_size, g["nr_batches_test"]
    tx, ty = g["testx"], g["testy"]

    def errors(fn):
        return int(round(sum(fn(tx[t * bs:(t + 1) * bs], ty[t * bs:(t + 1) * bs]) for t in range(n)) * bs))

    row = {"epoch": g["epoch"] + 1, "iteration": steps, "seconds": g["_epoch_seconds"],
           "loss_lab": float(g["loss_lab"]), "loss_unl": float(g["loss_unl"]), "train_error": float(g["train_err"]),
           "test_errors_avg": int(round(float(g["test_err"]) * len(ty))),
           "test_errors_raw": errors(g["test_batch_raw"]),
           "test_errors_avg_corrected": errors(g["test_batch_avg_corrected"]),
           "extra_eval_seconds": round(time.time() - t0, 3), "wall": time.time()}
    with open(a.log, "a") as f:
        f.write(json.dumps(row) + "\n")


def patch(text, old, new):
    if text.count(old) != 1:
        raise SystemExit(f"{script}: expected exactly one {old!r} to substitute, found {text.count(old)}; "
                         "the reference script has changed, update ref_mnist_train.py")
    return text.replace(old, new)


src = open(script).read()
src = patch(src, "range(trainx_unl.shape[0]/txs.shape[0])", "range(trainx_unl.shape[0]//txs.shape[0])")
src = patch(src, "np.load('mnist.npz')", f"np.load({a.mnist_npz!r})")
src = patch(src, "test_batch = th.function(inputs=[x_lab,labels], outputs=test_err, givens=disc_avg_givens)",
            "test_batch = th.function(inputs=[x_lab,labels], outputs=test_err, givens=disc_avg_givens)\n_setup(globals())")
src = patch(src, "for epoch in range(300):", f"for epoch in range({a.epochs}):")
report = 'print("Iteration %d, time = %ds'
i = src.index(report)
assert src.count(report) == 1
# the script's own time (its epoch: training + its averaged-D test pass), then our extra evaluations
src = src[:i] + "_epoch_seconds = time.time()-begin\n    " + src[i:]
src = patch(src, "    sys.stdout.flush()", "    sys.stdout.flush()\n    _log_epoch(globals())")

script_args = [s for s in a.script_args if s != "--"]
sys.argv = [script] + script_args
open(a.log, "w").close()
g = {"__name__": "__main__", "__file__": script, "_setup": _setup, "_log_epoch": _log_epoch}
exec(compile(src, script, "exec"), g)
