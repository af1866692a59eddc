"""Named helper functions that IR :class:`~vm_translate.ir.Call` statements invoke.

Front ends register the helpers their instructions need (floating point
through :mod:`vm_translate.softfloat`, CSR reads, conditional stores...)
with :func:`register_helper`. Every engine looks helpers up here by name, so
a helper is the single definition of its semantics for all engines.

A helper receives its IR arguments as ints (``takes_cpu`` helpers get the
:class:`~vm_translate.cpu.CpuState` first, for memory or counters) and
returns one int, or a tuple of ints when its Call has several ``dsts``. It
may raise a :class:`vm_core.errors.GuestFault`. It never reads or writes the
register file. ``pure`` helpers (no side effects, result depends only on the
arguments) may be folded or removed by IR passes.

A helper may declare a :class:`NativeLowering`: a pattern, named by what it
computes and not by any ISA, that a native engine implements itself instead
of calling back into Python. Engines look only at the declaration (vm-jit's
tier 2 keeps a block that calls a helper with no lowering it knows in tier
1). The patterns:

``retired_count``
    ``(index: Const) -> count``: the instructions retired before the
    current block (``cpu.icount``) plus ``index``, modulo 2^64.
``alignment_check``
    ``(addr, size: Const, is_store) -> ()``: nothing when ``addr`` is a
    multiple of ``size``; otherwise the helper raises its fault.
``conditional_store``
    ``(addr, value, reservation, size: Const) -> status``: 1 without any
    access when ``addr != reservation``; otherwise the low ``size`` bytes of
    ``value`` are stored at ``addr`` (the helper raises its fault when
    ``addr`` is misaligned or not writable) and the result is 0.
``float``
    ``op`` names an IEEE 754 operation in vm-jit's ``native.float_ops``
    table (``add.f64``, ``to_i32.f32``...), with the conventions that module
    documents (softfloat rounding-mode and instruction-word operands,
    ``(value, flags)`` results, NaN-boxed binary32), and ``policy`` is the
    front end's :class:`~vm_translate.softfloat.policy.FloatPolicy`: the
    flags come in its layout, NaN results are its NaN policy's, invalid
    conversions give its results. Native code implements the policies it
    can (vm-jit: a default NaN, any flag layout, any conversion results)
    and keeps the others' blocks in tier 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from vm_translate.softfloat.policy import FloatPolicy

#: The lowering patterns of :class:`NativeLowering` (see the module docstring).
NATIVE_KINDS = frozenset({"retired_count", "alignment_check", "conditional_store", "float"})


@attrs.frozen
class NativeLowering:
    """How native code may compute a helper: a pattern ``kind`` and, for ``float``, its ``op`` and ``policy``."""

    kind: str
    op: str = ""
    policy: FloatPolicy | None = None

    def __attrs_post_init__(self) -> None:
        if self.kind not in NATIVE_KINDS:
            raise ValueError(f"unknown native lowering {self.kind!r}")
        if (self.kind == "float") != (self.policy is not None):
            raise ValueError("a float lowering, and only a float lowering, names its FloatPolicy")


@attrs.frozen
class Helper:
    name: str
    fn: Callable[..., Any]
    results: int = 1
    takes_cpu: bool = False
    pure: bool = True
    native: NativeLowering | None = None


HELPERS: dict[str, Helper] = {}


def register_helper(
    name: str,
    *,
    results: int = 1,
    takes_cpu: bool = False,
    pure: bool = True,
    native: NativeLowering | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register ``fn`` as the helper ``name`` (``native``: its lowering, if any)."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        existing = HELPERS.get(name)
        if existing is not None and existing.fn is not fn:
            raise ValueError(f"helper {name!r} registered twice")
        HELPERS[name] = Helper(name, fn, results, takes_cpu, pure, native)
        return fn

    return deco


def get_helper(name: str) -> Helper:
    try:
        return HELPERS[name]
    except KeyError:
        raise KeyError(f"no IR helper named {name!r}") from None
