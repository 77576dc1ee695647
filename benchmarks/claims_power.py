"""How many seeds a rerun would need to decide an inconclusive claim at its observed effect.

The claims' stratified-bootstrap CIs are percentile intervals of a mean over n runs per task,
so their half-widths shrink as 1/sqrt(n) when the runs' spread stays what it is. A CI whose
half-width toward the decision boundary b (0 for the effect, 0.5 for P(X > Y)) is d at n runs
excludes b at the same point estimate p once d sqrt(n / m) < |p - b|, i.e. with
m = ceil(n (d / |p - b|)^2) runs per task. That assumes the observed point estimate is the true
effect and the spread over seeds is as observed; with 4 seeds both are rough, and a percentile
bootstrap over 4 values is narrower than the seeds' true spread, so the counts are lower bounds
of what a rerun needs, not promises.
"""

from __future__ import annotations

import math

MAX_SEEDS = 1000  # beyond this the claim is, in practice, undecidable at the observed effect


def seeds_to_exclude(point: float, lo: float, hi: float, n: int, boundary: float = 0.0) -> int:
    """Runs per task for the CI [lo, hi] (at n runs) to exclude `boundary` at the same point;
    n itself or fewer when it already does; `MAX_SEEDS + 1` when the point is on the boundary."""
    gap = abs(point - boundary)
    if gap == 0:
        return MAX_SEEDS + 1
    half = point - lo if point > boundary else hi - point
    return max(1, min(MAX_SEEDS + 1, math.ceil(n * (half / gap) ** 2 - 1e-9)))


def seeds_to_decide(effect: tuple, poi: tuple, n: int) -> int:
    """Runs per task for a claim's verdict to leave "inconclusive": the effect's CI must exclude
    0 and, for "shown", P(X > Y)'s CI must exclude 0.5 (a negative effect needs only the first)."""
    need = seeds_to_exclude(*effect, n)
    if effect[0] > 0:
        need = max(need, seeds_to_exclude(*poi, n, boundary=0.5))
    return need


def power_cell(effect: tuple, poi: tuple, n: int) -> str:
    """The claims table's cell: the runs per task for the effect's CI to exclude 0, and for the
    verdict (with P(X > Y)'s CI) to become the one the point estimate points to."""
    ci, need = seeds_to_exclude(*effect, n), seeds_to_decide(effect, poi, n)
    if need > MAX_SEEDS and ci > MAX_SEEDS:
        return f"> {MAX_SEEDS} (no effect at this estimate)"
    text = lambda m: f"> {MAX_SEEDS}" if m > MAX_SEEDS else str(m)
    where = "shown" if effect[0] > 0 else "not shown"
    return f"effect CI: {text(ci)}; verdict '{where}': {text(need)}"
