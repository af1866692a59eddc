"""vm-gc installs and loads as a plugin, and claims nothing it does not implement.

The collector is a library the translating engines build in (vm-jit's code
cache), not an ISA, engine or device, so the plugin registers no part.
"""

from __future__ import annotations

from vm_core.plugins import collect_registry, make_plugin_manager


def test_entry_point_loads_and_registers_nothing() -> None:
    pm = make_plugin_manager(environ={"VM_PLUGINS": "gc"})
    assert [name for name, _ in pm.list_name_plugin()] == ["gc"]
    registry = collect_registry(pm)
    assert registry.isas == {} and registry.engines == {} and registry.accelerators == {}
    assert registry.syscalls == {} and registry.syscall_tables == {} and registry.loaders == {}
