"""KVM's ``system_mode`` capability (what `vm boot` reaches through the plugin registry).

The request is checked before the device is opened; on the real /dev/kvm the
project's test kernel boots through it and reports what it was given.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from vm_accel import plugin
from vm_accel.boot.system_mode import open_system_mode
from vm_core.errors import ConfigurationError, UnsupportedError
from vm_core.plugins import collect_registry, make_plugin_manager
from vm_core.types import BootRequest, GuestStopKind

from .conftest import KVM_UNAVAILABLE
from .test_boot_kvm import INITRD, MIB, check_report, printed, test_kernel  # noqa: F401 (test_kernel: a fixture)

NO_DEVICE = "/nonexistent/kvm"


def test_the_plugin_offers_system_mode() -> None:
    spec = collect_registry(make_plugin_manager(load_entry_points=False, plugins=[plugin])).accelerators[
        "kvm"
    ]
    assert spec.system_mode is plugin.open_system_mode


@pytest.mark.parametrize(
    ("memory", "words"),
    [("lots", "not a number"), ("8M", "outside 16M..64T"), ("16385K", "multiple of 4 KiB")],
)
def test_a_bad_request_is_refused_before_the_device_is_opened(memory: str, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        open_system_mode("x86_64", BootRequest(kernel="/k", memory=memory), device_path=NO_DEVICE)
    with pytest.raises(UnsupportedError, match="boots x86_64 kernels, not riscv64"):
        open_system_mode("riscv64", BootRequest(kernel="/k"), device_path=NO_DEVICE)


@pytest.mark.skipif(KVM_UNAVAILABLE is not None, reason=KVM_UNAVAILABLE or "")
def test_the_test_kernel_boots_through_system_mode(test_kernel: Path, tmp_path: Path) -> None:  # noqa: F811
    initrd = tmp_path / "initrd.img"
    initrd.write_bytes(INITRD)
    out_path = tmp_path / "console.out"
    line = "console=ttyS0 through=system_mode"
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        request = BootRequest(
            kernel=str(test_kernel), memory="96", command_line=line, initrd=str(initrd), timeout=30.0,
            console_output_fd=fd, console_input_fd=None,
        )  # fmt: skip
        with open_system_mode("x86_64", request) as machine:
            outcome = machine.boot()
    finally:
        os.close(fd)
    output = out_path.read_text()
    assert outcome.kind is GuestStopKind.POWEROFF and "0x604" in outcome.detail and outcome.wall_s > 0
    initrd_at = int(printed(output, "initrd")[0].split()[0], 16)
    check_report(
        output, command_line=line, memory=96 * MIB, initrd=INITRD, initrd_address=initrd_at
    )  # "96": MiB
