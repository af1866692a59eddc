"""A KVM virtual CPU: its shared kvm_run page, its register state and its run loop entry.

Registers are read and written as frozen value types
(:mod:`vm_accel.kvm.state`). :meth:`KvmVcpu.run` runs the guest until it
halts, shuts down, is interrupted or is asked to stop (see
:mod:`vm_accel.kvm.run_loop`); :meth:`KvmVcpu.request_stop` may be called
from a port/MMIO handler or from another thread.
"""

from __future__ import annotations

import mmap
import os
import signal
import threading
from collections.abc import Iterable, Mapping

from vm_core.errors import ConfigurationError

from vm_accel.kvm import ioctl_numbers as nr
from vm_accel.kvm import structures as st
from vm_accel.kvm.io_bus import IoBus
from vm_accel.kvm.ioctl import kvm_ioctl
from vm_accel.kvm.protocols import VcpuParent
from vm_accel.kvm.run_loop import VcpuStop, run_vcpu
from vm_accel.kvm.state import CpuidEntry, FpuState, Registers, SpecialRegisters


class KvmVcpu:
    """One vCPU of a :class:`vm_accel.kvm.vm.KvmVm` (which it sees as a :class:`~vm_accel.kvm.protocols.VcpuParent`)."""

    def __init__(self, vm: VcpuParent, index: int, fd: int) -> None:
        self.vm = vm
        self.index = index
        self.fd = fd
        self._run_map: mmap.mmap | None = mmap.mmap(
            fd, vm.kvm.vcpu_mmap_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
        )
        self._run_page: st.KvmRun | None = st.KvmRun.from_buffer(self._run_map)
        self._run_view: memoryview | None = memoryview(self._run_map)
        self._lock = threading.Lock()
        self._stop_requested = False
        self._stop_value: object = None
        self._kicked = False
        self._running_thread: int | None = None
        self.set_cpuid(vm.kvm.supported_cpuid())

    # -- the kvm_run page -------------------------------------------------------------------------

    @property
    def io(self) -> IoBus:
        """The VM's I/O bus, which answers this vCPU's port I/O and MMIO exits."""
        return self.vm.io

    @property
    def run_page(self) -> st.KvmRun:
        """The ``kvm_run`` structure shared with the kernel."""
        if self._run_page is None:
            raise ConfigurationError(f"vCPU {self.index} is closed")
        return self._run_page

    def run_data(self, offset: int, length: int) -> memoryview:
        """``length`` bytes of the kvm_run mapping at ``offset`` (the port I/O data area)."""
        if self._run_view is None:
            raise ConfigurationError(f"vCPU {self.index} is closed")
        return self._run_view[offset : offset + length]

    # -- registers --------------------------------------------------------------------------------

    def get_regs(self) -> Registers:
        raw = st.KvmRegs()
        kvm_ioctl(self.fd, nr.KVM_GET_REGS, raw, name="KVM_GET_REGS")
        return Registers.from_kvm(raw)

    def set_regs(self, registers: Registers) -> None:
        kvm_ioctl(self.fd, nr.KVM_SET_REGS, registers.to_kvm(), name="KVM_SET_REGS")

    def get_sregs(self) -> SpecialRegisters:
        raw = st.KvmSregs()
        kvm_ioctl(self.fd, nr.KVM_GET_SREGS, raw, name="KVM_GET_SREGS")
        return SpecialRegisters.from_kvm(raw)

    def set_sregs(self, special: SpecialRegisters) -> None:
        kvm_ioctl(self.fd, nr.KVM_SET_SREGS, special.to_kvm(), name="KVM_SET_SREGS")

    def get_fpu(self) -> FpuState:
        raw = st.KvmFpu()
        kvm_ioctl(self.fd, nr.KVM_GET_FPU, raw, name="KVM_GET_FPU")
        return FpuState.from_kvm(raw)

    def set_fpu(self, fpu: FpuState) -> None:
        kvm_ioctl(self.fd, nr.KVM_SET_FPU, fpu.to_kvm(), name="KVM_SET_FPU")

    def get_msrs(self, indices: Iterable[int]) -> dict[int, int]:
        """``KVM_GET_MSRS``: the values of the given model-specific registers."""
        wanted = list(indices)
        table = st.kvm_msrs_type(len(wanted))(nmsrs=len(wanted))
        for i, index in enumerate(wanted):
            table.entries[i].index = index
        done = kvm_ioctl(self.fd, nr.KVM_GET_MSRS, table, name="KVM_GET_MSRS")
        if done != len(wanted):
            raise ConfigurationError(f"KVM cannot read MSR {wanted[done]:#x}")
        return {index: table.entries[i].data for i, index in enumerate(wanted)}

    def set_msrs(self, values: Mapping[int, int]) -> None:
        """``KVM_SET_MSRS``: set model-specific registers (EFER, STAR, LSTAR, FMASK, ...)."""
        items = list(values.items())
        table = st.kvm_msrs_type(len(items))(nmsrs=len(items))
        for i, (index, value) in enumerate(items):
            table.entries[i].index = index
            table.entries[i].data = value
        done = kvm_ioctl(self.fd, nr.KVM_SET_MSRS, table, name="KVM_SET_MSRS")
        if done != len(items):
            index, value = items[done]
            raise ConfigurationError(f"KVM refused to set MSR {index:#x} to {value:#x}")

    def set_cpuid(self, entries: Iterable[CpuidEntry]) -> None:
        """``KVM_SET_CPUID2``: what the guest's CPUID instruction answers."""
        chosen = list(entries)
        table = st.kvm_cpuid2_type(len(chosen))(nent=len(chosen))
        for i, entry in enumerate(chosen):
            table.entries[i] = entry.to_kvm()
        kvm_ioctl(self.fd, nr.KVM_SET_CPUID2, table, name="KVM_SET_CPUID2")

    def set_signal_mask(self, blocked: Iterable[int]) -> None:
        """``KVM_SET_SIGNAL_MASK``: the signals blocked while the guest runs."""
        bits = 0
        for signo in blocked:
            bits |= 1 << (int(signo) - 1)
        mask = st.KvmSignalMask(len=st.KERNEL_SIGSET_BYTES)
        for i in range(st.KERNEL_SIGSET_BYTES):
            mask.sigset[i] = (bits >> (8 * i)) & 0xFF
        kvm_ioctl(self.fd, nr.KVM_SET_SIGNAL_MASK, mask, name="KVM_SET_SIGNAL_MASK")

    # -- running ----------------------------------------------------------------------------------

    def run(self) -> VcpuStop:
        """Run the guest until it stops; see :func:`vm_accel.kvm.run_loop.run_vcpu`."""
        return run_vcpu(self)

    def request_stop(self, value: object = None) -> None:
        """Make :meth:`run` return ``StopKind.STOPPED`` with ``value``.

        From a port/MMIO handler the run loop returns once the handler
        returns; from another thread the running vCPU is kicked out of
        ``KVM_RUN`` (``immediate_exit`` plus a thread-directed SIGINT that
        the run loop consumes).
        """
        with self._lock:
            self._stop_requested = True
            self._stop_value = value
            if self._run_page is not None:
                self._run_page.immediate_exit = 1
            thread = self._running_thread
            if thread is not None and thread != threading.get_ident():
                signal.pthread_kill(thread, signal.SIGINT)
                self._kicked = True

    # -- the run loop's side of stopping (see vm_accel.kvm.run_loop) ------------------------------

    def begin_run(self) -> None:
        """The calling thread is about to run this vCPU (another thread's ``request_stop`` kicks it)."""
        with self._lock:
            self._running_thread = threading.get_ident()

    def take_stop(self) -> tuple[bool, object]:
        """(whether a stop was requested, its value); clears the request."""
        with self._lock:
            requested, value = self._stop_requested, self._stop_value
            self._stop_requested, self._stop_value = False, None
            if requested and self._run_page is not None:
                self._run_page.immediate_exit = 0
            return requested, value

    def consume_interrupt(self) -> bool:
        """Take a pending SIGINT (blocked in this thread); True when it was a real interrupt, not a kick."""
        with self._lock:
            took = signal.sigtimedwait([signal.SIGINT], 0) is not None
            if took and self._kicked:
                self._kicked = False
                return False
            return took

    def end_run(self) -> None:
        """The run loop returned: forget the running thread and take a kick's leftover SIGINT."""
        with self._lock:
            self._running_thread = None
            if self._kicked:
                signal.sigtimedwait([signal.SIGINT], 0)
                self._kicked = False

    def close(self) -> None:
        if self._run_view is not None:
            self._run_view.release()
            self._run_view = None
        self._run_page = None
        if self._run_map is not None:
            try:
                self._run_map.close()
            except BufferError:
                pass  # a traceback still holds a view; the page is unmapped when that is collected
            self._run_map = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
