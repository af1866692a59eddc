"""Signal frames and signal system calls: layout checked against glibc's structs, round trips, delivery."""

from __future__ import annotations

import errno
import struct
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vm_linux import rv64_sigframe as frame
from vm_linux.signals import SIGUSR1, make_siginfo
from vm_translate.riscv.archinfo import RV64

MASK64 = 2**64 - 1


def test_frame_layout_matches_glibc(riscv_program, qemu: str) -> None:
    out = subprocess.run([qemu, str(riscv_program("sigframe_layout"))], capture_output=True, text=True, check=True)
    got = {k: int(v) for k, v in (line.split("=") for line in out.stdout.split())}
    uc = frame.UCONTEXT_OFFSET
    assert got["siginfo_size"] == uc == 128
    assert uc + got["uc_stack"] == frame.UC_STACK_OFFSET
    assert uc + got["uc_sigmask"] == frame.UC_SIGMASK_OFFSET
    assert uc + got["uc_mcontext"] == frame.MCONTEXT_OFFSET
    assert uc + got["fpregs"] == frame.FPSTATE_OFFSET
    assert uc + got["fcsr"] == frame.FCSR_OFFSET
    assert uc + got["ucontext_size"] == frame.RT_SIGFRAME_SIZE
    assert got["si_addr"] == 16 and got["si_pid"] == 16 and got["si_uid"] == 20


class Cpu:
    def __init__(self, mem: object) -> None:
        self.regs = [0] * 67
        self.pc = 0
        self.mem = mem
        self.icount = 0


@settings(max_examples=60, deadline=None)
@given(
    gprs=st.lists(st.integers(0, MASK64), min_size=32, max_size=32),
    fprs=st.lists(st.integers(0, MASK64), min_size=32, max_size=32),
    frm=st.integers(0, 7),
    fflags=st.integers(0, 31),
    pc=st.integers(0, MASK64 >> 1).map(lambda v: v & ~1),
    mask=st.integers(0, MASK64),
)
def test_frame_round_trip(gprs, fprs, frm, fflags, pc, mask) -> None:
    from vm_mem import PROT_READ, PROT_WRITE, AddressSpace

    mem = AddressSpace()
    mem.map(0x100000, 0x10000, PROT_READ | PROT_WRITE)
    cpu = Cpu(mem)
    gprs[0] = 0
    gprs[2] = 0x10F000 + 8  # an unaligned sp: the frame must still be 16-byte aligned
    cpu.regs[:32] = gprs
    cpu.regs[32:64] = fprs
    cpu.regs[64], cpu.regs[65] = frm, fflags
    cpu.pc = pc
    before = list(cpu.regs)
    info = make_siginfo(SIGUSR1, -6, pid=7, uid=8)
    codec = frame.Rv64SignalFrames(RV64)
    codec.push_frame(cpu, sp=gprs[2], signo=SIGUSR1, siginfo=info, old_mask=mask, altstack=(0, 2, 0),
                     handler=0x4000, restorer=0x5000)
    sp = cpu.regs[2]
    assert sp % 16 == 0 and gprs[2] - frame.RT_SIGFRAME_SIZE - 16 < sp <= gprs[2] - frame.RT_SIGFRAME_SIZE
    assert (cpu.pc, cpu.regs[1], cpu.regs[10], cpu.regs[11], cpu.regs[12]) == (
        0x4000, 0x5000, SIGUSR1, sp, sp + frame.UCONTEXT_OFFSET
    )
    assert mem.read(sp, 128) == info
    assert struct.unpack("<Q", mem.read(sp + frame.UC_SIGMASK_OFFSET, 8))[0] == mask
    assert struct.unpack("<Q", mem.read(sp + frame.MCONTEXT_OFFSET, 8))[0] == pc
    assert struct.unpack("<I", mem.read(sp + frame.FCSR_OFFSET, 4))[0] == (frm << 5) | fflags
    for i in range(1, 32):
        assert struct.unpack("<Q", mem.read(sp + frame.MCONTEXT_OFFSET + 8 * i, 8))[0] == (
            gprs[i]
        )
    for i in (1, 10, 11, 12):
        cpu.regs[i] = 0xDEAD
    saved_mask, _altstack = codec.pop_frame(cpu)
    assert saved_mask == mask
    assert cpu.regs == before and cpu.pc == pc


def test_sigaction_and_mask_calls(sys_harness) -> None:
    h = sys_harness
    act = h.alloc(struct.pack("<QQQ", 0x12340, 0x4, 1 << 11))
    old = h.alloc(24)
    assert h.call("rt_sigaction", SIGUSR1, act, 0, 8) == 0
    assert h.call("rt_sigaction", SIGUSR1, 0, old, 8) == 0
    assert struct.unpack("<QQQ", h.mem.read(old, 24)) == (0x12340, 0x4, 1 << 11)
    assert h.call("rt_sigaction", 9, act, 0, 8) == -errno.EINVAL  # SIGKILL cannot be caught
    assert h.call("rt_sigaction", 65, act, 0, 8) == -errno.EINVAL
    assert h.call("rt_sigaction", SIGUSR1, act, 0, 16) == -errno.EINVAL
    new = h.alloc(struct.pack("<Q", (1 << 8) | (1 << 9) | (1 << 18)))  # SIGKILL, SIGUSR1, SIGSTOP bits
    got = h.alloc(8)
    assert h.call("rt_sigprocmask", 0, new, 0, 8) == 0
    assert h.call("rt_sigprocmask", 0, 0, got, 8) == 0
    assert struct.unpack("<Q", h.mem.read(got, 8))[0] == 1 << 9  # KILL and STOP cannot be blocked
    assert h.call("rt_sigprocmask", 7, new, 0, 8) == -errno.EINVAL
    assert h.call("tgkill", h.state.pid, h.state.pid, SIGUSR1) == 0
    assert SIGUSR1 in h.state.signals.pending
    assert h.state.signals.take_deliverable() is None  # blocked
    assert h.call("tgkill", h.state.pid, h.state.pid + 1, SIGUSR1) == -errno.ESRCH
    assert h.call("kill", 1, 15) == -errno.ESRCH  # host processes do not exist for the guest
    assert h.call("kill", 1, 0) == -errno.ESRCH  # not even to probe
    assert h.call("kill", -1, 15) == -errno.ESRCH


def test_sigaltstack(sys_harness) -> None:
    h = sys_harness
    ss = h.alloc(struct.pack("<QiiQ", 0x10008000, 0, 0, 1024))
    old = h.alloc(24)
    assert h.call("sigaltstack", ss, 0) == -errno.ENOMEM  # below MINSIGSTKSZ (2048)
    ss = h.alloc(struct.pack("<QiiQ", 0x10008000, 0, 0, 8192))
    assert h.call("sigaltstack", ss, old) == 0
    assert struct.unpack("<QiiQ", h.mem.read(old, 24))[1] == 2  # SS_DISABLE before
    assert h.call("sigaltstack", 0, old) == 0
    assert struct.unpack("<QiiQ", h.mem.read(old, 24)) == (0x10008000, 0, 0, 8192)
    bad = h.alloc(struct.pack("<QiiQ", 0, 5, 0, 8192))
    assert h.call("sigaltstack", bad, 0) == -errno.EINVAL


@pytest.mark.parametrize("signo", [SIGUSR1])
def test_siginfo_layout(signo: int) -> None:
    info = make_siginfo(signo, 1, addr=0xABC)
    assert len(info) == 128 and struct.unpack_from("<iiiiQ", info) == (signo, 0, 1, 0, 0xABC)
