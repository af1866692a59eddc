"""What each IR operation computes, by definition: the values the reference executor gives.

Pure functions over unsigned ints, shared by every engine that needs an
operation's exact result without reimplementing it: the reference executor
(:mod:`vm_translate.executor`), the constant folder (:mod:`vm_translate.passes`)
and tier 1 of vm-jit (rare operations its generated Python calls instead of
inlining: division, bit counts and reversals, atomics, lane operations). The
statements' docstrings in :mod:`vm_translate.ir` are the specification.
"""

from __future__ import annotations

from vm_translate import ir
from vm_translate.ir import mask, to_signed

__all__ = ["atomic_new", "binop", "carry_arith", "compare", "divide", "extend", "unop", "vector"]


def binop(op: str, a: int, b: int, width: int) -> int:
    m = mask(width)
    if op == "add":
        return (a + b) & m
    if op == "sub":
        return (a - b) & m
    if op == "mul":
        return (a * b) & m
    if op == "and":
        return a & b
    if op == "or":
        return a | b
    if op == "xor":
        return a ^ b
    if op == "shl":
        return (a << (b % width)) & m
    if op == "shr":
        return a >> (b % width)
    if op == "sar":
        return (to_signed(a, width) >> (b % width)) & m
    if op == "mulhu":
        return (a * b) >> width
    if op == "mulhs":
        return ((to_signed(a, width) * to_signed(b, width)) >> width) & m
    if op == "mulhsu":
        return ((to_signed(a, width) * b) >> width) & m
    if op == "rotl":
        k = b % width
        return (a << k | a >> (width - k)) & m
    if op == "rotr":
        k = b % width
        return (a >> k | a << (width - k)) & m
    if op in ir.DIVISION_OPS:
        return divide(op, a, b, width)
    raise ValueError(f"unknown binary op {op!r}")


def divide(op: str, a: int, b: int, width: int) -> int:
    """Truncating division; :class:`~vm_translate.ir.DivideError` for a zero divisor or signed overflow."""
    if b == 0:
        raise ir.DivideError("integer division by zero")
    if op == "divu":
        return a // b
    if op == "remu":
        return a % b
    sa, sb = to_signed(a, width), to_signed(b, width)
    if sa == -(1 << (width - 1)) and sb == -1:
        raise ir.DivideError("signed integer division overflow")
    if op == "divs":
        q = abs(sa) // abs(sb)
        return (-q if (sa < 0) != (sb < 0) else q) & mask(width)
    r = abs(sa) % abs(sb)
    return (-r if sa < 0 else r) & mask(width)


def unop(op: str, a: int, width: int) -> int:
    m = mask(width)
    if op == "not":
        return ~a & m
    if op == "neg":
        return -a & m
    if op == "clz":
        return width - a.bit_length()
    if op == "ctz":
        return width if a == 0 else (a & -a).bit_length() - 1
    if op == "popcount":
        return a.bit_count()
    if op == "bswap":
        return int.from_bytes(a.to_bytes(width // 8, "little"), "big")
    if op == "bitrev":
        return int(format(a, f"0{width}b")[::-1], 2)
    raise ValueError(f"unknown unary op {op!r}")


def carry_arith(op: str, a: int, b: int, carry_in: int, width: int) -> tuple[int, int, int]:
    """(value, carry, overflow) of :class:`~vm_translate.ir.CarryArith` by its definition."""
    lo, hi = -(1 << (width - 1)), 1 << (width - 1)
    sa, sb = to_signed(a, width), to_signed(b, width)
    if op == "add":
        exact, signed = a + b + carry_in, sa + sb + carry_in
        carry = int(exact >> width != 0)
    else:
        exact, signed = a - b - carry_in, sa - sb - carry_in
        carry = int(exact < 0)
    return exact & mask(width), carry, int(not lo <= signed < hi)


def vector(op: str, lane: int, a: int, b: int) -> int:
    """:class:`~vm_translate.ir.VecOp` by its definition, lane by lane."""
    m, count = mask(lane), 128 // lane
    if op == "dup":
        return sum((a & m) << (i * lane) for i in range(count))
    lanes_a = [a >> (i * lane) & m for i in range(count)]
    if op == "msb":
        return sum((x >> (lane - 1)) << i for i, x in enumerate(lanes_a))
    if op == "shuffle":
        out = [lanes_a[index] if (index := b >> (8 * i) & 0xFF) < 16 else 0 for i in range(16)]
    elif op in ir.VECTOR_SHIFTS:
        if b >= lane:
            out = [m if op == "sar" and x >> (lane - 1) else 0 for x in lanes_a]
        else:
            out = [binop(op, x, b, lane) for x in lanes_a]
    else:
        lanes_b = [b >> (i * lane) & m for i in range(count)]
        if op in ir.VECTOR_PACKS:
            return pack(op, lane, lanes_a + lanes_b)
        if op in ir.VECTOR_PERMUTES:
            out = permute(op, lanes_a, lanes_b)
        else:
            out = [lane_op(op, x, y, lane) for x, y in zip(lanes_a, lanes_b)]
    return sum(v << (i * lane) for i, v in enumerate(out))


def lane_op(op: str, x: int, y: int, lane: int) -> int:
    """One lane of a two-operand :class:`~vm_translate.ir.VecOp` (``x``, ``y`` unsigned lanes)."""
    m = mask(lane)
    if op in ("add", "sub", "mul", "mulhu", "mulhs"):
        return binop(op, x, y, lane)
    if op in ir.VECTOR_SATURATING:
        sx, sy = (to_signed(x, lane), to_signed(y, lane)) if op[-1] == "s" else (x, y)
        exact = sx + sy if op.startswith("add") else sx - sy
        low, high = (-(1 << (lane - 1)), (1 << (lane - 1)) - 1) if op[-1] == "s" else (0, m)
        return min(max(exact, low), high) & m
    if op == "avgu":
        return (x + y + 1) >> 1
    if op in ("mins", "maxs", "minu", "maxu"):
        rmw = {"mins": "smin", "maxs": "smax", "minu": "umin", "maxu": "umax"}[op]
        return atomic_new(rmw, x, y, lane)
    if op == "eq":
        return m * int(x == y)
    if op == "gts":
        return m * int(to_signed(x, lane) > to_signed(y, lane))
    if op == "gtu":
        return m * int(x > y)
    raise ValueError(f"unknown vector op {op!r}")


def pack(op: str, lane: int, lanes: list[int]) -> int:
    """``packss``/``packsu``/``packuu``: every source lane narrowed to ``lane / 2`` bits with saturation."""
    half = lane // 2
    low, high = (-(1 << (half - 1)), (1 << (half - 1)) - 1) if op == "packss" else (0, mask(half))
    values = [to_signed(x, lane) if op != "packuu" else x for x in lanes]
    return sum((min(max(v, low), high) & mask(half)) << (i * half) for i, v in enumerate(values))


def permute(op: str, xs: list[int], ys: list[int]) -> list[int]:
    """``ziplo``/``ziphi``/``unzipeven``/``unzipodd`` of the lane lists ``xs`` and ``ys``."""
    half = len(xs) // 2
    if op in ("ziplo", "ziphi"):
        start = 0 if op == "ziplo" else half
        return [v for i in range(start, start + half) for v in (xs[i], ys[i])]
    first = 0 if op == "unzipeven" else 1
    return xs[first::2] + ys[first::2]


def atomic_new(op: str, old: int, src: int, width: int) -> int:
    """The value an :class:`~vm_translate.ir.AtomicRMW` stores."""
    if op == "swap":
        return src
    if op == "smin":
        return old if to_signed(old, width) <= to_signed(src, width) else src
    if op == "smax":
        return old if to_signed(old, width) >= to_signed(src, width) else src
    if op == "umin":
        return min(old, src)
    if op == "umax":
        return max(old, src)
    return binop(op, old, src, width)


def compare(op: str, a: int, b: int, width: int) -> int:
    if op == "eq":
        return int(a == b)
    if op == "ne":
        return int(a != b)
    if op == "ltu":
        return int(a < b)
    if op == "leu":
        return int(a <= b)
    if op == "lts":
        return int(to_signed(a, width) < to_signed(b, width))
    if op == "les":
        return int(to_signed(a, width) <= to_signed(b, width))
    raise ValueError(f"unknown compare op {op!r}")


def extend(value: int, from_width: int, to_width: int, signed: bool) -> int:
    if to_width <= from_width:
        return value & mask(to_width)
    if signed:
        return to_signed(value, from_width) & mask(to_width)
    return value
