"""A bench run's table beside the committed reference's, cell by cell.

For every (task, dataset, line) and score (end of offline, dip, final) present in both: the
reference's mean with the stratified-bootstrap 95% CI of its mean over seeds (rliable, as the
tables), the user's mean, and the verdict: inside the reference's CI or not. A reproduction
that differs only by chance does not put every cell inside: the user's mean has its own seed
noise, and percentile-bootstrap intervals over few seeds are narrow. `expected_inside` simulates
the share of cells a statistically identical rerun puts inside (normal seed noise, the same seed
count: about 67% with 4 seeds, 75% with 8); the summary line prints it beside the share seen.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxo2o.report.aggregate import group_stats, split_diverged

SCORES = {"offline_final": "end of offline", "online_dip": "dip", "online_final": "final"}
BY = ["task", "kind", "label"]


def _cells(rows: list[dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
    kept, _ = split_diverged(rows)
    return {tuple(g[k] for k in BY): g for g in group_stats(kept, BY, list(SCORES))}


HEADER = [
    "| task | dataset | line | score | reference mean [95% CI] | this run | verdict |",
    "|---|---|---|---|---|---|---|",
]


def compare(
    user: list[dict[str, Any]],
    reference: list[dict[str, Any]],
    apart: set[tuple[str, str]] | frozenset = frozenset(),
) -> tuple[str, dict]:
    """(markdown, counts) of the user's cells against the reference's 95% CIs. Cells on the
    (task, kind) datasets in `apart` (data that differ from the reference's, or cannot be
    checked) go to a table of their own and into `counts["apart_*"]`, not the main counts."""
    mine, ref = _cells(user), _cells(reference)
    keys = sorted(set(ref) | set(mine), key=str)
    same = [k for k in keys if k[:2] not in apart]
    other = [k for k in keys if k[:2] in apart]
    text, counts = _table(same, mine, ref)
    if other:
        other_text, other_counts = _table(other, mine, ref)
        counts |= {f"apart_{k}": v for k, v in other_counts.items()}
        text += (
            "\n### Cells on datasets that differ from the reference's (or cannot be checked)\n\n"
            + other_text
        )
    return text, counts


def _table(keys: list[tuple], mine: dict, ref: dict) -> tuple[str, dict]:
    lines = list(HEADER)
    counts = {"inside": 0, "outside": 0, "missing": 0}
    for key in keys:
        r, m = ref.get(key), mine.get(key)
        for metric, name in SCORES.items():
            has_r = r is not None and f"{metric}_mean" in r
            has_m = m is not None and f"{metric}_mean" in m
            if not has_r and not has_m:
                continue
            if not (has_r and has_m):
                counts["missing"] += 1
                where = "this run" if has_r else "the reference"
                ref_cell = _ci_cell(r, metric) if has_r else "-"
                mine_cell = f"{m[f'{metric}_mean']:.1f}" if has_m else "-"
                lines.append(_row(key, name, ref_cell, mine_cell, f"not in {where}"))
                continue
            lo, hi, value = r[f"{metric}_ci_lo"], r[f"{metric}_ci_hi"], m[f"{metric}_mean"]
            inside = lo - 1e-6 <= value <= hi + 1e-6
            counts["inside" if inside else "outside"] += 1
            verdict = "inside" if inside else ("**above**" if value > hi else "**below**")
            lines.append(_row(key, name, _ci_cell(r, metric), f"{value:.1f}", verdict))
    return "\n".join(lines) + "\n", counts


def _ci_cell(g: dict[str, Any], metric: str) -> str:
    return f"{g[f'{metric}_mean']:.1f} [{g[f'{metric}_ci_lo']:.1f}, {g[f'{metric}_ci_hi']:.1f}]"


def _row(key: tuple, score: str, ref: str, mine: str, verdict: str) -> str:
    task, kind, label = key
    return f"| {task} | {kind} | {label} | {score} | {ref} | {mine} | {verdict} |"


def expected_inside(n_seeds: int, trials: int = 2000, reps: int = 500, seed: int = 0) -> float:
    """Share of cells inside the reference's 95% percentile-bootstrap CI of the mean when both
    runs draw `n_seeds` values from the same normal distribution (simulated)."""
    rng = np.random.default_rng(seed)
    ref, mine = rng.normal(size=(2, trials, n_seeds))
    boots = np.take_along_axis(ref[:, None, :], rng.integers(0, n_seeds, (trials, reps, n_seeds)),
                               axis=2).mean(-1)  # fmt: skip
    lo, hi = np.percentile(boots, [2.5, 97.5], axis=1)
    value = mine.mean(-1)
    return float(np.mean((lo <= value) & (value <= hi)))


def summary(counts: dict[str, int], n_seeds: int) -> str:
    n = counts["inside"] + counts["outside"]
    share = counts["inside"] / n if n else float("nan")
    text = (
        f"{counts['inside']} of {n} cells ({100 * share:.0f}%) inside the reference's 95% CI; "
        f"a statistically identical rerun with {n_seeds} seeds puts about "
        f"{100 * expected_inside(n_seeds):.0f}% inside (simulated, benchmarks/compare.py)"
    )
    if counts["missing"]:
        text += f"; {counts['missing']} cells in only one of the two runs"
    n_apart = counts.get("apart_inside", 0) + counts.get("apart_outside", 0)
    if n_apart:
        text += (
            f". Apart, on datasets that differ from the reference's or cannot be checked: "
            f"{counts['apart_inside']} of {n_apart} cells inside"
        )
    return text + "."
