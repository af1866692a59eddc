"""The host side of the serial console: guest output to a file descriptor, keyboard input to the UART.

:class:`HostConsole` writes what the guest transmits to an output descriptor
(stdout) and, from a reader thread, feeds what arrives on an input
descriptor (stdin) to the guest. When the input is a terminal it is put in
raw mode (no echo, no line editing, Ctrl-C goes to the guest) for the
lifetime of the console and restored on :meth:`HostConsole.close`, even when
the VM failed. As in qemu's ``-serial mon:stdio``, Ctrl-A is an escape:
Ctrl-A x ends the VM, Ctrl-A Ctrl-A sends one Ctrl-A, Ctrl-A h lists the
keys (:class:`EscapeFilter`). End of input stops reading and nothing more.
"""

from __future__ import annotations

import errno
import os
import select
import termios
import threading
import tty
from collections.abc import Callable
from typing import Any

import attrs
from vm_core.logging import get_logger

log = get_logger("vm_accel.boot.console")

CTRL_A = 0x01
QUIT_KEY = ord("x")
HELP_KEY = ord("h")
HELP_TEXT = b"\r\nC-a x    exit the VM\r\nC-a C-a  send C-a\r\nC-a h    this help\r\n"
_POLL_SECONDS = 0.1


@attrs.frozen
class FilteredInput:
    """What a chunk of keyboard input amounts to: bytes for the guest, a request to quit, help to show."""

    to_guest: bytes
    quit: bool = False
    show_help: bool = False


class EscapeFilter:
    """The Ctrl-A escape state machine (state carries across chunks)."""

    def __init__(self) -> None:
        self._escaped = False

    def feed(self, data: bytes) -> FilteredInput:
        out = bytearray()
        show_help = False
        for byte in data:
            if self._escaped:
                self._escaped = False
                if byte == QUIT_KEY:
                    return FilteredInput(bytes(out), quit=True, show_help=show_help)
                if byte == CTRL_A:
                    out.append(CTRL_A)
                elif byte == HELP_KEY:
                    show_help = True
                # any other key after Ctrl-A is swallowed, as in qemu
            elif byte == CTRL_A:
                self._escaped = True
            else:
                out.append(byte)
        return FilteredInput(bytes(out), show_help=show_help)


class HostConsole:
    """Guest console I/O over host descriptors (see the module documentation)."""

    def __init__(self, output_fd: int = 1, input_fd: int | None = 0) -> None:
        self.output_fd = output_fd
        self.input_fd = input_fd
        self._saved_mode: list[Any] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._filter = EscapeFilter()
        self.output_broken = False

    def write(self, data: bytes) -> None:
        """Guest output; a closed reader (broken pipe) makes further output go nowhere, not fail the VM."""
        if self.output_broken:
            return
        view = memoryview(data)
        while view:
            try:
                written = os.write(self.output_fd, view)
            except InterruptedError:
                continue
            except OSError as exc:
                if exc.errno not in (errno.EPIPE, errno.EBADF):
                    raise
                self.output_broken = True
                log.info("console_output_closed", reason=os.strerror(exc.errno or 0))
                return
            view = view[written:]

    def start(self, deliver: Callable[[bytes], None], quit_requested: Callable[[], None]) -> None:
        """Start feeding input to ``deliver``; Ctrl-A x calls ``quit_requested`` (from the reader thread)."""
        if self.input_fd is None:
            return
        if os.isatty(self.input_fd):
            self._saved_mode = termios.tcgetattr(self.input_fd)
            tty.setraw(self.input_fd)
        self._thread = threading.Thread(
            target=self._read_input,
            args=(self.input_fd, deliver, quit_requested),
            name="vm-console-input",
            daemon=True,
        )
        self._thread.start()

    def _read_input(self, fd: int, deliver: Callable[[bytes], None], quit_requested: Callable[[], None]) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([fd], [], [], _POLL_SECONDS)
                if not ready:
                    continue
                chunk = os.read(fd, 4096)
            except InterruptedError:
                continue
            except OSError as exc:
                log.info("console_input_failed", reason=os.strerror(exc.errno or 0))
                return
            if not chunk:
                log.debug("console_input_ended")
                return
            filtered = self._filter.feed(chunk)
            if filtered.show_help:
                self.write(HELP_TEXT)
            if filtered.to_guest:
                deliver(filtered.to_guest)
            if filtered.quit:
                quit_requested()
                return

    def close(self) -> None:
        """Stop reading and give the terminal its mode back."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)
        self._thread = None
        if self._saved_mode is not None and self.input_fd is not None:
            try:
                termios.tcsetattr(self.input_fd, termios.TCSADRAIN, self._saved_mode)
            except termios.error as exc:
                log.warning("terminal_mode_not_restored", reason=str(exc))
            self._saved_mode = None

    def __enter__(self) -> HostConsole:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
