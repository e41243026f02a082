"""The study server through FastAPI's TestClient: study creation, session flow, feedback, idempotent
retries, and a 4xx for every bad request."""

from __future__ import annotations

import csv
import io
import json
import secrets

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from ganworks.turing.server import create_app, staircase_exposure  # noqa: E402

TOKEN = "owner-secret-token"


def vid():
    return secrets.token_hex(12)


@pytest.fixture
def client_for(make_study, tmp_path):
    def make(name, db=None, **opts):
        study = make_study(name, **opts)
        db = db or f"sqlite:///{tmp_path / (name + '.sqlite')}"
        app = create_app(study, db_url=db, token=TOKEN, reps=200)
        return TestClient(app), json.loads((study / "study.json").read_text())

    return make


def test_study_has_one_format_and_hides_the_source(make_study, tiny_run):
    d = make_study("plain")
    s = json.loads((d / "study.json").read_text())
    assert [x["truth"] for x in s["sources"]] == ["real", "fake"]
    assert s["sources"][0]["input"]["kind"] == "dataset" and s["sources"][1]["input"]["kind"] == "generator"
    kinds = {}
    for iid, m in s["images"].items():
        kinds[(m["source"] if m["kind"] != "attention" else "attention", m["kind"])] = (
            kinds.get((m["source"] if m["kind"] != "attention" else "attention", m["kind"]), 0) + 1
        )
    real, fake = s["sources"][0]["label"], s["sources"][1]["label"]
    assert kinds == {
        (real, "main"): 12,
        (real, "tutorial"): 2,
        (fake, "main"): 12,
        (fake, "tutorial"): 2,
        ("attention", "attention"): 1,
    }
    files = sorted((d / "images").iterdir())
    assert len(files) == len(s["images"]) and {f.stem for f in files} == set(s["images"])
    for f in files:
        with Image.open(f) as im:  # 8×8 generated digits were re-encoded to MNIST's 28×28 grey PNG
            assert (im.format, im.mode, im.size) == ("PNG", "L", (28, 28))
            assert im.info == {} or set(im.info) <= {"dpi"}, im.info  # no text chunks / metadata
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and b"tEXt" not in f.read_bytes()
    # the same seed draws the same real images
    assert s["options"]["seed"] == 3 and s["sources"][0]["input"]["indices_seed"] == 3


def test_session_flow_feedback_and_results(client_for):
    c, s = client_for("flow", feedback=False)
    cfg = c.get("/api/studies/flow/config").json()
    assert cfg["feedback"] is False and "PROLIFIC_PID" in cfg["worker_params"]
    sess = c.post("/api/studies/flow/sessions", json={"worker_id": "w1"}).json()
    items = sess["items"]
    assert sess["total"] == len(items) == 2 + 6 + 1 and sess["progress"] == 0 and not sess["done"]
    assert [it["tutorial"] for it in items[:2]] == [True, True] and not any(it["tutorial"] for it in items[2:])
    main = [s["images"][it["image_id"]] for it in items[2:]]
    assert sum(m["truth"] == "real" and m["kind"] == "main" for m in main) == 3
    assert sum(m["kind"] == "attention" for m in main) == 1
    assert len({it["image_id"] for it in items}) == len(items)
    # a worker gets the same session again
    again = c.post("/api/studies/flow/sessions", json={"worker_id": "w1"}).json()
    assert again["session_id"] == sess["session_id"] and again["resumed"] is True
    sid = sess["session_id"]
    answers = []
    for k, it in enumerate(items):
        truth = s["images"][it["image_id"]]["truth"]
        ans = truth if k % 3 else ("fake" if truth == "real" else "real")  # every third answer wrong
        answers.append((it["image_id"], ans, truth))
        r = c.post(
            f"/api/studies/flow/sessions/{sid}/votes",
            json={"vote_id": vid(), "image_id": it["image_id"], "answer": ans, "latency_ms": 800},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["progress"] == k + 1 and body["duplicate"] is False
        if it["tutorial"]:  # tutorial answers always come with feedback
            assert body["truth"] == truth and body["correct"] == (ans == truth)
        else:
            assert "truth" not in body and "correct" not in body
    assert body["done"] and len(body["completion_code"]) == 8
    state = c.get(f"/api/studies/flow/sessions/{sid}").json()
    assert state["done"] and state["completion_code"] == body["completion_code"]
    assert sorted(state["answered"]) == sorted(it["image_id"] for it in items)

    # results: numbers against a direct count of the scripted answers (main images only)
    res = c.get("/api/studies/flow/results", params={"token": TOKEN, "include_failed": True}).json()
    scored = [
        (i, a, t) for (i, a, t), it in zip(answers, items) if not it["tutorial"] and s["images"][i]["kind"] == "main"
    ]
    fe = [a != t for i, a, t in scored if t == "fake"]
    re_ = [a != t for i, a, t in scored if t == "real"]
    fake_row = [r for r in res["sources"] if r["truth"] == "fake"][0]
    real_row = [r for r in res["sources"] if r["truth"] == "real"][0]
    assert fake_row["votes"] == len(fe) and real_row["votes"] == len(re_)
    assert fake_row["error_on_fakes"] == pytest.approx(np.mean(fe))
    assert real_row["error_on_reals"] == pytest.approx(np.mean(re_))
    assert fake_row["hype"] == pytest.approx((np.mean(fe) + np.mean(re_)) / 2)
    lo, hi = fake_row["hype_ci"]
    assert lo <= fake_row["hype"] <= hi
    csv_text = c.get("/api/studies/flow/votes.csv", headers={"Authorization": f"Bearer {TOKEN}"}).text
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert len(rows) == len(items) and {r["image_id"] for r in rows} == {it["image_id"] for it in items}


def test_feedback_on_tells_every_answer(client_for):
    c, s = client_for("fb", feedback=True)
    sess = c.post("/api/studies/fb/sessions", json={}).json()
    it = sess["items"][-1]
    r = c.post(
        f"/api/studies/fb/sessions/{sess['session_id']}/votes",
        json={"vote_id": vid(), "image_id": it["image_id"], "answer": "real"},
    ).json()
    assert r["truth"] == s["images"][it["image_id"]]["truth"] and r["correct"] == (r["truth"] == "real")


def test_retried_vote_is_stored_once(client_for):
    c, s = client_for("retry")
    sess = c.post("/api/studies/retry/sessions", json={}).json()
    sid, it = sess["session_id"], sess["items"][0]["image_id"]
    body = {"vote_id": vid(), "image_id": it, "answer": "fake"}
    first = c.post(f"/api/studies/retry/sessions/{sid}/votes", json=body)
    for _ in range(3):
        again = c.post(f"/api/studies/retry/sessions/{sid}/votes", json=body)
        assert again.status_code == 200 and again.json()["duplicate"] is True and again.json()["progress"] == 1
    assert first.json()["duplicate"] is False
    # the same image under a new vote id: refused; the same vote id for another answer: refused
    r = c.post(f"/api/studies/retry/sessions/{sid}/votes", json={**body, "vote_id": vid()})
    assert r.status_code == 409 and "already answered" in r.json()["detail"]
    r = c.post(f"/api/studies/retry/sessions/{sid}/votes", json={**body, "answer": "real"})
    assert r.status_code == 409 and "already used" in r.json()["detail"]
    rows = list(csv.DictReader(io.StringIO(c.get("/api/studies/retry/votes.csv", params={"token": TOKEN}).text)))
    assert len(rows) == 1 and rows[0]["answer"] == "fake"


def test_attention_failures_are_excluded(client_for):
    c, s = client_for("attn")
    sids = []
    for fail in (False, True):
        c.cookies.clear()  # another rater: another browser
        sess = c.post("/api/studies/attn/sessions", json={}).json()
        sids.append(sess["session_id"])
        for it in sess["items"]:
            m = s["images"][it["image_id"]]
            ans = m["truth"] if not (fail and m["kind"] == "attention") else "real"
            assert (
                c.post(
                    f"/api/studies/attn/sessions/{sess['session_id']}/votes",
                    json={"vote_id": vid(), "image_id": it["image_id"], "answer": ans},
                ).status_code
                == 200
            )
    ex = c.get("/api/studies/attn/results", params={"token": TOKEN}).json()
    inc = c.get("/api/studies/attn/results", params={"token": TOKEN, "include_failed": True}).json()
    assert ex["sessions"] == 2 and ex["sessions_failed_attention"] == 1
    assert ex["votes_scored"] == 6 and inc["votes_scored"] == 12


def test_results_cli_formats(client_for, make_study, capsys):
    from ganworks.cli import main

    d = make_study("clires")
    app = create_app(d, token=TOKEN, reps=100)  # default store: d/votes.sqlite
    c = TestClient(app)
    json.loads((d / "study.json").read_text())
    sess = c.post("/api/studies/clires/sessions", json={}).json()
    for it in sess["items"]:
        c.post(
            f"/api/studies/clires/sessions/{sess['session_id']}/votes",
            json={"vote_id": vid(), "image_id": it["image_id"], "answer": "real"},
        )
    assert main(["turing", "results", str(d), "--format", "json", "--bootstrap", "100"]) == 0
    assert json.loads(capsys.readouterr().out)["votes_scored"] == 0  # called the noise check "real": excluded
    assert main(["turing", "results", str(d), "--format", "json", "--bootstrap", "100", "--include-failed"]) == 0
    r = json.loads(capsys.readouterr().out)
    fake = [x for x in r["sources"] if x["truth"] == "fake"][0]
    assert fake["error_on_fakes"] == 1.0 and fake["hype"] == pytest.approx(0.5)  # all "real": fakes all wrong
    assert main(["turing", "results", str(d), "--format", "md"]) == 0
    assert "HYPE∞" in capsys.readouterr().out
    assert main(["turing", "results", str(d), "--format", "csv"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 1 + len(sess["items"])
    assert main(["turing", "results", str(d / "nope")]) == 2
    assert "no study at" in capsys.readouterr().err


@pytest.mark.parametrize(
    "method, url, body, status, message",
    [
        ("get", "/api/studies/nope/config", None, 404, "unknown study"),
        ("post", "/api/studies/nope/sessions", {}, 404, "unknown study"),
        ("get", "/study/nope", None, 404, "This study could not be found."),
        ("get", "/owner/nope", None, 404, "unknown study"),
        ("get", "/api/studies/bad/sessions/doesnotexist123", None, 404, "unknown session"),
        (
            "post",
            "/api/studies/bad/sessions/doesnotexist123/votes",
            {"vote_id": "abcdefgh12", "image_id": "0" * 16, "answer": "real"},
            404,
            "unknown session",
        ),
        (
            "post",
            "/api/studies/bad/sessions/{sid}/votes",
            {"vote_id": "abcdefgh12", "image_id": "0" * 16, "answer": "real"},
            404,
            "not in this session",
        ),
        (
            "post",
            "/api/studies/bad/sessions/{sid}/votes",
            {"vote_id": "abcdefgh12", "image_id": "{other}", "answer": "real"},
            404,
            "not in this session",
        ),
        (
            "post",
            "/api/studies/bad/sessions/{sid}/votes",
            {"vote_id": "abcdefgh12", "image_id": "{img}", "answer": "maybe"},
            422,
            "answer",
        ),
        (
            "post",
            "/api/studies/bad/sessions/{sid}/votes",
            {"vote_id": "abcdefgh12", "image_id": "{img}", "answer": 1},
            422,
            "answer",
        ),
        (
            "post",
            "/api/studies/bad/sessions/{sid}/votes",
            {"vote_id": "abcdefgh12", "image_id": "{img}"},
            422,
            "answer",
        ),
        (
            "post",
            "/api/studies/bad/sessions/{sid}/votes",
            {"vote_id": "short", "image_id": "{img}", "answer": "real"},
            422,
            "vote_id",
        ),
        (
            "post",
            "/api/studies/bad/sessions/{sid}/votes",
            {"vote_id": "../../etc/passwd", "image_id": "{img}", "answer": "real"},
            422,
            "vote_id",
        ),
        (
            "post",
            "/api/studies/bad/sessions/{sid}/votes",
            {"vote_id": "abcdefgh12", "image_id": "{img}", "answer": "real", "extra": 1},
            422,
            "a field this server does not take",
        ),
        (
            "post",
            "/api/studies/bad/sessions/{sid}/votes",
            {"vote_id": "abcdefgh12", "image_id": "{img}", "answer": "real", "latency_ms": -5},
            422,
            "latency_ms",
        ),
        ("post", "/api/studies/bad/sessions/{sid}/votes", "not json", 422, ""),
        ("post", "/api/studies/bad/sessions", {"worker_id": "a b/c"}, 422, "worker_id"),
        ("get", "/api/studies/bad/images/0000000000000000", None, 404, "unknown image"),
        ("get", "/api/studies/bad/images/..%2Fstudy.json", None, 404, ""),
        ("get", "/api/studies/bad/images/%2E%2E%2F%2E%2E%2Fstudy.json", None, 404, ""),
        ("get", "/api/studies/bad/images/../../study.json", None, 404, ""),
        ("get", "/static/..%2F..%2Fstudy.py", None, 404, ""),
        ("get", "/static/../server.py", None, 404, ""),
        ("get", "/api/studies/bad/results", None, 401, "owner token required"),
        ("get", "/api/studies/bad/results?token=wrong", None, 403, "wrong owner token"),
        ("get", "/api/studies/bad/votes.csv?token=wrong", None, 403, "wrong owner token"),
    ],
)
def test_every_bad_request_is_a_4xx(client_for, method, url, body, status, message):
    c, s = client_for("bad")
    sess = c.post("/api/studies/bad/sessions", json={}).json()
    mine = {it["image_id"] for it in sess["items"]}
    other = next(i for i in s["images"] if i not in mine)

    def fill(t):
        return (
            t.replace("{sid}", sess["session_id"])
            .replace("{img}", sess["items"][0]["image_id"])
            .replace("{other}", other)
        )

    url = fill(url)
    if isinstance(body, dict):
        body = {k: fill(v) if isinstance(v, str) else v for k, v in body.items()}
        r = getattr(c, method)(url, json=body)
    elif isinstance(body, str):
        r = c.post(url, content=body, headers={"Content-Type": "application/json"})
    else:
        r = getattr(c, method)(url)
    assert r.status_code == status, (r.status_code, r.text)
    assert 400 <= r.status_code < 500
    if message:
        assert message in r.text
    assert "Traceback" not in r.text and "ganworks-turing-study" not in r.text


def test_images_carry_nothing_but_pixels(client_for):
    c, s = client_for("hdr")
    headers = []
    for iid in list(s["images"])[:10]:
        r = c.get(f"/api/studies/hdr/images/{iid}")
        assert r.status_code == 200 and r.content[:4] == b"\x89PNG"
        headers.append({k: v for k, v in r.headers.items() if k not in ("content-length", "date")})
    assert all(h == headers[0] for h in headers)  # no ETag / Last-Modified / names that differ
    assert "etag" not in headers[0] and "last-modified" not in headers[0]


def test_pages_are_served_from_the_package(client_for):
    c, _ = client_for("pages")
    for url in ("/study/pages", "/owner/pages", "/static/rater.js", "/static/owner.js", "/static/style.css"):
        r = c.get(url)
        assert r.status_code == 200 and len(r.text) > 200
        assert "http://" not in r.text.replace("http://www.w3.org/2000/svg", "")  # nothing from a CDN
        assert "https://" not in r.text


def test_staircase_goes_down_after_two_right_and_up_after_a_wrong():
    assert staircase_exposure(500, []) == 500
    assert staircase_exposure(500, [True]) == 500
    assert staircase_exposure(500, [True, True]) == 400
    assert staircase_exposure(500, [True, True, False]) == 500
    assert staircase_exposure(500, [False, False]) == round(500 / 0.64)
    assert staircase_exposure(30, [True] * 40) == 20


def test_staircase_study_stores_the_exposure_per_vote(client_for):
    c, s = client_for("stair", exposure_ms=400, staircase=True, tutorial=0, attention=0)
    sess = c.post("/api/studies/stair/sessions", json={}).json()
    assert sess["exposure_ms"] == 400
    exps = []
    for it in sess["items"]:
        r = c.post(
            f"/api/studies/stair/sessions/{sess['session_id']}/votes",
            json={"vote_id": vid(), "image_id": it["image_id"], "answer": s["images"][it["image_id"]]["truth"]},
        )
        exps.append(r.json()["exposure_ms"])
    assert exps == [400, 320, 320, 256, 256, 205]
    res = c.get("/api/studies/stair/results", params={"token": TOKEN}).json()
    # the exposure each image was shown for: 400, 400, 320, 320, 256, 256 → second half 320, 256, 256
    assert res["staircase"]["sessions"] == 1
    assert res["staircase"]["threshold_ms_median"] == pytest.approx((320 + 256 + 256) / 3)


@pytest.mark.parametrize("processes", [1, 2])
def test_completion_url_and_shared_store(make_study, tmp_path, processes):
    """processes=2 is the path for several server processes (no per-session cache in memory)."""
    d = make_study("done")
    app = create_app(
        d,
        db_url=f"sqlite:///{tmp_path / 'done.sqlite'}",
        token=TOKEN,
        reps=50,
        completion_url="https://example.org/complete?cc={code}",
        processes=processes,
    )
    c = TestClient(app)
    sess = c.post("/api/studies/done/sessions", json={"worker_id": "prolific-123"}).json()
    sid = sess["session_id"]
    for k, it in enumerate(sess["items"]):
        body = {"vote_id": vid(), "image_id": it["image_id"], "answer": "fake"}
        r = c.post(f"/api/studies/done/sessions/{sid}/votes", json=body).json()
        assert r["progress"] == k + 1
        assert c.post(f"/api/studies/done/sessions/{sid}/votes", json=body).json()["progress"] == k + 1  # retry
    assert r["done"] and r["completion_url"] == f"https://example.org/complete?cc={r['completion_code']}"


def test_several_generators_get_a_rank_correlation(tiny_run, tmp_path):
    from ganworks.turing.stats import summarize
    from ganworks.turing.study import create_study

    s = create_study(
        tmp_path / "multi",
        "digits:test",
        [str(tiny_run)] * 3,
        images_per_source=4,
        tutorial=0,
        attention=0,
        device="cpu",
        scores={"run": {"FID": 30.0}, "run-2": {"FID": 20.0}, "run-3": {"FID": 10.0}},
    )
    assert [x["label"] for x in s["sources"]] == ["digits:test", "run", "run-2", "run-3"]
    fool = {"run": 0.0, "run-2": 0.5, "run-3": 1.0}  # people are fooled more by the lower-FID generator
    votes = []
    for r in range(4):
        for iid, m in s["images"].items():
            wrong = m["truth"] == "fake" and (r / 4) < fool[m["source"]]
            ans = ("real" if m["truth"] == "fake" else "fake") if wrong else m["truth"]
            votes.append(
                {
                    "session_id": f"s{r}",
                    "image_id": iid,
                    "source": m["source"],
                    "truth": m["truth"],
                    "kind": m["kind"],
                    "answer": ans,
                }
            )
    res = summarize(s, votes, reps=50)
    (c,) = res["rank_correlations"]
    assert c["score"] == "FID" and c["n"] == 3 and c["spearman"] == pytest.approx(-1.0)
