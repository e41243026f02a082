"""The table of configuration keys (config_keys.KEYS) drives the defaults, the checks of presets and
``--set`` overrides, their one-line errors, and the generated page docs/configuration.md."""

import json
import math
from pathlib import Path

import pytest
import torch

from ganworks import config, config_keys
from ganworks.cli import main
from ganworks.config import DEFAULTS, apply_overrides, list_presets, load_preset, resolve, unknown_keys, validate
from ganworks.config_keys import KEYS, OPEN_TABLES, check
from ganworks.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "configuration.md"


def _flat(table: dict, prefix: str = "") -> dict:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    out = {}
    for k, v in table.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def _shared_presets() -> list[str]:
    root = Path(config.preset_root())
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("_*.toml"))


# ---- the table and DEFAULTS -------------------------------------------------------------------------


def test_every_default_is_in_the_table_and_every_table_key_is_a_default():
    flat = _flat(DEFAULTS)
    assert list(flat) == list(KEYS)  # the same keys, in the same order
    for name, value in flat.items():
        assert value == KEYS[name].default and type(value) is type(KEYS[name].default), name
    assert sorted(DEFAULTS) == sorted(["meta", "data", "model", "objective", "optim", "train", "eval"])


def test_every_default_is_one_of_its_allowed_values():
    for name, key in KEYS.items():
        assert check(name, key.default) == key.default, name
        assert key.doc and "\n" not in key.doc, name


def test_defaults_are_a_fresh_copy_each_time():
    a = config_keys.defaults()
    a["data"]["classes"].append("x")
    a["eval"]["quality_metrics"].clear()
    assert config_keys.defaults() == DEFAULTS and DEFAULTS["data"]["classes"] == []


def test_new_power_iteration_key_is_in_the_table():
    key = KEYS["train.power_iteration"]
    assert key.default == "per-step" and key.choices == ("per-step", "per-call")
    assert resolve("sngan/cifar10-cnn-sn", ["train.power_iteration=per-call"])["train"]["power_iteration"] == "per-call"


def test_choices_agree_with_the_modules_that_use_them():
    from ganworks.data.scaling import SCALES
    from ganworks.metrics.api import KNOWN_METRICS
    from ganworks.nn.noise import NOISE_MODES
    from ganworks.train.optim import ADAM_SETTINGS

    assert KEYS["data.scale"].choices == ("", *SCALES)
    assert KEYS["train.noise"].choices == NOISE_MODES
    assert KEYS["eval.quality_metrics"].choices == KNOWN_METRICS
    assert KEYS["optim.setting"].choices == ("", *ADAM_SETTINGS)


# ---- presets ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list_presets() + _shared_presets())
def test_preset_validates(name):
    cfg = load_preset(name, shared=True)
    assert unknown_keys(config._read_preset(name)) == []
    assert unknown_keys(cfg) == ["meta.preset"] and cfg["meta"]["preset"] == name  # set by load_preset
    before = json.dumps(cfg, sort_keys=True)
    assert json.dumps(validate(cfg), sort_keys=True) == before  # already checked and normalised
    for table in OPEN_TABLES:  # builder / objective options exist in the named builder's signature
        path = table.split(".")
        options = config._free_options(cfg, path)
        node = config._get(cfg, path)
        assert set(node) - {"name"} <= options, (name, table, set(node) - {"name"} - options)


def _preset_dir(tmp_path, monkeypatch, text: str):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "row.toml").write_text(text)
    monkeypatch.setattr(config, "preset_root", lambda: tmp_path)


def test_a_preset_with_a_bad_value_is_refused_naming_the_preset_and_the_key(tmp_path, monkeypatch):
    _preset_dir(tmp_path, monkeypatch, "[train]\nema_g = 1.5\n")
    with pytest.raises(ConfigError) as e:
        load_preset("mine/row")
    assert str(e.value) == "preset 'mine/row': config key 'train.ema_g' is 1.5; it must be a number in [0, 1)"


def test_a_preset_with_an_unknown_key_is_refused_with_the_nearest(tmp_path, monkeypatch):
    _preset_dir(tmp_path, monkeypatch, "[optim]\nbeta_1 = 0.5\n")
    with pytest.raises(
        ConfigError,
        match=r"^preset 'mine/row': unknown config key 'optim.beta_1'; "
        r"did you mean 'optim.beta1'\?",
    ):
        load_preset("mine/row")


def test_a_preset_may_give_builder_options(tmp_path, monkeypatch):
    _preset_dir(
        tmp_path,
        monkeypatch,
        '[model.discriminator]\nname = "improved-gan-mnist-d"\nwidth = 0.5\n[train]\nepochs = 3\n',
    )
    cfg = load_preset("mine/row")
    assert cfg["model"]["discriminator"]["width"] == 0.5
    assert cfg["train"]["epochs"] == 3.0 and isinstance(cfg["train"]["epochs"], float)  # an int of a float key


# ---- --set overrides: type, bounds, choices -------------------------------------------------------------

BASE = "improved-gan/mnist-100"


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.batch_size=0", "config key 'data.batch_size' is 0; it must be an integer in [1, inf)"),
        ("data.image_size=4097", "config key 'data.image_size' is 4097; it must be an integer in [0, 4096]"),
        ("optim.lr=0", "config key 'optim.lr' is 0.0; it must be a number in (0, inf)"),
        ("optim.beta2=1", "config key 'optim.beta2' is 1.0; it must be a number in [0, 1)"),
        ("train.iterations=2.5", "config key 'train.iterations' is 2.5; it must be an integer in [0, 10000000000]"),
        ("train.epochs=nan", "config key 'train.epochs' is nan; it must be a number in [0, 1e+06]"),
        ("eval.quality_splits=0", "config key 'eval.quality_splits' is 0; it must be an integer in [1, 1000]"),
        ("optim.lr=fast", "config key 'optim.lr' expects a float, got 'fast': it must be a number in (0, inf)"),
        ("data.labels=true", "config key 'data.labels' expects an int, got True: it must be an integer in [0, inf)"),
        ("data.download=1", "config key 'data.download' expects a bool, got 1: it must be true or false"),
        ("data.path=3", "config key 'data.path' expects a string, got 3: it must be a string"),
        ('data.classes="a"', "config key 'data.classes' expects a list, got 'a': it must be a list of strings"),
        ("train.amp=fp8", "config key 'train.amp' is 'fp8'; allowed: 'none', 'bf16', 'fp16'"),
        (
            "train.power_iteration=per-epoch",
            "config key 'train.power_iteration' is 'per-epoch'; allowed: 'per-step', 'per-call'",
        ),
        (
            "train.compile=sometimes",
            "config key 'train.compile' is 'sometimes'; allowed: true, false, 'auto', 'optimizer'",
        ),
        ("optim.setting=G", "config key 'optim.setting' is 'G'; allowed: '', 'A', 'B', 'C', 'D', 'E', 'F'"),
        (
            'eval.quality_metrics=["fid", "ssim"]',
            "config key 'eval.quality_metrics' holds 'ssim'; allowed items: 'is', 'fid', 'kid'",
        ),
        (
            "model.generator=x",
            "config key 'model.generator' is a table; set one of its keys, e.g. model.generator.name=...",
        ),
    ],
)
def test_bad_values_are_refused_in_one_line_naming_key_value_and_what_is_allowed(override, message):
    with pytest.raises(ConfigError) as e:
        resolve(BASE, [override])
    assert str(e.value) == message


def _outside(key):
    """Values just outside each end of a number key's interval (the open end itself is outside)."""
    step = 1 if key.type is int else 1e-6 * max(1.0, abs(key.low or 0), abs(key.high or 0))
    out = []
    if key.low is not None:
        out.append(key.low if key.low_open else key.low - step)
    if key.high is not None:
        out.append(key.high if key.high_open else key.high + (step if key.type is int else key.high * 1e-6))
    return out


def _inside(key):
    """The closed ends themselves (allowed)."""
    return [v for v, is_open in ((key.low, key.low_open), (key.high, key.high_open)) if v is not None and not is_open]


@pytest.mark.parametrize("name", [n for n, k in KEYS.items() if k.type in (int, float)])
def test_every_number_key_refuses_values_past_its_bounds_and_takes_its_closed_ends(name):
    key = KEYS[name]
    assert key.low is not None  # every number key has a lower bound
    for bad in _outside(key) + [math.inf, math.nan, "x", True]:
        with pytest.raises(ConfigError, match=f"config key '{name}'") as e:
            check(name, bad)
        assert "\n" not in str(e.value) and ("must be an integer" if key.type is int else "must be a number") in str(
            e.value
        )
    for good in _inside(key):
        assert check(name, good) == good
    if key.type is float:
        assert type(check(name, int(key.default) if float(key.default).is_integer() else key.default)) is float


@pytest.mark.parametrize("name", [n for n, k in KEYS.items() if k.choices and k.type is not list])
def test_every_choice_key_takes_its_choices_and_refuses_others(name):
    key = KEYS[name]
    for choice in key.choices:
        assert check(name, choice) == choice
    with pytest.raises(ConfigError, match=f"^config key '{name}' is 'nonesuch'; allowed: "):
        check(name, "nonesuch")


def test_integral_floats_of_integer_keys_become_ints():
    cfg = resolve(BASE, ["train.iterations=3.0", "data.batch_size=50.0"])
    assert cfg["train"]["iterations"] == 3 and type(cfg["train"]["iterations"]) is int
    assert type(cfg["data"]["batch_size"]) is int


# ---- unknown keys ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typo, nearest",
    [
        ("optim.learning_rate", "optim.lr"),  # the initials of its words
        ("optm.lr", "optim.lr"),  # a misspelt table
        ("train.nosie", "train.noise"),
        ("data.batchsize", "data.batch_size"),
        ("train.power_iterations", "train.power_iteration"),
        ("model.discriminator.nrom", "model.discriminator.norm"),  # a builder option
        ("objective.n_dsi", "objective.n_dis"),  # an objective option
    ],
)
def test_unknown_key_names_the_nearest_known_key(typo, nearest):
    with pytest.raises(ConfigError) as e:
        resolve("sngan/cifar10-cnn-sn", [f"{typo}=1"])
    assert str(e.value).startswith(f"unknown config key '{typo}'; did you mean '{nearest}'?")
    assert "\n" not in str(e.value)


def test_builder_options_are_still_accepted():
    cfg = apply_overrides(load_preset("sngan/cifar10-cnn-sn"), ["model.discriminator.norm=layer", "objective.n_dis=3"])
    assert cfg["model"]["discriminator"]["norm"] == "layer" and cfg["objective"]["n_dis"] == 3


def test_cli_reports_an_unknown_key_in_one_line(capsys):
    assert main(["train", BASE, "--set", "train.seeed=3", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: unknown config key 'train.seeed'; did you mean 'train.seed'? (every key: docs/configuration.md)"
    )


# ---- the generated page -------------------------------------------------------------------------------------


def test_committed_configuration_page_is_the_generated_one(tmp_path):
    out = tmp_path / "configuration.md"
    assert config_keys.main([str(out)]) == 0
    assert out.read_text(encoding="utf-8") == PAGE.read_text(encoding="utf-8"), (
        "docs/configuration.md is stale: run `python -m ganworks.config_keys docs/configuration.md`"
    )


def test_configuration_page_lists_every_key_with_its_default_and_allowed_values():
    rows = {}
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            rows[cells[0].strip("`")] = cells
    assert list(rows) == list(KEYS)
    assert rows["data.batch_size"][1:4] == ["`64`", "int", "an integer in [1, inf)"]
    assert rows["train.power_iteration"][1:4] == ['`"per-step"`', "string", "one of 'per-step', 'per-call'"]
    assert rows["eval.quality_metrics"][1] == '`["is", "fid"]`'
    assert rows["optim.beta1"][3] == "a number in [0, 1)"


# ---- a default from the table is what a run gets ---------------------------------------------------------------


def test_a_run_gets_the_table_defaults_for_keys_its_preset_leaves_alone(tmp_path, tiny_digits, capsys):
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                BASE,
                *[a for o in tiny_digits for a in ("--set", o)],
                "--iterations",
                "2",
                "--out",
                str(run),
                "--no-progress",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    capsys.readouterr()
    saved = _flat(json.loads((run / "config.json").read_text()))
    set_here = (
        set(_flat(config._read_preset(BASE)))
        | {o.split("=")[0] for o in tiny_digits}
        | {"train.iterations", "train.epochs"}
    )
    left_alone = [k for k in KEYS if k not in set_here]
    assert "optim.lr_d" in left_alone and "optim.decay" in left_alone and "train.power_iteration" in left_alone
    for name in left_alone:
        assert saved[name] == KEYS[name].default, name
    # and they act: lr_d = lr_g = 0 mean both players use optim.lr; decay "constant" keeps it
    state = torch.load(run / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
    lr = saved["optim.lr"]
    assert lr == 0.003 != KEYS["optim.lr"].default
    for k in ("d", "g"):
        assert state["optimizers"][k]["param_groups"][0]["lr"] == pytest.approx(lr)
