"""``ganworks reproduce TABLE``: run a paper table's rows over seeds and report them beside the paper.

``tables`` reads the table files shipped in ``ganworks/tables/``, ``runner`` runs every (row, seed)
as a normal run directory (skip finished, resume interrupted, start missing; locally or through
submitit), ``report`` writes the markdown/JSON/plots. ``ganworks.cli.reproduce`` is the command.
"""

from .report import collect, write_report
from .runner import Caps, run_local, run_state, run_submitit
from .tables import Row, RunSpec, Table, list_tables, load_table, plan

__all__ = [
    "Caps",
    "Row",
    "RunSpec",
    "Table",
    "collect",
    "list_tables",
    "load_table",
    "plan",
    "run_local",
    "run_state",
    "run_submitit",
    "write_report",
]
