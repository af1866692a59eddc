"""What is wrong with a VM store, in one line that names it and says what to do.

:func:`check_sqlite_store` looks at the SQLite store file before SQLite opens
it: the VM home must be a directory (it is created when missing), the store
must be a regular, readable file that starts with SQLite's header. A file
that is not a SQLite database is refused as damaged *before* anything writes
to it, so it is never recreated, truncated or converted: its records stay
where they are for the user to recover.

:func:`storage_error` turns what SQLite (or eventsourcing) raised later,
while reading or writing, into a :class:`StorageError`: a damaged
(malformed) database, a read-only file or directory, a lock held by another
process, a full disk.
"""

from __future__ import annotations

import os
from pathlib import Path

from vm_core.errors import VmError

SQLITE_HEADER = b"SQLite format 3\x00"

_MOVE_ASIDE = "nothing was changed: move it aside to start a new store, keeping its records, or set VM_HOME elsewhere"


class StorageError(VmError):
    """The event store cannot be used (damaged, read-only, locked, disk full, unreachable); nothing was changed."""


def _in_memory(db_name: str) -> bool:
    return ":memory:" in db_name or "mode=memory" in db_name or db_name.startswith("file:")


def check_sqlite_store(db_name: str) -> str:
    """Check the SQLite store ``db_name`` (creating its directory if missing); return how messages name it."""
    if _in_memory(db_name):
        return db_name
    path = Path(db_name)
    home = path.parent
    if home.exists() and not home.is_dir():
        raise StorageError(f"the VM home {home} is not a directory", hint="move it aside or set VM_HOME to a directory")
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise StorageError(
            f"cannot create the VM home {home}: {err.strerror or err}", hint="set VM_HOME to a writable directory"
        ) from None
    if path.is_dir():
        raise StorageError(f"the VM store {path} is a directory, not a SQLite file", hint=_MOVE_ASIDE)
    if path.exists() and not path.is_file():
        raise StorageError(f"the VM store {path} is not a regular file", hint=_MOVE_ASIDE)
    if not path.exists():
        return str(path)
    try:
        with open(path, "rb") as store:
            header = store.read(len(SQLITE_HEADER))
    except PermissionError:
        raise StorageError(
            f"the VM store {path} cannot be read: permission denied",
            hint="give yourself read and write access to it, or set VM_HOME to another directory",
        ) from None
    except OSError as err:
        raise StorageError(f"the VM store {path} cannot be read: {err.strerror or err}", hint=_MOVE_ASIDE) from None
    if header and header != SQLITE_HEADER:
        raise StorageError(f"the VM store {path} is damaged: it is not a SQLite database", hint=_MOVE_ASIDE)
    return str(path)


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def storage_error(err: BaseException, location: str | None) -> StorageError:
    """A :class:`StorageError` for ``err`` (raised by SQLite or eventsourcing) on the store at ``location``."""
    where = f"the VM store {location}" if location else "the VM store"
    text = str(err).strip() or type(err).__name__
    lowered = text.lower()
    path = Path(location) if location and not _in_memory(location) and location.startswith("/") else None
    if "locked" in lowered or "busy" in lowered:
        return StorageError(
            f"{where} is locked by another process ({text})", hint="try again once the other vm command has finished"
        )
    if "readonly" in lowered or "read-only" in lowered or (
        "unable to open" in lowered and path is not None and not _writable(path)
    ):
        return StorageError(
            f"{where} is read-only ({text})",
            hint="make it and its directory writable, or set VM_HOME to another directory",
        )
    if "full" in lowered:
        return StorageError(f"the disk holding {where.removeprefix('the ')} is full ({text})", hint="free some space")
    if "disk i/o error" in lowered:
        return StorageError(
            f"{where} cannot be written ({text})", hint="the disk may be full or failing, or a file size limit reached"
        )
    if "malformed" in lowered or "not a database" in lowered or "encrypted" in lowered or "corrupt" in lowered:
        return StorageError(f"{where} is damaged ({text})", hint=_MOVE_ASIDE)
    return StorageError(f"{where} failed: {text}")
