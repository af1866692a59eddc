"""64-bit guests: CPL 0 code, CPL 3 code entered through sysretq, system calls, exceptions, page tables.

CPL 3 arithmetic is compared with the Unicorn engine running the same bytes.
"""

from __future__ import annotations

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as stst
from unicorn import UC_ARCH_X86, UC_MODE_64, Uc
from unicorn import x86_const as ux
from vm_accel.kvm import (
    DescriptorTable,
    ExceptionFrame,
    FpuState,
    Kvm,
    KvmVcpu,
    KvmVm,
    LongModeSystem,
    Registers,
    StopKind,
    setup_long_mode,
)
from vm_accel.kvm import ioctl_numbers as nr
from vm_accel.kvm.long_mode import KERNEL_CS, USER_CS, USER_DS

from .conftest import RecordingPorts
from .kvm_programs import LONG_MODE_SUM, USER_ARITHMETIC, USER_PAGE_FAULT, user_sum_loop

KERNEL_CODE = 0x20000
USER_CODE = 0x30000
USER_STACK = 0x80000
ARITHMETIC_FLAGS = 0x8D5  # CF PF AF ZF SF OF


class SyscallRecorder:
    """Stops the vCPU at a guest `syscall`, whichever way the host KVM delivers it.

    On hardware KVM `syscall` enters the stub at CPL 0, whose `out` reaches
    the hypercall port. KVM-PVM leaves CPL 3 in place, so the stub's `out`
    raises #GP and the exception port reports it.
    """

    def __init__(self, system: LongModeSystem) -> None:
        self.system = system
        self.calls: list[Registers] = []
        self.exceptions: list[ExceptionFrame] = []

    def port_read(self, vcpu: KvmVcpu, port: int, size: int) -> int:
        return 0

    def port_write(self, vcpu: KvmVcpu, port: int, size: int, value: int) -> None:
        if port == self.system.layout.hypercall_port:
            self.calls.append(vcpu.get_regs())
            vcpu.request_stop("syscall")
            return
        frame = self.system.read_exception_frame(vcpu)
        if self.system.is_user_syscall_trap(frame):
            self.calls.append(vcpu.get_regs())
            vcpu.request_stop("syscall")
        else:
            self.exceptions.append(frame)
            vcpu.request_stop(frame)


def _long_mode_vm(vm: KvmVm) -> tuple[KvmVcpu, LongModeSystem, SyscallRecorder]:
    vm.add_memory(0, 0x100000)
    vcpu = vm.create_vcpu()
    system = setup_long_mode(vcpu)
    recorder = SyscallRecorder(system)
    vm.io.add_ports(system.layout.hypercall_port, 1, recorder)
    vm.io.add_ports(system.layout.exception_port, 1, recorder)
    return vcpu, system, recorder


def test_cpl0_code_computes_and_reports_through_out(vm: KvmVm) -> None:
    vcpu, system, _ = _long_mode_vm(vm)
    ports = RecordingPorts()
    vm.io.add_ports(0x80, 1, ports)
    vm.memory.write(KERNEL_CODE, LONG_MODE_SUM.code)
    system.start_kernel(vcpu, KERNEL_CODE)
    stop = vcpu.run()
    assert ports.writes == [(0x80, 4, 5050)]
    assert stop.kind is StopKind.HLT
    assert stop.registers.rip == KERNEL_CODE + len(LONG_MODE_SUM.code)
    assert stop.special.cs.selector == KERNEL_CS and stop.special.cs.l == 1
    assert stop.special.efer & 0x500 == 0x500  # LME and LMA: long mode is active


def test_cpl3_loop_entered_through_sysretq_ends_with_syscall(vm: KvmVm) -> None:
    vcpu, system, recorder = _long_mode_vm(vm)
    program = user_sum_loop(100_000)
    vm.memory.write(USER_CODE, program.code)
    system.start_user(vcpu, USER_CODE, USER_STACK)
    stop = vcpu.run()
    assert stop.kind is StopKind.STOPPED and stop.value == "syscall"
    (call,) = recorder.calls
    assert call.rax == 60
    assert call.rdi == 100_000 * 100_001 // 2
    assert call.rcx == USER_CODE + len(program.code)  # the return address syscall saved
    assert not recorder.exceptions


def test_user_page_fault_is_reported_with_cr2_and_error_code(vm: KvmVm) -> None:
    vcpu, system, _ = _long_mode_vm(vm)
    vm.memory.write(USER_CODE, USER_PAGE_FAULT.code)
    system.start_user(vcpu, USER_CODE, USER_STACK)
    stop = vcpu.run()
    frame = stop.value
    assert isinstance(frame, ExceptionFrame)
    assert frame.vector == 14 and frame.cr2 == 0x4000_0000
    assert frame.error_code == 0x4  # user-mode read of a non-present page
    assert frame.rip == USER_CODE and frame.cs == USER_CS and frame.ss == USER_DS
    assert frame.rsp == USER_STACK and frame.from_user


def test_non_identity_mapping_is_used_by_the_guest_mmu(vm: KvmVm) -> None:
    vcpu, system, recorder = _long_mode_vm(vm)
    # Map virtual 0x4000_0000 (beyond the identity map) to the physical page 0x50000.
    system.page_tables.map(0x4000_0000, 0x50000, 0x1000, writable=False)
    vm.memory.write_u64(0x50000, 0x1122_3344_5566_7788)
    vm.memory.write(USER_CODE, USER_PAGE_FAULT.code + b"\x0f\x05")  # the load, then syscall
    system.start_user(vcpu, USER_CODE, USER_STACK)
    stop = vcpu.run()
    assert stop.value == "syscall", stop.describe()
    assert recorder.calls[0].rax == 0x1122_3344_5566_7788


def test_triple_fault_without_idt_is_a_shutdown(vm: KvmVm) -> None:
    vcpu, system, _ = _long_mode_vm(vm)
    vm.memory.write(USER_CODE, b"\x0f\x0b")  # ud2
    vcpu.set_sregs(attrs.evolve(vcpu.get_sregs(), idt=DescriptorTable(base=0, limit=0)))
    system.start_user(vcpu, USER_CODE, USER_STACK)
    stop = vcpu.run()
    assert stop.kind is StopKind.SHUTDOWN
    assert stop.registers.rip == USER_CODE
    assert stop.special.cs.selector == USER_CS
    assert "rip=0x0000000000030000" in stop.describe()


def _unicorn(inputs: dict[str, int]) -> Uc:
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    uc.mem_map(USER_CODE, 0x1000)
    uc.mem_write(USER_CODE, USER_ARITHMETIC.code)
    for name, value in inputs.items():
        uc.reg_write(getattr(ux, f"UC_X86_REG_{name.upper()}"), value)
    uc.emu_start(USER_CODE, USER_CODE + len(USER_ARITHMETIC.code) - 2)  # up to the syscall
    return uc


u64 = stst.integers(0, (1 << 64) - 1)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rdi=u64, rsi=u64, rdx=u64, r8=u64, r9=u64)
def test_cpl3_arithmetic_matches_unicorn(kvm: Kvm, rdi: int, rsi: int, rdx: int, r8: int, r9: int) -> None:
    inputs = {"rdi": rdi, "rsi": rsi, "rdx": rdx, "r8": r8, "r9": r9}  # the shared kvm device is stateless
    with kvm.create_vm() as vm:
        vcpu, system, recorder = _long_mode_vm(vm)
        vm.memory.write(USER_CODE, USER_ARITHMETIC.code)
        system.start_user(vcpu, USER_CODE, USER_STACK, Registers(**inputs))
        assert vcpu.run().value == "syscall"
    (call,) = recorder.calls
    uc = _unicorn(inputs)
    for name in ("rax", "rbx", "rdx", "rsi", "rdi", "r8", "r9"):
        assert getattr(call, name) == uc.reg_read(getattr(ux, f"UC_X86_REG_{name.upper()}")), name
    assert call.r11 & ARITHMETIC_FLAGS == uc.reg_read(ux.UC_X86_REG_RFLAGS) & ARITHMETIC_FLAGS


def test_msrs_and_fpu_round_trip(vm: KvmVm) -> None:
    vcpu, system, _ = _long_mode_vm(vm)
    msrs = vcpu.get_msrs([nr.MSR_LSTAR, nr.MSR_STAR, nr.MSR_EFER])
    assert msrs[nr.MSR_LSTAR] == system.syscall_entry
    assert msrs[nr.MSR_STAR] >> 48 == 0x20 and (msrs[nr.MSR_STAR] >> 32) & 0xFFFF == KERNEL_CS
    assert msrs[nr.MSR_EFER] & 0xD01 == 0xD01  # SCE LME LMA NXE
    vcpu.set_msrs({nr.MSR_KERNEL_GS_BASE: 0x1234_5678})
    assert vcpu.get_msrs([nr.MSR_KERNEL_GS_BASE]) == {nr.MSR_KERNEL_GS_BASE: 0x1234_5678}
    # (mxcsr is left out: KVM-PVM neither applies nor reports KVM_SET_FPU's mxcsr.)
    fpu = attrs.evolve(vcpu.get_fpu(), xmm=tuple(bytes([i]) * 16 for i in range(16)), fcw=0x27F)
    vcpu.set_fpu(fpu)
    read_back = vcpu.get_fpu()
    assert isinstance(read_back, FpuState)
    assert read_back.xmm == fpu.xmm and read_back.fcw == 0x27F


def test_setup_needs_ram_under_the_system_area(vm: KvmVm) -> None:
    from vm_core.errors import ConfigurationError

    vm.add_memory(0x100000, 0x10000)
    with pytest.raises(ConfigurationError, match="not guest RAM"):
        setup_long_mode(vm.create_vcpu())
