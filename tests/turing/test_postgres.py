"""The PostgreSQL store, against a real server (skipped when none is reachable; ``.ci/run`` starts
one): the same tables and rules as SQLite (one session per worker, held by its browser; a retried vote
stored once), results read back, two server processes sharing it, and the schema version checks."""

from __future__ import annotations

import secrets

import numpy as np
import pytest

pytest.importorskip("httpx")
pytest.importorskip("psycopg")
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from ganworks.errors import ConfigError  # noqa: E402
from ganworks.turing import db as dbm  # noqa: E402
from ganworks.turing.server import create_app  # noqa: E402


def vote(c, sid, iid, answer, vote_id=None):
    return c.post(
        f"/api/studies/pg/sessions/{sid}/votes",
        json={"vote_id": vote_id or secrets.token_hex(8), "image_id": iid, "answer": answer},
    )


def test_session_flow_and_results_on_postgres(make_study, pg_url):
    study = make_study("pg")
    app = create_app(study, db_url=pg_url, token="owner", reps=50)
    assert app.state.engine.dialect.name == "postgresql"
    c = TestClient(app)
    sess = c.post("/api/studies/pg/sessions", json={"worker_id": "pg-1"}).json()
    manifest = app.state.study["images"]
    answers = []
    for k, it in enumerate(sess["items"]):
        truth = manifest[it["image_id"]]["truth"]
        ans = "real" if k % 2 else "fake"
        vid = secrets.token_hex(8)
        r = vote(c, sess["session_id"], it["image_id"], ans, vid)
        assert r.status_code == 200 and r.json()["progress"] == k + 1
        again = vote(c, sess["session_id"], it["image_id"], ans, vid)  # a retry: stored once
        assert again.json()["duplicate"] is True and again.json()["progress"] == k + 1
        answers.append((it, ans, truth))
    assert r.json()["done"] and len(r.json()["completion_code"]) == 8
    # another browser with the same worker id is refused; the same browser gets the session back
    assert TestClient(app).post("/api/studies/pg/sessions", json={"worker_id": "pg-1"}).status_code == 409
    assert c.post("/api/studies/pg/sessions", json={"worker_id": "pg-1"}).json()["resumed"] is True
    res = c.get("/api/studies/pg/results", params={"token": "owner", "include_failed": True}).json()
    scored = [(a, t) for it, a, t in answers if not it["tutorial"] and manifest[it["image_id"]]["kind"] == "main"]
    fake_row = next(r for r in res["sources"] if r["truth"] == "fake")
    assert fake_row["error_on_fakes"] == pytest.approx(np.mean([a != t for a, t in scored if t == "fake"]))
    eng = create_engine(pg_url)
    with eng.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM votes")).scalar() == len(sess["items"])
        assert conn.execute(text("SELECT version FROM ganworks_schema")).scalar() == dbm.SCHEMA_VERSION
    eng.dispose()


def test_two_servers_share_one_postgres_store(make_study, pg_url):
    """Two server processes (here: two apps, each its own engine) on one database, as on two hosts."""
    study = make_study("pg")
    a = TestClient(create_app(study, db_url=pg_url, token="o", reps=10, processes=2))
    b_app = create_app(study, db_url=pg_url, token="o", reps=10, processes=2)
    b = TestClient(b_app)
    sess = a.post("/api/studies/pg/sessions", json={"worker_id": "pg-2"}).json()
    assert b.post("/api/studies/pg/sessions", json={"worker_id": "pg-2"}).status_code == 409
    items = sess["items"]
    assert vote(a, sess["session_id"], items[0]["image_id"], "real").json()["progress"] == 1
    # the browser's next request lands on the other server: its cookie works there, the count goes on
    b.cookies = a.cookies
    assert vote(b, sess["session_id"], items[1]["image_id"], "fake").json()["progress"] == 2
    assert b.get(f"/api/studies/pg/sessions/{sess['session_id']}").json()["progress"] == 2
    r = vote(b, sess["session_id"], items[0]["image_id"], "fake")  # answered already, on the other server
    assert r.status_code == 409


def test_cli_serves_and_reads_a_postgres_store(make_study, pg_url, serve, capsys):
    import httpx

    from ganworks.cli import main

    study = make_study("pg")
    plain = pg_url.replace("postgresql+psycopg://", "postgresql://")  # the URL as a user writes it
    base, printed = serve(study, "--db", plain, "--token", "owner")
    with httpx.Client(base_url=base, timeout=10) as c:
        sess = c.post("/api/studies/pg/sessions", json={"worker_id": "pg-cli"}).json()
        assert vote(c, sess["session_id"], sess["items"][0]["image_id"], "real").status_code == 200
    assert main(["turing", "results", str(study), "--db", plain, "--format", "csv"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert len(rows) == 2 and sess["session_id"] in rows[1]


def test_postgres_schema_of_a_newer_version_is_refused(pg_url):
    dbm.make_engine(pg_url).dispose()
    eng = create_engine(pg_url)
    with eng.begin() as c:
        c.execute(text("UPDATE ganworks_schema SET version = 9"))
    eng.dispose()
    with pytest.raises(ConfigError, match="schema version 9, made by a newer ganworks"):
        dbm.make_engine(pg_url)


def test_postgres_store_from_before_tokens_is_migrated(pg_url):
    eng = create_engine(pg_url)
    with eng.begin() as c:
        c.execute(
            text(
                "CREATE TABLE sessions (id VARCHAR(64) PRIMARY KEY, study VARCHAR(64) NOT NULL, "
                "worker_id VARCHAR(128), items TEXT NOT NULL, code VARCHAR(32) NOT NULL, "
                "created FLOAT NOT NULL, CONSTRAINT one_session_per_worker UNIQUE (study, worker_id))"
            )
        )
        dbm.votes.create(c)
        c.execute(text("INSERT INTO sessions VALUES ('s1', 'pg', 'w', '[]', 'CODE', 1.0)"))
    eng.dispose()
    new = dbm.make_engine(pg_url)
    with new.connect() as c:
        assert dbm.schema_version(c) == 2
        assert c.execute(text("SELECT worker_id, token_hash FROM sessions")).one() == ("w", None)
    new.dispose()
