"""What a compiling tier is to the engine that composes it (:class:`Tier`).

An engine (:class:`vm_jit.engine.TieredEngine`) runs cold code in the
reference interpreter (tier 0) and composes an ordered list of compiling
tiers over one :class:`~vm_jit.translation_cache.TranslationCache`: the
``python`` engine has :class:`~vm_jit.python_tier.PythonTier`, the ``llvm``
engine that and :class:`~vm_jit.native.tier.NativeTier`. A tier compiles
the translated blocks around a hot entry into a
:class:`~vm_jit.translation_cache.CompiledRegion` and installs it in the
cache (at once, or later from a background compile); the cache tells it when
its code leaves dispatch and when it may be freed (the
:class:`~vm_jit.translation_cache.CodeOwner` part). No tier knows another:
the engine's promotion policy moves an entry up, and the cache routes each
pc to the highest tier with code there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from vm_translate import ir
from vm_translate.cpu import CpuState

from vm_jit.translation_cache import CodeOwner, TranslationCache


class Tier(CodeOwner, Protocol):
    """One compiling tier (see the module docstring)."""

    #: The tier's name (``python``, ``native``), for ``TieredEngine.tier``.
    name: str
    #: Its place: 1 for the first compiling tier, 2 for the next.
    level: int
    #: When the engine asks it for an entry's region: for the first tier, the times the block ran in the
    #: interpreter; above, the guest instructions the tier below retired entering there.
    threshold: int
    #: Whether it can compile here at all (False: the engine never promotes to it).
    enabled: bool
    #: Whether compiles are in flight (then the engine calls :meth:`install_finished` at its next dispatch).
    busy: bool

    def attach(self, mem: Any) -> None:
        """A new address space: drop what the tier keeps about the last one (the cache is empty already)."""

    def begin_run(self, cpu: CpuState) -> None:
        """A ``run`` call starts on ``cpu`` (install what background compiles finished)."""

    def translated(self, cpu: CpuState, translation: Any) -> None:
        """The cache has just translated a block (the native tier looks it up in its AOT cache)."""

    def supports(self, block: ir.Block) -> bool:
        """Whether the tier can compile ``block`` at all."""

    def promote(self, cpu: CpuState, entry: int) -> None:
        """Compile the region around ``entry`` and install it (now, or when a background compile ends)."""

    def install_finished(self, cpu: CpuState) -> None:
        """Install what background compiles have finished."""

    def close(self) -> None:
        """Stop what the tier runs (threads) and release what it holds on the host."""


#: How an engine builds a tier: ``factory(cache, level)``.
TierFactory = Callable[[TranslationCache, int], Tier]
