"""The command line as a package: every command group registered, one convention (``add_parser`` and
``cmd_*`` functions per module), and a missing optional extra is one line naming it while a real
import error surfaces."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys

import pytest

import ganworks.cli
from ganworks import extras
from ganworks.cli import build_parser, main

#: every command of `ganworks`, by the module of ganworks.cli that adds it
COMMANDS = {
    "train": ["train"],
    "evaluate": ["eval", "sample"],
    "presets": ["presets"],
    "metrics": ["metrics", "train-classifier"],
    "conditional": ["interpolate", "class-grid", "intra-fid"],
    "classify": ["classify"],
    "reproduce": ["reproduce"],
    "turing": ["turing"],
}


def _subcommands(parser):
    return next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices


def test_every_command_group_is_registered():
    choices = _subcommands(build_parser())
    assert sorted(choices) == sorted(c for cs in COMMANDS.values() for c in cs)


@pytest.mark.parametrize("group", sorted(COMMANDS))
def test_each_group_module_adds_its_commands_and_runs_them_with_its_own_cmd_functions(group):
    """One convention: ``add_parser(subparsers)`` adds exactly the group's commands, and each command's
    function is a ``cmd_*`` function of that module."""
    import argparse

    module = importlib.import_module(f"ganworks.cli.{group}")
    parser = argparse.ArgumentParser()
    module.add_parser(parser.add_subparsers())
    choices = _subcommands(parser)
    assert sorted(choices) == sorted(COMMANDS[group])
    funcs = []
    for name, sub in choices.items():
        inner = [a for a in sub._actions if a.__class__.__name__ == "_SubParsersAction"]
        for p in [*inner[0].choices.values()] if inner else [sub]:  # turing: create / serve / results
            funcs.append(p.get_default("func"))
    assert funcs and all(f.__module__ == module.__name__ and f.__name__.startswith("cmd_") for f in funcs), funcs


def test_the_package_holds_the_groups_and_common_only():
    names = {m.name for m in pkgutil.iter_modules(ganworks.cli.__path__)}
    assert names == set(COMMANDS) | {"common", "__main__"}
    assert [g.__name__.rsplit(".", 1)[1] for g in ganworks.cli.GROUPS] == list(COMMANDS)


def _one_line_error(capsys, code):
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def _uninstalled(monkeypatch, *missing):
    """``importlib.util.find_spec`` as if ``missing`` were not installed."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in missing else real(name, *a))


@pytest.mark.parametrize("argv", [["turing", "results", "study"], ["turing", "serve", "study"]])
def test_a_missing_extra_is_one_line_naming_it(argv, tmp_path, monkeypatch, capsys):
    _uninstalled(monkeypatch, "fastapi")
    argv = [*argv[:2], str(tmp_path / argv[2])]
    err = _one_line_error(capsys, main(argv))
    assert "fastapi is not installed" in err and "pip install 'ganworks[turing]'" in err


def test_a_missing_extra_leaves_the_other_commands_working(monkeypatch, capsys):
    _uninstalled(monkeypatch, "fastapi", "uvicorn", "sqlalchemy", "submitit")
    assert "turing" in _subcommands(build_parser())
    assert main(["presets"]) == 0 and "improved-gan/mnist-100" in capsys.readouterr().out


def test_the_digits_and_slurm_extras_are_one_line_too(tmp_path, monkeypatch, capsys):
    _uninstalled(monkeypatch, "sklearn")
    err = _one_line_error(capsys, main(["train-classifier", "digits", "--out", str(tmp_path / "c.pt"), "--quiet"]))
    assert "pip install 'ganworks[digits]'" in err
    _uninstalled(monkeypatch, "submitit")
    with pytest.raises(extras.MissingExtra, match=r"pip install 'ganworks\[slurm\]'"):
        extras.require("slurm")


def test_a_real_import_error_in_an_installed_extra_surfaces(tmp_path, monkeypatch):
    """An extra that is installed but broken is not called missing: its ImportError comes out as it is."""
    pytest.importorskip("fastapi")
    monkeypatch.setitem(sys.modules, "ganworks.turing.server", None)  # importing it raises ImportError
    (tmp_path / "study").mkdir()
    with pytest.raises(ImportError, match="ganworks.turing.server"):
        main(["turing", "results", str(tmp_path / "study")])


def test_python_dash_m_ganworks_cli_runs_the_command_line():
    import json
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-m", "ganworks.cli", "presets", "--json"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert any(r["preset"] == "improved-gan/mnist-100" for r in json.loads(proc.stdout))
