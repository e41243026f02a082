"""Experiment configuration: one table of defaults, presets as TOML files, ``--set`` overrides.

A preset is a TOML file under ``ganworks/presets/`` named by its path without the suffix, e.g.
``improved-gan/mnist-100``; ``extends = "<preset>"`` at its top inherits another preset. Files
whose name starts with ``_`` hold settings shared by several rows and are not listed. The
resolved configuration is ``DEFAULTS`` ← extended presets ← the preset ← ``--set key=value``
overrides. ``--set`` may only name keys that exist (a typo is an error, not a silent no-op), or
options of the chosen model builder / objective.
"""

from __future__ import annotations

import copy
import difflib
import inspect
import math
import sys
from importlib import resources
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .errors import ConfigError

#: Every key a configuration may have, with its default. Tables under ``model.generator``,
#: ``model.discriminator`` and ``objective`` also take the options of the named builder/objective.
DEFAULTS: dict = {
    "meta": {
        "paper": "", "table": "", "row": "",
        "published": "",          # the paper's number, as printed
        "published_metric": "",   # name of our metric it compares to, e.g. "test_errors_ema"
        "notes": "",
        "data": "",               # what a run on your own data found there (data/own_recipe.py)
    },
    "data": {
        "name": "mnist", "path": "", "root": "", "download": True,
        "labels": 0,              # labeled examples for semi-supervised runs (0: unsupervised)
        "seed_data": 1,           # seeds the labeled-subset permutation (reference: --seed_data)
        "scale": "",              # pixel scale (data/scaling.py); "" = the dataset's default
        "batch_size": 64, "image_size": 0,
        "channels": 1,            # only for the "synthetic" dataset (tests)
        "train_limit": 0, "test_limit": 0,   # use only the first N images (tests, smoke runs)
        "validation": 0,          # hold out the last N training images for eval.best selection (0 = none)
        "dequantize": False,      # add U(0, 1/128) noise to x/128 - 1 (sngan_projection's loaders)
        # lazily read class folders (data.name = "imagenet"; ganworks.data.folder)
        "workers": 4,             # DataLoader worker processes
        "limit_per_class": 0,     # only the first N images of each class (smoke runs); 0 = all
        "classes": [],            # a subset of class folder names, relabelled 0..k-1; [] = all
        "class_order": "",        # a dirname_to_label.txt file; "" = sorted folder names
        "class_names": [],        # data.name = "own": the classes, filled in from data.path
    },
    "model": {
        "generator": {"name": ""},
        "discriminator": {"name": ""},
        "init_examples": 0,       # data-dependent init batch (reference: 500); 0 = none
    },
    "objective": {"name": ""},
    "optim": {
        "setting": "",            # SN-GAN Table 1 "A".."F": sets lr, beta1, beta2 and objective.n_dis
        "name": "adam", "lr": 2e-4, "lr_d": 0.0, "lr_g": 0.0,   # lr_d/lr_g: 0 = use lr
        "beta1": 0.5, "beta2": 0.999, "eps": 1e-8,
        "eps_inside_sqrt": False,  # the Improved-GAN reference's Adam: sqrt(v + eps)
        "decay": "constant",       # or "linear": to 0 between decay_start and decay_end
        "decay_start": 0, "decay_end": 0,   # in iterations; decay_end 0 = the last iteration
    },
    "train": {
        "seed": 1, "epochs": 0.0, "iterations": 0,  # iterations win when both are set
        "ema_d": 0.0, "ema_g": 0.0,  # decay of a bias-corrected moving average (0 = off)
        "max_minutes": 0.0,       # wall-clock budget: evaluate, save and stop after it (0 = none)
        "device": "auto", "log_every": 10,
        "sync_bn": False,         # several processes: SyncBatchNorm in G (CUDA only; train/distributed.py)
        "amp": "none",            # mixed precision: "none", "bf16" or "fp16" (train/amp.py)
        "compile": "auto",        # torch.compile: true (step), "optimizer" (update only), false, "auto" (where faster; train/compiled.py)
        "noise": "global",        # Gaussian-noise layers' draws: "global", "parallel" or "prefetch" (nn/noise.py)
        "power_iteration": "per-step",  # spectral norm: one power step per optimizer step, or "per-call" (chainer-gan-lib)
    },
    "eval": {
        "every": 0,               # iterations between evaluations; 0 = once per epoch
        "grid": 100,              # samples in the grid PNG written at each evaluation
        "batch_size": 1000,
        "best": "",               # metric that selects best.pt, e.g. "val_error_ema" (needs data.validation) or "FID"
        "best_mode": "min",
        # sample quality (IS/FID/KID, ganworks.metrics) of G's samples during training
        "quality_samples": 0,     # generated images per score; 0 = off
        "quality_every": 0,       # iterations between scores; 0 = at every evaluation
        "quality_reference": "",  # real statistics for FID/KID, e.g. "cifar10:test"; "" = IS only
        "quality_extractor": "inception",   # or "classifier" (with quality_classifier)
        "quality_classifier": "",  # a `ganworks train-classifier` file: offline scores
        "quality_weights": "",     # Inception weights file (else $GANWORKS_INCEPTION_WEIGHTS)
        "quality_metrics": ["is", "fid"],
        "quality_splits": 10,     # Inception Score splits (sngan_projection: 1 split of 5,000 samples)
        "quality_uint8": "round",  # or "truncate" (chainer-gan-lib) when samples become uint8 for scoring
    },
}

#: Allowed values of the numeric and choice keys, checked wherever a config is resolved or loaded:
#: key -> (type, low, high, low_open) for numbers (None = unbounded; low_open: ``low`` itself is
#: not allowed), or a tuple of the allowed strings.
VALID: dict = {
    "data.batch_size": (int, 1, None, False),
    "data.labels": (int, 0, None, False),
    "data.seed_data": (int, 0, None, False),
    "data.image_size": (int, 0, 4096, False),
    "data.channels": (int, 1, 4, False),
    "data.train_limit": (int, 0, None, False),
    "data.test_limit": (int, 0, None, False),
    "data.validation": (int, 0, None, False),
    "data.workers": (int, 0, 256, False),
    "data.limit_per_class": (int, 0, None, False),
    "model.init_examples": (int, 0, None, False),
    "optim.lr": (float, 0.0, None, True),
    "optim.lr_d": (float, 0.0, None, False),
    "optim.lr_g": (float, 0.0, None, False),
    "optim.beta1": (float, 0.0, 1.0, False),
    "optim.beta2": (float, 0.0, 1.0, False),
    "optim.eps": (float, 0.0, 1.0, False),
    "optim.decay": ("constant", "linear"),
    "optim.decay_start": (int, 0, None, False),
    "optim.decay_end": (int, 0, None, False),
    "train.seed": (int, 0, 2**63 - 1, False),
    "train.epochs": (float, 0.0, 1e6, False),
    "train.iterations": (int, 0, 10**10, False),
    "train.ema_d": (float, 0.0, 1.0, False),
    "train.ema_g": (float, 0.0, 1.0, False),
    "train.max_minutes": (float, 0.0, 1e7, False),
    "train.log_every": (int, 1, None, False),
    "train.amp": ("none", "bf16", "fp16"),
    "train.noise": ("global", "parallel", "prefetch"),
    "train.power_iteration": ("per-step", "per-call"),
    "eval.every": (int, 0, None, False),
    "eval.grid": (int, 0, 10000, False),
    "eval.batch_size": (int, 1, None, False),
    "eval.best_mode": ("min", "max"),
    "eval.quality_samples": (int, 0, 10**7, False),
    "eval.quality_every": (int, 0, None, False),
    "eval.quality_splits": (int, 1, 1000, False),
    "eval.quality_uint8": ("round", "truncate"),
}
#: Keys whose upper bound is open (a decay of 1.0 never moves; beta 1.0 divides by zero).
_HIGH_OPEN = {"optim.beta1", "optim.beta2", "train.ema_d", "train.ema_g"}


def _interval(key: str, kind, low, high, low_open) -> str:
    lo = "-inf" if low is None else f"{low:g}" if kind is float else str(low)
    hi = "inf" if high is None else f"{high:g}" if kind is float else str(high)
    what = "an integer" if kind is int else "a number"
    return f"{what} in {'(' if low_open else '['}{lo}, {hi}{')' if key in _HIGH_OPEN or high is None else ']'}"


def validate(cfg: dict) -> dict:
    """Check every key of ``VALID`` in ``cfg``; a bad value raises ``ConfigError`` naming the range.

    Integral floats of integer keys (``2.0``) become ints; anything else out of range is an error.
    """
    for key, rule in VALID.items():
        section, leaf = key.split(".")
        node = cfg.get(section, {})
        if leaf not in node:
            continue
        value = node[leaf]
        if isinstance(rule[0], str):
            if value not in rule:
                raise ConfigError(f"config key {key!r} is {value!r}; allowed: {', '.join(map(repr, rule))}")
            continue
        kind, low, high, low_open = rule
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if ok and kind is int:
            ok = float(value).is_integer()
            if ok:
                value = int(value)
        if ok and low is not None:
            ok = value > low if low_open else value >= low
        if ok and high is not None:
            ok = value < high if key in _HIGH_OPEN else value <= high
        if not ok:
            raise ConfigError(f"config key {key!r} is {value!r}; it must be {_interval(key, kind, low, high, low_open)}")
        node[leaf] = value
    return cfg


def with_defaults(saved: dict) -> dict:
    """A saved run's config with keys added since it was written filled from ``DEFAULTS``
    (the saved values win), so a run started by an older version resumes."""
    return merge(DEFAULTS, saved)


def preset_root():
    return resources.files("ganworks") / "presets"


def list_presets() -> list[str]:
    found = []

    def walk(node, prefix):
        for child in node.iterdir():
            if child.is_dir():
                walk(child, f"{prefix}{child.name}/")
            elif child.name.endswith(".toml") and not child.name.startswith("_"):
                found.append(prefix + child.name[: -len(".toml")])

    walk(preset_root(), "")
    return sorted(found)


def _read_preset(name: str, seen: tuple = ()) -> dict:
    if name in seen:
        raise ConfigError(f"preset {name!r} extends itself through {' -> '.join(seen)}")
    node = preset_root().joinpath(*f"{name}.toml".split("/"))
    if not node.is_file():
        close = difflib.get_close_matches(name, list_presets(), n=5, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ConfigError(f"unknown preset {name!r}; {hint}`ganworks presets` lists them all")
    try:
        data = tomllib.loads(node.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"preset {name!r} is not valid TOML: {e}") from None
    base = data.pop("extends", None)
    if base:
        return merge(_read_preset(base, seen + (name,)), data)
    return data


def merge(base: dict, over: dict) -> dict:
    """Deep merge: tables merge, everything else in ``over`` replaces ``base``.

    A builder or objective table (``generator``, ``discriminator``, ``objective``) that names a
    different ``name`` replaces the old table instead of merging with it: the old one's options
    belong to something else.
    """
    out = copy.deepcopy(base)
    for key, value in over.items():
        renamed = key in ("generator", "discriminator", "objective") and isinstance(value, dict) and \
            isinstance(out.get(key), dict) and value.get("name", out[key].get("name")) != out[key].get("name")
        if isinstance(value, dict) and isinstance(out.get(key), dict) and not renamed:
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_preset(name: str, *, shared: bool = False) -> dict:
    """The preset merged over ``DEFAULTS`` (without overrides), with ``meta.preset`` set.

    A name whose last part starts with ``_`` holds settings shared by several presets and is refused
    unless ``shared=True`` (library code that builds a preset from such a base, e.g. the colour recipe
    of ``improved-gan/own-data``).
    """
    if name.rsplit("/", 1)[-1].startswith("_") and not shared:
        users = [p for p in list_presets() if p.rsplit("/", 1)[0] == name.rsplit("/", 1)[0]][:3]
        raise ConfigError(f"{name!r} holds settings shared by several presets and is no preset of its own (it lacks "
                          f"a paper row): pick a preset that extends it{', e.g. ' + ', '.join(users) if users else ''} "
                          f"(`ganworks presets` lists them)")
    cfg = merge(DEFAULTS, _read_preset(name))
    cfg["meta"]["preset"] = name
    return cfg


def parse_value(text: str):
    """A ``--set`` value as TOML (numbers, booleans, quoted strings, arrays), else a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _free_options(cfg: dict, path: list[str]) -> set[str] | None:
    """Extra keys allowed at ``path``: the named builder's or objective's keyword options."""
    if path in (["model", "generator"], ["model", "discriminator"]):
        from .models import builders

        fn = builders().get(_get(cfg, path).get("name", ""))
    elif path == ["objective"]:
        from .objectives import OBJECTIVES

        fn = OBJECTIVES.get(cfg["objective"].get("name", ""))
    else:
        return None
    if fn is None:
        return set()
    return {k for k, p in inspect.signature(fn).parameters.items() if p.kind == p.KEYWORD_ONLY or p.default is not p.empty}


def _get(cfg: dict, path: list[str]) -> dict:
    node = cfg
    for p in path:
        node = node[p]
    return node


def apply_overrides(cfg: dict, overrides: list[str]) -> dict:
    cfg = copy.deepcopy(cfg)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, text = item.split("=", 1)
        path = key.strip().split(".")
        node = cfg
        for i, part in enumerate(path[:-1]):
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"unknown config key {key!r}: {'.'.join(path[: i + 1])!r} is not a table")
            node = node[part]
        leaf = path[-1]
        value = parse_value(text.strip())
        if leaf not in node:
            allowed = _free_options(cfg, path[:-1])
            if allowed is None or leaf not in allowed:
                known = ", ".join(sorted(set(node) | (allowed or set())))
                raise ConfigError(f"unknown config key {key!r}; keys here: {known}")
        elif isinstance(node[leaf], dict):
            raise ConfigError(f"config key {key!r} is a table; set one of its keys, e.g. {key}.{next(iter(node[leaf]), 'name')}=...")
        elif node[leaf] is not None and not _compatible(node[leaf], value):
            raise ConfigError(f"config key {key!r} expects a {type(node[leaf]).__name__}, got {text!r}")
        if isinstance(node.get(leaf), float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        node[leaf] = value
    return validate(cfg)


def _compatible(old, new) -> bool:
    if old == "auto":  # tri-state keys: "auto" or a boolean
        return isinstance(new, (bool, str))
    if isinstance(old, bool) or isinstance(new, bool):
        return isinstance(old, bool) and isinstance(new, bool)
    if isinstance(old, (int, float)):
        return isinstance(new, (int, float))
    return isinstance(new, type(old))


#: SN-GAN Table 1: Adam (lr, β1, β2) and n_dis, the D steps per G step, by setting name.
ADAM_SETTINGS = {
    "A": (1e-4, 0.5, 0.9, 5),    # WGAN-GP (Gulrajani et al.)
    "B": (1e-4, 0.5, 0.999, 1),  # Warde-Farley & Bengio
    "C": (2e-4, 0.5, 0.999, 1),  # DCGAN (Radford et al.)
    "D": (1e-3, 0.5, 0.9, 5),
    "E": (1e-3, 0.5, 0.999, 5),
    "F": (1e-3, 0.9, 0.999, 5),
}


def apply_adam_setting(cfg: dict) -> dict:
    """Fill lr, β1, β2 and the objective's n_dis from ``optim.setting`` (SN-GAN Table 1), in place."""
    name = cfg["optim"].get("setting", "")
    if not name:
        return cfg
    if name not in ADAM_SETTINGS:
        raise ConfigError(f"unknown Adam setting {name!r}: choose one of {', '.join(ADAM_SETTINGS)} (SN-GAN Table 1)")
    if cfg["objective"].get("name") != "gan":
        raise ConfigError("optim.setting (SN-GAN Table 1) sets n_dis, which only the 'gan' objective has")
    lr, b1, b2, n_dis = ADAM_SETTINGS[name]
    cfg["optim"].update(lr=lr, beta1=b1, beta2=b2)
    cfg["objective"]["n_dis"] = n_dis
    return cfg


def resolve(preset: str, overrides: list[str] = ()) -> dict:
    """The preset with ``overrides``; an ``optim.setting`` then fixes lr, betas and n_dis. With
    ``data.name = "own"`` the models are then fitted to the images at ``data.path``
    (``ganworks.data.own_recipe``; colour images switch to its colour recipe, with the same overrides)."""
    overrides = list(overrides)
    cfg = apply_overrides(load_preset(preset), overrides)
    if cfg["data"]["name"] == "own":
        from .data.own_recipe import COLOUR_PRESET, fit_to_own_data

        cfg = fit_to_own_data(cfg, lambda: apply_overrides(load_preset(COLOUR_PRESET, shared=True), overrides))
    return validate(apply_adam_setting(cfg))
