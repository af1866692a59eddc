"""vm-core: the domain model every other vm package builds on.

It owns the error hierarchy (:mod:`vm_core.errors`), the plugin hook
specifications (:mod:`vm_core.hookspecs`), the plugin manager
(:mod:`vm_core.plugins`), shared value types (:mod:`vm_core.types`),
logging setup (:mod:`vm_core.logging`), the event-sourced VM lifecycle
(:mod:`vm_core.domainmodel`, :mod:`vm_core.application`), the identity and
liveness of the process running a VM (:mod:`vm_core.runner`) and the event
store's health checks (:mod:`vm_core.store_health`). It imports no sibling package.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vm-core")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"

__all__ = ["__version__"]
