"""Vote storage through SQLAlchemy: a SQLite file in the study folder by default, any URL otherwise.

SQLite runs in WAL mode with a busy timeout; ``synchronous`` is NORMAL by default (in WAL mode a
committed transaction survives a killed process — kill -9 — and is lost only on an OS crash or power
cut; ``sync="full"`` fsyncs every commit to survive those too).  Within one server process every
write goes through one lock, so SQLite sees a single writer and never has to retry.

Tables: ``sessions`` (one per rater; the item list fixed at creation; one per worker per study) and
``votes`` (primary key: the client-made vote id, so a retried request is stored once; unique
(session, image), so an image is answered once per session).
"""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import (Boolean, Column, Float, Integer, MetaData, String, Table, Text, UniqueConstraint,
                        create_engine, event)

metadata = MetaData()

sessions = Table(
    "sessions", metadata,
    Column("id", String(64), primary_key=True),
    Column("study", String(64), nullable=False, index=True),
    Column("worker_id", String(128), nullable=True),
    Column("items", Text, nullable=False),
    Column("code", String(32), nullable=False),
    Column("created", Float, nullable=False),
    UniqueConstraint("study", "worker_id", name="one_session_per_worker"),
)

votes = Table(
    "votes", metadata,
    Column("vote_id", String(64), primary_key=True),
    Column("session_id", String(64), nullable=False, index=True),
    Column("study", String(64), nullable=False, index=True),
    Column("image_id", String(16), nullable=False),
    Column("position", Integer, nullable=False),
    Column("source", String(64), nullable=False),
    Column("truth", String(4), nullable=False),
    Column("kind", String(12), nullable=False),
    Column("answer", String(4), nullable=False),
    Column("correct", Boolean, nullable=False),
    Column("latency_ms", Integer, nullable=True),
    Column("exposure_ms", Integer, nullable=True),
    Column("created", Float, nullable=False),
    UniqueConstraint("session_id", "image_id", name="one_answer_per_image"),
)


def default_url(study_dir) -> str:
    return f"sqlite:///{Path(study_dir).resolve() / 'votes.sqlite'}"


def make_engine(url: str, busy_timeout_ms: int = 10000, sync: str = "normal"):
    """An engine for ``url``; SQLite gets WAL, a busy timeout and the ``sync`` level."""
    if url.startswith("sqlite"):
        if sync not in ("normal", "full"):
            raise ValueError("sync must be 'normal' or 'full'")
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
                               pool_size=8, max_overflow=8)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cur.execute(f"PRAGMA synchronous={sync.upper()}")
            cur.close()
    else:
        engine = create_engine(url, pool_pre_ping=True)
    metadata.create_all(engine)
    engine.write_lock = threading.Lock() if url.startswith("sqlite") else _NoLock()
    return engine


class _NoLock:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def read_votes(engine, study: str) -> list[dict]:
    """Every vote of ``study`` as dicts, oldest first."""
    from sqlalchemy import select

    with engine.connect() as c:
        rows = c.execute(select(votes).where(votes.c.study == study).order_by(votes.c.created, votes.c.vote_id))
        return [dict(r._mapping) for r in rows]
