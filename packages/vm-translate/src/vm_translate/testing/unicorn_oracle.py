"""Differential-testing helper: run RISC-V instruction words on Unicorn and on vm, compare the states.

:func:`run_unicorn` and :func:`run_vm` execute the same list of instruction
words (an item whose low two bits are not ``0b11`` is a 16-bit compressed
word, any other a 32-bit word) placed at :data:`CODE`, from the same
:class:`InitialState` (integer and floating-point registers, ``fcsr`` and the
bytes of one data page mapped read-write at :data:`DATA`), until the pc
reaches the end of the code. Both return a :class:`MachineState` (all ``x``
and ``f`` registers, ``fflags``, ``frm``, pc, the data page, and the fault
that stopped the run early, if any); :func:`assert_same` runs both and
compares. Sequences must not contain ``ecall`` (stop before it) and may only
branch forward, within or to the end of the sequence.

Unicorn runs the hart in machine mode with the FPU enabled (``mstatus.FS``
set to dirty); vm runs the :class:`~vm_translate.executor.ReferenceEngine`
with a :class:`~vm_translate.riscv.RiscvFrontEnd` over a real
:class:`vm_mem.AddressSpace`.

Hypothesis strategies for register values biased to the interesting edges
(:func:`reg_values`) are here too, shared by every test file.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import attrs
from hypothesis import strategies as st
from unicorn import Uc, UcError
from unicorn import riscv_const as rc
from unicorn.unicorn_const import UC_ARCH_RISCV, UC_MODE_RISCV64
from vm_mem import PROT_EXEC, PROT_READ, PROT_WRITE, AddressSpace

from vm_translate.cpu import CpuState
from vm_translate.executor import ReferenceEngine
from vm_translate.riscv import RiscvFrontEnd
from vm_translate.riscv.registers import F0, FFLAGS, FRM, NO_RESERVATION, NREGS, RESERVATION

CODE = 0x10000
DATA = 0x20000
PAGE = 0x1000
MASK64 = (1 << 64) - 1

_FRONTEND = RiscvFrontEnd()
_X = [getattr(rc, f"UC_RISCV_REG_X{i}") for i in range(32)]
_F = [getattr(rc, f"UC_RISCV_REG_F{i}") for i in range(32)]


@attrs.frozen
class InitialState:
    """Register and data-page contents both machines start from."""

    x: tuple[int, ...]
    data: bytes = attrs.field(default=bytes(PAGE), repr=lambda d: f"<{len(d)} bytes crc32 {zlib.crc32(d):#x}>")
    f: tuple[int, ...] = (0,) * 32
    fcsr: int = 0

    def __repr__(self) -> str:
        x = ", ".join(f"x{i}={v:#x}" for i, v in enumerate(self.x) if v)
        f = ", ".join(f"f{i}={v:#x}" for i, v in enumerate(self.f) if v)
        return f"InitialState({x}; {f}; fcsr={self.fcsr:#x}; data crc32={zlib.crc32(self.data):#x})"


@attrs.frozen
class MachineState:
    """What a run left behind."""

    x: tuple[int, ...]
    f: tuple[int, ...]
    fflags: int
    frm: int
    pc: int
    data: bytes
    faulted: str | None = None


def encode(words: Sequence[int]) -> bytes:
    """The little-endian code bytes of ``words`` (2 bytes for compressed words, else 4)."""
    return b"".join(w.to_bytes(2 if w & 3 != 3 else 4, "little") for w in words)


def run_unicorn(words: Sequence[int], init: InitialState) -> MachineState:
    """Run ``words`` on Unicorn (RV64, machine mode, FPU on)."""
    code = encode(words)
    uc = Uc(UC_ARCH_RISCV, UC_MODE_RISCV64)
    uc.mem_map(CODE, PAGE)
    uc.mem_map(DATA, PAGE)
    uc.mem_write(CODE, code)
    uc.mem_write(DATA, init.data)
    uc.reg_write(rc.UC_RISCV_REG_MSTATUS, uc.reg_read(rc.UC_RISCV_REG_MSTATUS) | (0b11 << 13))
    for i in range(1, 32):
        uc.reg_write(_X[i], init.x[i] & MASK64)
    for i in range(32):
        uc.reg_write(_F[i], init.f[i] & MASK64)
    uc.reg_write(rc.UC_RISCV_REG_FCSR, init.fcsr)
    faulted: str | None = None
    try:
        uc.emu_start(CODE, CODE + len(code), count=4 * len(words) + 4)
    except UcError as exc:
        faulted = str(exc)
    return MachineState(
        x=(0, *(int(uc.reg_read(_X[i])) & MASK64 for i in range(1, 32))),
        f=tuple(int(uc.reg_read(_F[i])) & MASK64 for i in range(32)),
        fflags=int(uc.reg_read(rc.UC_RISCV_REG_FFLAGS)) & 0x1F,
        frm=int(uc.reg_read(rc.UC_RISCV_REG_FRM)) & 7,
        pc=int(uc.reg_read(rc.UC_RISCV_REG_PC)),
        data=bytes(uc.mem_read(DATA, PAGE)),
        faulted=faulted,
    )


def vm_machine(words: Sequence[int], init: InitialState) -> CpuState:
    """A vm CPU with ``words`` at :data:`CODE`, the data page at :data:`DATA` and ``init``'s registers."""
    mem = AddressSpace()
    mem.map(CODE, PAGE, PROT_READ | PROT_EXEC, encode(words))
    mem.map(DATA, PAGE, PROT_READ | PROT_WRITE, init.data)
    cpu = CpuState("riscv64", NREGS, mem, CODE)
    for i in range(1, 32):
        cpu.regs[i] = init.x[i] & MASK64
    for i in range(32):
        cpu.regs[F0 + i] = init.f[i] & MASK64
    cpu.regs[FFLAGS] = init.fcsr & 0x1F
    cpu.regs[FRM] = (init.fcsr >> 5) & 7
    cpu.regs[RESERVATION] = NO_RESERVATION
    return cpu


def run_vm(words: Sequence[int], init: InitialState, frontend: RiscvFrontEnd | None = None) -> MachineState:
    """Run ``words`` on vm's reference engine until the pc leaves the sequence."""
    cpu = vm_machine(words, init)
    end = CODE + len(encode(words))
    engine = ReferenceEngine(frontend or _FRONTEND)
    faulted: str | None = None
    # Forward-only control flow: at most len(words) instructions retire before the pc reaches the end.
    stop = engine.run(cpu, len(words))
    if stop.fault is not None and cpu.pc != end:
        faulted = repr(stop.fault)
    mem = cpu.mem
    return MachineState(
        x=tuple(cpu.regs[:32]),
        f=tuple(cpu.regs[F0 : F0 + 32]),
        fflags=cpu.regs[FFLAGS],
        frm=cpu.regs[FRM],
        pc=cpu.pc,
        data=mem.read(DATA, PAGE),
        faulted=faulted,
    )


def _describe(words: Sequence[int]) -> str:
    return " ".join(f"{w:04x}" if w & 3 != 3 else f"{w:08x}" for w in words)


def assert_same(words: Sequence[int], init: InitialState, *, fp: bool = False) -> MachineState:
    """Run ``words`` on both machines and assert equal x registers, pc and data page (and FP state).

    Both runs must reach the end of the sequence without a fault. Returns vm's state.
    """
    expected = run_unicorn(words, init)
    actual = run_vm(words, init)
    where = _describe(words)
    assert expected.faulted is None, f"unicorn faulted ({expected.faulted}) on {where}"
    assert actual.faulted is None, f"vm faulted ({actual.faulted}) on {where}"
    assert actual.pc == expected.pc == CODE + len(encode(words)), f"pc differs on {where}"
    for i in range(32):
        assert actual.x[i] == expected.x[i], (
            f"x{i}: vm {actual.x[i]:#x} != unicorn {expected.x[i]:#x} after {where}"
        )
    assert actual.data == expected.data, f"data page differs after {where}"
    if fp:
        for i in range(32):
            assert actual.f[i] == expected.f[i], (
                f"f{i}: vm {actual.f[i]:#x} != unicorn {expected.f[i]:#x} after {where}"
            )
        assert actual.fflags == expected.fflags, f"fflags differ after {where}"
        assert actual.frm == expected.frm, f"frm differs after {where}"
    return actual


# -- strategies ------------------------------------------------------------------------------

EDGE_VALUES = (
    0, 1, 2, MASK64, MASK64 - 1, 1 << 63, (1 << 63) - 1, 1 << 31, (1 << 31) - 1, 1 << 32, (1 << 32) - 1,
    0xFFFFFFFF80000000, 0xFFFFFFFF7FFFFFFF, 0x80000001, 0xFFFF, 0x8000, 0xFF, 0x80, 31, 32, 63, 64,
)  # fmt: skip


def reg_values() -> st.SearchStrategy[int]:
    """64-bit register values biased toward 0, -1, INT_MIN/MAX, 32-bit edges and small shifts."""
    return st.one_of(
        st.sampled_from(EDGE_VALUES),
        st.integers(0, MASK64),
        st.integers(-64, 64).map(lambda v: v & MASK64),
        st.integers(0, (1 << 32) - 1).map(lambda v: v if v < (1 << 31) else v | 0xFFFFFFFF00000000),
    )


def x_states() -> st.SearchStrategy[tuple[int, ...]]:
    """Initial x registers (x0 = 0)."""
    return st.lists(reg_values(), min_size=31, max_size=31).map(lambda v: (0, *v))


def data_pages() -> st.SearchStrategy[bytes]:
    """Contents of the data page: zeros, random bytes, or a repeated edge pattern."""
    return st.one_of(
        st.just(bytes(PAGE)),
        st.integers(0, MASK64).map(lambda seed: random.Random(seed).randbytes(PAGE)),
        st.sampled_from(EDGE_VALUES).map(lambda v: v.to_bytes(8, "little") * (PAGE // 8)),
    )


# -- instruction sequences -------------------------------------------------------------------

#: Registers generated code computes into (x8, x9 and sp stay valid data-page pointers).
DEST_POOL = (0, 1, 5, 6, 7, 10, 11, 12, 13, 14, 15)
#: Registers that hold pointers into the data page, and their values.
BASES = {2: DATA + 0x800, 8: DATA + 0x400, 9: DATA + 0xC00}
#: Compressed-register-field registers (x8..x15) generated code may write.
DEST_POOL_C = (10, 11, 12, 13, 14, 15)


@attrs.define
class Pending:
    """A control-transfer word whose offset is known once the sequence is complete.

    ``build(offset)`` returns the word for a byte ``offset`` to the target,
    the start of the group ``skip`` groups after this one's (clamped to the
    end; see :func:`resolve`). ``extra`` is added to the offset (the distance
    back to an ``auipc`` the target is computed from; an odd value tests
    ``jalr``'s bit clearing).
    """

    length: int
    build: Callable[[int], int]
    skip: int
    extra: int = 0


Item = int | Pending


def resolve(groups: Sequence[Sequence[Item]]) -> list[int]:
    """Turn groups of words and :class:`Pending` transfers into instruction words.

    A group (e.g. ``auipc`` + ``jalr``) is never entered in the middle: a
    transfer's ``skip`` counts groups, and its target is the first
    instruction of the group ``skip`` groups after its own (or the end).
    """
    items = [it for group in groups for it in group]
    group_of = [g for g, group in enumerate(groups) for _ in group]
    group_start = [0]
    for group in groups:
        group_start.append(group_start[-1] + len(group))
    sizes = [it.length if isinstance(it, Pending) else (2 if it & 3 != 3 else 4) for it in items]
    starts = [0]
    for size in sizes:
        starts.append(starts[-1] + size)
    words: list[int] = []
    for i, it in enumerate(items):
        if isinstance(it, Pending):
            target = group_start[min(group_of[i] + it.skip, len(groups))]
            words.append(it.build(starts[target] - starts[i] + it.extra))
        else:
            words.append(it)
    return words


def initial_x_with_bases(x: tuple[int, ...]) -> tuple[int, ...]:
    """``x`` with the base registers set to their data-page pointers."""
    regs = list(x)
    for reg, value in BASES.items():
        regs[reg] = value
    return tuple(regs)


def offset_for(draw: Callable[..., Any], base_value: int, size: int, lo: int, hi: int, step: int = 1) -> int:
    """Draw an offset in ``[lo, hi]`` (a multiple of ``step``) so the access stays in the data page."""
    first = max(lo, DATA - base_value)
    last = min(hi, DATA + PAGE - size - base_value)
    first = -(-first // step) * step
    last = (last // step) * step
    return int(draw(st.integers(first // step, last // step))) * step


def immediates(bits: int) -> st.SearchStrategy[int]:
    """Signed ``bits``-bit immediates biased to the edges."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return st.one_of(st.sampled_from((0, 1, -1, lo, hi, lo + 1, hi - 1)), st.integers(lo, hi))
