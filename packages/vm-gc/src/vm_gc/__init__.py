"""vm-gc: the bounded translation cache and its concurrent, generational collector.

:class:`CodeCache` holds an engine's translations under a size bound and
reclaims the unreachable ones (see :mod:`vm_gc.cache`); :mod:`vm_gc.sizing`
parses ``--code-cache-size`` and estimates translation sizes.
"""

from vm_gc.cache import CacheError, CodeCache
from vm_gc.report import CollectionKind, CollectionReport, GcPolicy
from vm_gc.sizing import (
    CacheLimits,
    CacheSize,
    estimate_code_object_bytes,
    estimate_function_bytes,
    estimate_ir_bytes,
    parse_cache_size,
)

__all__ = [
    "CacheError",
    "CacheLimits",
    "CacheSize",
    "CodeCache",
    "CollectionKind",
    "CollectionReport",
    "GcPolicy",
    "estimate_code_object_bytes",
    "estimate_function_bytes",
    "estimate_ir_bytes",
    "parse_cache_size",
]
