"""The virtual /proc and /dev (vm_linux.procfs): modes against the host kernel, contents against qemu-riscv64.

Oracles: the host kernel's own /proc and /dev for what does not depend on the
ISA (entry modes, device numbers, the order of the ``status`` keys, the
number of ``stat`` fields, the ``meminfo`` columns); qemu-riscv64 7.2 for what
it emulates (``maps``, ``stat``'s fields it fills, ``cmdline``, ``auxv``,
``exe``), by running ``tests/c/proc_cat.c`` under both. On the vm side the
program runs under the reference interpreter, its paths resolved by
vm_linux.fs, which mounts the guest's /proc and /dev (vm_linux.vfs).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from vm_core.errors import MemoryFault
from vm_linux.guest_errno import GuestErrno
from vm_linux.process import LinuxProcess
from vm_linux.procfs import (
    CharDevice,
    NodeKind,
    WriteRule,
    dev_root,
    device_read,
    device_write,
    proc_root,
    walk,
    write_comm,
    write_to,
)
from vm_linux.procfs_render import (
    MAPS_NAME_COLUMN,
    map_entries,
    render_auxv,
    render_cmdline,
    render_meminfo,
    render_stat,
)
from vm_linux.procfs_source import OUTSIDE_ROOT_LINK, StateProcSource, fd_link_text_for
from vm_linux.stack import (
    AT_EXECFN,
    AT_MINSIGSTKSZ,
    AT_NULL,
    AT_RANDOM,
    STACK_SIZE,
    parse_initial_stack,
)
from vm_mem import AddressSpace
from vm_translate.riscv.archinfo import RV64

STACK_TOP = RV64.stack_top
STACK_BOTTOM = STACK_TOP - STACK_SIZE


GUEST_ENV = ["LANG=C", "PROCFS_TEST=1"]
PROC_FILES = ["/proc/self/maps", "/proc/self/stat", "/proc/self/cmdline", "/proc/self/auxv", "/proc/self/environ"]
LINKS = ["@/proc/self/exe", "@/proc/self/cwd"]
#: qemu-riscv64 7.2's maps line: unpadded hex range, perms, %08x offset, %02x:%02x device, inode, name at 73.
QEMU_MAPS_LINE = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) ([r-][w-][x-][ps]) ([0-9a-f]{8}) ([0-9a-f]{2}):([0-9a-f]{2}) (\d+) +(.*)$")


# ---------------------------------------------------------------------- helpers


def make_source(process: LinuxProcess) -> StateProcSource:
    source: StateProcSource = process.state.fs.vfs.source  # the one the guest's /proc is rendered from
    return source


def loaded(program: Path, argv: list[str], **kwargs: Any) -> LinuxProcess:
    process = LinuxProcess("riscv64", AddressSpace(), str(program), argv, GUEST_ENV, **kwargs)
    process.load()
    return process


@pytest.fixture
def proc_cat(riscv_program) -> Path:
    return riscv_program("proc_cat", "static")


def run_under_vm(program: Path, args: list[str], tmp_path: Path, **kwargs: Any) -> bytes:
    executor = pytest.importorskip("vm_translate.executor")
    riscv = pytest.importorskip("vm_translate.riscv")
    cpu_module = pytest.importorskip("vm_translate.cpu")
    frontend = riscv.RiscvFrontEnd()
    mem = AddressSpace()
    cpu = cpu_module.CpuState("riscv64", frontend.layout.size, mem)
    out_path = tmp_path / "vm-stdout"
    argv0 = kwargs.pop("argv0", str(program))
    with open(out_path, "wb") as out:
        process = LinuxProcess("riscv64", mem, str(program), [argv0, *args], GUEST_ENV, stdout=out.fileno(), **kwargs)
        process.load()
        process.init_cpu(cpu)
        result = process.run(executor.ReferenceEngine(frontend), cpu)
    assert result.exit_status == 0
    return out_path.read_bytes()


def run_under_qemu(qemu: str, program: Path, args: list[str]) -> bytes:
    env = dict(item.split("=", 1) for item in GUEST_ENV)
    done = subprocess.run([qemu, str(program), *args], capture_output=True, env=env, check=True)
    return done.stdout


def sections(output: bytes) -> tuple[tuple[int, int], dict[str, bytes]]:
    """``(pid, ppid)`` and each argument's bytes from proc_cat's output."""
    head, _, rest = output.partition(b"\n")
    _, pid, _, ppid = head.split()
    found: dict[str, bytes] = {}
    while rest:
        line, _, rest = rest.partition(b"\n")
        _, name, size = line.split(b" ", 2)
        assert not size.startswith(b"error"), line
        found[name.decode()] = rest[: int(size)]
        rest = rest[int(size) :]
    return (int(pid), int(ppid)), found


def maps_lines(raw: bytes) -> list[re.Match[str]]:
    matches = []
    for line in raw.decode().splitlines():
        match = QEMU_MAPS_LINE.match(line)
        assert match is not None, line
        name_at = len(line) - len(match.group(8))
        assert name_at == MAPS_NAME_COLUMN, line
        matches.append(match)
    return matches


def auxv_pairs(raw: bytes) -> list[tuple[int, int]]:
    return [struct.unpack_from("<QQ", raw, i) for i in range(0, len(raw), 16)]


@pytest.fixture(scope="module")
def both_runs(riscv_program, qemu: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """proc_cat run once under qemu and once under vm with the same arguments and environment."""
    program = riscv_program("proc_cat", "static")
    args = [*PROC_FILES, *LINKS]
    qemu_ids, qemu_out = sections(run_under_qemu(qemu, program, args))
    vm_ids, vm_out = sections(run_under_vm(program, args, tmp_path_factory.mktemp("vm-run")))
    yield {"program": program, "qemu": qemu_out, "vm": vm_out, "qemu_ids": qemu_ids, "vm_ids": vm_ids}


# ---------------------------------------------------------------------- against qemu-riscv64


def test_maps_lines_have_qemus_format_and_program_lines_are_identical(both_runs: dict[str, Any]) -> None:
    qemu_lines = maps_lines(both_runs["qemu"]["/proc/self/maps"])
    vm_lines = maps_lines(both_runs["vm"]["/proc/self/maps"])
    program = str(both_runs["program"])
    qemu_file = [m.group(0) for m in qemu_lines if m.group(8) == program]
    vm_file = [m.group(0) for m in vm_lines if m.group(8) == program]
    assert vm_file == qemu_file  # same segments, protections (relro included), offsets, device, inode, name
    assert len(vm_file) >= 2
    names = {m.group(8) for m in vm_lines}
    assert names <= {program, "", "[heap]", "[stack]"}
    stack = [m for m in vm_lines if m.group(8) == "[stack]"]
    assert [(int(m.group(1), 16), int(m.group(2), 16)) for m in stack] == [(STACK_BOTTOM, STACK_TOP)]
    for m in vm_lines:
        if m.group(8) != program:
            assert (m.group(4), m.group(5), m.group(6), m.group(7)) == ("00000000", "00", "00", "0")
    starts = [int(m.group(1), 16) for m in vm_lines]
    assert starts == sorted(starts)


def test_stat_fields_qemu_fills_agree(both_runs: dict[str, Any]) -> None:
    qemu_stat = both_runs["qemu"]["/proc/self/stat"].decode()
    vm_stat = both_runs["vm"]["/proc/self/stat"].decode()
    assert vm_stat.endswith("\n") and qemu_stat.endswith("\n")
    q_pid, q_rest = qemu_stat.split(" ", 1)
    v_pid, v_rest = vm_stat.split(" ", 1)
    assert (int(q_pid), int(v_pid)) == (both_runs["qemu_ids"][0], both_runs["vm_ids"][0])
    q_comm, q_fields = q_rest[: q_rest.rindex(")") + 1], q_rest[q_rest.rindex(")") + 2 :].split()
    v_comm, v_fields = v_rest[: v_rest.rindex(")") + 1], v_rest[v_rest.rindex(")") + 2 :].split()
    assert v_comm == q_comm == "(proc_cat-static)"
    assert len(v_fields) == 50 and len(q_fields) == 42  # Linux's 52 fields; qemu 7.2 prints 44
    assert int(q_fields[1]) == both_runs["qemu_ids"][1] and int(v_fields[1]) == both_runs["vm_ids"][1]  # ppid
    vm_maps = maps_lines(both_runs["vm"]["/proc/self/maps"])
    stack = next(m for m in vm_maps if m.group(8) == "[stack]")
    assert int(stack.group(1), 16) <= int(v_fields[25]) < int(stack.group(2), 16)  # startstack
    assert int(v_fields[19]) > 0 and int(q_fields[19]) > 0  # starttime in boot-time ticks
    # every field qemu leaves 0 is 0 in vm too, except those Linux fills and vm knows
    filled_by_vm = {0, 5, 7, 9, 11, 12, 15, 17, 20, 21, 22, 23, 24, 35}
    for index, value in enumerate(q_fields):
        if index not in filled_by_vm and index not in (1, 19, 25):
            assert value == "0" and v_fields[index] == "0", index
    assert v_fields[0] == "R" and v_fields[5] == "-1"


def test_cmdline_environ_exe_cwd_equal_qemus(both_runs: dict[str, Any]) -> None:
    for name in ("/proc/self/cmdline", "/proc/self/environ", "@/proc/self/exe", "@/proc/self/cwd"):
        assert both_runs["vm"][name] == both_runs["qemu"][name], name
    assert both_runs["vm"]["/proc/self/cmdline"].split(b"\0")[1] == b"/proc/self/maps"


def test_auxv_has_qemus_values_but_for_stack_addresses(both_runs: dict[str, Any]) -> None:
    qemu_auxv = dict(auxv_pairs(both_runs["qemu"]["/proc/self/auxv"]))
    vm_pairs = auxv_pairs(both_runs["vm"]["/proc/self/auxv"])
    vm_auxv = dict(vm_pairs)
    assert vm_pairs[-1] == (AT_NULL, 0) and len(vm_auxv) == len(vm_pairs)
    # vm's vector is Linux's (riscv's AT_MINSIGSTKSZ first); qemu 7.2 lacks AT_MINSIGSTKSZ and orders its own way
    assert set(vm_auxv) == set(qemu_auxv) | {AT_MINSIGSTKSZ}
    for key, expected in qemu_auxv.items():
        if key in (AT_RANDOM, AT_EXECFN):
            assert STACK_BOTTOM <= vm_auxv[key] < STACK_TOP
        else:
            assert vm_auxv[key] == expected, key


def test_auxv_is_the_vector_on_the_guest_stack(proc_cat: Path) -> None:
    process = loaded(proc_cat, [str(proc_cat)])
    stack = process.state.exec_image.stack  # type: ignore[union-attr]
    on_stack = parse_initial_stack(process.mem, stack.sp).auxv
    assert auxv_pairs(render_auxv(make_source(process))) == list(on_stack)
    process.state.fds.close_all()


# ---------------------------------------------------------------------- against the host kernel


def host_mode(path: str) -> int:
    return os.lstat(path).st_mode


def test_process_entries_have_the_host_kernels_modes(proc_cat: Path) -> None:
    process = loaded(proc_cat, [str(proc_cat)])
    source = make_source(process)
    pid_dir = walk(source, proc_root(), [str(source.pid)])
    assert pid_dir is not None
    for node in pid_dir.entries(source):
        assert node.mode == host_mode(f"/proc/self/{node.name}"), node.name
    assert pid_dir.mode == host_mode(f"/proc/{os.getpid()}")
    assert proc_root().mode == host_mode("/proc")
    for name in ("self", "thread-self", "cpuinfo", "meminfo"):
        node = walk(source, proc_root(), [name])
        assert node is not None and node.mode == host_mode(f"/proc/{name}"), name
    task = walk(source, proc_root(), [str(source.pid), "task", str(source.pid)])
    assert task is not None and task.mode == pid_dir.mode
    assert [n.name for n in task.entries(source)] == [n.name for n in pid_dir.entries(source) if n.name != "task"]
    process.state.fds.close_all()


def test_fd_links_have_the_host_kernels_modes_per_access_mode(proc_cat: Path, tmp_path: Path) -> None:
    process = loaded(proc_cat, [str(proc_cat)])
    source = make_source(process)
    target = tmp_path / "file"
    target.write_bytes(b"x")
    fds = process.state.fds
    opened = {flags: fds.install(os.open(target, flags), inside_root=True) for flags in (os.O_RDONLY, os.O_WRONLY, os.O_RDWR)}
    fd_dir = walk(source, proc_root(), [str(source.pid), "fd"])
    assert fd_dir is not None
    nodes = {node.fd: node for node in fd_dir.entries(source)}
    for guest_fd in opened.values():
        node = nodes[guest_fd]
        assert node.mode == host_mode(f"/proc/self/fd/{fds.host(guest_fd)}")
        assert node.readlink(source) == str(target)
        assert node.name == str(guest_fd)
    fds.close_all()


@pytest.mark.parametrize("device", list(CharDevice))
def test_devices_have_the_host_kernels_modes_and_numbers(device: CharDevice) -> None:
    name = device.name.lower()
    node = walk(make_source_stub(), dev_root(), [name])
    assert node is not None and node.device is device
    info = os.lstat(f"/dev/{name}")
    assert (node.mode, node.rdev) == (info.st_mode, info.st_rdev)


def make_source_stub() -> Any:
    """/dev's entries need no process."""
    return None


def test_dev_links_and_directory() -> None:
    links = {n.name: n.readlink(make_source_stub()) for n in dev_root().entries(make_source_stub())
             if n.kind is NodeKind.SYMLINK}
    assert links == {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
                     "stderr": "/proc/self/fd/2"}
    assert dev_root().mode == host_mode("/dev")


def test_status_keys_follow_the_host_kernels_order(proc_cat: Path) -> None:
    process = loaded(proc_cat, [str(proc_cat)])
    source = make_source(process)
    node = walk(source, proc_root(), [str(source.pid), "status"])
    assert node is not None
    ours = [line.split(":", 1)[0] for line in node.read(source).decode().splitlines()]
    with open("/proc/self/status") as handle:
        host = [line.split(":", 1)[0] for line in handle]
    x86_only = {"untag_mask", "x86_Thread_features", "x86_Thread_features_locked"}
    assert ours == [key for key in host if key not in x86_only]


def value_shape(value: str) -> str:
    for shape, pattern in (("kB", r" *\d+ kB"), ("mask", r"[0-9a-f]{16}"), ("ids", r"\d+(\t\d+){3}"),
                           ("groups", r"(\d+ )*"), ("number", r"-?\d+")):
        if re.fullmatch(pattern, value):
            return shape
    return "text"


def test_status_values_have_the_host_kernels_shapes(proc_cat: Path) -> None:
    process = loaded(proc_cat, [str(proc_cat)])
    source = make_source(process)
    node = walk(source, proc_root(), [str(source.pid), "status"])
    assert node is not None
    ours = dict(line.split(":\t", 1) for line in node.read(source).decode().splitlines())
    with open("/proc/self/status") as handle:
        host = dict(line.rstrip("\n").split(":\t", 1) for line in handle)
    skip = {"Name", "Cpus_allowed", "Mems_allowed", "Speculation_Store_Bypass", "SpeculationIndirectBranch"}
    for key, value in ours.items():
        if key not in skip:
            assert value_shape(value) == value_shape(host[key]), (key, value, host[key])
    assert ours["State"] == "R (running)" and ours["Threads"] == "1"
    assert ours["Pid"] == ours["Tgid"] == str(source.pid)
    process.state.fds.close_all()
    process.state.fds.close_all()


def test_stat_has_as_many_fields_as_the_host_kernels(proc_cat: Path) -> None:
    process = loaded(proc_cat, [str(proc_cat)])
    ours = render_stat(make_source(process)).decode()
    with open("/proc/self/stat") as handle:
        host = handle.read()
    assert len(ours[ours.rindex(")") :].split()) == len(host[host.rindex(")") :].split())
    process.state.fds.close_all()


def test_meminfo_has_the_host_kernels_columns() -> None:
    with open("/proc/meminfo") as handle:
        host_head = [handle.readline() for _ in range(3)]
    ours = render_meminfo(1000, 2000, 500).decode().splitlines(keepends=True)
    pattern = re.compile(r"^(\S+:)( +)(\d+) kB\n$")
    for mine, theirs in zip(ours, host_head, strict=True):
        a, b = pattern.match(mine), pattern.match(theirs)
        assert a and b and a.group(1) == b.group(1)
        assert len(a.group(1) + a.group(2) + a.group(3)) == len(b.group(1) + b.group(2) + b.group(3)) == 24
    assert ours[1] == "MemFree:            1000 kB\n"  # capped at MemTotal


def test_cpuinfo_is_riscvs_format(proc_cat: Path) -> None:
    process = loaded(proc_cat, [str(proc_cat)])
    source = make_source(process)
    node = walk(source, proc_root(), ["cpuinfo"])
    assert node is not None
    text = node.read(source).decode()
    entries = text.split("\n\n")
    assert entries[-1] == "" and len(entries) - 1 == os.cpu_count()
    keys = ["processor", "hart", "isa", "mmu", "mvendorid", "marchid", "mimpid", "hart isa"]
    for number, entry in enumerate(entries[:-1]):
        lines = entry.splitlines()
        assert [line.split("\t", 1)[0] for line in lines] == keys
        assert lines[0] == f"processor\t: {number}" and lines[1] == f"hart\t\t: {number}"
        assert lines[2] == "isa\t\t: rv64imafdc_zicntr_zicsr_zifencei" and lines[3] == "mmu\t\t: sv39"
    process.state.fds.close_all()


# ---------------------------------------------------------------------- guest state, not the host's


def test_under_a_root_no_host_path_shows(proc_cat: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    inside = root / "bin" / "proc_cat"
    shutil.copy(proc_cat, inside)
    process = loaded(inside, ["/bin/proc_cat", "arg"], root=str(root))
    state = process.state
    source = make_source(process)
    data = root / "data"
    data.write_bytes(b"d")
    state.fds.install(os.open(data, os.O_RDONLY), inside_root=True)
    read_end, write_end = os.pipe()
    state.fds.install(read_end)
    outside = tmp_path / "outside"
    state.fds.install(os.open(outside, os.O_CREAT | os.O_WRONLY, 0o600))
    os.close(write_end)
    pid = str(source.pid)
    rendered = []
    for components in ([pid, "maps"], [pid, "stat"], [pid, "status"], [pid, "cmdline"], [pid, "environ"],
                       [pid, "comm"], ["cpuinfo"], ["meminfo"]):
        node = walk(source, proc_root(), components)
        assert node is not None
        rendered.append(node.read(source))
    links = {n.name: n.readlink(source) for n in walk(source, proc_root(), [pid]).entries(source)  # type: ignore[union-attr]
             if n.kind is NodeKind.SYMLINK}
    fd_links = [n.readlink(source) for n in walk(source, proc_root(), [pid, "fd"]).entries(source)]  # type: ignore[union-attr]
    assert links == {"cwd": "/", "exe": "/bin/proc_cat", "root": "/"}
    assert fd_links[3:] == ["/data", fd_links[4], OUTSIDE_ROOT_LINK]
    assert re.fullmatch(r"pipe:\[\d+\]", fd_links[4])
    for text in [*rendered, *(os.fsencode(t) for t in [*links.values(), *fd_links])]:
        assert os.fsencode(str(tmp_path)) not in text
    names = {e.name for e in map_entries(source)}
    assert "/bin/proc_cat" in names
    state.fds.close_all()


def test_fd_link_text_policy(tmp_path: Path) -> None:
    root = str(tmp_path)
    inside = tmp_path / "f"
    inside.write_bytes(b"")
    fd = os.open(inside, os.O_RDONLY)
    try:
        assert fd_link_text_for(fd, None, root) == "/f"
        assert fd_link_text_for(fd, None, None) == str(inside)
        os.unlink(inside)
        assert fd_link_text_for(fd, None, root) == "/f (deleted)"
    finally:
        os.close(fd)
    null = os.open("/dev/null", os.O_RDONLY)
    try:
        assert fd_link_text_for(null, None, root) == "/dev/null"
    finally:
        os.close(null)
    other = tmp_path.parent / f"{tmp_path.name}-sibling"
    other.write_bytes(b"")
    fd = os.open(other, os.O_RDONLY)
    try:  # a sibling whose name starts with the root's is still outside it
        assert fd_link_text_for(fd, "/as-opened", root) == "/as-opened"
        assert fd_link_text_for(fd, None, root) == OUTSIDE_ROOT_LINK
    finally:
        os.close(fd)
        other.unlink()


def test_cmdline_reads_guest_memory_like_linux(proc_cat: Path) -> None:
    process = loaded(proc_cat, ["prog", "ab"])
    source = make_source(process)
    stack = process.state.exec_image.stack  # type: ignore[union-attr]
    assert render_cmdline(source) == b"prog\0ab\0"
    process.mem.write(stack.argv[1], b"XY")  # a program rewriting its arguments: Linux shows the new bytes
    assert render_cmdline(source) == b"prog\0XY\0"
    process.mem.write(stack.argv[1] + 2, b"=")  # setproctitle: the last NUL overwritten runs on into environ
    assert render_cmdline(source) == b"prog\0XY=" + GUEST_ENV[0].encode()
    process.state.fds.close_all()


def test_maps_name_heap_and_follow_brk(proc_cat: Path) -> None:
    process = loaded(proc_cat, [str(proc_cat)])
    source = make_source(process)
    mem = process.mem
    start = mem.brk_start
    mem.brk(start + 5 * 4096)
    heap = [e for e in map_entries(source) if e.name == "[heap]"]
    assert len(heap) == 1 and heap[0].end == start + 5 * 4096 and heap[0].start < start
    stat_fields = render_stat(source).decode().rsplit(")", 1)[1].split()
    assert int(stat_fields[44]) == start  # start_brk
    process.state.fds.close_all()


def test_device_reads_and_writes() -> None:
    assert device_read(CharDevice.NULL, 10) == b""
    assert device_read(CharDevice.ZERO, 4) == bytes(4)
    assert device_read(CharDevice.FULL, 3) == bytes(3)
    assert len(device_read(CharDevice.URANDOM, 32) or b"") == 32
    assert device_read(CharDevice.TTY, 1) is None
    assert device_write(CharDevice.NULL, b"abc") == 3
    assert device_write(CharDevice.URANDOM, b"ab") == 2
    with pytest.raises(GuestErrno) as raised:
        device_write(CharDevice.FULL, b"x")
    assert raised.value.code == errno.ENOSPC


def test_proc_file_writes_and_comm(proc_cat: Path) -> None:
    process = loaded(proc_cat, [str(proc_cat)])
    source = make_source(process)
    pid = str(source.pid)
    maps = walk(source, proc_root(), [pid, "maps"])
    comm = walk(source, proc_root(), [pid, "comm"])
    assert maps is not None and comm is not None and comm.write_rule is WriteRule.SET_COMM
    with pytest.raises(GuestErrno) as raised:
        write_to(maps, b"x")
    assert raised.value.code == errno.EINVAL  # no write operation
    assert comm.read(source) == b"proc_cat-static\n"
    assert write_comm(process.state, b"a-much-longer-name-than-fifteen") == 31
    assert comm.read(source) == b"a-much-longer-n\n"
    assert render_stat(source).decode().split(" ", 2)[1] == "(a-much-longer-n)"
    process.state.fds.close_all()


def test_walk_errors(proc_cat: Path) -> None:
    process = loaded(proc_cat, [str(proc_cat)])
    source = make_source(process)
    pid = str(source.pid)
    assert walk(source, proc_root(), ["1"]) is None or pid == "1"
    assert walk(source, proc_root(), [pid, "nonexistent"]) is None
    with pytest.raises(GuestErrno):
        walk(source, proc_root(), [pid, "maps", "below"])
    node = walk(source, proc_root(), [pid, "exe"])
    assert node is not None
    with pytest.raises(GuestErrno):
        node.read(source)
    process.state.fds.close_all()


def test_unreadable_argument_area_gives_the_readable_prefix(proc_cat: Path) -> None:
    process = loaded(proc_cat, ["prog"])
    stack = process.state.exec_image.stack  # type: ignore[union-attr]
    process.mem.unmap(stack.argv[0] & ~4095, 4096)
    with pytest.raises(MemoryFault):
        process.mem.read(stack.argv[0], 1)
    assert render_cmdline(make_source(process)) == b""
    process.state.fds.close_all()
