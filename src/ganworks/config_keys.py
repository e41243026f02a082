"""Every configuration key in one table: its default, type, allowed values and a one-line doc.

:data:`KEYS` is the one place a key is defined. It drives

* ``config.DEFAULTS`` (:func:`defaults` builds the nested table from it),
* the checks of presets and ``--set key=value`` overrides (:func:`check`: type, bounds, choices, one
  line naming the key, the bad value and what is allowed; :func:`nearest` for an unknown key), and
* the documentation page of keys: ``python -m ganworks.config_keys docs/configuration.md`` writes it
  (:func:`render`; ``tests/test_config_keys.py`` checks the committed page is up to date).

The tables in :data:`OPEN_TABLES` (the generator, the discriminator, the objective) also take the
keyword options of the builder or objective their ``name`` names; ``config`` checks those against the
builder's signature. This module imports nothing from ganworks but its errors, so every floor may use it.
"""

from __future__ import annotations

import copy
import difflib
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

#: SN-GAN Table 1 (docs/papers.md): Adam (lr, β1, β2) and n_dis, the D steps per G step, by the
#: name ``optim.setting`` takes; ``config.apply_adam_setting`` applies it.
ADAM_SETTINGS = {
    "A": (1e-4, 0.5, 0.9, 5),  # WGAN-GP (Gulrajani et al.)
    "B": (1e-4, 0.5, 0.999, 1),  # Warde-Farley & Bengio
    "C": (2e-4, 0.5, 0.999, 1),  # DCGAN (Radford et al.)
    "D": (1e-3, 0.5, 0.9, 5),
    "E": (1e-3, 0.5, 0.999, 5),
    "F": (1e-3, 0.9, 0.999, 5),
}


@dataclass(frozen=True)
class Key:
    """One configuration key.

    ``type`` is ``int``, ``float``, ``bool``, ``str``, ``list`` (of strings) or ``(bool, str)``
    (``true``/``false`` or one of ``choices``). Numbers lie in [``low``, ``high``] (None: unbounded;
    ``low_open``/``high_open``: that end itself is not allowed). ``choices`` are the allowed values of
    a string key, or the allowed items of a list key; empty means any.
    """

    name: str
    default: object
    type: object
    doc: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple = ()


def _k(name, default, type_, doc, low=None, high=None, *, low_open=False, high_open=False, choices=()):
    return Key(name, default, type_, doc, low, high, low_open, high_open, tuple(choices))


_ROWS = [
    # ---- meta: what a preset reproduces -------------------------------------------------------------
    _k("meta.paper", "", str, "the paper a preset reproduces"),
    _k("meta.table", "", str, "its table or figure"),
    _k("meta.row", "", str, "its row"),
    _k("meta.published", "", str, "the paper's number, as printed"),
    _k("meta.published_metric", "", str, "name of our metric it compares to, e.g. `test_errors_ema`"),
    _k("meta.notes", "", str, "how the preset was built, UNVERIFIED points included"),
    _k("meta.data", "", str, "what a run on your own data found there (filled in by `data/own_recipe.py`)"),
    # ---- data ---------------------------------------------------------------------------------------
    _k(
        "data.name",
        "mnist",
        str,
        "`mnist`, `cifar10`, `svhn`, `stl10`, `imagefolder`, `imagenet`, `digits`, `own`, "
        "`synthetic` ([Data](data.md))",
    ),
    _k(
        "data.path",
        "",
        str,
        "folder of an `imagefolder` / `imagenet` / `own` dataset, relative to the data root or absolute",
    ),
    _k("data.root", "", str, "data root (`--data-root`; else `$GANWORKS_DATA`, else `~/.cache/ganworks/data`)"),
    _k("data.download", True, bool, "download a missing torchvision dataset"),
    _k("data.labels", 0, int, "labeled examples for semi-supervised runs (0: unsupervised)", 0),
    _k("data.seed_data", 1, int, "seeds the labeled-subset permutation (reference: `--seed_data`)", 0),
    _k(
        "data.scale",
        "",
        str,
        'pixel scale (`data/scaling.py`); `""` = the dataset\'s default',
        choices=("", "zero_one", "improved_gan_cifar", "minus_one_one", "imagenet"),
    ),
    _k("data.batch_size", 64, int, "images per batch; with several processes the global batch", 1),
    _k("data.image_size", 0, int, "resize to this size (e.g. 48 for STL-10); 0 = the dataset's own", 0, 4096),
    _k("data.channels", 1, int, "only for the `synthetic` dataset (tests)", 1, 4),
    _k("data.train_limit", 0, int, "use only the first N training images (tests, smoke runs); 0 = all", 0),
    _k("data.test_limit", 0, int, "use only the first N test images (tests, smoke runs); 0 = all", 0),
    _k("data.validation", 0, int, "hold out the last N training images for `eval.best` selection (0 = none)", 0),
    _k("data.dequantize", False, bool, "add U(0, 1/128) noise to x/128 - 1 (sngan_projection's loaders)"),
    _k("data.workers", 4, int, "DataLoader worker processes (lazily read class folders: `imagenet`)", 0, 256),
    _k("data.limit_per_class", 0, int, "only the first N images of each class (smoke runs); 0 = all", 0),
    _k("data.classes", [], list, "a subset of class folder names, relabelled 0..k-1; `[]` = all"),
    _k("data.class_order", "", str, 'a `dirname_to_label.txt` file; `""` = sorted folder names'),
    _k("data.class_names", [], list, '`data.name = "own"`: the classes, filled in from `data.path`'),
    # ---- model ----------------------------------------------------------------------------------------
    _k("model.generator.name", "", str, "the generator builder (`ganworks.models`)"),
    _k("model.discriminator.name", "", str, "the discriminator builder (`ganworks.models`)"),
    _k("model.init_examples", 0, int, "data-dependent init batch (reference: 500); 0 = none", 0),
    # ---- objective ------------------------------------------------------------------------------------
    _k("objective.name", "", str, "what one iteration computes (`ganworks.objectives`)"),
    # ---- optim ----------------------------------------------------------------------------------------
    _k(
        "optim.setting",
        "",
        str,
        "SN-GAN Table 1 `A`..`F`: sets lr, beta1, beta2 and `objective.n_dis`",
        choices=("", *ADAM_SETTINGS),
    ),
    _k("optim.name", "adam", str, "the optimizer", choices=("adam",)),
    _k("optim.lr", 2e-4, float, "learning rate of both players", 0.0, low_open=True),
    _k("optim.lr_d", 0.0, float, "D's learning rate; 0 = use lr", 0.0),
    _k("optim.lr_g", 0.0, float, "G's learning rate; 0 = use lr", 0.0),
    _k("optim.beta1", 0.5, float, "Adam β1", 0.0, 1.0, high_open=True),
    _k("optim.beta2", 0.999, float, "Adam β2", 0.0, 1.0, high_open=True),
    _k("optim.eps", 1e-8, float, "Adam epsilon", 0.0, 1.0),
    _k("optim.eps_inside_sqrt", False, bool, "the Improved-GAN reference's Adam: sqrt(v + eps)"),
    _k(
        "optim.decay",
        "constant",
        str,
        "`linear`: to 0 between decay_start and decay_end",
        choices=("constant", "linear"),
    ),
    _k("optim.decay_start", 0, int, "first iteration of the decay", 0),
    _k("optim.decay_end", 0, int, "last iteration of the decay; 0 = the last iteration", 0),
    # ---- train ----------------------------------------------------------------------------------------
    _k("train.seed", 1, int, "seeds the model, the noise and the data order (`--seed`)", 0, 2**63 - 1),
    _k("train.epochs", 0.0, float, "length in epochs (`--epochs`)", 0.0, 1e6),
    _k("train.iterations", 0, int, "length in iterations; iterations win when both are set", 0, 10**10),
    _k("train.ema_d", 0.0, float, "decay of a bias-corrected moving average of D (0 = off)", 0.0, 1.0, high_open=True),
    _k("train.ema_g", 0.0, float, "decay of a bias-corrected moving average of G (0 = off)", 0.0, 1.0, high_open=True),
    _k("train.max_minutes", 0.0, float, "wall-clock budget: evaluate, save and stop after it (0 = none)", 0.0, 1e7),
    _k("train.device", "auto", str, "`auto`, `cpu` or `cuda` (`--device`)"),
    _k("train.log_every", 10, int, "iterations between log lines", 1),
    _k("train.sync_bn", False, bool, "several processes: SyncBatchNorm in G (CUDA only; `train/distributed.py`)"),
    _k("train.amp", "none", str, "mixed precision (`train/amp.py`)", choices=("none", "bf16", "fp16")),
    _k(
        "train.compile",
        "auto",
        (bool, str),
        'torch.compile: `true` (step), `"optimizer"` (update only), `false`, '
        '`"auto"` (where measured faster; [Training](training.md#compilation-traincompile))',
        choices=(True, False, "auto", "optimizer"),
    ),
    _k(
        "train.noise",
        "global",
        str,
        "where the Gaussian-noise layers' draws come from ([Training](training.md#noise-draws-trainnoise))",
        choices=("global", "parallel", "prefetch"),
    ),
    _k(
        "train.power_iteration",
        "per-step",
        str,
        "spectral norm's power steps: one per optimizer step (Algorithm 1), "
        "or one per training-mode D call as chainer-gan-lib ([Fidelity, round two](fidelity-round2.md))",
        choices=("per-step", "per-call"),
    ),
    # ---- eval -----------------------------------------------------------------------------------------
    _k("eval.every", 0, int, "iterations between evaluations; 0 = once per epoch", 0),
    _k("eval.grid", 100, int, "samples in the grid PNG written at each evaluation", 0, 10000),
    _k("eval.batch_size", 1000, int, "batch size of evaluation passes", 1),
    _k("eval.best", "", str, "metric that selects best.pt, e.g. `val_error_ema` (needs `data.validation`) or `FID`"),
    _k(
        "eval.best_mode",
        "min",
        str,
        "whether the best value of `eval.best` is the lowest or the highest",
        choices=("min", "max"),
    ),
    _k("eval.quality_samples", 0, int, "generated images per sample-quality score (IS/FID/KID); 0 = off", 0, 10**7),
    _k("eval.quality_every", 0, int, "iterations between scores; 0 = at every evaluation", 0),
    _k("eval.quality_reference", "", str, 'real statistics for FID/KID, e.g. `cifar10:test`; `""` = IS only'),
    _k(
        "eval.quality_extractor",
        "inception",
        str,
        "the feature extractor; `classifier` needs `eval.quality_classifier`",
        choices=("inception", "classifier"),
    ),
    _k("eval.quality_classifier", "", str, "a `ganworks train-classifier` file: offline scores"),
    _k("eval.quality_weights", "", str, "Inception weights file (else `$GANWORKS_INCEPTION_WEIGHTS`)"),
    _k("eval.quality_metrics", ["is", "fid"], list, "which scores to compute", choices=("is", "fid", "kid")),
    _k("eval.quality_splits", 10, int, "Inception Score splits (sngan_projection: 1 split of 5,000 samples)", 1, 1000),
    _k(
        "eval.quality_uint8",
        "round",
        str,
        "how samples become uint8 for scoring: `round`, or `truncate` (chainer-gan-lib)",
        choices=("round", "truncate"),
    ),
]

#: Every configuration key by its dotted name, in the order of the documentation page.
KEYS: dict[str, Key] = {k.name: k for k in _ROWS}

#: Tables that also take the keyword options of what their ``name`` names.
OPEN_TABLES = {
    "model.generator": "the generator builder's options (`ganworks.models`), e.g. `width`, `image_size`",
    "model.discriminator": "the discriminator builder's options, e.g. `norm`, `width`, `num_classes`",
    "objective": "the objective's options (`ganworks.objectives`), e.g. `n_dis`",
}


def defaults() -> dict:
    """The nested table of every key's default (``config.DEFAULTS``), a fresh copy."""
    out: dict = {}
    for key in KEYS.values():
        *path, leaf = key.name.split(".")
        node = out
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = copy.deepcopy(key.default)
    return out


# ---- checks ---------------------------------------------------------------------------------------


def _show(value) -> str:
    """An allowed value in a message: ``true``/``false`` as TOML writes them, anything else as repr."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _toml(value) -> str:
    """A value as it is written in TOML and after ``--set``: ``true``, ``"text"``, ``["a", "b"]``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, list)):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)


def _bound(key: Key, value) -> str:
    if value is None:
        return "inf"
    return f"{value:g}" if key.type is float else str(value)


def allowed(key: Key) -> str:
    """What ``key`` allows, as a phrase: ``an integer in [1, inf)``, ``one of 'min', 'max'``, ..."""
    if key.type in (int, float):
        lo = "-inf" if key.low is None else _bound(key, key.low)
        hi = _bound(key, key.high)
        left = "(" if key.low_open or key.low is None else "["
        right = ")" if key.high_open or key.high is None else "]"
        return f"{'an integer' if key.type is int else 'a number'} in {left}{lo}, {hi}{right}"
    if key.type is bool:
        return "true or false"
    if key.type is list:
        return f"a list of {', '.join(map(_show, key.choices))}" if key.choices else "a list of strings"
    if key.choices:
        return "one of " + ", ".join(map(_show, key.choices))
    return "a string"


_TYPE_NAMES = {int: "int", float: "float", bool: "bool", str: "string", list: "list", (bool, str): "bool or string"}


def type_name(key: Key) -> str:
    return _TYPE_NAMES[key.type]


def check(name: str, value):
    """``value`` for the key ``name``, normalised (an integral float of an integer key becomes an int,
    an int of a float key a float); a wrong type or a value outside the allowed ones raises
    ``ConfigError`` in one line naming the key, the value and what is allowed."""
    key = KEYS[name]
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if key.type in (int, float):
        if not number:
            raise ConfigError(
                f"config key {name!r} expects {'an int' if key.type is int else 'a float'}, "
                f"got {value!r}: it must be {allowed(key)}"
            )
        ok = math.isfinite(value)
        if ok and key.type is int:
            ok = float(value).is_integer()
        if ok:
            value = int(value) if key.type is int else float(value)
            if key.low is not None:
                ok = value > key.low if key.low_open else value >= key.low
            if ok and key.high is not None:
                ok = value < key.high if key.high_open else value <= key.high
        if not ok:
            raise ConfigError(f"config key {name!r} is {value!r}; it must be {allowed(key)}")
        return value
    if key.type is list:
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise ConfigError(f"config key {name!r} expects a list, got {value!r}: it must be {allowed(key)}")
        bad = [v for v in value if key.choices and v not in key.choices]
        if bad:
            raise ConfigError(
                f"config key {name!r} holds {bad[0]!r}; allowed items: {', '.join(map(_show, key.choices))}"
            )
        return value
    types = key.type if isinstance(key.type, tuple) else (key.type,)
    if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
        raise ConfigError(f"config key {name!r} expects a {type_name(key)}, got {value!r}: it must be {allowed(key)}")
    if key.choices and value not in key.choices:
        raise ConfigError(f"config key {name!r} is {value!r}; allowed: {', '.join(map(_show, key.choices))}")
    return value


def nearest(name: str, known=()) -> str:
    """The known key closest to ``name`` (of :data:`KEYS` and ``known``, e.g. a builder's options): the
    closest in spelling, or in the same table the key its words abbreviate (``learning_rate``: ``lr``)."""
    table, _, leaf = name.rpartition(".")
    initials = "".join(word[0] for word in leaf.split("_") if word)

    def score(candidate: str) -> float:
        c_table, _, c_leaf = candidate.rpartition(".")
        if c_table == table and len(initials) > 1 and c_leaf == initials:
            return 2.0
        return difflib.SequenceMatcher(None, name, candidate).ratio()

    return max(list(KEYS) + list(known), key=score)


def unknown_key_error(name: str, known=()) -> ConfigError:
    """The one-line error for an unknown key, suggesting the nearest known one."""
    return ConfigError(
        f"unknown config key {name!r}; did you mean {nearest(name, known)!r}? (every key: docs/configuration.md)"
    )


# ---- the documentation page -------------------------------------------------------------------------

HEADER = """\
# Configuration keys

<!-- Generated by `python -m ganworks.config_keys docs/configuration.md` from the table of keys in
`src/ganworks/config_keys.py`; edit that file, not this page. -->

A run's configuration is one nested table. It is resolved as `DEFAULTS` ← the presets a preset `extends` ← the
preset ← `--set key=value` overrides, and saved as the run's `config.json`.

- A preset is a TOML file under `ganworks/presets/` named by its path without the suffix, e.g.
  `improved-gan/mnist-100`; `extends = "<preset>"` at its top inherits another preset. Files whose name starts with
  `_` hold settings shared by several rows and are not listed by `ganworks presets`.
- `--set` may only name keys that exist (a typo is an error naming the nearest key, not a silent no-op), or options
  of the chosen model builder / objective (`--set model.discriminator.norm=layer`, `--set objective.n_dis=5`).
  Values are TOML: `--set data.download=false`, `--set eval.quality_metrics='["fid"]'`; a bare word is a string.
- Every key's type, range and choices are checked where a preset is loaded and where a config is resolved or
  resumed: a value outside the allowed ones (`data.batch_size=0`, `optim.lr=nan`, `train.iterations=2.5`,
  `train.amp=fp8`) is one line naming the key, the value and what is allowed.
- A resumed run fills keys added since it was written from the defaults.

The tables below list every key with its default, type and allowed values. They are generated from
`ganworks/config_keys.py` (`KEYS`), the one place a key is defined: it also gives `config.DEFAULTS` and the checks.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render() -> str:
    """The Markdown page of every key (docs/configuration.md)."""
    out = [HEADER]
    sections: dict[str, list[Key]] = {}
    for key in KEYS.values():
        sections.setdefault(key.name.split(".")[0], []).append(key)
    for section, keys in sections.items():
        out += [f"## `{section}`", ""]
        notes = [f"`{t}` also takes {OPEN_TABLES[t]}." for t in OPEN_TABLES if t.split(".")[0] == section]
        if section == "meta":
            notes.append("`meta.preset` is not set by hand: loading a preset writes its name there.")
        if notes:
            out += notes + [""]
        out += ["| key | default | type | allowed | meaning |", "|---|---|---|---|---|"]
        for k in keys:
            what = "any" if (k.type is str and not k.choices) else allowed(k)
            out.append(f"| `{k.name}` | `{_toml(k.default)}` | {type_name(k)} | {_cell(what)} | {_cell(k.doc)} |")
        out.append("")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m ganworks.config_keys docs/configuration.md", file=sys.stderr)
        return 2
    Path(argv[0]).write_text(render(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
