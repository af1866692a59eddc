"""An 8250/16550A UART on eight I/O ports (COM1: 0x3f8-0x3ff, IRQ 4), the boot console.

Registers (offset from the base port; DLAB is bit 7 of LCR):

=====  ======================  ==========================================
 off    read                    write
=====  ======================  ==========================================
  0     RBR (DLAB=0) / DLL      THR (DLAB=0) / DLL
  1     IER (DLAB=0) / DLM      IER (low 4 bits) / DLM
  2     IIR                     FCR (FIFO enable, clear receive FIFO)
  3     LCR                     LCR
  4     MCR                     MCR (bit 4: loopback)
  5     LSR                     --
  6     MSR                     --
  7     SCR                     SCR
=====  ======================  ==========================================

Transmission is instantaneous: a byte written to THR goes to ``output`` at
once, so LSR always says THR empty and transmitter idle (0x60). Received
bytes (:meth:`Uart16550.receive`, from any thread) queue without limit and
show as LSR.DR. Interrupts follow the 16550's priorities (received data,
then THR empty, then modem status) and drive ``irq`` (a callable taking the
new level); the THR-empty interrupt is raised when THR empties or when
IER.ETBEI is enabled while it is empty, and cleared by reading IIR or
writing THR, as on the real part. In loopback mode (MCR bit 4) written
bytes come back as received data and MSR mirrors MCR (CTS=RTS, DSR=DTR,
RI=OUT1, DCD=OUT2), which Linux's 8250 driver checks when it probes.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from vm_core.errors import ConfigurationError

if TYPE_CHECKING:
    from vm_accel.kvm.io_bus import DeviceVcpu

COM1_PORT = 0x3F8
PORT_COUNT = 8

# Register offsets.
RBR_THR_DLL = 0
IER_DLM = 1
IIR_FCR = 2
LCR = 3
MCR = 4
LSR = 5
MSR = 6
SCR = 7

LCR_DLAB = 0x80
IER_RDI = 0x01  # received data available
IER_THRI = 0x02  # transmitter holding register empty
IER_MSI = 0x08  # modem status
IIR_NO_INTERRUPT = 0x01
IIR_MSI = 0x00
IIR_THRI = 0x02
IIR_RDI = 0x04
IIR_FIFO_ENABLED = 0xC0
FCR_ENABLE = 0x01
FCR_CLEAR_RCVR = 0x02
LSR_DR = 0x01
LSR_THRE = 0x20
LSR_TEMT = 0x40
MCR_DTR = 0x01
MCR_RTS = 0x02
MCR_OUT1 = 0x04
MCR_OUT2 = 0x08
MCR_LOOP = 0x10
MSR_CTS = 0x10
MSR_DSR = 0x20
MSR_RI = 0x40
MSR_DCD = 0x80
MSR_DELTAS = 0x0F
MSR_CONNECTED = MSR_CTS | MSR_DSR | MSR_DCD  # a terminal is attached and ready


class Uart16550:
    """A 16550A UART: a :class:`vm_accel.kvm.io_bus.PortHandler` for its eight ports."""

    def __init__(
        self,
        output: Callable[[bytes], None],
        irq: Callable[[bool], None] | None = None,
        base: int = COM1_PORT,
    ) -> None:
        if not 0 <= base <= 0x10000 - PORT_COUNT:
            raise ConfigurationError(f"UART base port {base:#x} leaves the I/O space")
        self.base = base
        self.output = output
        self.irq = irq
        self._lock = threading.RLock()
        self._rx: deque[int] = deque()
        self.ier = 0
        self.lcr = 0
        self.mcr = 0
        self.scr = 0
        self.fcr = 0
        self.divisor = 0x0C  # 9600 baud until the guest programs it
        self._thr_pending = False
        self._msr = MSR_CONNECTED
        self._irq_level = False

    # -- the host side ----------------------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        """Bytes typed at the console, for the guest to read from RBR (any thread)."""
        if not data:
            return
        with self._lock:
            self._rx.extend(data)
            self._update_irq()

    @property
    def pending_input(self) -> int:
        """How many received bytes the guest has not read yet."""
        with self._lock:
            return len(self._rx)

    # -- PortHandler ------------------------------------------------------------------------------

    def port_read(self, vcpu: DeviceVcpu | None, port: int, size: int) -> int:
        with self._lock:
            value = self._read(port - self.base)
            self._update_irq()
            return value

    def port_write(self, vcpu: DeviceVcpu | None, port: int, size: int, value: int) -> None:
        with self._lock:
            self._write(port - self.base, value & 0xFF)
            self._update_irq()

    # -- registers --------------------------------------------------------------------------------

    def _read(self, offset: int) -> int:
        dlab = bool(self.lcr & LCR_DLAB)
        if offset == RBR_THR_DLL:
            if dlab:
                return self.divisor & 0xFF
            return self._rx.popleft() if self._rx else 0
        if offset == IER_DLM:
            return (self.divisor >> 8) & 0xFF if dlab else self.ier
        if offset == IIR_FCR:
            return self._read_iir()
        if offset == LCR:
            return self.lcr
        if offset == MCR:
            return self.mcr
        if offset == LSR:
            return LSR_THRE | LSR_TEMT | (LSR_DR if self._rx else 0)
        if offset == MSR:
            return self._read_msr()
        return self.scr

    def _write(self, offset: int, value: int) -> None:
        dlab = bool(self.lcr & LCR_DLAB)
        if offset == RBR_THR_DLL:
            if dlab:
                self.divisor = (self.divisor & 0xFF00) | value
            else:
                self._transmit(value)
        elif offset == IER_DLM:
            if dlab:
                self.divisor = (self.divisor & 0x00FF) | value << 8
            else:
                enabling_thri = value & IER_THRI and not self.ier & IER_THRI
                self.ier = value & 0x0F
                if enabling_thri:
                    self._thr_pending = True  # THR is always empty here
        elif offset == IIR_FCR:
            self.fcr = value & 0xC9
            if value & FCR_CLEAR_RCVR:
                self._rx.clear()
        elif offset == LCR:
            self.lcr = value
        elif offset == MCR:
            self._write_mcr(value & 0x1F)
        elif offset == SCR:
            self.scr = value
        # LSR and MSR are read-only (writes are ignored, as on the chip's factory-test path).

    def _transmit(self, value: int) -> None:
        self._thr_pending = False
        if self.mcr & MCR_LOOP:
            self._rx.append(value)
        else:
            self.output(bytes((value,)))
        self._thr_pending = True  # sent at once: THR empty again

    def _write_mcr(self, value: int) -> None:
        self.mcr = value
        before = self._msr
        if value & MCR_LOOP:
            looped = (
                (MSR_CTS if value & MCR_RTS else 0)
                | (MSR_DSR if value & MCR_DTR else 0)
                | (MSR_RI if value & MCR_OUT1 else 0)
                | (MSR_DCD if value & MCR_OUT2 else 0)
            )
        else:
            looped = MSR_CONNECTED
        changed = (before ^ looped) & 0xF0
        deltas = (changed >> 4) & 0x0B  # DCTS, DDSR, DDCD (TERI is only set by RI going inactive)
        if before & MSR_RI and not looped & MSR_RI:
            deltas |= 0x04
        self._msr = looped | (before & MSR_DELTAS) | deltas

    def _read_msr(self) -> int:
        value = self._msr
        self._msr &= ~MSR_DELTAS
        return value

    def _interrupt_id(self) -> int:
        if self.ier & IER_RDI and self._rx:
            return IIR_RDI
        if self.ier & IER_THRI and self._thr_pending:
            return IIR_THRI
        if self.ier & IER_MSI and self._msr & MSR_DELTAS:
            return IIR_MSI
        return IIR_NO_INTERRUPT

    def _read_iir(self) -> int:
        ident = self._interrupt_id()
        if ident == IIR_THRI:
            self._thr_pending = False  # reading IIR with THRE as the source clears it
        return ident | (IIR_FIFO_ENABLED if self.fcr & FCR_ENABLE else 0)

    def _update_irq(self) -> None:
        level = self._interrupt_id() != IIR_NO_INTERRUPT
        if level != self._irq_level:
            self._irq_level = level
            if self.irq is not None:
                self.irq(level)
