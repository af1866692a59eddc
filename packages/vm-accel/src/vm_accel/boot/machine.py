"""Booting a Linux x86-64 bzImage on KVM through the 64-bit boot protocol: the whole machine.

:func:`boot_linux` builds a VM with the in-kernel PICs, IOAPIC, LAPIC and
PIT (:mod:`vm_accel.boot.irqchip`), RAM as :class:`vm_accel.boot.layout.MemoryLayout`
says, a 16550 UART on COM1 wired to IRQ 4 and a host console
(:mod:`vm_accel.boot.uart`, :mod:`vm_accel.boot.console`) and the poweroff
and reset ports (:mod:`vm_accel.boot.power`). It then does what
Documentation/arch/x86/boot.rst asks of a 64-bit boot loader:

1. loads the protected-mode kernel at its preferred address, the command
   line and the initrd (:func:`vm_accel.boot.layout.place`),
2. fills the zero page (:func:`vm_accel.boot.zero_page.build_boot_params`),
3. sets the LAPIC to virtual-wire mode as firmware does (legacy PIC interrupts
   reach the vCPU), then enters ``startup_64`` (load address + 0x200) in 64-bit mode with
   identity-mapped page tables covering RAM below 4 GiB, a GDT whose
   selectors 0x10/0x18 are flat 4 GiB code/data (``__BOOT_CS``/``__BOOT_DS``),
   interrupts disabled and rsi = the zero page.

The vCPU runs until the guest powers off or resets (ports, triple fault,
KVM system event), the console's Ctrl-A x, SIGINT or ``timeout``; the
result says which (:class:`BootResult`). A CPU exception taken before the
kernel installs its own IDT reaches the loader's stubs and ends the VM as
``crashed`` with the faulting rip.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import attrs
from vm_core.errors import BadProgramError, NotFoundError
from vm_core.logging import get_logger

from vm_accel.boot.bzimage import BzImage, read_bzimage
from vm_accel.boot.console import HostConsole
from vm_accel.boot.irqchip import IRQ_COM1, IrqLine, create_irqchip, set_virtual_wire_mode
from vm_accel.boot.layout import (
    LONG_MODE_AREA,
    ZERO_PAGE_ADDRESS,
    BootPlacement,
    MemoryLayout,
    place,
)
from vm_accel.boot.power import GuestStop, GuestStopKind, attach_power_devices
from vm_accel.boot.uart import COM1_PORT, PORT_COUNT, Uart16550
from vm_accel.boot.zero_page import build_boot_params
from vm_accel.kvm import ioctl_numbers as nr
from vm_accel.kvm.io_bus import DeviceVcpu
from vm_accel.kvm.long_mode import LongModeLayout, LongModeSystem, setup_long_mode
from vm_accel.kvm.run_loop import StopKind, VcpuStop
from vm_accel.kvm.state import Registers
from vm_accel.kvm.system import Kvm
from vm_accel.kvm.vcpu import KvmVcpu
from vm_accel.kvm.vm import KvmVm

log = get_logger("vm_accel.boot.machine")

RFLAGS_RESERVED = 1 << 1
IDENTITY_MAP_LIMIT = 4 << 30


@attrs.frozen
class BootConfig:
    """What to boot: a bzImage, an optional initrd, the kernel command line and the RAM size."""

    kernel: Path
    memory_size: int
    command_line: str = ""
    initrd: Path | None = None
    timeout: float | None = None


@attrs.frozen
class BootResult:
    """How the guest ended, after how long, and where the loader put things."""

    stop: GuestStop
    wall_s: float
    placement: BootPlacement
    image: BzImage


def boot_linux(kvm: Kvm, config: BootConfig, console: HostConsole) -> BootResult:
    """Boot ``config`` on a fresh VM of ``kvm`` with ``console`` as COM1; return when the guest ends."""
    image = read_bzimage(config.kernel)
    initrd = _read_initrd(config.initrd)
    command_line = config.command_line.encode() + b"\0"
    layout = MemoryLayout(config.memory_size)
    placement = place(layout, image, len(command_line), len(initrd))
    log.info(
        "boot_start",
        kernel=str(config.kernel),
        protocol=image.header.protocol,
        version=image.header.kernel_version,
        load_address=hex(placement.kernel_address),
        initrd=hex(placement.initrd_address),
        initrd_size=len(initrd),
        memory=config.memory_size,
    )
    with kvm.create_vm(strict_io=False) as vm:
        create_irqchip(vm)
        for ram in layout.ram:
            vm.add_memory(ram.address, ram.size)
        _load(vm, image, placement, command_line, initrd, layout)
        vcpu = vm.create_vcpu()
        set_virtual_wire_mode(vcpu)
        system = _enter_64bit_boot(vcpu, image, layout)
        uart = Uart16550(console.write, IrqLine(vm, IRQ_COM1).set, COM1_PORT)
        vm.io.add_ports(COM1_PORT, PORT_COUNT, uart)
        attach_power_devices(vm.io)
        vm.io.add_ports(system.layout.exception_port, 1, _EarlyExceptionReporter(system, vcpu))
        timer: threading.Timer | None = None
        start = time.perf_counter()
        try:
            console.start(uart.receive, lambda: vcpu.request_stop(GuestStop(GuestStopKind.QUIT, "Ctrl-A x")))
            timer = _start_timer(vcpu, config.timeout)
            stop = _run(vcpu)
        finally:
            if timer is not None:
                timer.cancel()
            console.close()
        wall = time.perf_counter() - start
    log.info("boot_end", stop=stop.describe(), wall_s=round(wall, 3))
    return BootResult(stop=stop, wall_s=wall, placement=placement, image=image)


def _read_initrd(path: Path | None) -> bytes:
    if path is None:
        return b""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"{path}: no such initrd") from None
    except IsADirectoryError:
        raise BadProgramError(f"{path}: is a directory, not an initrd") from None
    except PermissionError:
        raise BadProgramError(f"{path}: permission denied") from None
    if not data:
        raise BadProgramError(f"{path}: the initrd is empty")
    return data


def _load(
    vm: KvmVm, image: BzImage, placement: BootPlacement, command_line: bytes, initrd: bytes, layout: MemoryLayout
) -> None:
    memory = vm.memory
    memory.write(placement.kernel_address, image.kernel)
    memory.write(placement.command_line_address, command_line)
    if initrd:
        memory.write(placement.initrd_address, initrd)
    zero_page = build_boot_params(
        image,
        e820=layout.e820(),
        cmd_line_ptr=placement.command_line_address,
        ramdisk_image=placement.initrd_address,
        ramdisk_size=len(initrd),
    )
    memory.write(ZERO_PAGE_ADDRESS, zero_page)


def _enter_64bit_boot(vcpu: KvmVcpu, image: BzImage, layout: MemoryLayout) -> LongModeSystem:
    """Long mode at CPL 0 per the 64-bit boot protocol; rip = startup_64, rsi = the zero page."""
    mapped = min(layout.low_end, IDENTITY_MAP_LIMIT)
    system = setup_long_mode(vcpu, LongModeLayout(base=LONG_MODE_AREA, identity_map_size=mapped))
    vcpu.set_regs(
        Registers(
            rip=image.entry_64,
            rsi=ZERO_PAGE_ADDRESS,
            rsp=system.layout.kernel_stack_top,
            rflags=RFLAGS_RESERVED,
        )
    )
    return system


class _EarlyExceptionReporter:
    """The loader's IDT stubs report here: the guest faulted before installing its own IDT.

    The machine has one vCPU, ``vcpu``, whose memory holds the frame the stub pushed.
    """

    def __init__(self, system: LongModeSystem, vcpu: KvmVcpu) -> None:
        self.system = system
        self.vcpu = vcpu

    def port_read(self, vcpu: DeviceVcpu, port: int, size: int) -> int:
        return 0

    def port_write(self, vcpu: DeviceVcpu, port: int, size: int, value: int) -> None:
        frame = self.system.read_exception_frame(self.vcpu)
        vcpu.request_stop(GuestStop(GuestStopKind.CRASHED, f"early {frame.describe()}"))


def _start_timer(vcpu: KvmVcpu, timeout: float | None) -> threading.Timer | None:
    if timeout is None:
        return None
    stop = GuestStop(GuestStopKind.TIMEOUT, f"the {timeout:g} s limit was reached")
    timer = threading.Timer(timeout, vcpu.request_stop, args=(stop,))
    timer.daemon = True
    timer.start()
    return timer


def _run(vcpu: KvmVcpu) -> GuestStop:
    while True:
        stop = vcpu.run()
        result = guest_stop_for(stop)
        if result is not None:
            return result


def guest_stop_for(stop: VcpuStop) -> GuestStop | None:
    """What a vCPU stop means for a booted machine (``None``: keep running)."""
    if stop.kind is StopKind.STOPPED:
        if isinstance(stop.value, GuestStop):
            return stop.value
        return GuestStop(GuestStopKind.QUIT, f"stop requested ({stop.value!r})")
    if stop.kind is StopKind.SHUTDOWN:
        return GuestStop(GuestStopKind.REBOOT, f"triple fault at rip {stop.registers.rip:#x}")
    if stop.kind is StopKind.SYSTEM_EVENT:
        if stop.value == _SYSTEM_EVENT_SHUTDOWN:
            return GuestStop(GuestStopKind.POWEROFF, "KVM system event SHUTDOWN")
        if stop.value == _SYSTEM_EVENT_RESET:
            return GuestStop(GuestStopKind.REBOOT, "KVM system event RESET")
        return GuestStop(GuestStopKind.CRASHED, f"KVM system event {stop.detail}")
    if stop.kind is StopKind.INTERRUPTED:
        return GuestStop(GuestStopKind.INTERRUPTED, "SIGINT")
    if stop.kind is StopKind.HLT:
        return GuestStop(GuestStopKind.HALTED, f"hlt at rip {stop.registers.rip:#x} with no interrupt controller")
    return None


_SYSTEM_EVENT_SHUTDOWN = next(k for k, v in nr.SYSTEM_EVENT_NAMES.items() if v == "SHUTDOWN")
_SYSTEM_EVENT_RESET = next(k for k, v in nr.SYSTEM_EVENT_NAMES.items() if v == "RESET")
