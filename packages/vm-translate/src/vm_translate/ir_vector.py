"""The IR's 128-bit lane operations: :class:`VecOp` (re-exported by :mod:`vm_translate.ir`).

Every operation is defined exactly in :class:`VecOp`'s docstring; the
reference executor (:func:`vm_translate.semantics.vector`) is the
executable definition.
"""

from __future__ import annotations

import attrs

from vm_translate.ir_values import Operand, Temp

#: Wrapping lane arithmetic.
VECTOR_ARITH = frozenset({"add", "sub", "mul"})
#: Saturating lane arithmetic: ``adds``/``subs`` signed, ``addu``/``subu`` unsigned.
VECTOR_SATURATING = frozenset({"adds", "addu", "subs", "subu"})
#: The high half of the double-width lane product (signed x signed, unsigned x unsigned).
VECTOR_MULHIGH = frozenset({"mulhs", "mulhu"})
#: Narrowing with saturation: source lanes of ``lane`` bits to ``lane / 2`` bits.
VECTOR_PACKS = frozenset({"packss", "packsu", "packuu"})
#: Lane permutations of two vectors (interleave low/high halves, de-interleave even/odd lanes).
VECTOR_PERMUTES = frozenset({"ziplo", "ziphi", "unzipeven", "unzipodd"})
VECTOR_SHIFTS = frozenset({"shl", "shr", "sar"})
#: Operations whose ``b`` is a scalar (any width), not a vector.
VECTOR_SCALAR_B = VECTOR_SHIFTS
#: Operations whose ``a`` is a scalar (any width), not a vector.
VECTOR_SCALAR_A = frozenset({"dup"})
#: :class:`VecOp` operations.
VECTOR_OPS = frozenset(
    {"eq", "gts", "gtu", "mins", "maxs", "minu", "maxu", "shuffle", "msb", "avgu", "dup"}
    | VECTOR_ARITH | VECTOR_SATURATING | VECTOR_MULHIGH | VECTOR_PACKS | VECTOR_PERMUTES | VECTOR_SHIFTS
)  # fmt: skip
LANES = (8, 16, 32, 64)
#: Lane widths each operation accepts (the rest take every width in :data:`LANES`).
_OP_LANES = {"shuffle": (8,), **{op: (16, 32, 64) for op in VECTOR_PACKS}}


def vector_lanes(op: str) -> tuple[int, ...]:
    """The lane widths :class:`VecOp` ``op`` accepts (``shuffle``: 8; packs: their 16-, 32- or 64-bit sources)."""
    return _OP_LANES.get(op, LANES)


@attrs.frozen
class VecOp:
    """A lane-wise operation on 128-bit vectors: ``dst``, ``a`` and ``b`` are 128 bits unless said otherwise.

    With ``lane`` bits per lane (8, 16, 32, 64; lane ``i`` is bits
    ``[i * lane, (i + 1) * lane)``), ``N = 128 / lane`` lanes, ``a[i]``,
    ``b[i]`` the lanes read as unsigned, ``sa[i]``, ``sb[i]`` read as two's
    complement, ``MIN``/``MAX`` the signed and ``UMAX`` the unsigned bounds
    of a lane, and ``sat(x, lo, hi) = min(max(x, lo), hi)``:

    * ``add``/``sub``/``mul``: wrapping addition, subtraction, the low
      ``lane`` bits of the product (x86 ``PADD*``/``PSUB*``/``PMULLW``/``PMULLD``,
      AArch64 ``ADD``/``SUB``/``MUL``).
    * ``adds``/``subs``: ``sat(sa[i] ± sb[i], MIN, MAX)``; ``addu``/``subu``:
      ``sat(a[i] ± b[i], 0, UMAX)`` (``PADDS*``/``PSUBS*``/``PADDUS*``/``PSUBUS*``,
      ``SQADD``/``SQSUB``/``UQADD``/``UQSUB``).
    * ``mulhs``/``mulhu``: ``(sa[i] * sb[i]) >> lane`` / ``(a[i] * b[i]) >> lane``,
      the high half of the double-width product (``PMULHW``/``PMULHUW``).
    * ``avgu``: ``(a[i] + b[i] + 1) >> 1`` without overflow (``PAVGB``/``PAVGW``,
      ``URHADD``).
    * ``eq``, ``gts``, ``gtu``: all ones when ``a == b``, ``a > b`` signed,
      ``a > b`` unsigned, else 0 (``PCMPEQ*``/``PCMPGT*``, ``CMEQ``/``CMGT``/``CMHI``).
    * ``mins``, ``maxs``, ``minu``, ``maxu``: the smaller/larger lane, signed
      or unsigned (``PMIN*``/``PMAX*``, ``SMIN``/``SMAX``/``UMIN``/``UMAX``).
    * ``msb``: bit ``i`` of ``dst`` is the top bit of ``a``'s lane ``i``, every
      other bit 0; ``b`` is ignored (``PMOVMSKB``, ``MOVMSKPS``/``MOVMSKPD``).
    * ``shl``, ``shr``, ``sar``: every lane shifted by ``b``, a scalar of any
      width read as unsigned; an amount of ``lane`` or more gives 0 (``shl``,
      ``shr``) or the sign in every bit (``sar``), as x86 ``PSLL``/``PSRL``/``PSRA``.
    * ``shuffle`` (``lane`` 8): byte ``i`` of ``dst`` is byte ``b[i]`` of ``a``
      when ``b[i] < 16``, else 0 (AArch64 ``TBL`` with one register; x86
      ``PSHUFB`` is ``b & 0x8F`` first).
    * ``packss``, ``packsu``, ``packuu`` (``lane`` 16, 32, 64: the *source*
      lane): the ``2N`` lanes of ``lane / 2`` bits of ``dst`` are ``a``'s
      lanes then ``b``'s, each narrowed with saturation: ``packss``
      ``sat(sa[i], MIN', MAX')``, ``packsu`` ``sat(sa[i], 0, UMAX')``,
      ``packuu`` ``sat(a[i], 0, UMAX')`` (primes: the narrow lane's bounds;
      x86 ``PACKSSWB``/``PACKSSDW``/``PACKUSWB``/``PACKUSDW``, AArch64
      ``SQXTN``/``SQXTUN``/``UQXTN`` with ``b`` = 0 and their ``2`` forms).
    * ``ziplo``/``ziphi``: ``a[0], b[0], a[1], b[1], ...`` from the low
      (``ziplo``) or high (``ziphi``) ``N / 2`` lanes of each (``PUNPCKL*``/
      ``PUNPCKH*``, ``ZIP1``/``ZIP2``).
    * ``unzipeven``/``unzipodd``: the even (odd) lanes of ``a`` then the even
      (odd) lanes of ``b`` (``UZP1``/``UZP2``).
    * ``dup``: every lane is the low ``lane`` bits of ``a``, a scalar of any
      width (a 128-bit value gives its lane 0); ``b`` is ignored (AArch64
      ``DUP``, x86 ``MOVDDUP``, ``VPBROADCAST*``, ``PSHUFD`` with one
      index: the front end shifts the chosen lane down first).
    """

    dst: Temp
    op: str
    lane: int
    a: Operand
    b: Operand

    def __attrs_post_init__(self) -> None:
        if self.op not in VECTOR_OPS:
            raise ValueError(f"unknown vector op {self.op!r}")
        if self.lane not in vector_lanes(self.op):
            raise ValueError(f"vector op {self.op} on {self.lane}-bit lanes")
        wide: list[Operand] = [self.dst]
        if self.op not in VECTOR_SCALAR_A:
            wide.append(self.a)
        if self.op not in VECTOR_SCALAR_B | VECTOR_SCALAR_A:
            wide.append(self.b)
        if any(v.width != 128 for v in wide):
            raise ValueError("vector operands are 128 bits wide")
