"""Shared helpers of the Theano-side scripts (runs under the Theano reference environment, NOT ganworks').

``setup(improved_gan, lasagne_dir)`` makes the authors' CIFAR-10/SVHN training scripts executable on a CPU
without their data, by substitutions made from outside (nothing in the checkout is changed):

* ``lasagne.layers.dnn`` (cuDNN) becomes a module whose ``Conv2DDNNLayer`` is Lasagne's CPU ``Conv2DLayer``
  with the cuDNN layer's default ``flip_filters=False`` (the same cross-correlation);
* ``cifar10_data.load`` / ``svhn_data.load`` return a tiny dummy set (the scripts load data before building
  their models; the data is never used here) and ``plotting`` is an empty module (it needs matplotlib);
* ``cPickle`` (Python 2, imported but unused by ``train_cifar_minibatch_discrimination.py``) is ``pickle``;
* every random stream (``MRG_RandomStreams`` of the scripts and of ``nn``, Lasagne's noise layers) is an
  ``InjectedStreams``: each draw is a shared variable that the caller fills (ganworks' draws).

``exec_script(path, batch_size, cut)`` then executes a training script as written up to the line ``cut``
(e.g. ``# select labeled data``: all model, loss, Adam-update and Theano-function construction), with

* the parsed ``--batch_size`` made an int (some scripts' argparse has no ``type`` for it);
* ``theano.function`` made lazy while the script runs: each function is compiled on its first call, so only
  the functions that are used cost compile time.
"""
import argparse
import sys
import types

import numpy as np


class InjectedStreams(object):
    """Stands in for MRG_RandomStreams: each draw is a shared variable that we fill before each call."""

    def __init__(self, *args, **kwargs):
        self.calls = []

    def _new(self, ndim):
        import theano as th
        v = th.shared(np.zeros((1,) * ndim, dtype=th.config.floatX))
        self.calls.append(v)
        return v

    def uniform(self, size, low=0.0, high=1.0, **kwargs):
        return self._new(_ndim(size))

    def binomial(self, size, n=1, p=0.5, dtype=None, **kwargs):
        return self._new(_ndim(size))

    def normal(self, size, avg=0.0, std=1.0, **kwargs):
        return avg + std * self._new(_ndim(size))


def _ndim(size):
    import theano.tensor as T
    return len(size) if isinstance(size, (tuple, list)) else T.get_vector_length(size)


def setup(improved_gan, lasagne_dir):
    """Put the checkouts on sys.path, install the substitutions; returns the authors' ``nn`` module."""
    src_dir = improved_gan.rstrip("/") + "/mnist_svhn_cifar10"
    sys.path[:0] = [lasagne_dir, src_dir]
    import theano as th
    import theano.sandbox.rng_mrg
    import lasagne
    import lasagne.layers
    import lasagne.layers.noise
    import lasagne.utils
    floatX = th.config.floatX

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
    import pickle
    sys.modules.setdefault("cPickle", pickle)  # Python 2's name (train_cifar_minibatch_discrimination.py imports it)
    cifar_stub = types.ModuleType("cifar10_data")
    cifar_stub.load = lambda *args, **kw: (np.zeros((4, 3, 32, 32), floatX), np.zeros(4, np.int32))
    sys.modules["cifar10_data"] = cifar_stub
    svhn_stub = types.ModuleType("svhn_data")  # the SVHN scripts transpose (3, 2, 0, 1) after loading
    svhn_stub.load = lambda *args, **kw: (np.zeros((32, 32, 3, 4), np.uint8), np.zeros(4, np.int32))
    sys.modules["svhn_data"] = svhn_stub
    theano.sandbox.rng_mrg.MRG_RandomStreams = InjectedStreams
    lasagne.layers.noise.RandomStreams = InjectedStreams
    import nn
    nn.RandomStreams = InjectedStreams
    return nn


class LazyFunction(object):
    """``theano.function(*args, **kwargs)``, compiled on the first call."""

    def __init__(self, compile_fn, *args, **kwargs):
        self.compile_fn, self.args, self.kwargs, self.f = compile_fn, args, kwargs, None

    def __call__(self, *inputs):
        if self.f is None:
            self.f = self.compile_fn(*self.args, **self.kwargs)
        return self.f(*inputs)


def exec_script(script_path, batch_size, cut):
    """Execute ``script_path`` up to the line ``cut`` with ``--batch_size``; returns its namespace."""
    import theano
    source = open(script_path).read()
    end = source.index(cut)
    sys.argv = [script_path, "--batch_size", str(batch_size)]
    parse = argparse.ArgumentParser.parse_args

    def parse_int_batch(self, *args, **kwargs):
        ns = parse(self, *args, **kwargs)
        if hasattr(ns, "batch_size"):
            ns.batch_size = int(ns.batch_size)
        return ns

    compile_fn = theano.function
    argparse.ArgumentParser.parse_args = parse_int_batch
    theano.function = lambda *args, **kwargs: LazyFunction(compile_fn, *args, **kwargs)
    try:
        ns = {"__name__": "reference_script"}
        exec(compile(source[:end], script_path, "exec"), ns)
    finally:
        argparse.ArgumentParser.parse_args = parse
        theano.function = compile_fn
    return ns


def conv_model_params(nn, gen_layers, disc_layers):
    """{our name: shared variable} for the CIFAR-10/SVHN scripts' models. D: ``d<i>_{W,g,b}`` for the
    weight-normalised layer disc_layers[i] (W its inner layer's V), ``d<i>_{theta,lws,b}`` for a
    ``nn.MinibatchLayer``; G: ``g<i>_{W,b}`` for the dense/deconv layers 1, 3, 4 (b: their BN's shift),
    ``g5_{W,g,b}`` for the weight-normalised output deconv."""
    P = {}
    for i, l in enumerate(disc_layers):
        if isinstance(l, nn.WeightNormLayer):
            P["d%d_W" % i] = l.input_layer.W_param
            P["d%d_b" % i], P["d%d_g" % i] = l.b, l.g
        elif isinstance(l, nn.MinibatchLayer):
            P["d%d_theta" % i], P["d%d_lws" % i], P["d%d_b" % i] = l.theta, l.log_weight_scale, l.b
    for i in (1, 3, 4):
        P["g%d_W" % i] = gen_layers[i].input_layer.W
        P["g%d_b" % i] = gen_layers[i].b
    P["g5_W"], P["g5_b"], P["g5_g"] = gen_layers[5].input_layer.W_param, gen_layers[5].b, gen_layers[5].g
    return P
