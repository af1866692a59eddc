"""Booting Linux x86-64 kernels on KVM (``vm boot``): the Linux x86 boot protocol and a PC's bare minimum.

Modules: :mod:`~vm_accel.boot.bzimage` (the bzImage and its setup header),
:mod:`~vm_accel.boot.zero_page` (``struct boot_params`` and the E820 map),
:mod:`~vm_accel.boot.layout` (guest-physical placement), :mod:`~vm_accel.boot.irqchip`
(KVM's in-kernel PIC/IOAPIC/LAPIC and PIT), :mod:`~vm_accel.boot.uart` (the
16550 on COM1), :mod:`~vm_accel.boot.console` (stdin/stdout, raw mode,
Ctrl-A x), :mod:`~vm_accel.boot.power` (poweroff and reset ports) and
:mod:`~vm_accel.boot.machine` (:func:`boot_linux`, putting it together) and
:mod:`~vm_accel.boot.system_mode` (the accelerator's ``system_mode`` capability
that ``vm boot`` reaches through the plugin registry).
"""

from vm_accel.boot.bzimage import BzImage, SetupHeader, parse_bzimage, read_bzimage
from vm_accel.boot.console import EscapeFilter, HostConsole
from vm_accel.boot.layout import BootPlacement, MemoryLayout, parse_memory_size, place
from vm_accel.boot.machine import BootConfig, BootResult, boot_linux
from vm_accel.boot.power import GuestStop, GuestStopKind
from vm_accel.boot.system_mode import KvmSystemMode, open_system_mode
from vm_accel.boot.uart import Uart16550
from vm_accel.boot.zero_page import BootParams, E820Entry, E820Type, build_boot_params, parse_boot_params

__all__ = [
    "BootConfig",
    "BootParams",
    "BootPlacement",
    "BootResult",
    "BzImage",
    "E820Entry",
    "E820Type",
    "EscapeFilter",
    "GuestStop",
    "GuestStopKind",
    "HostConsole",
    "KvmSystemMode",
    "MemoryLayout",
    "SetupHeader",
    "Uart16550",
    "boot_linux",
    "build_boot_params",
    "open_system_mode",
    "parse_boot_params",
    "parse_bzimage",
    "parse_memory_size",
    "place",
    "read_bzimage",
]
