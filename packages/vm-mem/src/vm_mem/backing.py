"""Page backings: an address space whose pages live in memory something else also sees.

By default an :class:`~vm_mem.space.AddressSpace` keeps each page in a
``bytearray`` of its own, created on the page's first touch. A
:class:`PageBacking` given to the constructor (``AddressSpace(backing=...)``)
supplies the storage instead: a hardware accelerator's guest RAM, which the
guest reaches natively through page tables the backing keeps in step. Such a
space is *eager*: every page of a mapping gets its storage when it is mapped
(the guest touches pages without asking vm-mem), and the space tells the
backing about every change:

* :meth:`PageBacking.allocate` when pages are mapped (``map``, ``brk``, a
  ``remap`` that grows, ``discard``, ``restore_pages``): all-or-nothing,
  it gives each page number fresh zeroed storage with ``prot``, replacing
  (and freeing) storage the number had;
* :meth:`PageBacking.release` when pages leave the space (``unmap``, the
  old range of ``remap``, :meth:`~vm_mem.space.AddressSpace.clear`);
* :meth:`PageBacking.protect` when mapped pages change protection;
* :meth:`PageBacking.move` when ``remap`` moves pages (their storage moves
  with them, no copy).

vm-accel's KVM user mode (``vm_accel.usermode.address_space``) is the backing
in the tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class PageBacking(Protocol):
    """Storage for the pages of an eager :class:`~vm_mem.space.AddressSpace` (see the module docstring)."""

    def allocate(self, numbers: Sequence[int], prot: int) -> list[bytearray]:
        """Fresh zeroed storage (``PAGE_SIZE`` writable bytes each) for pages ``numbers`` with ``prot``.

        Storage the numbers had is replaced and freed. All-or-nothing: a
        backing that cannot give them all raises (a :class:`vm_core.errors.VmError`)
        and changes nothing, nor does the space.
        """
        ...

    def release(self, numbers: Sequence[int]) -> None:
        """Pages ``numbers`` left the space: free their storage."""
        ...

    def protect(self, numbers: Sequence[int], prot: int) -> None:
        """Mapped pages ``numbers`` now have protection ``prot``."""
        ...

    def move(self, moves: Sequence[tuple[int, int]]) -> None:
        """Each ``(old, new)``: page ``old``'s storage is page ``new``'s now (``new`` had none)."""
        ...
