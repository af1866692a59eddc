"""Hypothesis strategies of RV64I, RV64M and C instruction sequences for differential tests.

Used by vm-translate's ``test_riscv_integer_unicorn`` and vm-jit's engine tests: every row of the
RV64I and RV64M tables and every integer compressed encoding, with random fields, destination
registers from a small pool, memory accesses inside the data page and forward branches/jumps
(see :mod:`vm_translate.testing.unicorn_oracle`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from vm_translate.riscv.decoder import Decoder
from vm_translate.riscv.encoding import enc_b, enc_i, enc_j, enc_s, enc_u
from vm_translate.testing.unicorn_oracle import (
    BASES,
    DEST_POOL,
    DEST_POOL_C,
    InitialState,
    Item,
    Pending,
    data_pages,
    initial_x_with_bases,
    offset_for,
    resolve,
    x_states,
)

DEC = Decoder()

R_ROWS = ("add", "sub", "sll", "slt", "sltu", "xor", "srl", "sra", "or", "and",
          "addw", "subw", "sllw", "srlw", "sraw")  # fmt: skip
M_ROWS = ("mul", "mulh", "mulhsu", "mulhu", "div", "divu", "rem", "remu",
          "mulw", "divw", "divuw", "remw", "remuw")  # fmt: skip
I_ROWS = ("addi", "slti", "sltiu", "xori", "ori", "andi", "addiw",
          "slli", "srli", "srai", "slliw", "srliw", "sraiw", "lui", "auipc")  # fmt: skip
LOADS = {"lb": 1, "lh": 2, "lw": 4, "ld": 8, "lbu": 1, "lhu": 2, "lwu": 4}
STORES = {"sb": (0, 1), "sh": (1, 2), "sw": (2, 4), "sd": (3, 8)}
BRANCH_F3 = {"beq": 0, "bne": 1, "blt": 4, "bge": 5, "bltu": 6, "bgeu": 7}

Draw = Callable[..., Any]


def free_bits() -> st.SearchStrategy[int]:
    return st.one_of(st.integers(0, 0xFFFFFFFF), st.sampled_from((0, 0xFFFFFFFF, 0x80000000, 0x7FFFFFFF)))


def any_reg(draw: Draw) -> int:
    return int(draw(st.sampled_from((0, *DEST_POOL, 2, 8, 9))))


def with_regs(word: int, rd: int | None = None, rs1: int | None = None, rs2: int | None = None) -> int:
    if rd is not None:
        word = (word & ~(31 << 7)) | (rd << 7)
    if rs1 is not None:
        word = (word & ~(31 << 15)) | (rs1 << 15)
    if rs2 is not None:
        word = (word & ~(31 << 20)) | (rs2 << 20)
    return word


def row_word(draw: Draw, name: str) -> int:
    """A word of row ``name`` with random bits everywhere the row does not fix."""
    spec = DEC.spec(name)
    return spec.match | (int(draw(free_bits())) & ~spec.mask & 0xFFFFFFFF)


def alu_item(draw: Draw, names: tuple[str, ...]) -> int:
    name = draw(st.sampled_from(names))
    word = row_word(draw, name)
    return with_regs(word, draw(st.sampled_from(DEST_POOL)), any_reg(draw), any_reg(draw))


def memory_item(draw: Draw, sp_ok: bool) -> int:
    base = draw(st.sampled_from([r for r in BASES if sp_ok or r != 2]))
    if draw(st.booleans()):
        name = draw(st.sampled_from(sorted(LOADS)))
        spec = DEC.spec(name)
        size = LOADS[name]
        imm = offset_for(draw, BASES[base], size, -2048, 2047)
        return enc_i(0x03, draw(st.sampled_from(DEST_POOL)), (spec.match >> 12) & 7, base, imm)
    name = draw(st.sampled_from(sorted(STORES)))
    funct3, size = STORES[name]
    imm = offset_for(draw, BASES[base], size, -2048, 2047)
    return enc_s(0x23, funct3, base, any_reg(draw), imm)


def control_items(draw: Draw) -> list[Item]:
    kind = draw(st.sampled_from(("branch", "jal", "jalr", "fence")))
    skip = draw(st.integers(1, 4))
    if kind == "branch":
        f3 = BRANCH_F3[draw(st.sampled_from(sorted(BRANCH_F3)))]
        rs1, rs2 = any_reg(draw), any_reg(draw)
        return [Pending(4, lambda off: enc_b(0x63, f3, rs1, rs2, off), skip)]
    if kind == "jal":
        rd = draw(st.sampled_from(DEST_POOL))
        return [Pending(4, lambda off: enc_j(0x6F, rd, off), skip)]
    if kind == "jalr":
        t = draw(st.sampled_from([r for r in DEST_POOL if r]))
        rd = draw(st.sampled_from(DEST_POOL))
        odd = draw(st.integers(0, 1))
        return [enc_u(0x17, t, 0), Pending(4, lambda off: enc_i(0x67, rd, 0, t, off), skip, 4 + odd)]
    return [row_word(draw, draw(st.sampled_from(("fence", "fence.i"))))]


# -- compressed ------------------------------------------------------------------------------

C_ALU = ("c.addi", "c.addiw", "c.li", "c.lui", "c.srli", "c.srai", "c.andi", "c.sub", "c.xor",
         "c.or", "c.and", "c.subw", "c.addw", "c.slli", "c.mv", "c.add", "c.addi4spn", "c.nop")  # fmt: skip
_C_ROWS: dict[str, tuple[int, int]] = {}


def _c_row(name: str) -> tuple[int, int]:
    from vm_translate.riscv.rvc import RVC_TABLE

    if not _C_ROWS:
        _C_ROWS.update({r.name: (r.mask, r.match) for r in RVC_TABLE})
    return _C_ROWS[name]


def c_word(draw: Draw, name: str) -> int:
    mask, match = _c_row(name)
    return match | (int(draw(st.integers(0, 0xFFFF))) & ~mask & 0xFFFF)


def set_bits(word: int, hi: int, lo: int, value: int) -> int:
    field = ((1 << (hi - lo + 1)) - 1) << lo
    return (word & ~field) | (value << lo)


def legal(word: int) -> bool:
    try:
        DEC.decode_compressed(word)
    except Exception:
        return False
    return True


def compressed_alu_item(draw: Draw) -> int:
    name = draw(st.sampled_from(C_ALU))
    word = c_word(draw, name)
    if name in ("c.addi", "c.addiw", "c.li", "c.lui", "c.slli", "c.mv", "c.add"):
        pool = [r for r in DEST_POOL if r] if name in ("c.addiw", "c.lui") else DEST_POOL
        word = set_bits(word, 11, 7, draw(st.sampled_from(pool)))
    elif name == "c.addi4spn":
        word = set_bits(word, 4, 2, draw(st.sampled_from(DEST_POOL_C)) - 8)
    elif name != "c.nop":
        word = set_bits(word, 9, 7, draw(st.sampled_from(DEST_POOL_C)) - 8)
    if name in ("c.mv", "c.add") and word & 0x7C == 0:
        word |= 5 << 2
    if not legal(word):  # zero immediates of c.lui / c.addi4spn are reserved
        word |= 1 << 6 if name == "c.addi4spn" else 1 << 2
    return word


def compressed_memory_item(draw: Draw, sp_ok: bool) -> int:
    names = ["c.lw", "c.ld", "c.sw", "c.sd"] + (["c.lwsp", "c.ldsp", "c.swsp", "c.sdsp"] if sp_ok else [])
    name = draw(st.sampled_from(names))
    word = c_word(draw, name)
    if name in ("c.lw", "c.ld", "c.sw", "c.sd"):
        word = set_bits(word, 9, 7, draw(st.sampled_from((0, 1))))  # base x8 or x9
        reg = draw(st.sampled_from(DEST_POOL_C)) if name in ("c.lw", "c.ld") else draw(st.integers(8, 15))
        return set_bits(word, 4, 2, reg - 8)
    if name in ("c.lwsp", "c.ldsp"):
        return set_bits(word, 11, 7, draw(st.sampled_from([r for r in DEST_POOL if r])))
    return word


def compressed_control_items(draw: Draw) -> list[Item]:
    kind = draw(st.sampled_from(("c.j", "c.beqz", "c.bnez", "c.jr", "c.jalr")))
    skip = draw(st.integers(1, 4))
    if kind == "c.j":
        return [Pending(2, lambda off: _cj(off), skip)]
    if kind in ("c.beqz", "c.bnez"):
        reg = draw(st.integers(8, 15))
        funct3 = 6 if kind == "c.beqz" else 7
        return [Pending(2, lambda off: _cb(funct3, reg, off), skip)]
    t = draw(st.sampled_from([r for r in DEST_POOL if r > 1]))
    jump = (0x8002 if kind == "c.jr" else 0x9002) | (t << 7)
    odd = draw(st.integers(0, 1))
    # auipc t, 0; addi t, t, <offset from the auipc>; c.jr/c.jalr t
    return [enc_u(0x17, t, 0), Pending(4, lambda off: enc_i(0x13, t, 0, t, off), skip, 4 + odd), jump]


def _cj(off: int) -> int:
    o = off & 0xFFF
    bits = (
        ((o >> 11) & 1) << 12 | ((o >> 4) & 1) << 11 | ((o >> 8) & 3) << 9 | ((o >> 10) & 1) << 8
        | ((o >> 6) & 1) << 7 | ((o >> 7) & 1) << 6 | ((o >> 1) & 7) << 3 | ((o >> 5) & 1) << 2
    )  # fmt: skip
    return 0xA001 | bits


def _cb(funct3: int, reg: int, off: int) -> int:
    o = off & 0x1FF
    bits = (
        ((o >> 8) & 1) << 12 | ((o >> 3) & 3) << 10 | ((o >> 6) & 3) << 5 | ((o >> 1) & 3) << 3
        | ((o >> 5) & 1) << 2
    )  # fmt: skip
    return (funct3 << 13) | bits | ((reg - 8) << 7) | 1


# -- sequences -------------------------------------------------------------------------------


@st.composite
def sequences(draw: Draw, kinds: tuple[str, ...]) -> list[int]:
    items: list[list[Item]] = []
    sp_ok = True
    for _ in range(draw(st.integers(1, 20))):
        kind = draw(st.sampled_from(kinds))
        if kind == "i":
            items.append([alu_item(draw, R_ROWS + I_ROWS)])
        elif kind == "m":
            items.append([alu_item(draw, M_ROWS)])
        elif kind == "mem":
            items.append([memory_item(draw, sp_ok)])
        elif kind == "ctl":
            items.append(control_items(draw))
        elif kind == "c":
            items.append([compressed_alu_item(draw)])
        elif kind == "cmem":
            items.append([compressed_memory_item(draw, sp_ok)])
        elif kind == "cctl":
            items.append(compressed_control_items(draw))
        elif kind == "sp":
            items.append([c_word(draw, "c.addi16sp") | (1 << 12)])
            sp_ok = False
    return resolve(items)


def states() -> st.SearchStrategy[InitialState]:
    return st.builds(lambda x, d: InitialState(initial_x_with_bases(x), d), x_states(), data_pages())
