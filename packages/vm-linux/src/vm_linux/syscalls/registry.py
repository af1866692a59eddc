"""The handler registry and the argument helpers every handler module uses.

A handler is ``handler(state, cpu, args) -> int | None``: ``args`` are the six
raw 64-bit argument registers; the return value goes to the result register
(negative errno on failure); ``None`` means the handler already set the
registers itself (``rt_sigreturn``). Handlers register under their Linux name
with :func:`syscall`; each ABI's table maps its numbers to those names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vm_linux.state import ProcessState

Handler = Callable[["ProcessState", Any, Sequence[int]], "int | None"]
HANDLERS: dict[str, Handler] = {}
MASK64 = 2**64 - 1


def _where(func: Handler) -> tuple[str, str]:
    return func.__module__, getattr(func, "__qualname__", repr(func))


def syscall(*names: str) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of the system calls ``names`` (each name once)."""

    def register(func: Handler) -> Handler:
        for name in names:
            if name in HANDLERS and _where(HANDLERS[name]) != _where(func):
                raise RuntimeError(f"system call {name!r} has two handlers: {HANDLERS[name].__module__} and {func.__module__}")
            HANDLERS[name] = func
        return func

    return register


def s32(value: int) -> int:
    """The low 32 bits as a signed int (``int`` arguments: fds, flags)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def u32(value: int) -> int:
    return value & 0xFFFFFFFF


def s64(value: int) -> int:
    """The register as a signed 64-bit value (``off_t``, ``long``)."""
    value &= MASK64
    return value - (1 << 64) if value >> 63 else value
