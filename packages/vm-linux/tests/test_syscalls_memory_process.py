"""Memory-management and process/time system calls against the address space and host answers."""

from __future__ import annotations

import errno
import os
import resource
import struct
import time

import pytest
from vm_core.errors import UnsupportedError
from vm_linux.state import GuestExit
from vm_mem import PROT_READ, PROT_WRITE

PROT_RW = PROT_READ | PROT_WRITE
MAP_PRIVATE, MAP_SHARED, MAP_FIXED, MAP_ANON, MAP_FIXED_NOREPLACE = 2, 1, 0x10, 0x20, 0x100000
NEG1 = 2**64 - 1


def test_anonymous_mmap_munmap_mprotect(sys_harness) -> None:
    h = sys_harness
    addr = h.call("mmap", 0, 10000, PROT_RW, MAP_PRIVATE | MAP_ANON, NEG1, 0)
    assert addr > 0 and addr % 4096 == 0
    assert h.mem.read(addr, 12288) == bytes(12288)
    assert (addr, addr + 12288, PROT_RW) in h.mem.mappings()
    # qemu-riscv64 7.2 treats MAP_FIXED_NOREPLACE as a hint (guest/rv64/mmap_ceiling.c shows it): placed elsewhere
    elsewhere = h.call("mmap", addr, 4096, PROT_RW, MAP_PRIVATE | MAP_ANON | MAP_FIXED_NOREPLACE, NEG1, 0)
    assert elsewhere > 0 and elsewhere not in range(addr, addr + 12288)
    assert h.call("mmap", addr, 4096, PROT_READ, MAP_PRIVATE | MAP_ANON | MAP_FIXED, NEG1, 0) == addr
    assert h.mem.prot[addr >> 12] == PROT_READ
    assert h.call("mmap", 0, 0, PROT_RW, MAP_PRIVATE | MAP_ANON, NEG1, 0) == -errno.EINVAL
    assert h.call("mmap", 0, 4096, PROT_RW, MAP_ANON, NEG1, 0) == -errno.EINVAL  # neither shared nor private
    assert h.call("mprotect", addr, 8192, PROT_READ) == 0
    assert h.call("mprotect", addr + 1, 4096, PROT_READ) == -errno.EINVAL
    assert h.call("munmap", addr, 12288) == 0
    assert h.call("mprotect", addr, 4096, PROT_READ) == -errno.ENOMEM
    assert h.call("munmap", addr + 1, 4096) == -errno.EINVAL


def test_file_mappings(sys_harness, tmp_path) -> None:
    h = sys_harness
    path = tmp_path / "blob"
    path.write_bytes(bytes(range(256)) * 20)
    fd = h.call("openat", -100, h.cstr(str(path)), 2, 0)
    addr = h.call("mmap", 0, 8192, PROT_READ, MAP_PRIVATE, fd, 4096)
    assert h.mem.read(addr, 5120 - 4096) == path.read_bytes()[4096:]
    assert h.mem.read(addr + 1024, 4096) == bytes(4096)  # past the end of the file
    assert h.call("mmap", 0, 4096, PROT_READ, MAP_PRIVATE, fd, 100) == -errno.EINVAL
    assert h.call("mmap", 0, 4096, PROT_RW, MAP_SHARED, fd, 0) == -errno.ENODEV
    shared = h.call("mmap", 0, 4096, PROT_READ, MAP_SHARED, fd, 0)
    assert shared > 0 and h.call("mprotect", shared, 4096, PROT_RW) == -errno.EACCES
    assert h.call("mmap", 0, 4096, PROT_READ, MAP_PRIVATE, 77, 0) == -errno.EBADF


def test_mremap_and_madvise(sys_harness) -> None:
    h = sys_harness
    addr = h.call("mmap", 0, 8192, PROT_RW, MAP_PRIVATE | MAP_ANON, NEG1, 0)
    h.mem.write(addr, b"keep me")
    h.call("mmap", addr + 8192, 4096, PROT_READ, MAP_PRIVATE | MAP_ANON | MAP_FIXED, NEG1, 0)  # block growth
    assert h.call("mremap", addr, 8192, 65536, 0, 0) == -errno.ENOMEM
    moved = h.call("mremap", addr, 8192, 65536, 1, 0)  # MREMAP_MAYMOVE
    assert moved != addr and h.mem.read(moved, 7) == b"keep me"
    assert not h.mem.is_mapped(addr, 8192)
    assert h.call("mremap", moved, 65536, 4096, 0, 0) == moved
    assert not h.mem.is_mapped(moved + 4096, 4096)
    assert h.call("madvise", moved, 4096, 4) == 0  # MADV_DONTNEED zero-fills private anonymous memory
    assert h.mem.read(moved, 7) == bytes(7)
    assert h.call("madvise", moved, 4096, 999) == -errno.EINVAL


def test_brk(sys_harness) -> None:
    h = sys_harness
    h.mem.set_brk_base(0x20000000)
    base = h.call("brk", 0)
    assert base == 0x20000000
    assert h.call("brk", base + 10000) == base + 10000
    h.mem.write(base + 9999, b"x")
    assert h.call("brk", base - 4096) == base + 10000  # below the start: unchanged


def test_identity_and_uname(sys_harness) -> None:
    h = sys_harness
    assert h.call("getpid") == os.getpid() == h.call("gettid")
    assert h.call("getppid") == os.getppid()
    assert (h.call("getuid"), h.call("geteuid"), h.call("getgid"), h.call("getegid")) == (
        os.getuid(), os.geteuid(), os.getgid(), os.getegid()
    )
    buf = h.alloc(390)
    assert h.call("uname", buf) == 0
    fields = [h.mem.read(buf + 65 * i, 65).split(b"\0")[0].decode() for i in range(6)]
    host = os.uname()
    assert fields[:5] == ["Linux", host.nodename, host.release, host.version, "riscv64"]


def test_time_calls_agree_with_host_clocks(sys_harness) -> None:
    h = sys_harness
    ts = h.alloc(16)
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    assert h.call("clock_gettime", 1, ts) == 0
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    sec, nsec = struct.unpack("<qq", h.mem.read(ts, 16))
    assert before <= sec * 10**9 + nsec <= after and 0 <= nsec < 10**9
    assert h.call("clock_gettime", 12345, ts) == -errno.EINVAL
    assert h.call("clock_getres", 1, ts) == 0
    assert struct.unpack("<qq", h.mem.read(ts, 16)) == (0, round(time.clock_getres(time.CLOCK_MONOTONIC) * 1e9))
    tv = h.alloc(16)
    assert h.call("gettimeofday", tv, 0) == 0
    assert abs(struct.unpack("<qq", h.mem.read(tv, 16))[0] - time.time()) < 5
    req = h.alloc(struct.pack("<qq", 0, 1_000_000))
    assert h.call("nanosleep", req, 0) == 0
    assert h.call("nanosleep", h.alloc(struct.pack("<qq", 0, 10**9)), 0) == -errno.EINVAL


def test_limits_random_affinity(sys_harness) -> None:
    h = sys_harness
    buf = h.alloc(16)
    assert h.call("prlimit64", 0, resource.RLIMIT_NOFILE, 0, buf) == 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert struct.unpack("<QQ", h.mem.read(buf, 16)) == (soft, hard)
    assert h.call("prlimit64", 0, 99, 0, buf) == -errno.EINVAL
    lowered = h.alloc(struct.pack("<QQ", 64, hard))
    assert h.call("setrlimit", resource.RLIMIT_NOFILE, lowered) == 0
    assert h.call("getrlimit", resource.RLIMIT_NOFILE, buf) == 0
    assert struct.unpack("<QQ", h.mem.read(buf, 16)) == (64, hard)
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (soft, hard)  # the VM's own is untouched
    rnd = h.alloc(64)
    assert h.call("getrandom", rnd, 64, 0) == 64 and h.mem.read(rnd, 64) != bytes(64)
    assert h.call("getrandom", rnd, 64, 0x100) == -errno.EINVAL
    mask = h.alloc(128)
    n = h.call("sched_getaffinity", 0, 128, mask)
    assert n > 0 and n % 8 == 0
    bits = int.from_bytes(h.mem.read(mask, n), "little")
    assert {i for i in range(n * 8) if bits >> i & 1} == os.sched_getaffinity(0)


def test_futex_single_thread_and_exit(sys_harness) -> None:
    h = sys_harness
    word = h.alloc(struct.pack("<I", 5))
    assert h.call("futex", word, 128, 4, 0, 0, 0) == -errno.EAGAIN  # FUTEX_WAIT|PRIVATE, value differs
    assert h.call("futex", word, 129, 1, 0, 0, 0) == 0  # FUTEX_WAKE
    timeout = h.alloc(struct.pack("<qq", 0, 1000))
    assert h.call("futex", word, 128, 5, timeout, 0, 0) == -errno.ETIMEDOUT
    with pytest.raises(UnsupportedError, match="no other thread"):
        h.call("futex", word, 128, 5, 0, 0, 0)
    assert h.call("set_robust_list", word, 24) == 0 and h.call("set_robust_list", word, 8) == -errno.EINVAL
    assert h.call("set_tid_address", word) == os.getpid()
    assert h.call("rseq", word, 32, 0, 0) == -errno.ENOSYS
    with pytest.raises(GuestExit) as ended:
        h.call("exit_group", 300)
    assert ended.value.status == 300 & 0xFF and ended.value.signal is None
