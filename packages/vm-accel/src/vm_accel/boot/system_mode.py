"""KVM's ``system_mode`` capability: what the composition root calls for ``vm boot``.

:func:`open_system_mode` turns the :class:`vm_core.types.BootRequest` into a
:class:`~vm_accel.boot.machine.BootConfig` (the RAM size parsed as qemu's
``-m`` reads it, see :func:`~vm_accel.boot.layout.parse_memory_size`), then
opens the KVM device; :meth:`KvmSystemMode.boot` boots the kernel with COM1
on the request's console descriptors and reports how the guest ended as a
:class:`vm_core.types.BootOutcome`. Only x86-64 kernels boot (the Linux x86
64-bit boot protocol).
"""

from __future__ import annotations

from pathlib import Path

from vm_core.errors import UnsupportedError
from vm_core.types import BootOutcome, BootRequest

from vm_accel.boot.console import HostConsole
from vm_accel.boot.layout import parse_memory_size
from vm_accel.boot.machine import BootConfig, boot_linux
from vm_accel.kvm.system import ACCELERATOR_NAME, DEFAULT_DEVICE_PATH, Kvm

#: The ISAs whose kernels ``vm boot`` boots on KVM.
BOOT_ISAS = ("x86_64",)


class KvmSystemMode:
    """An open KVM device and the kernel to boot on it (one ``boot()``)."""

    def __init__(
        self, kvm: Kvm, config: BootConfig, console_output_fd: int, console_input_fd: int | None
    ) -> None:
        self.kvm = kvm
        self.config = config
        self.console_output_fd = console_output_fd
        self.console_input_fd = console_input_fd

    def boot(self) -> BootOutcome:
        """Boot the kernel on a fresh VM and return when the guest ends."""
        console = HostConsole(output_fd=self.console_output_fd, input_fd=self.console_input_fd)
        result = boot_linux(self.kvm, self.config, console)
        return BootOutcome(kind=result.stop.kind, detail=result.stop.detail, wall_s=result.wall_s)

    def close(self) -> None:
        self.kvm.close()

    def __enter__(self) -> KvmSystemMode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def boot_config(request: BootRequest) -> BootConfig:
    """The :class:`BootConfig` of ``request`` (ConfigurationError for a RAM size KVM boot does not take)."""
    return BootConfig(
        kernel=Path(request.kernel),
        memory_size=parse_memory_size(request.memory),
        command_line=request.command_line,
        initrd=Path(request.initrd) if request.initrd is not None else None,
        timeout=request.timeout,
    )


def open_system_mode(isa: str, request: BootRequest, device_path: str = DEFAULT_DEVICE_PATH) -> KvmSystemMode:
    """The accelerator's ``system_mode`` factory: ``request`` checked, then the KVM device opened."""
    if isa not in BOOT_ISAS:
        raise UnsupportedError(f"{ACCELERATOR_NAME} boots {', '.join(BOOT_ISAS)} kernels, not {isa}")
    config = boot_config(request)
    return KvmSystemMode(Kvm(device_path), config, request.console_output_fd, request.console_input_fd)
