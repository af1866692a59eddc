"""The plugin module the entry point ``example`` (group ``vm_core.plugins``) names.

Each function below implements one hook of ``vm_core/hookspecs.py`` and is
marked with ``vm_core.hookspecs.hookimpl``:

* ``vm_register_isas``: the toy64 front end and its ArchInfo (:mod:`vm_example_plugin.toy`);
* ``vm_register_syscall_tables``: the Linux ABI of toy64 (:mod:`vm_example_plugin.toy_linux`),
  a factory the composition root calls with toy64's ArchInfo;
* ``vm_register_syscalls``: riscv64's ``getpid`` answers :data:`EXAMPLE_PID`
  (an ISA-specific override wins over vm-linux's own handler);
* ``vm_machine_event``: each event appended as one JSON line to ``$VM_EXAMPLE_EVENTS``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any

from vm_core.hookspecs import hookimpl
from vm_core.types import IsaSpec, SyscallSpec, SyscallTableSpec

from vm_example_plugin.toy import isa_spec
from vm_example_plugin.toy_linux import toy64_linux_abi

#: What riscv64's ``getpid`` returns while this plugin is installed.
EXAMPLE_PID = 4242
EVENTS_ENV = "VM_EXAMPLE_EVENTS"


def example_getpid(state: Any, cpu: Any, args: Sequence[int]) -> int:
    """vm-linux's handler signature: ``(process state, cpu, six raw arguments) -> result``."""
    return EXAMPLE_PID


@hookimpl
def vm_register_isas(register: Callable[[IsaSpec], None]) -> None:
    register(isa_spec())


@hookimpl
def vm_register_syscall_tables(register: Callable[[SyscallTableSpec], None]) -> None:
    register(
        SyscallTableSpec(
            os="linux", isa="toy64", factory=toy64_linux_abi, description="Linux ABI for toy64 (4 calls)"
        )
    )


@hookimpl
def vm_register_syscalls(register: Callable[[SyscallSpec], None]) -> None:
    register(
        SyscallSpec(
            os="linux", isa="riscv64", syscall="getpid", handler=example_getpid,
            description=f"getpid answers {EXAMPLE_PID} (vm-example-plugin)",
        )
    )


@hookimpl
def vm_machine_event(name: str, data: dict[str, Any]) -> None:
    path = os.environ.get(EVENTS_ENV)
    if not path:
        return
    with open(path, "a", encoding="utf-8") as sink:
        sink.write(json.dumps({"event": name, **data}, default=str) + "\n")
