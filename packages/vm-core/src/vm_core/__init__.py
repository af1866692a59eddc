"""vm-core: the domain model every other vm package builds on.

It owns the error hierarchy (:mod:`vm_core.errors`), the plugin hook
specifications (:mod:`vm_core.hookspecs`), the plugin manager
(:mod:`vm_core.plugins`), shared value types (:mod:`vm_core.types`) and
logging setup (:mod:`vm_core.logging`). It imports no sibling package.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vm-core")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"

__all__ = ["__version__"]
