"""RV64I, the base integer instruction set, as an instruction table lifted to IR.

Covers LUI/AUIPC, JAL/JALR, the branches, loads (including LWU and LD),
stores (including SD), register-immediate and register-register ALU
operations, the RV64 word forms (``*W``: operate on the low 32 bits and
sign-extend the result), FENCE (``Fence("rw")``; FENCE.TSO and PAUSE are
encodings of it), ECALL (:class:`~vm_translate.ir.SyscallExit`) and EBREAK
(``TrapExit("breakpoint")``).

Shift amounts of 64 or more (``slli``/``srli``/``srai`` with ``funct6``'s low
bit set) and word shifts with ``shamt[5]`` set do not match any row, so they
decode as illegal instructions.
"""

from __future__ import annotations

from vm_translate.ir import Operand
from vm_translate.riscv.builder import Builder
from vm_translate.riscv.decoder import Fields, InsnSpec, LiftFn

OP_LOAD = 0x03
OP_MISC_MEM = 0x0F
OP_IMM = 0x13
OP_AUIPC = 0x17
OP_IMM_32 = 0x1B
OP_STORE = 0x23
OP_OP = 0x33
OP_LUI = 0x37
OP_OP_32 = 0x3B
OP_BRANCH = 0x63
OP_JALR = 0x67
OP_JAL = 0x6F
OP_SYSTEM = 0x73

#: Masks of the common row shapes: opcode only; opcode+funct3; +funct6 (RV64 shifts); +funct7.
MASK_OPCODE = 0x0000007F
MASK_F3 = 0x0000707F
MASK_F6 = 0xFC00707F
MASK_F7 = 0xFE00707F


def match_of(opcode: int, funct3: int = 0, funct7: int = 0) -> int:
    """The ``match`` of a row from its opcode, funct3 and funct7 (funct6 << 1 for RV64 shifts)."""
    return (funct7 << 25) | (funct3 << 12) | opcode


# -- upper immediates and jumps --------------------------------------------------------------


def _lui(b: Builder, f: Fields) -> None:
    b.put_x(f.rd, b.const(f.imm))


def _auipc(b: Builder, f: Fields) -> None:
    b.put_x(f.rd, b.const(b.pc + f.imm))


def _jal(b: Builder, f: Fields) -> None:
    b.put_x(f.rd, b.const(b.next_pc))
    b.jump(b.pc + f.imm)


def _jalr(b: Builder, f: Fields) -> None:
    if f.rs1 == 0:
        target: Operand = b.const(f.imm & ~1)
    else:
        target = b.binop("and", b.add_imm(b.get_x(f.rs1), f.imm), b.const(~1))
    b.put_x(f.rd, b.const(b.next_pc))
    b.jump(target)


# -- branches --------------------------------------------------------------------------------


def _branch(op: str, swap: bool) -> LiftFn:
    def lift(b: Builder, f: Fields) -> None:
        x, y = b.get_x(f.rs1), b.get_x(f.rs2)
        cond = b.binop(op, y, x) if swap else b.binop(op, x, y)
        b.branch(cond, b.pc + f.imm, b.next_pc)

    return lift


# -- memory ----------------------------------------------------------------------------------


def address(b: Builder, rs1: int, imm: int) -> Operand:
    """The effective address ``x[rs1] + imm`` (shared with the F/D loads and stores)."""
    return b.add_imm(b.get_x(rs1), imm)


def _load(size: int, signed: bool) -> LiftFn:
    def lift(b: Builder, f: Fields) -> None:
        value = b.load(address(b, f.rs1, f.imm), size, signed)
        b.put_x(f.rd, value)

    return lift


def _store(size: int) -> LiftFn:
    def lift(b: Builder, f: Fields) -> None:
        b.store(address(b, f.rs1, f.imm), b.get_x(f.rs2), size)

    return lift


# -- ALU -------------------------------------------------------------------------------------


def _alu_imm(op: str) -> LiftFn:
    def lift(b: Builder, f: Fields) -> None:
        b.put_x(f.rd, b.binop(op, b.get_x(f.rs1), b.const(f.imm)))

    return lift


def _addi(b: Builder, f: Fields) -> None:
    b.put_x(f.rd, b.add_imm(b.get_x(f.rs1), f.imm))


def _set_less_imm(op: str) -> LiftFn:
    def lift(b: Builder, f: Fields) -> None:
        b.put_x(f.rd, b.zext(b.binop(op, b.get_x(f.rs1), b.const(f.imm))))

    return lift


def _alu_reg(op: str) -> LiftFn:
    def lift(b: Builder, f: Fields) -> None:
        b.put_x(f.rd, b.binop(op, b.get_x(f.rs1), b.get_x(f.rs2)))

    return lift


def _set_less_reg(op: str) -> LiftFn:
    def lift(b: Builder, f: Fields) -> None:
        b.put_x(f.rd, b.zext(b.binop(op, b.get_x(f.rs1), b.get_x(f.rs2))))

    return lift


def word_op(b: Builder, op: str, a: Operand, c: Operand) -> Operand:
    """``sext64(low32(a) <op> low32(c))``: the RV64 ``*W`` pattern (shift amounts are not truncated)."""
    rhs = c if op in ("shl", "shr", "sar") else b.trunc(c, 32)
    return b.sext(b.binop(op, b.trunc(a, 32), rhs))


def _word_imm(op: str) -> LiftFn:
    def lift(b: Builder, f: Fields) -> None:
        b.put_x(f.rd, word_op(b, op, b.get_x(f.rs1), b.const(f.imm)))

    return lift


def _word_reg(op: str) -> LiftFn:
    def lift(b: Builder, f: Fields) -> None:
        b.put_x(f.rd, word_op(b, op, b.get_x(f.rs1), b.get_x(f.rs2)))

    return lift


# -- system ----------------------------------------------------------------------------------


def _fence(b: Builder, f: Fields) -> None:
    b.fence("rw")


def _ecall(b: Builder, f: Fields) -> None:
    b.syscall()


def _ebreak(b: Builder, f: Fields) -> None:
    b.trap("breakpoint")


def _rows() -> list[InsnSpec]:
    rows = [
        InsnSpec("lui", MASK_OPCODE, OP_LUI, "U", _lui),
        InsnSpec("auipc", MASK_OPCODE, OP_AUIPC, "U", _auipc),
        InsnSpec("jal", MASK_OPCODE, OP_JAL, "J", _jal),
        InsnSpec("jalr", MASK_F3, match_of(OP_JALR, 0), "I", _jalr),
    ]
    for name, f3, op, swap in (
        ("beq", 0, "eq", False),
        ("bne", 1, "ne", False),
        ("blt", 4, "lts", False),
        ("bge", 5, "les", True),
        ("bltu", 6, "ltu", False),
        ("bgeu", 7, "leu", True),
    ):
        rows.append(InsnSpec(name, MASK_F3, match_of(OP_BRANCH, f3), "B", _branch(op, swap)))
    for name, f3, size, signed in (
        ("lb", 0, 1, True),
        ("lh", 1, 2, True),
        ("lw", 2, 4, True),
        ("ld", 3, 8, True),
        ("lbu", 4, 1, False),
        ("lhu", 5, 2, False),
        ("lwu", 6, 4, False),
    ):
        rows.append(InsnSpec(name, MASK_F3, match_of(OP_LOAD, f3), "I", _load(size, signed)))
    for name, f3, size in (("sb", 0, 1), ("sh", 1, 2), ("sw", 2, 4), ("sd", 3, 8)):
        rows.append(InsnSpec(name, MASK_F3, match_of(OP_STORE, f3), "S", _store(size)))
    rows += [
        InsnSpec("addi", MASK_F3, match_of(OP_IMM, 0), "I", _addi),
        InsnSpec("slti", MASK_F3, match_of(OP_IMM, 2), "I", _set_less_imm("lts")),
        InsnSpec("sltiu", MASK_F3, match_of(OP_IMM, 3), "I", _set_less_imm("ltu")),
        InsnSpec("xori", MASK_F3, match_of(OP_IMM, 4), "I", _alu_imm("xor")),
        InsnSpec("ori", MASK_F3, match_of(OP_IMM, 6), "I", _alu_imm("or")),
        InsnSpec("andi", MASK_F3, match_of(OP_IMM, 7), "I", _alu_imm("and")),
        InsnSpec("slli", MASK_F6, match_of(OP_IMM, 1, 0x00), "SHIFT", _alu_imm("shl")),
        InsnSpec("srli", MASK_F6, match_of(OP_IMM, 5, 0x00), "SHIFT", _alu_imm("shr")),
        InsnSpec("srai", MASK_F6, match_of(OP_IMM, 5, 0x20), "SHIFT", _alu_imm("sar")),
        InsnSpec("addiw", MASK_F3, match_of(OP_IMM_32, 0), "I", _word_imm("add")),
        InsnSpec("slliw", MASK_F7, match_of(OP_IMM_32, 1, 0x00), "SHIFT", _word_imm("shl")),
        InsnSpec("srliw", MASK_F7, match_of(OP_IMM_32, 5, 0x00), "SHIFT", _word_imm("shr")),
        InsnSpec("sraiw", MASK_F7, match_of(OP_IMM_32, 5, 0x20), "SHIFT", _word_imm("sar")),
    ]
    for name, f3, f7, op in (
        ("add", 0, 0x00, "add"),
        ("sub", 0, 0x20, "sub"),
        ("sll", 1, 0x00, "shl"),
        ("xor", 4, 0x00, "xor"),
        ("srl", 5, 0x00, "shr"),
        ("sra", 5, 0x20, "sar"),
        ("or", 6, 0x00, "or"),
        ("and", 7, 0x00, "and"),
    ):
        rows.append(InsnSpec(name, MASK_F7, match_of(OP_OP, f3, f7), "R", _alu_reg(op)))
    rows += [
        InsnSpec("slt", MASK_F7, match_of(OP_OP, 2), "R", _set_less_reg("lts")),
        InsnSpec("sltu", MASK_F7, match_of(OP_OP, 3), "R", _set_less_reg("ltu")),
    ]
    for name, f3, f7, op in (
        ("addw", 0, 0x00, "add"),
        ("subw", 0, 0x20, "sub"),
        ("sllw", 1, 0x00, "shl"),
        ("srlw", 5, 0x00, "shr"),
        ("sraw", 5, 0x20, "sar"),
    ):
        rows.append(InsnSpec(name, MASK_F7, match_of(OP_OP_32, f3, f7), "R", _word_reg(op)))
    rows += [
        InsnSpec("fence", MASK_F3, match_of(OP_MISC_MEM, 0), "FENCE", _fence),
        InsnSpec("ecall", 0xFFFFFFFF, 0x00000073, "NONE", _ecall),
        InsnSpec("ebreak", 0xFFFFFFFF, 0x00100073, "NONE", _ebreak),
    ]
    return rows


INSTRUCTIONS: list[InsnSpec] = _rows()
