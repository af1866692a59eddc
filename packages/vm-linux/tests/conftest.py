"""Shared fixtures: riscv64 test programs cross-compiled from tests/c/ into a temporary directory."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

C_DIR = Path(__file__).parent / "c"
CC = "riscv64-linux-gnu-gcc"
QEMU = "qemu-riscv64"

BUILD_FLAGS = {
    "static": ["-static", "-O2"],
    "dynamic": ["-O2"],
    "freestanding-pie": ["-static-pie", "-nostdlib", "-fPIE", "-O2", "-Wl,--no-dynamic-linker"],
}


def need_compiler() -> None:
    if shutil.which(CC) is None:
        pytest.skip(f"{CC} (riscv64 cross compiler) is not installed")


@pytest.fixture(scope="session")
def qemu() -> str:
    """The qemu-riscv64 executable (the oracle for whole programs); skips when missing."""
    found = shutil.which(QEMU)
    if found is None:
        pytest.skip(f"{QEMU} (qemu-user, the oracle) is not installed")
    return found


@pytest.fixture(scope="session")
def riscv_program(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], Path]:
    """``riscv_program("auxv_probe", "static")`` compiles tests/c/auxv_probe.c once per session."""
    built: dict[tuple[str, str], Path] = {}
    out_dir = tmp_path_factory.mktemp("riscv-programs")

    def build(name: str, flavour: str = "static") -> Path:
        need_compiler()
        key = (name, flavour)
        if key not in built:
            out = out_dir / f"{name}-{flavour}"
            cmd = [CC, *BUILD_FLAGS[flavour], "-o", str(out), str(C_DIR / f"{name}.c")]
            subprocess.run(cmd, check=True, capture_output=True)
            built[key] = out
        return built[key]

    return build


class PlainCpu:
    """A guest CPU as the engines hand it to vm-linux: a flat register file, pc, memory, icount."""

    def __init__(self, mem: object, nregs: int = 67) -> None:
        self.regs = [0] * nregs
        self.pc = 0
        self.mem = mem
        self.icount = 0


class SyscallHarness:
    """A real address space and process state; ``call("name", ...)`` runs a handler through the dispatcher."""

    SCRATCH = 0x10000000
    SCRATCH_SIZE = 0x10000

    def __init__(self, root: str | None = None, exe: str = "/bin/true", resolver: str | None = None) -> None:
        from vm_linux.fdtable import FdTable
        from vm_linux.fs import GuestFilesystem
        from vm_linux.process import abi_for
        from vm_linux.state import ProcessState
        from vm_linux.syscalls import SyscallDispatcher
        from vm_linux.vfs import VirtualFiles
        from vm_mem import PROT_READ, PROT_WRITE, AddressSpace

        self.abi = abi_for("riscv64")
        self.mem = AddressSpace()
        self.mem.map(self.SCRATCH, self.SCRATCH_SIZE, PROT_READ | PROT_WRITE)
        self.cpu = PlainCpu(self.mem)
        self.cpu.regs[self.abi.sp_register] = self.SCRATCH + self.SCRATCH_SIZE
        self.state = ProcessState(self.abi, self.mem, GuestFilesystem(root, exe, resolver=resolver), FdTable.with_std_streams())
        self.argv: list[str] = [exe]
        self.envp: list[str] = []
        self.stack = None
        self.state.fs.vfs = VirtualFiles(self)
        self.dispatcher = SyscallDispatcher(self.abi)
        self.cursor = self.SCRATCH

    def call(self, name: str, *args: int) -> int:
        """Put the arguments in a0..a5 and the number in a7, dispatch, return a0 as a signed value."""
        regs = self.cpu.regs
        regs[self.abi.nr_register] = self.abi.syscall_number(name)
        padded = [a & (2**64 - 1) for a in args] + [0] * (6 - len(args))
        for reg, value in zip(self.abi.arg_registers, padded, strict=True):
            regs[reg] = value
        self.dispatcher.dispatch(self.state, self.cpu)
        result = regs[self.abi.result_register]
        return result - (1 << 64) if result >> 63 else result

    def alloc(self, data: bytes | int) -> int:
        """Copy ``data`` (or that many zero bytes) into scratch guest memory; return its address."""
        raw = bytes(data) if isinstance(data, int) else data
        addr = self.cursor
        self.cursor = (self.cursor + len(raw) + 16) & ~15
        assert self.cursor <= self.SCRATCH + self.SCRATCH_SIZE
        self.mem.write(addr, raw)
        return addr

    def cstr(self, text: str) -> int:
        return self.alloc(os.fsencode(text) + b"\0")


@pytest.fixture
def sys_harness() -> Iterator[SyscallHarness]:
    harness = SyscallHarness()
    yield harness
    harness.state.fds.close_all()


@pytest.fixture
def make_harness() -> Iterator[Callable[..., SyscallHarness]]:
    """``make_harness(root=..., exe=...)`` builds a :class:`SyscallHarness`; closed at teardown."""
    made: list[SyscallHarness] = []

    def make(**kwargs: str) -> SyscallHarness:
        harness = SyscallHarness(**kwargs)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.state.fds.close_all()


@pytest.fixture(autouse=True)
def _fresh_guest_process_table() -> Iterator[None]:
    """One pytest process runs many guests: a guest fork in one test must not make the next a "forked" guest.

    (Under ``vm run`` one host process is one guest process, which is what ``PROCESSES`` models.)
    """
    from vm_linux.guest_procs import PROCESSES

    yield
    PROCESSES.table = None
    PROCESSES.first_pid = os.getpid()
