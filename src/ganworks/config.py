"""Experiment configuration: defaults, presets as TOML files, ``--set`` overrides, resolution.

A preset is a TOML file under ``ganworks/presets/`` named by its path without the suffix, e.g.
``improved-gan/mnist-100``; ``extends = "<preset>"`` at its top inherits another preset. Files
whose name starts with ``_`` hold settings shared by several rows and are not listed. The
resolved configuration is ``DEFAULTS`` ← extended presets ← the preset ← ``--set key=value``
overrides. ``--set`` may only name keys that exist (a typo is an error naming the nearest key, not
a silent no-op), or options of the chosen model builder / objective. Each key's default, type,
allowed values and doc live in one table, ``config_keys.KEYS`` (docs/configuration.md is generated
from it); ``DEFAULTS`` and every check here come from it.
"""

from __future__ import annotations

import copy
import difflib
import inspect
import sys
from importlib import resources

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .config_keys import ADAM_SETTINGS, KEYS, OPEN_TABLES, check, defaults, unknown_key_error
from .errors import ConfigError

#: Every key a configuration may have, with its default: the nested table of ``config_keys.KEYS``
#: (where each key's type, allowed values and doc are). Tables under ``model.generator``,
#: ``model.discriminator`` and ``objective`` also take the options of the named builder/objective.
DEFAULTS: dict = defaults()


def validate(cfg: dict) -> dict:
    """Check every key of ``config_keys.KEYS`` present in ``cfg`` (type, bounds, choices), in place.

    A bad value raises ``ConfigError`` in one line naming the key, the value and what is allowed.
    Integral floats of integer keys (``2.0``) become ints, ints of float keys floats. Keys outside the
    table are left alone here (a resumed run's config may hold keys since retired); presets and
    ``--set`` refuse them.
    """
    for name in KEYS:
        *path, leaf = name.split(".")
        node = cfg
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and leaf in node:
            node[leaf] = check(name, node[leaf])
    return cfg


def unknown_keys(cfg: dict) -> list[str]:
    """The dotted keys of ``cfg`` outside ``KEYS`` (options under ``OPEN_TABLES`` excepted)."""
    found = []

    def walk(node: dict, prefix: str):
        for k, v in node.items():
            name = prefix + k
            if name in OPEN_TABLES:
                continue
            if isinstance(v, dict):
                walk(v, name + ".")
            elif name not in KEYS:
                found.append(name)

    walk(cfg, "")
    return found


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
        renamed = (
            key in ("generator", "discriminator", "objective")
            and isinstance(value, dict)
            and isinstance(out.get(key), dict)
            and value.get("name", out[key].get("name")) != out[key].get("name")
        )
        if isinstance(value, dict) and isinstance(out.get(key), dict) and not renamed:
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_preset(name: str, *, shared: bool = False) -> dict:
    """The preset merged over ``DEFAULTS`` (without overrides), checked, with ``meta.preset`` set.

    A key the preset gives must be in ``config_keys.KEYS`` (or a builder/objective option) and hold
    an allowed value; the error names the preset.

    A name whose last part starts with ``_`` holds settings shared by several presets and is refused
    unless ``shared=True`` (library code that builds a preset from such a base, e.g. the colour recipe
    of ``improved-gan/own-data``).
    """
    if name.rsplit("/", 1)[-1].startswith("_") and not shared:
        users = [p for p in list_presets() if p.rsplit("/", 1)[0] == name.rsplit("/", 1)[0]][:3]
        raise ConfigError(
            f"{name!r} holds settings shared by several presets and is no preset of its own (it lacks "
            f"a paper row): pick a preset that extends it{', e.g. ' + ', '.join(users) if users else ''} "
            f"(`ganworks presets` lists them)"
        )
    data = _read_preset(name)
    unknown = unknown_keys(data)
    if unknown:
        raise ConfigError(f"preset {name!r}: {unknown_key_error(unknown[0])}")
    cfg = merge(DEFAULTS, data)
    try:
        validate(cfg)
    except ConfigError as e:
        raise ConfigError(f"preset {name!r}: {e}") from None
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
    return {
        k for k, p in inspect.signature(fn).parameters.items() if p.kind == p.KEYWORD_ONLY or p.default is not p.empty
    }


def _get(cfg: dict, path: list[str]) -> dict:
    node = cfg
    for p in path:
        node = node[p]
    return node


def _options_in(cfg: dict) -> list[str]:
    """The dotted names of the builder/objective options ``cfg`` already holds."""
    out = []
    for table in OPEN_TABLES:
        node = cfg
        for part in table.split("."):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        out += [f"{table}.{k}" for k in (node if isinstance(node, dict) else {}) if f"{table}.{k}" not in KEYS]
    return out


def apply_overrides(cfg: dict, overrides: list[str]) -> dict:
    """``cfg`` with ``key=value`` overrides (values in TOML, a bare word a string), checked.

    A key must be in ``config_keys.KEYS`` (its value is checked there: type, bounds, choices), or an
    option of the builder/objective an open table names; anything else is an error naming the nearest key.
    """
    cfg = copy.deepcopy(cfg)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, text = item.split("=", 1)
        key = key.strip()
        *path, leaf = key.split(".")
        value = parse_value(text.strip())
        table = ".".join(path)
        if key in KEYS:
            value = check(key, value)
        elif key in OPEN_TABLES or any(k.startswith(key + ".") for k in KEYS):
            first = next(k for k in KEYS if k.startswith(key + "."))
            raise ConfigError(f"config key {key!r} is a table; set one of its keys, e.g. {first}=...")
        elif table in OPEN_TABLES:
            node = _get(cfg, path)
            options = _free_options(cfg, path) or set()
            if leaf not in node and leaf not in options:
                raise unknown_key_error(key, _options_in(cfg) + [f"{table}.{o}" for o in options])
            if isinstance(node.get(leaf), dict):
                raise ConfigError(f"config key {key!r} is a table; set one of its keys")
            if node.get(leaf) is not None and not _compatible(node[leaf], value):
                kind = {bool: "a bool", int: "an int", float: "a float", str: "a string", list: "a list"}.get(
                    type(node[leaf]), f"a {type(node[leaf]).__name__}"
                )
                raise ConfigError(
                    f"config key {key!r} expects {kind} like its current value {node[leaf]!r}, got {value!r}"
                )
            if isinstance(node.get(leaf), float) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
        else:
            raise unknown_key_error(key, _options_in(cfg))
        node = cfg
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = value
    return validate(cfg)


def _compatible(old, new) -> bool:
    """Whether a builder/objective option may take ``new`` in place of ``old`` (same kind of value)."""
    if isinstance(old, bool) or isinstance(new, bool):
        return isinstance(old, bool) and isinstance(new, bool)
    if isinstance(old, (int, float)):
        return isinstance(new, (int, float))
    return isinstance(new, type(old))


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
