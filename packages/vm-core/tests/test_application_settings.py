"""Where VmApplication keeps its data and how eventsourcing's settings select the backend."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from eventsourcing.popo import POPOFactory
from eventsourcing.sqlite import SQLiteFactory
from vm_core.application import DATABASE_FILENAME, VmApplication, vm_home
from vm_core.errors import ConfigurationError
from vm_core.store_health import StorageError

VM_ARGS = {"isa": "riscv64", "memory_size": 1 << 20, "engine": "interp", "program": "/p"}


def test_vm_home_prefers_vm_home_then_xdg_data_home_then_local_share() -> None:
    assert vm_home({"VM_HOME": "/srv/vm", "XDG_DATA_HOME": "/xdg"}) == Path("/srv/vm")
    assert vm_home({"XDG_DATA_HOME": "/xdg"}) == Path("/xdg/vm")
    assert vm_home({}) == Path("~/.local/share/vm").expanduser()


def test_default_store_is_sqlite_under_vm_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "deep" / "home"
    monkeypatch.setenv("VM_HOME", str(home))
    app = VmApplication()
    vm_id = app.create_vm(name="persisted", **VM_ARGS)  # type: ignore[arg-type]
    app.close()
    assert isinstance(app.factory, SQLiteFactory)
    database = home / DATABASE_FILENAME
    with sqlite3.connect(database) as connection:
        (count,) = connection.execute("SELECT COUNT(*) FROM stored_events").fetchone()
    assert count >= 2  # the VM's Created event and its name index entry
    assert VmApplication().resolve("persisted") == vm_id


def test_xdg_data_home_is_used_without_vm_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VM_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    VmApplication().create_vm(**VM_ARGS)  # type: ignore[arg-type]
    assert (tmp_path / "xdg" / "vm" / DATABASE_FILENAME).is_file()


def test_users_persistence_settings_are_not_overridden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSISTENCE_MODULE", "eventsourcing.popo")
    assert isinstance(VmApplication().factory, POPOFactory)
    monkeypatch.setenv("PERSISTENCE_MODULE", "eventsourcing.sqlite")
    monkeypatch.setenv("SQLITE_DBNAME", str(tmp_path / "mine.db"))
    VmApplication().create_vm(**VM_ARGS)  # type: ignore[arg-type]
    assert (tmp_path / "mine.db").is_file()
    assert not (tmp_path / "vm-home" / DATABASE_FILENAME).exists()


def test_unknown_persistence_module_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSISTENCE_MODULE", "eventsourcing.nosuchdb")
    with pytest.raises(ConfigurationError, match="cannot open the VM store"):
        VmApplication()


def test_postgres_without_its_settings_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ["POSTGRES_DBNAME", "POSTGRES_HOST", "POSTGRES_USER", "POSTGRES_PASSWORD"]:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("PERSISTENCE_MODULE", "eventsourcing.postgres")
    with pytest.raises(ConfigurationError, match="POSTGRES_DBNAME"):
        VmApplication()


def test_unwritable_sqlite_location_is_a_storage_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("VM_HOME", str(blocker / "vm"))
    with pytest.raises(StorageError, match=f"cannot create the VM home {blocker / 'vm'}"):
        VmApplication()
    monkeypatch.setenv("VM_HOME", str(blocker))
    with pytest.raises(StorageError, match=f"the VM home {blocker} is not a directory"):
        VmApplication()
    assert blocker.read_text() == "not a directory"
