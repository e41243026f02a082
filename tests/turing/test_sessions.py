"""A session belongs to the browser that opened it: its token sits in an HttpOnly, SameSite=Lax cookie,
and a second client with the same worker id gets neither the session nor the completion code."""

from __future__ import annotations

import hashlib
import secrets

import pytest

pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import create_engine, select  # noqa: E402

from ganworks.turing import db as dbm  # noqa: E402
from ganworks.turing.server import COOKIE, create_app  # noqa: E402


@pytest.fixture
def study_app(make_study, tmp_path):
    study = make_study("owned")
    db = tmp_path / "owned.sqlite"
    app = create_app(study, db_url=f"sqlite:///{db}", token="owner", reps=10)
    return app, db


def finish(c: TestClient, sess: dict) -> dict:
    for it in sess["items"]:
        r = c.post(
            f"/api/studies/owned/sessions/{sess['session_id']}/votes",
            json={"vote_id": secrets.token_hex(8), "image_id": it["image_id"], "answer": "fake"},
        )
        assert r.status_code == 200, r.text
    return r.json()


def test_second_client_with_the_same_worker_id_gets_a_refusal_not_the_session_or_code(study_app):
    app, _ = study_app
    first, second = TestClient(app), TestClient(app)
    sess = first.post("/api/studies/owned/sessions", json={"worker_id": "prolific-7"}).json()
    r = second.post("/api/studies/owned/sessions", json={"worker_id": "prolific-7"})
    assert r.status_code == 409 and sess["session_id"] not in r.text
    assert "another browser" in r.json()["detail"]
    done = finish(first, sess)
    code = done["completion_code"]
    r = second.post("/api/studies/owned/sessions", json={"worker_id": "prolific-7"})
    assert r.status_code == 409 and code not in r.text and sess["session_id"] not in r.text
    assert "set-cookie" not in r.headers
    # the browser that opened it gets it back, code included
    again = first.post("/api/studies/owned/sessions", json={"worker_id": "prolific-7"}).json()
    assert again["session_id"] == sess["session_id"] and again["completion_code"] == code and again["resumed"]


def test_votes_and_reads_need_the_session_token(study_app):
    app, _ = study_app
    owner, other = TestClient(app), TestClient(app)
    sess = owner.post("/api/studies/owned/sessions", json={"worker_id": "w-42"}).json()
    sid, img = sess["session_id"], sess["items"][0]["image_id"]
    vote = {"vote_id": secrets.token_hex(8), "image_id": img, "answer": "real"}
    r = other.post(f"/api/studies/owned/sessions/{sid}/votes", json=vote)  # knows the session id, no cookie
    assert r.status_code == 403 and "token" in r.json()["detail"]
    other.cookies.set(COOKIE, secrets.token_urlsafe(32), path="/api/studies/owned")  # a made-up token
    assert other.post(f"/api/studies/owned/sessions/{sid}/votes", json=vote).status_code == 403
    assert other.get(f"/api/studies/owned/sessions/{sid}").status_code == 403
    # another session's real token does not open this one either
    mine = other.post("/api/studies/owned/sessions", json={"worker_id": "w-43"}).json()
    assert mine["session_id"] != sid
    assert other.post(f"/api/studies/owned/sessions/{sid}/votes", json=vote).status_code == 403
    csv_rows = owner.get("/api/studies/owned/votes.csv", params={"token": "owner"}).text.strip().splitlines()
    assert len(csv_rows) == 1  # nothing stored from the refused votes
    r = owner.post(f"/api/studies/owned/sessions/{sid}/votes", json=vote)
    assert r.status_code == 200 and r.json()["progress"] == 1
    assert owner.get(f"/api/studies/owned/sessions/{sid}").json()["progress"] == 1


def test_token_cookie_is_httponly_lax_unguessable_and_stored_only_as_a_hash(study_app):
    app, db = study_app
    tokens = []
    for k in range(2):
        r = TestClient(app).post("/api/studies/owned/sessions", json={"worker_id": f"cookie-{k}"})
        header = r.headers["set-cookie"]
        attrs = {
            a.strip().split("=")[0].lower(): (a.split("=", 1)[1] if "=" in a else True) for a in header.split(";")[1:]
        }
        assert attrs.get("httponly") is True and attrs.get("samesite", "").lower() == "lax"
        assert attrs.get("path") == "/api/studies/owned"
        tok = header.split(";")[0].split("=", 1)[1]
        assert len(tok) >= 40  # 32 random bytes, URL-safe base64
        tokens.append((r.json()["session_id"], tok))
    assert tokens[0][1] != tokens[1][1]
    eng = create_engine(f"sqlite:///{db}")
    with eng.connect() as c:
        stored = dict(c.execute(select(dbm.sessions.c.id, dbm.sessions.c.token_hash)).all())
    for sid, tok in tokens:
        assert stored[sid] == hashlib.sha256(tok.encode()).hexdigest()
    raw = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
    assert not any(tok.encode() in raw for _, tok in tokens)


def test_anonymous_raters_in_two_browsers_get_two_sessions_and_each_keeps_its_own(study_app):
    app, _ = study_app
    a, b = TestClient(app), TestClient(app)
    sa = a.post("/api/studies/owned/sessions", json={}).json()
    sb = b.post("/api/studies/owned/sessions", json={}).json()
    assert sa["session_id"] != sb["session_id"]
    assert a.post("/api/studies/owned/sessions", json={}).json()["session_id"] == sa["session_id"]
    assert b.post("/api/studies/owned/sessions", json={}).json()["session_id"] == sb["session_id"]
