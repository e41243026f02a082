"""Optional extras (``pip install 'ganworks[EXTRA]'``): a command that needs one says so in one line.

:func:`require` checks that an extra's modules are installed, without importing them
(``importlib.util.find_spec``), and raises ``MissingExtra`` naming the missing module and the extra
to install. A module that is installed but fails to import is not this check's business: its own
``ImportError`` surfaces where it is imported, with its traceback.
"""

from __future__ import annotations

import importlib.util

from .errors import MissingExtra

#: the modules of each optional extra in pyproject.toml that a command needs
EXTRAS = {
    "turing": ("fastapi", "uvicorn", "sqlalchemy"),
    "slurm": ("submitit",),
    "digits": ("sklearn",),
}
#: what each extra is for, in the refusal
PURPOSE = {
    "turing": "the visual Turing test",
    "slurm": "--launcher slurm / submitit-local",
    "digits": "the digits dataset",
}


def missing(extra: str) -> list[str]:
    """The modules of ``extra`` that are not installed."""
    return [m for m in EXTRAS[extra] if importlib.util.find_spec(m) is None]


def require(extra: str) -> None:
    """Raise ``MissingExtra`` (one line) when a module of ``extra`` is not installed."""
    absent = missing(extra)
    if absent:
        raise MissingExtra(
            f"{PURPOSE[extra]} needs the {extra!r} extra ({', '.join(absent)} is not installed): "
            f"pip install 'ganworks[{extra}]'"
        )
