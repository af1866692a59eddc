"""RegionTable against a naive model: a dict page -> (prot, commit), every page of every range listed.

Random inserts and removals must leave the table equal to the model page by
page, with no two regions overlapping, sorted, and every range question
(find, first_hole, any_in, overlapping, free gaps below and above) answered
as the model answers it by walking pages one at a time.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from vm_mem.regions import Commit, Region, RegionTable

LIMIT = 40
ranges = st.tuples(st.integers(0, LIMIT - 1), st.integers(1, 8)).map(lambda r: (r[0], min(LIMIT, r[0] + r[1])))
ops = st.one_of(
    st.tuples(st.just("insert"), ranges, st.integers(0, 2), st.sampled_from(list(Commit))),
    st.tuples(st.just("remove"), ranges),
)


def model_gaps(model: dict[int, Any], low: int, high: int) -> list[tuple[int, int]]:
    gaps: list[tuple[int, int]] = []
    pn = low
    while pn < high:
        if pn in model:
            pn += 1
            continue
        start = pn
        while pn < high and pn not in model:
            pn += 1
        gaps.append((start, pn))
    return gaps


@settings(max_examples=150, deadline=None)
@given(st.lists(ops, max_size=30), ranges)
def test_region_table_matches_a_page_model(operations: list[tuple[Any, ...]], probe: tuple[int, int]) -> None:
    table = RegionTable()
    model: dict[int, tuple[int, Commit]] = {}
    for op in operations:
        (first, last) = op[1]
        if op[0] == "insert":
            table.insert(Region(first, last, op[2], None, 0, op[3]))
            model.update(dict.fromkeys(range(first, last), (op[2], op[3])))
        else:
            removed = table.remove(first, last)
            assert sum(r.pages for r in removed) == sum(1 for pn in range(first, last) if pn in model)
            for pn in range(first, last):
                model.pop(pn, None)
    regions = list(table)
    assert all(a.end <= b.start for a, b in itertools.pairwise(regions))
    assert all(not a.joins(b) for a, b in itertools.pairwise(regions))  # joinable neighbours merged
    assert {pn: (r.prot, r.commit) for r in regions for pn in range(r.start, r.end)} == model
    assert table.mapped_pages() == len(model)
    first, last = probe
    for pn in range(LIMIT):
        found = table.find(pn)
        assert (found is not None) == (pn in model)
    hole = next((pn for pn in range(first, last) if pn not in model), None)
    assert table.first_hole(first, last) == hole
    assert table.any_in(first, last) == any(pn in model for pn in range(first, last))
    for need in (1, 2, 3):
        lacking = next((pn for pn in range(first, last) if pn not in model or model[pn][0] & need != need), None)
        assert table.first_without(first, last, need) == lacking
    for commit in Commit:
        assert table.pages_with(first, last, commit) == sum(
            1 for pn in range(first, last) if pn in model and model[pn][1] is commit)  # fmt: skip
    assert {pn for r in table.overlapping(first, last) for pn in range(r.start, r.end)} >= {
        pn for pn in range(first, last) if pn in model}  # fmt: skip
    assert list(table.free_gaps_above(first, LIMIT)) == model_gaps(model, first, LIMIT)
    assert list(table.free_gaps_below(last, 0)) == model_gaps(model, 0, last)[::-1]
