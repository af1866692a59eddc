"""Running CPL 3 code of a Linux process on a KVM vCPU, stopping at each system call or fault.

:class:`KvmUserEngine` is an engine in vm-linux's sense (``run(cpu, budget)``
returns a :class:`vm_core.types.StopReason`), so :class:`vm_linux.process.LinuxProcess`
drives it exactly like an emulator: it dispatches system calls, delivers
signals and ends the process. The guest runs natively until it leaves:

* ``syscall`` on hardware KVM enters the CPL 0 stub at LSTAR, whose ``out`` to
  the hypercall port exits to us; on KVM-PVM the CPU stays at CPL 3, the
  stub's ``out`` raises #GP and that arrives through the exception port
  (:meth:`~vm_accel.kvm.LongModeSystem.is_user_syscall_trap`). Either way rcx
  and r11 hold the return rip and rflags, as the ``syscall`` instruction left
  them;
* a CPU exception from CPL 3 goes through the IDT stub to the exception port:
  #PF becomes :class:`~vm_core.errors.MemoryFault` (SIGSEGV) unless the page
  allows the access (a stale translation: the access is simply retried), #UD
  SIGILL, #BP/#DB SIGTRAP, #DE/#MF/#XM SIGFPE, #AC/#SS/#NP SIGBUS, the rest
  SIGSEGV, as Linux's trap handlers do;
* SIGINT to vm stops the guest as if the SIGINT had killed it.

Every return to the guest goes through the stubs' ``add rsp, 16; iretq``
with an interrupt frame the engine writes on the kernel stack, so any
register state the Linux layer chose (a signal handler, ``rt_sigreturn``)
is restored exactly; FS/GS bases set by ``arch_prctl`` are loaded through
their MSRs first. Which ``regs`` entry is which register is x86-64's
:class:`~vm_core.arch.ArchInfo` (``LinuxAbi.arch``); the engine maps them to
KVM's ``kvm_regs`` fields by name.
"""

from __future__ import annotations

import signal
import struct

from vm_core.arch import ArchInfo, RegisterGroup
from vm_core.errors import Breakpoint, GuestFault, IllegalInstruction, MemoryFault, VmError
from vm_core.logging import get_logger
from vm_core.types import StopKind, StopReason
from vm_linux.syscalls.x86_64 import RFLAGS_USER_MASK
from vm_mem import PAGE_SHIFT, PROT_EXEC, PROT_READ, PROT_WRITE, AddressSpace

from vm_accel.kvm import ioctl_numbers as nr
from vm_accel.kvm import kernel_stubs
from vm_accel.kvm.io_bus import DeviceVcpu
from vm_accel.kvm.long_mode import USER_CS, USER_DS, ExceptionFrame, LongModeSystem
from vm_accel.kvm.run_loop import StopKind as VcpuStopKind
from vm_accel.kvm.state import Registers
from vm_accel.kvm.vcpu import KvmVcpu
from vm_accel.usermode.cpu_setup import fpu_from_fxsave, fxsave_image

log = get_logger("vm_accel.usermode.engine")

_FRAME = struct.Struct("<7Q")  # vector, error code, rip, cs, rflags, rsp, ss
_USER_RFLAGS_FIXED = 0x202  # reserved bit 1 and IF
PF_WRITE, PF_INSTRUCTION = 1 << 1, 1 << 4
#: How often one page fault may repeat on a page that allows the access before it counts as real.
SPURIOUS_FAULT_RETRIES = 2
_SIGNAL_OF_VECTOR = {
    0: signal.SIGFPE, 1: signal.SIGTRAP, 3: signal.SIGTRAP, 4: signal.SIGSEGV, 5: signal.SIGSEGV,
    6: signal.SIGILL, 11: signal.SIGBUS, 12: signal.SIGBUS, 13: signal.SIGSEGV, 16: signal.SIGFPE,
    17: signal.SIGBUS, 19: signal.SIGFPE,
}  # fmt: skip
_VECTOR_NAMES = {0: "#DE", 1: "#DB", 3: "#BP", 4: "#OF", 5: "#BR", 6: "#UD", 11: "#NP", 12: "#SS",
                 13: "#GP", 14: "#PF", 16: "#MF", 17: "#AC", 19: "#XM"}  # fmt: skip


class CpuException(GuestFault):
    """A CPU exception of the guest that Linux turns into ``signo`` (not a page fault or #UD)."""

    def __init__(self, vector: int, signo: int, *, pc: int) -> None:
        name = _VECTOR_NAMES.get(vector, f"vector {vector}")
        super().__init__(f"x86-64 exception {name} at {pc:#x}", pc=pc)
        self.vector = vector
        self.signo = signo


class KvmUserCpu:
    """The guest thread's registers as vm-linux sees them (the x86-64 ArchInfo's register file).

    ``regs`` and ``pc`` are the truth while the guest is stopped; the engine
    loads them into the vCPU when it resumes. The FPU state stays in the vCPU
    and is read or replaced as an FXSAVE image (signal frames).
    """

    def __init__(self, vcpu: KvmVcpu, mem: AddressSpace, arch: ArchInfo) -> None:
        self.vcpu = vcpu
        self.mem = mem
        self.regs: list[int] = [0] * arch.register_count
        self.pc = 0
        self.icount = 0  # hardware execution retires instructions uncounted

    def save_fpu_image(self) -> bytes:
        return fxsave_image(self.vcpu.get_fpu())

    def load_fpu_image(self, image: bytes) -> None:
        self.vcpu.set_fpu(fpu_from_fxsave(image))


class _Ports:
    """Answers the stubs' ports: remembers which one exited and stops the vCPU."""

    def __init__(self, system: LongModeSystem) -> None:
        self.hypercall = system.layout.hypercall_port
        self.last_port: int | None = None

    def port_read(self, vcpu: DeviceVcpu, port: int, size: int) -> int:
        raise VmError(f"the CPL 0 stubs never read I/O port {port:#x}")

    def port_write(self, vcpu: DeviceVcpu, port: int, size: int, value: int) -> None:
        self.last_port = port
        vcpu.request_stop(port)


class KvmUserEngine:
    """Runs a :class:`KvmUserCpu` on its vCPU until the next system call or fault (see the module docstring)."""

    name = "kvm"

    def __init__(self, vcpu: KvmVcpu, system: LongModeSystem, mem: AddressSpace, arch: ArchInfo) -> None:
        self.vcpu = vcpu
        #: (regs index, kvm_regs field) of each general register: the ArchInfo's names are KVM's field names.
        self._gprs = tuple((r.index, r.name) for r in arch.group(RegisterGroup.GENERAL))
        self._rsp, self._rflags, self._fs_base, self._gs_base = arch.indices("rsp", "rflags", "fs_base", "gs_base")
        self.system = system
        self.mem = mem
        layout = system.layout
        self._ports = _Ports(system)
        vcpu.vm.io.add_ports(layout.hypercall_port, 1, self._ports)
        vcpu.vm.io.add_ports(layout.exception_port, 1, self._ports)
        self._frame_at = layout.kernel_stack_top - _FRAME.size
        self._resume_rip = layout.code + kernel_stubs.EXCEPTION_COMMON_OFFSET + 2  # after `out imm8, al`
        self._bases = (0, 0)
        self._spurious: tuple[int, int] | None = None
        self.syscalls = 0
        self.exits = 0

    # ------------------------------------------------------------------ entering the guest

    def _enter(self, cpu: KvmUserCpu) -> None:
        regs = cpu.regs
        bases = (regs[self._fs_base], regs[self._gs_base])
        if bases != self._bases:
            self.vcpu.set_msrs({nr.MSR_FS_BASE: bases[0], nr.MSR_GS_BASE: bases[1]})
            self._bases = bases
        rflags = (regs[self._rflags] & RFLAGS_USER_MASK) | _USER_RFLAGS_FIXED
        frame = _FRAME.pack(0, 0, cpu.pc, USER_CS, rflags, regs[self._rsp], USER_DS)
        self.vcpu.vm.memory.write(self._frame_at, frame)
        values = {name: regs[index] for index, name in self._gprs}
        values.update(rsp=self._frame_at, rip=self._resume_rip, rflags=2)
        self.vcpu.set_regs(Registers(**values))

    # ------------------------------------------------------------------ leaving it

    def run(self, cpu: KvmUserCpu, budget: int) -> StopReason:
        """Run until the guest makes a system call (``SYSCALL``) or faults (raises the GuestFault).

        ``budget`` is ignored: the guest runs at hardware speed until it leaves.
        """
        while True:
            self._enter(cpu)
            self._ports.last_port = None
            stop = self.vcpu.run()
            self.exits += 1
            if stop.kind is VcpuStopKind.INTERRUPTED:
                return StopReason(StopKind.EXITED, cpu.pc, signal=int(signal.SIGINT))
            if stop.kind is not VcpuStopKind.STOPPED or self._ports.last_port is None:
                raise VmError(f"the user-mode vCPU stopped unexpectedly\n{stop.describe()}")
            registers = stop.registers
            self._take_registers(cpu, registers)
            if self._ports.last_port == self._ports.hypercall:  # CPL 0 syscall path: rsp untouched
                return self._syscall(cpu, registers)
            frame = self._read_frame(registers.rsp)
            cpu.regs[self._rsp] = frame.rsp
            if self.system.is_user_syscall_trap(frame):
                return self._syscall(cpu, registers)
            if not frame.from_user:
                raise VmError(f"CPU exception in the CPL 0 stubs: {frame.describe()}\n{stop.describe()}")
            cpu.pc = frame.rip
            cpu.regs[self._rflags] = frame.rflags
            fault = self._fault(frame)
            if fault is not None:
                raise fault

    def _take_registers(self, cpu: KvmUserCpu, registers: Registers) -> None:
        regs = cpu.regs
        for index, name in self._gprs:
            regs[index] = getattr(registers, name)

    def _syscall(self, cpu: KvmUserCpu, registers: Registers) -> StopReason:
        self.syscalls += 1
        self._spurious = None
        cpu.pc = registers.rcx
        cpu.regs[self._rflags] = registers.r11
        return StopReason(StopKind.SYSCALL, cpu.pc)

    def _read_frame(self, rsp: int) -> ExceptionFrame:
        vector, error, rip, cs, rflags, user_rsp, ss = _FRAME.unpack(self.vcpu.vm.memory.read(rsp, _FRAME.size))
        cr2 = self.vcpu.get_sregs().cr2 if vector == 14 else 0
        return ExceptionFrame(vector, error, rip, cs, rflags, user_rsp, ss, cr2)

    def _fault(self, frame: ExceptionFrame) -> GuestFault | None:
        """The guest fault ``frame`` reports, or None for a stale-translation page fault to retry."""
        pc = frame.rip
        if frame.vector == 14:
            if frame.error_code & PF_INSTRUCTION:
                access, needs = "execute", PROT_EXEC
            elif frame.error_code & PF_WRITE:
                access, needs = "write", PROT_WRITE
            else:
                access, needs = "read", PROT_READ | PROT_WRITE | PROT_EXEC  # x86 reads what it may write or run
            prot = self.mem.prot.get(frame.cr2 >> PAGE_SHIFT, 0)
            if prot & needs and self._retry_allowed(pc):
                log.debug("spurious_page_fault", address=hex(frame.cr2), access=access, pc=hex(pc))
                return None
            return MemoryFault(frame.cr2, access, pc=pc)
        self._spurious = None
        if frame.vector == 6:
            try:
                word = int.from_bytes(self.mem.read(pc, 4), "little")
            except MemoryFault:
                word = 0
            return IllegalInstruction(word, pc=pc, isa="x86_64", length=4)
        if frame.vector == 3:
            return Breakpoint(f"int3 at {pc:#x}", pc=pc)
        return CpuException(frame.vector, int(_SIGNAL_OF_VECTOR.get(frame.vector, signal.SIGSEGV)), pc=pc)

    def _retry_allowed(self, rip: int) -> bool:
        last_rip, count = self._spurious if self._spurious is not None else (None, 0)
        count = count + 1 if last_rip == rip else 1
        self._spurious = (rip, count)
        return count <= SPURIOUS_FAULT_RETRIES

    @property
    def stats(self) -> dict[str, int]:
        """Counters for ``vm run --stats``."""
        return {"vcpu_exits": self.exits, "system_calls": self.syscalls}
