"""Tables: TOML files under ``ganworks/tables/`` listing a paper table's rows, seeds and published values.

A table file (e.g. ``improved-gan/table1.toml``) holds::

    id = "improved-gan-table1"          # the folder name under --out
    title = "..."; paper = "..."; notes = "..."
    metric = "test_errors_ema"          # or metrics = ["IS", "FID"]: what the report reads
    lower_is_better = true              # or a table by metric
    overrides = ["key=value", ...]      # optional, for every row (before the row's own)

    [[rows]]
    id = "mnist-100"                    # the folder name under <out>/<table id>/
    preset = "improved-gan/mnist-100"
    overrides = []                      # --set overrides of this row
    seeds = [1, 2, 3]                   # a seed sets train.seed = data.seed_data = seed
    label = "Our model, 100 labels"
    published = 93                      # or a table by metric; absent: nothing published
    published_std = 6.5
    group = "A"; series = "sn"          # optional: a grouped bar chart (x: groups, bars: series)

Optional tables of a table file, for experiments scored by outcome rather than against a number
(``ganworks/reproduce/report.py`` applies them)::

    [outcomes]                          # how each run's end is classified
    metric = "FID"                      # the metric the definitions use (lower is better)
    diverged_factor = 2.0               # diverged: non-finite stop, or final > factor x the run's best
    collapsed_classes = 3.0             # collapsed: sample_classes at the end below this

    [claim]                             # a claim the report checks (see report.check_claim)
    series = "sn"; baselines = ["wgan-gp"]; robust_factor = 1.5; aggressive = ["D", "E", "F"]

Every (row, seed) is a normal run directory ``<out>/<table id>/<row id>/seed<seed>/``. Override
values may name environment variables (``$GANWORKS_DATA``), expanded when the run is planned.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..errors import ConfigError


def table_root():
    return resources.files("ganworks") / "tables"


def list_tables() -> list[str]:
    found = []

    def walk(node, prefix):
        for child in node.iterdir():
            if child.is_dir():
                walk(child, f"{prefix}{child.name}/")
            elif child.name.endswith(".toml"):
                found.append(prefix + child.name[: -len(".toml")])

    walk(table_root(), "")
    return sorted(found)


@dataclass
class Row:
    id: str
    preset: str
    seeds: list[int]
    label: str = ""
    overrides: list[str] = field(default_factory=list)
    published: dict[str, float] = field(default_factory=dict)
    published_std: dict[str, float] = field(default_factory=dict)
    group: str = ""
    series: str = ""


@dataclass
class Table:
    name: str  # e.g. "improved-gan/table1"
    id: str  # e.g. "improved-gan-table1"
    title: str
    metrics: list[str]
    rows: list[Row]
    paper: str = ""
    notes: str = ""
    metric_label: str = ""
    lower_is_better: dict[str, bool] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    outcomes: dict = field(default_factory=dict)
    claim: dict = field(default_factory=dict)

    def row(self, row_id: str) -> Row:
        for r in self.rows:
            if r.id == row_id:
                return r
        raise ConfigError(f"table {self.name!r} has no row {row_id!r}; rows: {', '.join(r.id for r in self.rows)}")


def _by_metric(value, metrics: list[str], what: str) -> dict:
    if value is None:
        return {}
    if isinstance(value, dict):
        unknown = set(value) - set(metrics)
        if unknown:
            raise ConfigError(f"{what} names {', '.join(sorted(unknown))}, not among the table's metrics {metrics}")
        return dict(value)
    if len(metrics) != 1:
        raise ConfigError(f"{what} must be a table by metric ({', '.join(metrics)})")
    return {metrics[0]: value}


def parse_table(name: str, data: dict) -> Table:
    """A table from its parsed TOML ``data``; ``name`` is its path (for messages)."""
    try:
        metrics = list(data.get("metrics") or [data["metric"]])
        lib = data.get("lower_is_better", True)
        lib = dict(lib) if isinstance(lib, dict) else {m: bool(lib) for m in metrics}
        rows = []
        for i, r in enumerate(data["rows"]):
            seeds = r.get("seeds", [1])
            bad = (
                [s for s in seeds if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < 2**63]
                if isinstance(seeds, list)
                else [seeds]
            )
            if bad:
                raise ConfigError(
                    f"table {name!r}: row {r.get('id', i)!r} has seeds {seeds!r}; seeds are whole numbers "
                    f"from 0 to 2^63-1, e.g. seeds = [1, 2, 3] ({bad[0]!r} is not)"
                )
            if not seeds:
                raise ConfigError(f"table {name!r}: row {r.get('id', i)!r} lists no seeds")
            _check_folder_name(name, "row id", r["id"])
            rows.append(
                Row(
                    id=r["id"],
                    preset=r["preset"],
                    seeds=seeds,
                    label=r.get("label", r["id"]),
                    overrides=list(r.get("overrides", [])),
                    published=_by_metric(r.get("published"), metrics, f"table {name!r} row {r['id']!r} published"),
                    published_std=_by_metric(
                        r.get("published_std"), metrics, f"table {name!r} row {r['id']!r} published_std"
                    ),
                    group=str(r.get("group", "")),
                    series=str(r.get("series", "")),
                )
            )
        table = Table(
            name=name,
            id=data["id"],
            title=data.get("title", name),
            metrics=metrics,
            rows=rows,
            paper=data.get("paper", ""),
            notes=data.get("notes", ""),
            metric_label=data.get("metric_label", ", ".join(metrics)),
            lower_is_better=lib,
            overrides=list(data.get("overrides", [])),
            outcomes=dict(data.get("outcomes", {})),
            claim=dict(data.get("claim", {})),
        )
    except KeyError as e:
        raise ConfigError(f"table {name!r} lacks the key {e.args[0]!r} (see ganworks/reproduce/tables.py)") from None
    _check_folder_name(name, "id", table.id)
    ids = [r.id for r in table.rows]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"table {name!r} repeats a row id")
    if table.outcomes and table.outcomes.get("metric") not in metrics:
        raise ConfigError(f"table {name!r}: [outcomes] metric must be one of the table's metrics {metrics}")
    return table


def _check_folder_name(table: str, what: str, value) -> None:
    """Table and row ids name folders under --out: one plain name each, never a path out of it."""
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]*", value):
        raise ConfigError(
            f"table {table!r}: its {what} {value!r} names a folder under --out, so it must be one plain "
            f"name of letters, digits, '.', '_' and '-' (no '/' or '..')"
        )


def load_table(name: str) -> Table:
    """A shipped table by name (``improved-gan/table1``) or a TOML file's path."""
    path = Path(name).expanduser()
    if name.endswith(".toml") and path.is_file():
        text, label = path.read_text(), str(path)
    else:
        node = table_root().joinpath(*f"{name}.toml".split("/"))
        if not node.is_file():
            close = difflib.get_close_matches(name, list_tables(), n=5, cutoff=0.4)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise ConfigError(f"unknown table {name!r}; {hint}known: {', '.join(list_tables())} (or a .toml file)")
        text, label = node.read_text(), name
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"table {label!r} is not valid TOML: {e}") from None
    return parse_table(label, data)


@dataclass
class RunSpec:
    """One (row, seed) of a table: where it runs and how it is configured."""

    table: Table
    row: Row
    seed: int
    run_dir: Path
    overrides: list[str]  # --set overrides for `ganworks train` (seed included)

    @property
    def key(self) -> str:
        return f"{self.row.id}/seed{self.seed}"


def plan(
    table: Table,
    out: Path,
    extra_overrides: list[str] = (),
    rows: list[str] | None = None,
    seeds: list[int] | None = None,
) -> list[RunSpec]:
    """Every (row, seed) of ``table`` (or of the named ``rows``, and only the named ``seeds`` of each)
    as a RunSpec under ``out``. A named seed that no chosen row lists is an error."""
    chosen = [table.row(r) for r in rows] if rows else table.rows
    if seeds:
        listed = sorted({s for row in chosen for s in row.seeds})
        unknown = sorted(set(seeds) - set(listed))
        if unknown:
            raise ConfigError(
                f"--seeds {' '.join(map(str, unknown))}: not a seed of the chosen rows of table "
                f"{table.name!r} (they list {', '.join(map(str, listed))}); add seeds to a row in a "
                f"copy of the table's .toml to run more"
            )
    specs = []
    for row in chosen:
        for seed in row.seeds:
            if seeds and seed not in seeds:
                continue
            overrides = [os.path.expandvars(o) for o in (*table.overrides, *row.overrides, *extra_overrides)]
            overrides += [f"train.seed={seed}", f"data.seed_data={seed}"]
            specs.append(RunSpec(table, row, seed, Path(out) / table.id / row.id / f"seed{seed}", overrides))
    return specs
