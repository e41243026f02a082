"""Runs under a reference Python with NumPy and six (NOT ganworks'): the Inception Score arithmetic of
openai/improved-gan ``inception_score/model.py`` (``get_inception_score``: softmax outputs split into
``splits`` chunks, per chunk exp(mean KL(p(y|x) || p(y))), then the mean and ``np.std`` of the chunk
scores) on class probabilities read from an .npz.

The module is executed from the checkout with, made from outside and in memory only:

* a stand-in ``tensorflow`` module whose ``Session().run(softmax, feed)`` returns the next row of the
  .npz's probabilities (the Inception network itself is not run: the probabilities are the input);
* an empty ``scipy.misc`` (imported, unused by ``get_inception_score``);
* the module's last statement ``if softmax is None: _init_inception()`` (downloads and loads the
  Inception graph) replaced by ``pass``; it must match exactly once.

The images handed to ``get_inception_score`` are 1x1x3 arrays of 255 (its input checks want a list of
3-D arrays in [0, 255] with max > 10); the stand-in session ignores them.

Usage (the driver calls it): python ref_inception_score.py --improved-gan DIR IN.npz OUT.npz
"""
import argparse
import sys
import types

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--improved-gan", required=True)
ap.add_argument("inp")
ap.add_argument("out")
a = ap.parse_args()

d = dict(np.load(a.inp))
state = {"probs": None, "i": 0}


class _Session:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def run(self, fetch, feed):
        n = len(feed["ExpandDims:0"])
        rows = state["probs"][state["i"]: state["i"] + n]
        state["i"] += n
        return rows


tf = types.ModuleType("tensorflow")
tf.Session = _Session
sys.modules["tensorflow"] = tf
misc = types.ModuleType("scipy.misc")
sys.modules["scipy.misc"] = misc
try:
    import scipy
    scipy.misc = misc
except ImportError:
    scipy = types.ModuleType("scipy")
    scipy.misc = misc
    sys.modules["scipy"] = scipy

path = a.improved_gan.rstrip("/") + "/inception_score/model.py"
src = open(path).read()
tail = "if softmax is None:\n  _init_inception()"
assert src.count(tail) == 1, "the Inception-graph loading statement must match exactly once"
src = src.replace(tail, "pass")
mod = types.ModuleType("inception_score_model")
mod.__file__ = path
exec(compile(src, path, "exec"), mod.__dict__)
mod.softmax = "softmax"  # what the stand-in session is asked for

out = {}
for case in sorted({k.split("/")[0] for k in d}):
    probs = d[case + "/probs"]
    state["probs"], state["i"] = probs, 0
    images = [np.full((1, 1, 3), 255.0)] * len(probs)
    mean, std = mod.get_inception_score(images, splits=int(d[case + "/splits"]))
    assert state["i"] == len(probs)
    out[case + "/IS"], out[case + "/IS_std"] = np.asarray(mean), np.asarray(std)
np.savez(a.out, **out)
print("\nimproved-gan inception_score side done:", ", ".join(sorted({k.split("/")[0] for k in d})))
