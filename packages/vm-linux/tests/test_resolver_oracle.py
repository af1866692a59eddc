"""The path walk against the kernel's own ``openat2(RESOLVE_IN_ROOT)``, on hypothesis-generated trees.

vm resolves guest paths either through the host's ``openat2`` or, where a
path holds symbolic links (or the kernel lacks ``openat2``), by walking it
component by component (:class:`vm_linux.fs.GuestFilesystem` with
``resolver="walk"``). Here the kernel is the oracle: trees of directories,
files and symbolic links (absolute and relative targets, ``..``, loops,
dangling links) are generated, and every path must name the same object, or
fail with the same errno, under the walk as under ``openat2(root, path,
O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)``; creating a file must
create it at the same place.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vm_linux import hostcalls
from vm_linux.fs import RESOLVE_FAST, RESOLVE_WALK, GuestFilesystem
from vm_linux.guest_errno import GuestErrno

pytestmark = pytest.mark.skipif(not hostcalls.have_openat2(), reason="the host kernel has no openat2")

NAMES = ("a", "b", "c")
IN_ROOT = hostcalls.RESOLVE_IN_ROOT | hostcalls.RESOLVE_NO_MAGICLINKS

component = st.sampled_from([*NAMES, "..", "."])
relative_path = st.lists(component, min_size=1, max_size=5).map("/".join)
any_path = st.tuples(st.booleans(), relative_path, st.booleans()).map(
    lambda t: ("/" if t[0] else "") + t[1] + ("/" if t[2] else "")
)
entry_path = st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map(tuple)
entry = st.tuples(entry_path, st.sampled_from(["dir", "file", "link"]), any_path)
tree = st.lists(entry, max_size=12)


def build(root: Path, entries: list[tuple[tuple[str, ...], str, str]]) -> None:
    """Create ``entries`` below ``root`` (an entry whose place is taken or unreachable is skipped)."""
    for parts, kind, target in entries:
        place = root.joinpath(*parts)
        try:
            ancestors = [root.joinpath(*parts[:i]) for i in range(1, len(parts))]
            if not all(stat.S_ISDIR(os.lstat(a).st_mode) for a in ancestors):  # never through a link
                continue
            if os.path.lexists(place):
                continue
            if kind == "dir":
                place.mkdir()
            elif kind == "file":
                place.write_text("/".join(parts))
            else:
                place.symlink_to(target)
        except OSError:
            continue


def identity(fd: int) -> tuple[int, int]:
    info = os.fstat(fd)
    return info.st_dev, info.st_ino


def kernel_lookup(root_fd: int, path: str, follow: bool) -> tuple[int, int] | int:
    flags = os.O_PATH | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = hostcalls.openat2(root_fd, path, flags, 0, IN_ROOT)
    except OSError as err:
        return err.errno or 0
    try:
        return identity(fd)
    finally:
        os.close(fd)


def vm_lookup(fs: GuestFilesystem, path: str, follow: bool) -> tuple[int, int] | int:
    try:
        node = fs.lookup(fs.root_node, path, follow=follow)
    except GuestErrno as err:
        return err.code
    except OSError as err:
        return err.errno or 0
    with node:
        return identity(node.fd)


def listing(root: Path) -> list[tuple[str, str]]:
    found = []
    for place in sorted(root.rglob("*")):
        kind = "link" if place.is_symlink() else "dir" if place.is_dir() else "file"
        found.append((str(place.relative_to(root)), kind))
    return found


@pytest.fixture(scope="module")
def exe(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("exe") / "prog"
    path.write_text("program")
    return str(path)


@pytest.mark.parametrize("resolver", [RESOLVE_WALK, RESOLVE_FAST])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=tree, paths=st.lists(any_path, min_size=1, max_size=8), follow=st.booleans())
def test_lookup_agrees_with_openat2(exe: str, resolver: str, entries, paths, follow: bool) -> None:
    with tempfile.TemporaryDirectory() as top:
        root = Path(top) / "root"
        root.mkdir()
        (Path(top) / "a").mkdir()  # outside the root, where an escaping ".." would land
        build(root, entries)
        fs = GuestFilesystem(str(root), exe, resolver=resolver)
        root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
        try:
            for path in paths:
                assert vm_lookup(fs, path, follow) == kernel_lookup(root_fd, path, follow), path
        finally:
            os.close(root_fd)
            fs.close()


@pytest.mark.parametrize("resolver", [RESOLVE_WALK, RESOLVE_FAST])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=tree, path=any_path, exclusive=st.booleans())
def test_create_lands_where_openat2_creates(exe: str, resolver: str, entries, path: str, exclusive: bool) -> None:
    flags = os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC | (os.O_EXCL if exclusive else 0)
    with tempfile.TemporaryDirectory() as top:
        kernel_root, vm_root = Path(top) / "kernel", Path(top) / "vm"
        kernel_root.mkdir()
        build(kernel_root, entries)
        shutil.copytree(kernel_root, vm_root, symlinks=True)
        root_fd = os.open(kernel_root, os.O_PATH | os.O_DIRECTORY)
        try:
            try:
                os.close(hostcalls.openat2(root_fd, path, flags, 0o644, IN_ROOT))
                expected = 0
            except OSError as err:
                expected = err.errno or 0
        finally:
            os.close(root_fd)
        fs = GuestFilesystem(str(vm_root), exe, resolver=resolver)
        try:
            fd, _virtual, _outside = fs.open(fs.root_node, path, flags, 0o644)
            os.close(fd)
            got = 0
        except GuestErrno as err:
            got = err.code
        except OSError as err:
            got = err.errno or 0
        finally:
            fs.close()
        assert got == expected, (path, errno.errorcode.get(got), errno.errorcode.get(expected))
        assert listing(vm_root) == listing(kernel_root)
        assert sorted(os.listdir(top)) == ["kernel", "vm"]  # nothing was created outside either root
