"""``ganworks reproduce TABLE``: run (or --report, or --dry-run) a table of the papers."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from ..errors import ConfigError

DEFAULT_OUT = "~/.cache/ganworks/reproduce"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "reproduce",
        help="train a paper table's rows over seeds and report them beside the paper",
        description="Run every (row, seed) of a table as a run directory <out>/<table id>/<row id>/"
        "seed<seed>/: finished runs are skipped, interrupted ones resumed, missing ones "
        "started. --report writes markdown, JSON and plots of what the runs reached.",
    )
    p.add_argument("table", nargs="?", help="a table, e.g. improved-gan/table1 (--list shows them), or a .toml file")
    p.add_argument("--list", action="store_true", help="list the shipped tables")
    p.add_argument(
        "--out",
        default=os.environ.get("GANWORKS_REPRODUCE", DEFAULT_OUT),
        help=f"where the runs live (default $GANWORKS_REPRODUCE, else {DEFAULT_OUT})",
    )
    p.add_argument("--rows", nargs="+", metavar="ROW", help="only these row ids")
    p.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        metavar="SEED",
        help="only these of each row's seeds (e.g. to share a table's runs between machines)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key of every new run (repeatable)",
    )
    p.add_argument("--jobs", type=int, default=1, help="runs at a time (default 1)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads per run (default 1)")
    p.add_argument("--epochs", type=float, help="cap: train each run to this many epochs (written into the report)")
    p.add_argument(
        "--iterations", type=int, help="cap: train each run to this many iterations (written into the report)"
    )
    p.add_argument(
        "--max-minutes",
        type=float,
        help="cap: stop each run after this many minutes per invocation; a later invocation resumes it",
    )
    p.add_argument(
        "--launcher",
        choices=["local", "slurm", "submitit-local"],
        default="local",
        help="local subprocesses (default), SLURM jobs through submitit, or submitit's local executor",
    )
    p.add_argument(
        "--slurm",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a submitit parameter, e.g. slurm_partition=gpu or gpus_per_node=1 (repeatable)",
    )
    p.add_argument("--dry-run", action="store_true", help="list what would run, and how, without running it")
    p.add_argument("--report", action="store_true", help="write the report of the runs (runs nothing)")
    p.add_argument("--report-dir", help="report folder (default <out>/<table id>/report, or --results)")
    p.add_argument(
        "--results",
        metavar="DIR",
        help="copy each ended run's result (rows, status, last grid) into "
        "DIR/runs/ as it ends, and let --report read runs whose folders are gone from there: commit DIR "
        "to complete a table over several sittings",
    )
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--data-root", help="folder holding the datasets (passed to every run)")
    p.add_argument("--device", default=None, help="auto (default), cpu or cuda (passed to every run)")
    p.set_defaults(func=cmd_reproduce)


def _check_presets(specs) -> None:
    """Every row's preset and overrides resolve (a typo fails before anything starts)."""
    from ..config import resolve

    for s in specs:
        try:
            resolve(s.row.preset, s.overrides)
        except ConfigError as e:
            raise ConfigError(f"table row {s.row.id!r}: {e}") from None


def _check_caps(args) -> None:
    """The caps and the launcher, refused before anything is planned or started."""
    import math
    import shutil

    if args.iterations is not None and args.iterations < 1:
        raise ConfigError(f"--iterations must be at least 1 (the cap each run trains to), got {args.iterations}")
    for flag, value in (("--epochs", args.epochs), ("--max-minutes", args.max_minutes)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{flag} must be a number above 0, got {value}")
    if args.epochs is not None and args.iterations is not None:
        raise ConfigError("give --epochs or --iterations, not both (each caps the length of every run)")
    if args.launcher == "slurm" and not shutil.which("sbatch"):
        raise ConfigError(
            "--launcher slurm needs SLURM, and this machine has no `sbatch`: run on the cluster's "
            "login node, or use --launcher local (or submitit-local to try the job path here)"
        )


def cmd_reproduce(args) -> int:
    from ..reproduce.report import write_report
    from ..reproduce.results import export_run
    from ..reproduce.runner import Caps, run_local, run_state, run_submitit, train_command
    from ..reproduce.tables import list_tables, load_table, plan

    if args.list or not args.table:
        if not args.list:
            raise ConfigError("name a table (e.g. improved-gan/table1); `ganworks reproduce --list` lists them")
        for name in list_tables():
            t = load_table(name)
            n = sum(len(r.seeds) for r in t.rows)
            print(f"{name:28s} {len(t.rows):3d} rows {n:3d} runs  {t.title}")
        return 0
    if args.jobs < 1 or args.threads < 1:
        raise ConfigError("--jobs and --threads must be at least 1")
    _check_caps(args)
    table = load_table(args.table)
    out = Path(args.out).expanduser()
    specs = plan(table, out, args.set, args.rows, args.seeds)
    caps = Caps(epochs=args.epochs, iterations=args.iterations, max_minutes=args.max_minutes)

    results = Path(args.results).expanduser() if args.results else None
    if args.report:
        if results is not None:
            for s in specs:
                export_run(s, results)
        report_dir = (
            Path(args.report_dir).expanduser()
            if args.report_dir
            else (results if results is not None else out / table.id / "report")
        )
        data = write_report(table, specs, report_dir, results)
        print(f"report: {report_dir / 'report.md'} ({len(data['rows'])} rows)", file=sys.stderr)
        print((report_dir / "report.md").read_text())
        return 0

    _check_presets(specs)
    if args.dry_run:
        for s in specs:
            state = run_state(s, caps)
            what = {
                "finished": "skip (finished)",
                "running": "skip (running elsewhere)",
                "partial": "resume",
                "new": "start",
            }[state]
            cmd = (
                ""
                if state in ("finished", "running")
                else " ".join(train_command(s, state, caps, args.threads, args.device, args.data_root)[1:])
            )
            print(f"{s.key:32s} {what:26s} {s.run_dir}" + (f"\n    python {cmd}" if cmd else ""))
        return 0

    record = out / table.id / "reproduce.jsonl"  # every invocation, for the report's caps and history
    record.parent.mkdir(parents=True, exist_ok=True)
    with open(record, "a") as f:
        f.write(
            json.dumps(
                {
                    "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                    "table": table.name,
                    "caps": caps.record(),
                    "jobs": args.jobs,
                    "threads": args.threads,
                    "launcher": args.launcher,
                    "rows": args.rows,
                    "seeds": args.seeds,
                    "set": args.set,
                }
            )
            + "\n"
        )
    if args.launcher == "local":
        outcome = run_local(
            specs,
            caps,
            args.jobs,
            args.threads,
            args.device,
            args.data_root,
            progress=not args.no_progress,
            on_done=(lambda spec: export_run(spec, results)) if results is not None else None,
        )
    else:
        slurm = {}
        for item in args.slurm:
            k, _, v = item.partition("=")
            from ..config import parse_value

            slurm[k.strip()] = parse_value(v.strip())
        outcome = run_submitit(
            specs,
            caps,
            args.jobs,
            args.threads,
            out / table.id / "submitit",
            cluster="slurm" if args.launcher == "slurm" else "local",
            slurm=slurm,
            device=args.device,
            data_root=args.data_root,
            progress=not args.no_progress,
        )
    if results is not None:  # the submitit path, and any run that ended elsewhere meanwhile
        for s in specs:
            export_run(s, results)
    for key in (s.key for s in specs):
        print(f"{key:32s} {outcome.get(key, '?')}")
    failed = [k for k, v in outcome.items() if v.startswith("failed")]
    interrupted = [k for k, v in outcome.items() if v.startswith("interrupted")]
    if failed:
        print(f"error: {len(failed)} run(s) failed; see reproduce.log in their run directories", file=sys.stderr)
        return 1
    if interrupted:
        print(
            f"{len(interrupted)} run(s) interrupted after saving; run the same command again to resume them",
            file=sys.stderr,
        )
        return 1
    return 0
