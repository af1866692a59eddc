"""Fixtures that run the VM registry tests on every eventsourcing backend.

``backend`` is parametrized over in-memory (POPO), SQLite (a file under
``tmp_path``) and PostgreSQL. PostgreSQL settings come from the ``POSTGRES_*``
variables, defaulting to what ``.ci/start-postgres`` creates (vm/vm on
127.0.0.1:5432, database vm_test); each test gets a fresh schema that is
dropped afterwards. When no server is reachable the PostgreSQL cases are
skipped, except under ``CI=true``, where they fail: CI must prove them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from vm_core.application import VmApplication

POSTGRES_DEFAULTS = {
    "POSTGRES_HOST": "127.0.0.1",
    "POSTGRES_PORT": "5432",
    "POSTGRES_USER": "vm",
    "POSTGRES_PASSWORD": "vm",
    "POSTGRES_DBNAME": "vm_test",
}
BACKENDS = ["popo", "sqlite", "postgres"]


def running_in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def postgres_settings() -> dict[str, str]:
    return {key: os.environ.get(key) or default for key, default in POSTGRES_DEFAULTS.items()}


def _connect(settings: dict[str, str]) -> object:
    import psycopg

    return psycopg.connect(
        host=settings["POSTGRES_HOST"],
        port=int(settings["POSTGRES_PORT"]),
        user=settings["POSTGRES_USER"],
        password=settings["POSTGRES_PASSWORD"],
        dbname=settings["POSTGRES_DBNAME"],
        connect_timeout=3,
        autocommit=True,
    )


@pytest.fixture(scope="session")
def postgres_server() -> dict[str, str]:
    """Settings of a reachable PostgreSQL server; skip (fail under CI=true) when there is none."""
    settings = postgres_settings()
    where = (
        f"{settings['POSTGRES_USER']}@{settings['POSTGRES_HOST']}:{settings['POSTGRES_PORT']}"
        f"/{settings['POSTGRES_DBNAME']}"
    )
    try:
        connection = _connect(settings)
    except ImportError as err:
        problem = f"psycopg is not installed ({err}); pip install 'vm-core[postgres]'"
    except Exception as err:
        problem = f"no PostgreSQL server reachable at {where}: {err}".strip()
    else:
        connection.close()  # type: ignore[attr-defined]
        return settings
    if running_in_ci():
        pytest.fail(f"CI=true requires PostgreSQL: {problem} (run .ci/start-postgres)", pytrace=False)
    pytest.skip(f"{problem} (run .ci/start-postgres or set POSTGRES_*)")


@attrs.define
class Backend:
    """One configured store; :meth:`open` returns application instances over it."""

    name: str
    env: dict[str, str]
    opened: list[VmApplication] = attrs.field(factory=list)

    def open(self) -> VmApplication:
        app = VmApplication(self.env)
        self.opened.append(app)
        return app

    def open_another(self, app: VmApplication) -> VmApplication:
        """A second writer over the same store (in memory there is only the one instance)."""
        if self.name == "popo":
            return app
        return self.open()

    def writer_and_reader(self) -> tuple[VmApplication, VmApplication]:
        """Two instances over the store, opened once and reused (hypothesis examples share them)."""
        if len(self.opened) < 2:
            writer = self.open()
            reader = self.open_another(writer)
            if reader is writer:
                self.opened.append(writer)
        return self.opened[0], self.opened[1]

    def close(self) -> None:
        for app in self.opened:
            app.close()
        self.opened.clear()


@pytest.fixture(autouse=True)
def _isolated_vm_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user setting leaks into a test: VM_HOME is a temp dir, no VM_-prefixed overrides."""
    for key in list(os.environ):
        if key.startswith("VM_") or key in ("PERSISTENCE_MODULE", "SQLITE_DBNAME"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("VM_HOME", str(tmp_path / "vm-home"))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "popo":
        store = Backend("popo", {"PERSISTENCE_MODULE": "eventsourcing.popo"})
        yield store
        store.close()
    elif request.param == "sqlite":
        env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "vms.sqlite3")}
        store = Backend("sqlite", env)
        yield store
        store.close()
    else:
        settings = request.getfixturevalue("postgres_server")
        schema = f"vm_test_{uuid.uuid4().hex[:12]}"
        admin = _connect(settings)
        admin.execute(f'CREATE SCHEMA "{schema}"')  # type: ignore[attr-defined]
        env = {"PERSISTENCE_MODULE": "eventsourcing.postgres", "POSTGRES_SCHEMA": schema, **settings}
        store = Backend("postgres", env)
        try:
            yield store
        finally:
            store.close()
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')  # type: ignore[attr-defined]
            admin.close()  # type: ignore[attr-defined]


@pytest.fixture
def app(backend: Backend) -> VmApplication:
    return backend.open()
