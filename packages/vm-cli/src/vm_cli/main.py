"""The ``vm`` command: argument parsing and error rendering.

Each subcommand lives in :mod:`vm_cli.commands` as a module with
``add_parser(subparsers)`` (which sets ``func`` on its parser) and a function
that takes the parsed arguments and returns an exit status. Errors derived
from :class:`vm_core.errors.VmError` are printed as one line
(``vm: error: ...``) with their exit code; no traceback reaches the user:

* a bad command line (an unknown option, a missing or malformed argument,
  something named that does not exist) is one line and exit status 2;
* ``vm`` interrupted during a run (:class:`vm_cli.recording.RunInterrupted`):
  SIGINT prints ``vm: interrupted`` and exits 130, SIGTERM and SIGHUP end the
  process with that signal, as their default action does, once the run is
  recorded;
* a crash of vm itself is one ``vm: error: internal error: ...`` line, exit
  status 70 (``vm -vv`` adds the traceback).
"""

from __future__ import annotations

import argparse
import signal
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from vm_core.errors import VmError
from vm_core.logging import configure, get_logger

from vm_cli.commands import COMMAND_MODULES
from vm_cli.messages import error_line
from vm_cli.recording import RunInterrupted, describe_crash, die_like_the_guest

log = get_logger("vm_cli")

USAGE_ERROR = 2
INTERNAL_ERROR = 70  # sysexits.h EX_SOFTWARE


class OneLineArgumentParser(argparse.ArgumentParser):
    """An argument parser whose errors are one ``vm: error:`` line and exit status 2 (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        error_line(f"{message} (see `{self.prog} --help`)")
        raise SystemExit(USAGE_ERROR)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
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
        return USAGE_ERROR
    try:
        status: int = args.func(args)
        return status
    except VmError as err:
        error_line(err)
        return err.exit_code
    except RunInterrupted as err:
        if err.signo != signal.SIGINT:
            die_like_the_guest(err.signo)
        print("vm: interrupted", file=sys.stderr)
        return 128 + err.signo
    except KeyboardInterrupt:
        print("vm: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except Exception as err:
        error_line(f"{describe_crash(err)} (a bug in vm; `vm -vv` shows where)")
        if args.verbose >= 2:
            traceback.print_exc()
        return INTERNAL_ERROR


def entry() -> None:  # pragma: no cover - thin console-script wrapper
    sys.exit(main())
