"""KVM's in-kernel interrupt controllers and timer: the PC's PICs, IOAPIC, local APICs and i8254 PIT.

``KVM_CREATE_IRQCHIP`` gives the VM two cascaded 8259 PICs (ports
0x20/0xa0), an IOAPIC (0xfec00000) and a local APIC per vCPU (0xfee00000);
``KVM_CREATE_PIT2`` an i8254 timer on ports 0x40-0x43 wired to IRQ 0. Both
must exist before the first vCPU is created (linux/Documentation/virt/kvm/api.rst).
With them, guest ``hlt`` waits inside the kernel for an interrupt instead of
exiting to user space, and a device model raises its interrupt with
``KVM_IRQ_LINE`` (:class:`IrqLine`).

:func:`set_virtual_wire_mode` does what PC firmware does before it starts
a kernel: the boot vCPU's LAPIC passes the PIC's interrupts through LINT0
(ExtINT) and NMIs through LINT1, so a kernel that never touches its APIC
still gets legacy interrupts (KVM otherwise drops PIC interrupts while the
APIC is enabled with LINT0 masked, its reset state).
"""

from __future__ import annotations

import ctypes

from vm_core.errors import AcceleratorUnavailable, ConfigurationError
from vm_core.logging import get_logger

from vm_accel.kvm import ioctl_numbers as nr
from vm_accel.kvm.errors import KvmIoctlError
from vm_accel.kvm.ioctl import kvm_ioctl
from vm_accel.kvm.system import ACCELERATOR_NAME
from vm_accel.kvm.vcpu import KvmVcpu
from vm_accel.kvm.vm import KvmVm

log = get_logger("vm_accel.boot.irqchip")


class KvmPitConfig(ctypes.Structure):
    """``struct kvm_pit_config`` (linux/kvm.h)."""

    _fields_ = [("flags", ctypes.c_uint32), ("pad", ctypes.c_uint32 * 15)]


class KvmIrqLevel(ctypes.Structure):
    """``struct kvm_irq_level`` (linux/kvm.h): a GSI and its new level."""

    _fields_ = [("irq", ctypes.c_uint32), ("level", ctypes.c_uint32)]


class KvmLapicState(ctypes.Structure):
    """``struct kvm_lapic_state`` (asm/kvm.h): the 1 KiB local APIC register page."""

    _fields_ = [("regs", ctypes.c_uint8 * 1024)]


KVM_CREATE_IRQCHIP = nr.io(nr.KVMIO, 0x60)
KVM_IRQ_LINE = nr.iow(nr.KVMIO, 0x61, KvmIrqLevel)
KVM_CREATE_PIT2 = nr.iow(nr.KVMIO, 0x77, KvmPitConfig)
KVM_GET_LAPIC = nr.ior(nr.KVMIO, 0x8E, KvmLapicState)
KVM_SET_LAPIC = nr.iow(nr.KVMIO, 0x8F, KvmLapicState)
KVM_CAP_IRQCHIP = 0
KVM_CAP_PIT2 = 33
KVM_PIT_SPEAKER_DUMMY = 1
# Local APIC registers (Intel SDM vol. 3, 11.5.1) and LVT delivery modes.
APIC_LVT_LINT0 = 0x350
APIC_LVT_LINT1 = 0x360
APIC_LVT_MASKED = 1 << 16
APIC_MODE_NMI = 0b100 << 8
APIC_MODE_EXTINT = 0b111 << 8
# GSIs of the PC's ISA interrupts (the PIC/IOAPIC pins of KVM's default routing).
IRQ_PIT = 0
IRQ_COM1 = 4
MAX_ISA_IRQ = 15


def create_irqchip(vm: KvmVm) -> None:
    """``KVM_CREATE_IRQCHIP`` then ``KVM_CREATE_PIT2`` (speaker port stubbed); call before creating vCPUs."""
    if vm.vcpus:
        raise ConfigurationError("the in-kernel irqchip must be created before the first vCPU")
    for capability, what in ((KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"), (KVM_CAP_PIT2, "KVM_CAP_PIT2")):
        if not vm.kvm.check_extension(capability):
            raise AcceleratorUnavailable(
                ACCELERATOR_NAME, f"{what} is missing", hint="vm boot needs KVM's in-kernel PIC/APIC and PIT"
            )
    kvm_ioctl(vm.fd, KVM_CREATE_IRQCHIP, 0, name="KVM_CREATE_IRQCHIP")
    kvm_ioctl(vm.fd, KVM_CREATE_PIT2, KvmPitConfig(flags=KVM_PIT_SPEAKER_DUMMY), name="KVM_CREATE_PIT2")
    log.debug("irqchip_created", vm_fd=vm.fd)


def set_virtual_wire_mode(vcpu: KvmVcpu) -> None:
    """LINT0 = ExtINT and LINT1 = NMI, unmasked, on ``vcpu``'s in-kernel LAPIC (as firmware leaves it)."""
    state = KvmLapicState()
    kvm_ioctl(vcpu.fd, KVM_GET_LAPIC, state, name="KVM_GET_LAPIC")
    for register, mode in ((APIC_LVT_LINT0, APIC_MODE_EXTINT), (APIC_LVT_LINT1, APIC_MODE_NMI)):
        value = int.from_bytes(bytes(state.regs[register : register + 4]), "little")
        value = (value & ~(APIC_LVT_MASKED | 0x700)) | mode
        state.regs[register : register + 4] = list(value.to_bytes(4, "little"))
    kvm_ioctl(vcpu.fd, KVM_SET_LAPIC, state, name="KVM_SET_LAPIC")


def read_lapic_register(vcpu: KvmVcpu, register: int) -> int:
    """A 32-bit register of ``vcpu``'s in-kernel LAPIC (``KVM_GET_LAPIC``)."""
    state = KvmLapicState()
    kvm_ioctl(vcpu.fd, KVM_GET_LAPIC, state, name="KVM_GET_LAPIC")
    return int.from_bytes(bytes(state.regs[register : register + 4]), "little")


class IrqLine:
    """One ISA interrupt line of the in-kernel irqchip, driven by a device (level held until changed).

    ``set`` may be called from any thread; it issues ``KVM_IRQ_LINE`` only
    when the level changes (the PIC latches edges, the IOAPIC sees levels).
    """

    def __init__(self, vm: KvmVm, irq: int) -> None:
        if not 0 <= irq <= MAX_ISA_IRQ:
            raise ConfigurationError(f"ISA IRQ {irq} is outside 0..{MAX_ISA_IRQ}")
        self.vm = vm
        self.irq = irq
        self.level = False

    def set(self, level: bool) -> None:
        if level == self.level:
            return
        self.level = level
        try:
            kvm_ioctl(self.vm.fd, KVM_IRQ_LINE, KvmIrqLevel(irq=self.irq, level=int(level)), name="KVM_IRQ_LINE")
        except KvmIoctlError:
            self.level = not level
            raise
