"""A Debian sysroot for a foreign architecture, made from Debian's own .deb files, for the tests.

``python guest/debian/sysroot.py [--arch riscv64] [--out DIR] [PACKAGE ...]``
downloads the packages (default :data:`DEFAULT_PACKAGES`) and everything
they depend on (``Depends`` and ``Pre-Depends``, recursively; no
``Recommends``) for ``--arch`` from Debian's archive and unpacks them with
``dpkg-deb -x`` into one directory tree, a root that ``vm run --root`` and
``qemu-riscv64 -L`` can both use.

apt is run with options private to this script: its own sources list, lists,
package cache, empty ``dpkg`` status and configuration directories, all
under the work directory (default ``build/debian/<arch>``), so the host's
apt state (``/etc/apt``, ``/var/lib/apt``, ``/var/cache/apt``, the dpkg
database) is neither read for configuration nor changed. Packages are
verified by apt against Debian's archive keyring
(``/usr/share/keyrings/debian-archive-keyring.gpg``), as on any Debian
system. Nothing needs root.

The tree is merged-/usr like a Debian 13 installation (``/bin``, ``/sbin``,
``/lib`` link into ``/usr``), so ``PT_INTERP`` paths such as
``/lib/ld-linux-riscv64-lp64d.so.1`` resolve inside it. A finished tree
has a stamp file beside it (``sysroot-KEY.done``, listing its .debs; the
tree itself holds only what the packages hold); asking again for the same set
reuses it. Concurrent callers (parallel test workers) take a lock.

From Python: :func:`make_sysroot` returns the root's path;
:class:`SysrootError` says which step failed and why.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_WORK_ROOT = REPO_ROOT / "build" / "debian"
MIRROR = "http://deb.debian.org/debian"
# Debian 13: the first release with riscv64 as an official architecture.
SUITE = "trixie"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
#: What the tests run: a static busybox, coreutils and the interpreters and tools issue #14 names.
DEFAULT_PACKAGES = (
    "busybox-static",
    "coreutils",
    "grep",
    "sed",
    "gawk",
    "lua5.4",
    "sqlite3",
    "python3.13",
)
#: merged /usr: top-level directories that are links into /usr on Debian 13.
MERGED_USR_LINKS = {"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64"}


class SysrootError(Exception):
    """A step failed; the message names the command and its output."""


def _run(command: Sequence[str], cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(list(command), cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError as missing:
        raise SysrootError(f"{command[0]} is not installed (Debian: apt-get install apt dpkg)") from missing
    if done.returncode != 0:
        raise SysrootError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout


class PrivateApt:
    """apt-get/apt-cache with every state and configuration path under ``work`` (see the module docstring)."""

    def __init__(self, work: Path, arch: str) -> None:
        self.work = work
        self.arch = arch
        for sub in ("etc/apt.conf.d", "etc/preferences.d", "etc/sources.list.d", "etc/trusted.gpg.d",
                    "state/lists/partial", "cache/archives/partial", "debs"):  # fmt: skip
            (work / sub).mkdir(parents=True, exist_ok=True)
        status = work / "state" / "status"
        if not status.exists():
            status.write_text("")
        (work / "etc" / "sources.list").write_text(
            f"deb [arch={arch} signed-by={KEYRING}] {MIRROR} {SUITE} main\n", encoding="ascii"
        )

    def options(self) -> list[str]:
        w = self.work
        settings = {
            "Dir::Etc::SourceList": w / "etc" / "sources.list",
            "Dir::Etc::SourceParts": w / "etc" / "sources.list.d",
            "Dir::Etc::Parts": w / "etc" / "apt.conf.d",
            "Dir::Etc::Preferences": w / "etc" / "preferences",
            "Dir::Etc::PreferencesParts": w / "etc" / "preferences.d",
            "Dir::Etc::TrustedParts": w / "etc" / "trusted.gpg.d",
            "Dir::State": w / "state",
            "Dir::State::status": w / "state" / "status",
            "Dir::Cache": w / "cache",
            "APT::Architecture": self.arch,
            "APT::Architectures::": self.arch,
            "APT::Get::AllowUnauthenticated": "false",
            "Debug::NoLocking": "1",
        }
        options: list[str] = []
        for key, value in settings.items():
            options += ["-o", f"{key}={value}"]
        return options

    def update(self) -> None:
        _run(["apt-get", *self.options(), "-q", "update"])

    def closure(self, packages: Sequence[str]) -> list[str]:
        """``packages`` and everything they depend on or pre-depend on, recursively (real packages only)."""
        out = _run(["apt-cache", *self.options(), "depends", "--recurse", "--no-recommends", "--no-suggests",
                    "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", *packages])  # fmt: skip
        names = {line.strip() for line in out.splitlines() if line and not line.startswith(" ")}
        return sorted(name for name in names if not name.startswith("<"))

    def download(self, packages: Sequence[str]) -> list[Path]:
        debs = self.work / "debs"
        _run(["apt-get", *self.options(), "-q", "download", *packages], cwd=debs)
        found = []
        for name in packages:
            matches = sorted(debs.glob(f"{name}_*_{self.arch}.deb")) + sorted(debs.glob(f"{name}_*_all.deb"))
            if not matches:
                raise SysrootError(f"apt-get download {name} left no .deb in {debs}")
            found.append(matches[-1])
        return found


def _package_set_key(arch: str, packages: Sequence[str]) -> str:
    return hashlib.sha256(f"{SUITE} {arch} {' '.join(sorted(packages))}".encode()).hexdigest()[:16]


def make_sysroot(
    packages: Sequence[str] = DEFAULT_PACKAGES, *, arch: str = "riscv64", work_root: Path = DEFAULT_WORK_ROOT
) -> Path:
    """The path of a sysroot holding ``packages`` for ``arch`` (built now, or reused if already there)."""
    work = work_root / arch
    work.mkdir(parents=True, exist_ok=True)
    key = _package_set_key(arch, packages)
    root = work / f"sysroot-{key}"
    stamp = work / f"sysroot-{key}.done"
    with open(work / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file() and root.is_dir():
            return root
        apt = PrivateApt(work, arch)
        apt.update()
        debs = apt.download(apt.closure(packages))
        partial = work / f".partial-{key}"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        for top, target in MERGED_USR_LINKS.items():
            (partial / target).mkdir(parents=True, exist_ok=True)
            os.symlink(target, partial / top)
        for deb in debs:
            _run(["dpkg-deb", "-x", str(deb), str(partial)])
        shutil.rmtree(root, ignore_errors=True)
        partial.rename(root)
        stamp.write_text("\n".join(deb.name for deb in debs) + "\n")
        return root


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("packages", nargs="*", default=list(DEFAULT_PACKAGES))
    parser.add_argument("--arch", default="riscv64")
    parser.add_argument(
        "--work", type=Path, default=DEFAULT_WORK_ROOT, help="work directory (default build/debian)"
    )
    args = parser.parse_args(argv)
    try:
        root = make_sysroot(args.packages, arch=args.arch, work_root=args.work)
    except SysrootError as failed:
        print(f"sysroot: {failed}", file=sys.stderr)
        return 1
    print(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
