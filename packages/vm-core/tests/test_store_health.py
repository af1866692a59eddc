"""A store that cannot be used is one StorageError line naming it, and is never changed."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from vm_core.application import VmApplication
from vm_core.store_health import SQLITE_HEADER, StorageError, check_sqlite_store, storage_error

VM_ARGS = {"isa": "riscv64", "memory_size": 1 << 20, "engine": "interp", "program": "/p"}


def sqlite_env(path: Path) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_missing_store_and_home_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "new" / "vm.sqlite3"
    assert check_sqlite_store(str(path)) == str(path)
    assert path.parent.is_dir() and not path.exists()
    assert check_sqlite_store(":memory:") == ":memory:"


@pytest.mark.parametrize(
    "contents, message",
    [
        (b"garbage that is no database" * 10, "is damaged: it is not a SQLite database"),
        (b"\x00" * 4096, "is damaged"),
    ],
)
def test_a_file_that_is_not_sqlite_is_refused_before_sqlite_opens_it(
    contents: bytes, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "vm.sqlite3"
    path.write_bytes(contents)
    with pytest.raises(StorageError, match=message) as caught:
        VmApplication(sqlite_env(path))
    assert str(path) in str(caught.value) and "move it aside" in str(caught.value)
    assert path.read_bytes() == contents
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vm.sqlite3"]


def test_a_directory_or_a_file_in_the_wrong_place(tmp_path: Path) -> None:
    (tmp_path / "vm.sqlite3").mkdir()
    with pytest.raises(StorageError, match="is a directory, not a SQLite file"):
        check_sqlite_store(str(tmp_path / "vm.sqlite3"))
    (tmp_path / "home").write_text("x")
    with pytest.raises(StorageError, match="is not a directory"):
        check_sqlite_store(str(tmp_path / "home" / "vm.sqlite3"))


def test_a_truncated_store_is_damaged_and_stays_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "vm.sqlite3"
    app = VmApplication(sqlite_env(path))
    for _ in range(20):
        app.create_vm(**VM_ARGS)  # type: ignore[arg-type]
    app.close()
    data = path.read_bytes()
    assert data.startswith(SQLITE_HEADER)
    path.write_bytes(data[: len(data) // 2])
    before = digest(path)
    with pytest.raises(StorageError, match="is damaged") as caught:
        VmApplication(sqlite_env(path)).list_vms()
    assert str(path) in str(caught.value)
    assert digest(path) == before


def test_a_locked_store_says_so(tmp_path: Path) -> None:
    path = tmp_path / "vm.sqlite3"
    VmApplication(sqlite_env(path)).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        app = VmApplication({**sqlite_env(path), "SQLITE_LOCK_TIMEOUT": "1"})
        with pytest.raises(StorageError, match="is locked by another process"):
            app.create_vm(**VM_ARGS)  # type: ignore[arg-type]
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.mark.parametrize(
    "text, words",
    [
        ("attempt to write a readonly database", "is read-only"),
        ("database or disk is full", "is full"),
        ("disk I/O error", "cannot be written"),
        ("database disk image is malformed", "is damaged"),
        ("file is not a database", "is damaged"),
        ("database is locked", "is locked"),
        ("something else", "failed: something else"),
    ],
)
def test_storage_errors_name_the_store_and_what_happened(text: str, words: str) -> None:
    err = storage_error(sqlite3.OperationalError(text), "/srv/vm/vm.sqlite3")
    assert words in str(err) and "/srv/vm/vm.sqlite3" in str(err)
    assert "\n" not in str(err)
