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
from vm_core.types import EngineSpec, IsaSpec


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


def test_installed_sibling_packages_register_through_entry_points():
    names = {name for name, _ in make_plugin_manager(environ={}).list_name_plugin()}
    # every vm distribution installed beside vm-core registers itself (vm-cli installs them all)
    assert {"mem", "translate", "jit", "gc", "accel", "linux", "cli"} <= names
