"""The chain table: how native regions find each other without returning to Python.

A direct-mapped table of :data:`~.llvm_ir.CHAIN_SLOTS` slots of two 64-bit
words, ``(guest pc, address of the native function entered there)``, indexed
by ``(pc >> 1) & (CHAIN_SLOTS - 1)`` like qemu's jump cache. Native code
reads it at every exit to a pc outside its region (:mod:`.llvm_ir`); the
engine writes it when it installs a region and clears a region's slots when
the region is retired, before its code is freed. A collision only costs a
return to the dispatcher, which finds the region in its dictionary.
"""

from __future__ import annotations

import ctypes

from vm_jit.native.llvm_ir import CHAIN_EMPTY, CHAIN_SLOTS


class ChainTable:
    """The direct-mapped ``pc -> native function`` table native regions chain through (see :mod:`.llvm_ir`)."""

    def __init__(self) -> None:
        self.words = (ctypes.c_uint64 * (2 * CHAIN_SLOTS))()
        self.address = ctypes.addressof(self.words)
        self.clear()

    def clear(self) -> None:
        ctypes.memset(self.address, 0xFF, ctypes.sizeof(self.words))  # every pc CHAIN_EMPTY

    def add(self, pc: int, address: int) -> None:
        slot = 2 * ((pc >> 1) & (CHAIN_SLOTS - 1))
        self.words[slot + 1] = address
        self.words[slot] = pc

    def remove(self, pc: int, address: int) -> None:
        """Forget ``pc`` if its slot still leads to ``address`` (a later region may have taken the slot)."""
        slot = 2 * ((pc >> 1) & (CHAIN_SLOTS - 1))
        if self.words[slot] == pc and self.words[slot + 1] == address:
            self.words[slot] = CHAIN_EMPTY

    def entries(self) -> dict[int, int]:
        """Every occupied slot's ``pc -> function address`` (for checks and tests)."""
        words = self.words
        return {words[i]: words[i + 1] for i in range(0, len(words), 2) if words[i] != CHAIN_EMPTY}
