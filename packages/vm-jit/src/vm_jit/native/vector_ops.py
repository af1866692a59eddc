"""Tier 2 lowering of :class:`~vm_translate.ir.VecOp`: 128-bit values as LLVM vectors.

An ``i128`` operand is bit-cast to ``<N x iL>`` (``N = 128 / L`` lanes; on
little-endian hosts lane 0 is the low bits, as in the IR) and back:

* ``add``/``sub``: vector ``add``/``sub``; ``eq``/``gts``/``gtu``: vector
  ``icmp`` (``eq``, ``sgt``, ``ugt``) sign-extended to all-ones lanes;
  min/max: ``icmp`` and ``select``; ``msb``: ``icmp slt 0`` bit-cast to an
  ``N``-bit mask.
* shifts: the scalar amount is clamped to ``L - 1`` and splat; ``shl``
  and ``shr`` lanes become 0 when the amount is ``L`` or more, ``sar``
  by ``L - 1`` already fills with the sign.
* ``shuffle``: per byte, ``extractelement`` of the index, of ``a``'s byte
  at ``index & 15``, and a ``select`` of 0 for an index of 16 or more (LLVM
  may turn the pattern into the host's byte shuffle).
* ``mul``: vector ``mul``; saturating add/sub: the ``llvm.{s,u}{add,sub}.sat``
  vector intrinsics; ``mulhs``/``mulhu`` and ``avgu``: lanes widened to
  twice their width (``sext``/``zext``), the wide result shifted down and
  truncated.
* packs: ``a`` and ``b`` concatenated (``shufflevector``) into ``2N``
  lanes, clamped with ``smax``/``smin`` (``umin`` for ``packuu``) against
  splat bounds, truncated to half-width lanes.
* ``ziplo``/``ziphi``/``unzipeven``/``unzipodd``: one ``shufflevector``
  with a constant mask; ``dup``: the scalar truncated to a lane and splat.
"""

from __future__ import annotations

from typing import Any

from vm_translate import ir

_ICMP = {"eq": "eq", "gts": "sgt", "gtu": "ugt"}
#: min/max as the comparison that picks ``a``.
_PICK_A = {"mins": "slt", "maxs": "sgt", "minu": "ult", "maxu": "ugt"}


class VectorLowering:
    """Emits :class:`~vm_translate.ir.VecOp` statements into a region emitter (``llvm_ir._RegionEmitter``)."""

    def __init__(self, emitter: Any) -> None:
        self.e = emitter

    def _vec(self, value: str, vt: str) -> str:
        out = self.e.tmp()
        self.e.emit(f"{out} = bitcast i128 {value} to {vt}")
        return str(out)

    def vec_op(self, s: ir.VecOp) -> None:
        e, lane = self.e, s.lane
        n = 128 // lane
        vt, et = f"<{n} x i{lane}>", f"i{lane}"
        out = e.tmp()
        if s.op in ir.VECTOR_PACKS:
            e.emit(f"{out} = bitcast <{2 * n} x i{lane // 2}> {self._pack(s, vt)} to i128")
            e.bind(s.dst, out)
            return
        a = "" if s.op in ir.VECTOR_SCALAR_A else self._vec(e.op(s.a), vt)
        if s.op == "msb":
            negative, bits = e.tmp(), e.tmp()
            e.emit(f"{negative} = icmp slt {vt} {a}, zeroinitializer")
            e.emit(f"{bits} = bitcast <{n} x i1> {negative} to i{n}")
            e.bind(s.dst, e.resize(bits, n, 128))
            return
        if s.op == "dup":
            splat = self._splat(e.resize(e.op(s.a), s.a.width, lane), vt, et)
            e.emit(f"{out} = bitcast {vt} {splat} to i128")
            e.bind(s.dst, out)
            return
        if s.op == "shuffle":
            result = self._shuffle(a, self._vec(e.op(s.b), vt))
        elif s.op in ir.VECTOR_SHIFTS:
            result = self._shift(s, a, vt, et)
        else:
            b = self._vec(e.op(s.b), vt)
            result = e.tmp()
            if s.op in ir.VECTOR_ARITH:
                e.emit(f"{result} = {s.op} {vt} {a}, {b}")
            elif s.op in ir.VECTOR_SATURATING:
                name = f"llvm.{s.op[-1]}{s.op[:3]}.sat.v{n}i{lane}"
                e.declarations.add(f"declare {vt} @{name}({vt}, {vt})")
                e.emit(f"{result} = call {vt} @{name}({vt} {a}, {vt} {b})")
            elif s.op in ir.VECTOR_MULHIGH or s.op == "avgu":
                result = self._widened(s.op, a, b, n, lane)
            elif s.op in ir.VECTOR_PERMUTES:
                e.emit(f"{result} = shufflevector {vt} {a}, {vt} {b}, <{n} x i32> {_permutation(s.op, n)}")
            elif s.op in _PICK_A:
                pick = e.tmp()
                e.emit(f"{pick} = icmp {_PICK_A[s.op]} {vt} {a}, {b}")
                e.emit(f"{result} = select <{n} x i1> {pick}, {vt} {a}, {vt} {b}")
            else:
                bits = e.tmp()
                e.emit(f"{bits} = icmp {_ICMP[s.op]} {vt} {a}, {b}")
                e.emit(f"{result} = sext <{n} x i1> {bits} to {vt}")
        e.emit(f"{out} = bitcast {vt} {result} to i128")
        e.bind(s.dst, out)

    def _splat(self, scalar: str, vt: str, et: str) -> str:
        e, n = self.e, int(vt[1:].split(" ")[0])
        one, splat = e.tmp(), e.tmp()
        e.emit(f"{one} = insertelement {vt} poison, {et} {scalar}, i32 0")
        e.emit(f"{splat} = shufflevector {vt} {one}, {vt} poison, <{n} x i32> zeroinitializer")
        return str(splat)

    def _widened(self, op: str, a: str, b: str, n: int, lane: int) -> str:
        """``mulhs``/``mulhu``/``avgu`` in lanes of twice the width, shifted down and truncated."""
        e, wt = self.e, f"<{n} x i{2 * lane}>"
        ext = "sext" if op == "mulhs" else "zext"
        wa, wb, wide, shifted, out = (e.tmp() for _ in range(5))
        e.emit(f"{wa} = {ext} <{n} x i{lane}> {a} to {wt}")
        e.emit(f"{wb} = {ext} <{n} x i{lane}> {b} to {wt}")
        if op == "avgu":
            total = e.tmp()
            e.emit(f"{total} = add {wt} {wa}, {wb}")
            e.emit(f"{wide} = add {wt} {total}, splat (i{2 * lane} 1)")
            e.emit(f"{shifted} = lshr {wt} {wide}, splat (i{2 * lane} 1)")
        else:
            e.emit(f"{wide} = mul {wt} {wa}, {wb}")
            e.emit(f"{shifted} = lshr {wt} {wide}, splat (i{2 * lane} {lane})")
        e.emit(f"{out} = trunc {wt} {shifted} to <{n} x i{lane}>")
        return str(out)

    def _pack(self, s: ir.VecOp, vt: str) -> str:
        """``a``'s lanes then ``b``'s, clamped to the narrow lane's bounds and truncated."""
        e, lane, n = self.e, s.lane, 128 // s.lane
        half, wt = lane // 2, f"<{2 * n} x i{lane}>"
        a, b = self._vec(e.op(s.a), vt), self._vec(e.op(s.b), vt)
        both = e.tmp()
        e.emit(f"{both} = shufflevector {vt} {a}, {vt} {b}, <{2 * n} x i32> <{_indexes(range(2 * n))}>")
        clamps = {"packss": (("smax", -(1 << (half - 1))), ("smin", (1 << (half - 1)) - 1)),
                  "packsu": (("smax", 0), ("smin", (1 << half) - 1)),
                  "packuu": (("umin", (1 << half) - 1),)}[s.op]  # fmt: skip
        current = str(both)
        for fn, bound in clamps:
            name, clamped = f"llvm.{fn}.v{2 * n}i{lane}", e.tmp()
            e.declarations.add(f"declare {wt} @{name}({wt}, {wt})")
            e.emit(f"{clamped} = call {wt} @{name}({wt} {current}, {wt} splat (i{lane} {bound}))")
            current = str(clamped)
        out = e.tmp()
        e.emit(f"{out} = trunc {wt} {current} to <{2 * n} x i{half}>")
        return str(out)

    def _shift(self, s: ir.VecOp, a: str, vt: str, et: str) -> str:
        e, lane = self.e, s.lane
        amount = e.resize(e.op(s.b), s.b.width, 128)
        too_far, clamped = e.tmp(), e.tmp()
        e.emit(f"{too_far} = icmp uge i128 {amount}, {lane}")
        e.emit(f"{clamped} = select i1 {too_far}, i128 {lane - 1}, i128 {amount}")
        splat = self._splat(e.resize(clamped, 128, lane), vt, et)
        shifted = e.tmp()
        e.emit(f"{shifted} = {({'shl': 'shl', 'shr': 'lshr', 'sar': 'ashr'})[s.op]} {vt} {a}, {splat}")
        if s.op == "sar":
            return str(shifted)
        result = e.tmp()
        e.emit(f"{result} = select i1 {too_far}, {vt} zeroinitializer, {vt} {shifted}")
        return str(result)

    def _shuffle(self, a: str, indexes: str) -> str:
        e = self.e
        current = "zeroinitializer"
        for i in range(16):
            index, wrapped, byte, inside, chosen, nxt = (e.tmp() for _ in range(6))
            e.emit(f"{index} = extractelement <16 x i8> {indexes}, i32 {i}")
            e.emit(f"{wrapped} = and i8 {index}, 15")
            e.emit(f"{byte} = extractelement <16 x i8> {a}, i8 {wrapped}")
            e.emit(f"{inside} = icmp ult i8 {index}, 16")
            e.emit(f"{chosen} = select i1 {inside}, i8 {byte}, i8 0")
            e.emit(f"{nxt} = insertelement <16 x i8> {current}, i8 {chosen}, i32 {i}")
            current = str(nxt)
        return current


def _indexes(values: Any) -> str:
    return ", ".join(f"i32 {v}" for v in values)


def _permutation(op: str, n: int) -> str:
    """The ``shufflevector`` mask of a lane permutation over ``a`` (lanes 0..n-1) and ``b`` (n..2n-1)."""
    half = n // 2
    if op in ("ziplo", "ziphi"):
        start = 0 if op == "ziplo" else half
        order = [v for i in range(start, start + half) for v in (i, n + i)]
    else:
        first = 0 if op == "unzipeven" else 1
        order = list(range(first, 2 * n, 2))
    return f"<{_indexes(order)}>"
