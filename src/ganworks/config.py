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
    },
    "data": {
        "name": "mnist", "path": "", "root": "", "download": True,
        "labels": 0,              # labeled examples for semi-supervised runs (0: unsupervised)
        "seed_data": 1,           # seeds the labeled-subset permutation (reference: --seed_data)
        "scale": "",              # pixel scale (data/scaling.py); "" = the dataset's default
        "batch_size": 64, "image_size": 0,
        "channels": 1,            # only for the "synthetic" dataset (tests)
        "train_limit": 0, "test_limit": 0,   # use only the first N images (tests, smoke runs)
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
        "compile": "auto",        # torch.compile the step: true, false, or "auto" (where faster; train/compiled.py)
    },
    "eval": {
        "every": 0,               # iterations between evaluations; 0 = once per epoch
        "grid": 100,              # samples in the grid PNG written at each evaluation
        "batch_size": 1000,
        "best": "",               # metric that selects best.pt, e.g. "test_error_ema" or "FID"
        "best_mode": "min",
        # sample quality (IS/FID/KID, ganworks.metrics) of G's samples during training
        "quality_samples": 0,     # generated images per score; 0 = off
        "quality_every": 0,       # iterations between scores; 0 = at every evaluation
        "quality_reference": "",  # real statistics for FID/KID, e.g. "cifar10:test"; "" = IS only
        "quality_extractor": "inception",   # or "classifier" (with quality_classifier)
        "quality_classifier": "",  # a `ganworks train-classifier` file: offline scores
        "quality_weights": "",     # Inception weights file (else $GANWORKS_INCEPTION_WEIGHTS)
        "quality_metrics": ["is", "fid"],
    },
}


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


def load_preset(name: str) -> dict:
    """The preset merged over ``DEFAULTS`` (without overrides), with ``meta.preset`` set."""
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
    return cfg


def _compatible(old, new) -> bool:
    if old == "auto":  # tri-state keys: "auto" or a boolean
        return isinstance(new, (bool, str))
    if isinstance(old, bool) or isinstance(new, bool):
        return isinstance(old, bool) and isinstance(new, bool)
    if isinstance(old, (int, float)):
        return isinstance(new, (int, float))
    return isinstance(new, type(old))


def with_defaults(cfg: dict) -> dict:
    """A saved config (e.g. a checkpoint's, from an older ganworks) with keys added since filled in
    from ``DEFAULTS``; keys it has keep their values."""
    return merge(DEFAULTS, cfg)


def resolve(preset: str, overrides: list[str] = ()) -> dict:
    """The preset with ``overrides``; an ``optim.setting`` then fixes lr, betas and n_dis."""
    from .train.optim import apply_adam_setting

    return apply_adam_setting(apply_overrides(load_preset(preset), list(overrides)))
