"""The composition root assembles VMs from whatever is registered, and tells observers what happens.

Plugins written in the tests are registered on a plugin manager next to the
installed ones; nothing here names a built-in part except to check it was
the one chosen.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs
from vm_cli import Machine
from vm_cli.compose import Plugins, ProgramRequest, compose_boot, compose_program
from vm_core.errors import AcceleratorUnavailable, ConfigurationError, NotFoundError, UnsupportedError
from vm_core.hookspecs import hookimpl
from vm_core.plugins import make_plugin_manager
from vm_core.types import AcceleratorSpec, BootOutcome, BootRequest, GuestStopKind, StopKind, SyscallSpec
from vm_linux.process import ProcessResult
from vm_translate.riscv.archinfo import RV64

HELLO = Path(__file__).resolve().parents[3] / "examples" / "hello-riscv64"


class Observer:
    """Records every machine event; with ``fail``, raises after recording (a buggy observer)."""

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.events: list[tuple[str, dict[str, Any]]] = []

    @hookimpl
    def vm_machine_event(self, name: str, data: dict[str, Any]) -> None:
        self.events.append((name, data))
        if self.fail:
            raise RuntimeError("observer bug")


def _plugins(*extra: object) -> Plugins:
    return Plugins.load(make_plugin_manager(plugins=extra))


def _run_hello(plugins: Plugins, tmp_path: Path, **request: Any) -> tuple[ProcessResult, str, Any]:
    out = os.open(tmp_path / "out.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        args = ProgramRequest(program=str(HELLO), args=("Ada",), std_streams=(0, out, 2), **request)
        with compose_program(plugins, args) as vm:
            result = vm.run()
    finally:
        os.close(out)
    return result, (tmp_path / "out.txt").read_text(), vm


def test_a_run_is_created_started_and_exited_even_when_an_observer_raises(tmp_path: Path) -> None:
    broken, observer = Observer(fail=True), Observer()
    with capture_logs() as logs:
        result, out, vm = _run_hello(_plugins(broken, observer), tmp_path, engine="interp")
    assert [entry["machine_event"] for entry in logs if entry["log_level"] == "warning"] == ["created"]
    assert (result.exit_status, result.signal) == (1, None) and "Ada" in out  # hello exits with argc - 1
    assert [name for name, _ in observer.events] == ["created", "started", "exited"]
    assert [name for name, _ in broken.events] == ["created", "started", "exited"]
    created, _, exited = (data for _, data in observer.events)
    assert created["vm"] == exited["vm"] == vm.id
    assert (created["isa"], created["engine"], created["program"]) == ("riscv64", "interp", str(HELLO))
    assert exited["exit_status"] == 1 and exited["instructions"] == vm.cpu.icount > 0


def test_a_third_party_engine_selector_wins_over_the_built_in_one() -> None:
    class PreferInterp:
        @hookimpl
        def vm_select_engine(self, isa: str, requested: str, available: list[str]) -> str | None:
            return "interp"

    assert Machine("riscv64").engine_spec.name != "interp"  # vm-jit's choice, when nobody else answers
    assert Machine("riscv64", plugin_manager=make_plugin_manager(plugins=[PreferInterp()])).engine_spec.name == "interp"


def test_a_syscall_override_is_what_the_guest_gets(tmp_path: Path) -> None:
    written: list[bytes] = []

    def capture_write(state: Any, cpu: Any, args: Any) -> int:
        data = cpu.mem.read(args[1], args[2])
        written.append(bytes(data))
        return len(data)

    class Override:
        @hookimpl
        def vm_register_syscalls(self, register: Any) -> None:
            register(SyscallSpec(os="linux", isa="riscv64", syscall="write", handler=capture_write))

    result, out, _ = _run_hello(_plugins(Override()), tmp_path, engine="interp")
    assert result.exit_status == 1 and out == ""  # every write went to the plugin's handler
    assert b"Ada" in b"".join(written)


class EmulatingAccelerator:
    """A third-party 'accelerator' whose user-mode guest is vm's reference interpreter (no hardware needed)."""

    class Guest:
        def __init__(self, isa: str, arch: Any) -> None:
            self.arch = arch
            from vm_mem import AddressSpace
            from vm_translate.cpu import CpuState
            from vm_translate.executor import ReferenceEngine
            from vm_translate.riscv import RiscvFrontEnd

            frontend = RiscvFrontEnd()
            self.mem = AddressSpace()
            self.cpu = CpuState(isa, arch.register_count, self.mem)
            self.engine = ReferenceEngine(frontend)
            self.hwcap = None
            self.stats = {"guests": 1}
            self.closed = False

        def close(self) -> None:
            self.closed = True

    def __init__(self) -> None:
        self.guests: list[EmulatingAccelerator.Guest] = []

    def user_mode(self, isa: str, arch: Any) -> Guest:
        self.guests.append(self.Guest(isa, arch))
        return self.guests[-1]

    @hookimpl
    def vm_register_accelerators(self, register: Any) -> None:
        register(AcceleratorSpec(name="emul", factory=object, probe=lambda: None, isas=("riscv64",),
                                 user_mode=self.user_mode))  # fmt: skip

    @hookimpl
    def vm_select_accelerator(self, isa: str, requested: str, host_isa: str) -> str | None:
        return "emul" if requested in ("auto", "emul") and isa == "riscv64" else None


def test_an_accelerator_chosen_through_the_hook_runs_the_linux_process(tmp_path: Path) -> None:
    accelerator, observer = EmulatingAccelerator(), Observer()
    result, out, vm = _run_hello(_plugins(accelerator, observer), tmp_path)
    assert (vm.accelerator, vm.engine_name, vm.stats) == ("emul", "emul", {"guests": 1})
    assert result.exit_status == 1 and "Ada" in out
    assert accelerator.guests[0].closed
    assert accelerator.guests[0].arch is RV64  # user_mode gets the ISA's registered ArchInfo
    assert observer.events[0][1]["accelerator"] == "emul"
    _, _, emulated = _run_hello(_plugins(accelerator), tmp_path, accel="none")
    assert emulated.accelerator is None and len(accelerator.guests) == 1


def test_an_accelerator_is_refused_for_an_isa_it_does_not_run(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedError, match="cannot run riscv64 guests"):
        _run_hello(_plugins(), tmp_path, accel="kvm")
    with pytest.raises(NotFoundError, match="no accelerator named 'warp'"):
        _run_hello(_plugins(), tmp_path, accel="warp")


def test_a_machine_reports_each_run_and_its_stop() -> None:
    observer = Observer()
    machine = Machine("riscv64", engine="interp", plugin_manager=make_plugin_manager(plugins=[observer]))
    machine.mem_map(0x10000, 0x1000)
    machine.mem_write(0x10000, bytes.fromhex("9305a002") + bytes.fromhex("73000000"))  # addi a1, zero, 42; ecall
    stop = machine.run(begin=0x10000)
    assert stop.kind is StopKind.SYSCALL and machine.reg_read("a1") == 42
    assert [name for name, _ in observer.events] == ["created", "started", "stopped"]
    assert observer.events[-1][1]["reason"] == "syscall"


def test_the_linux_abi_is_built_from_the_isas_registered_arch_info() -> None:
    plugins = _plugins()
    abi, _ = plugins.linux_personality("riscv64")
    assert abi.arch is plugins.registry.isa("riscv64").arch is RV64
    assert abi.nr_register == RV64.index("a7") and abi.hwcap == RV64.hwcap
    x86 = plugins.registry.isa("x86_64")
    assert not x86.emulated and plugins.linux_personality("x86_64")[0].arch is x86.arch
    assert plugins.isa_name_for(x86.arch.elf_machine) == "x86_64"  # an ISA without a front end is still found


class BootingAccelerator:
    """An accelerator whose ``system_mode`` records the request and ends the guest as told."""

    class Machine:
        def __init__(self, isa: str, request: BootRequest, outcome: BootOutcome | Exception) -> None:
            self.isa, self.request, self.outcome = isa, request, outcome
            self.booted = self.closed = False

        def boot(self) -> BootOutcome:
            self.booted = True
            if isinstance(self.outcome, Exception):
                raise self.outcome
            return self.outcome

        def close(self) -> None:
            self.closed = True

    def __init__(self, outcome: BootOutcome | Exception, *, with_system_mode: bool = True) -> None:
        self.outcome = outcome
        self.with_system_mode = with_system_mode
        self.machines: list[BootingAccelerator.Machine] = []

    def system_mode(self, isa: str, request: BootRequest) -> Machine:
        self.machines.append(self.Machine(isa, request, self.outcome))
        return self.machines[-1]

    @hookimpl
    def vm_register_accelerators(self, register: Any) -> None:
        register(AcceleratorSpec(name="bootx", factory=object, probe=lambda: None, isas=("x86_64",),
                                 system_mode=self.system_mode if self.with_system_mode else None))  # fmt: skip

    @hookimpl
    def vm_select_accelerator(self, isa: str, requested: str, host_isa: str) -> str | None:
        return "bootx" if requested in ("auto", "bootx") and isa == "x86_64" else None


def test_vm_boot_asks_the_chosen_accelerator_for_its_system_mode() -> None:
    outcome = BootOutcome(GuestStopKind.POWEROFF, "port 0x604", 0.5)
    accelerator, observer = BootingAccelerator(outcome), Observer()
    request = BootRequest(kernel="/k/bzImage", memory="64M", command_line="quiet", console_input_fd=None)
    with compose_boot(_plugins(accelerator, observer), "x86_64", "auto", request) as vm:
        assert vm.accelerator == "bootx" and not accelerator.machines[0].booted
        assert vm.boot(exit_status=lambda done: 7 if done.kind is GuestStopKind.POWEROFF else 9) is outcome
    machine = accelerator.machines[0]
    assert (machine.isa, machine.request, machine.closed) == ("x86_64", request, True)
    assert [name for name, _ in observer.events] == ["created", "started", "exited"]
    created, exited = observer.events[0][1], observer.events[-1][1]
    assert (created["accelerator"], created["program"], created["isa"]) == ("bootx", "/k/bzImage", "x86_64")
    assert (exited["exit_status"], exited["vm"]) == (7, created["vm"])


def test_vm_boot_reports_a_failed_boot_and_refuses_what_cannot_boot() -> None:
    accelerator, observer = BootingAccelerator(UnsupportedError("not a bzImage")), Observer()
    request = BootRequest(kernel="/k/bzImage")
    with pytest.raises(UnsupportedError, match="not a bzImage"):
        with compose_boot(_plugins(accelerator, observer), "x86_64", "bootx", request) as vm:
            vm.boot(exit_status=lambda done: 0)
    assert [name for name, _ in observer.events] == ["created", "started", "stopped"]
    assert "not a bzImage" in observer.events[-1][1]["reason"] and accelerator.machines[0].closed
    without = BootingAccelerator(UnsupportedError("unused"), with_system_mode=False)
    with pytest.raises(UnsupportedError, match="'bootx' cannot boot an operating system"):
        compose_boot(_plugins(without), "x86_64", "bootx", request)
    with pytest.raises(ConfigurationError, match="needs a hardware accelerator"):
        compose_boot(_plugins(accelerator), "x86_64", "none", request)
    with pytest.raises(ConfigurationError, match="no accelerator named 'warp'"):
        compose_boot(_plugins(accelerator), "x86_64", "warp", request)
    with pytest.raises(AcceleratorUnavailable, match="none usable for riscv64"):
        compose_boot(_plugins(accelerator), "riscv64", "auto", request)
    assert len(accelerator.machines) == 1
