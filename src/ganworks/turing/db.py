"""Vote storage through SQLAlchemy: a SQLite file in the study folder by default, PostgreSQL (or any
SQLAlchemy URL) with ``--db``.

SQLite runs in WAL mode with a busy timeout; ``synchronous`` is NORMAL by default (in WAL mode a
committed transaction survives a killed process — kill -9 — and is lost only on an OS crash or power
cut; ``sync="full"`` fsyncs every commit to survive those too).

Tables: ``sessions`` (one per rater; the item list fixed at creation; one per worker per study; the
SHA-256 of the browser's session token, so only the browser that opened a session can read or vote
in it) and ``votes`` (primary key: the client-made vote id, so a retried request is stored once;
unique (session, image), so an image is answered once per session).

Schema versions: the table ``ganworks_schema`` holds the version of the tables beside it.  Opening a
store checks it: an empty database gets the current tables; an older version is brought up to date
by the steps in ``MIGRATIONS`` (each a list of statements, run in one transaction); a database made by
a newer ganworks, or whose tables do not have the columns their version says, is refused with one
line (:class:`~ganworks.errors.ConfigError`) and left untouched.  Version 1 is the unversioned schema of
ganworks before session tokens (no ``token_hash``): its sessions keep their votes and results, but no
browser can claim them again.
"""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from ganworks.errors import ConfigError

SCHEMA_VERSION = 2

metadata = MetaData()

schema_table = Table(
    "ganworks_schema",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("version", Integer, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("study", String(64), nullable=False, index=True),
    Column("worker_id", String(128), nullable=True),
    Column("items", Text, nullable=False),
    Column("code", String(32), nullable=False),
    Column("created", Float, nullable=False),
    Column("token_hash", String(64), nullable=True, index=True),
    UniqueConstraint("study", "worker_id", name="one_session_per_worker"),
)

votes = Table(
    "votes",
    metadata,
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

# the columns of each table at each version (to recognise a version and refuse a mismatch)
_V1 = {"sessions": {"id", "study", "worker_id", "items", "code", "created"}, "votes": {c.name for c in votes.columns}}
COLUMNS = {1: _V1, 2: {"sessions": _V1["sessions"] | {"token_hash"}, "votes": _V1["votes"]}}
# statements that bring version k-1 to version k
MIGRATIONS = {
    2: [
        "ALTER TABLE sessions ADD COLUMN token_hash VARCHAR(64)",
        "CREATE INDEX ix_sessions_token_hash ON sessions (token_hash)",
    ],
}


def default_url(study_dir) -> str:
    return f"sqlite:///{Path(study_dir).resolve() / 'votes.sqlite'}"


def _safe_url(url: str) -> str:
    """The URL without its password (for messages)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for a message
        return "the --db URL"


def normalize_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3, the driver of the ``postgres`` extra."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, busy_timeout_ms: int = 10000, sync: str = "normal", migrate: bool = True):
    """An engine for ``url`` whose schema is checked (and created or migrated when ``migrate``).

    SQLite gets WAL, a busy timeout and the ``sync`` level.  A URL whose driver is not installed, a
    server that cannot be reached or a schema that does not fit end in a :class:`ConfigError`."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        if sync not in ("normal", "full"):
            raise ValueError("sync must be 'normal' or 'full'")
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
            pool_size=8,
            max_overflow=8,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cur.execute(f"PRAGMA synchronous={sync.upper()}")
            cur.close()
            dbapi_conn.isolation_level = None  # transactions begin where SQLAlchemy says (below), DDL included

        @event.listens_for(engine, "begin")
        def _begin(conn):
            conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))
    else:
        try:
            engine = create_engine(url, pool_pre_ping=True, pool_size=16, max_overflow=16)
        except ModuleNotFoundError as e:
            raise ConfigError(
                f"--db {_safe_url(url)}: its database driver is not installed ({e.name}); "
                "for PostgreSQL: pip install 'ganworks[postgres]' (psycopg 3)"
            ) from None
        except SQLAlchemyError as e:
            raise ConfigError(f"--db {_safe_url(url)}: not a usable SQLAlchemy URL ({type(e).__name__})") from None
    ensure_schema(engine, url, migrate=migrate)
    return engine


def schema_version(conn) -> int | None:
    """The version of the ganworks tables in ``conn``'s database: None when there are none."""
    names = set(inspect(conn).get_table_names())
    if schema_table.name in names:
        row = conn.execute(select(schema_table.c.version).where(schema_table.c.name == "turing")).first()
        if row is not None:
            return int(row.version)
    if "sessions" in names or "votes" in names:
        return 1  # tables from before versioning
    return None


def _check_columns(conn, version: int, where: str) -> None:
    insp = inspect(conn)
    names = set(insp.get_table_names())
    for table, want in COLUMNS[version].items():
        have = {c["name"] for c in insp.get_columns(table)} if table in names else set()
        if have != want:
            missing, extra = sorted(want - have), sorted(have - want)
            raise ConfigError(
                f"{where}: table {table!r} does not match ganworks vote schema version {version} "
                f"(missing columns {missing}, unexpected {extra}); it was not made by this ganworks: "
                "use another --db (an empty database or a new file)"
            )


def ensure_schema(engine, url: str, migrate: bool = True) -> int:
    """Check, create or migrate the schema (see the module's docstring); returns the version found.

    Several server processes may open the same empty database at once: a creation that loses the race
    (a table or row already there) is retried after checking again."""
    where = _safe_url(url)
    try:
        with engine.connect():
            pass
    except DBAPIError as e:
        raise ConfigError(f"--db {where}: cannot connect to the database ({_first_line(e.orig)})") from None
    for attempt in range(5):
        try:
            # BEGIN IMMEDIATE: SQLite's write lock from the start, so a second process waits for the first
            with engine.connect().execution_options(sqlite_begin="BEGIN IMMEDIATE") as c, c.begin():
                if c.dialect.name == "postgresql":  # one process at a time creates or migrates
                    c.execute(text("SELECT pg_advisory_xact_lock(7243011)"))
                v = schema_version(c)
                if v is None:
                    if not migrate:
                        raise ConfigError(f"{where}: holds no votes (no ganworks tables)")
                    metadata.create_all(c)
                    c.execute(schema_table.insert().values(name="turing", version=SCHEMA_VERSION))
                    return SCHEMA_VERSION
                if v > SCHEMA_VERSION:
                    raise ConfigError(
                        f"{where}: its vote tables are schema version {v}, made by a newer ganworks "
                        f"(this one reads up to version {SCHEMA_VERSION}); upgrade ganworks"
                    )
                if v not in COLUMNS:
                    raise ConfigError(f"{where}: unknown vote schema version {v}")
                _check_columns(c, v, where)
                if v < SCHEMA_VERSION and migrate:
                    for k in range(v + 1, SCHEMA_VERSION + 1):
                        for stmt in MIGRATIONS[k]:
                            c.execute(text(stmt))
                    schema_table.create(c, checkfirst=True)
                    c.execute(schema_table.delete().where(schema_table.c.name == "turing"))
                    c.execute(schema_table.insert().values(name="turing", version=SCHEMA_VERSION))
                    _check_columns(c, SCHEMA_VERSION, where)
                    return SCHEMA_VERSION
                return v
        except DBAPIError as e:  # most likely another process created the tables at the same moment
            if attempt == 4:
                raise ConfigError(f"--db {where}: could not set up the vote tables ({_first_line(e.orig)})") from None
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _first_line(e) -> str:
    lines = str(e).strip().splitlines()
    return lines[0][:200] if lines else type(e).__name__


def read_votes(engine, study: str) -> list[dict]:
    """Every vote of ``study`` as dicts, oldest first."""
    with engine.connect() as c:
        rows = c.execute(select(votes).where(votes.c.study == study).order_by(votes.c.created, votes.c.vote_id))
        return [dict(r._mapping) for r in rows]
