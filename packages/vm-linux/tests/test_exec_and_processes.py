"""execve's file checks and ``#!`` lines, wait/kill/process groups: each against the host kernel's own answer.

The host kernel is the oracle: the same script (interpreter ``/bin/echo``)
is exec'd natively and its output is the argument vector binfmt_script made;
``ExecRequested`` from the ``execve`` handler must carry the same vector.
Scripts the kernel refuses must be refused with the same errno.
"""

from __future__ import annotations

import errno
import os
import struct
import subprocess
import time
from pathlib import Path

import pytest
from vm_linux.syscalls.exec_calls import ExecRequested

SHEBANG_LINES = [
    b"#!/bin/echo\n",
    b"#!/bin/echo one\n",
    b"#! \t/bin/echo  two words  \t\n",
    b"#!/bin/echo tab\there\n",
    b"#!/bin/echo\tafter-tab\n",
    b"#!/bin/echo x" + b"y" * 300 + b"\n",  # longer than the kernel's 256-byte buffer
    b"#!/bin/echo no-newline",
    b"#!\n",
    b"#!   \n",
    b"#!/no/such/interpreter\n",
    b"#!" + b"/" * 300,
]


def host_exec(script: Path) -> tuple[int, bytes]:
    """(errno or 0, stdout) of exec'ing ``script hello`` natively."""
    try:
        result = subprocess.run([str(script), "hello"], capture_output=True, check=False)
    except OSError as err:
        return err.errno or -1, b""
    return 0, result.stdout


def guest_exec(h, script: Path) -> tuple[int, bytes]:
    argv = [h.cstr(str(script)), h.cstr("hello")]
    vector = h.alloc(struct.pack("<QQQ", *argv, 0))
    try:
        result = h.call("execve", h.cstr(str(script)), vector, 0)
    except ExecRequested as request:
        plan = request.plan
        if plan.data.startswith(b"#!"):
            return -1, b"the interpreter's own file was not read"
        return 0, b" ".join(plan.argv[1:]) + b"\n"
    return -result, b""


@pytest.mark.parametrize("line", SHEBANG_LINES, ids=range(len(SHEBANG_LINES)))
def test_shebang_lines_as_the_kernel_reads_them(line: bytes, sys_harness, tmp_path: Path) -> None:
    script = tmp_path / "script"
    script.write_bytes(line)
    script.chmod(0o755)
    assert guest_exec(sys_harness, script) == host_exec(script)


def test_file_checks_as_the_kernel_makes_them(sys_harness, tmp_path: Path) -> None:
    cases = {"missing": None, "dir": "dir", "plain": 0o644, "garbage": 0o755}
    for name, mode in cases.items():
        path = tmp_path / name
        if mode == "dir":
            path.mkdir()
        elif mode is not None:
            path.write_bytes(b"\x01\x02garbage")
            path.chmod(mode)
        host = host_exec(path)[0]
        guest = guest_exec(sys_harness, path)[0]
        if name == "garbage":  # the kernel refuses it; vm's handler leaves the format to the loader (ENOEXEC)
            assert host == errno.ENOEXEC and guest == 0
        else:
            assert guest == host, name


def test_wait_and_kill_of_a_child(sys_harness) -> None:
    h = sys_harness
    status = h.alloc(4)
    assert h.call("wait4", -1, status, 0, 0) == -errno.ECHILD
    child = os.fork()
    if child == 0:  # a host child the guest did not fork: not a guest process, though the guest may reap it
        os._exit(3)
    assert h.call("kill", child, 0) == -errno.ESRCH
    assert h.call("getpgid", child) == -errno.ESRCH
    assert h.call("wait4", -1, status, 0x100, 0) == -errno.EINVAL
    assert h.call("wait4", child, status, 0, 0) == child
    assert struct.unpack("<i", h.mem.read(status, 4))[0] == 3 << 8
    assert h.call("wait4", child, status, 0, 0) == -errno.ECHILD


def test_paths_and_interpreters_resolve_inside_the_root(make_harness, tmp_path: Path) -> None:
    """A guest root without /bin/echo: neither the program path nor a ``#!`` interpreter reaches the host's."""
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    script = root / "bin" / "script"
    script.write_bytes(b"#!/bin/echo escaped\n")
    script.chmod(0o755)
    h = make_harness(root=str(root))
    vector = h.alloc(struct.pack("<QQ", h.cstr("x"), 0))
    assert h.call("execve", h.cstr("/bin/echo"), vector, 0) == -errno.ENOENT
    assert h.call("execve", h.cstr("/../../../../bin/echo"), vector, 0) == -errno.ENOENT
    assert h.call("execve", h.cstr("/bin/script"), vector, 0) == -errno.ENOENT  # its interpreter is not there
    (root / "bin" / "echo").symlink_to("/usr/bin/echo")  # an absolute link: resolved inside the root too
    assert h.call("execve", h.cstr("/bin/script"), vector, 0) == -errno.ENOENT
    (root / "bin" / "echo").unlink()
    (root / "bin" / "echo").symlink_to("/bin/echo")  # inside a root this link names itself, as in a chroot
    assert h.call("execve", h.cstr("/bin/script"), vector, 0) == -errno.ELOOP


def test_kill_right_after_fork_reaches_the_child(sys_harness) -> None:
    """The parent enters its child in the guest process table itself: kill() at once never says ESRCH."""
    h = sys_harness
    status = h.alloc(4)
    pid = h.call("clone", 17, 0, 0, 0, 0)  # fork: SIGCHLD as the exit signal
    if pid == 0:  # the child (a copy of this test process): wait to be killed
        time.sleep(30)
        os._exit(1)
    assert pid > 0
    assert h.call("kill", pid, 15) == 0
    assert h.call("wait4", pid, status, 0, 0) == pid
    assert struct.unpack("<i", h.mem.read(status, 4))[0] == 15  # killed by SIGTERM, its default action
