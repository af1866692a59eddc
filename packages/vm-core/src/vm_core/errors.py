"""The vm error hierarchy.

Every error the VM raises on purpose derives from :class:`VmError`, so a user
can catch one class. Each error renders as one clear line (``str(err)``) and
may carry a ``hint`` saying what to do about it; the CLI prints exactly that
and exits with :attr:`VmError.exit_code`, never a traceback.

Guest faults (:class:`GuestFault`) are different in kind: they are what the
*guest* did wrong (touching unmapped memory, an illegal instruction). The
engines raise them, the OS layer turns them into the signal Linux would
deliver. They still derive from :class:`VmError` so an embedding user that
runs raw code without an OS layer can catch them.
"""

from __future__ import annotations

import signal as _signal


class VmError(Exception):
    """Base class of every error vm raises deliberately."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class ConfigurationError(VmError):
    """A setting, option or argument is invalid."""

    exit_code = 2


class PluginError(VmError):
    """A plugin failed to load or registered something invalid."""


class NotFoundError(VmError):
    """Something the user named (a file, a VM, a snapshot, a plugin part) does not exist.

    Naming something that is not there is a usage error: exit status 2, as for a bad option.
    """

    exit_code = 2


class BadProgramError(VmError):
    """A guest program or image cannot be loaded (malformed ELF, wrong machine, ...)."""


class UnsupportedError(VmError):
    """The guest asks for something this VM does not implement; the message says what."""


class AcceleratorUnavailable(VmError):
    """A hardware accelerator cannot be used here; ``check`` names the failed check."""

    def __init__(self, accelerator: str, check: str, *, hint: str | None = None) -> None:
        super().__init__(f"accelerator {accelerator!r} unavailable: {check}", hint=hint)
        self.accelerator = accelerator
        self.check = check


class DomainError(VmError):
    """A domain invariant was violated (e.g. starting a stopped VM)."""


class ConflictError(DomainError):
    """Two writers changed the same aggregate concurrently; the later one lost nothing but must retry."""


class SnapshotError(VmError):
    """A snapshot is missing, corrupted or truncated; nothing was restored."""


class GuestFault(VmError):
    """Something the guest did that Linux answers with a signal.

    ``signo`` is the signal number delivered to the guest; ``pc`` the guest
    program counter of the faulting instruction when known.
    """

    signo: int = int(_signal.SIGSEGV)

    def __init__(self, message: str, *, pc: int | None = None) -> None:
        super().__init__(message)
        self.pc = pc


class MemoryFault(GuestFault):
    """The guest touched unmapped memory or memory without the needed permission (SIGSEGV)."""

    signo = int(_signal.SIGSEGV)

    def __init__(self, address: int, access: str, *, pc: int | None = None) -> None:
        super().__init__(f"guest {access} fault at {address:#x}", pc=pc)
        self.address = address
        self.access = access  # "read", "write" or "execute"


class IllegalInstruction(GuestFault):
    """The guest executed an instruction word no front end decodes (SIGILL)."""

    signo = int(_signal.SIGILL)

    def __init__(self, word: int, *, pc: int | None = None, isa: str = "", length: int = 4) -> None:
        where = f" at {pc:#x}" if pc is not None else ""
        digits = 4 if length == 2 else 8
        super().__init__(f"illegal {isa + ' ' if isa else ''}instruction {word:0{digits}x}{where}", pc=pc)
        self.word = word
        self.length = length


class Breakpoint(GuestFault):
    """The guest executed a breakpoint instruction (SIGTRAP)."""

    signo = int(_signal.SIGTRAP)
