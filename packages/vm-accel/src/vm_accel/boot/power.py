"""The ways a PC guest turns itself off or resets, as port handlers that end the VM.

* ACPI sleep control (``PM1a_CNT``): a write with SLP_EN (bit 13) to port
  0x604 (QEMU's q35/PIIX4 PM block) or 0xb004 (older QEMU/Bochs) is a
  poweroff (S5); there are no ACPI tables, so only guests that know the
  port use it (the project's test kernel does).
* The i8042 keyboard controller's pulse-reset command: 0xfe to port 0x64
  (Linux's ``reboot=k``, also its fallback after ACPI). Reads of 0x64
  answer "no data, ready for a command"; port 0x60 reads 0.
* The PCI reset control register: 0x06 or 0x0e to port 0xcf9 (``reboot=pci``).

Each asks the vCPU to stop with a :class:`GuestStop` saying which (its kind
is vm-core's :class:`~vm_core.types.GuestStopKind`, what ``vm boot`` reports); triple
faults and KVM system events are told apart by the boot machine's run loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
from vm_core.logging import get_logger
from vm_core.types import GuestStopKind

if TYPE_CHECKING:
    from vm_accel.kvm.io_bus import DeviceVcpu, IoBus

log = get_logger("vm_accel.boot.power")

ACPI_PM1A_CNT_PORTS = (0x604, 0xB004)
ACPI_SLP_EN = 1 << 13
I8042_DATA = 0x60
I8042_COMMAND = 0x64
I8042_PULSE_RESET = 0xFE
I8042_STATUS_IDLE = 0x00  # output buffer empty, input buffer empty
RESET_CONTROL = 0xCF9
RESET_CONTROL_RESET = 0x04  # RST_CPU: the reset happens on this bit's 0 -> 1 edge


@attrs.frozen
class GuestStop:
    """Why the VM ended and how (the port, the triple fault, the key...)."""

    kind: GuestStopKind
    detail: str

    def describe(self) -> str:
        return f"{self.kind.value} ({self.detail})" if self.detail else self.kind.value


class AcpiPowerControl:
    """``PM1a_CNT``: poweroff on SLP_EN; other writes (SCI_EN...) and reads are harmless."""

    def port_read(self, vcpu: DeviceVcpu, port: int, size: int) -> int:
        return 0

    def port_write(self, vcpu: DeviceVcpu, port: int, size: int, value: int) -> None:
        if value & ACPI_SLP_EN:
            vcpu.request_stop(GuestStop(GuestStopKind.POWEROFF, f"ACPI sleep control port {port:#x} <- {value:#x}"))


class KeyboardControllerReset:
    """Just enough of the i8042 for its reset line: command 0xfe on port 0x64."""

    def port_read(self, vcpu: DeviceVcpu, port: int, size: int) -> int:
        return I8042_STATUS_IDLE

    def port_write(self, vcpu: DeviceVcpu, port: int, size: int, value: int) -> None:
        if port == I8042_COMMAND and value & 0xFF == I8042_PULSE_RESET:
            vcpu.request_stop(GuestStop(GuestStopKind.REBOOT, "i8042 reset: port 0x64 <- 0xfe"))
        else:
            log.debug("i8042_ignored", port=hex(port), value=hex(value))


class ResetControlRegister:
    """Port 0xcf9: a 0 -> 1 edge of RST_CPU resets the machine."""

    def __init__(self) -> None:
        self.value = 0

    def port_read(self, vcpu: DeviceVcpu, port: int, size: int) -> int:
        return self.value

    def port_write(self, vcpu: DeviceVcpu, port: int, size: int, value: int) -> None:
        value &= 0xFF
        if value & RESET_CONTROL_RESET and not self.value & RESET_CONTROL_RESET:
            vcpu.request_stop(GuestStop(GuestStopKind.REBOOT, f"reset control register: port 0xcf9 <- {value:#x}"))
        self.value = value & ~RESET_CONTROL_RESET


def attach_power_devices(bus: IoBus) -> None:
    """Route the poweroff and reset ports of this module to their handlers on ``bus``."""
    acpi = AcpiPowerControl()
    for port in ACPI_PM1A_CNT_PORTS:
        bus.add_ports(port, 2, acpi)
    keyboard = KeyboardControllerReset()
    bus.add_ports(I8042_DATA, 1, keyboard)
    bus.add_ports(I8042_COMMAND, 1, keyboard)
    bus.add_ports(RESET_CONTROL, 1, ResetControlRegister())
