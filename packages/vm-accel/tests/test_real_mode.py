"""Real-mode guests: port I/O, string I/O, HLT, MMIO exits and a triple fault."""

from __future__ import annotations

import pytest
from vm_accel.kvm import KvmVcpu, KvmVm, StopKind
from vm_core.errors import UnsupportedError

from .conftest import RecordingPorts, start_real_mode
from .kvm_programs import REAL_MODE_IN, REAL_MODE_MMIO, REAL_MODE_OUT_HLT, REAL_MODE_REP_OUTSB

CODE = 0x1000


def _load(vm: KvmVm, code: bytes) -> KvmVcpu:
    vm.add_memory(0, 0x10000)
    vm.memory.write(CODE, code)
    vcpu = vm.create_vcpu()
    start_real_mode(vcpu, CODE)
    return vcpu


def test_out_then_hlt(vm: KvmVm) -> None:
    ports = RecordingPorts()
    vm.io.add_ports(0x3F8, 8, ports)
    vcpu = _load(vm, REAL_MODE_OUT_HLT.code)
    stop = vcpu.run()
    assert ports.writes == [(0x3F8, 1, 0x42)]
    assert stop.kind is StopKind.HLT
    assert stop.registers.rip == CODE + len(REAL_MODE_OUT_HLT.code)  # just past hlt
    assert stop.registers.rax & 0xFF == 0x42
    assert stop.registers.rbx & 0xFFFF == 0x1234
    assert stop.registers.rdx & 0xFFFF == 0x3F8
    assert stop.special.cs.selector == 0 and stop.special.cr0 & 1 == 0  # still real mode


def test_in_reads_the_handler_value(vm: KvmVm) -> None:
    ports = RecordingPorts({(0x60, 1): 0x5A, (0x60, 2): 0xBEEF})
    vm.io.add_ports(0x60, 1, ports)
    stop = _load(vm, REAL_MODE_IN.code).run()
    assert stop.kind is StopKind.HLT
    assert ports.reads == [(0x60, 1), (0x60, 2)]
    assert stop.registers.rbx & 0xFF == 0x5A
    assert stop.registers.rcx & 0xFFFF == 0xBEEF


def test_rep_outsb_delivers_every_byte(vm: KvmVm) -> None:
    ports = RecordingPorts()
    vm.io.add_ports(0x3F8, 1, ports)
    vcpu = _load(vm, REAL_MODE_REP_OUTSB.code)
    vm.memory.write(0x1100, b"hello")
    stop = vcpu.run()
    assert stop.kind is StopKind.HLT
    assert bytes(value for _, _, value in ports.writes) == b"hello"
    assert stop.registers.rcx & 0xFFFF == 0
    assert stop.registers.rsi & 0xFFFF == 0x1105


class RecordingMmio:
    def __init__(self) -> None:
        self.events: list[tuple[str, int, int, int]] = []

    def mmio_read(self, vcpu: KvmVcpu, address: int, size: int) -> int:
        self.events.append(("read", address, size, 0))
        return 0xCAFEF00D

    def mmio_write(self, vcpu: KvmVcpu, address: int, size: int, value: int) -> None:
        self.events.append(("write", address, size, value))


def test_mmio_write_and_read_exits(vm: KvmVm) -> None:
    device = RecordingMmio()
    vm.io.add_mmio(0x20000, 0x1000, device)
    stop = _load(vm, REAL_MODE_MMIO.code).run()
    assert stop.kind is StopKind.HLT
    assert device.events == [("write", 0x20010, 4, 0xDEADBEEF), ("read", 0x20020, 4, 0)]
    assert stop.registers.rax & 0xFFFF_FFFF == 0xCAFEF00D


def test_unhandled_port_is_a_clear_error(vm: KvmVm) -> None:
    vcpu = _load(vm, REAL_MODE_OUT_HLT.code)
    with pytest.raises(UnsupportedError, match=r"I/O port 0x3f8"):
        vcpu.run()
