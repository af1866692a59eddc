"""The IR's ISA-neutral operations against real x86-64 and AArch64 instructions (Unicorn) and the manuals.

Each test builds a small IR block that computes what one instruction
computes (the way an x86-64 or AArch64 front end would lift it: the IR op
plus the flag mapping), runs it in the reference executor, and compares
with Unicorn executing the real instruction on the same random operands:

* x86-64: ``ADD``/``ADC``/``SUB``/``SBB`` at 8/16/32/64 bits (result, CF,
  OF: CF is the IR's carry, and after subtraction its borrow), ``ROL``/``ROR``
  by ``CL``, ``BSWAP``, ``POPCNT``, ``LZCNT``, ``TZCNT``, ``MUL``/``IMUL``
  (the high half in ``RDX``).
* AArch64: ``ADDS``/``ADCS``/``SUBS``/``SBCS`` at 32/64 bits (result, C, V:
  C after subtraction is *not* the IR's borrow), ``RORV``, ``CLZ``,
  ``RBIT``, ``REV``, ``UMULH``/``SMULH``.

The manuals' pseudo-code (AArch64 ``AddWithCarry``) is checked against
:class:`~vm_translate.ir.CarryArith` directly, with Python ints.
"""

from __future__ import annotations

from collections.abc import Callable

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
EXAMPLES = settings(max_examples=40, deadline=None)


def edge(width: int) -> st.SearchStrategy[int]:
    m, top = ir.mask(width), 1 << (width - 1)
    return st.one_of(st.sampled_from([0, 1, m, m - 1, top, top - 1]), st.integers(0, m))


def run_ir(stmts: Callable[[list[ir.Stmt]], None], nregs: int, regs: list[int]) -> list[int]:
    """Run the statements ``stmts`` appends (registers in, registers out) in the reference executor."""
    body: list[ir.Stmt] = [ir.InsnStart(CODE, 4)]
    stmts(body)
    block = ir.Block("test", CODE, tuple(body), ir.Jump(ir.Const(CODE + 4)), 1, 4)
    cpu = CpuState("test", nregs, None, CODE)  # type: ignore[arg-type]
    cpu.regs[: len(regs)] = regs
    execute_block(block, cpu)
    return list(cpu.regs)


class Temps:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self, width: int = 64) -> ir.Temp:
        self.n += 1
        return ir.Temp(self.n, width)


def lift_binary(body: list[ir.Stmt], t: Temps, width: int, make: Callable[[ir.Temp, ir.Temp], list[ir.Stmt]]) -> None:
    """Registers 0 and 1 truncated to ``width``, then ``make``'s statements."""
    r0, r1, a, b = t(), t(), t(width), t(width)
    body += [ir.GetReg(r0, 0), ir.GetReg(r1, 1), ir.Ext(a, r0), ir.Ext(b, r1)]
    body += make(a, b)


def put(body: list[ir.Stmt], t: Temps, reg: int, value: ir.Temp) -> None:
    if value.width == 64:
        body.append(ir.PutReg(reg, value))
        return
    wide = t()
    body += [ir.Ext(wide, value), ir.PutReg(reg, wide)]


# -- x86-64 -------------------------------------------------------------------------------------

_X86_CF, _X86_OF = 1, 1 << 11
_X86_ARITH = {  # (op, uses carry in) -> opcode byte of "op r/m, reg" with modrm D8 (rax, rbx)
    ("add", False): 0x01, ("add", True): 0x11, ("sub", False): 0x29, ("sub", True): 0x19,
}  # fmt: skip


def x86_code(opcode: int, width: int, modrm: int = 0xD8) -> bytes:
    prefix = {8: b"", 16: b"\x66", 32: b"", 64: b"\x48"}[width]
    return prefix + bytes([opcode - 1 if width == 8 else opcode, modrm])


def run_x86(code: bytes, rax: int, rbx: int, rcx: int = 0, rdx: int = 0, cf: int = 0) -> dict[str, int]:
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    uc.ctl_set_cpu_model(x86.UC_CPU_X86_HASWELL)  # LZCNT, TZCNT, POPCNT
    uc.mem_map(CODE, 0x1000)
    uc.mem_write(CODE, code)
    for reg, value in ((x86.UC_X86_REG_RAX, rax), (x86.UC_X86_REG_RBX, rbx), (x86.UC_X86_REG_RCX, rcx),
                       (x86.UC_X86_REG_RDX, rdx), (x86.UC_X86_REG_EFLAGS, 0x2 | cf)):  # fmt: skip
        uc.reg_write(reg, value)
    uc.emu_start(CODE, CODE + len(code))
    names = {"rax": x86.UC_X86_REG_RAX, "rdx": x86.UC_X86_REG_RDX, "flags": x86.UC_X86_REG_EFLAGS}
    return {name: uc.reg_read(reg) for name, reg in names.items()}


@pytest.mark.parametrize("width", (8, 16, 32, 64))
@pytest.mark.parametrize(("op", "with_carry"), sorted(_X86_ARITH))
@EXAMPLES
@given(data=st.data())
def test_x86_add_adc_sub_sbb_flags(op: str, with_carry: bool, width: int, data: st.DataObject) -> None:
    a, b = data.draw(edge(width)), data.draw(edge(width))
    cf = data.draw(st.integers(0, 1)) if with_carry else 0
    real = run_x86(x86_code(_X86_ARITH[(op, with_carry)], width), a, b, cf=cf)
    t = Temps()

    def lift(body: list[ir.Stmt]) -> None:
        def make(x: ir.Temp, y: ir.Temp) -> list[ir.Stmt]:
            dsts = (t(width), t(1), t(1))
            return [ir.CarryArith(dsts, op, x, y, ir.Const(cf, 1))]

        lift_binary(body, t, width, make)
        value, carry, overflow = body[-1].dsts  # type: ignore[union-attr]
        put(body, t, 2, value)
        put(body, t, 3, carry)  # x86 CF: the carry, or the borrow of a subtraction
        put(body, t, 4, overflow)

    regs = run_ir(lift, 5, [a, b])
    assert regs[2] == real["rax"] & ir.mask(width)
    assert regs[3] == int(bool(real["flags"] & _X86_CF))
    assert regs[4] == int(bool(real["flags"] & _X86_OF))


def _unary_case(op: str, width: int, a: int) -> list[int]:
    t = Temps()

    def lift(body: list[ir.Stmt]) -> None:
        r, x, out = t(), t(width), t(width)
        body += [ir.GetReg(r, 0), ir.Ext(x, r), ir.UnOp(out, op, x)]
        put(body, t, 1, out)

    return run_ir(lift, 2, [a])


_X86_UNARY = {  # op -> width -> code (operand in rbx or rax, result in rax)
    "bswap": {32: bytes.fromhex("0fc8"), 64: bytes.fromhex("480fc8")},
    "popcount": {16: bytes.fromhex("66f30fb8c3"), 32: bytes.fromhex("f30fb8c3"), 64: bytes.fromhex("f3480fb8c3")},
    "clz": {16: bytes.fromhex("66f30fbdc3"), 32: bytes.fromhex("f30fbdc3"), 64: bytes.fromhex("f3480fbdc3")},
    "ctz": {16: bytes.fromhex("66f30fbcc3"), 32: bytes.fromhex("f30fbcc3"), 64: bytes.fromhex("f3480fbcc3")},
}
X86_UNARY_CASES = [(op, w) for op, codes in _X86_UNARY.items() for w in codes]


@pytest.mark.parametrize(("op", "width"), X86_UNARY_CASES)
@EXAMPLES
@given(data=st.data())
def test_x86_bswap_popcnt_lzcnt_tzcnt(op: str, width: int, data: st.DataObject) -> None:
    a = data.draw(edge(width))
    real = run_x86(_X86_UNARY[op][width], a if op == "bswap" else 0, a)
    assert _unary_case(op, width, a)[1] == real["rax"] & ir.mask(width)


@pytest.mark.parametrize("width", (8, 16, 32, 64))
@pytest.mark.parametrize("op", ("rotl", "rotr"))
@EXAMPLES
@given(data=st.data())
def test_x86_rol_ror_by_cl(op: str, width: int, data: st.DataObject) -> None:
    a, count = data.draw(edge(width)), data.draw(st.integers(0, 255))
    modrm = 0xC0 if op == "rotl" else 0xC8
    real = run_x86(x86_code(0xD3, width, modrm), a, 0, rcx=count)
    t = Temps()

    def lift(body: list[ir.Stmt]) -> None:
        r, x, out = t(), t(width), t(width)
        # x86 masks the count to 5 bits (6 for 64): the IR's modulo the width agrees for every width
        masked = ir.Const(count & (63 if width == 64 else 31), 8)
        body += [ir.GetReg(r, 0), ir.Ext(x, r), ir.BinOp(out, op, x, masked)]
        put(body, t, 1, out)

    assert run_ir(lift, 2, [a])[1] == real["rax"] & ir.mask(width)


@pytest.mark.parametrize(("op", "code"), (("mulhu", "48f7e3"), ("mulhs", "48f7eb")))
@EXAMPLES
@given(a=edge(64), b=edge(64))
def test_x86_mul_imul_high_half(op: str, code: str, a: int, b: int) -> None:
    real = run_x86(bytes.fromhex(code), a, b)
    t = Temps()

    def lift(body: list[ir.Stmt]) -> None:
        hi, lo = t(), t()
        lift_binary(body, t, 64, lambda x, y: [ir.BinOp(hi, op, x, y), ir.BinOp(lo, "mul", x, y)])
        body += [ir.PutReg(2, hi), ir.PutReg(3, lo)]

    regs = run_ir(lift, 4, [a, b])
    assert (regs[2], regs[3]) == (real["rdx"], real["rax"])


# -- AArch64 ------------------------------------------------------------------------------------

_N, _Z, _C, _V = 1 << 31, 1 << 30, 1 << 29, 1 << 28


def run_arm(word: int, x1: int, x2: int, nzcv: int = 0) -> dict[str, int]:
    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
    uc.mem_map(CODE, 0x1000)
    uc.mem_write(CODE, word.to_bytes(4, "little"))
    uc.reg_write(a64.UC_ARM64_REG_X1, x1)
    uc.reg_write(a64.UC_ARM64_REG_X2, x2)
    uc.reg_write(a64.UC_ARM64_REG_NZCV, nzcv)
    uc.emu_start(CODE, CODE + 4)
    return {"x0": uc.reg_read(a64.UC_ARM64_REG_X0), "nzcv": uc.reg_read(a64.UC_ARM64_REG_NZCV)}


_ARM_ARITH = {  # (op, with carry, width) -> instruction word (x0/w0 = x1/w1 op x2/w2)
    ("add", False, 64): 0xAB020020, ("add", True, 64): 0xBA020020,
    ("sub", False, 64): 0xEB020020, ("sub", True, 64): 0xFA020020,
    ("add", False, 32): 0x2B020020, ("add", True, 32): 0x3A020020,
    ("sub", False, 32): 0x6B020020, ("sub", True, 32): 0x7A020020,
}  # fmt: skip


@pytest.mark.parametrize(("op", "with_carry", "width"), sorted(_ARM_ARITH))
@EXAMPLES
@given(data=st.data())
def test_aarch64_adds_adcs_subs_sbcs_nzcv(op: str, with_carry: bool, width: int, data: st.DataObject) -> None:
    a, b = data.draw(edge(width)), data.draw(edge(width))
    c_flag = data.draw(st.integers(0, 1)) if with_carry else 0
    real = run_arm(_ARM_ARITH[(op, with_carry, width)], a, b, c_flag * _C)
    # AArch64 subtracts as a + ~b + C: its C is "no borrow", so the IR's borrow in is 1 - C
    carry_in = (1 - c_flag if with_carry else 0) if op == "sub" else c_flag
    t = Temps()

    def lift(body: list[ir.Stmt]) -> None:
        def make(x: ir.Temp, y: ir.Temp) -> list[ir.Stmt]:
            return [ir.CarryArith((t(width), t(1), t(1)), op, x, y, ir.Const(carry_in, 1))]

        lift_binary(body, t, width, make)
        value, carry, overflow = body[-1].dsts  # type: ignore[union-attr]
        put(body, t, 2, value)
        put(body, t, 3, carry)
        put(body, t, 4, overflow)

    regs = run_ir(lift, 5, [a, b])
    nzcv = real["nzcv"]
    assert regs[2] == real["x0"]
    assert regs[3] == (int(bool(nzcv & _C)) ^ (op == "sub"))  # C is not-borrow after subtraction
    assert regs[4] == int(bool(nzcv & _V))
    assert (regs[2] == 0, regs[2] >> (width - 1)) == (bool(nzcv & _Z), int(bool(nzcv & _N)))


_ARM_UNARY = {  # (op, width) -> word (x0 = op x1)
    ("clz", 64): 0xDAC01020, ("clz", 32): 0x5AC01020, ("bitrev", 64): 0xDAC00020,
    ("bitrev", 32): 0x5AC00020, ("bswap", 64): 0xDAC00C20, ("bswap", 32): 0x5AC00820,
}  # fmt: skip


@pytest.mark.parametrize(("op", "width"), sorted(_ARM_UNARY))
@EXAMPLES
@given(data=st.data())
def test_aarch64_clz_rbit_rev(op: str, width: int, data: st.DataObject) -> None:
    a = data.draw(edge(width))
    real = run_arm(_ARM_UNARY[(op, width)], a, 0)
    assert _unary_case(op, width, a)[1] == real["x0"]


@pytest.mark.parametrize(("op", "word", "width"), (("mulhu", 0x9BC27C20, 64), ("mulhs", 0x9B427C20, 64),
                                                   ("rotr", 0x9AC22C20, 64), ("rotr", 0x1AC22C20, 32)))  # fmt: skip
@EXAMPLES
@given(data=st.data())
def test_aarch64_umulh_smulh_rorv(op: str, word: int, width: int, data: st.DataObject) -> None:
    a, b = data.draw(edge(width)), data.draw(edge(64))
    real = run_arm(word, a, b)
    t = Temps()

    def lift(body: list[ir.Stmt]) -> None:
        out = t(width)
        if op == "rotr":  # the amount is the whole register, taken modulo the width
            r0, r1, x = t(), t(), t(width)
            body += [ir.GetReg(r0, 0), ir.GetReg(r1, 1), ir.Ext(x, r0), ir.BinOp(out, op, x, r1)]
        else:
            lift_binary(body, t, width, lambda x, y: [ir.BinOp(out, op, x, y)])
        put(body, t, 2, out)

    assert run_ir(lift, 3, [a, b])[2] == real["x0"]


# -- the manuals' definitions ---------------------------------------------------------------------


def add_with_carry(x: int, y: int, carry_in: int, width: int) -> tuple[int, int, int]:
    """AArch64's ``AddWithCarry`` (Arm ARM, shared pseudo-code): (result, C, V)."""
    unsigned_sum = x + y + carry_in
    signed_sum = ir.to_signed(x, width) + ir.to_signed(y, width) + carry_in
    result = unsigned_sum & ir.mask(width)
    return result, int(result != unsigned_sum), int(ir.to_signed(result, width) != signed_sum)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), width=st.sampled_from((1, 8, 16, 32, 64, 128)), op=st.sampled_from(("add", "sub")))
def test_carry_arith_is_the_manuals_add_with_carry(data: st.DataObject, width: int, op: str) -> None:
    a, b, c = data.draw(edge(width)), data.draw(edge(width)), data.draw(st.integers(0, 1))
    t = Temps()
    dsts = (t(width), t(1), t(1))

    def lift(body: list[ir.Stmt]) -> None:
        body.append(ir.CarryArith(dsts, op, ir.Const(a, width), ir.Const(b, width), ir.Const(c, 1)))
        for reg, d in enumerate(dsts):
            wide = t(128)
            body += [ir.Ext(wide, d), ir.PutReg(reg, wide)]

    value, carry, overflow = run_ir(lift, 3, [])
    if op == "add":
        assert (value, carry, overflow) == add_with_carry(a, b, c, width)
    else:  # a - b - borrow = a + NOT(b) + NOT(borrow): Arm's C is the complement of the IR's borrow
        result, not_borrow, v = add_with_carry(a, ~b & ir.mask(width), 1 - c, width)
        assert (value, carry, overflow) == (result, 1 - not_borrow, v)
