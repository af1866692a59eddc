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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs


@attrs.frozen
class Helper:
    name: str
    fn: Callable[..., Any]
    results: int = 1
    takes_cpu: bool = False
    pure: bool = True


HELPERS: dict[str, Helper] = {}


def register_helper(
    name: str, *, results: int = 1, takes_cpu: bool = False, pure: bool = True
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register ``fn`` as the helper ``name``."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        existing = HELPERS.get(name)
        if existing is not None and existing.fn is not fn:
            raise ValueError(f"helper {name!r} registered twice")
        HELPERS[name] = Helper(name, fn, results, takes_cpu, pure)
        return fn

    return deco


def get_helper(name: str) -> Helper:
    try:
        return HELPERS[name]
    except KeyError:
        raise KeyError(f"no IR helper named {name!r}") from None
