"""Seeds a rerun needs to decide an inconclusive claim (`benchmarks.claims_power`), by hand."""

from __future__ import annotations

import pytest

from benchmarks.claims_power import MAX_SEEDS, power_cell, seeds_to_decide, seeds_to_exclude


@pytest.mark.parametrize(
    "ci, n, boundary, need",
    [
        # half-width 15.31 toward 0 at a point 15.26 from it: 4 (15.31 / 15.26)^2 = 4.03 -> 5
        ((15.26, -0.05, 30.15), 4, 0.0, 5),
        # negative point: the upper half-width 28.59, gap 18.68: 4 x 2.342 = 9.37 -> 10
        ((-18.68, -47.29, 9.91), 4, 0.0, 10),
        # the CI already excludes 0: fewer seeds would do, 4 (9.99 / 11.09)^2 = 3.25 -> 4
        ((11.09, 1.10, 23.69), 4, 0.0, 4),
        # P(X > Y) against 0.5: 4 (0.10 / 0.09)^2 = 4.94 -> 5
        ((0.59, 0.49, 0.65), 4, 0.5, 5),
        # half the width needs four times the seeds: exactly at the boundary -> 4 x 4
        ((1.0, -1.0, 3.0), 4, 0.0, 16),
        ((0.5, 0.4, 0.6), 8, 0.5, MAX_SEEDS + 1),  # no effect: undecidable
    ],
)
def test_seeds_to_exclude_by_hand(ci, n, boundary, need):
    assert seeds_to_exclude(*ci, n, boundary=boundary) == need


def test_a_positive_claim_needs_both_intervals_a_negative_one_only_the_effect():
    effect, poi = (15.26, -0.05, 30.15), (0.54, 0.43, 0.68)
    # P(X > Y): 4 (0.11 / 0.04)^2 = 30.25 -> 31 > 5
    assert seeds_to_decide(effect, poi, 4) == 31
    assert power_cell(effect, poi, 4) == "effect CI: 5; verdict 'shown': 31"
    assert seeds_to_decide((-18.68, -47.29, 9.91), (0.39, 0.26, 0.54), 4) == 10
    assert power_cell((0.0, -1.0, 1.0), (0.5, 0.4, 0.6), 4).startswith(f"> {MAX_SEEDS}")
