"""The ``vm`` command's own lines on stderr: one ``vm: error: ...`` or ``vm: warning: ...`` line each.

Library code never prints (it logs through :mod:`vm_core.logging`); the CLI
says what went wrong or what was not done through these two functions, so
every message is exactly one line, whatever the error text contained.
"""

from __future__ import annotations

import sys


def one_line(text: str) -> str:
    """``text`` with its line breaks folded, so a message stays one line."""
    return " ".join(str(text).split())


def error_line(message: object) -> None:
    """Print ``vm: error: MESSAGE`` on stderr."""
    print(f"vm: error: {one_line(str(message))}", file=sys.stderr, flush=True)


def warning_line(message: object) -> None:
    """Print ``vm: warning: MESSAGE`` on stderr."""
    print(f"vm: warning: {one_line(str(message))}", file=sys.stderr, flush=True)
