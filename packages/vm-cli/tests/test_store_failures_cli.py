"""The event store never stops a guest, and never loses what it holds.

With a damaged (garbage or truncated), misplaced (a directory), read-only
(immutable), locked or full store, ``vm run`` runs the program exactly as
usual and prints one ``vm: warning:`` line that the run is not recorded;
``vm ls``, ``vm show``, ``vm rm``, ``vm stop`` and ``vm prune`` print one
``vm: error:`` line naming the store file and what to do. The store file is
never changed: its bytes are the same afterwards.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

VM = [sys.executable, "-m", "vm_cli"]
HELLO = Path(__file__).resolve().parents[3] / "examples" / "hello-riscv64"
HELLO_OUTPUT = "Hello from RISC-V!\na little floating point: 85.997559\n"
READERS = [["ls"], ["show", "anything"], ["rm", "anything"], ["stop", "anything"], ["prune"]]


def vm(*args: str, home: Path, fsize: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "VM_HOME": str(home), "SQLITE_LOCK_TIMEOUT": "1"}

    def limit_file_size() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run(
        [*VM, *args], env=env, capture_output=True, text=True, timeout=120, check=False, preexec_fn=limit_file_size
    )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def recorded_home(tmp_path: Path) -> Path:
    """A VM home whose store already holds one recorded run."""
    home = tmp_path / "home"
    done = vm("run", str(HELLO), home=home)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    db = sqlite3.connect(home / "vm.sqlite3")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file, so it alone holds the records
    db.close()  # the last connection: SQLite removes the -wal and -shm files
    return home


def assert_run_unrecorded(home: Path, *words: str, fsize: int | None = None) -> None:
    done = vm("run", str(HELLO), home=home, fsize=fsize)
    assert (done.returncode, done.stdout) == (0, HELLO_OUTPUT)
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("vm: warning: this run is not recorded: "), done.stderr
    for word in words:
        assert word in lines[0], lines[0]


def assert_readers_fail_in_one_line(home: Path, *words: str, fsize: int | None = None) -> None:
    for argv in READERS:
        done = vm(*argv, home=home, fsize=fsize)
        lines = done.stderr.splitlines()
        assert done.returncode == 1 and done.stdout == "", (argv, done.stdout, done.stderr)
        assert len(lines) == 1 and lines[0].startswith("vm: error: "), (argv, done.stderr)
        for word in words:
            assert word in lines[0], (argv, lines[0])


def assert_readers_answer_in_one_line(home: Path, *words: str, fsize: int | None = None) -> None:
    """Reading may still work; whatever fails is one line (naming the store when the store failed)."""
    for argv in READERS:
        done = vm(*argv, home=home, fsize=fsize)
        assert "Traceback" not in done.stderr
        assert done.returncode in (0, 1, 2) and len(done.stderr.splitlines()) <= 1, (argv, done.stderr)
        if done.returncode == 1:
            for word in words:
                assert word in done.stderr, (argv, done.stderr)


def test_a_store_that_is_not_sqlite_is_refused_untouched(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    store = home / "vm.sqlite3"
    store.write_bytes(os.urandom(3000))
    before = digest(store)
    assert_run_unrecorded(home, str(store), "is damaged", "move it aside")
    assert_readers_fail_in_one_line(home, str(store), "is damaged", "move it aside")
    assert digest(store) == before
    assert sorted(p.name for p in home.iterdir()) == ["vm.sqlite3"]


def test_a_truncated_store_is_reported_damaged_untouched(tmp_path: Path) -> None:
    home = recorded_home(tmp_path)
    for _ in range(3):
        vm("run", str(HELLO), home=home)
    store = home / "vm.sqlite3"
    db = sqlite3.connect(store)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    data = store.read_bytes()
    store.write_bytes(data[: len(data) // 2])
    before = digest(store)
    assert_run_unrecorded(home, str(store), "damaged")
    assert_readers_fail_in_one_line(home, str(store), "damaged")
    assert digest(store) == before


def test_a_directory_where_the_store_should_be(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "vm.sqlite3").mkdir(parents=True)
    assert_run_unrecorded(home, str(home / "vm.sqlite3"), "is a directory")
    assert_readers_fail_in_one_line(home, str(home / "vm.sqlite3"), "is a directory")
    vm_home_file = tmp_path / "not-a-dir"
    vm_home_file.write_text("mine")
    assert_run_unrecorded(vm_home_file, f"the VM home {vm_home_file} is not a directory")
    assert_readers_fail_in_one_line(vm_home_file, str(vm_home_file), "not a directory")
    assert vm_home_file.read_text() == "mine"


@pytest.fixture
def immutable() -> Iterator[list[Path]]:
    """Paths made immutable with ``chattr +i`` (read-only even for root), made mutable again afterwards."""
    paths: list[Path] = []
    yield paths
    if paths:
        subprocess.run(["chattr", "-i", *map(str, paths)], check=False, capture_output=True)


def make_read_only(paths: list[Path], immutable: list[Path]) -> None:
    if os.geteuid() != 0:
        for path in paths:
            path.chmod(0o555 if path.is_dir() else 0o444)
        return
    if shutil.which("chattr") is None:
        pytest.skip("as root, a read-only store needs chattr +i")
    done = subprocess.run(["chattr", "+i", *map(str, paths)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"chattr +i is refused here: {done.stderr.strip()}")
    immutable.extend(paths)


def test_a_read_only_store_still_runs_the_guest(tmp_path: Path, immutable: list[Path]) -> None:
    home = recorded_home(tmp_path)
    store = home / "vm.sqlite3"
    before = digest(store)
    make_read_only([store, home], immutable)
    assert_run_unrecorded(home, str(store), "read-only", "writable")
    assert_readers_answer_in_one_line(home, str(store), "read-only")
    assert digest(store) == before


def test_a_locked_store_still_runs_the_guest(tmp_path: Path) -> None:
    home = recorded_home(tmp_path)
    locked, release = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        with sqlite3.connect(home / "vm.sqlite3", isolation_level=None) as db:
            db.execute("BEGIN EXCLUSIVE")
            locked.set()
            release.wait(60)
            db.execute("ROLLBACK")

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    try:
        assert locked.wait(10)
        assert_run_unrecorded(home, "vm.sqlite3", "is locked by another process")
    finally:
        release.set()
        holder.join()
    listed = vm("ls", "--json", home=home)
    assert listed.returncode == 0 and listed.stdout.count('"state": "stopped"') == 1  # only the first run


def test_a_full_disk_still_runs_the_guest(tmp_path: Path) -> None:
    home = recorded_home(tmp_path)
    store = home / "vm.sqlite3"
    before = digest(store)
    # a file size limit makes every write past it fail as a full disk would (Python ignores SIGXFSZ)
    assert_run_unrecorded(home, str(store), "cannot be written", fsize=4096)
    assert_readers_answer_in_one_line(home, str(store), fsize=4096)
    assert digest(store) == before
    assert vm("ls", home=home).returncode == 0
