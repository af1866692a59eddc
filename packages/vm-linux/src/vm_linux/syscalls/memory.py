"""Memory-management system calls: brk, mmap, munmap, mprotect, madvise, mremap.

Guest memory is vm-mem's sparse, lazy address space: a mapping is one region
and costs host memory only for the pages the guest touches, so:

* anonymous mappings (private or shared: one process cannot tell them apart)
  and private file mappings work; a file mapping holds the file's bytes at
  ``mmap`` time (bytes past end of file read as zero), each page copied in on
  its first touch;
* shared file mappings are supported read-only; ``PROT_WRITE`` on one (at
  ``mmap`` or later via ``mprotect``) fails with ``ENODEV`` / ``EACCES``,
  because writes could not reach the file;
* ``MADV_DONTNEED`` gives private pages back: they read as on first touch
  again (zeros, or the file's bytes), as in Linux; other advice is accepted
  and ignored.

The ceiling is the ABI's ``user_address_limit`` (qemu-riscv64 7.2 on an
x86-64 host: 0x7fff_ffff_f000) and the errno values beyond it are the ones
qemu-riscv64 gives there (checked by guest programs against it): ``mmap``
with ``MAP_FIXED`` -> ``ENOMEM``; a hint beyond it is ignored (so is
``MAP_FIXED_NOREPLACE``, which qemu 7.2 treats as a hint); ``munmap`` ->
``EINVAL``; ``mprotect`` -> ``ENOMEM``; ``brk`` leaves the break alone; a
length no free range can hold -> ``ENOMEM``.

Committed memory: mappings Linux accounts (``VM_ACCOUNT``: private writable
or shared anonymous, without ``MAP_NORESERVE``; private read-only ones when
they become writable; the heap) are refused with ``ENOMEM`` when the host
kernel would refuse to commit them (:mod:`vm_linux.overcommit`, as qemu-user
lets the host decide) or when they pass the address space's ``max_memory``
(``vm run --max-memory``).
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections.abc import Sequence
from typing import Any

from vm_mem import (
    PAGE_SIZE,
    PROT_WRITE,
    Commit,
    InvalidArgument,
    NotMapped,
    OutOfAddressSpace,
    OutOfMemory,
    page_round_up,
)

from vm_linux.guest_errno import GuestErrno
from vm_linux.overcommit import host_refuses
from vm_linux.state import ProcessState
from vm_linux.syscalls.registry import s32, s64, syscall

MAP_SHARED, MAP_PRIVATE, MAP_SHARED_VALIDATE, MAP_TYPE = 0x1, 0x2, 0x3, 0xF
MAP_FIXED, MAP_ANONYMOUS, MAP_NORESERVE = 0x10, 0x20, 0x4000
PROT_SEM, PROT_GROWSDOWN, PROT_GROWSUP = 0x8, 0x01000000, 0x02000000
MREMAP_MAYMOVE, MREMAP_FIXED, MREMAP_DONTUNMAP = 1, 2, 4
MADV_DONTNEED = 4
MAX_ADVICE = 25
PAGE_MASK = PAGE_SIZE - 1


def _overlaps_shared(st: ProcessState, start: int, length: int) -> bool:
    return any(s < start + length and start < e for s, e in st.shared_file_ranges)


def _forget_shared(st: ProcessState, start: int, length: int) -> None:
    st.shared_file_ranges = [(s, e) for s, e in st.shared_file_ranges if not (start <= s and e <= start + length)]


def _commit_kind(shared: bool, anonymous: bool, noreserve: bool, prot: int) -> Commit:
    """How Linux accounts a new mapping (``VM_ACCOUNT`` in mm/mmap.c)."""
    if noreserve or (shared and not anonymous):
        return Commit.NEVER
    if shared or prot & PROT_WRITE:
        return Commit.CHARGED
    return Commit.ON_WRITE


def _check_host_commit(nbytes: int) -> None:
    if host_refuses(nbytes):
        raise GuestErrno(errno.ENOMEM)


@syscall("brk")
def sys_brk(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    mem = st.mem
    new, old = a[0], mem.brk_current
    if mem.brk_start is not None and new > old and host_refuses(page_round_up(new) - page_round_up(old)):
        return int(old)  # the host would not commit the heap: Linux leaves the break where it was
    return int(mem.brk(new))


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
    info = os.fstat(entry.host_fd)
    if stat.S_ISREG(info.st_mode):  # never ask the host for more than the file holds
        length = max(0, min(length, info.st_size - offset))
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
    if flags & MAP_FIXED:
        if addr & PAGE_MASK:
            raise GuestErrno(errno.EINVAL)
        if addr + size > mem.address_limit:
            raise GuestErrno(errno.ENOMEM)
        if addr < mem.mmap_min_addr:
            raise GuestErrno(errno.EPERM)
        start = addr
    else:  # a hint, MAP_FIXED_NOREPLACE's included (qemu-user 7.2 does not know that flag)
        try:
            start = mem.find_free(size, addr & ~PAGE_MASK)
        except OutOfAddressSpace:
            raise GuestErrno(errno.ENOMEM) from None
    shared = kind != MAP_PRIVATE
    anonymous = bool(flags & MAP_ANONYMOUS)
    commit = _commit_kind(shared, anonymous, bool(flags & MAP_NORESERVE), prot)
    if commit is Commit.CHARGED:
        _check_host_commit(size)
    data = None
    if not anonymous:
        data = _file_bytes(st, fd, size, offset, shared, prot)
    try:
        mem.map(start, size, prot, data, commit=commit)
    except InvalidArgument:
        raise GuestErrno(errno.EINVAL) from None
    except OutOfMemory:
        raise GuestErrno(errno.ENOMEM) from None
    _forget_shared(st, start, size)
    if shared and not anonymous:
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
    if not st.mem.is_mapped(addr, size):
        raise GuestErrno(errno.ENOMEM)
    if prot & PROT_WRITE:
        _check_host_commit(st.mem.chargeable_bytes(addr, size))
    try:
        st.mem.protect(addr, size, prot & 7)
    except (NotMapped, OutOfMemory):
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
        for region in mem.regions(addr, size):
            lo, hi = region.start * PAGE_SIZE, region.end * PAGE_SIZE
            if not _overlaps_shared(st, lo, hi - lo):
                mem.discard(lo, hi - lo)
    return 0


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
    regions = mem.regions(old, old_size)
    if len({region.prot for region in regions}) != 1 or _overlaps_shared(st, old, old_size):
        raise GuestErrno(errno.EFAULT)
    last = regions[-1]
    if new_size > old_size and last.commit is Commit.CHARGED:
        _check_host_commit(new_size - old_size)
    try:
        if flags & MREMAP_FIXED:
            if new_addr & PAGE_MASK or (new_addr < old + old_size and old < new_addr + new_size):
                raise GuestErrno(errno.EINVAL)
            if new_addr + new_size > mem.address_limit:
                raise GuestErrno(errno.ENOMEM)
            mem.remap(old, old_size, new_addr, new_size, keep_old=bool(flags & MREMAP_DONTUNMAP))
            return int(new_addr)
        if new_size <= old_size:
            if new_size < old_size:
                mem.unmap(old + new_size, old_size - new_size)
            return int(old)
        tail, grow = old + old_size, new_size - old_size
        if tail + grow <= mem.address_limit and not mem.any_mapped(tail, grow):
            mem.map(tail, grow, last.prot, commit=last.commit)
            return int(old)
        if not flags & MREMAP_MAYMOVE:
            raise GuestErrno(errno.ENOMEM)
        try:
            target = mem.find_free(new_size)
        except OutOfAddressSpace:
            raise GuestErrno(errno.ENOMEM) from None
        mem.remap(old, old_size, target, new_size, keep_old=bool(flags & MREMAP_DONTUNMAP))
        return int(target)
    except OutOfMemory:
        raise GuestErrno(errno.ENOMEM) from None
