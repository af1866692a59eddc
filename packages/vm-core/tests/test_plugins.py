"""The plugin manager: entry points, the VM_PLUGINS allow-list, registration and selection hooks."""

from __future__ import annotations

import sys
import types
from importlib.metadata import EntryPoint

import pytest
from vm_core import plugins as plugins_mod
from vm_core.errors import NotFoundError, PluginError
from vm_core.hookspecs import hookimpl
from vm_core.plugins import allow_list, collect_registry, make_plugin_manager
from vm_core.types import EngineSpec, IsaSpec, LoaderSpec, SyscallSpec


class ToyIsaPlugin:
    """A plugin written in the test: registers one ISA and one engine, and selects."""

    @hookimpl
    def vm_register_isas(self, register):
        register(IsaSpec(name="toy64", factory=object, elf_machine=0x7777, aliases=("toy",)))

    @hookimpl
    def vm_register_engines(self, register):
        register(EngineSpec(name="toy-engine", factory=object, rank=5))

    @hookimpl
    def vm_select_engine(self, isa, requested, available):
        return "toy-engine" if isa == "toy64" else None


def test_test_plugin_is_seen_through_the_hooks():
    pm = make_plugin_manager(load_entry_points=False, plugins=[ToyIsaPlugin()])
    registry = collect_registry(pm)
    assert registry.isa("toy").name == "toy64"
    assert registry.isa_for_elf_machine(0x7777).name == "toy64"
    assert registry.engine("toy-engine").rank == 5
    assert pm.hook.vm_select_engine(isa="toy64", requested="auto", available=["toy-engine"]) == "toy-engine"
    assert pm.hook.vm_select_engine(isa="riscv64", requested="auto", available=["toy-engine"]) is None


def test_unknown_parts_raise_not_found_with_the_installed_list():
    registry = collect_registry(make_plugin_manager(load_entry_points=False, plugins=[ToyIsaPlugin()]))
    with pytest.raises(NotFoundError, match="installed: toy64"):
        registry.isa("mips")
    with pytest.raises(NotFoundError):
        registry.engine("warp-drive")


def test_two_plugins_registering_the_same_name_is_an_error():
    pm = make_plugin_manager(load_entry_points=False, plugins=[ToyIsaPlugin(), ToyIsaPlugin()])
    with pytest.raises(PluginError, match="toy64"):
        collect_registry(pm)


def _fake_entry_points(monkeypatch, module_names):
    eps = []
    for name in module_names:
        mod = types.ModuleType(f"fake_vm_plugin_{name}")

        def vm_register_isas(register, _name=name):
            register(IsaSpec(name=f"isa-{_name}", factory=object, elf_machine=hash(_name) & 0xFFFF))

        mod.vm_register_isas = hookimpl(vm_register_isas)
        monkeypatch.setitem(sys.modules, mod.__name__, mod)
        eps.append(EntryPoint(name=name, value=mod.__name__, group=plugins_mod.ENTRY_POINT_GROUP))
    monkeypatch.setattr(plugins_mod, "entry_points", lambda group: [e for e in eps if e.group == group])


def test_entry_points_are_loaded(monkeypatch):
    _fake_entry_points(monkeypatch, ["alpha", "beta"])
    pm = make_plugin_manager(environ={})
    assert {"alpha", "beta"} <= {name for name, _ in pm.list_name_plugin()}
    assert set(collect_registry(pm).isas) == {"isa-alpha", "isa-beta"}


def test_allow_list_restricts_loading(monkeypatch):
    _fake_entry_points(monkeypatch, ["alpha", "beta"])
    pm = make_plugin_manager(environ={"VM_PLUGINS": "beta"})
    assert set(collect_registry(pm).isas) == {"isa-beta"}
    assert allow_list({"VM_PLUGINS": " a, b ,"}) == {"a", "b"}
    assert allow_list({"VM_PLUGINS": ""}) is None
    assert allow_list({}) is None


def test_broken_plugin_gives_a_plugin_error(monkeypatch):
    ep = EntryPoint(name="broken", value="no_such_module_for_vm_tests", group=plugins_mod.ENTRY_POINT_GROUP)
    monkeypatch.setattr(plugins_mod, "entry_points", lambda group: [ep])
    with pytest.raises(PluginError, match="broken"):
        make_plugin_manager(environ={})


def test_every_managed_manager_is_new():
    assert make_plugin_manager(load_entry_points=False) is not make_plugin_manager(load_entry_points=False)


def test_a_hookimpl_of_a_hook_that_does_not_exist_is_refused_at_start():
    class Misspelled:
        @hookimpl
        def vm_register_isa(self, register):  # not a hook: vm_register_isas
            raise AssertionError("never called")

    with pytest.raises(PluginError, match="implements a hook vm does not have"):
        make_plugin_manager(load_entry_points=False, plugins=[Misspelled()])


class _Observer:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.seen: list[tuple[str, dict]] = []

    @hookimpl
    def vm_machine_event(self, name, data):
        self.seen.append((name, data))
        if self.fail:
            raise RuntimeError("observer bug")


def test_a_failing_observer_is_logged_once_and_never_stops_the_others():
    from structlog.testing import capture_logs
    from vm_core.plugins import MachineEventBus

    broken, working = _Observer(fail=True), _Observer()
    bus = MachineEventBus(make_plugin_manager(load_entry_points=False, plugins=[broken, working]))
    with capture_logs() as logs:
        bus.emit("created", {"vm": "a"})
        bus.emit("exited", {"vm": "a", "exit_status": 0})
    assert [name for name, _ in working.seen] == ["created", "exited"]
    assert [name for name, _ in broken.seen] == ["created", "exited"]
    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert len(warnings) == 1 and warnings[0]["machine_event"] == "created"
    assert "observer bug" in warnings[0]["error"]


def _syscall_plugin(isa, syscall, handler):
    class Plugin:
        @hookimpl
        def vm_register_syscalls(self, register):
            register(SyscallSpec(os="linux", isa=isa, syscall=syscall, handler=handler))

    return Plugin()


def test_an_isa_specific_syscall_override_wins_over_an_every_isa_one():
    def everywhere(state, cpu, args):
        return 1

    def riscv_only(state, cpu, args):
        return 2

    pm = make_plugin_manager(
        load_entry_points=False,
        plugins=[_syscall_plugin("*", "getpid", everywhere), _syscall_plugin("riscv64", "getpid", riscv_only),
                 _syscall_plugin("*", 500, everywhere)],
    )
    registry = collect_registry(pm)
    riscv = registry.syscall_overrides("linux", "riscv64")
    assert riscv["getpid"].handler is riscv_only and riscv[500].handler is everywhere
    assert registry.syscall_overrides("linux", "x86_64")["getpid"].handler is everywhere
    assert registry.syscall_overrides("freebsd", "riscv64") == {}


def test_two_plugins_overriding_the_same_syscall_is_an_error():
    pm = make_plugin_manager(
        load_entry_points=False,
        plugins=[_syscall_plugin("riscv64", "getpid", print), _syscall_plugin("riscv64", "getpid", repr)],
    )
    with pytest.raises(PluginError, match="getpid"):
        collect_registry(pm)


def _loader_plugin(name, magic):
    class Plugin:
        @hookimpl
        def vm_register_loaders(self, register):
            register(LoaderSpec(name=name, probe=lambda h: h.startswith(magic), factory=object, machine=lambda h: 7))

    return Plugin()


def test_exactly_one_loader_must_accept_a_file():
    registry = collect_registry(
        make_plugin_manager(load_entry_points=False, plugins=[_loader_plugin("a", b"AB"), _loader_plugin("b", b"A")])
    )
    assert registry.loader_for(b"Ax", "p").name == "b"
    with pytest.raises(PluginError, match="more than one loader accepts this file \\(a, b\\)"):
        registry.loader_for(b"ABC", "p")
    with pytest.raises(NotFoundError, match="no installed loader"):
        registry.loader_for(b"zz", "p")


def test_a_third_party_selector_is_asked_before_a_trylast_built_in():
    class BuiltIn:
        @hookimpl(trylast=True)
        def vm_select_engine(self, isa, requested, available):
            return "built-in"

    class ThirdParty:
        @hookimpl
        def vm_select_engine(self, isa, requested, available):
            return "third-party" if isa == "toy64" else None

    for order in ([BuiltIn(), ThirdParty()], [ThirdParty(), BuiltIn()]):
        pm = make_plugin_manager(load_entry_points=False, plugins=order)
        assert pm.hook.vm_select_engine(isa="toy64", requested="auto", available=[]) == "third-party"
        assert pm.hook.vm_select_engine(isa="riscv64", requested="auto", available=[]) == "built-in"
