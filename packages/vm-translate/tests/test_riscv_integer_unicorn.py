"""Differential tests of the RV64I, RV64M and C front end against Unicorn.

Hypothesis draws sequences of 1-20 instructions: every row of the RV64I and
RV64M tables (word forms included) and every integer compressed encoding,
with random fields, destination registers from a small pool so values
interact, immediates with all bit patterns, memory accesses at offsets that
stay inside the data page (bases x8, x9 and sp point into it) and forward
branches/jumps (jalr through an ``auipc`` pair, sometimes with bit 0 of the
target set). Each sequence runs on Unicorn and on vm's reference engine from
the same random register state; the x registers, pc and data page must agree.
"""

from __future__ import annotations

from hypothesis import given, settings
from vm_translate.testing.riscv_integer import sequences, states
from vm_translate.testing.unicorn_oracle import (
    InitialState,
    assert_same,
)

EXAMPLES = settings(max_examples=120, deadline=None)


@EXAMPLES
@given(sequences(("i",)), states())
def test_rv64i_alu_matches_unicorn(words: list[int], init: InitialState) -> None:
    assert_same(words, init)


@EXAMPLES
@given(sequences(("i", "mem", "ctl")), states())
def test_rv64i_memory_and_control_match_unicorn(words: list[int], init: InitialState) -> None:
    assert_same(words, init)


@EXAMPLES
@given(sequences(("m", "i")), states())
def test_rv64m_matches_unicorn(words: list[int], init: InitialState) -> None:
    assert_same(words, init)


@EXAMPLES
@given(sequences(("c", "cmem", "cctl", "sp", "i")), states())
def test_compressed_matches_unicorn(words: list[int], init: InitialState) -> None:
    assert_same(words, init)


@settings(max_examples=150, deadline=None)
@given(sequences(("i", "m", "mem", "ctl", "c", "cmem", "cctl")), states())
def test_mixed_integer_sequences_match_unicorn(words: list[int], init: InitialState) -> None:
    assert_same(words, init)
