"""Every vm distribution that vm-cli installs registers itself through the `vm_core.plugins` entry points.

(Moved from vm-core's tests: vm-core alone has no siblings installed; vm-cli, the composition root,
depends on them all.)
"""

from __future__ import annotations

from vm_core.plugins import make_plugin_manager


def test_installed_sibling_packages_register_through_entry_points() -> None:
    names = {name for name, _ in make_plugin_manager(environ={}).list_name_plugin()}
    assert {"mem", "translate", "jit", "gc", "accel", "linux", "cli"} <= names
