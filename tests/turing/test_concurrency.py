"""The study server's event loop never waits for the database: while a slow session creation holds the
database, a vote waiting for it does not hold up requests that need no database (the rater page's
config, images)."""

from __future__ import annotations

import secrets
import socket
import threading
import time

import pytest

httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")
from sqlalchemy import event  # noqa: E402

from ganworks.turing.server import create_app  # noqa: E402


@pytest.fixture
def live_app(make_study, tmp_path):
    app = create_app(make_study("loop"), db_url=f"sqlite:///{tmp_path / 'loop.sqlite'}", token="t", reps=10)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(base + "/", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    yield app, base
    server.should_exit = True
    th.join(10)


@pytest.mark.slow
def test_a_slow_session_creation_does_not_stall_the_event_loop(live_app):
    app, base = live_app
    slow = threading.Event()

    @event.listens_for(app.state.engine, "before_cursor_execute")
    def _slow_session_insert(conn, cursor, statement, *a):
        if slow.is_set() and statement.lstrip().upper().startswith("INSERT INTO SESSIONS"):
            time.sleep(1.5)

    rater = httpx.Client(base_url=base, timeout=10)
    sess = rater.post("/api/studies/loop/sessions", json={"worker_id": "first"}).json()
    slow.set()
    results = {}

    def create():
        results["create"] = httpx.post(base + "/api/studies/loop/sessions", json={"worker_id": "second"}, timeout=10)

    def vote():
        results["vote"] = rater.post(
            f"/api/studies/loop/sessions/{sess['session_id']}/votes",
            json={"vote_id": secrets.token_hex(8), "image_id": sess["items"][0]["image_id"], "answer": "real"},
        )

    threads = [threading.Thread(target=create), threading.Thread(target=vote)]
    threads[0].start()
    time.sleep(0.3)  # the creation is inside its slow INSERT now
    threads[1].start()
    time.sleep(0.2)  # the vote is waiting for the database
    t0 = time.perf_counter()
    cfg = httpx.get(base + "/api/studies/loop/config", timeout=10)
    img = httpx.get(base + f"/api/studies/loop/images/{sess['items'][1]['image_id']}", timeout=10)
    took = time.perf_counter() - t0
    for t in threads:
        t.join(10)
    assert cfg.status_code == 200 and img.status_code == 200
    assert took < 0.5, f"requests that need no database waited {took:.2f} s"
    assert results["create"].status_code == 200 and results["vote"].status_code == 200
