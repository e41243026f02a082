"""Fixtures for the visual Turing test: a tiny trained run and studies built from MNIST and it."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")



def _root_conftest():
    """The suite's tests/conftest.py (TINY_DIGITS, SHARED_DATA), loaded by path."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("_ganworks_tests_root_conftest", Path(__file__).parents[1] / "conftest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_ROOT = _root_conftest()
TINY_DIGITS, SHARED_DATA = _ROOT.TINY_DIGITS, _ROOT.SHARED_DATA


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A 2-iteration run of the tiny digits recipe (its generator makes the fake images)."""
    from ganworks.cli import main

    out = tmp_path_factory.mktemp("turing-run") / "run"
    args = ["train", "improved-gan/mnist-100", *[a for o in TINY_DIGITS for a in ("--set", o)],
            "--iterations", "2", "--out", str(out), "--no-progress", "--device", "cpu"]
    assert main(args) == 0
    return out


@pytest.fixture(scope="session")
def make_study(tmp_path_factory, tiny_run):
    """make_study(name, **options) → a study folder from 'mnist:test' (real) and the tiny run (fake)."""
    import os

    if not (SHARED_DATA and os.path.isdir(os.path.join(SHARED_DATA, "MNIST", "raw"))):
        pytest.skip("GANWORKS_DATA does not hold MNIST/raw")
    from ganworks.turing.study import create_study

    root = tmp_path_factory.mktemp("studies")
    made = {}

    def make(name, **opts):
        if name not in made:
            kw = dict(images_per_source=12, per_session=6, tutorial=2, attention=1, seed=3, device="cpu")
            kw.update(opts)
            create_study(root / name, "mnist:test", [str(tiny_run)], data_root=SHARED_DATA, **kw)
            made[name] = root / name
        return made[name]

    return make
