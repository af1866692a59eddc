"""How big the code cache may grow, and how big a translation is.

A code cache is bounded twice: by the number of translations it holds and by
an estimate of the bytes they keep alive. :func:`parse_cache_size` reads the
``vm run --code-cache-size`` form of a bound:

``64M``, ``512K``, ``1G``, ``1048576``
    a byte bound (suffixes K, M, G are binary: 1024, 1024², 1024³; an
    optional trailing ``B`` or ``iB`` is accepted: ``64MiB``, ``64MB``);
``2000blocks``
    a translation-count bound;
``64M,2000blocks``
    both.

A bound not given stays at the caller's default (:class:`CacheSize` leaves it
``None``).

Byte estimates (:func:`estimate_ir_bytes`, :func:`estimate_code_object_bytes`)
are measured, not exact: the deep size of lifted vm-translate IR averages
about 132 bytes per statement on the guest suite (``IR_STATEMENT_BYTES``),
and a compiled Python function keeps its code objects (bytecode, line table,
constants) and its closure namespace alive.
"""

from __future__ import annotations

import re
import sys
from types import CodeType

import attrs
from vm_core.errors import ConfigurationError

#: Deep size of one vm-translate IR statement (attrs instance, operands, tuple slot), measured.
IR_STATEMENT_BYTES = 132
#: A block's fixed cost: the ``Block`` object, its statement tuple and the engine's record of it.
IR_BLOCK_OVERHEAD_BYTES = 320
#: A compiled function's namespace: a copy of the runtime dict, helpers and the closure cells.
FUNCTION_OVERHEAD_BYTES = 2048

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
_BYTES = re.compile(r"(\d+)\s*([KMG]?)(?:I?B)?", re.IGNORECASE)
_BLOCKS = re.compile(r"(\d+)\s*blocks?", re.IGNORECASE)


@attrs.frozen
class CacheLimits:
    """A code cache's bound: at most ``blocks`` translations and ``bytes`` estimated bytes."""

    blocks: int
    bytes: int

    def __attrs_post_init__(self) -> None:
        if self.blocks < 1 or self.bytes < 1:
            raise ConfigurationError(f"code cache bound must be positive, got {self.blocks} blocks, {self.bytes} bytes")

    def scaled(self, fraction: float) -> CacheLimits:
        """This bound times ``fraction`` (at least one block and one byte)."""
        return CacheLimits(max(1, int(self.blocks * fraction)), max(1, int(self.bytes * fraction)))


@attrs.frozen
class CacheSize:
    """A parsed ``--code-cache-size``: either bound may be absent (``None``: keep the default)."""

    blocks: int | None = None
    bytes: int | None = None

    def limits(self, default: CacheLimits) -> CacheLimits:
        """The bound this size gives, taking what it leaves out from ``default``."""
        return CacheLimits(
            self.blocks if self.blocks is not None else default.blocks,
            self.bytes if self.bytes is not None else default.bytes,
        )


def parse_cache_size(text: str) -> CacheSize:
    """Parse a code-cache bound (see the module docstring); :class:`ConfigurationError` if malformed."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigurationError("empty code cache size", hint="e.g. 64M, 2000blocks or 64M,2000blocks")
    blocks: int | None = None
    size: int | None = None
    for part in text.split(","):
        part = part.strip()
        if (m := _BLOCKS.fullmatch(part)) is not None:
            if blocks is not None:
                raise ConfigurationError(f"code cache size {text!r} gives the block count twice")
            blocks = int(m.group(1))
            if blocks < 1:
                raise ConfigurationError(f"code cache size {text!r}: the block count must be positive")
        elif (m := _BYTES.fullmatch(part)) is not None:
            if size is not None:
                raise ConfigurationError(f"code cache size {text!r} gives the byte size twice")
            size = int(m.group(1)) * _UNITS[m.group(2).upper()]
            if size < 1:
                raise ConfigurationError(f"code cache size {text!r}: the byte size must be positive")
        else:
            raise ConfigurationError(
                f"bad code cache size {text!r}", hint="e.g. 64M, 512K, 1G, 2000blocks or 64M,2000blocks"
            )
    return CacheSize(blocks=blocks, bytes=size)


def estimate_ir_bytes(statement_count: int) -> int:
    """Estimated bytes a lifted block of ``statement_count`` IR statements keeps alive."""
    return IR_BLOCK_OVERHEAD_BYTES + IR_STATEMENT_BYTES * max(0, statement_count)


def estimate_code_object_bytes(code: CodeType) -> int:
    """Bytes ``code`` and the code objects nested in its constants keep alive (bytecode, tables, constants)."""
    total = 0
    seen: set[int] = set()
    stack = [code]
    while stack:
        c = stack.pop()
        if id(c) in seen:
            continue
        seen.add(id(c))
        total += sys.getsizeof(c) + len(c.co_code) + len(c.co_linetable) + len(c.co_exceptiontable)
        for const in c.co_consts:
            if isinstance(const, CodeType):
                stack.append(const)
            else:
                total += sys.getsizeof(const)
    return total


def estimate_function_bytes(function: object) -> int:
    """Estimated bytes a compiled Python function keeps alive (its code and its namespace)."""
    code = getattr(function, "__code__", None)
    if not isinstance(code, CodeType):
        return FUNCTION_OVERHEAD_BYTES
    return FUNCTION_OVERHEAD_BYTES + estimate_code_object_bytes(code)
