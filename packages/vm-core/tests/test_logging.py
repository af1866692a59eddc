"""structlog setup: quiet by default, -v raises the level, JSON when not a terminal."""

from __future__ import annotations

import io
import json
import logging

from vm_core.logging import configure, get_logger, level_for_verbosity


def test_levels_by_verbosity():
    assert level_for_verbosity(0) == logging.WARNING
    assert level_for_verbosity(1) == logging.INFO
    assert level_for_verbosity(5) == logging.DEBUG


def test_quiet_by_default_and_json_when_not_a_tty():
    out = io.StringIO()
    configure(0, stream=out)
    log = get_logger("test", run=1)
    log.info("hidden")
    log.warning("shown", answer=42)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["event"] == "shown" and event["answer"] == 42
    assert event["component"] == "test" and event["level"] == "warning"
    configure(0)


def test_verbose_shows_info():
    out = io.StringIO()
    configure(1, stream=out)
    get_logger("test").info("visible")
    assert "visible" in out.getvalue()
    configure(0)


def test_lines_go_to_the_stderr_of_the_moment(capsys) -> None:
    """configure() without a stream follows sys.stderr when it is replaced later (pytest's capture, a CLI)."""
    import io
    import sys

    from vm_core.logging import configure, get_logger

    configure(0, json=True)
    replaced = io.StringIO()
    saved, sys.stderr = sys.stderr, replaced
    try:
        get_logger("test").warning("after_replacement", n=1)
    finally:
        sys.stderr = saved
        configure(0)
    assert '"event": "after_replacement"' in replaced.getvalue()
