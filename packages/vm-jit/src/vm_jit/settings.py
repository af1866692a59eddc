"""Tunable settings of the translating engines (thresholds are settings, not buried constants)."""

from __future__ import annotations

import attrs


@attrs.frozen
class JitSettings:
    """Settings of the ``python`` engine.

    ``compile_threshold``: how many times a block runs in the reference
    interpreter before its region is compiled to Python (1: on first sight).
    ``max_block_insns``: longest block lifted at once.
    ``max_region_blocks``: most blocks compiled into one region function.
    """

    compile_threshold: int = 2
    max_block_insns: int = 64
    max_region_blocks: int = 16
