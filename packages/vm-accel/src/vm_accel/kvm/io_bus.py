"""Port I/O and MMIO dispatch: which handler answers which guest port or physical address.

A device registers a :class:`PortHandler` for a range of I/O ports or an
:class:`MmioHandler` for a range of guest-physical addresses that are not
RAM. The run loop calls them on ``KVM_EXIT_IO`` / ``KVM_EXIT_MMIO``, one
call per element of a string instruction (``rep outsb``), passing the vCPU
(as a :class:`DeviceVcpu`) so a handler can read or change its registers (a
hypercall port) or ask it to stop (``vcpu.request_stop(value)``).

Values are unsigned integers of ``size`` bytes (little-endian in the
kvm_run data area). With ``strict`` (the default) an access nobody handles
raises :class:`vm_core.errors.UnsupportedError`; otherwise reads return
all ones and writes are dropped, as on a PC bus with nothing attached.
"""

from __future__ import annotations

from typing import Protocol

import attrs
from vm_core.errors import ConfigurationError, UnsupportedError
from vm_core.logging import get_logger

from vm_accel.kvm.state import Registers, SpecialRegisters

log = get_logger("vm_accel.kvm.io_bus")


class DeviceVcpu(Protocol):
    """The vCPU whose access a handler answers (a :class:`vm_accel.kvm.vcpu.KvmVcpu`)."""

    @property
    def index(self) -> int: ...

    def get_regs(self) -> Registers: ...

    def set_regs(self, registers: Registers) -> None: ...

    def get_sregs(self) -> SpecialRegisters: ...

    def set_sregs(self, special: SpecialRegisters) -> None: ...

    def request_stop(self, value: object = None) -> None:
        """Make the run loop return ``StopKind.STOPPED`` with ``value`` once the handler returns."""
        ...


class PortHandler(Protocol):
    """Answers ``in`` and ``out`` on its ports."""

    def port_read(self, vcpu: DeviceVcpu, port: int, size: int) -> int: ...

    def port_write(self, vcpu: DeviceVcpu, port: int, size: int, value: int) -> None: ...


class MmioHandler(Protocol):
    """Answers loads and stores to its guest-physical addresses."""

    def mmio_read(self, vcpu: DeviceVcpu, address: int, size: int) -> int: ...

    def mmio_write(self, vcpu: DeviceVcpu, address: int, size: int, value: int) -> None: ...


@attrs.frozen
class _Range:
    first: int
    count: int
    handler: object

    @property
    def end(self) -> int:
        return self.first + self.count

    def overlaps(self, first: int, count: int) -> bool:
        return first < self.end and self.first < first + count


class IoBus:
    """The port and MMIO handlers of one VM."""

    def __init__(self, *, strict: bool = True) -> None:
        self.strict = strict
        self._ports: list[_Range] = []
        self._mmio: list[_Range] = []

    def add_ports(self, first: int, count: int, handler: PortHandler) -> None:
        """Route ports ``first .. first+count-1`` (within 0..0xffff) to ``handler``."""
        if count <= 0 or first < 0 or first + count > 0x10000:
            raise ConfigurationError(f"I/O port range {first:#x}+{count} is outside 0..0xffff")
        self._add(self._ports, first, count, handler, "I/O ports")

    def add_mmio(self, address: int, size: int, handler: MmioHandler) -> None:
        """Route guest-physical ``address .. address+size-1`` to ``handler``."""
        if size <= 0 or address < 0:
            raise ConfigurationError(f"MMIO range {address:#x}+{size} is empty or negative")
        self._add(self._mmio, address, size, handler, "MMIO")

    @staticmethod
    def _add(table: list[_Range], first: int, count: int, handler: object, what: str) -> None:
        for other in table:
            if other.overlaps(first, count):
                raise ConfigurationError(
                    f"{what} {first:#x}+{count:#x} overlap {other.first:#x}+{other.count:#x} "
                    f"already routed to {other.handler!r}"
                )
        table.append(_Range(first, count, handler))

    @staticmethod
    def _find(table: list[_Range], key: int) -> object | None:
        for entry in table:
            if entry.first <= key < entry.end:
                return entry.handler
        return None

    def port_read(self, vcpu: DeviceVcpu, port: int, size: int) -> int:
        handler = self._find(self._ports, port)
        if handler is None:
            self._unhandled(f"guest read {size} byte(s) from I/O port {port:#x}", vcpu)
            return (1 << (8 * size)) - 1
        value: int = handler.port_read(vcpu, port, size)  # type: ignore[attr-defined]
        return value & ((1 << (8 * size)) - 1)

    def port_write(self, vcpu: DeviceVcpu, port: int, size: int, value: int) -> None:
        handler = self._find(self._ports, port)
        if handler is None:
            self._unhandled(f"guest wrote {value:#x} ({size} byte(s)) to I/O port {port:#x}", vcpu)
            return
        handler.port_write(vcpu, port, size, value)  # type: ignore[attr-defined]

    def mmio_read(self, vcpu: DeviceVcpu, address: int, size: int) -> int:
        handler = self._find(self._mmio, address)
        if handler is None:
            self._unhandled(f"guest read {size} byte(s) from unmapped physical address {address:#x}", vcpu)
            return (1 << (8 * size)) - 1
        value: int = handler.mmio_read(vcpu, address, size)  # type: ignore[attr-defined]
        return value & ((1 << (8 * size)) - 1)

    def mmio_write(self, vcpu: DeviceVcpu, address: int, size: int, value: int) -> None:
        handler = self._find(self._mmio, address)
        if handler is None:
            self._unhandled(
                f"guest wrote {value:#x} ({size} byte(s)) to unmapped physical address {address:#x}", vcpu
            )
            return
        handler.mmio_write(vcpu, address, size, value)  # type: ignore[attr-defined]

    def _unhandled(self, what: str, vcpu: DeviceVcpu) -> None:
        if self.strict:
            raise UnsupportedError(what, hint="no device is attached there")
        log.debug("unhandled_access", access=what, vcpu=vcpu.index)
