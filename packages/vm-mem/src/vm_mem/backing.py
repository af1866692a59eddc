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
from typing import TYPE_CHECKING, Protocol

from vm_mem.regions import Region

if TYPE_CHECKING:
    from vm_mem.space import AddressSpace

PAGE_SHIFT = 12


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


def allocate_pages(space: AddressSpace, first: int, last: int, prot: int) -> list[bytearray]:
    """Storage for pages ``[first, last)`` from the space's backing (nothing changes if it fails)."""
    assert space.backing is not None
    return space.backing.allocate(range(first, last), prot)


def install_region(space: AddressSpace, region: Region, storage: Sequence[bytearray]) -> None:
    """Install ``storage`` as the pages of ``region`` (mapped already), holding the region's initial bytes."""
    for pn, page in zip(range(region.start, region.end), storage, strict=True):
        initial = region.initial_bytes(pn)
        if initial:
            page[: len(initial)] = initial
        space._install(pn, page, region.prot)


def refill(space: AddressSpace, first: int, last: int) -> None:
    """Give every mapped page of ``[first, last)`` fresh storage with its region's initial bytes (``discard``)."""
    for region in space.regions(first << PAGE_SHIFT, (last - first) << PAGE_SHIFT):
        storage = allocate_pages(space, region.start, region.end, region.prot)
        install_region(space, region, storage)
