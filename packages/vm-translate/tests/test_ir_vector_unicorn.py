"""The IR's vector operations against real SSE2/SSSE3/SSE4.1 and AdvSIMD instructions in Unicorn.

x86-64: ``PADDB/W/D/Q``, ``PSUBB/W/D/Q``, ``PCMPEQB/W/D/Q``, ``PCMPGTB/W/D/Q``,
``PSHUFB`` (lifted as ``shuffle`` of ``b & 0x8F``), ``PSLLW/D/Q``,
``PSRLW/D/Q``, ``PSRAW/D`` by a count in ``xmm1`` (its low 64 bits),
``PMINUB/UW/UD``, ``PMAXUB/UW/UD``, ``PMINSB/SW/SD``, ``PMAXSB/SW/SD``,
``PMOVMSKB``, ``MOVMSKPS``, ``MOVMSKPD``, ``PADDSB/SW``, ``PADDUSB/USW``,
``PSUBSB/SW``, ``PSUBUSB/USW``, ``PMULLW``, ``PMULLD``, ``PMULHW``,
``PMULHUW``, ``PAVGB/W``, ``PACKSSWB``, ``PACKSSDW``, ``PACKUSWB``,
``PACKUSDW``, ``PUNPCKL/HBW``, ``PUNPCKL/HWD``, ``PUNPCKL/HDQ``,
``PUNPCKL/HQDQ``, ``PSHUFD`` with one index (a broadcast), ``MOVDDUP``.
AArch64: ``ADD``/``SUB``/``CMEQ``/``CMGT``/``CMHI``/``SQADD``/``UQADD``/
``SQSUB``/``UQSUB``/``ZIP1``/``ZIP2``/``UZP1``/``UZP2`` on ``.16b``/``.8h``/
``.4s``/``.2d``, ``SMIN``/``SMAX``/``UMIN``/``UMAX``/``MUL``/``URHADD`` on
``.16b``/``.8h``/``.4s``, ``SQXTN``/``SQXTUN``/``UQXTN`` (and their ``2``
forms), ``DUP`` from a general register and from an element, and ``TBL``
with one table register. Each instruction runs on
random 128-bit operands; the IR :class:`~vm_translate.ir.VecOp` in the
reference executor must give the same 128 bits.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from unicorn import Uc
from unicorn import arm64_const as a64
from unicorn import x86_const as x86
from unicorn.unicorn_const import UC_ARCH_ARM64, UC_ARCH_X86, UC_MODE_64, UC_MODE_ARM
from vm_translate import ir
from vm_translate.cpu import CpuState
from vm_translate.executor import execute_block

CODE = 0x10000
U128 = st.integers(0, ir.mask(128))
EXAMPLES = settings(max_examples=30, deadline=None)
LANE_INDEX = {8: 0, 16: 1, 32: 2, 64: 3}


def lanes(lane: int) -> st.SearchStrategy[int]:
    m, top = ir.mask(lane), 1 << (lane - 1)
    one = st.one_of(st.sampled_from([0, 1, m, top, top - 1]), st.integers(0, m))
    return st.one_of(U128, st.lists(one, min_size=128 // lane, max_size=128 // lane).map(
        lambda vs: sum(v << (i * lane) for i, v in enumerate(vs))))  # fmt: skip


def ir_vector(op: str, lane: int, a: int, b: int, b_width: int = 128, a_width: int = 128) -> int:
    """``VecOp(op, lane)`` of constants in the reference executor, through two 64-bit registers."""
    out, high, lo64, hi64 = ir.Temp(1, 128), ir.Temp(2, 128), ir.Temp(3), ir.Temp(4)
    stmts = (ir.InsnStart(CODE, 4), ir.VecOp(out, op, lane, ir.Const(a, a_width), ir.Const(b, b_width)),
             ir.BinOp(high, "shr", out, ir.Const(64, 8)), ir.Ext(lo64, out), ir.Ext(hi64, high),
             ir.PutReg(0, lo64), ir.PutReg(1, hi64))  # fmt: skip
    cpu = CpuState("test", 2, None, CODE)  # type: ignore[arg-type]
    execute_block(ir.Block("test", CODE, stmts, ir.Jump(ir.Const(0)), 1, 4), cpu)
    return cpu.regs[0] | cpu.regs[1] << 64


def run_x86(code: str, a: int, b: int) -> int:
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    uc.ctl_set_cpu_model(x86.UC_CPU_X86_HASWELL)  # SSSE3 and SSE4.1
    uc.mem_map(CODE, 0x1000)
    uc.mem_write(CODE, bytes.fromhex(code))
    uc.reg_write(x86.UC_X86_REG_XMM0, a)
    uc.reg_write(x86.UC_X86_REG_XMM1, b)
    uc.emu_start(CODE, CODE + len(code) // 2)
    return int(uc.reg_read(x86.UC_X86_REG_XMM0))


_X86 = {  # (op, lane) -> code of "op xmm0, xmm1"
    **{("add", w): f"660f{c}c1" for w, c in ((8, "fc"), (16, "fd"), (32, "fe"), (64, "d4"))},
    **{("sub", w): f"660f{c}c1" for w, c in ((8, "f8"), (16, "f9"), (32, "fa"), (64, "fb"))},
    **{("eq", w): f"660f{c}c1" for w, c in ((8, "74"), (16, "75"), (32, "76"), (64, "3829"))},
    **{("gts", w): f"660f{c}c1" for w, c in ((8, "64"), (16, "65"), (32, "66"), (64, "3837"))},
    **{("shl", w): f"660f{c}c1" for w, c in ((16, "f1"), (32, "f2"), (64, "f3"))},
    **{("shr", w): f"660f{c}c1" for w, c in ((16, "d1"), (32, "d2"), (64, "d3"))},
    **{("sar", w): f"660f{c}c1" for w, c in ((16, "e1"), (32, "e2"))},
    **{("minu", w): f"660f{c}c1" for w, c in ((8, "da"), (16, "383a"), (32, "383b"))},
    **{("maxu", w): f"660f{c}c1" for w, c in ((8, "de"), (16, "383e"), (32, "383f"))},
    **{("mins", w): f"660f{c}c1" for w, c in ((8, "3838"), (16, "ea"), (32, "3839"))},
    **{("maxs", w): f"660f{c}c1" for w, c in ((8, "383c"), (16, "ee"), (32, "383d"))},
    **{("adds", w): f"660f{c}c1" for w, c in ((8, "ec"), (16, "ed"))},
    **{("addu", w): f"660f{c}c1" for w, c in ((8, "dc"), (16, "dd"))},
    **{("subs", w): f"660f{c}c1" for w, c in ((8, "e8"), (16, "e9"))},
    **{("subu", w): f"660f{c}c1" for w, c in ((8, "d8"), (16, "d9"))},
    **{("mul", w): f"660f{c}c1" for w, c in ((16, "d5"), (32, "3840"))},
    ("mulhs", 16): "660fe5c1",
    ("mulhu", 16): "660fe4c1",
    **{("avgu", w): f"660f{c}c1" for w, c in ((8, "e0"), (16, "e3"))},
    **{("packss", w): f"660f{c}c1" for w, c in ((16, "63"), (32, "6b"))},
    **{("packsu", w): f"660f{c}c1" for w, c in ((16, "67"), (32, "382b"))},
    **{("ziplo", w): f"660f{c}c1" for w, c in ((8, "60"), (16, "61"), (32, "62"), (64, "6c"))},
    **{("ziphi", w): f"660f{c}c1" for w, c in ((8, "68"), (16, "69"), (32, "6a"), (64, "6d"))},
}


@pytest.mark.parametrize(("op", "lane"), sorted(_X86))
@EXAMPLES
@given(data=st.data())
def test_x86_sse_lane_ops(op: str, lane: int, data: st.DataObject) -> None:
    a = data.draw(lanes(lane))
    if op in ir.VECTOR_SHIFTS:  # the count is xmm1's low 64 bits
        count = data.draw(st.one_of(st.integers(0, lane + 1), st.integers(0, ir.mask(64))))
        assert ir_vector(op, lane, a, count, 64) == run_x86(_X86[(op, lane)], a, count)
    else:
        b = data.draw(lanes(lane))
        assert ir_vector(op, lane, a, b) == run_x86(_X86[(op, lane)], a, b)


@EXAMPLES
@given(a=U128, b=U128, index=st.integers(0, 3))
def test_x86_pshufd_broadcast_and_movddup(a: int, b: int, index: int) -> None:
    """``PSHUFD xmm0, xmm1, imm`` with four equal indexes, ``MOVDDUP xmm0, xmm1``: ``dup`` of a lane of xmm1."""
    assert ir_vector("dup", 32, b >> (32 * index), 0) == run_x86(f"660f70c1{index * 0x55:02x}", a, b)
    assert ir_vector("dup", 64, b & ir.mask(64), 0, a_width=64) == run_x86("f20f12c1", a, b)


@EXAMPLES
@given(a=U128, b=U128)
def test_x86_pshufb(a: int, b: int) -> None:
    keep = sum(0x8F << (8 * i) for i in range(16))  # PSHUFB: bit 7 zeroes the byte, bits 0-3 index
    assert ir_vector("shuffle", 8, a, b & keep) == run_x86("660f3800c1", a, b)


@pytest.mark.parametrize(("lane", "code"), ((8, "660fd7c0"), (32, "0f50c0"), (64, "660f50c0")))
@EXAMPLES
@given(a=U128)
def test_x86_pmovmskb_movmskps_movmskpd(lane: int, code: str, a: int) -> None:
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    uc.mem_map(CODE, 0x1000)
    uc.mem_write(CODE, bytes.fromhex(code))
    uc.reg_write(x86.UC_X86_REG_XMM0, a)
    uc.reg_write(x86.UC_X86_REG_RAX, ir.mask(64))
    uc.emu_start(CODE, CODE + len(code) // 2)
    assert ir_vector("msb", lane, a, 0) == uc.reg_read(x86.UC_X86_REG_RAX)


def arm_uc(word: int, a: int, b: int, d: int) -> Uc:
    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
    uc.mem_map(CODE, 0x1000)
    uc.mem_write(CODE, word.to_bytes(4, "little"))
    uc.reg_write(a64.UC_ARM64_REG_CPACR_EL1, 3 << 20)  # AdvSIMD enabled
    uc.reg_write(a64.UC_ARM64_REG_Q0, d)
    uc.reg_write(a64.UC_ARM64_REG_Q1, a)
    uc.reg_write(a64.UC_ARM64_REG_Q2, b)
    return uc


def run_arm(word: int, a: int, b: int, d: int = 0) -> int:
    """``word`` with v1 = ``a``, v2 = ``b``, v0 = ``d``; returns v0."""
    uc = arm_uc(word, a, b, d)
    uc.emu_start(CODE, CODE + 4)
    return int(uc.reg_read(a64.UC_ARM64_REG_Q0))


_ARM_BASE = {"add": 0x4E208420, "sub": 0x6E208420, "eq": 0x6E208C20, "gts": 0x4E203420, "gtu": 0x6E203420,
             "mins": 0x4E206C20, "maxs": 0x4E206420, "minu": 0x6E206C20, "maxu": 0x6E206420,
             "adds": 0x4E200C20, "addu": 0x6E200C20, "subs": 0x4E202C20, "subu": 0x6E202C20,
             "mul": 0x4E209C20, "avgu": 0x6E201420,
             "ziplo": 0x4E003820, "ziphi": 0x4E007820, "unzipeven": 0x4E001820, "unzipodd": 0x4E005820}  # fmt: skip
_NO_2D = ("mins", "maxs", "minu", "maxu", "mul", "avgu")  # no .2d form
ARM_CASES = [(op, lane) for op in sorted(_ARM_BASE) for lane in ir.LANES if lane < 64 or op not in _NO_2D]


@pytest.mark.parametrize(("op", "lane"), ARM_CASES)
@EXAMPLES
@given(data=st.data())
def test_aarch64_advsimd_lane_ops(op: str, lane: int, data: st.DataObject) -> None:
    a, b = data.draw(lanes(lane)), data.draw(lanes(lane))
    word = _ARM_BASE[op] | LANE_INDEX[lane] << 22 | 2 << 16  # size field, Rm = v2 (Rn = v1, Rd = v0)
    assert ir_vector(op, lane, a, b) == run_arm(word, a, b)


@EXAMPLES
@given(a=U128, b=st.lists(st.one_of(st.integers(0, 15), st.integers(0, 255)), min_size=16, max_size=16))
def test_aarch64_tbl_one_register(a: int, b: list[int]) -> None:
    indexes = sum(v << (8 * i) for i, v in enumerate(b))
    assert ir_vector("shuffle", 8, a, indexes) == run_arm(0x4E020020, a, indexes)


#: SQXTN, SQXTUN, UQXTN Vd.<narrow>, Vn.<wide> (Rn = v1, Rd = v0); the ``2`` forms set Q (bit 30).
_ARM_NARROW = {"packss": 0x0E214820, "packsu": 0x2E212820, "packuu": 0x2E214820}


@pytest.mark.parametrize("op", sorted(_ARM_NARROW))
@pytest.mark.parametrize("lane", (16, 32, 64))
@EXAMPLES
@given(data=st.data())
def test_aarch64_saturating_narrow(op: str, lane: int, data: st.DataObject) -> None:
    """``SQXTN`` clears the upper half: ``pack(a, 0)``; ``SQXTN2`` keeps the lower half and fills the upper."""
    a, old = data.draw(lanes(lane)), data.draw(U128)
    word = _ARM_NARROW[op] | LANE_INDEX[lane // 2] << 22
    assert ir_vector(op, lane, a, 0) == run_arm(word, a, 0)
    upper = ir_vector(op, lane, 0, a) >> 64 << 64
    assert upper | old & ir.mask(64) == run_arm(word | 1 << 30, a, 0, old)


@pytest.mark.parametrize("lane", ir.LANES)
@EXAMPLES
@given(x=st.integers(0, ir.mask(64)), v=U128, index=st.integers(0, 15))
def test_aarch64_dup_general_and_element(lane: int, x: int, v: int, index: int) -> None:
    imm5 = 1 << LANE_INDEX[lane]
    index %= 128 // lane
    general = 0x4E000C20 | imm5 << 16  # DUP Vd.T, X1
    uc = arm_uc(general, 0, 0, 0)
    uc.reg_write(a64.UC_ARM64_REG_X1, x)
    uc.emu_start(CODE, CODE + 4)
    assert ir_vector("dup", lane, x, 0, a_width=64) == uc.reg_read(a64.UC_ARM64_REG_Q0)
    element = 0x4E000420 | (imm5 | index << (LANE_INDEX[lane] + 1)) << 16  # DUP Vd.T, V1.Ts[index]
    assert ir_vector("dup", lane, v >> (lane * index), 0) == run_arm(element, v, 0)
