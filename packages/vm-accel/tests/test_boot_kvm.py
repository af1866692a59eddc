"""Booting through the Linux x86 64-bit boot protocol on the real /dev/kvm (`vm boot` end to end: vm-cli's test_boot_cli.py).

The guest is the project's test kernel (guest/kernel/, built here by the
host gcc/ld/objcopy): it prints what it finds in struct boot_params (the
command line, the E820 map, the initrd's address, size and first bytes)
on COM1 and powers off; the tests check those against what they passed in.
Skipped, with the reason, where KVM or the host toolchain is missing.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from pathlib import Path

import pytest
from vm_accel.boot import BootConfig, BootResult, GuestStopKind, HostConsole, MemoryLayout, boot_linux
from vm_accel.boot.irqchip import (
    APIC_LVT_LINT0,
    APIC_LVT_LINT1,
    IRQ_COM1,
    IrqLine,
    create_irqchip,
    read_lapic_register,
    set_virtual_wire_mode,
)
from vm_accel.kvm import Kvm, KvmVm, StopKind, setup_long_mode
from vm_core.errors import ConfigurationError

from .conftest import KVM_UNAVAILABLE, RecordingPorts
from .test_boot_support import kernel_build_module, synthetic_bzimage

pytestmark = pytest.mark.skipif(KVM_UNAVAILABLE is not None, reason=KVM_UNAVAILABLE or "")

MIB = 1 << 20
INITRD = b"VMINITRD\x00\x01\x02\xfe\xff-the-rest-of-the-initrd" * 3


@pytest.fixture(scope="module")
def test_kernel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build = kernel_build_module()
    missing = build.missing_tools()
    if missing:
        pytest.skip(f"cannot build guest/kernel: missing {', '.join(missing)} (apt-get install gcc binutils)")
    image: Path = build.build_kernel(tmp_path_factory.mktemp("kernel"))
    return image


@pytest.fixture
def initrd(tmp_path: Path) -> Path:
    path = tmp_path / "initrd.img"
    path.write_bytes(INITRD)
    return path


def boot(kernel: Path, tmp_path: Path, **config: object) -> tuple[str, BootResult]:
    """Boot through the library with the console's output in a file; (output, result)."""
    out_path = tmp_path / "console.out"
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        with Kvm() as kvm:
            settings: dict = {"memory_size": 64 * MIB, "timeout": 30.0, **config}
            result = boot_linux(kvm, BootConfig(kernel=kernel, **settings), HostConsole(fd, None))
    finally:
        os.close(fd)
    return out_path.read_text(), result


KERNEL_SCRIPT = kernel_build_module()


printed = KERNEL_SCRIPT.report_values


def check_report(output: str, *, command_line: str, memory: int, initrd: bytes, initrd_address: int) -> None:
    """The test kernel's report matches what the loader was given (see guest/kernel/kmain.c)."""
    e820 = [(e.address, e.size, e.type) for e in MemoryLayout(memory).e820()]
    KERNEL_SCRIPT.check_report(output, command_line=command_line, e820=e820, initrd=initrd, initrd_address=initrd_address)


def test_boot_reports_boot_params(test_kernel: Path, initrd: Path, tmp_path: Path) -> None:
    line = "console=ttyS0 root=/dev/ram0 vm.test=\"quoted value\" x=1"
    output, result = boot(test_kernel, tmp_path, command_line=line, initrd=initrd, memory_size=96 * MIB)
    assert result.stop.kind is GuestStopKind.POWEROFF and "0x604" in result.stop.detail
    assert output.startswith("vmkernel: 64-bit entry, boot_params at 0x00007000\n")
    initrd_at = int(printed(output, "initrd")[0].split()[0], 16)
    # The loader's promises, checked on what the guest saw: page aligned, above the kernel, inside RAM, at the top.
    assert initrd_at % 4096 == 0 and initrd_at >= result.placement.kernel_end
    assert 96 * MIB - 4096 < initrd_at + len(INITRD) <= 96 * MIB
    check_report(output, command_line=line, memory=96 * MIB, initrd=INITRD, initrd_address=initrd_at)


def test_boot_without_initrd_and_with_memory_above_4g(test_kernel: Path, tmp_path: Path) -> None:
    memory = 4096 * MIB + 512 * MIB
    output, result = boot(test_kernel, tmp_path, command_line="", memory_size=memory)
    assert result.stop.kind is GuestStopKind.POWEROFF
    assert printed(output, "initrd") == ["0x0000000000000000 size 0x0000000000000000"]
    assert printed(output, "e820")[-1] == "0x0000000100000000 0x0000000060000000 type 1"  # 1.5 GiB from 4 GiB
    check_report(output, command_line="", memory=memory, initrd=b"", initrd_address=0)


def test_uart_interrupt_reaches_the_guest_through_the_in_kernel_pic(test_kernel: Path, tmp_path: Path) -> None:
    out_path = tmp_path / "console.out"
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    in_read, in_write = os.pipe()
    try:
        with Kvm() as kvm:
            config = BootConfig(kernel=test_kernel, memory_size=32 * MIB, command_line="irq", timeout=30.0)
            console = HostConsole(fd, in_read)

            def type_when_waiting() -> None:
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    if b"irq: waiting" in out_path.read_bytes():
                        os.write(in_write, b"Q")
                        return
                    time.sleep(0.02)

            typist = threading.Thread(target=type_when_waiting)
            typist.start()
            result = boot_linux(kvm, config, console)
            typist.join()
    finally:
        for descriptor in (fd, in_read, in_write):
            os.close(descriptor)
    output = out_path.read_text()
    assert result.stop.kind is GuestStopKind.POWEROFF, output
    # vector 0x20 + IRQ 4; IIR 0xc4 = FIFOs enabled + received data available; the byte typed.
    assert printed(output, "irq") == ["waiting", "vector 0x24 iir 0xc4 byte 0x51"]


def _tiny_kernel(tmp_path: Path, code: bytes) -> Path:
    """A bzImage whose startup_64 is ``code`` (startup_32 is hlt padding)."""
    path = tmp_path / "tiny.bzImage"
    path.write_bytes(synthetic_bzimage(kernel=b"\xf4" * 0x200 + code + bytes(64)))
    return path


def test_triple_fault_is_a_reboot(tmp_path: Path) -> None:
    # lidt [rip+2] (a zero-limit IDT right after ud2); ud2 -> #GP -> #DF -> shutdown.
    # (int3 would do on hardware; KVM-PVM's ring-0 emulator fails on it with an internal error.)
    kernel = _tiny_kernel(tmp_path, b"\x0f\x01\x1d" + struct.pack("<i", 2) + b"\x0f\x0b" + bytes(10))
    _, result = boot(kernel, tmp_path)
    assert result.stop.kind is GuestStopKind.REBOOT and "triple fault" in result.stop.detail


def test_i8042_and_cf9_resets_are_reboots(tmp_path: Path) -> None:
    _, result = boot(_tiny_kernel(tmp_path, b"\xb0\xfe\xe6\x64"), tmp_path)  # mov al, 0xfe; out 0x64, al
    assert result.stop.kind is GuestStopKind.REBOOT and "0x64 <- 0xfe" in result.stop.detail
    code = b"\x66\xba\xf9\x0c\xb0\x02\xee\xb0\x06\xee"  # mov dx, 0xcf9; mov al, 2; out dx, al; mov al, 6; out dx, al
    _, result = boot(_tiny_kernel(tmp_path, code), tmp_path)
    assert result.stop.kind is GuestStopKind.REBOOT and "0xcf9" in result.stop.detail


def test_exception_before_the_kernel_has_an_idt_is_reported(tmp_path: Path) -> None:
    _, result = boot(_tiny_kernel(tmp_path, b"\x90\x0f\x0b"), tmp_path)  # nop; ud2
    assert result.stop.kind is GuestStopKind.CRASHED
    assert "exception 6" in result.stop.detail and f"rip {0x1000201:#x}" in result.stop.detail


def test_timeout_stops_a_guest_that_never_ends(tmp_path: Path) -> None:
    _, result = boot(_tiny_kernel(tmp_path, b"\xeb\xfe"), tmp_path, timeout=0.5)  # jmp $
    assert result.stop.kind is GuestStopKind.TIMEOUT


def test_kernel_too_big_for_memory(test_kernel: Path, tmp_path: Path, initrd: Path) -> None:
    with pytest.raises(ConfigurationError, match="--memory"):
        boot(test_kernel, tmp_path, memory_size=16 * MIB, initrd=initrd)


# --- the in-kernel irqchip and PIT ----------------------------------------------------------------------


def test_pic_and_pit_are_emulated_in_the_kernel(vm: KvmVm) -> None:
    create_irqchip(vm)
    vm.add_memory(0, 0x100000)
    vcpu = vm.create_vcpu()
    set_virtual_wire_mode(vcpu)
    assert read_lapic_register(vcpu, APIC_LVT_LINT0) & 0x1_0700 == 0x700  # unmasked ExtINT
    assert read_lapic_register(vcpu, APIC_LVT_LINT1) & 0x1_0700 == 0x400  # unmasked NMI
    system = setup_long_mode(vcpu)
    code = bytes.fromhex(
        "b05a e621 e421 e680"  # PIC1 IMR <- 0x5a, read it back, report on port 0x80
        "b034 e643 b0ff e640 e640"  # PIT channel 0, mode 2, count 0xffff
        "b900 0001 00 e2fe"  # mov ecx, 0x10000; loop $ (let the counter run)
        "b000 e643 e440 e680 e440 e680"  # latch channel 0; report the low and high bytes
        "e681"  # done
    )
    vm.memory.write(0x20000, code)
    ports = RecordingPorts()
    vm.io.add_ports(0x80, 1, ports)

    class StopOn81(RecordingPorts):
        def port_write(self, vcpu, port, size, value):  # type: ignore[no-untyped-def]
            vcpu.request_stop("done")

    vm.io.add_ports(0x81, 1, StopOn81())
    system.start_kernel(vcpu, 0x20000)
    stop = vcpu.run()
    assert stop.kind is StopKind.STOPPED and stop.value == "done"
    imr, low, high = (value for _, _, value in ports.writes)
    assert imr == 0x5A  # the PIC answered: no exit reached our (strict) bus for port 0x21
    count = low | high << 8
    assert 0 < count < 0xFFFF  # the PIT counted down from 0xffff while the loop ran
    line = IrqLine(vm, IRQ_COM1)
    line.set(True)
    line.set(False)
    assert line.level is False
    with pytest.raises(ConfigurationError):
        create_irqchip(vm)  # only before vCPUs exist
