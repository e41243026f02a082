"""Load benchmark of the visual Turing test server: many concurrent simulated raters on loopback.

Starts ``ganworks turing serve`` (uvicorn, default SQLite store) on 127.0.0.1 as a subprocess and runs
``--raters`` simulated raters with asyncio + httpx.  Each rater opens a session (its own worker id),
then answers every image, waiting a random think time before each answer (people take seconds per
image).  A vote is retried with the same client-made vote id on a connection error or a 5xx, with
backoff, bounded in tries and time.  Each rater's client keeps its cookies, as a browser does: the
session token the server sets when the session opens is what lets the rater vote.  Measured: votes/s,
p50/p99 latency of acknowledged vote requests, separately for the ramp-up (raters still arriving and
opening sessions) and the steady state after it, the latency of opening a session, the machine's load
average during the run, and, read back from the database after the run, that every acknowledged vote
is stored, exactly once.  ``--db URL`` runs against another store (PostgreSQL), which is emptied first.

Run 2 (``--kill``): the same, but the server is killed with SIGKILL mid-run and restarted on the same
port; every acknowledged vote must still be there and none twice.

    PYTHONPATH=src python benchmarks/turing_load.py --raters 1000

Only loopback traffic; bounded by --raters, per-request timeouts, retry limits and --max-seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
TOKEN = "load-benchmark-token"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_study(root: Path, args) -> Path:
    """A study of MNIST test images against an .npz of 'generated' images (blurred, noised MNIST
    train images: the server's load does not depend on what the pixels show)."""
    from ganworks.metrics.datasets import load_split
    from ganworks.turing.study import create_study

    x, _, _ = load_split("mnist", "train", args.data_root)
    rng = np.random.default_rng(0)
    fake = x[:400].numpy().astype(np.float32)
    fake = np.clip(
        0.5 * fake + 0.25 * np.roll(fake, 1, -1) + 0.25 * np.roll(fake, 1, -2) + rng.normal(0, 20, fake.shape), 0, 255
    ).astype(np.uint8)
    np.savez(root / "fakes.npz", images=fake)
    d = root / "load-study"
    create_study(
        d,
        "mnist:test",
        [str(root / "fakes.npz")],
        images_per_source=200,
        per_session=args.per_session,
        tutorial=2,
        attention=1,
        seed=0,
        device="cpu",
        data_root=args.data_root,
        overwrite=True,
    )
    return d


class Server:
    def __init__(self, study: Path, port: int, sync: str, workers: int = 1, db: str | None = None):
        self.study, self.port, self.sync, self.workers, self.db, self.proc = study, port, sync, workers, db, None

    def start(self, timeout=60):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ganworks.cli",
                "turing",
                "serve",
                str(self.study),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--token",
                TOKEN,
                "--sync",
                self.sync,
                "--workers",
                str(self.workers),
                *(["--db", self.db] if self.db else []),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        t0 = time.time()
        while time.time() - t0 < timeout:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return time.time() - t0
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("server exited at start-up")
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def kill9(self):
        """SIGKILL the server: its process group (the uvicorn supervisor and any worker processes)."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


async def run_load(base: str, study: str, args, rater_ids, t_wall0: float):
    """The raters ``rater_ids`` in this process; times are relative to the wall clock ``t_wall0``."""
    import httpx

    acked: dict = {}  # vote_id -> (session_id, image_id, answer)
    lat, server_ms, lag, session_lat = [], [], [], []
    errors = {
        "retries": 0,
        "gave_up": 0,
        "sessions_failed": 0,
        "duplicates_reported": 0,
        "http_4xx": 0,
        "retry_causes": {},
    }
    # one client (one keep-alive connection) per rater, as browsers would: httpx's shared pool costs
    # O(connections) per request, which with 1,000 connections makes the load generator the bottleneck
    limits = httpx.Limits(max_connections=2, max_keepalive_connections=1)
    t_start = time.perf_counter() - (time.time() - t_wall0)  # perf_counter value at t_wall0
    deadline = t_start + args.max_seconds

    async def post(client, url, body):
        for k in range(args.max_tries):
            if time.perf_counter() > deadline:
                break
            t0 = time.perf_counter()
            try:
                r = await client.post(url, json=body)
            except httpx.HTTPError as e:
                r, cause = None, type(e).__name__
            if r is not None and r.status_code < 500:
                return r, time.perf_counter() - t0
            if r is not None:
                cause = f"HTTP {r.status_code}"
            errors["retries"] += 1
            errors["retry_causes"][cause] = errors["retry_causes"].get(cause, 0) + 1
            await asyncio.sleep(min(2.0, 0.1 * 2**k) * (0.5 + random.random()))
        return None, None

    async def rater(i: int):
        await asyncio.sleep(random.uniform(0, args.ramp))
        # verify=False: plain http on loopback; it spares each client loading a CA bundle (~tens of ms of CPU)
        async with httpx.AsyncClient(
            limits=limits, timeout=httpx.Timeout(args.request_timeout), verify=False
        ) as client:
            await rater_session(i, client)

    async def rater_session(i: int, client):
        r, dt = await post(client, f"{base}/api/studies/{study}/sessions", {"worker_id": f"load-{i}"})
        if r is None or r.status_code != 200:
            errors["sessions_failed"] += 1
            return
        session_lat.append((time.perf_counter() - t_start, dt))
        s = r.json()
        sid = s["session_id"]
        done = set(s["answered"])
        for it in s["items"]:
            if it["image_id"] in done:
                continue
            await asyncio.sleep(random.uniform(*args.think))
            body = {
                "vote_id": os.urandom(16).hex(),
                "image_id": it["image_id"],
                "answer": random.choice(("real", "fake")),
                "latency_ms": 1000,
            }
            r, dt = await post(client, f"{base}/api/studies/{study}/sessions/{sid}/votes", body)
            if r is None:
                errors["gave_up"] += 1
                continue
            if r.status_code != 200:
                errors["http_4xx"] += 1
                continue
            acked[body["vote_id"]] = (sid, it["image_id"], body["answer"])
            errors["duplicates_reported"] += r.json()["duplicate"]
            lat.append((time.perf_counter() - t_start, dt))
            st = r.headers.get("server-timing", "")
            if "dur=" in st:
                server_ms.append(float(st.split("dur=")[1]))

    async def monitor():  # event-loop lag of the load generator itself (how late a 50 ms sleep wakes)
        while not stop.is_set():
            t0 = time.perf_counter()
            await asyncio.sleep(0.05)
            lag.append(time.perf_counter() - t0 - 0.05)

    stop = asyncio.Event()
    mon = asyncio.create_task(monitor())
    tasks = [asyncio.create_task(rater(i)) for i in rater_ids]
    await asyncio.gather(*tasks)
    stop.set()
    await mon
    return {
        "acked": acked,
        "lat": lat,
        "errors": errors,
        "server_ms": server_ms,
        "lag": lag,
        "session_lat": session_lat,
    }


def _generator_process(base, study, args, rater_ids, t_wall0):
    random.seed(rater_ids[0] if rater_ids else 0)
    return asyncio.run(run_load(base, study, args, rater_ids, t_wall0))


def run_all(base: str, study: str, args, kill_at, server: Server):
    """Raters split over ``--generators`` processes (each its own event loop); the parent kills and
    restarts the server at ``kill_at`` when asked."""
    import multiprocessing as mp
    import threading
    from concurrent.futures import ProcessPoolExecutor

    t_wall0 = time.time() + 1.0
    events = {}

    def killer():
        time.sleep(max(0.0, t_wall0 + kill_at - time.time()))
        events["killed_at_s"] = round(time.time() - t_wall0, 2)
        server.kill9()
        time.sleep(args.restart_after)
        events["restart_seconds"] = round(server.start(), 2)
        events["restarted_at_s"] = round(time.time() - t_wall0, 2)

    loads, sampling = [], threading.Event()

    def sample_load():  # the machine is shared: its 1-minute load average every 5 s of the run
        while not sampling.wait(5.0):
            loads.append(round(os.getloadavg()[0], 2))

    sampler = threading.Thread(target=sample_load, daemon=True)
    th = None
    parts = [list(range(k, args.raters, args.generators)) for k in range(args.generators)]
    with ProcessPoolExecutor(args.generators, mp_context=mp.get_context("fork")) as ex:
        futs = [ex.submit(_generator_process, base, study, args, part, t_wall0) for part in parts]
        sampler.start()  # threads only after the fork
        if kill_at is not None:  # started after the fork
            th = threading.Thread(target=killer, daemon=True)
            th.start()
        outs = [f.result() for f in futs]
    if th is not None:
        th.join(60)
    sampling.set()
    sampler.join(10)
    wall = time.time() - t_wall0
    acked, lat, server_ms, lag, session_lat = {}, [], [], [], []
    errors = {
        "retries": 0,
        "gave_up": 0,
        "sessions_failed": 0,
        "duplicates_reported": 0,
        "http_4xx": 0,
        "retry_causes": {},
    }
    for o in outs:
        acked.update(o["acked"])
        lat += o["lat"]
        server_ms += o["server_ms"]
        lag += o["lag"]
        session_lat += o["session_lat"]
        for k, v in o["errors"].items():
            if k == "retry_causes":
                for c, n in v.items():
                    errors[k][c] = errors[k].get(c, 0) + n
            else:
                errors[k] += v
    if kill_at is not None:
        events["acked_before_kill"] = sum(1 for t, _ in lat if t < events.get("killed_at_s", 0))
    extra = {
        "server_handler_ms": server_ms,
        "client_loop_lag_s": lag,
        "session_lat": session_lat,
        "loadavg_during": loads,
    }
    return acked, sorted(lat), errors, events, wall, extra


def check_store(url: str, study: str, acked: dict) -> dict:
    from sqlalchemy import create_engine, text

    eng = create_engine(url)
    try:
        with eng.connect() as c:
            rows = c.execute(
                text("SELECT vote_id, session_id, image_id, answer FROM votes WHERE study = :s"), {"s": study}
            ).all()
            dup_pairs = c.execute(
                text(
                    "SELECT COUNT(*) FROM (SELECT session_id, image_id FROM votes WHERE study = :s "
                    "GROUP BY session_id, image_id HAVING COUNT(*) > 1) AS d"
                ),
                {"s": study},
            ).scalar()
            integrity = (
                c.execute(text("PRAGMA integrity_check")).scalar()
                if eng.dialect.name == "sqlite"
                else "n/a (not SQLite)"
            )
    finally:
        eng.dispose()
    stored = {r[0]: (r[1], r[2], r[3]) for r in rows}
    missing = [v for v in acked if v not in stored]
    mismatched = [v for v in acked if v in stored and stored[v] != acked[v]]
    return {
        "stored": len(rows),
        "acknowledged": len(acked),
        "acknowledged_missing": len(missing),
        "acknowledged_mismatched": len(mismatched),
        "stored_not_acknowledged": len(set(stored) - set(acked)),
        "duplicate_vote_ids": len(rows) - len(stored),
        "duplicate_session_image_pairs": dup_pairs,
        "sqlite_integrity": integrity,
    }


def empty_store(url: str) -> None:
    """Drop the ganworks tables of a server database (the benchmark's own, named by --db)."""
    from sqlalchemy import create_engine, text

    eng = create_engine(url)
    with eng.begin() as c:
        for t in ("votes", "sessions", "ganworks_schema"):
            c.execute(text(f"DROP TABLE IF EXISTS {t}"))
    eng.dispose()


def summarize(name, acked, lat, errors, events, wall, store, args, load_before, load_after):
    t = np.array([x[0] for x in lat]) if lat else np.zeros(0)
    ms = np.array([x[1] for x in lat]) * 1000 if lat else np.zeros(0)
    first, last = (float(t.min()), float(t.max())) if len(t) else (0.0, 0.0)

    def pct(q):
        return round(float(np.percentile(ms, q)), 1) if len(ms) else None

    out = {
        "run": name,
        "raters": args.raters,
        "votes_acknowledged": len(acked),
        "wall_seconds": round(wall, 2),
        "votes_per_s": round(len(acked) / max(1e-9, last - first), 1) if len(t) > 1 else None,
        "latency_ms": {
            "p50": pct(50),
            "p90": pct(90),
            "p99": pct(99),
            "max": round(float(ms.max()), 1) if len(ms) else None,
        },
        "client_errors": errors,
        "store": store,
        "events": events,
        "ok": store["acknowledged_missing"] == 0
        and store["acknowledged_mismatched"] == 0
        and store["duplicate_vote_ids"] == 0
        and store["duplicate_session_image_pairs"] == 0,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
    }

    def phase(mask):
        x = ms[mask]
        return {
            "votes": int(len(x)),
            "p50": round(float(np.percentile(x, 50)), 1) if len(x) else None,
            "p99": round(float(np.percentile(x, 99)), 1) if len(x) else None,
        }

    if len(t):  # ramp-up: raters still arriving and opening sessions; steady: every rater has arrived
        out["latency_ms_ramp_up"] = dict(phase(t < args.ramp), seconds=[0, args.ramp])
        out["latency_ms_steady"] = dict(phase(t >= args.ramp), seconds=[args.ramp, round(float(t.max()), 1)])
    if len(t):  # after the arrivals (sessions being opened) have settled, and p99 per 10 s of the run
        late = ms[t > args.ramp + 10]
        out["latency_ms_after_ramp"] = {
            "from_s": args.ramp + 10,
            "votes": int(len(late)),
            "p50": round(float(np.percentile(late, 50)), 1) if len(late) else None,
            "p99": round(float(np.percentile(late, 99)), 1) if len(late) else None,
        }
        out["latency_p99_ms_per_10s"] = [
            round(float(np.percentile(ms[(t >= a) & (t < a + 10)], 99)), 1) if ((t >= a) & (t < a + 10)).any() else None
            for a in range(0, int(t.max()) + 10, 10)
        ]
    if events.get("killed_at_s") is not None:  # latency away from the outage
        k0, k1 = events["killed_at_s"], events.get("restarted_at_s", events["killed_at_s"]) + 3
        calm = ms[(t < k0) | (t > k1)] if len(t) else ms
        out["latency_ms_outside_outage"] = (
            {"p50": round(float(np.percentile(calm, 50)), 1), "p99": round(float(np.percentile(calm, 99)), 1)}
            if len(calm)
            else None
        )
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--raters", type=int, default=1000)
    p.add_argument("--per-session", type=int, default=20, help="scored images per session (+2 tutorial, +1 check)")
    p.add_argument(
        "--think",
        type=float,
        nargs=2,
        default=(2.0, 4.0),
        metavar=("MIN", "MAX"),
        help="seconds a rater looks at an image before answering (uniform)",
    )
    p.add_argument("--ramp", type=float, default=10.0, help="raters arrive uniformly over this many seconds")
    p.add_argument("--request-timeout", type=float, default=10.0)
    p.add_argument("--max-tries", type=int, default=20)
    p.add_argument("--max-seconds", type=float, default=400.0, help="hard bound on one run")
    p.add_argument("--kill-at", type=float, default=30.0, help="seconds into run 2 to SIGKILL the server")
    p.add_argument("--restart-after", type=float, default=1.0)
    p.add_argument("--sync", default="normal", choices=["normal", "full"])
    p.add_argument("--skip-kill", action="store_true")
    p.add_argument("--server-workers", type=int, default=1, help="uvicorn worker processes of the server")
    p.add_argument("--generators", type=int, default=2, help="load-generator processes (each an asyncio loop)")
    p.add_argument(
        "--db",
        default=None,
        help="SQLAlchemy URL of the store (default: the study's SQLite file); "
        "its ganworks tables are dropped before each run",
    )
    p.add_argument("--data-root", default=os.environ.get("GANWORKS_DATA"))
    p.add_argument("--out", default=str(RESULTS / "turing_load_cpu"))
    args = p.parse_args(argv)
    random.seed(0)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.raters + 256)), hard))

    import fastapi
    import httpx
    import sqlalchemy
    import uvicorn

    runs = []
    with tempfile.TemporaryDirectory(prefix="turing-load-") as tmp:
        study = make_study(Path(tmp), args)
        for name, kill in (("steady", None), ("kill9", args.kill_at)):
            if kill is not None and args.skip_kill:
                continue
            for f in study.glob("votes.sqlite*"):
                f.unlink()
            if args.db:
                empty_store(args.db)
            url = args.db or f"sqlite:///{study / 'votes.sqlite'}"
            port = free_port()
            server = Server(study, port, args.sync, args.server_workers, args.db)
            server.start()
            try:
                load_before = [round(x, 2) for x in os.getloadavg()]
                acked, lat, errors, events, wall, extra = run_all(
                    f"http://127.0.0.1:{port}", study.name, args, kill, server
                )
                load_after = [round(x, 2) for x in os.getloadavg()]
            finally:
                server.stop()
            store = check_store(url, study.name, acked)
            r = summarize(name, acked, lat, errors, events, wall, store, args, load_before, load_after)
            sm, lg = np.array(extra["server_handler_ms"]), np.array(extra["client_loop_lag_s"]) * 1000
            r["server_vote_handler_ms"] = (
                {"p50": round(float(np.percentile(sm, 50)), 2), "p99": round(float(np.percentile(sm, 99)), 2)}
                if len(sm)
                else None
            )
            sl = np.array([x[1] for x in extra["session_lat"]]) * 1000
            r["session_open_ms"] = (
                {
                    "sessions": int(len(sl)),
                    "p50": round(float(np.percentile(sl, 50)), 1),
                    "p99": round(float(np.percentile(sl, 99)), 1),
                }
                if len(sl)
                else None
            )
            r["loadavg_1min_during"] = extra["loadavg_during"]
            r["client_event_loop_lag_ms"] = (
                {"p50": round(float(np.percentile(lg, 50)), 1), "p99": round(float(np.percentile(lg, 99)), 1)}
                if len(lg)
                else None
            )
            print(json.dumps(r), flush=True)
            runs.append(r)

    result = {
        "benchmark": "turing_load",
        "device": f"{cpu_name()} ({os.cpu_count()} cores, shared)",
        "note": "server and load generator on the same machine, which is shared with other people's jobs "
        "(see the load averages: before, every 5 s during, after each run); "
        "latency is measured by the client (send to response), so it includes client-side scheduling",
        "settings": {
            "raters": args.raters,
            "items_per_session": args.per_session + 3,
            "think_seconds": list(args.think),
            "ramp_seconds": args.ramp,
            "generator_processes": args.generators,
            "request_timeout_s": args.request_timeout,
            "max_tries": args.max_tries,
            "server": f"ganworks turing serve: uvicorn (uvloop, httptools), {args.server_workers} worker "
            "process(es), keep-alive 75 s, "
            "FastAPI async vote endpoint, "
            + (
                f"store {_backend(args.db)}, database calls in a thread pool (several threads)"
                if args.db
                else f"SQLite WAL, synchronous={args.sync.upper()}, database calls in one thread per "
                "process (its single writer), busy_timeout 10 s"
            ),
            "cookies": "each rater's client keeps its cookies (the session token)",
            "kill_at_s": None if args.skip_kill else args.kill_at,
            "restart_after_s": args.restart_after,
        },
        "versions": {
            "python": platform.python_version(),
            "fastapi": fastapi.__version__,
            "uvicorn": uvicorn.__version__,
            "sqlalchemy": sqlalchemy.__version__,
            "httpx": httpx.__version__,
            "sqlite": sqlite3.sqlite_version,
        },
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "runs": runs,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    out.with_suffix(".md").write_text(to_markdown(result))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")
    return 0 if all(r["ok"] for r in runs) else 1


def _backend(url: str) -> str:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return f"{u.get_backend_name()} on {u.host or 'a local socket'}"


def _pp(d):
    return f"{d['p50']} / {d['p99']}" if d else "–"


def to_markdown(res: dict) -> str:
    s = res["settings"]
    lines = [
        f"# Visual Turing test server under load ({res['date_utc']})",
        "",
        f"Device: {res['device']}. {res['note']}.",
        "",
        f"Settings: {s['raters']} concurrent raters on loopback (asyncio + httpx in {s.get('generator_processes', 1)} "
        f"process(es), one connection per rater), {s['items_per_session']} "
        f"answers each, think time uniform {s['think_seconds'][0]}–{s['think_seconds'][1]} s, arrivals over "
        f"{s['ramp_seconds']} s; server: {s['server']}.",
        "",
        "| run | votes acknowledged | votes/s | p50 ms | p99 ms | max ms | server handler p50/p99 ms | client loop lag p50/p99 ms | stored | ack. missing | duplicates | retries | load avg (1/5/15 min) before → after |",
        "|---|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---|",
    ]
    for r in res["runs"]:
        st = r["store"]
        lines.append(
            f"| {r['run']} | {r['votes_acknowledged']} | {r['votes_per_s']} | {r['latency_ms']['p50']} | "
            f"{r['latency_ms']['p99']} | {r['latency_ms']['max']} | "
            f"{_pp(r.get('server_vote_handler_ms'))} | {_pp(r.get('client_event_loop_lag_ms'))} | {st['stored']} | {st['acknowledged_missing']} | "
            f"{st['duplicate_vote_ids'] + st['duplicate_session_image_pairs']} | {r['client_errors']['retries']} | "
            f"{r['loadavg_before']} → {r['loadavg_after']} |"
        )
    for r in res["runs"]:
        if r["events"]:
            e = r["events"]
            lines += [
                "",
                f"Run `{r['run']}`: server killed with SIGKILL at {e.get('killed_at_s')} s "
                f"({e.get('acked_before_kill')} votes acknowledged by then), restarted at {e.get('restarted_at_s')} s "
                f"(start-up {e.get('restart_seconds')} s). Stored votes not acknowledged to the client "
                f"(committed, response lost): {r['store']['stored_not_acknowledged']}. "
                f"Latency outside the outage: {r.get('latency_ms_outside_outage')}.",
            ]
    lines += [
        "",
        "| run | ramp-up: votes, p50 / p99 ms | steady state: votes, p50 / p99 ms | opening a session p50 / p99 ms | "
        "1-min load average during the run (every 5 s) |",
        "|---|---|---|---|---|",
    ]
    for r in res["runs"]:
        ru, st = r.get("latency_ms_ramp_up") or {}, r.get("latency_ms_steady") or {}
        lines.append(
            f"| {r['run']} | {ru.get('votes')}: {ru.get('p50')} / {ru.get('p99')} | "
            f"{st.get('votes')}: {st.get('p50')} / {st.get('p99')} | {_pp(r.get('session_open_ms'))} | "
            f"{r.get('loadavg_1min_during')} |"
        )
    for r in res["runs"]:
        if r.get("latency_ms_after_ramp"):
            a = r["latency_ms_after_ramp"]
            lines += [
                "",
                f"Run `{r['run']}`, votes after {a['from_s']} s (arrivals settled): {a['votes']} votes, "
                f"p50 {a['p50']} ms, p99 {a['p99']} ms. p99 per 10 s of the run (ms): {r['latency_p99_ms_per_10s']}.",
            ]
    lines += [
        "",
        "All runs: every acknowledged vote stored and none twice: "
        + ("yes" if all(r["ok"] for r in res["runs"]) else "**NO**")
        + ".",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
