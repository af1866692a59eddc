"""The boot machine's devices without KVM: the 16550 UART, the console (escape keys, raw mode), power ports.

The UART's expected values are the register behaviour of the National/TI
PC16550D datasheet (reset values, DLAB, IIR priorities and FIFO bits,
loopback wiring) and what Linux's 8250 driver checks when it probes a port
(drivers/tty/serial/8250/8250_port.c: scratch register, loopback MSR 0x90,
the THRE interrupt re-asserting after IER is written).
"""

from __future__ import annotations

import os
import termios
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as stst
from vm_accel.boot import EscapeFilter, GuestStop, GuestStopKind, HostConsole, Uart16550
from vm_accel.boot import uart as u
from vm_accel.boot.machine import guest_stop_for
from vm_accel.boot.power import attach_power_devices
from vm_accel.kvm import IoBus, Registers, SpecialRegisters, StopKind, VcpuStop

BASE = 0x3F8


class Wire:
    """Collects UART output and IRQ levels."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.levels: list[bool] = []

    def uart(self) -> Uart16550:
        return Uart16550(self.out.extend, self.levels.append, BASE)


def rd(uart: Uart16550, offset: int) -> int:
    return uart.port_read(None, BASE + offset, 1)


def wr(uart: Uart16550, offset: int, value: int) -> None:
    uart.port_write(None, BASE + offset, 1, value)


def test_reset_state_and_transmit() -> None:
    wire = Wire()
    uart = wire.uart()
    assert rd(uart, u.LSR) == 0x60  # THRE | TEMT, no data
    assert rd(uart, u.IIR_FCR) == 0x01  # no interrupt pending, FIFOs off
    assert rd(uart, u.IER_DLM) == 0 and rd(uart, u.LCR) == 0 and rd(uart, u.MCR) == 0
    assert rd(uart, u.MSR) & 0xF0 == 0xB0  # DCD, DSR, CTS: a terminal is attached
    for byte in b"hi\n":
        wr(uart, u.RBR_THR_DLL, byte)
    assert bytes(wire.out) == b"hi\n" and wire.levels == []


def test_dlab_switches_ports_0_and_1_to_the_divisor_latch() -> None:
    wire = Wire()
    uart = wire.uart()
    wr(uart, u.IER_DLM, 0x05)
    wr(uart, u.LCR, 0x83)
    wr(uart, u.RBR_THR_DLL, 0x01)
    wr(uart, u.IER_DLM, 0x00)
    assert (rd(uart, u.RBR_THR_DLL), rd(uart, u.IER_DLM)) == (0x01, 0x00)
    assert uart.divisor == 1 and wire.out == b""  # the write to port 0 did not transmit
    wr(uart, u.LCR, 0x03)
    assert rd(uart, u.IER_DLM) == 0x05 and rd(uart, u.LCR) == 0x03


def test_scratch_and_ier_readback_as_linux_probes_them() -> None:
    uart = Wire().uart()
    for value in (0xA5, 0x5A):
        wr(uart, u.SCR, value)
        assert rd(uart, u.SCR) == value
    wr(uart, u.IER_DLM, 0xFF)
    assert rd(uart, u.IER_DLM) == 0x0F  # the upper four bits read 0 on a 16550


def test_fifo_enable_shows_in_iir() -> None:
    uart = Wire().uart()
    wr(uart, u.IIR_FCR, 0x01)
    assert rd(uart, u.IIR_FCR) == 0xC1  # 16550A: both FIFO bits set
    wr(uart, u.IIR_FCR, 0x00)
    assert rd(uart, u.IIR_FCR) == 0x01


def test_loopback_mirrors_mcr_in_msr_and_returns_written_bytes() -> None:
    wire = Wire()
    uart = wire.uart()
    wr(uart, u.MCR, u.MCR_LOOP | 0x0A)  # RTS | OUT2, Linux's autoconfig check
    assert rd(uart, u.MSR) & 0xF0 == 0x90
    wr(uart, u.MCR, u.MCR_LOOP | 0x0F)
    assert rd(uart, u.MSR) & 0xF0 == 0xF0
    wr(uart, u.RBR_THR_DLL, 0x42)
    assert wire.out == b"" and rd(uart, u.LSR) & u.LSR_DR and rd(uart, u.RBR_THR_DLL) == 0x42
    wr(uart, u.MCR, u.MCR_LOOP)
    assert rd(uart, u.MSR) == 0x0F  # all four lines dropped (RI trailing edge sets TERI); deltas shown once
    assert rd(uart, u.MSR) == 0x00


def test_thre_interrupt_follows_the_16550() -> None:
    wire = Wire()
    uart = wire.uart()
    wr(uart, u.IER_DLM, u.IER_THRI)  # enabling THRI while THR is empty raises it
    assert wire.levels == [True]
    assert rd(uart, u.IIR_FCR) == 0x02  # THRE is the source; reading IIR clears it
    assert wire.levels == [True, False] and rd(uart, u.IIR_FCR) == 0x01
    wr(uart, u.RBR_THR_DLL, ord("a"))  # THR empties again at once: interrupt again
    assert wire.levels == [True, False, True]
    wr(uart, u.IER_DLM, 0)
    assert wire.levels[-1] is False


def test_received_data_has_priority_and_drains() -> None:
    wire = Wire()
    uart = wire.uart()
    wr(uart, u.IER_DLM, u.IER_RDI | u.IER_THRI)
    uart.receive(b"ok")
    assert rd(uart, u.IIR_FCR) == 0x04 and rd(uart, u.LSR) == 0x61
    assert rd(uart, u.RBR_THR_DLL) == ord("o") and rd(uart, u.RBR_THR_DLL) == ord("k")
    assert rd(uart, u.LSR) == 0x60 and uart.pending_input == 0
    assert rd(uart, u.IIR_FCR) == 0x02  # then the THRE interrupt still pending
    assert wire.levels[-1] is False and rd(uart, u.RBR_THR_DLL) == 0


def test_fcr_clears_received_bytes() -> None:
    uart = Wire().uart()
    uart.receive(b"typed ahead")
    wr(uart, u.IIR_FCR, 0x07)
    assert rd(uart, u.LSR) & u.LSR_DR == 0


def test_modem_status_interrupt() -> None:
    wire = Wire()
    uart = wire.uart()
    wr(uart, u.IER_DLM, u.IER_MSI)
    wr(uart, u.MCR, u.MCR_LOOP)  # CTS/DSR/DCD fall: deltas
    assert wire.levels == [True] and rd(uart, u.IIR_FCR) == 0x00
    rd(uart, u.MSR)
    assert wire.levels == [True, False]


@settings(max_examples=200, deadline=None)
@given(stst.lists(stst.tuples(stst.sampled_from(["r", "w", "in"]), stst.integers(0, 7), stst.integers(0, 255))))
def test_any_register_traffic_keeps_the_invariants(ops: list[tuple[str, int, int]]) -> None:
    wire = Wire()
    uart = wire.uart()
    for kind, offset, value in ops:
        if kind == "r":
            result = rd(uart, offset)
            assert 0 <= result <= 0xFF
        elif kind == "w":
            wr(uart, offset, value)
        else:
            uart.receive(bytes([value]))
        assert rd(uart, u.LSR) & 0x60 == 0x60  # transmission is instantaneous
        iir = uart._interrupt_id()
        assert (iir != u.IIR_NO_INTERRUPT) == (wire.levels[-1] if wire.levels else False)


# --- the console -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chunks", "guest", "quit", "help_shown"),
    [
        ([b"plain"], b"plain", False, False),
        ([b"ab\x01xcd"], b"ab", True, False),
        ([b"ab\x01", b"x"], b"ab", True, False),  # the escape spans two reads
        ([b"\x01\x01z"], b"\x01z", False, False),
        ([b"\x01h", b"q"], b"q", False, True),
        ([b"\x01c", b"q"], b"q", False, False),  # unknown escapes are swallowed
    ],
)
def test_escape_filter(chunks: list[bytes], guest: bytes, quit: bool, help_shown: bool) -> None:
    escape = EscapeFilter()
    results = [escape.feed(chunk) for chunk in chunks]
    assert b"".join(r.to_guest for r in results) == guest
    assert any(r.quit for r in results) == quit and any(r.show_help for r in results) == help_shown


def test_console_feeds_input_and_quits_on_ctrl_a_x() -> None:
    in_read, in_write = os.pipe()
    out_read, out_write = os.pipe()
    received: list[bytes] = []
    quit_seen = threading.Event()
    console = HostConsole(out_write, in_read)
    try:
        console.start(received.append, quit_seen.set)
        os.write(in_write, b"hello\x01x")
        assert quit_seen.wait(5)
        console.write(b"guest says hi")
        assert os.read(out_read, 100) == b"guest says hi"
    finally:
        console.close()
        for fd in (in_read, in_write, out_read, out_write):
            os.close(fd)
    assert b"".join(received) == b"hello"


def test_console_output_to_a_closed_pipe_is_dropped_not_fatal() -> None:
    out_read, out_write = os.pipe()
    os.close(out_read)
    console = HostConsole(out_write, None)
    try:
        console.write(b"nobody listens")
        console.write(b"still nobody")
        assert console.output_broken
    finally:
        os.close(out_write)


def test_terminal_is_raw_while_the_console_runs_and_restored_after() -> None:
    leader, follower = os.openpty()
    try:
        before = termios.tcgetattr(follower)
        console = HostConsole(os.open(os.devnull, os.O_WRONLY), follower)
        console.start(lambda data: None, lambda: None)
        during = termios.tcgetattr(follower)
        assert not during[3] & (termios.ECHO | termios.ICANON | termios.ISIG)  # lflag: no echo/line editing/^C
        console.close()
        os.close(console.output_fd)
        assert termios.tcgetattr(follower) == before
    finally:
        os.close(leader)
        os.close(follower)


# --- power and reset ---------------------------------------------------------------------------------------


class FakeVcpu:
    def __init__(self) -> None:
        self.stops: list[object] = []

    def request_stop(self, value: object = None) -> None:
        self.stops.append(value)


def test_poweroff_and_reset_ports() -> None:
    bus = IoBus(strict=True)
    attach_power_devices(bus)
    vcpu = FakeVcpu()
    bus.port_write(vcpu, 0x604, 2, 0x0001)  # SCI_EN: not a sleep request
    assert vcpu.stops == []
    bus.port_write(vcpu, 0x604, 2, 0x2000)
    bus.port_write(vcpu, 0xB004, 2, 0x3400)
    bus.port_write(vcpu, 0x64, 1, 0xD1)  # another i8042 command: ignored
    bus.port_write(vcpu, 0x64, 1, 0xFE)
    bus.port_write(vcpu, 0xCF9, 1, 0x02)  # Linux's reboot=pci writes 0x02 then 0x06
    bus.port_write(vcpu, 0xCF9, 1, 0x06)
    kinds = [stop.kind for stop in vcpu.stops]  # type: ignore[attr-defined]
    assert kinds == [GuestStopKind.POWEROFF, GuestStopKind.POWEROFF, GuestStopKind.REBOOT, GuestStopKind.REBOOT]
    assert "0x604" in vcpu.stops[0].detail and "0xfe" in vcpu.stops[2].detail  # type: ignore[attr-defined]
    assert bus.port_read(vcpu, 0x64, 1) == 0 and bus.port_read(vcpu, 0x60, 1) == 0


def _stop(kind: StopKind, value: object = None, detail: str = "") -> VcpuStop:
    return VcpuStop(kind, Registers(rip=0x1234), SpecialRegisters(), value=value, detail=detail)


def test_vcpu_stops_map_to_guest_endings() -> None:
    own = GuestStop(GuestStopKind.POWEROFF, "port")
    assert guest_stop_for(_stop(StopKind.STOPPED, own)) is own
    assert guest_stop_for(_stop(StopKind.SHUTDOWN)) == GuestStop(GuestStopKind.REBOOT, "triple fault at rip 0x1234")
    assert guest_stop_for(_stop(StopKind.SYSTEM_EVENT, 1, "SHUTDOWN")).kind is GuestStopKind.POWEROFF  # type: ignore[union-attr]
    assert guest_stop_for(_stop(StopKind.SYSTEM_EVENT, 2, "RESET")).kind is GuestStopKind.REBOOT  # type: ignore[union-attr]
    assert guest_stop_for(_stop(StopKind.SYSTEM_EVENT, 3, "CRASH")).kind is GuestStopKind.CRASHED  # type: ignore[union-attr]
    assert guest_stop_for(_stop(StopKind.INTERRUPTED)).kind is GuestStopKind.INTERRUPTED  # type: ignore[union-attr]
    assert guest_stop_for(_stop(StopKind.HLT)).kind is GuestStopKind.HALTED  # type: ignore[union-attr]
