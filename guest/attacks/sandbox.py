"""The host side of the sandbox attack suite: lay out a root with decoys and a host secret/canary next to it,
run an attack program under ``vm run --root``, and check the host afterwards.

Loaded by path from ``packages/vm-cli/tests/test_sandbox_*.py`` (``guest/`` is not a package).

Layout (``OUTSIDE`` is a fresh host directory; the guest's root is ``OUTSIDE/root``)::

    OUTSIDE/secret            "HOSTSECRET-<token>"   never to be read
    OUTSIDE/canary            "HOSTCANARY-<token>"   never to be changed (content, mode, owner, times, nlink)
    OUTSIDE/hostdir/inner     "HOSTINNER-<token>"
    OUTSIDE/hostlink          -> "HOSTLINK-<token>"     (each <token> random and its own: the guest's
                                                        output must contain none of them, at any offset)
    OUTSIDE/emptydir/
    OUTSIDE/HOSTONLY-<token>  a name only the host has (mode 0755, not a program)
    OUTSIDE/root/             the guest root:
        bin/PROG                            the attack program (a copy)
        secret, canary, hostdir/inner, hostlink, emptydir/     decoys ("GUEST-...")
        <OUTSIDE>/{secret,canary,hostdir/inner,hostlink,emptydir/,root/}   a mirror of the host path
        lnkdir_abs -> OUTSIDE      lnkdir_rel -> ..      sub/lnkdir_rel2 -> ../..
        chain1 -> chain2 -> sub/chain3 -> ../lnkdir_rel
        lnk_abs_<leaf> -> OUTSIDE/<leaf>  for every leaf the programs use

:func:`host_state` records everything of OUTSIDE except the root (type, mode,
owner, size, mtime, ctime, nlink, inode, content digest, link target), and
the access time of the secret and of the outside directories after
:func:`prime_atimes` made them older than their change time, so that with
``relatime`` any read of the secret or listing of an outside directory shows.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

LEAVES = ("secret", "canary", "hostdir", "hostlink", "made_by_guest", "emptydir")
GUEST_ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "TZ": "UTC"}


@attrs.frozen
class Layout:
    """One attack's host directories and the facts the program is told."""

    base: Path  # tmp dir holding OUTSIDE, the VM home and the vm process's cwd
    outside: Path
    root: Path
    token: str
    hostonly: str
    home: Path
    run_dir: Path
    tokens: dict[str, str]  # secret, canary, inner, link: the random part of each host content

    @property
    def secret(self) -> Path:
        return self.outside / "secret"

    @property
    def canary(self) -> Path:
        return self.outside / "canary"

    @property
    def secret_text(self) -> str:
        return f"HOSTSECRET-{self.tokens['secret']}\n"

    @property
    def canary_text(self) -> str:
        return f"HOSTCANARY-{self.tokens['canary']}\n"

    def program_args(self) -> list[str]:
        """OUTSIDE SECRET_INO CANARY_INO HOSTONLY: what every attack program takes first."""
        return [str(self.outside), str(self.secret.stat().st_ino), str(self.canary.stat().st_ino), self.hostonly]

    def host_strings(self) -> list[str]:
        """Strings that must never appear in what the guest prints: host data and the root's host path."""
        return [*self.tokens.values(), str(self.root)]


def make_layout(base: Path, programs: dict[str, Path] | None = None) -> Layout:
    """Create OUTSIDE (``base/o``) with the host files and the root with its decoys; copy ``programs`` to /bin."""
    token = secrets.token_hex(6)  # names (HOSTONLY-...) carry this one; contents have tokens of their own
    tokens = {name: secrets.token_hex(8) for name in ("secret", "canary", "inner", "link")}
    outside = base / "o"
    root = outside / "root"
    hostonly = f"HOSTONLY-{token}"
    layout = Layout(base=base, outside=outside, root=root, token=token, hostonly=hostonly,
                    home=base / "home", run_dir=base / "run", tokens=tokens)
    for directory in (outside, root / "bin", root / "sub", layout.home, layout.run_dir):
        directory.mkdir(parents=True, exist_ok=True)
    # the host side
    (outside / "secret").write_text(layout.secret_text)
    (outside / "secret").chmod(0o644)
    (outside / "canary").write_text(layout.canary_text)
    (outside / "canary").chmod(0o640)
    (outside / "hostdir").mkdir()
    (outside / "hostdir" / "inner").write_text(f"HOSTINNER-{tokens['inner']}\n")
    os.symlink(f"HOSTLINK-{tokens['link']}", outside / "hostlink")
    (outside / "emptydir").mkdir()
    (outside / hostonly).write_text("HOSTONLY not a program\n")
    (outside / hostonly).chmod(0o755)
    # the decoys inside the root, and the mirror of OUTSIDE's own path
    mirror = root / str(outside).lstrip("/")
    for where, tag in ((root, "GUEST"), (mirror, "GUEST-mirror")):
        (where / "hostdir").mkdir(parents=True, exist_ok=True)
        (where / "secret").write_text(f"{tag}-secret\n")
        (where / "canary").write_text(f"{tag}-canary\n")
        (where / "hostdir" / "inner").write_text(f"{tag}-inner\n")
        os.symlink(f"{tag}-link", where / "hostlink")
        (where / "emptydir").mkdir()
    (mirror / "root").mkdir()
    # symlinks planted in the root (the guest plants more of its own)
    os.symlink(str(outside), root / "lnkdir_abs")
    os.symlink("..", root / "lnkdir_rel")
    os.symlink("../..", root / "sub" / "lnkdir_rel2")
    os.symlink("chain2", root / "chain1")
    os.symlink("sub/chain3", root / "chain2")
    os.symlink("../lnkdir_rel", root / "sub" / "chain3")
    for leaf in (*LEAVES, hostonly):
        os.symlink(str(outside / leaf), root / f"lnk_abs_{leaf}")
    for name, binary in (programs or {}).items():
        shutil.copy2(binary, root / "bin" / name)
        (root / "bin" / name).chmod(0o755)
    return layout


def make_race_tree(layout: Layout) -> None:
    """/race for race.c: directories d, d2 and files f, f2 with decoys, and the symlinks to the host they are
    swapped with (l -> OUTSIDE, l2 -> ../.., fl -> OUTSIDE/canary, fl2 -> ../../canary)."""
    race = layout.root / "race"
    for name in ("d", "d2"):
        (race / name).mkdir(parents=True)
        (race / name / "secret").write_text("GUEST-race-secret\n")
        (race / name / "canary").write_text("GUEST-race-canary\n")
    for name in ("f", "f2"):
        (race / name).write_text("GUEST-race-file\n")
    os.symlink(str(layout.outside), race / "l")
    os.symlink("../..", race / "l2")
    os.symlink(str(layout.outside / "canary"), race / "fl")
    os.symlink("../../canary", race / "fl2")


# ---------------------------------------------------------------------------------- the host's state


def _walk_outside(layout: Layout) -> list[Path]:
    found = [layout.outside]
    for dirpath, dirnames, filenames in os.walk(layout.outside):
        here = Path(dirpath)
        if here == layout.outside and "root" in dirnames:
            dirnames.remove("root")
        found.extend(here / name for name in sorted(dirnames + filenames))
    return found


def host_metadata(layout: Layout, paths: Sequence[Path] | None = None) -> dict[str, tuple[Any, ...]]:
    """lstat of everything outside the root (no file is read, so access times stay as they are)."""
    state: dict[str, tuple[Any, ...]] = {}
    for path in paths if paths is not None else _walk_outside(layout):
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue
        watch_atime = stat.S_ISDIR(info.st_mode) or path == layout.secret or path == layout.canary
        state[str(path.relative_to(layout.base))] = (
            stat.filemode(info.st_mode), info.st_uid, info.st_gid, info.st_size, info.st_nlink, info.st_ino,
            info.st_mtime_ns, info.st_ctime_ns, info.st_atime_ns if watch_atime else None,
        )
    return state


def host_contents(layout: Layout) -> dict[str, str]:
    """Digest of every regular file and target of every link outside the root (reads them)."""
    contents: dict[str, str] = {}
    for path in _walk_outside(layout):
        if path.is_symlink():
            contents[str(path.relative_to(layout.base))] = "-> " + os.readlink(path)
        elif path.is_file():
            contents[str(path.relative_to(layout.base))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return contents


def prime_atimes(layout: Layout, paths: Sequence[Path]) -> None:
    """Make access times older than change times (relatime then records the next read or listing)."""
    past = time.time() - 3 * 86400
    for path in paths:
        if path.is_symlink():
            continue
        os.utime(path, (past, past + 86400))


@attrs.frozen
class HostSnapshot:
    paths: tuple[Path, ...]
    metadata: dict[str, tuple[Any, ...]]
    contents: dict[str, str]
    base_listing: tuple[str, ...]


def snapshot_host(layout: Layout) -> HostSnapshot:
    """List and read everything, then prime access times, then lstat what was listed (no listing or read
    after priming: those would spend the one access-time update relatime allows)."""
    paths = tuple(_walk_outside(layout))
    contents = host_contents(layout)
    prime_atimes(layout, paths)
    metadata = host_metadata(layout, paths)
    return HostSnapshot(paths, metadata, contents, tuple(sorted(os.listdir(layout.base))))


def host_changes(layout: Layout, before: HostSnapshot) -> list[str]:
    """What changed outside the root since ``before``: first lstat of the known paths (access times as the
    guest left them), then a new listing for what appeared, then the contents (which reads files)."""
    metadata = host_metadata(layout, before.paths)
    new_paths = [path for path in _walk_outside(layout) if path not in set(before.paths)]
    metadata.update(host_metadata(layout, new_paths))
    contents = host_contents(layout)
    problems: list[str] = []
    for key in sorted(set(before.metadata) | set(metadata)):
        old, new = before.metadata.get(key), metadata.get(key)
        if old is None:
            problems.append(f"created outside the root: {key} {new}")
        elif new is None:
            problems.append(f"removed outside the root: {key}")
        elif old != new:
            fields = ("mode", "uid", "gid", "size", "nlink", "ino", "mtime", "ctime", "atime")
            diff = [f"{name} {a}->{b}" for name, a, b in zip(fields, old, new, strict=True) if a != b]
            what = "read or listed" if diff and all(d.startswith("atime") for d in diff) else "changed"
            problems.append(f"{what} outside the root: {key}: {', '.join(diff)}")
    for key in sorted(set(before.contents) & set(contents)):
        if before.contents[key] != contents[key]:
            problems.append(f"content changed outside the root: {key}")
    listing = tuple(sorted(os.listdir(layout.base)))
    if listing != before.base_listing:
        problems.append(f"the directory above OUTSIDE changed: {before.base_listing} -> {listing}")
    return problems


# ---------------------------------------------------------------------------------- running


def vm_command(arch: str, *options: str) -> list[str]:
    accel = ["--accel", "kvm"] if arch == "x86_64" else []
    return [sys.executable, "-m", "vm_cli", "run", *accel, *options]


def vm_env(layout: Layout) -> dict[str, str]:
    env = dict(GUEST_ENV)
    env["VM_HOME"] = str(layout.home)
    env.pop("PERSISTENCE_MODULE", None)
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def run_attack(layout: Layout, arch: str, program: str, *extra: str, timeout: float = 120.0,
               program_path: str | None = None) -> subprocess.CompletedProcess[str]:
    """``vm run --root ROOT ROOT/bin/PROGRAM OUTSIDE SECRET_INO CANARY_INO HOSTONLY EXTRA...``."""
    binary = program_path or str(layout.root / "bin" / program)
    command = [*vm_command(arch, "--root", str(layout.root)), binary, *layout.program_args(), *extra]
    return subprocess.run(command, cwd=layout.run_dir, env=vm_env(layout), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, errors="replace", timeout=timeout, check=False)


def verdicts(stdout: str) -> dict[str, list[str]]:
    """Attempt lines grouped by verdict (``blocked``, ``contained``, ``ESCAPED``, ``WRONG``)."""
    grouped: dict[str, list[str]] = {"blocked": [], "contained": [], "ESCAPED": [], "WRONG": []}
    for text in stdout.splitlines():
        _name, sep, rest = text.partition(": ")
        if not sep:
            continue
        verdict = rest.split(" ", 1)[0]
        if verdict in grouped:
            grouped[verdict].append(text)
    return grouped


def failures(layout: Layout, done: subprocess.CompletedProcess[str], before: HostSnapshot | None,
             *, expect_status: int | None = 0) -> list[str]:
    """Everything wrong with one attack run: escapes it saw, host strings it printed, host changes (since
    ``before``; None: not checked here)."""
    problems: list[str] = []
    grouped = verdicts(done.stdout)
    problems += grouped["ESCAPED"] + grouped["WRONG"]
    self_tokens = set(layout.tokens.values())
    for text in layout.host_strings():
        if text in done.stdout or (text in self_tokens and text in done.stderr):
            problems.append(f"the guest's output shows host data {text!r}")
    if before is not None:
        problems += host_changes(layout, before)
    if expect_status is not None and done.returncode != expect_status:
        problems.append(f"exit status {done.returncode} (stderr: {done.stderr.strip()[-800:]})")
    return problems
