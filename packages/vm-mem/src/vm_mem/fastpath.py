"""Helpers for engines that access guest memory on a fast path (the JIT and interpreters).

Compiled guest code reaches memory through the dicts of
:class:`vm_mem.space.AddressSpace` directly and only calls into the address
space when the fast path misses. The fast path for a load of ``size`` bytes
(1, 2, 4 or 8) is::

    page = space.readable.get(addr >> 12)
    if page is not None and (addr & 0xfff) <= 4096 - size:
        value = UNPACK_FROM[size](page, addr & 0xfff)[0]
    else:
        value = slow_load(space, addr, size)

and for a store::

    page = space.writable.get(addr >> 12)
    if page is not None and (addr & 0xfff) <= 4096 - size:
        PACK_INTO[size](page, addr & 0xfff, value & MASKS[size])
    else:
        slow_store(space, addr, size, value)

The slow path handles page-crossing and unaligned-across-page accesses,
creates pages on their first touch (the dicts hold only touched pages, so a
miss is not a fault), raises :class:`vm_core.errors.MemoryFault` for unmapped
or protected memory,
and notifies ``space.on_code_write`` callbacks when a store hits a page
watched as translated code (watched pages are never in ``writable``, so a
fast-path store cannot miss the notification). Instruction fetch goes through
:meth:`~vm_mem.space.AddressSpace.fetch` (``PROT_EXEC``), never the fast path.

The ``struct.Struct`` objects are little-endian and precompiled; bind their
``unpack_from`` / ``pack_into`` methods into generated code's namespace to
avoid attribute look-ups. ``pack_into`` requires the value to be in range,
hence the mask on the store path (signed packers take values already in the
signed range).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from vm_mem.space import AddressSpace

U8 = struct.Struct("<B")
U16 = struct.Struct("<H")
U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")
S8 = struct.Struct("<b")
S16 = struct.Struct("<h")
S32 = struct.Struct("<i")
S64 = struct.Struct("<q")

#: Sizes the struct helpers cover (16-byte accesses always use the slow path or two 8-byte halves).
FAST_SIZES = (1, 2, 4, 8)

UNSIGNED: dict[int, struct.Struct] = {1: U8, 2: U16, 4: U32, 8: U64}
SIGNED: dict[int, struct.Struct] = {1: S8, 2: S16, 4: S32, 8: S64}

#: ``unpack_from(buffer, offset) -> (value,)`` for unsigned / signed values of each size.
UNPACK_FROM: dict[int, Callable[..., tuple[Any, ...]]] = {size: s.unpack_from for size, s in UNSIGNED.items()}
SIGNED_UNPACK_FROM: dict[int, Callable[..., tuple[Any, ...]]] = {
    size: s.unpack_from for size, s in SIGNED.items()
}
#: ``pack_into(buffer, offset, value)`` for unsigned / signed values of each size.
PACK_INTO: dict[int, Callable[..., None]] = {size: s.pack_into for size, s in UNSIGNED.items()}
SIGNED_PACK_INTO: dict[int, Callable[..., None]] = {size: s.pack_into for size, s in SIGNED.items()}
#: ``value & MASKS[size]`` brings any Python int into the unsigned range of ``size`` bytes.
MASKS: dict[int, int] = {size: (1 << (8 * size)) - 1 for size in (1, 2, 4, 8, 16)}

#: The slow paths: exactly :meth:`AddressSpace.load` / :meth:`AddressSpace.store`, called unbound.
slow_load: Callable[[AddressSpace, int, int], int] = AddressSpace.load
slow_store: Callable[[AddressSpace, int, int, int], None] = AddressSpace.store


def load(space: AddressSpace, addr: int, size: int) -> int:
    """An unsigned load using the fast path above (reference form for interpreters)."""
    off = addr & 0xFFF
    page = space.readable.get(addr >> 12)
    unpack_from = UNPACK_FROM.get(size)
    if page is not None and unpack_from is not None and off <= 4096 - size:
        value: int = unpack_from(page, off)[0]
        return value
    return space.load(addr, size)


def store(space: AddressSpace, addr: int, size: int, value: int) -> None:
    """A store using the fast path above (reference form for interpreters)."""
    off = addr & 0xFFF
    page = space.writable.get(addr >> 12)
    pack_into = PACK_INTO.get(size)
    if page is not None and pack_into is not None and off <= 4096 - size:
        pack_into(page, off, value & MASKS[size])
        return
    space.store(addr, size, value)
