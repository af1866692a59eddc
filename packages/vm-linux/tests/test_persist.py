"""vm_linux.persist: a process's kernel-side state survives capture -> JSON -> restore, judged by the host kernel.

Descriptors are checked with the kernel's own answers: ``lseek`` offsets,
``F_GETFL`` flags, ``kcmp`` (is it the same open file description?) and
data written through a restored standard stream arriving in the new pipe.
"""

from __future__ import annotations

import copy
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vm_core.errors import SnapshotError, UnsupportedError
from vm_linux.persist import ProcessImage, SignalImage, capture_process, same_open_file
from vm_linux.process import LinuxProcess
from vm_linux.restore import restore_process
from vm_linux.signals import SigAction
from vm_mem import AddressSpace

PROGRAM = "/nonexistent/guest-program"


@pytest.fixture(autouse=True)
def keep_umask() -> Iterator[None]:
    """restore_process sets the host umask (the guest's); give the test runner its own back."""
    mask = os.umask(0o022)
    os.umask(mask)
    yield
    os.umask(mask)


@pytest.fixture
def streams() -> Iterator[list[int]]:
    """Three pipes standing for stdin/stdout/stderr: [r0, w0, r1, w1, r2, w2]."""
    fds = [fd for _ in range(3) for fd in os.pipe()]
    yield fds
    for fd in fds:
        os.close(fd)


def new_process(std: list[int], root: str | None = None) -> LinuxProcess:
    return LinuxProcess("riscv64", AddressSpace(), PROGRAM, ["prog", "arg"], ["A=1"], root=root,
                        stdin=std[0], stdout=std[3], stderr=std[5])


def round_trip(image: ProcessImage) -> ProcessImage:
    return ProcessImage.from_json(json.loads(json.dumps(image.to_json())))


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_files_reopen_at_their_offsets_and_dups_share_again(tmp_path: Path, streams: list[int]) -> None:
    process = new_process(streams)
    fds = process.state.fds
    data = tmp_path / "data"
    data.write_bytes(bytes(range(100)))
    a = fds.install(os.open(data, os.O_RDWR), inside_root=True)
    os.lseek(fds.host(a), 37, os.SEEK_SET)
    a_dup = fds.dup(a, cloexec=True)
    b = fds.install(os.open(tmp_path / "log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644), inside_root=True)
    d = fds.install(os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY), inside_root=True)
    std_dup = fds.dup(1, lowest=10)
    image = capture_process(process, std_streams=(streams[0], streams[3], streams[5]))
    assert round_trip(image) == image
    process.state.fds.close_all()

    r_out, w_out = os.pipe()
    restored = restore_process(round_trip(image), AddressSpace(), std_streams=(streams[0], w_out, streams[5]))
    new = restored.state.fds
    try:
        assert sorted(new.files) == [0, 1, 2, a, a_dup, b, d, std_dup]
        assert os.lseek(new.host(a), 0, os.SEEK_CUR) == 37
        assert same_open_file(new.host(a), new.host(a_dup)) is True
        os.write(new.host(a_dup), b"xyz")  # one open file description: the offset moves for both
        assert os.lseek(new.host(a), 0, os.SEEK_CUR) == 40
        assert data.read_bytes()[37:40] == b"xyz"
        assert (new.get(a).cloexec, new.get(a_dup).cloexec) == (False, True)
        assert fcntl.fcntl(new.host(b), fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY
        assert fcntl.fcntl(new.host(b), fcntl.F_GETFL) & os.O_APPEND
        assert os.path.samestat(os.fstat(new.host(d)), os.stat(tmp_path))
        assert same_open_file(new.host(1), w_out) and same_open_file(new.host(std_dup), w_out)
        os.write(new.host(std_dup), b"to the new stdout")
        assert os.read(r_out, 100) == b"to the new stdout"
        assert restored.state.fs.guest_path_of_fd(new.host(a)) == str(data)
    finally:
        new.close_all()
        os.close(r_out)
        os.close(w_out)


@pytest.mark.parametrize("kind", ["pipe", "socket"])
def test_pipes_and_sockets_are_refused(kind: str, streams: list[int]) -> None:
    process = new_process(streams)
    if kind == "pipe":
        read_end, write_end = os.pipe()
        os.close(write_end)
        host = read_end
    else:
        one, other = socket.socketpair()
        other.close()
        host = one.detach()
    fd = process.state.fds.install(host)
    with pytest.raises(UnsupportedError, match=f"guest fd {fd}: it is a {kind}"):
        capture_process(process, std_streams=(streams[0], streams[3], streams[5]))
    process.state.fds.close_all()


@pytest.mark.parametrize("kind", ["itimer", "posix"])
def test_guest_timers_are_refused(kind: str, streams: list[int]) -> None:
    process = new_process(streams)
    timers = process.state.timers
    if kind == "itimer":
        timers.itimers[0].arm(10**12, 0)
    else:
        timers.create(1, 10, 1, 0)  # a disarmed POSIX timer still exists
    with pytest.raises(UnsupportedError, match="it has timers"):
        capture_process(process, std_streams=(streams[0], streams[3], streams[5]))
    process.state.fds.close_all()


def test_renamed_and_vanished_files(tmp_path: Path, streams: list[int]) -> None:
    process = new_process(streams)
    path = tmp_path / "f"
    path.write_text("x")
    fd = process.state.fds.install(os.open(path, os.O_RDONLY), inside_root=True)
    image = capture_process(process, std_streams=(streams[0], streams[3], streams[5]))
    path.rename(tmp_path / "g")
    renamed = capture_process(process, std_streams=(streams[0], streams[3], streams[5]))
    assert [f.guest_path for f in renamed.files if f.guest_fd == fd] == [str(tmp_path / "g")]  # the kernel's name
    (tmp_path / "g").unlink()
    with pytest.raises(UnsupportedError, match="removed"):
        capture_process(process, std_streams=(streams[0], streams[3], streams[5]))
    process.state.fds.close_all()
    before = open_fds()
    with pytest.raises(SnapshotError, match=f"cannot reopen guest fd {fd}"):
        restore_process(image, AddressSpace(), std_streams=(streams[0], streams[3], streams[5]))
    assert open_fds() == before  # the standard streams opened first were closed again


def test_process_values_survive(tmp_path: Path, streams: list[int]) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "inside").write_text("in the root")
    process = new_process(streams, root=str(tmp_path))
    state = process.state
    state.fs.chdir(state.fs.root_node, "/sub")
    fd = state.fds.install(os.open(tmp_path / "sub" / "inside", os.O_RDONLY), inside_root=True)
    state.pid, state.clear_child_tid, state.sigreturn_trampoline = 4242, 0x1234, 0x3FFF000
    state.rlimits = {7: (100, 200)}
    state.shared_file_ranges = [(0x1000, 0x3000)]
    state.signals.actions = {10: SigAction(0x1000, 0x08000004, 1 << 3, 0x2000), 2: SigAction(1)}
    state.signals.set_blocked(1 << 9)
    state.signals.pending = {10: b"\x0a" + bytes(127)}
    state.signals.altstack = (0x5000, 0, 0x4000)
    os.umask(0o027)
    image = capture_process(process, std_streams=(streams[0], streams[3], streams[5]))
    os.umask(0o022)
    restored = restore_process(round_trip(image), AddressSpace(), std_streams=(streams[0], streams[3], streams[5]))
    new = restored.state
    try:
        assert (new.pid, new.clear_child_tid, new.sigreturn_trampoline) == (4242, 0x1234, 0x3FFF000)
        assert (new.rlimits, new.shared_file_ranges) == ({7: (100, 200)}, [(0x1000, 0x3000)])
        assert new.signals.actions == state.signals.actions
        assert (new.signals.blocked, new.signals.pending) == (1 << 9, state.signals.pending)
        assert new.signals.altstack == (0x5000, 0, 0x4000)
        assert (new.fs.root_path, new.fs.cwd_path()) == (str(tmp_path.resolve()), "/sub")
        with new.fs.lookup(new.fs.cwd_node, "inside") as inside:
            assert os.path.samestat(os.fstat(inside.fd), (tmp_path / "sub" / "inside").stat())
        assert os.read(new.fds.host(fd), 100) == b"in the root"
        assert (restored.argv, restored.envp) == (["prog", "arg"], ["A=1"])
        mask = os.umask(0)
        assert mask == 0o027
    finally:
        new.fds.close_all()
        state.fds.close_all()


sig_actions = st.dictionaries(
    st.integers(1, 64),
    st.builds(SigAction, st.integers(0, 2**64 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1),
              st.integers(0, 2**64 - 1)),
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(
    actions=sig_actions,
    blocked=st.integers(0, 2**64 - 1),
    pending=st.dictionaries(st.integers(1, 64), st.binary(min_size=128, max_size=128), max_size=3),
    altstack=st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1)),
    argv=st.lists(st.text(max_size=8), max_size=4),
)
def test_json_round_trip(actions: dict, blocked: int, pending: dict, altstack: tuple, argv: list[str]) -> None:
    signals = SignalImage(tuple(sorted(actions.items())), blocked, tuple(sorted(pending.items())), altstack)
    image = ProcessImage(**{**_fields(base_image()), "argv": tuple(argv), "signals": signals})
    assert round_trip(image) == image


def _fields(image: ProcessImage) -> dict[str, Any]:
    return {field.name: getattr(image, field.name) for field in attrs.fields(ProcessImage)}


def base_image() -> ProcessImage:
    read_end, write_end = os.pipe()
    try:
        process = LinuxProcess("riscv64", AddressSpace(), PROGRAM, ["p"], ["E=1"], stdin=read_end, stdout=write_end,
                               stderr=write_end)
        image = capture_process(process, std_streams=(read_end, write_end, write_end))
        process.state.fds.close_all()
        return image
    finally:
        os.close(read_end)
        os.close(write_end)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [prefix] + [p for key, item in value.items() for p in _paths(item, (*prefix, key))]
    if isinstance(value, list):
        return [prefix] + [p for index, item in enumerate(value) for p in _paths(item, (*prefix, index))]
    return [prefix]


@settings(max_examples=150, deadline=None)
@given(data=st.data(), junk=st.sampled_from([None, "text", -1, 2**70, 1.5, [], {}, [1, 2, 3], True]))
def test_malformed_json_gives_snapshot_error_only(data: st.DataObject, junk: Any) -> None:
    document = base_image().to_json()
    paths = [path for path in _paths(document) if path]
    path = data.draw(st.sampled_from(paths))
    broken = copy.deepcopy(document)
    parent = broken
    for key in path[:-1]:
        parent = parent[key]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = junk
    try:
        image = ProcessImage.from_json(broken)
    except SnapshotError as err:
        assert str(err).startswith("snapshot: malformed process state")
    else:  # some replacements are still valid values (e.g. a null root): they must round-trip
        assert round_trip(image) == image


def test_the_flag_probe_agrees_with_kcmp(tmp_path: Path) -> None:
    from vm_linux.persist import flag_probe_same_file, kcmp_same_file

    path = tmp_path / "f"
    path.write_bytes(b"x")
    first = os.open(path, os.O_RDONLY)
    read_end, write_end = os.pipe()
    fds = [first, os.dup(first), os.open(path, os.O_RDONLY), read_end, write_end, os.dup(write_end)]
    try:
        for a in fds:
            for b in fds:
                flags = fcntl.fcntl(a, fcntl.F_GETFL)
                probed = flag_probe_same_file(a, b)
                assert fcntl.fcntl(a, fcntl.F_GETFL) == flags  # put back
                expected = kcmp_same_file(a, b)
                if expected is None:
                    pytest.skip("this host refuses kcmp, the oracle")
                assert probed == expected, (a, b)
    finally:
        for fd in fds:
            os.close(fd)


def test_a_stdout_redirected_to_a_file_stays_a_standard_stream(tmp_path: Path, streams: list[int]) -> None:
    """Without a root, a standard stream that is a file is saved as the stream, not reopened by its path."""
    out = os.open(tmp_path / "out.txt", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        process = LinuxProcess("riscv64", AddressSpace(), PROGRAM, ["prog"], [], stdin=streams[0], stdout=out,
                               stderr=streams[5])
        image = capture_process(process, std_streams=(streams[0], out, streams[5]))
        process.close()
        assert [(f.guest_fd, f.stdio, f.guest_path) for f in image.files] == [(0, 0, None), (1, 1, None), (2, 2, None)]
    finally:
        os.close(out)
