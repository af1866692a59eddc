"""Shared machinery of vm-jit's engine tests: build a RISC-V guest, run it under an engine, snapshot it.

A :class:`Guest` describes a program and its starting state (code bytes
and their page protection, integer registers, data page contents, extra
pages); :func:`run_in_chunks` runs a fresh copy of it under one engine as
a sequence of ``engine.run(cpu, budget)`` calls and records a
:class:`Snapshot` (stop kind and pc, fault details, every register, pc,
icount, every mapped page) after each call. Two engines agree when their
snapshot lists are equal: that is the engine contract (identical state at
every stop, faults and mid-block budget stops included).

:func:`run_unicorn` runs the same guest on Unicorn until the pc reaches an
end address, for programs with loops (``vm_translate.testing.unicorn_oracle``
only runs forward-only sequences).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import attrs
from unicorn import Uc, UcError
from unicorn import riscv_const as rc
from unicorn.unicorn_const import UC_ARCH_RISCV, UC_MODE_RISCV64
from vm_core.types import StopKind, StopReason
from vm_jit.engine import TieredEngine, make_python_engine
from vm_jit.settings import JitSettings
from vm_mem import PROT_EXEC, PROT_READ, PROT_WRITE, AddressSpace
from vm_translate.cpu import CpuState
from vm_translate.executor import ReferenceEngine
from vm_translate.riscv import RiscvFrontEnd
from vm_translate.riscv.registers import F0, FFLAGS, FRM, NO_RESERVATION, NREGS, RESERVATION

CODE = 0x10000
DATA = 0x20000
PAGE = 0x1000
#: A page that is never mapped.
UNMAPPED = 0x50000
#: A page mapped read-only, right after the data page (so accesses can cross from one into the other).
READ_ONLY = DATA + PAGE
MASK64 = (1 << 64) - 1
RX = PROT_READ | PROT_EXEC
RWX = PROT_READ | PROT_WRITE | PROT_EXEC

FRONTEND = RiscvFrontEnd()
_X = [getattr(rc, f"UC_RISCV_REG_X{i}") for i in range(32)]


def encode(words: Sequence[int]) -> bytes:
    """Little-endian code bytes (2 bytes for a compressed word, whose low bits are not 0b11, else 4)."""
    return b"".join(w.to_bytes(2 if w & 3 != 3 else 4, "little") for w in words)


def _digest(data: bytes) -> str:
    return f"<{len(data)} bytes crc32 {zlib.crc32(data):#x}>"


@attrs.frozen
class Guest:
    """A guest program and the state it starts from."""

    code: bytes = attrs.field(repr=lambda c: c.hex())
    x: tuple[int, ...] = attrs.field(default=(0,) * 32, repr=lambda x: repr([hex(v) for v in x]))
    data: bytes = attrs.field(default=bytes(PAGE), repr=_digest)
    code_prot: int = RX
    f: tuple[int, ...] = (0,) * 32
    fcsr: int = 0
    read_only: bytes = attrs.field(default=bytes(PAGE), repr=_digest)

    @property
    def end(self) -> int:
        return CODE + len(self.code)


def make_cpu(guest: Guest) -> CpuState:
    """A fresh CPU and address space holding ``guest``: code at CODE, data (RW) at DATA, a page at READ_ONLY."""
    mem = AddressSpace()
    mem.map(CODE, max(PAGE, -(-len(guest.code) // PAGE) * PAGE), guest.code_prot, guest.code)
    mem.map(DATA, PAGE, PROT_READ | PROT_WRITE, guest.data)
    mem.map(READ_ONLY, PAGE, PROT_READ, guest.read_only)
    cpu = CpuState("riscv64", NREGS, mem, CODE)
    for i in range(1, 32):
        cpu.regs[i] = guest.x[i] & MASK64
    for i in range(32):
        cpu.regs[F0 + i] = guest.f[i] & MASK64
    cpu.regs[FFLAGS] = guest.fcsr & 0x1F
    cpu.regs[FRM] = (guest.fcsr >> 5) & 7
    cpu.regs[RESERVATION] = NO_RESERVATION
    return cpu


@attrs.frozen
class Snapshot:
    """Everything observable after one ``engine.run`` call."""

    kind: StopKind
    stop_pc: int
    fault: tuple[Any, ...] | None
    pc: int
    icount: int
    regs: tuple[int, ...]
    memory: tuple[tuple[int, bytes], ...] = attrs.field(repr=lambda m: f"<{len(m)} pages>")


def fault_details(fault: BaseException | None) -> tuple[Any, ...] | None:
    """The comparable parts of a fault: type, pc, and address/access or word/length."""
    if fault is None:
        return None
    extra = tuple(getattr(fault, name, None) for name in ("address", "access", "word", "length"))
    return (type(fault).__name__, getattr(fault, "pc", None), *extra)


def mapped_contents(mem: Any) -> tuple[tuple[int, bytes], ...]:
    """Every mapped page's bytes (whether or not an engine touched it: vm-mem creates pages lazily)."""
    return tuple((pn, mem.peek(pn << 12, 4096)) for pn in mem.prot)


def snapshot(cpu: CpuState, stop: Any) -> Snapshot:
    mem = cpu.mem
    return Snapshot(
        kind=stop.kind,
        stop_pc=stop.pc,
        fault=fault_details(stop.fault),
        pc=cpu.pc,
        icount=cpu.icount,
        regs=tuple(cpu.regs),
        memory=mapped_contents(mem),
    )


def interp_engine() -> ReferenceEngine:
    return ReferenceEngine(FRONTEND)


def python_engine(threshold: int = 1, max_block_insns: int = 64) -> TieredEngine:
    return make_python_engine(FRONTEND, JitSettings(compile_threshold=threshold, max_block_insns=max_block_insns))


def run_in_chunks(engine: Any, guest: Guest, budgets: Sequence[int], *, max_calls: int = 10_000) -> list[Snapshot]:
    """Run ``guest`` under ``engine`` with the budgets in turn (the last one repeats).

    Stops after a fault, a breakpoint, a budget stop at the end of the code,
    or ``max_calls`` calls; a system call stop resumes at the next
    instruction like an OS that does nothing would.
    """
    cpu = make_cpu(guest)
    shots: list[Snapshot] = []
    for call in range(max_calls):
        budget = budgets[min(call, len(budgets) - 1)]
        stop = engine.run(cpu, budget)
        shots.append(snapshot(cpu, stop))
        if stop.kind in (StopKind.FAULT, StopKind.BREAKPOINT):
            break
        if cpu.pc == guest.end:
            break
    return shots


def run_stepped(engine: Any, guest: Guest, budgets: Sequence[int], *, max_calls: int = 10_000) -> list[Snapshot]:
    """Like :func:`run_in_chunks`, but each chunk is made of ``engine.run(cpu, 1)`` calls.

    The stops are those a chunked run makes (after exactly the budget, or at
    a system call, breakpoint or fault), and the engine returns to its
    dispatcher after every instruction.
    """
    cpu = make_cpu(guest)
    shots: list[Snapshot] = []
    for call in range(max_calls):
        budget = budgets[min(call, len(budgets) - 1)]
        start = cpu.icount
        while True:
            if cpu.icount - start >= budget:
                stop: Any = StopReason(StopKind.BUDGET, cpu.pc)
                break
            stop = engine.run(cpu, 1)
            if stop.kind is not StopKind.BUDGET:
                break
        shots.append(snapshot(cpu, stop))
        if stop.kind in (StopKind.FAULT, StopKind.BREAKPOINT) or cpu.pc == guest.end:
            break
    return shots


def assert_same_runs(expected: list[Snapshot], actual: list[Snapshot], what: str = "") -> None:
    """Compare two engines' snapshot lists, naming the first difference precisely."""
    for i, (e, a) in enumerate(zip(expected, actual, strict=False)):
        where = f"{what} after run call {i}"
        assert (a.kind, a.stop_pc) == (e.kind, e.stop_pc), f"stop differs {where}: {a.kind} {a.stop_pc:#x}"
        assert a.fault == e.fault, f"fault differs {where}: {a.fault} != {e.fault}"
        assert a.pc == e.pc, f"pc differs {where}: {a.pc:#x} != {e.pc:#x}"
        assert a.icount == e.icount, f"icount differs {where}: {a.icount} != {e.icount}"
        for r, (ev, av) in enumerate(zip(e.regs, a.regs, strict=True)):
            assert av == ev, f"register {r} differs {where}: {av:#x} != {ev:#x}"
        assert a.memory == e.memory, f"memory differs {where}"
    assert len(actual) == len(expected), f"{what}: {len(actual)} run calls != {len(expected)}"


def assert_engines_agree(
    guest: Guest, budgets: Sequence[int], *, threshold: int = 1, stepped_reference: bool = False
) -> list[Snapshot]:
    """Run ``guest`` under ``interp`` and ``python`` with the same budgets; return interp's snapshots.

    ``stepped_reference`` runs ``interp`` one instruction per call (see :func:`run_stepped`).
    """
    expected = (run_stepped if stepped_reference else run_in_chunks)(interp_engine(), guest, budgets)
    actual = run_in_chunks(python_engine(threshold), guest, budgets)
    assert_same_runs(expected, actual, f"budgets {list(budgets)[:8]}")
    return expected


@attrs.frozen
class UnicornResult:
    x: tuple[int, ...]
    pc: int
    data: bytes
    code: bytes
    error: str | None


def run_unicorn(guest: Guest, *, max_insns: int = 200_000) -> UnicornResult:
    """Run ``guest``'s integer program on Unicorn from CODE until the pc reaches its end."""
    uc = Uc(UC_ARCH_RISCV, UC_MODE_RISCV64)
    code_size = max(PAGE, -(-len(guest.code) // PAGE) * PAGE)
    uc.mem_map(CODE, code_size)
    uc.mem_map(DATA, PAGE)
    uc.mem_map(READ_ONLY, PAGE)
    uc.mem_write(CODE, guest.code)
    uc.mem_write(DATA, guest.data)
    uc.mem_write(READ_ONLY, guest.read_only)
    for i in range(1, 32):
        uc.reg_write(_X[i], guest.x[i] & MASK64)
    error: str | None = None
    try:
        uc.emu_start(CODE, guest.end, count=max_insns)
    except UcError as exc:
        error = str(exc)
    return UnicornResult(
        x=(0, *(int(uc.reg_read(_X[i])) & MASK64 for i in range(1, 32))),
        pc=int(uc.reg_read(rc.UC_RISCV_REG_PC)),
        data=bytes(uc.mem_read(DATA, PAGE)),
        code=bytes(uc.mem_read(CODE, len(guest.code))),
        error=error,
    )


def assert_matches_unicorn(guest: Guest, last: Snapshot) -> None:
    """The final vm snapshot (which reached the end of the code) equals Unicorn's run."""
    uc = run_unicorn(guest)
    assert uc.error is None, f"unicorn failed: {uc.error}"
    assert uc.pc == last.pc == guest.end, f"pc: unicorn {uc.pc:#x}, vm {last.pc:#x}"
    for i in range(32):
        assert last.regs[i] == uc.x[i], f"x{i}: vm {last.regs[i]:#x} != unicorn {uc.x[i]:#x}"
    pages = dict(last.memory)
    assert pages[DATA >> 12] == uc.data, "data page differs from unicorn"
    assert pages[CODE >> 12][: len(guest.code)] == uc.code, "code bytes differ from unicorn"
