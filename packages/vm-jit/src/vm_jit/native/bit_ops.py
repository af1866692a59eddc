"""Tier 2 lowering of the IR's bit operations, flag arithmetic and atomics (see :mod:`vm_translate.ir`).

* Unary bit operations map to LLVM intrinsics: ``clz`` to ``llvm.ctlz``
  and ``ctz`` to ``llvm.cttz`` (both with ``is_zero_poison`` false, so 0
  gives the width, as the IR says), ``popcount`` to ``llvm.ctpop``,
  ``bswap`` to ``llvm.bswap`` (identity at 8 bits) and ``bitrev`` to
  ``llvm.bitreverse``; 1-bit operands are handled without intrinsics.
* :class:`~vm_translate.ir.CarryArith` computes the exact sum or difference
  one bit wider (carry or borrow: its top bit) and the signed one as well
  (overflow: it differs from the sign-extended result).
* :class:`~vm_translate.ir.AtomicRMW` and :class:`~vm_translate.ir.CompareSwap`
  become ``atomicrmw`` and ``cmpxchg`` on the host page of the guest
  address, with the IR's ordering (``relaxed`` is LLVM's ``monotonic``; a
  ``cmpxchg`` failure ordering drops any release part). A misaligned
  address, a page that is not in the writable table (absent, read-only,
  watched code) or a 16-byte compare-and-swap leaves for the slow path,
  where the reference executor performs the access (and raises the fault).
"""

from __future__ import annotations

from typing import Any

from vm_translate import ir

_UNARY_INTRINSICS = {"clz": "ctlz", "ctz": "cttz", "popcount": "ctpop", "bswap": "bswap", "bitrev": "bitreverse"}
_RMW = {"add": "add", "sub": "sub", "and": "and", "or": "or", "xor": "xor", "swap": "xchg",
        "smin": "min", "smax": "max", "umin": "umin", "umax": "umax"}  # fmt: skip
_ORDER = {"relaxed": "monotonic", "acquire": "acquire", "release": "release", "acq_rel": "acq_rel",
          "seq_cst": "seq_cst"}  # fmt: skip
#: ``cmpxchg``'s failure ordering may not release.
_FAIL_ORDER = {"relaxed": "monotonic", "acquire": "acquire", "release": "monotonic", "acq_rel": "acquire",
               "seq_cst": "seq_cst"}  # fmt: skip
_NATIVE_ATOMIC_SIZES = (1, 2, 4, 8)


def bit_stmt_supported(stmt: ir.Stmt) -> bool:
    """Whether tier 2 compiles ``stmt`` (every statement but 16-byte compare-and-swap)."""
    if isinstance(stmt, ir.CompareSwap):
        return stmt.size in _NATIVE_ATOMIC_SIZES
    return True


class BitLowering:
    """Emits the statements above into a region emitter (``llvm_ir._RegionEmitter``)."""

    def __init__(self, emitter: Any) -> None:
        self.e = emitter

    def unop(self, op: str, a: str, w: int) -> str:
        """The LLVM value of ``op a`` at width ``w``."""
        e, t = self.e, f"i{w}"
        out = e.tmp()
        if op == "not":
            e.emit(f"{out} = xor {t} {a}, -1")
        elif op == "neg":
            e.emit(f"{out} = sub {t} 0, {a}")
        elif w == 1 or (op == "bswap" and w == 8):
            # one bit: clz and ctz are its complement, popcount, bswap and bitrev the bit itself
            return self.unop("not", a, 1) if op in ("clz", "ctz") else a
        elif op in ("clz", "ctz"):
            fn = e.intrinsic(_UNARY_INTRINSICS[op], w, 1, "i1")
            e.emit(f"{out} = call {t} {fn}({t} {a}, i1 false)")
        else:
            fn = e.intrinsic(_UNARY_INTRINSICS[op], w, 1)
            e.emit(f"{out} = call {t} {fn}({t} {a})")
        return out

    def carry_arith(self, s: ir.CarryArith) -> None:
        e, w = self.e, s.a.width
        wide = f"i{w + 1}"
        a, b = e.op(s.a), e.op(s.b)
        c = e.resize(e.op(s.carry_in), s.carry_in.width, 1)
        instr = "add" if s.op == "add" else "sub"
        results = []
        for signed in (False, True):
            wa, wb = e.resize(a, w, w + 1, signed), e.resize(b, w, w + 1, signed)
            wc = e.resize(c, 1, w + 1)
            first, exact = e.tmp(), e.tmp()
            e.emit(f"{first} = {instr} {wide} {wa}, {wb}")
            e.emit(f"{exact} = {instr} {wide} {first}, {wc}")
            results.append(exact)
        unsigned, signed_exact = results
        value = e.resize(unsigned, w + 1, w)
        top, carry = e.tmp(), e.tmp()
        e.emit(f"{top} = lshr {wide} {unsigned}, {w}")
        e.emit(f"{carry} = trunc {wide} {top} to i1")
        back, overflow = e.resize(value, w, w + 1, signed=True), e.tmp()
        e.emit(f"{overflow} = icmp ne {wide} {back}, {signed_exact}")
        for dst, v in zip(s.dsts, (value, carry, overflow), strict=True):
            e.bind(dst, v)

    def _pointer(self, addr_op: ir.Operand, size: int, slow: str) -> str:
        e = self.e
        addr = e.addr64(addr_op)
        e.aligned_or_slow(addr, size, slow)
        return str(e.host_pointer(addr, size, "%wr", slow))

    def atomic_rmw(self, s: ir.AtomicRMW, slow: str) -> None:
        e, t = self.e, f"i{s.size * 8}"
        ptr = self._pointer(s.addr, s.size, slow)
        out = e.tmp()
        e.emit(f"{out} = atomicrmw {_RMW[s.op]} ptr {ptr}, {t} {e.op(s.src)} {_ORDER[s.order]}, "
               f"align {s.size}, {e.guest_scope}")  # fmt: skip
        e.bind(s.dst, out)

    def compare_swap(self, s: ir.CompareSwap, slow: str) -> None:
        e, t = self.e, f"i{s.size * 8}"
        ptr = self._pointer(s.addr, s.size, slow)
        pair, out = e.tmp(), e.tmp()
        orders = f"{_ORDER[s.order]} {_FAIL_ORDER[s.order]}"
        e.emit(f"{pair} = cmpxchg ptr {ptr}, {t} {e.op(s.expected)}, {t} {e.op(s.new)} {orders}, "
               f"align {s.size}, {e.guest_scope}")  # fmt: skip
        e.emit(f"{out} = extractvalue {{ {t}, i1 }} {pair}, 0")
        e.bind(s.dst, out)
