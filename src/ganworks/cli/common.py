"""Arguments several command groups share: where the datasets are, and which device to use."""

from __future__ import annotations

import argparse

DEVICES = ["auto", "cpu", "cuda"]


def add_data_root(
    p: argparse.ArgumentParser, help: str = "folder holding the datasets (default: $GANWORKS_DATA, else a cache folder)"
) -> None:
    p.add_argument("--data-root", default=None, help=help)


def add_device(p: argparse.ArgumentParser, default: str | None = None, choices: list[str] | None = None) -> None:
    """``--device``: auto (the default: CUDA when there is one), cpu or cuda."""
    p.add_argument("--device", default=default, choices=choices, help="auto (default), cpu or cuda")


def add_data_root_and_device(
    p: argparse.ArgumentParser, default: str | None = None, choices: list[str] | None = None
) -> None:
    add_data_root(p)
    add_device(p, default, choices)
