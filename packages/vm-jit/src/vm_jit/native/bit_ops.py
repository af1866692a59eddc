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
  address or a page that is not in the writable table (absent, read-only,
  watched code) leaves for the slow path, where the reference executor
  performs the access (and raises the fault). A 16-byte compare-and-swap
  is ``cmpxchg i128`` (x86-64 ``LOCK CMPXCHG16B``: the target machine is
  the host CPU's; an x86-64 host without ``cx16``, where LLVM would call
  libatomic instead, keeps such blocks in tier 1).
* Division wider than 64 bits: LLVM lowers ``udiv i128`` to a call of
  compiler-rt's ``__udivti3``, which the MCJIT engines cannot link, so
  :meth:`BitLowering.wide_division` calls ``@vm.udivrem<w>``, a
  shift-and-subtract long division defined in the region's own module
  (``w`` steps; the signed forms divide magnitudes and fix the signs:
  truncation toward zero, the remainder with the dividend's sign). The
  caller has already sent a zero divisor and ``MIN / -1`` to the slow path.
"""

from __future__ import annotations

import functools
import platform
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

_LONG_DIVISION = """define internal {{ i{w}, i{w} }} @vm.udivrem{w}(i{w} %n, i{w} %d) {{
entry:
  %d.wide = zext i{w} %d to i{v}
  br label %step
step:
  %i = phi i32 [ 0, %entry ], [ %i.next, %step ]
  %q = phi i{w} [ 0, %entry ], [ %q.next, %step ]
  %r = phi i{v} [ 0, %entry ], [ %r.next, %step ]
  %at = sub i32 {top}, %i
  %at.wide = zext i32 %at to i{w}
  %n.shifted = lshr i{w} %n, %at.wide
  %n.bit = and i{w} %n.shifted, 1
  %bit = zext i{w} %n.bit to i{v}
  %r.doubled = shl i{v} %r, 1
  %r.in = or i{v} %r.doubled, %bit
  %fits = icmp uge i{v} %r.in, %d.wide
  %r.less = sub i{v} %r.in, %d.wide
  %r.next = select i1 %fits, i{v} %r.less, i{v} %r.in
  %q.doubled = shl i{w} %q, 1
  %q.bit = zext i1 %fits to i{w}
  %q.next = or i{w} %q.doubled, %q.bit
  %i.next = add i32 %i, 1
  %done = icmp eq i32 %i.next, {w}
  br i1 %done, label %out, label %step
out:
  %r.out = trunc i{v} %r.next to i{w}
  %pair = insertvalue {{ i{w}, i{w} }} poison, i{w} %q.next, 0
  %both = insertvalue {{ i{w}, i{w} }} %pair, i{w} %r.out, 1
  ret {{ i{w}, i{w} }} %both
}}"""


@functools.cache
def _host_has_cas16() -> bool:
    """Whether LLVM lowers ``cmpxchg i128`` inline here (x86-64 needs ``cx16``; other 64-bit hosts have it)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return True
    from vm_jit.native.compiler import host_cpu_features

    return host_cpu_features().get("cx16", False)


def bit_stmt_supported(stmt: ir.Stmt) -> bool:
    """Whether tier 2 compiles ``stmt`` (every statement; 16-byte compare-and-swap where the host has it)."""
    if isinstance(stmt, ir.CompareSwap) and stmt.size == 16:
        return _host_has_cas16()
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

    def wide_division(self, op: str, a: str, b: str, w: int, out: str) -> None:
        """``out = a op b`` for ``w`` > 64 through the module's long division (divisor checked already)."""
        e, t = self.e, f"i{w}"
        e.declarations.add(_LONG_DIVISION.format(w=w, v=w + 1, top=w - 1))
        signed = op in ("divs", "rems")
        if signed:
            na, nb = self._magnitude(a, w), self._magnitude(b, w)
        else:
            na, nb = a, b
        pair, value = e.tmp(), e.tmp()
        e.emit(f"{pair} = call {{ {t}, {t} }} @vm.udivrem{w}({t} {na}, {t} {nb})")
        e.emit(f"{value} = extractvalue {{ {t}, {t} }} {pair}, {0 if op in ('divu', 'divs') else 1}")
        if not signed:
            e.emit(f"{out} = or {t} {value}, 0")
            return
        negative, sign_a = e.tmp(), e.tmp()
        e.emit(f"{sign_a} = icmp slt {t} {a}, 0")
        if op == "divs":
            sign_b = e.tmp()
            e.emit(f"{sign_b} = icmp slt {t} {b}, 0")
            e.emit(f"{negative} = xor i1 {sign_a}, {sign_b}")
        else:
            e.emit(f"{negative} = or i1 {sign_a}, false")
        minus = e.tmp()
        e.emit(f"{minus} = sub {t} 0, {value}")
        e.emit(f"{out} = select i1 {negative}, {t} {minus}, {t} {value}")

    def _magnitude(self, value: str, w: int) -> str:
        e, t = self.e, f"i{w}"
        negative, minus, out = e.tmp(), e.tmp(), e.tmp()
        e.emit(f"{negative} = icmp slt {t} {value}, 0")
        e.emit(f"{minus} = sub {t} 0, {value}")
        e.emit(f"{out} = select i1 {negative}, {t} {minus}, {t} {value}")
        return str(out)

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
