"""The vote store's schema versions: created at the current version, an older (pre-token) store
migrated with its votes kept, and a store of a newer or foreign schema refused untouched."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import Column, Float, MetaData, String, Table, Text, UniqueConstraint, create_engine, insert, select

from ganworks.errors import ConfigError
from ganworks.turing import db as dbm


def _v1_store(path):
    """A store as ganworks wrote it before session tokens (no version table, no token_hash)."""
    md = MetaData()
    sessions = Table(
        "sessions",
        md,
        Column("id", String(64), primary_key=True),
        Column("study", String(64), nullable=False),
        Column("worker_id", String(128)),
        Column("items", Text, nullable=False),
        Column("code", String(32), nullable=False),
        Column("created", Float, nullable=False),
        UniqueConstraint("study", "worker_id", name="one_session_per_worker"),
    )
    votes = dbm.votes.to_metadata(md)
    eng = create_engine(f"sqlite:///{path}")
    md.create_all(eng)
    with eng.begin() as c:
        c.execute(
            insert(sessions).values(
                id="old-session-1", study="owned", worker_id="old-worker", items="[]", code="ABCD1234", created=1.0
            )
        )
        c.execute(
            insert(votes).values(
                vote_id="v" * 10,
                session_id="old-session-1",
                study="owned",
                image_id="0" * 16,
                position=0,
                source="mnist:test",
                truth="real",
                kind="main",
                answer="real",
                correct=True,
                created=2.0,
            )
        )
    eng.dispose()


def _version(path):
    eng = create_engine(f"sqlite:///{path}")
    with eng.connect() as c:
        v = dbm.schema_version(c)
    eng.dispose()
    return v


def test_new_store_is_created_at_the_current_version(tmp_path):
    dbm.make_engine(f"sqlite:///{tmp_path / 'v.sqlite'}").dispose()
    assert _version(tmp_path / "v.sqlite") == dbm.SCHEMA_VERSION == 2
    dbm.make_engine(f"sqlite:///{tmp_path / 'v.sqlite'}").dispose()  # opening it again changes nothing
    assert _version(tmp_path / "v.sqlite") == 2


def test_store_from_before_session_tokens_is_migrated_and_keeps_its_votes(tmp_path):
    path = tmp_path / "old.sqlite"
    _v1_store(path)
    assert _version(path) == 1
    eng = dbm.make_engine(f"sqlite:///{path}")
    assert _version(path) == 2
    assert [v["vote_id"] for v in dbm.read_votes(eng, "owned")] == ["v" * 10]
    with eng.connect() as c:
        row = c.execute(select(dbm.sessions).where(dbm.sessions.c.id == "old-session-1")).first()
    assert row.worker_id == "old-worker" and row.token_hash is None  # no browser can claim it
    eng.dispose()


def test_old_session_is_not_handed_to_a_browser_after_migration(make_study, tmp_path):
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from ganworks.turing.server import create_app

    path = tmp_path / "old.sqlite"
    _v1_store(path)
    c = TestClient(create_app(make_study("owned"), db_url=f"sqlite:///{path}", token="t", reps=10))
    r = c.post("/api/studies/owned/sessions", json={"worker_id": "old-worker"})
    assert r.status_code == 409 and "ABCD1234" not in r.text and "old-session-1" not in r.text
    assert c.post("/api/studies/owned/sessions", json={"worker_id": "new-worker"}).status_code == 200


def test_store_of_a_newer_version_is_refused_untouched(tmp_path):
    path = tmp_path / "new.sqlite"
    dbm.make_engine(f"sqlite:///{path}").dispose()
    eng = create_engine(f"sqlite:///{path}")
    with eng.begin() as c:
        c.execute(dbm.schema_table.update().values(version=7))
    eng.dispose()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(ConfigError, match="schema version 7, made by a newer ganworks"):
        dbm.make_engine(f"sqlite:///{path}")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_store_whose_tables_are_not_ganworks_tables_is_refused(tmp_path):
    path = tmp_path / "foreign.sqlite"
    eng = create_engine(f"sqlite:///{path}")
    md = MetaData()
    Table("sessions", md, Column("user", String(10), primary_key=True), Column("expires", Float))
    md.create_all(eng)
    eng.dispose()
    with pytest.raises(ConfigError, match="table 'sessions' does not match .* use another --db"):
        dbm.make_engine(f"sqlite:///{path}")
    with pytest.raises(ConfigError, match="does not match"):  # nothing was added by the first try
        dbm.make_engine(f"sqlite:///{path}")


def test_serve_and_results_name_a_refused_store_in_one_line(make_study, tmp_path, capsys):
    from ganworks.cli import main

    path = tmp_path / "foreign.sqlite"
    eng = create_engine(f"sqlite:///{path}")
    md = MetaData()
    Table("votes", md, Column("x", String(10), primary_key=True))
    md.create_all(eng)
    eng.dispose()
    d = make_study("plain")
    assert main(["turing", "results", str(d), "--db", f"sqlite:///{path}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "does not match" in err[0]


def test_unreachable_server_database_is_one_line(tmp_path):
    pytest.importorskip("psycopg")
    with pytest.raises(ConfigError, match="cannot connect"):
        dbm.make_engine("postgresql://nobody:secret@127.0.0.1:1/none?connect_timeout=2")
    try:
        dbm.make_engine("postgresql://nobody:secret@127.0.0.1:1/none?connect_timeout=2")
    except ConfigError as e:
        assert "secret" not in str(e)  # the password is not printed
