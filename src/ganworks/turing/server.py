"""The study server: FastAPI routes for raters and the owner, storage through :mod:`.db`.

Routes (``{study}`` is the study's name; one server serves one study)::

    GET  /study/{study}?PROLIFIC_PID=...        rater page (static, from the package)
    GET  /owner/{study}?token=...               owner's results page
    GET  /api/studies/{study}/config            what the rater page needs (feedback, exposure, keys)
    POST /api/studies/{study}/sessions          {worker_id?} → a session, and its token in a cookie
    GET  /api/studies/{study}/sessions/{sid}    the session's items, answered images, progress (token needed)
    POST /api/studies/{study}/sessions/{sid}/votes   {vote_id, image_id, answer: real|fake, latency_ms?}
                                                (token needed)
    GET  /api/studies/{study}/images/{image_id} PNG bytes (ids are checked against the manifest)
    GET  /api/studies/{study}/results?token=    every number of the results page (JSON)
    GET  /api/studies/{study}/votes.csv?token=  every vote

Every request about an unknown study, session or image, with a malformed body or an answer other
than ``real``/``fake`` gets a 4xx with a one-line ``detail`` that never repeats what was sent (a 422
names the field and the rule, not the value); a body over 16 KiB gets 413 before it is read
(:mod:`.limits`).  A vote is one short transaction keyed by the client-made ``vote_id``: a retried
request returns the stored vote (``duplicate: true``) and is never stored twice.

A session belongs to the browser that opened it: creating one sets an unguessable token in an
HttpOnly, SameSite=Lax cookie (only its SHA-256 is stored), and reading the session or voting in it
needs that cookie.  The same browser asking again gets its session back; another client with the
same worker id gets a 409 refusal, never the session id or the completion code.

Database work runs in a thread pool, never on the event loop, and no lock is held by a coroutine:
with SQLite the pool is one thread (the process's single writer, which also keeps each session's
answers in memory); with PostgreSQL, several threads share the connection pool.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import random
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from ganworks.turing import db as dbm
from ganworks.turing.limits import MAX_BODY_BYTES, BodyLimit
from ganworks.turing.study import ID_RE, load_study

STATIC = Path(__file__).parent / "static"
WORKER_PARAMS = ("PROLIFIC_PID", "workerId", "worker_id")
STAIRCASE = {"down_after": 2, "factor": 0.8, "min_ms": 20, "max_ms": 2000}
COOKIE = "ganworks_session"
COOKIE_MAX_AGE = 30 * 24 * 3600
OTHER_BROWSER = (
    "this worker id already has a session, opened in another browser; a session and its completion "
    "code stay with the browser that opened it, so continue there"
)
NOT_YOURS = "this browser does not hold the session's token (its cookie is missing or belongs to another session)"
NO_STUDY_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Study not found</title><link rel="stylesheet" href="/static/style.css"></head>
<body><main><h1>Study not found</h1><p id="error" class="error" role="alert">This study could not be found.
Please check that you opened the whole link from the study invitation.</p></main></body></html>
"""
# what a 422 says about each field: the rule, never the value that was sent
FIELD_RULES = {
    "worker_id": "worker_id must be 1-128 letters, digits or . _ : @ -",
    "vote_id": "vote_id must be 8-64 letters, digits, _ or -",
    "image_id": "image_id must be a string of at most 64 characters",
    "answer": "answer must be 'real' or 'fake'",
    "latency_ms": "latency_ms must be a whole number of milliseconds from 0 to 86400000",
    "include_failed": "include_failed must be true or false",
}


def _describe_invalid(e: dict) -> str:
    """One phrase for one pydantic error that names the field and its rule and repeats nothing sent."""
    typ, loc = e.get("type", ""), e.get("loc", ())
    field = next((x for x in reversed(loc) if isinstance(x, str) and x in FIELD_RULES), None)
    if typ == "json_invalid":
        return "the request body is not valid JSON"
    if typ == "extra_forbidden":
        return "the request has a field this server does not take"
    if typ in ("model_attributes_type", "dict_type"):
        return "the request body must be a JSON object"
    if field and typ == "missing":
        return f"{field} is missing"
    if field:
        return FIELD_RULES[field]
    if typ == "missing" and tuple(loc) == ("body",):
        return "the request needs a JSON body"
    return "the request is not valid"


def _token_hash(request: Request) -> str | None:
    tok = request.cookies.get(COOKIE)
    if not tok or len(tok) > 128:
        return None
    return hashlib.sha256(tok.encode()).hexdigest()


class SessionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    worker_id: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$")


class VoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vote_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    image_id: str = Field(min_length=1, max_length=64)
    answer: Literal["real", "fake"]
    latency_ms: int | None = Field(default=None, ge=0, le=86_400_000)


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


def create_app(
    study_dir,
    db_url: str | None = None,
    token: str | None = None,
    worker_params=WORKER_PARAMS,
    completion_url: str | None = None,
    sync: str = "normal",
    reps: int = 1000,
    processes: int = 1,
) -> FastAPI:
    """The FastAPI app serving the study in ``study_dir`` (votes in ``db_url``, default its SQLite file)."""
    study = load_study(study_dir)
    name = study["name"]
    manifest = study["images"]
    opts = study["options"]
    engine = dbm.make_engine(db_url or dbm.default_url(study_dir), sync=sync)
    token = token or secrets.token_urlsafe(24)
    sqlite = engine.dialect.name == "sqlite"
    shared_store = not sqlite or processes > 1
    img_dir = Path(study_dir) / "images"
    image_cache: dict = {}
    session_cache: dict = {}
    # every database call runs here, off the event loop; with SQLite one thread is the process's only
    # writer (no lock needed), with a server database several threads share the connection pool
    db_pool = ThreadPoolExecutor(max_workers=1 if sqlite else 16, thread_name_prefix="turing-db")

    async def in_db(fn, *args):
        return await asyncio.get_running_loop().run_in_executor(db_pool, fn, *args)

    app = FastAPI(title=f"ganworks visual Turing test: {name}", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.owner_token = token
    app.state.engine = engine
    app.state.study = study
    app.state.db_pool = db_pool
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        phrases = []
        for e in exc.errors():
            p = _describe_invalid(e)
            if p not in phrases:
                phrases.append(p)
        return JSONResponse({"detail": "; ".join(phrases) or "the request is not valid"}, status_code=422)

    def check_study(s: str):
        if s != name:
            raise HTTPException(404, "unknown study (check the link)")

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
        tut = rng.sample(tut_real, min(len(tut_real), (opts["tutorial"] + 1) // 2)) + rng.sample(
            tut_fake, min(len(tut_fake), opts["tutorial"] // 2)
        )
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
                row = c.execute(
                    select(dbm.sessions).where(dbm.sessions.c.id == sid, dbm.sessions.c.study == name)
                ).first()
            if row is None:
                raise HTTPException(404, "unknown session")
            items = json.loads(row.items)
            s = {
                "id": row.id,
                "items": items,
                "code": row.code,
                "worker_id": row.worker_id,
                "token_hash": row.token_hash,
                "pos": {it["image_id"]: k for k, it in enumerate(items)},
            }
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
            return [
                tuple(r)
                for r in c.execute(
                    select(dbm.votes.c.image_id, dbm.votes.c.kind, dbm.votes.c.correct)
                    .where(dbm.votes.c.session_id == sid)
                    .order_by(dbm.votes.c.created)
                )
            ]

    def answered(sid: str) -> list[tuple]:
        if shared_store:
            return read_answers(sid)
        h = histories.get(sid)
        if h is None:
            if len(histories) > 100_000:
                histories.clear()
            h = histories[sid] = read_answers(sid)
        return h

    def owned_session(sid: str, th: str | None) -> dict:
        """The session ``sid`` if the request's cookie holds its token (else 403)."""
        s = load_session(sid)
        if th is None or s["token_hash"] is None or not secrets.compare_digest(s["token_hash"], th):
            raise HTTPException(403, NOT_YOURS)
        return s

    def next_exposure(rows) -> int | None:
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
        view = {
            "session_id": s["id"],
            "study": name,
            "items": s["items"],
            "answered": [r[0] for r in rows],
            "total": len(s["items"]),
            "progress": len(rows),
            "done": done,
            "feedback": bool(opts["feedback"]),
            "exposure_ms": next_exposure(rows),
        }
        if done:
            view.update(completion(s))
        return view

    @app.get("/", response_class=PlainTextResponse)
    def root():
        return "ganworks visual Turing test server\n"

    @app.get("/study/{study}")
    def rater_page(study: str):
        if study != name:  # a crowd worker's mistyped link: a page with a sentence, not JSON
            return HTMLResponse(NO_STUDY_PAGE, status_code=404)
        return FileResponse(STATIC / "rater.html", media_type="text/html")

    @app.get("/owner/{study}")
    def owner_page(study: str):
        check_study(study)
        return FileResponse(STATIC / "owner.html", media_type="text/html")

    @app.get("/api/studies/{study}/config")
    def config(study: str):
        check_study(study)
        return {
            "study": name,
            "feedback": bool(opts["feedback"]),
            "exposure_ms": opts.get("exposure_ms"),
            "staircase": bool(opts.get("staircase")),
            "worker_params": list(worker_params),
            "tutorial": opts["tutorial"],
            "per_session": opts["per_session"],
        }

    def open_session(worker_id: str | None, th: str | None) -> tuple[dict, str | None]:
        """(the session view, a new token or None): this browser's session for ``worker_id`` again, or
        a new one; a worker id whose session another browser holds is refused (409)."""
        S = dbm.sessions
        if th is not None:
            with engine.connect() as c:
                row = c.execute(select(S.c.id, S.c.worker_id).where(S.c.study == name, S.c.token_hash == th)).first()
            if row is not None and row.worker_id == worker_id:
                view = session_view(load_session(row.id))
                view["resumed"] = True
                return view, None
        if worker_id is not None:
            with engine.connect() as c:
                if c.execute(select(S.c.id).where(S.c.study == name, S.c.worker_id == worker_id)).first():
                    raise HTTPException(409, OTHER_BROWSER)
        sid, new_token = secrets.token_urlsafe(24), secrets.token_urlsafe(32)
        items = make_items(random.Random(secrets.randbits(64)))
        row = {
            "id": sid,
            "study": name,
            "worker_id": worker_id,
            "items": json.dumps(items),
            "code": secrets.token_hex(4).upper(),
            "created": time.time(),
            "token_hash": hashlib.sha256(new_token.encode()).hexdigest(),
        }
        try:
            with engine.begin() as c:
                c.execute(insert(S).values(**row))
        except IntegrityError:  # the same worker id opened a session elsewhere a moment ago
            raise HTTPException(409, OTHER_BROWSER) from None
        view = session_view(load_session(sid))
        view["resumed"] = False
        return view, new_token

    @app.post("/api/studies/{study}/sessions")
    async def new_session(study: str, body: SessionIn, request: Request):
        check_study(study)
        view, new_token = await in_db(open_session, body.worker_id, _token_hash(request))
        resp = JSONResponse(view)
        if new_token is not None:
            resp.set_cookie(
                COOKIE,
                new_token,
                max_age=COOKIE_MAX_AGE,
                path=f"/api/studies/{name}",
                httponly=True,
                samesite="lax",
                secure=request.url.scheme == "https",
            )
        return resp

    @app.get("/api/studies/{study}/sessions/{sid}")
    async def get_session(study: str, sid: str, request: Request):
        check_study(study)
        th = _token_hash(request)
        return await in_db(lambda: session_view(owned_session(sid, th)))

    def store_vote(sid: str, th: str | None, body: VoteIn) -> dict:
        s = owned_session(sid, th)
        pos = s["pos"].get(body.image_id)
        if pos is None:
            raise HTTPException(404, "this image is not in this session")
        m = manifest[body.image_id]
        item = s["items"][pos]
        kind = "tutorial" if item["tutorial"] else ("attention" if m["kind"] == "attention" else "main")
        correct = body.answer == m["truth"]
        hist = answered(sid)
        row = {
            "vote_id": body.vote_id,
            "session_id": sid,
            "study": name,
            "image_id": body.image_id,
            "position": pos,
            "source": m["source"],
            "truth": m["truth"],
            "kind": kind,
            "answer": body.answer,
            "correct": correct,
            "latency_ms": body.latency_ms,
            "exposure_ms": next_exposure(hist),
            "created": time.time(),
        }
        duplicate = False
        try:
            with engine.begin() as c:
                c.execute(insert_vote, row)
        except IntegrityError:
            with engine.connect() as c:
                old = c.execute(select(dbm.votes).where(dbm.votes.c.vote_id == body.vote_id)).first()
            if old is None:
                raise HTTPException(409, "this image was already answered in this session") from None
            if (old.session_id, old.image_id, old.answer) != (sid, body.image_id, body.answer):
                raise HTTPException(409, "this vote id was already used for another vote") from None
            duplicate, correct = True, bool(old.correct)
        else:
            hist.append((body.image_id, kind, correct))
        n = len(hist)
        out = {
            "stored": True,
            "duplicate": duplicate,
            "progress": n,
            "total": len(s["items"]),
            "done": n >= len(s["items"]),
            "exposure_ms": next_exposure(hist),
        }
        if opts["feedback"] or item["tutorial"]:
            out.update(correct=correct, truth=m["truth"])
        if out["done"]:
            out.update(completion(s))
        return out

    @app.post("/api/studies/{study}/sessions/{sid}/votes")
    async def vote(study: str, sid: str, body: VoteIn, request: Request):
        t0 = time.perf_counter()
        check_study(study)
        out = await in_db(store_vote, sid, _token_hash(request), body)
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
    async def results(study: str, request: Request, include_failed: bool = False):
        check_study(study)
        check_owner(request)
        from ganworks.turing.stats import summarize

        rows = await in_db(dbm.read_votes, engine, name)
        # the bootstrap is CPU work: a thread of its own, not the database's
        return _json_safe(
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: summarize(study_obj(), rows, exclude_failed=not include_failed, reps=reps)
            )
        )

    @app.get("/api/studies/{study}/votes.csv")
    async def votes_csv(study: str, request: Request):
        check_study(study)
        check_owner(request)
        return Response(votes_to_csv(await in_db(dbm.read_votes, engine, name)), media_type="text/csv")

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
