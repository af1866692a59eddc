"""The ``vm`` command: argument parsing and error rendering.

Each subcommand lives in :mod:`vm_cli.commands` as a module with
``add_parser(subparsers)`` (which sets ``func`` on its parser) and a function
that takes the parsed arguments and returns an exit status. Errors derived
from :class:`vm_core.errors.VmError` are printed as one line
(``vm: error: ...``) with their exit code; no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from vm_core.errors import VmError
from vm_core.logging import configure, get_logger

from vm_cli.commands import COMMAND_MODULES

log = get_logger("vm_cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vm",
        description="vm: run and inspect programs built for another CPU.",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-v info, -vv debug) on stderr"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure(args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        status: int = args.func(args)
        return status
    except VmError as err:
        print(f"vm: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("vm: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


def entry() -> None:  # pragma: no cover - thin console-script wrapper
    sys.exit(main())
