"""structlog configuration shared by every vm package.

Library code logs key-value events through :func:`get_logger` and never
prints. The CLI calls :func:`configure` once: quiet by default (warnings and
errors only), ``-v`` shows info, ``-vv`` debug; JSON lines when stderr is not
a terminal, a readable console rendering when it is.
"""

from __future__ import annotations

import logging as _stdlib_logging
import sys
from typing import Any, TextIO

import structlog

_LEVELS = [_stdlib_logging.WARNING, _stdlib_logging.INFO, _stdlib_logging.DEBUG]


def level_for_verbosity(verbosity: int) -> int:
    """Map a ``-v`` count to a stdlib logging level (0 -> WARNING, 1 -> INFO, 2+ -> DEBUG)."""
    return _LEVELS[max(0, min(verbosity, len(_LEVELS) - 1))]


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is when a line is logged (it may be replaced after configuring)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return hasattr(sys.stderr, "isatty") and sys.stderr.isatty()


def configure(verbosity: int = 0, *, stream: TextIO | None = None, json: bool | None = None) -> None:
    """Configure structlog for the process.

    ``json`` defaults to "stream is not a TTY". Without ``stream``, lines go
    to the ``sys.stderr`` of the moment they are logged. Safe to call more
    than once.
    """
    out: Any = stream if stream is not None else _CurrentStderr()
    if json is None:
        json = not (hasattr(out, "isatty") and out.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level_for_verbosity(verbosity)),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str, **bound: Any) -> Any:
    """Return a structlog logger bound to ``component=name`` and any extra keys.

    The logger is lazy: it follows the configuration in force when it logs,
    so module-level loggers honour a later :func:`configure` (``vm -v``).
    """
    return structlog.get_logger(component=name, **bound)


# Library default: quiet (warnings and up) until the application configures it.
configure(0)
