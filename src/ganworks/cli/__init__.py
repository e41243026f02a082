"""The ``ganworks`` command line: one module per command group, one convention.

Each module of this package (``train``, ``evaluate``, ``presets``, ``metrics``, ``classify``,
``conditional``, ``reproduce``, ``turing``) has ``add_parser(subparsers)``, which adds its commands, and
a ``cmd_<command>(args) -> int`` function per command; ``common`` holds the arguments they share.
A command imports what it needs when it runs, so a missing optional extra is reported (one line,
naming the extra) by the command that needs it, and every other command still works.

Every input problem (unknown preset or key, missing data, bad checkpoint, wrong image size, a
diverged run, a missing extra) ends in one line ``error: ...`` and exit status 2, never a traceback.

Exit status: 0 finished, 2 error, 130 stopped by Ctrl-C (SIGINT), 143 stopped by SIGTERM (both
after saving ``last.pt``; ``--resume`` continues exactly).
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import GanworksError
from . import classify, conditional, evaluate, metrics, presets, reproduce, train, turing

#: the command groups, in the order ``ganworks --help`` lists them
GROUPS = (train, evaluate, presets, metrics, conditional, classify, reproduce, turing)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ganworks", description="Improved-GAN and SN-GAN, reproduced in PyTorch.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except GanworksError as e:
        print(f"error: {e}", file=sys.stderr)
        return getattr(e, "exit_code", 2)
    except BrokenPipeError:  # output piped into a reader that stopped early (`ganworks presets | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except OSError as e:  # a file system that refuses (read-only, full, no permission) on a path we write
        where = f"{e.filename}" if e.filename else "a file"
        print(
            f"error: cannot write or read {where} ({e.strerror or e}): pick a path on a writable file system "
            f"with free space",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
