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
