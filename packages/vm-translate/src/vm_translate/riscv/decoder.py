"""The RISC-V instruction-table framework and the decoder built from it.

Each instruction is one :class:`InsnSpec` row: a name, a ``mask``/``match``
pair (``word & mask == match``), the name of its encoding *format* (which
fields to extract, see :data:`FORMATS`) and a ``lift(builder, fields)``
function emitting IR. An optional ``valid(fields)`` predicate rejects
reserved encodings the mask cannot express (unknown CSR numbers, writes to
read-only CSRs, reserved rounding modes...).

Every extension module (``rv64i``, ``rv64m``, ``rv64a``, ``zicsr``,
``zifencei``, ``rv64f``, ``rv64d``) exports a list ``INSTRUCTIONS`` of rows.
:class:`Decoder` checks at construction that no 32-bit word matches two rows
(pure mask/match analysis: rows ``a`` and ``b`` overlap exactly when
``(a.match ^ b.match) & a.mask & b.mask == 0``), indexes the rows by major
opcode and keeps a per-decoder cache ``word -> Decoded``. Compressed
(16-bit) words are expanded by :mod:`vm_translate.riscv.rvc` into their
32-bit equivalent first and keep length 2.

A word no row decodes raises :class:`vm_core.errors.IllegalInstruction`.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from vm_core.errors import ConfigurationError, IllegalInstruction
from vm_core.logging import get_logger

from vm_translate.riscv.encoding import sign_extend
from vm_translate.riscv.rvc import expand

if TYPE_CHECKING:
    from vm_translate.riscv.builder import Builder

ISA = "riscv64"
_log = get_logger("vm_translate.riscv.decoder")


@attrs.frozen(slots=True)
class Fields:
    """The operand fields of one decoded instruction.

    ``imm`` is the format's immediate as a Python int, already sign-extended
    where the format says so (I, S, B, U, J), unsigned for shift amounts
    (``SHIFT``), CSR numbers go to ``csr`` and the CSR immediate / fence
    bits to ``rs1`` / ``imm``. ``rm`` is ``funct3`` (the rounding-mode field
    of floating-point instructions). ``aq``/``rl`` are the atomic ordering bits.
    """

    rd: int = 0
    rs1: int = 0
    rs2: int = 0
    rs3: int = 0
    imm: int = 0
    rm: int = 0
    csr: int = 0
    aq: int = 0
    rl: int = 0


LiftFn = Callable[["Builder", Fields], None]


@attrs.frozen
class InsnSpec:
    """One row of an instruction table."""

    name: str
    mask: int
    match: int
    format: str
    lift: LiftFn = attrs.field(eq=False, repr=False)
    valid: Callable[[Fields], bool] | None = attrs.field(default=None, eq=False, repr=False)

    def matches(self, word: int) -> bool:
        return word & self.mask == self.match


@attrs.frozen
class Decoded:
    """A decoded instruction: its row, fields, original word and length (2 or 4).

    ``name`` is the mnemonic of the original encoding (``c.addi`` for a
    compressed word, whose ``spec`` is the 32-bit row it expands to).
    """

    spec: InsnSpec
    fields: Fields
    word: int
    length: int
    name: str


def _rd(w: int) -> int:
    return (w >> 7) & 31


def _rs1(w: int) -> int:
    return (w >> 15) & 31


def _rs2(w: int) -> int:
    return (w >> 20) & 31


def _f3(w: int) -> int:
    return (w >> 12) & 7


def _fmt_r(w: int) -> Fields:
    return Fields(rd=_rd(w), rs1=_rs1(w), rs2=_rs2(w), rm=_f3(w))


def _fmt_r4(w: int) -> Fields:
    return Fields(rd=_rd(w), rs1=_rs1(w), rs2=_rs2(w), rs3=(w >> 27) & 31, rm=_f3(w))


def _fmt_i(w: int) -> Fields:
    return Fields(rd=_rd(w), rs1=_rs1(w), imm=sign_extend(w >> 20, 12), rm=_f3(w))


def _fmt_shift(w: int) -> Fields:
    return Fields(rd=_rd(w), rs1=_rs1(w), imm=(w >> 20) & 63)


def _fmt_s(w: int) -> Fields:
    imm = ((w >> 25) << 5) | ((w >> 7) & 31)
    return Fields(rs1=_rs1(w), rs2=_rs2(w), imm=sign_extend(imm, 12), rm=_f3(w))


def _fmt_b(w: int) -> Fields:
    imm = (
        (((w >> 31) & 1) << 12)
        | (((w >> 7) & 1) << 11)
        | (((w >> 25) & 0x3F) << 5)
        | (((w >> 8) & 0xF) << 1)
    )
    return Fields(rs1=_rs1(w), rs2=_rs2(w), imm=sign_extend(imm, 13))


def _fmt_u(w: int) -> Fields:
    return Fields(rd=_rd(w), imm=sign_extend(w & 0xFFFFF000, 32))


def _fmt_j(w: int) -> Fields:
    imm = (
        (((w >> 31) & 1) << 20)
        | (((w >> 12) & 0xFF) << 12)
        | (((w >> 20) & 1) << 11)
        | (((w >> 21) & 0x3FF) << 1)
    )
    return Fields(rd=_rd(w), imm=sign_extend(imm, 21))


def _fmt_csr(w: int) -> Fields:
    return Fields(rd=_rd(w), rs1=_rs1(w), csr=(w >> 20) & 0xFFF, rm=_f3(w))


def _fmt_amo(w: int) -> Fields:
    return Fields(rd=_rd(w), rs1=_rs1(w), rs2=_rs2(w), rm=_f3(w), aq=(w >> 26) & 1, rl=(w >> 25) & 1)


def _fmt_fence(w: int) -> Fields:
    return Fields(rd=_rd(w), rs1=_rs1(w), imm=(w >> 20) & 0xFFF)


def _fmt_none(w: int) -> Fields:
    return Fields()


#: Field extraction per format name (the ``format`` of an :class:`InsnSpec`).
FORMATS: dict[str, Callable[[int], Fields]] = {
    "R": _fmt_r,
    "R4": _fmt_r4,
    "I": _fmt_i,
    "SHIFT": _fmt_shift,
    "S": _fmt_s,
    "B": _fmt_b,
    "U": _fmt_u,
    "J": _fmt_j,
    "CSR": _fmt_csr,
    "AMO": _fmt_amo,
    "FENCE": _fmt_fence,
    "NONE": _fmt_none,
}

#: The extension modules a default decoder is built from, in table order.
EXTENSION_MODULES = ("rv64i", "rv64m", "rv64a", "zicsr", "zifencei", "rv64f", "rv64d")


def check_table(specs: Sequence[InsnSpec]) -> None:
    """Raise :class:`ConfigurationError` if a row is malformed or two rows overlap."""
    for spec in specs:
        if spec.format not in FORMATS:
            raise ConfigurationError(f"instruction {spec.name!r} has unknown format {spec.format!r}")
        if spec.match & ~spec.mask or spec.mask >> 32:
            raise ConfigurationError(f"instruction {spec.name!r} has match bits outside its 32-bit mask")
        if spec.mask & 0x7F != 0x7F or spec.match & 3 != 3:
            raise ConfigurationError(f"instruction {spec.name!r} must fix a 32-bit major opcode")
    for i, a in enumerate(specs):
        for b in specs[i + 1 :]:
            if (a.match ^ b.match) & a.mask & b.mask == 0:
                common = a.match | b.match
                raise ConfigurationError(
                    f"instruction table rows {a.name!r} and {b.name!r} overlap (both match {common:#010x})"
                )


def load_extension_tables(names: Iterable[str] = EXTENSION_MODULES) -> list[list[InsnSpec]]:
    """Import ``vm_translate.riscv.<name>`` for each name and return their ``INSTRUCTIONS``.

    An extension module that is not installed is skipped (logged at debug
    level); any other import error propagates.
    """
    tables: list[list[InsnSpec]] = []
    for name in names:
        module_name = f"vm_translate.riscv.{name}"
        try:
            module: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            _log.debug("riscv_extension_absent", extension=name)
            continue
        tables.append(list(module.INSTRUCTIONS))
    return tables


@functools.cache
def default_specs() -> tuple[InsnSpec, ...]:
    """The rows of every installed extension module, checked once per process."""
    specs = tuple(spec for table in load_extension_tables() for spec in table)
    check_table(specs)
    return specs


class Decoder:
    """Decodes RISC-V words with a set of instruction tables and a decode cache.

    ``tables`` defaults to the ``INSTRUCTIONS`` of every installed module of
    :data:`EXTENSION_MODULES`. ``decode(word)`` takes a 32-bit word;
    ``decode_compressed(half)`` a 16-bit one. Both return a :class:`Decoded` or raise
    :class:`IllegalInstruction` (``pc`` left unset; the caller knows it).
    """

    #: The cache is emptied when it grows past this many words.
    CACHE_LIMIT = 1 << 17

    def __init__(self, tables: Iterable[Sequence[InsnSpec]] | None = None) -> None:
        if tables is None:
            specs = list(default_specs())
        else:
            specs = [spec for table in tables for spec in table]
            check_table(specs)
        self.specs: tuple[InsnSpec, ...] = tuple(specs)
        by_opcode: dict[int, list[InsnSpec]] = {}
        for spec in specs:
            by_opcode.setdefault(spec.match & 0x7F, []).append(spec)
        # Most specific rows first: cheaper rejection, and the scan order is irrelevant to the
        # result because no two rows overlap.
        self._by_opcode = {
            op: tuple(sorted(rows, key=lambda s: -s.mask.bit_count())) for op, rows in by_opcode.items()
        }
        self._by_name = {spec.name: spec for spec in specs}
        self._cache: dict[int, Decoded | None] = {}
        self._cache16: dict[int, Decoded | None] = {}

    def spec(self, name: str) -> InsnSpec:
        """The row named ``name`` (``KeyError`` if absent)."""
        return self._by_name[name]

    def _lookup(self, word: int) -> Decoded | None:
        for spec in self._by_opcode.get(word & 0x7F, ()):
            if word & spec.mask == spec.match:
                fields = FORMATS[spec.format](word)
                if spec.valid is not None and not spec.valid(fields):
                    return None
                return Decoded(spec, fields, word, 4, spec.name)
        return None

    def decode(self, word: int) -> Decoded:
        """Decode a 32-bit instruction word."""
        cache = self._cache
        try:
            decoded = cache[word]
        except KeyError:
            if not 0 <= word <= 0xFFFFFFFF:
                raise IllegalInstruction(word & 0xFFFFFFFF, isa=ISA) from None
            decoded = self._lookup(word)
            if len(cache) >= self.CACHE_LIMIT:
                cache.clear()
            cache[word] = decoded
        if decoded is None:
            raise IllegalInstruction(word, isa=ISA)
        return decoded

    def decode_compressed(self, half: int) -> Decoded:
        """Decode a 16-bit (C extension) instruction word."""
        cache = self._cache16
        try:
            decoded = cache[half]
        except KeyError:
            decoded = None
            if 0 <= half <= 0xFFFF:
                expanded = expand(half)
                if expanded is not None:
                    name, word = expanded
                    inner = self._lookup(word)
                    if inner is not None:
                        decoded = Decoded(inner.spec, inner.fields, half, 2, name)
            cache[half] = decoded
        if decoded is None:
            raise IllegalInstruction(half & 0xFFFF, isa=ISA, length=2)
        return decoded

    def decode_any(self, word: int) -> Decoded:
        """Decode the instruction at the start of ``word`` (low 16 bits decide the length)."""
        if word & 3 != 3:
            return self.decode_compressed(word & 0xFFFF)
        return self.decode(word & 0xFFFFFFFF)


def instruction_length(low_half: int) -> int:
    """Length in bytes of the instruction whose first 16 bits are ``low_half`` (2 or 4).

    Encodings of 48 bits and longer (``low_half & 0x1f == 0x1f``) are not
    defined by any supported extension; they are treated as 4-byte words,
    which then fail to decode.
    """
    return 4 if low_half & 3 == 3 else 2
