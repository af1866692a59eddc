"""Stopping a running guest (SIGINT, request_stop from another thread) and the exit-error reports."""

from __future__ import annotations

import signal
import threading
import time

import pytest
from vm_accel.kvm import KvmExitError, KvmVm, Registers, SpecialRegisters, StopKind, setup_long_mode
from vm_accel.kvm import ioctl_numbers as nr
from vm_accel.kvm import structures as st
from vm_accel.kvm.run_loop import _exit_error

from .conftest import start_real_mode
from .kvm_programs import USER_SPIN

USER_CODE = 0x30000


def _spinning_user(vm: KvmVm):
    vm.add_memory(0, 0x100000)
    vcpu = vm.create_vcpu()
    system = setup_long_mode(vcpu)
    vm.memory.write(USER_CODE, USER_SPIN.code)
    system.start_user(vcpu, USER_CODE, 0x80000)
    return vcpu


def test_sigint_stops_the_guest_cleanly(vm: KvmVm) -> None:
    vcpu = _spinning_user(vm)
    # Aimed at the vCPU thread, as a terminal's Ctrl-C reaches a single-threaded vm: a process-directed
    # kill could be taken by the timer thread itself, which does not block SIGINT.
    timer = threading.Timer(0.2, signal.pthread_kill, (threading.get_ident(), signal.SIGINT))
    timer.start()
    started = time.monotonic()
    stop = vcpu.run()
    timer.join()
    assert stop.kind is StopKind.INTERRUPTED
    assert time.monotonic() - started < 5
    assert stop.registers.rip == USER_CODE  # inside the spin loop, at CPL 3
    assert stop.special.cs.dpl == 3
    # SIGINT is consumed by the run loop: no KeyboardInterrupt afterwards, and the guest can go on.
    assert signal.SIGINT not in signal.sigpending()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigint_already_pending_stops_before_guest_code(vm: KvmVm) -> None:
    vcpu = _spinning_user(vm)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)
        stop = vcpu.run()
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    assert stop.kind is StopKind.INTERRUPTED


def test_request_stop_from_another_thread(vm: KvmVm) -> None:
    vcpu = _spinning_user(vm)
    timer = threading.Timer(0.2, vcpu.request_stop, ("enough",))
    timer.start()
    stop = vcpu.run()
    timer.join()
    assert stop.kind is StopKind.STOPPED and stop.value == "enough"
    assert signal.SIGINT not in signal.sigpending()
    # The request was consumed: running again keeps going until the next stop.
    timer = threading.Timer(0.1, vcpu.request_stop, (2,))
    timer.start()
    assert vcpu.run().value == 2
    timer.join()


def test_emulation_failure_is_an_exit_error_or_a_ud(vm: KvmVm) -> None:
    """An AVX-512 store at CPL 0 with XSAVE disabled: #UD on hardware, an emulation failure where KVM
    emulates ring 0 (KVM-PVM)."""
    vm.add_memory(0, 0x100000)
    vcpu = vm.create_vcpu()
    system = setup_long_mode(vcpu)
    vm.memory.write(0x20000, bytes.fromhex("62f1fe487f00"))  # vmovdqu64 [rax], zmm0
    system.start_kernel(vcpu, 0x20000)
    frames = []

    class Exceptions:
        def port_read(self, vcpu, port, size):
            return 0

        def port_write(self, vcpu, port, size, value):
            frames.append(system.read_exception_frame(vcpu))
            vcpu.request_stop()

    vm.io.add_ports(system.layout.exception_port, 1, Exceptions())
    try:
        vcpu.run()
    except KvmExitError as exc:
        assert exc.exit_reason == "INTERNAL_ERROR"
        assert "EMULATION" in str(exc) and "62 f1 fe 48 7f 00" in str(exc)
        assert "rip=0x0000000000020000" in str(exc)
    else:
        assert [f.vector for f in frames] == [6]


class FakeVcpu:
    """Enough of a vCPU for the exit decoder: a kvm_run structure and fixed registers."""

    index = 0

    def __init__(self) -> None:
        self.run_page = st.KvmRun()

    def get_regs(self) -> Registers:
        return Registers(rip=0xFFF0)

    def get_sregs(self) -> SpecialRegisters:
        return SpecialRegisters()


def test_fail_entry_report_names_the_hardware_reason() -> None:
    vcpu = FakeVcpu()
    vcpu.run_page.exit_reason = nr.KVM_EXIT_FAIL_ENTRY
    vcpu.run_page.exit.fail_entry.hardware_entry_failure_reason = 0x80000021
    vcpu.run_page.exit.fail_entry.cpu = 3
    error = _exit_error(vcpu, nr.KVM_EXIT_FAIL_ENTRY)  # type: ignore[arg-type]
    assert error.exit_reason == "FAIL_ENTRY"
    assert "0x80000021" in str(error) and "invalid guest state" in str(error) and "CPU 3" in str(error)
    assert "rip=0x000000000000fff0" in str(error)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [(nr.KVM_EXIT_UNKNOWN, "hardware_exit_reason=0x7b"), (nr.KVM_EXIT_DEBUG, "not handled"), (99, "#99")],
)
def test_other_exits_are_reported_clearly(reason: int, expected: str) -> None:
    vcpu = FakeVcpu()
    vcpu.run_page.exit.hw.hardware_exit_reason = 0x7B
    error = _exit_error(vcpu, reason)  # type: ignore[arg-type]
    assert expected in str(error)


def test_real_mode_spin_can_be_interrupted(vm: KvmVm) -> None:
    vm.add_memory(0, 0x10000)
    vm.memory.write(0x1000, b"\xeb\xfe")
    vcpu = vm.create_vcpu()
    start_real_mode(vcpu, 0x1000)
    timer = threading.Timer(0.1, vcpu.request_stop)
    timer.start()
    stop = vcpu.run()
    timer.join()
    assert stop.kind is StopKind.STOPPED and stop.registers.rip == 0x1000
