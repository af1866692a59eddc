"""The PostgreSQL backend's gate: skipped without a server locally, a failure under CI=true.

Runs one backend-parametrized test in a child pytest pointed at a port
where no server listens, once as a developer would and once as CI does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO_ROOT = TESTS.parents[2]
TARGET = f"{TESTS / 'test_application.py'}::test_created_vm_can_be_fetched_by_name_full_id_and_prefix"


def run_child(ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    env.update({"POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": "1"})
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:randomly", f"{TARGET}[postgres]"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_unreachable_postgres_is_skipped_with_a_reason_outside_ci() -> None:
    result = run_child(None)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert "no PostgreSQL server reachable at vm@127.0.0.1:1/vm_test" in result.stdout


def test_unreachable_postgres_fails_under_ci() -> None:
    result = run_child("true")
    assert result.returncode != 0, result.stdout + result.stderr
    assert "CI=true requires PostgreSQL" in result.stdout
    assert "skipped" not in result.stdout
