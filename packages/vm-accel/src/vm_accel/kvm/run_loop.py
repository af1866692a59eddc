"""The vCPU run loop: ``KVM_RUN`` and the handling of every exit reason.

:func:`run_vcpu` enters the guest again and again, answering port I/O and
MMIO exits through the VM's :class:`vm_accel.kvm.io_bus.IoBus`, until:

* the guest executes ``hlt`` (``StopKind.HLT``; running again resumes after it),
* the guest triple-faults (``StopKind.SHUTDOWN``, with the register state),
* the guest requests a reset/poweroff through KVM (``StopKind.SYSTEM_EVENT``),
* SIGINT arrives (``StopKind.INTERRUPTED``: ``KVM_RUN`` returned EINTR),
* a handler or another thread called ``vcpu.request_stop(value)`` (``StopKind.STOPPED``).

SIGINT is blocked in the calling thread while the loop runs and unblocked
only inside ``KVM_RUN`` (``KVM_SET_SIGNAL_MASK``), so an interrupt can never
slip in between two entries: a pending one makes the next ``KVM_RUN`` return
EINTR at once. When the loop returns right after a port I/O or MMIO exit it
re-enters once with ``immediate_exit`` set, which completes the instruction
(for ``out``, ``rip`` moves past it) without running guest code, so the
reported and the saved register state are consistent.

A failed VM entry, a KVM internal error or any other exit raises
:class:`vm_accel.kvm.errors.KvmExitError` with the register state.

The loop sees the vCPU as a :class:`vm_accel.kvm.protocols.RunnableVcpu`
(:class:`vm_accel.kvm.vcpu.KvmVcpu` is one, and calls the loop from ``run``).
"""

from __future__ import annotations

import enum
import fcntl
import signal

import attrs
from vm_core.logging import get_logger

from vm_accel.kvm import ioctl_numbers as nr
from vm_accel.kvm.errors import KvmExitError, KvmIoctlError
from vm_accel.kvm.io_bus import IoBus
from vm_accel.kvm.protocols import RunnableVcpu
from vm_accel.kvm.state import Registers, SpecialRegisters

log = get_logger("vm_accel.kvm.run_loop")

# VMX basic exit reasons reported with "VM-entry failure" (SDM vol. 3, appendix C) and SVM's VMEXIT_INVALID.
_ENTRY_FAILURE_NAMES: dict[int, str] = {
    0x8000_0021: "VM-entry failure due to invalid guest state",
    0x8000_0022: "VM-entry failure due to MSR loading",
    0x8000_0029: "VM-entry failure due to machine-check event",
    0xFFFF_FFFF_FFFF_FFFF: "SVM VMEXIT_INVALID (invalid guest state)",
}


class StopKind(enum.Enum):
    """Why :func:`run_vcpu` returned."""

    HLT = "hlt"
    SHUTDOWN = "shutdown"
    SYSTEM_EVENT = "system_event"
    INTERRUPTED = "interrupted"
    STOPPED = "stopped"


@attrs.frozen
class VcpuStop:
    """The vCPU stopped: why, its register state then, and the ``request_stop`` value or exit detail."""

    kind: StopKind
    registers: Registers
    special: SpecialRegisters
    value: object = None
    detail: str = ""

    def describe(self) -> str:
        """A multi-line report: the reason, then general and special registers."""
        head = f"vCPU stopped: {self.kind.value}" + (f" ({self.detail})" if self.detail else "")
        return f"{head}\n{self.registers.describe()}\n{self.special.describe()}"


def run_vcpu(vcpu: RunnableVcpu) -> VcpuStop:
    """Run ``vcpu`` until it stops (see the module documentation)."""
    blocked_before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        vcpu.set_signal_mask(blocked_before - {signal.SIGINT})
        vcpu.begin_run()
        try:
            return _loop(vcpu)
        finally:
            vcpu.end_run()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked_before)


def _loop(vcpu: RunnableVcpu) -> VcpuStop:
    run = vcpu.run_page
    bus = vcpu.io
    io_pending = False
    while True:
        requested, value = vcpu.take_stop()
        if requested:
            if io_pending:
                _complete_pending_io(vcpu)
            return _stop(vcpu, StopKind.STOPPED, value=value)
        try:
            fcntl.ioctl(vcpu.fd, nr.KVM_RUN, 0)
        except InterruptedError:
            io_pending = False
            if vcpu.consume_interrupt():
                requested, value = vcpu.take_stop()
                if requested:
                    return _stop(vcpu, StopKind.STOPPED, value=value)
                log.info("vcpu_interrupted", vcpu=vcpu.index)
                return _stop(vcpu, StopKind.INTERRUPTED, detail="SIGINT")
            continue
        except OSError as exc:
            raise KvmIoctlError("KVM_RUN", exc) from exc
        io_pending = False
        reason = run.exit_reason
        if reason == nr.KVM_EXIT_IO:
            _port_io(vcpu, bus)
            io_pending = True
        elif reason == nr.KVM_EXIT_MMIO:
            _mmio(vcpu, bus)
            io_pending = True
        elif reason == nr.KVM_EXIT_HLT:
            return _stop(vcpu, StopKind.HLT)
        elif reason == nr.KVM_EXIT_SHUTDOWN:
            stop = _stop(vcpu, StopKind.SHUTDOWN, detail="triple fault or shutdown")
            log.warning("vcpu_shutdown", vcpu=vcpu.index, rip=hex(stop.registers.rip))
            return stop
        elif reason == nr.KVM_EXIT_SYSTEM_EVENT:
            kind = run.exit.system_event.type
            name = nr.SYSTEM_EVENT_NAMES.get(kind, f"type {kind}")
            return _stop(vcpu, StopKind.SYSTEM_EVENT, value=kind, detail=name)
        elif reason == nr.KVM_EXIT_INTR:
            continue
        else:
            raise _exit_error(vcpu, reason)


def _port_io(vcpu: RunnableVcpu, bus: IoBus) -> None:
    io = vcpu.run_page.exit.io
    size, port, count, offset = io.size, io.port, io.count, io.data_offset
    data = vcpu.run_data(offset, size * count)
    for i in range(count):
        cell = data[i * size : (i + 1) * size]
        if io.direction == nr.KVM_EXIT_IO_OUT:
            bus.port_write(vcpu, port, size, int.from_bytes(cell, "little"))
        else:
            cell[:] = bus.port_read(vcpu, port, size).to_bytes(size, "little")


def _mmio(vcpu: RunnableVcpu, bus: IoBus) -> None:
    mmio = vcpu.run_page.exit.mmio
    size = mmio.len
    if mmio.is_write:
        value = int.from_bytes(bytes(mmio.data)[:size], "little")
        bus.mmio_write(vcpu, mmio.phys_addr, size, value)
    else:
        raw = bus.mmio_read(vcpu, mmio.phys_addr, size).to_bytes(size, "little")
        for i, byte in enumerate(raw):
            mmio.data[i] = byte


def _complete_pending_io(vcpu: RunnableVcpu) -> None:
    """Finish the I/O instruction the last exit reported without running guest code."""
    run = vcpu.run_page
    run.immediate_exit = 1
    try:
        fcntl.ioctl(vcpu.fd, nr.KVM_RUN, 0)
    except InterruptedError:
        pass
    except OSError as exc:
        raise KvmIoctlError("KVM_RUN", exc) from exc
    finally:
        run.immediate_exit = 0


def _stop(vcpu: RunnableVcpu, kind: StopKind, *, value: object = None, detail: str = "") -> VcpuStop:
    return VcpuStop(kind, vcpu.get_regs(), vcpu.get_sregs(), value=value, detail=detail)


def _state(vcpu: RunnableVcpu) -> str:
    return f"{vcpu.get_regs().describe()}\n{vcpu.get_sregs().describe()}"


def _exit_error(vcpu: RunnableVcpu, reason: int) -> KvmExitError:
    run = vcpu.run_page
    name = nr.EXIT_REASON_NAMES.get(reason, f"#{reason}")
    if reason == nr.KVM_EXIT_FAIL_ENTRY:
        code = run.exit.fail_entry.hardware_entry_failure_reason
        meaning = _ENTRY_FAILURE_NAMES.get(code, "see the VMX/SVM exit reason tables")
        detail = f"hardware_entry_failure_reason={code:#x} ({meaning}) on host CPU {run.exit.fail_entry.cpu}"
    elif reason == nr.KVM_EXIT_INTERNAL_ERROR:
        detail = _internal_error_detail(vcpu)
    elif reason == nr.KVM_EXIT_UNKNOWN:
        detail = f"hardware_exit_reason={run.exit.hw.hardware_exit_reason:#x}"
    elif reason == nr.KVM_EXIT_EXCEPTION:
        detail = f"exception {run.exit.ex.exception} error code {run.exit.ex.error_code:#x}"
    else:
        detail = f"exit reason {reason} is not handled by this run loop"
    log.error("vcpu_exit_error", vcpu=vcpu.index, exit_reason=name, detail=detail)
    return KvmExitError(name, detail, _state(vcpu))


def _internal_error_detail(vcpu: RunnableVcpu) -> str:
    internal = vcpu.run_page.exit.internal
    suberror = internal.suberror
    text = f"suberror {suberror}: {nr.INTERNAL_ERROR_NAMES.get(suberror, 'unknown')}"
    ndata = min(internal.ndata, 16)
    if suberror == nr.KVM_INTERNAL_ERROR_EMULATION:
        failure = vcpu.run_page.exit.emulation_failure
        if ndata >= 3 and failure.flags & nr.KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES:
            size = min(failure.insn_size, 15)
            text += f"; instruction bytes {bytes(failure.insn_bytes)[:size].hex(' ')}"
            return text
    if ndata:
        text += "; data " + " ".join(f"{internal.data[i]:#x}" for i in range(ndata))
    return text
