"""Memory-management system calls: brk, mmap, munmap, mprotect, madvise, mremap.

Guest memory is vm-mem's eager, page-granular address space, so:

* anonymous mappings (private or shared: one process cannot tell them apart)
  and private file mappings work; a file mapping is a private copy of the
  file's bytes at ``mmap`` time (bytes past end of file read as zero);
* shared file mappings are supported read-only; ``PROT_WRITE`` on one (at
  ``mmap`` or later via ``mprotect``) fails with ``ENODEV`` / ``EACCES``,
  because writes could not reach the file;
* ``MADV_DONTNEED`` zero-fills private pages as Linux does for anonymous
  memory; other advice is accepted and ignored.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Sequence
from typing import Any

from vm_mem import PAGE_SIZE, PROT_WRITE, InvalidArgument, NotMapped, OutOfAddressSpace, page_round_up

from vm_linux.guest_errno import GuestErrno
from vm_linux.state import ProcessState
from vm_linux.syscalls.registry import s32, s64, syscall

MAP_SHARED, MAP_PRIVATE, MAP_SHARED_VALIDATE, MAP_TYPE = 0x1, 0x2, 0x3, 0xF
MAP_FIXED, MAP_ANONYMOUS, MAP_FIXED_NOREPLACE = 0x10, 0x20, 0x100000
PROT_SEM, PROT_GROWSDOWN, PROT_GROWSUP = 0x8, 0x01000000, 0x02000000
MREMAP_MAYMOVE, MREMAP_FIXED, MREMAP_DONTUNMAP = 1, 2, 4
MADV_DONTNEED = 4
MAX_ADVICE = 25
PAGE_MASK = PAGE_SIZE - 1


def _pages(start: int, length: int) -> range:
    return range(start >> 12, (start + length) >> 12)


def _any_mapped(mem: Any, start: int, length: int) -> bool:
    pages = mem.pages
    return any(pn in pages for pn in _pages(start, length))


def _overlaps_shared(st: ProcessState, start: int, length: int) -> bool:
    return any(s < start + length and start < e for s, e in st.shared_file_ranges)


def _forget_shared(st: ProcessState, start: int, length: int) -> None:
    st.shared_file_ranges = [(s, e) for s, e in st.shared_file_ranges if not (start <= s and e <= start + length)]


@syscall("brk")
def sys_brk(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    return int(st.mem.brk(a[0]))


def _file_bytes(st: ProcessState, fd: int, length: int, offset: int, shared: bool, prot: int) -> bytes:
    entry = st.fds.get(fd)
    access = fcntl.fcntl(entry.host_fd, fcntl.F_GETFL) & os.O_ACCMODE
    if access == os.O_WRONLY:
        raise GuestErrno(errno.EACCES)
    if shared and prot & PROT_WRITE:
        if access != os.O_RDWR:
            raise GuestErrno(errno.EACCES)
        st.log.info("shared_writable_file_mapping_refused", fd=fd, length=length)
        raise GuestErrno(errno.ENODEV)
    return os.pread(entry.host_fd, length, offset)


@syscall("mmap")
def sys_mmap(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    addr, length, prot, flags, fd, offset = a[0], a[1], s32(a[2]), s32(a[3]), s32(a[4]), s64(a[5])
    mem = st.mem
    kind = flags & MAP_TYPE
    if length == 0 or kind not in (MAP_SHARED, MAP_PRIVATE, MAP_SHARED_VALIDATE) or offset & PAGE_MASK:
        raise GuestErrno(errno.EINVAL)
    if prot & ~(7 | PROT_SEM) or offset < 0:
        raise GuestErrno(errno.EINVAL)
    prot &= 7
    size = page_round_up(length)
    if size > mem.address_limit:
        raise GuestErrno(errno.ENOMEM)
    if flags & (MAP_FIXED | MAP_FIXED_NOREPLACE):
        if addr & PAGE_MASK:
            raise GuestErrno(errno.EINVAL)
        if addr + size > mem.address_limit:
            raise GuestErrno(errno.ENOMEM)
        if addr < mem.mmap_min_addr:
            raise GuestErrno(errno.EPERM)
        if flags & MAP_FIXED_NOREPLACE and _any_mapped(mem, addr, size):
            raise GuestErrno(errno.EEXIST)
        start = addr
    else:
        try:
            start = mem.find_free(size, addr & ~PAGE_MASK)
        except OutOfAddressSpace:
            raise GuestErrno(errno.ENOMEM) from None
    data = None
    shared = kind != MAP_PRIVATE
    if not flags & MAP_ANONYMOUS:
        data = _file_bytes(st, fd, size, offset, shared, prot)
    try:
        mem.map(start, size, prot, data)
    except InvalidArgument:
        raise GuestErrno(errno.EINVAL) from None
    _forget_shared(st, start, size)
    if shared and not flags & MAP_ANONYMOUS:
        st.shared_file_ranges.append((start, start + size))
    return start


@syscall("munmap")
def sys_munmap(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    addr, length = a[0], a[1]
    if addr & PAGE_MASK or length == 0 or addr + length > st.mem.address_limit:
        raise GuestErrno(errno.EINVAL)
    size = page_round_up(length)
    st.mem.unmap(addr, size)
    _forget_shared(st, addr, size)
    return 0


@syscall("mprotect")
def sys_mprotect(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    addr, length, prot = a[0], a[1], s32(a[2])
    if addr & PAGE_MASK or prot & ~(7 | PROT_SEM | PROT_GROWSDOWN | PROT_GROWSUP):
        raise GuestErrno(errno.EINVAL)
    if length == 0:
        return 0
    size = page_round_up(length)
    if addr + size > st.mem.address_limit:
        raise GuestErrno(errno.ENOMEM)
    if prot & PROT_WRITE and _overlaps_shared(st, addr, size):
        raise GuestErrno(errno.EACCES)
    try:
        st.mem.protect(addr, size, prot & 7)
    except NotMapped:
        raise GuestErrno(errno.ENOMEM) from None
    return 0


@syscall("madvise")
def sys_madvise(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    addr, length, advice = a[0], a[1], s32(a[2])
    if addr & PAGE_MASK or not (0 <= advice <= MAX_ADVICE or advice in (100, 101)):
        raise GuestErrno(errno.EINVAL)
    if length == 0:
        return 0
    size = page_round_up(length)
    mem = st.mem
    if not mem.is_mapped(addr, size):
        raise GuestErrno(errno.ENOMEM)
    if advice == MADV_DONTNEED:
        for start, end, prot in mem.mappings():
            lo, hi = max(start, addr), min(end, addr + size)
            if lo < hi and not _overlaps_shared(st, lo, hi - lo):
                mem.map(lo, hi - lo, prot)
    return 0


def _copy_pages(mem: Any, start: int, length: int) -> bytes:
    pages = mem.pages
    return b"".join(bytes(pages[pn]) for pn in _pages(start, length))


@syscall("mremap")
def sys_mremap(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    old, old_len, new_len, flags, new_addr = a[0], a[1], a[2], s32(a[3]), a[4]
    mem = st.mem
    if old & PAGE_MASK or flags & ~7 or (flags & MREMAP_FIXED and not flags & MREMAP_MAYMOVE):
        raise GuestErrno(errno.EINVAL)
    old_size, new_size = page_round_up(old_len), page_round_up(new_len)
    if new_size == 0 or old_size == 0 or new_size > mem.address_limit:
        raise GuestErrno(errno.EINVAL)
    if not mem.is_mapped(old, old_size):
        raise GuestErrno(errno.EFAULT)
    prots = {mem.prot[pn] for pn in _pages(old, old_size)}
    if len(prots) != 1 or _overlaps_shared(st, old, old_size):
        raise GuestErrno(errno.EFAULT)
    (prot,) = prots
    if flags & MREMAP_FIXED:
        if new_addr & PAGE_MASK or (new_addr < old + old_size and old < new_addr + new_size):
            raise GuestErrno(errno.EINVAL)
        return _move(mem, old, old_size, new_addr, new_size, prot, keep_old=bool(flags & MREMAP_DONTUNMAP))
    if new_size <= old_size:
        if new_size < old_size:
            mem.unmap(old + new_size, old_size - new_size)
        return int(old)
    tail = old + old_size
    if tail + (new_size - old_size) <= mem.address_limit and not _any_mapped(mem, tail, new_size - old_size):
        mem.map(tail, new_size - old_size, prot)
        return int(old)
    if not flags & MREMAP_MAYMOVE:
        raise GuestErrno(errno.ENOMEM)
    try:
        target = mem.find_free(new_size)
    except OutOfAddressSpace:
        raise GuestErrno(errno.ENOMEM) from None
    return _move(mem, old, old_size, target, new_size, prot, keep_old=bool(flags & MREMAP_DONTUNMAP))


def _move(mem: Any, old: int, old_size: int, new: int, new_size: int, prot: int, *, keep_old: bool) -> int:
    data = _copy_pages(mem, old, min(old_size, new_size))
    mem.map(new, new_size, prot, data)
    if not keep_old:
        mem.unmap(old, old_size)
    return new
