"""The program break (``brk``) of a guest address space, with the Linux kernel's rules.

:class:`ProgramBreak` is a base class of :class:`vm_mem.space.AddressSpace`;
it keeps the break and moves it with the space's own ``map`` / ``unmap``.
The heap it maps is charged memory (:attr:`vm_mem.regions.Commit.CHARGED`,
as Linux accounts ``brk``), so a space with ``max_memory`` refuses growth
past it by leaving the break where it was, as Linux does when it cannot
commit the memory.
"""

from __future__ import annotations

from typing import Any, Protocol

from vm_core.logging import get_logger

from vm_mem.errors import InvalidArgument, OutOfMemory
from vm_mem.layout import PAGE_MASK, PAGE_SHIFT, PROT_READ, PROT_WRITE, page_round_up
from vm_mem.regions import Commit

_READ_WRITE = PROT_READ | PROT_WRITE

_log = get_logger("vm_mem.brk")


class _Space(Protocol):
    """What the break needs of its address space."""

    address_limit: int
    _brk_start: int | None
    _brk: int

    def map(self, addr: int, length: int, prot: int, data: Any = None, *, commit: Commit = ...) -> None: ...

    def unmap(self, addr: int, length: int) -> None: ...

    def _any_mapped(self, first: int, last: int) -> bool: ...


class ProgramBreak:
    """``brk`` and its state (see the module docstring)."""

    _brk_start: int | None
    _brk: int

    @property
    def brk_start(self) -> int | None:
        """The initial program break (page-aligned), or None before :meth:`set_brk_base`."""
        return self._brk_start

    @property
    def brk_current(self) -> int:
        """The current program break (0 before :meth:`set_brk_base`)."""
        return self._brk

    def set_brk_base(self: _Space, addr: int) -> None:
        """Set the initial break from the end of the loaded program's data.

        Like Linux's ELF loader, the break starts at that end rounded up to a
        page; the page holding the unaligned end belongs to the program's own
        mapping, so the heap begins on the next page boundary.
        """
        if not isinstance(addr, int) or isinstance(addr, bool):
            raise InvalidArgument(f"brk base must be an integer, not {type(addr).__name__}")
        if addr < 0 or page_round_up(addr) > self.address_limit:
            raise InvalidArgument(f"brk base {addr:#x} is outside the address space")
        self._brk_start = self._brk = page_round_up(addr)
        _log.debug("brk_base", brk=hex(self._brk))

    def restore_brk(self: _Space, start: int, current: int) -> None:
        """Restore the break state saved from :attr:`brk_start` / :attr:`brk_current` (snapshots)."""
        for value in (start, current):
            if not isinstance(value, int) or isinstance(value, bool):
                raise InvalidArgument(f"brk state must be integers, not {type(value).__name__}")
        if start & PAGE_MASK or not 0 <= start <= current <= self.address_limit:
            raise InvalidArgument(f"invalid brk state start={start:#x} current={current:#x}")
        self._brk_start = start
        self._brk = current

    def brk(self: _Space, new: int) -> int:
        """The ``brk`` system call: move the break to ``new`` and return the resulting break.

        Linux semantics (mm/mmap.c): a value below the initial break (``0``
        included) or outside the address space changes nothing and returns
        the current break. Pages are mapped up to the page-rounded break:
        growing maps fresh zero pages ``PROT_READ|PROT_WRITE`` (charged);
        shrinking unmaps the pages wholly above the new break. Growth is
        refused (the old break is returned) when any page of the new heap, or
        the guard page just above it, is already mapped, or when the memory
        cannot be committed; shrinking is refused when no page between the new
        and the old page-rounded break is mapped.
        """
        start = self._brk_start
        old = self._brk
        if start is None or not isinstance(new, int) or new < start or new > self.address_limit:
            return old
        new_top = page_round_up(new)
        old_top = page_round_up(old)
        if new_top == old_top:
            self._brk = new
            return new
        if new <= old:
            if not self._any_mapped(new_top >> PAGE_SHIFT, old_top >> PAGE_SHIFT):
                return old  # Linux moves the break down only over memory it can give back
            self.unmap(new_top, old_top - new_top)
            self._brk = new
            return new
        guard_end = min((new_top >> PAGE_SHIFT) + 1, self.address_limit >> PAGE_SHIFT)
        if self._any_mapped(old_top >> PAGE_SHIFT, guard_end):
            _log.debug("brk_refused", old=hex(old), new=hex(new))
            return old
        try:
            self.map(old_top, new_top - old_top, _READ_WRITE, commit=Commit.CHARGED)
        except OutOfMemory:
            _log.debug("brk_refused_commit", old=hex(old), new=hex(new))
            return old
        self._brk = new
        return new
