"""The riscv64 ``rt_sigframe``: building it for a handler and unwinding it in ``rt_sigreturn``.

Layout (arch/riscv/kernel/signal.c, uapi asm/ucontext.h and sigcontext.h;
glibc's ``ucontext_t`` agrees), offsets from the frame start:

* 0: ``siginfo_t`` (128 bytes);
* 128: ``struct ucontext``: ``uc_flags`` (+0), ``uc_link`` (+8),
  ``uc_stack`` {``ss_sp``, ``ss_flags``, ``ss_size``} (+16), ``uc_sigmask``
  (+40, 8 bytes, then padding to 128 bytes of sigset space), and at +176
  (16-byte aligned) ``uc_mcontext``: ``sc_regs`` {pc, x1..x31} (256 bytes)
  then the FP state union (528 bytes; the D layout f0..f31 then ``fcsr``).

The frame is 1088 bytes, placed 16-byte aligned below the interrupted
``sp`` (or the top of the alternate stack). The handler runs with
``a0 = signo``, ``a1 = &siginfo``, ``a2 = &ucontext``, ``sp`` = the frame and
``ra`` = the sigreturn trampoline (``li a7, 139; ecall``), which Linux keeps
in the vDSO and vm maps as one read-execute page. Register indices come from
the ISA's :class:`~vm_core.arch.ArchInfo`.
"""

from __future__ import annotations

import struct

from vm_core.arch import ArchInfo

from vm_linux.cpu import GuestCpu

UCONTEXT_OFFSET = 128
UC_STACK_OFFSET = UCONTEXT_OFFSET + 16
UC_SIGMASK_OFFSET = UCONTEXT_OFFSET + 40
MCONTEXT_OFFSET = UCONTEXT_OFFSET + 176
FPSTATE_OFFSET = MCONTEXT_OFFSET + 256
FCSR_OFFSET = FPSTATE_OFFSET + 256
FPSTATE_SIZE = 528
RT_SIGFRAME_SIZE = MCONTEXT_OFFSET + 256 + FPSTATE_SIZE  # 1088
SIGRETURN_TRAMPOLINE = struct.pack("<II", 0x08B00893, 0x00000073)  # li a7, 139 ; ecall
MASK64 = 2**64 - 1


class Rv64SignalFrames:
    """:class:`vm_linux.abi.SignalFrameCodec` for riscv64, on the register file ``arch`` describes."""

    frame_size = RT_SIGFRAME_SIZE
    trampoline_code = SIGRETURN_TRAMPOLINE

    def __init__(self, arch: ArchInfo) -> None:
        #: ``sc_regs`` after the pc: x1..x31; then the FP state f0..f31.
        self._x = arch.indices(*(f"x{i}" for i in range(1, 32)))
        self._f = arch.indices(*(f"f{i}" for i in range(32)))
        self._sp, self._ra, self._a0, self._a1, self._a2 = arch.indices("sp", "ra", "a0", "a1", "a2")
        self._frm, self._fflags = arch.indices("frm", "fflags")

    def push_frame(
        self, cpu: GuestCpu, *, sp: int, signo: int, siginfo: bytes, old_mask: int,
        altstack: tuple[int, int, int], handler: int, restorer: int,
    ) -> None:
        """Write the frame below ``sp`` and point the CPU at ``handler`` (raises MemoryFault)."""
        regs = cpu.regs
        frame = (sp - RT_SIGFRAME_SIZE) & ~15
        ss_sp, ss_flags, ss_size = altstack
        ucontext = struct.pack("<QQQiiQQ", 0, 0, ss_sp, ss_flags, 0, ss_size, old_mask).ljust(176, b"\0")
        gregs = struct.pack("<32Q", cpu.pc & MASK64, *(regs[i] & MASK64 for i in self._x))
        fregs = struct.pack("<32Q", *(regs[i] & MASK64 for i in self._f))
        fcsr = ((regs[self._frm] & 7) << 5) | (regs[self._fflags] & 0x1F)
        fpstate = (fregs + struct.pack("<I", fcsr)).ljust(FPSTATE_SIZE, b"\0")
        cpu.mem.write(frame, siginfo + ucontext + gregs + fpstate)
        regs[self._sp] = frame
        regs[self._ra] = restorer
        regs[self._a0] = signo
        regs[self._a1] = frame
        regs[self._a2] = frame + UCONTEXT_OFFSET
        cpu.pc = handler

    def pop_frame(self, cpu: GuestCpu) -> tuple[int, tuple[int, int, int]]:
        """Restore the registers saved in the frame at ``sp``; return (saved mask, saved altstack)."""
        frame = cpu.regs[self._sp]
        raw = cpu.mem.read(frame + UC_STACK_OFFSET, RT_SIGFRAME_SIZE - (UC_STACK_OFFSET))
        ss_sp, ss_flags, _pad, ss_size, mask = struct.unpack_from("<QiiQQ", raw, 0)
        base = MCONTEXT_OFFSET - UC_STACK_OFFSET
        gregs = struct.unpack_from("<32Q", raw, base)
        fregs = struct.unpack_from("<32Q", raw, base + 256)
        (fcsr,) = struct.unpack_from("<I", raw, base + 512)
        regs = cpu.regs
        cpu.pc = gregs[0]
        for index, value in zip(self._x, gregs[1:], strict=True):
            regs[index] = value
        for index, value in zip(self._f, fregs, strict=True):
            regs[index] = value
        regs[self._frm] = (fcsr >> 5) & 7
        regs[self._fflags] = fcsr & 0x1F
        return mask, (ss_sp, ss_flags, ss_size)
