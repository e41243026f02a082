"""Request-size limit and error bodies of the study server: a huge body is refused with 413 before it
is read or parsed, and no error response repeats what the client sent."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest

pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from ganworks.turing.limits import MAX_BODY_BYTES  # noqa: E402
from ganworks.turing.server import create_app  # noqa: E402

MARK = "Zq9echoZq9"  # a value that must never come back in a response


@pytest.fixture
def app_and_session(make_study, tmp_path):
    study = make_study("limits")
    app = create_app(study, db_url=f"sqlite:///{tmp_path / 'limits.sqlite'}", token="t", reps=10)
    c = TestClient(app)
    sess = c.post("/api/studies/limits/sessions", json={}).json()
    return app, c, sess


def _asgi_post(app, path: str, chunks, headers):
    """POST through the ASGI interface; returns (status, body, how many body chunks the app pulled)."""
    pulled = {"n": 0}
    out = {"status": None, "body": b""}

    async def receive():
        k = pulled["n"]
        pulled["n"] += 1
        if k < len(chunks):
            return {"type": "http.request", "body": chunks[k], "more_body": k + 1 < len(chunks)}
        return {"type": "http.disconnect"}

    async def send(msg):
        if msg["type"] == "http.response.start":
            out["status"] = msg["status"]
        elif msg["type"] == "http.response.body":
            out["body"] += msg.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }

    asyncio.run(app(scope, receive, send))
    return out["status"], out["body"], pulled["n"]


def test_body_whose_content_length_is_over_the_limit_is_refused_before_a_byte_is_read(app_and_session):
    app, _, sess = app_and_session
    big = 100_000_000  # the reported case: a 100 MB vote body
    chunk = b"x" * 65536
    status, body, pulled = _asgi_post(
        app,
        f"/api/studies/limits/sessions/{sess['session_id']}/votes",
        [chunk] * 3,
        [(b"content-length", str(big).encode())],
    )
    assert status == 413 and pulled == 0
    assert "too large" in json.loads(body)["detail"]


def test_streamed_body_without_length_is_cut_off_at_the_limit(app_and_session):
    app, _, sess = app_and_session
    chunk = b'{"worker_id": "' + b"a" * 65536
    chunks = [chunk] * 1600  # ~100 MB if it were all read
    status, body, pulled = _asgi_post(app, "/api/studies/limits/sessions", chunks, [])
    assert status == 413
    assert pulled * len(chunk) <= MAX_BODY_BYTES + len(chunk)  # stopped within one chunk of the limit


def test_body_just_under_the_limit_is_still_read_and_validated(app_and_session):
    _, c, sess = app_and_session
    body = json.dumps(
        {"vote_id": "abcdefgh12", "image_id": sess["items"][0]["image_id"], "answer": "real", "latency_ms": 5}
    ).ljust(MAX_BODY_BYTES - 10)  # JSON allows trailing whitespace
    r = c.post(
        f"/api/studies/limits/sessions/{sess['session_id']}/votes",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text


def test_real_server_answers_a_huge_vote_with_413_without_reading_it(make_study, serve):
    """Through uvicorn: headers announce 100 MB, the client sends none of it, the answer comes at once;
    and a chunked body is answered 413 long before 100 MB have been sent."""
    base, _ = serve(make_study("limits-live"))
    host, port = base.split("//")[1].split(":")
    path = "/api/studies/limits-live/sessions"
    with socket.create_connection((host, int(port)), timeout=10) as s:
        t0 = time.perf_counter()
        s.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: 100000000\r\n\r\n".encode()
        )
        head = s.recv(65536).decode("latin-1")
        assert head.startswith("HTTP/1.1 413"), head[:200]
        assert time.perf_counter() - t0 < 5
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        sent, reply = 0, b""
        s.settimeout(0.05)
        piece = b"a" * 16384
        while sent < 100_000_000:
            try:
                s.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                sent += len(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                reply += s.recv(65536)
            except (TimeoutError, BlockingIOError):
                pass
            if b"\r\n\r\n" in reply:
                break
        s.settimeout(5)
        if b"\r\n\r\n" not in reply:
            reply += s.recv(65536)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert sent < 2_000_000


@pytest.mark.parametrize(
    "field, value",
    [
        ("worker_id", MARK + "/" + "x" * 9000),  # breaks the pattern and the length
        ("worker_id", 12345),
        ("vote_id", MARK + "!" * 3),
        ("image_id", MARK * 10),
        ("answer", MARK),
        ("latency_ms", MARK),
        ("latency_ms", -12345987),
        (MARK, 1),  # an unknown field: its name is input too
    ],
    ids=[
        "long-worker-id",
        "numeric-worker-id",
        "vote-id",
        "long-image-id",
        "answer",
        "latency-text",
        "latency-negative",
        "unknown-field",
    ],
)
def test_a_422_never_repeats_the_submitted_values(app_and_session, field, value):
    _, c, sess = app_and_session
    if field == "worker_id":
        url, body = "/api/studies/limits/sessions", {field: value}
    else:
        url = f"/api/studies/limits/sessions/{sess['session_id']}/votes"
        body = {"vote_id": "abcdefgh12", "image_id": sess["items"][0]["image_id"], "answer": "real", field: value}
    r = c.post(url, json=body)
    assert r.status_code == 422
    text = r.text
    assert MARK not in text and str(value) not in text and len(text) < 400
    detail = r.json()["detail"]
    assert isinstance(detail, str) and "input" not in text
    if field != MARK:
        assert field in detail  # it names the field


def test_not_json_and_other_4xx_bodies_do_not_repeat_the_request(app_and_session):
    _, c, sess = app_and_session
    r = c.post("/api/studies/limits/sessions", content=MARK + "{", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and MARK not in r.text and "not valid JSON" in r.text
    r = c.post(
        f"/api/studies/limits/sessions/{sess['session_id']}/votes",
        json={"vote_id": "abcdefgh12", "image_id": MARK, "answer": "real"},
    )
    assert r.status_code == 404 and MARK not in r.text  # an image id that is not in the session
    r = c.get(f"/api/studies/{MARK}/config")
    assert r.status_code == 404 and MARK not in r.text
    r = c.get(f"/study/{MARK}")
    assert r.status_code == 404 and MARK not in r.text
