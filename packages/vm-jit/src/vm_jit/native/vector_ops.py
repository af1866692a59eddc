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
        a = self._vec(e.op(s.a), vt)
        out = e.tmp()
        if s.op == "msb":
            negative, bits = e.tmp(), e.tmp()
            e.emit(f"{negative} = icmp slt {vt} {a}, zeroinitializer")
            e.emit(f"{bits} = bitcast <{n} x i1> {negative} to i{n}")
            e.bind(s.dst, e.resize(bits, n, 128))
            return
        if s.op == "shuffle":
            result = self._shuffle(a, self._vec(e.op(s.b), vt))
        elif s.op in ir.VECTOR_SHIFTS:
            result = self._shift(s, a, vt, et)
        else:
            b = self._vec(e.op(s.b), vt)
            result = e.tmp()
            if s.op in ("add", "sub"):
                e.emit(f"{result} = {s.op} {vt} {a}, {b}")
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

    def _shift(self, s: ir.VecOp, a: str, vt: str, et: str) -> str:
        e, lane, n = self.e, s.lane, 128 // s.lane
        amount = e.resize(e.op(s.b), s.b.width, 128)
        too_far, clamped = e.tmp(), e.tmp()
        e.emit(f"{too_far} = icmp uge i128 {amount}, {lane}")
        e.emit(f"{clamped} = select i1 {too_far}, i128 {lane - 1}, i128 {amount}")
        scalar = e.resize(clamped, 128, lane)
        one, splat = e.tmp(), e.tmp()
        e.emit(f"{one} = insertelement {vt} poison, {et} {scalar}, i32 0")
        e.emit(f"{splat} = shufflevector {vt} {one}, {vt} poison, <{n} x i32> zeroinitializer")
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
