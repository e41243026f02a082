"""The study server: FastAPI routes for raters and the owner, storage through :mod:`.db`.

Routes (``{study}`` is the study's name; one server serves one study)::

    GET  /study/{study}?PROLIFIC_PID=...        rater page (static, from the package)
    GET  /owner/{study}?token=...               owner's results page
    GET  /api/studies/{study}/config            what the rater page needs (feedback, exposure, keys)
    POST /api/studies/{study}/sessions          {worker_id?} → a session (the same one again for a worker)
    GET  /api/studies/{study}/sessions/{sid}    the session's items, answered images, progress
    POST /api/studies/{study}/sessions/{sid}/votes   {vote_id, image_id, answer: real|fake, latency_ms?}
    GET  /api/studies/{study}/images/{image_id} PNG bytes (ids are checked against the manifest)
    GET  /api/studies/{study}/results?token=    every number of the results page (JSON)
    GET  /api/studies/{study}/votes.csv?token=  every vote

Every request about an unknown study, session or image, with a malformed body or an answer other
than ``real``/``fake`` gets a 4xx with a one-line ``detail``.  A vote is one short transaction keyed by
the client-made ``vote_id``: a retried request returns the stored vote (``duplicate: true``) and is
never stored twice.
"""

from __future__ import annotations

import csv
import io
import json
import random
import secrets
import time
from pathlib import Path
from typing import Literal, Optional

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from ganworks.turing import db as dbm
from ganworks.turing.study import ID_RE, load_study

STATIC = Path(__file__).parent / "static"
WORKER_PARAMS = ("PROLIFIC_PID", "workerId", "worker_id")
STAIRCASE = {"down_after": 2, "factor": 0.8, "min_ms": 20, "max_ms": 2000}


class SessionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    worker_id: Optional[str] = Field(default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$")


class VoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vote_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    image_id: str = Field(min_length=1, max_length=64)
    answer: Literal["real", "fake"]
    latency_ms: Optional[int] = Field(default=None, ge=0, le=86_400_000)


def staircase_exposure(start_ms: int, history: list[bool]) -> int:
    """Exposure (ms) for the next image after the session's main answers ``history`` (True = correct):
    a 2-down-1-up staircase (shorter after two correct in a row, longer after an error), as in
    HYPE-time's adaptive search for the shortest exposure at which people still tell real from fake."""
    e, run = float(start_ms), 0
    for ok in history:
        if ok:
            run += 1
            if run == STAIRCASE["down_after"]:
                e, run = max(STAIRCASE["min_ms"], e * STAIRCASE["factor"]), 0
        else:
            e, run = min(STAIRCASE["max_ms"], e / STAIRCASE["factor"]), 0
    return int(round(e))


def create_app(study_dir, db_url: str | None = None, token: str | None = None,
               worker_params=WORKER_PARAMS, completion_url: str | None = None, sync: str = "normal",
               reps: int = 1000, processes: int = 1) -> FastAPI:
    """The FastAPI app serving the study in ``study_dir`` (votes in ``db_url``, default its SQLite file)."""
    study = load_study(study_dir)
    name = study["name"]
    manifest = study["images"]
    opts = study["options"]
    engine = dbm.make_engine(db_url or dbm.default_url(study_dir), sync=sync)
    token = token or secrets.token_urlsafe(24)
    shared_store = engine.dialect.name != "sqlite" or processes > 1
    img_dir = Path(study_dir) / "images"
    image_cache: dict = {}
    session_cache: dict = {}

    app = FastAPI(title=f"ganworks visual Turing test: {name}", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.owner_token = token
    app.state.engine = engine
    app.state.study = study
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def check_study(s: str):
        if s != name:
            raise HTTPException(404, f"unknown study {s[:64]!r}")

    def check_owner(request: Request):
        given = request.query_params.get("token") or request.headers.get("x-owner-token") or ""
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:]
        if not given:
            raise HTTPException(401, "owner token required (?token=... as printed by `ganworks turing serve`)")
        if not secrets.compare_digest(given.encode(), token.encode()):
            raise HTTPException(403, "wrong owner token")

    def make_items(rng: random.Random) -> list[dict]:
        by = {}
        for iid, m in manifest.items():
            by.setdefault((m["source"], m["kind"]), []).append(iid)
        real_label = next(s["label"] for s in study["sources"] if s["truth"] == "real")
        fake_labels = [s["label"] for s in study["sources"] if s["truth"] == "fake"]
        tut_real = by.get((real_label, "tutorial"), [])
        tut_fake = [i for lab in fake_labels for i in by.get((lab, "tutorial"), [])]
        tut = rng.sample(tut_real, min(len(tut_real), (opts["tutorial"] + 1) // 2)) + \
            rng.sample(tut_fake, min(len(tut_fake), opts["tutorial"] // 2))
        rng.shuffle(tut)
        main = rng.sample(by[(real_label, "main")], min(opts["real_per_session"], len(by[(real_label, "main")])))
        n_fake = opts["fake_per_session"]
        counts = [n_fake // len(fake_labels) + (k < n_fake % len(fake_labels)) for k in range(len(fake_labels))]
        rng.shuffle(counts)
        for lab, c in zip(fake_labels, counts):
            pool = by.get((lab, "main"), [])
            main += rng.sample(pool, min(c, len(pool)))
        rng.shuffle(main)
        for a in by.get(("attention", "attention"), []):
            main.insert(rng.randrange(1, len(main) + 1), a)
        return [{"image_id": i, "tutorial": True} for i in tut] + [{"image_id": i, "tutorial": False} for i in main]

    def load_session(sid: str) -> dict:
        s = session_cache.get(sid)
        if s is None:
            if not (8 <= len(sid) <= 64):
                raise HTTPException(404, "unknown session")
            with engine.connect() as c:
                row = c.execute(select(dbm.sessions).where(dbm.sessions.c.id == sid,
                                                           dbm.sessions.c.study == name)).first()
            if row is None:
                raise HTTPException(404, "unknown session")
            items = json.loads(row.items)
            s = {"id": row.id, "items": items, "code": row.code, "worker_id": row.worker_id,
                 "pos": {it["image_id"]: k for k, it in enumerate(items)}}
            if len(session_cache) > 100_000:
                session_cache.clear()
            session_cache[sid] = s
        return s

    # With SQLite and one server process, this process is the only writer: each session's answers are
    # kept in memory (read from the database once) and a vote costs one INSERT.  Several processes or
    # servers (PostgreSQL, --workers > 1) read them back from the database on every vote instead.
    histories: dict = {}
    insert_vote = insert(dbm.votes)

    def read_answers(sid: str) -> list[tuple]:
        with engine.connect() as c:
            return [tuple(r) for r in c.execute(select(dbm.votes.c.image_id, dbm.votes.c.kind, dbm.votes.c.correct)
                                                .where(dbm.votes.c.session_id == sid).order_by(dbm.votes.c.created))]

    def answered(sid: str) -> list[tuple]:
        if shared_store:
            return read_answers(sid)
        h = histories.get(sid)
        if h is None:
            if len(histories) > 100_000:
                histories.clear()
            h = histories[sid] = read_answers(sid)
        return h

    def next_exposure(rows) -> Optional[int]:
        if not opts.get("exposure_ms"):
            return None
        if not opts.get("staircase"):
            return int(opts["exposure_ms"])
        return staircase_exposure(int(opts["exposure_ms"]), [bool(r[2]) for r in rows if r[1] != "tutorial"])

    def completion(s: dict) -> dict:
        out = {"completion_code": s["code"]}
        if completion_url:
            out["completion_url"] = completion_url.replace("{code}", s["code"])
        return out

    def session_view(s: dict) -> dict:
        rows = list(answered(s["id"]))
        done = len(rows) >= len(s["items"])
        view = {"session_id": s["id"], "study": name, "items": s["items"], "answered": [r[0] for r in rows],
                "total": len(s["items"]), "progress": len(rows), "done": done,
                "feedback": bool(opts["feedback"]), "exposure_ms": next_exposure(rows)}
        if done:
            view.update(completion(s))
        return view

    @app.get("/", response_class=PlainTextResponse)
    def root():
        return "ganworks visual Turing test server\n"

    @app.get("/study/{study}")
    def rater_page(study: str):
        check_study(study)
        return FileResponse(STATIC / "rater.html", media_type="text/html")

    @app.get("/owner/{study}")
    def owner_page(study: str):
        check_study(study)
        return FileResponse(STATIC / "owner.html", media_type="text/html")

    @app.get("/api/studies/{study}/config")
    def config(study: str):
        check_study(study)
        return {"study": name, "feedback": bool(opts["feedback"]), "exposure_ms": opts.get("exposure_ms"),
                "staircase": bool(opts.get("staircase")), "worker_params": list(worker_params),
                "tutorial": opts["tutorial"], "per_session": opts["per_session"]}

    @app.post("/api/studies/{study}/sessions")
    def new_session(study: str, body: SessionIn):
        check_study(study)
        sid = secrets.token_urlsafe(24)
        items = make_items(random.Random(secrets.randbits(64)))
        row = {"id": sid, "study": name, "worker_id": body.worker_id, "items": json.dumps(items),
               "code": secrets.token_hex(4).upper(), "created": time.time()}
        try:
            with engine.write_lock, engine.begin() as c:
                c.execute(insert(dbm.sessions).values(**row))
        except IntegrityError:
            with engine.connect() as c:
                old = c.execute(select(dbm.sessions.c.id).where(dbm.sessions.c.study == name,
                                                                dbm.sessions.c.worker_id == body.worker_id)).first()
            if old is None:
                raise HTTPException(409, "could not create the session; retry")
            view = session_view(load_session(old.id))
            view["resumed"] = True
            return view
        view = session_view(load_session(sid))
        view["resumed"] = False
        return view

    @app.get("/api/studies/{study}/sessions/{sid}")
    async def get_session(study: str, sid: str):
        check_study(study)
        return session_view(load_session(sid))

    @app.post("/api/studies/{study}/sessions/{sid}/votes")
    async def vote(study: str, sid: str, body: VoteIn):
        t0 = time.perf_counter()
        check_study(study)
        s = load_session(sid)
        pos = s["pos"].get(body.image_id)
        if pos is None:
            raise HTTPException(404, f"image {body.image_id[:64]!r} is not in this session")
        m = manifest[body.image_id]
        item = s["items"][pos]
        kind = "tutorial" if item["tutorial"] else ("attention" if m["kind"] == "attention" else "main")
        correct = body.answer == m["truth"]
        # async: the short transaction runs on the event loop, so within this process votes are
        # written one at a time without thread hand-offs (the lock also covers sync routes' threads)
        with engine.write_lock:
            hist = answered(sid)
            row = {"vote_id": body.vote_id, "session_id": sid, "study": name, "image_id": body.image_id,
                   "position": pos, "source": m["source"], "truth": m["truth"], "kind": kind,
                   "answer": body.answer, "correct": correct, "latency_ms": body.latency_ms,
                   "exposure_ms": next_exposure(hist), "created": time.time()}
            duplicate = False
            try:
                with engine.begin() as c:
                    c.execute(insert_vote, row)
            except IntegrityError:
                with engine.connect() as c:
                    old = c.execute(select(dbm.votes).where(dbm.votes.c.vote_id == body.vote_id)).first()
                if old is None:
                    raise HTTPException(409, f"image {body.image_id!r} was already answered in this session")
                if (old.session_id, old.image_id, old.answer) != (sid, body.image_id, body.answer):
                    raise HTTPException(409, f"vote id {body.vote_id!r} was already used for another vote")
                duplicate, correct = True, bool(old.correct)
            else:
                hist.append((body.image_id, kind, correct))
            n = len(hist)
        out = {"stored": True, "duplicate": duplicate, "progress": n, "total": len(s["items"]),
               "done": n >= len(s["items"]), "exposure_ms": next_exposure(hist)}
        if opts["feedback"] or item["tutorial"]:
            out.update(correct=correct, truth=m["truth"])
        if out["done"]:
            out.update(completion(s))
        # a ready JSONResponse skips FastAPI's response encoding (the vote is the hot path)
        return JSONResponse(out, headers={"Server-Timing": f"vote;dur={1000 * (time.perf_counter() - t0):.2f}"})

    @app.get("/api/studies/{study}/images/{image_id}")
    async def image(study: str, image_id: str):
        check_study(study)
        if not ID_RE.match(image_id) or image_id not in manifest:
            raise HTTPException(404, "unknown image")
        data = image_cache.get(image_id)
        if data is None:
            data = (img_dir / f"{image_id}.png").read_bytes()  # the name comes from the manifest, not the URL
            image_cache[image_id] = data
        return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=86400"})

    @app.get("/api/studies/{study}/results")
    def results(study: str, request: Request, include_failed: bool = False):
        check_study(study)
        check_owner(request)
        from ganworks.turing.stats import summarize

        return _json_safe(summarize(study_obj(), dbm.read_votes(engine, name), exclude_failed=not include_failed,
                                    reps=reps))

    @app.get("/api/studies/{study}/votes.csv")
    def votes_csv(study: str, request: Request):
        check_study(study)
        check_owner(request)
        return Response(votes_to_csv(dbm.read_votes(engine, name)), media_type="text/csv")

    @app.get("/owner")
    def owner_redirect():
        return RedirectResponse(f"/owner/{name}")

    def study_obj():
        return study

    return app


def votes_to_csv(rows: list[dict]) -> str:
    cols = [c.name for c in dbm.votes.columns]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r[k] for k in cols})
    return buf.getvalue()


def _json_safe(x):
    """NaN → None, recursively (JSON has no NaN)."""
    import math

    if isinstance(x, float):
        return None if not math.isfinite(x) else x
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x
