"""A native region: the LLVM IR of a group of blocks (named after its content) and its loaded machine code."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import attrs
from vm_translate import ir

from vm_jit.native.llvm_ir import RegionCode, region_code

if TYPE_CHECKING:
    from vm_jit.native.compiler import NativeCode

#: Bump when generated code changes meaning: part of every AOT cache key.
CODEGEN_VERSION = 5
_PROVISIONAL_NAME = "vm_region_unnamed"  # replaced by the content-derived name


class NativeRegion:
    """The machine code of one installed region (the payload of its translation-cache region).

    ``fn`` is None once its machine code has been freed; ``address`` (the
    chain table's key to it) stays, for taking it out of the table.
    """

    __slots__ = ("address", "code", "fn", "name", "reg_high", "reg_low")

    def __init__(self, code: NativeCode, region: RegionCode) -> None:
        self.code = code
        self.address = code.address
        self.fn = code.function
        self.name = region.name
        self.reg_low = region.reg_low
        self.reg_high = region.reg_high

    def __repr__(self) -> str:
        return f"<native region {self.name}{' (freed)' if self.fn is None else ''}>"

    def free(self) -> None:
        """Free the machine code: only when nothing can be executing it or call it again."""
        self.fn = None
        self.code.free()


def named_region(blocks: list[ir.Block], entries: tuple[int, ...]) -> RegionCode:
    """The region's LLVM IR, its function named after the entry pc and a hash of the IR itself.

    ``entries`` are the blocks the dispatcher may start it at (the tier
    gives every block: with LLVM 22 that compiles no slower than a single
    entry, measured on 18 regions of 14-32 blocks from the guest suite).
    """
    draft = region_code(blocks, _PROVISIONAL_NAME, entries=entries)
    digest = hashlib.sha256(draft.text.encode()).hexdigest()[:20]
    name = f"vm_r{blocks[0].pc:x}_{digest}"
    return attrs.evolve(draft, name=name, text=draft.text.replace(f"@{_PROVISIONAL_NAME}(", f"@{name}("))
