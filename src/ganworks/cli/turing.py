"""``ganworks turing create | serve | results``: a visual Turing test (HYPE∞) of generated images."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import ConfigError
from ..extras import require
from ..turing.study import DEFAULTS
from .common import add_data_root, add_device


def add_parser(subparsers) -> None:
    """Add the ``turing`` command (with create / serve / results) to ``subparsers``."""
    t = subparsers.add_parser(
        "turing",
        help="visual Turing test: people tell real from generated images",
        description="A web study where raters tell real images from generated ones (HYPE∞ with bootstrap CIs).",
    )
    sub = t.add_subparsers(dest="turing_command", required=True, metavar="ACTION")
    D = DEFAULTS

    c = sub.add_parser("create", help="build a study folder from a real and one or more generated sources")
    c.add_argument("name", metavar="NAME", help="the study folder to create (its last part is the study's name)")
    c.add_argument(
        "--real",
        required=True,
        metavar="SPEC",
        help="real images: 'mnist:test', 'imagefolder:DIR:test', an image folder or an .npz",
    )
    c.add_argument(
        "--fake",
        action="append",
        required=True,
        metavar="SPEC",
        help="generated images: a run directory or checkpoint, an image folder or an .npz (repeatable)",
    )
    c.add_argument("--images-per-source", type=int, default=D["images_per_source"])
    c.add_argument("--per-session", type=int, default=D["per_session"], help="scored images per rater session")
    c.add_argument("--real-fraction", type=float, default=D["real_fraction"], help="share of real images (0.5 = 1:1)")
    c.add_argument("--feedback", action="store_true", help="tell raters after each answer whether they were right")
    c.add_argument("--exposure-ms", type=int, default=None, help="hide each image after this many ms")
    c.add_argument(
        "--staircase",
        action="store_true",
        help="adapt the exposure per rater (2-down-1-up staircase, HYPE-time); needs --exposure-ms",
    )
    c.add_argument("--tutorial", type=int, default=D["tutorial"], help="unscored images with feedback at the start")
    c.add_argument("--attention", type=int, default=D["attention"], help="attention checks (noise images) per session")
    c.add_argument(
        "--top-percent",
        type=float,
        default=None,
        help="keep the top K%% of a generator's samples by per-image Inception Score",
    )
    c.add_argument("--classifier", default=None, help="score --top-percent with this trained classifier file")
    c.add_argument("--inception-weights", default=None)
    c.add_argument(
        "--scores",
        default=None,
        metavar="JSON",
        help='IS/FID per generator label for the rank correlation: {"label": {"FID": 30.1}}',
    )
    c.add_argument("--size", type=int, default=None, help="image side in pixels (default: the real images')")
    c.add_argument("--seed", type=int, default=D["seed"])
    c.add_argument("--overwrite", action="store_true")
    _common(c)
    c.set_defaults(func=cmd_create)

    s = sub.add_parser("serve", help="serve a study to raters (FastAPI on uvicorn)")
    s.add_argument("name", metavar="NAME", help="the study folder")
    s.add_argument("--db", default=None, help="SQLAlchemy URL (default: SQLite file NAME/votes.sqlite)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--token", default=None, help="owner token (default: a random one, printed)")
    s.add_argument(
        "--worker-param",
        action="append",
        default=None,
        metavar="PARAM",
        help="URL parameter holding the crowd worker's id (default PROLIFIC_PID, workerId, worker_id)",
    )
    s.add_argument("--completion-url", default=None, help="redirect here at the end; '{code}' is replaced")
    s.add_argument(
        "--sync",
        default="normal",
        choices=["normal", "full"],
        help="SQLite synchronous level: normal survives kill -9, full also power loss",
    )
    s.add_argument(
        "--workers",
        type=int,
        default=1,
        help="uvicorn worker processes (default 1: the single SQLite writer; more processes share SQLite's write lock)",
    )
    s.add_argument(
        "--keep-alive",
        type=int,
        default=75,
        help="seconds an idle rater connection stays open (raters think for seconds between answers)",
    )
    s.set_defaults(func=cmd_serve)

    r = sub.add_parser("results", help="the study's scores (HYPE∞, CIs, rank correlations) or every vote")
    r.add_argument("name", metavar="NAME", help="the study folder")
    r.add_argument("--db", default=None, help="SQLAlchemy URL (default: SQLite file NAME/votes.sqlite)")
    r.add_argument("--format", default="md", choices=["md", "json", "csv"])
    r.add_argument("--include-failed", action="store_true", help="keep raters who failed an attention check")
    r.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates")
    r.add_argument("--out", default=None, help="write here instead of stdout")
    r.set_defaults(func=cmd_results)


def _common(p) -> None:
    add_data_root(p, help="dataset root (else $GANWORKS_DATA)")
    add_device(p)


def cmd_create(args) -> int:
    from ..turing.study import create_study

    if args.staircase and not args.exposure_ms:
        raise ConfigError("--staircase needs a starting --exposure-ms")
    scores = None
    if args.scores:
        try:
            scores = json.loads(Path(args.scores).read_text())
        except (OSError, ValueError) as e:
            raise ConfigError(f"--scores {args.scores}: not a readable JSON file ({e})") from None
    study = create_study(
        args.name,
        args.real,
        args.fake,
        images_per_source=args.images_per_source,
        per_session=args.per_session,
        real_fraction=args.real_fraction,
        feedback=args.feedback,
        exposure_ms=args.exposure_ms,
        staircase=args.staircase,
        tutorial=args.tutorial,
        attention=args.attention,
        top_percent=args.top_percent,
        classifier=args.classifier,
        inception_weights=args.inception_weights,
        scores=scores,
        seed=args.seed,
        device=args.device or "auto",
        data_root=args.data_root,
        size=args.size,
        overwrite=args.overwrite,
    )
    n = len(study["images"])
    srcs = ", ".join(f"{s['label']} ({s['truth']})" for s in study["sources"])
    print(
        f"study {study['name']}: {n} images in {args.name}/images from {srcs}; "
        f"serve it with `ganworks turing serve {args.name}`"
    )
    return 0


def cmd_serve(args) -> int:
    import os
    import secrets

    require("turing")
    import uvicorn

    from ..turing.study import load_study

    study = load_study(args.name)
    token = args.token or os.environ.get("GANWORKS_TURING_TOKEN") or secrets.token_urlsafe(24)
    os.environ["GANWORKS_TURING_STUDY"] = str(Path(args.name).resolve())
    os.environ["GANWORKS_TURING_TOKEN"] = token
    os.environ["GANWORKS_TURING_CONFIG"] = json.dumps(
        {
            "db_url": args.db,
            "worker_params": args.worker_param or None,
            "completion_url": args.completion_url,
            "sync": args.sync,
            "workers": args.workers,
        }
    )
    base = f"http://{args.host}:{args.port}"
    param = (args.worker_param or ["PROLIFIC_PID"])[0]
    # a URL that works as printed; the crowd platform adds the worker's id itself
    print(f"raters:  {base}/study/{study['name']}", flush=True)
    print(
        f"         (works as printed, for a try; a crowd platform opens it with its worker's id added, "
        f"?{param}=..., one session per id)",
        flush=True,
    )
    print(f"owner:   {base}/owner/{study['name']}?token={token}", flush=True)
    uvicorn.run(
        "ganworks.turing.app:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=args.keep_alive,
        backlog=4096,
    )
    return 0


def cmd_results(args) -> int:
    require("turing")
    from ..turing import db as dbm
    from ..turing.server import _json_safe, votes_to_csv
    from ..turing.stats import summarize, to_markdown
    from ..turing.study import load_study

    study = load_study(args.name)
    url = args.db or dbm.default_url(args.name)
    if url == dbm.default_url(args.name) and not (Path(args.name) / "votes.sqlite").exists():
        raise ConfigError(f"no votes yet for {args.name} (serve it with `ganworks turing serve {args.name}`)")
    votes = dbm.read_votes(dbm.make_engine(url, migrate=False), study["name"])  # reads; changes nothing
    if args.format == "csv":
        text = votes_to_csv(votes)
    else:
        r = summarize(study, votes, exclude_failed=not args.include_failed, reps=args.bootstrap)
        text = to_markdown(r) if args.format == "md" else json.dumps(_json_safe(r), indent=1) + "\n"
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0
