"""Fixtures for the visual Turing test: a tiny trained run and studies built from MNIST and it."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")


def _root_conftest():
    """The suite's tests/conftest.py (TINY_DIGITS, SHARED_DATA), loaded by path."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "_ganworks_tests_root_conftest", Path(__file__).parents[1] / "conftest.py"
    )
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
    args = [
        "train",
        "improved-gan/mnist-100",
        *[a for o in TINY_DIGITS for a in ("--set", o)],
        "--iterations",
        "2",
        "--out",
        str(out),
        "--no-progress",
        "--device",
        "cpu",
    ]
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


@pytest.fixture
def serve():
    """serve(study_dir, *args) → (base URL, the lines the command printed): ``ganworks turing serve`` as
    a subprocess on a free port of 127.0.0.1, stopped after the test."""
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    procs = []

    def start(study, *args):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), PYTHONUNBUFFERED="1")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ganworks.cli",
                "turing",
                "serve",
                str(study),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                *args,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(
                        "server did not start: " + (proc.stdout.read() if proc.poll() is not None else "")
                    )
                time.sleep(0.2)
        printed = []
        while not (printed and printed[-1].startswith("owner:")):  # printed before uvicorn starts, owner's last
            printed.append(proc.stdout.readline().rstrip("\n"))
        return base, printed

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()


@pytest.fixture
def pg_url():
    """A fresh, empty PostgreSQL database for one test (dropped after it), on the server named by
    $GANWORKS_TEST_POSTGRES (``.ci/run`` starts one with ``.ci/start-postgres``); skips when there is none."""
    import os
    import secrets

    admin = os.environ.get("GANWORKS_TEST_POSTGRES")
    if not admin:
        pytest.skip('no PostgreSQL server: set GANWORKS_TEST_POSTGRES (eval "$(bash .ci/start-postgres)")')
    psycopg = pytest.importorskip("psycopg")
    from sqlalchemy.engine import make_url

    u = make_url(admin)
    conninfo = dict(
        host=u.host, port=u.port or 5432, user=u.username, password=u.password, dbname=u.database, connect_timeout=3
    )
    try:
        con = psycopg.connect(**conninfo, autocommit=True)
    except psycopg.OperationalError as e:
        pytest.skip(f"PostgreSQL at {u.host}:{u.port} not reachable ({str(e).strip().splitlines()[0]})")
    name = "ganworks_test_" + secrets.token_hex(6)
    con.execute(f"CREATE DATABASE {name}")
    try:
        yield u.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)
    finally:
        con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        con.close()
