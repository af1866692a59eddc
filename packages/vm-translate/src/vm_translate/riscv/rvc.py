"""The C extension for RV64: each 16-bit instruction expanded to its 32-bit equivalent.

The compressed encodings are one table of :class:`CompressedSpec` rows
(name, mask, match, expand). ``expand(half)`` returns the equivalent 32-bit
word, which the 32-bit tables then decode and lift (the instruction keeps
its length of 2), or ``None`` for a reserved encoding: ``c.addi4spn`` with a
zero immediate (including the all-zero word), ``c.addi16sp``/``c.lui`` with a
zero immediate, ``c.addiw``/``c.lwsp``/``c.ldsp`` with ``rd = x0``, ``c.jr``
with ``rs1 = x0``, and the unassigned funct codes (which match no row).
HINT encodings (``rd = x0`` forms of ``c.addi``, ``c.li``, ``c.lui``,
``c.mv``, ``c.add``, ``c.slli``; shift amounts of 0) expand to their
architectural no-op meaning.

Some rows are refinements of others (``c.jr`` of ``c.mv``, ``c.ebreak`` of
``c.jalr`` of ``c.add``, ``c.nop`` of ``c.addi``, ``c.addi16sp`` of
``c.lui``); the table check allows two rows to overlap only when one's
mask strictly contains the other's, and the more specific row wins.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs
from vm_core.errors import ConfigurationError

from vm_translate.riscv.encoding import enc_b, enc_i, enc_j, enc_r, enc_s, enc_u, sign_extend


@attrs.frozen
class CompressedSpec:
    """One compressed-instruction row: ``half & mask == match`` selects ``expand``."""

    name: str
    mask: int
    match: int
    expand: Callable[[int], int | None] = attrs.field(eq=False, repr=False)


def _bits(h: int, hi: int, lo: int) -> int:
    return (h >> lo) & ((1 << (hi - lo + 1)) - 1)


def _rd(h: int) -> int:
    return _bits(h, 11, 7)


def _rs2(h: int) -> int:
    return _bits(h, 6, 2)


def _rdp(h: int) -> int:  # rd' / rs2' (bits 4:2)
    return 8 + _bits(h, 4, 2)


def _rs1p(h: int) -> int:  # rs1' / rd' (bits 9:7)
    return 8 + _bits(h, 9, 7)


def _imm6(h: int) -> int:
    return sign_extend((_bits(h, 12, 12) << 5) | _bits(h, 6, 2), 6)


def _shamt(h: int) -> int:
    return (_bits(h, 12, 12) << 5) | _bits(h, 6, 2)


def _uimm_w(h: int) -> int:  # c.lw / c.sw
    return (_bits(h, 12, 10) << 3) | (_bits(h, 6, 6) << 2) | (_bits(h, 5, 5) << 6)


def _uimm_d(h: int) -> int:  # c.ld / c.sd / c.fld / c.fsd
    return (_bits(h, 12, 10) << 3) | (_bits(h, 6, 5) << 6)


def _uimm_lwsp(h: int) -> int:
    return (_bits(h, 12, 12) << 5) | (_bits(h, 6, 4) << 2) | (_bits(h, 3, 2) << 6)


def _uimm_ldsp(h: int) -> int:
    return (_bits(h, 12, 12) << 5) | (_bits(h, 6, 5) << 3) | (_bits(h, 4, 2) << 6)


def _uimm_swsp(h: int) -> int:
    return (_bits(h, 12, 9) << 2) | (_bits(h, 8, 7) << 6)


def _uimm_sdsp(h: int) -> int:
    return (_bits(h, 12, 10) << 3) | (_bits(h, 9, 7) << 6)


def _addi4spn(h: int) -> int | None:
    imm = (_bits(h, 12, 11) << 4) | (_bits(h, 10, 7) << 6) | (_bits(h, 6, 6) << 2) | (_bits(h, 5, 5) << 3)
    return enc_i(0x13, _rdp(h), 0, 2, imm) if imm else None


def _addi16sp(h: int) -> int | None:
    imm = (
        (_bits(h, 12, 12) << 9)
        | (_bits(h, 6, 6) << 4)
        | (_bits(h, 5, 5) << 6)
        | (_bits(h, 4, 3) << 7)
        | (_bits(h, 2, 2) << 5)
    )
    return enc_i(0x13, 2, 0, 2, sign_extend(imm, 10)) if imm else None


def _lui(h: int) -> int | None:
    imm = _imm6(h)
    return enc_u(0x37, _rd(h), imm) if imm else None


def _cj_offset(h: int) -> int:
    imm = (
        (_bits(h, 12, 12) << 11)
        | (_bits(h, 11, 11) << 4)
        | (_bits(h, 10, 9) << 8)
        | (_bits(h, 8, 8) << 10)
        | (_bits(h, 7, 7) << 6)
        | (_bits(h, 6, 6) << 7)
        | (_bits(h, 5, 3) << 1)
        | (_bits(h, 2, 2) << 5)
    )
    return sign_extend(imm, 12)


def _cb_offset(h: int) -> int:
    imm = (
        (_bits(h, 12, 12) << 8)
        | (_bits(h, 11, 10) << 3)
        | (_bits(h, 6, 5) << 6)
        | (_bits(h, 4, 3) << 1)
        | (_bits(h, 2, 2) << 5)
    )
    return sign_extend(imm, 9)


def _nonzero_rd(build: Callable[[int], int]) -> Callable[[int], int | None]:
    def expand(h: int) -> int | None:
        return build(h) if _rd(h) else None

    return expand


def _always(build: Callable[[int], int]) -> Callable[[int], int | None]:
    return build


def _arith_p(funct3: int, funct7: int, opcode: int = 0x33) -> Callable[[int], int | None]:
    return _always(lambda h: enc_r(opcode, _rs1p(h), funct3, _rs1p(h), _rdp(h), funct7))


RVC_TABLE: tuple[CompressedSpec, ...] = (
    # Quadrant 0
    CompressedSpec("c.addi4spn", 0xE003, 0x0000, _addi4spn),
    CompressedSpec("c.fld", 0xE003, 0x2000, _always(lambda h: enc_i(0x07, _rdp(h), 3, _rs1p(h), _uimm_d(h)))),
    CompressedSpec("c.lw", 0xE003, 0x4000, _always(lambda h: enc_i(0x03, _rdp(h), 2, _rs1p(h), _uimm_w(h)))),
    CompressedSpec("c.ld", 0xE003, 0x6000, _always(lambda h: enc_i(0x03, _rdp(h), 3, _rs1p(h), _uimm_d(h)))),
    CompressedSpec("c.fsd", 0xE003, 0xA000, _always(lambda h: enc_s(0x27, 3, _rs1p(h), _rdp(h), _uimm_d(h)))),
    CompressedSpec("c.sw", 0xE003, 0xC000, _always(lambda h: enc_s(0x23, 2, _rs1p(h), _rdp(h), _uimm_w(h)))),
    CompressedSpec("c.sd", 0xE003, 0xE000, _always(lambda h: enc_s(0x23, 3, _rs1p(h), _rdp(h), _uimm_d(h)))),
    # Quadrant 1
    CompressedSpec("c.nop", 0xEF83, 0x0001, _always(lambda h: enc_i(0x13, 0, 0, 0, _imm6(h)))),
    CompressedSpec("c.addi", 0xE003, 0x0001, _always(lambda h: enc_i(0x13, _rd(h), 0, _rd(h), _imm6(h)))),
    CompressedSpec("c.addiw", 0xE003, 0x2001, _nonzero_rd(lambda h: enc_i(0x1B, _rd(h), 0, _rd(h), _imm6(h)))),
    CompressedSpec("c.li", 0xE003, 0x4001, _always(lambda h: enc_i(0x13, _rd(h), 0, 0, _imm6(h)))),
    CompressedSpec("c.addi16sp", 0xEF83, 0x6101, _addi16sp),
    CompressedSpec("c.lui", 0xE003, 0x6001, _lui),
    CompressedSpec("c.srli", 0xEC03, 0x8001, _always(lambda h: enc_i(0x13, _rs1p(h), 5, _rs1p(h), _shamt(h)))),
    CompressedSpec(
        "c.srai", 0xEC03, 0x8401, _always(lambda h: enc_i(0x13, _rs1p(h), 5, _rs1p(h), 0x400 | _shamt(h)))
    ),
    CompressedSpec("c.andi", 0xEC03, 0x8801, _always(lambda h: enc_i(0x13, _rs1p(h), 7, _rs1p(h), _imm6(h)))),
    CompressedSpec("c.sub", 0xFC63, 0x8C01, _arith_p(0, 0x20)),
    CompressedSpec("c.xor", 0xFC63, 0x8C21, _arith_p(4, 0)),
    CompressedSpec("c.or", 0xFC63, 0x8C41, _arith_p(6, 0)),
    CompressedSpec("c.and", 0xFC63, 0x8C61, _arith_p(7, 0)),
    CompressedSpec("c.subw", 0xFC63, 0x9C01, _arith_p(0, 0x20, 0x3B)),
    CompressedSpec("c.addw", 0xFC63, 0x9C21, _arith_p(0, 0, 0x3B)),
    CompressedSpec("c.j", 0xE003, 0xA001, _always(lambda h: enc_j(0x6F, 0, _cj_offset(h)))),
    CompressedSpec("c.beqz", 0xE003, 0xC001, _always(lambda h: enc_b(0x63, 0, _rs1p(h), 0, _cb_offset(h)))),
    CompressedSpec("c.bnez", 0xE003, 0xE001, _always(lambda h: enc_b(0x63, 1, _rs1p(h), 0, _cb_offset(h)))),
    # Quadrant 2
    CompressedSpec("c.slli", 0xE003, 0x0002, _always(lambda h: enc_i(0x13, _rd(h), 1, _rd(h), _shamt(h)))),
    CompressedSpec("c.fldsp", 0xE003, 0x2002, _always(lambda h: enc_i(0x07, _rd(h), 3, 2, _uimm_ldsp(h)))),
    CompressedSpec("c.lwsp", 0xE003, 0x4002, _nonzero_rd(lambda h: enc_i(0x03, _rd(h), 2, 2, _uimm_lwsp(h)))),
    CompressedSpec("c.ldsp", 0xE003, 0x6002, _nonzero_rd(lambda h: enc_i(0x03, _rd(h), 3, 2, _uimm_ldsp(h)))),
    CompressedSpec("c.jr", 0xF07F, 0x8002, _nonzero_rd(lambda h: enc_i(0x67, 0, 0, _rd(h), 0))),
    CompressedSpec("c.mv", 0xF003, 0x8002, _always(lambda h: enc_r(0x33, _rd(h), 0, 0, _rs2(h), 0))),
    CompressedSpec("c.ebreak", 0xFFFF, 0x9002, _always(lambda h: 0x00100073)),
    CompressedSpec("c.jalr", 0xF07F, 0x9002, _always(lambda h: enc_i(0x67, 1, 0, _rd(h), 0))),
    CompressedSpec("c.add", 0xF003, 0x9002, _always(lambda h: enc_r(0x33, _rd(h), 0, _rd(h), _rs2(h), 0))),
    CompressedSpec("c.fsdsp", 0xE003, 0xA002, _always(lambda h: enc_s(0x27, 3, 2, _rs2(h), _uimm_sdsp(h)))),
    CompressedSpec("c.swsp", 0xE003, 0xC002, _always(lambda h: enc_s(0x23, 2, 2, _rs2(h), _uimm_swsp(h)))),
    CompressedSpec("c.sdsp", 0xE003, 0xE002, _always(lambda h: enc_s(0x23, 3, 2, _rs2(h), _uimm_sdsp(h)))),
)


def check_compressed_table(rows: Sequence[CompressedSpec]) -> None:
    """Raise :class:`ConfigurationError` unless every overlap between rows is a strict refinement."""
    for i, a in enumerate(rows):
        if a.match & ~a.mask or a.mask >> 16 or a.match & 3 == 3:
            raise ConfigurationError(f"compressed row {a.name!r} is malformed")
        for b in rows[i + 1 :]:
            if (a.match ^ b.match) & a.mask & b.mask:
                continue
            common = a.mask & b.mask
            if a.mask == b.mask or common not in (a.mask, b.mask):
                raise ConfigurationError(f"compressed rows {a.name!r} and {b.name!r} overlap")


def _index(rows: Sequence[CompressedSpec]) -> dict[int, tuple[CompressedSpec, ...]]:
    check_compressed_table(rows)
    by_group: dict[int, list[CompressedSpec]] = {}
    for row in rows:
        by_group.setdefault(((row.match >> 13) << 2) | (row.match & 3), []).append(row)
    return {k: tuple(sorted(v, key=lambda r: -r.mask.bit_count())) for k, v in by_group.items()}


_BY_GROUP = _index(RVC_TABLE)


def lookup(half: int) -> CompressedSpec | None:
    """The most specific row matching the 16-bit word ``half``, if any."""
    for row in _BY_GROUP.get(((half >> 13) << 2) | (half & 3), ()):
        if half & row.mask == row.match:
            return row
    return None


def expand(half: int) -> tuple[str, int] | None:
    """``(mnemonic, 32-bit word)`` for the compressed word ``half``, or ``None`` if it is reserved."""
    row = lookup(half)
    if row is None:
        return None
    word = row.expand(half)
    return None if word is None else (row.name, word)
