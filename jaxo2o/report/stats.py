"""The rliable section of a report: per line IQM / mean / optimality gap with 95% CIs,
probability of improvement for given pairs of lines, performance profiles; as markdown and PNGs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxo2o.report import aggregate, plots


def rliable_section(
    rows: Sequence[dict[str, Any]],
    line: str,
    task_keys: Sequence[str],
    metric: str,
    out: str | Path,
    pairs: Sequence[tuple[str, str]] = aggregate.PAPER_PAIRS,
    prefix: str = "",
    scale: str = "normalized score",
    gamma: float = 100.0,
) -> str:
    """Write `<prefix>intervals.png`, `<prefix>improvement.png` (when a pair is present) and
    `<prefix>profiles.png` to `out`; return the markdown. Diverged rows are dropped first."""
    out = Path(out)
    kept, diverged = aggregate.split_diverged(rows)
    mats = aggregate.score_matrices(kept, line, task_keys, metric)
    if not mats:
        return ""
    est = aggregate.interval_estimates(mats, gamma=gamma)
    text = (
        f"{metric} ({scale}) over runs x tasks per {line}, stratified-bootstrap 95% CIs "
        f"(rliable, {aggregate.REPS} replications); optimality gap below {gamma:g}.\n"
        + aggregate.diverged_note(len(diverged), len(rows))
        + "\n| "
        + line
        + " | runs x tasks | IQM | mean | optimality gap |\n|---|---|---|---|---|\n"
    )
    for k, e in est.items():
        cells = [f"{p:.1f} [{lo:.1f}, {hi:.1f}]" for p, lo, hi in e.values()]
        text += f"| {k} | {mats[k].shape[0]} x {mats[k].shape[1]} | " + " | ".join(cells) + " |\n"
    plots.plot_interval_estimates(est, out / f"{prefix}intervals.png", scale)
    probs = {}
    for x, y in pairs:
        if x in mats and y in mats and mats[x].shape[1] == mats[y].shape[1]:
            probs[(x, y)] = aggregate.improvement_probability(mats[x], mats[y])
    if probs:
        text += "\n| X | Y | P(X > Y) |\n|---|---|---|\n"
        for (x, y), (p, lo, hi) in probs.items():
            text += f"| {x} | {y} | {p:.2f} [{lo:.2f}, {hi:.2f}] |\n"
        plots.plot_improvement(probs, out / f"{prefix}improvement.png")
    allv = np.concatenate([m.ravel() for m in mats.values()])
    taus = np.linspace(min(0.0, float(allv.min())), max(gamma, float(allv.max())), 21)
    prof, cis = aggregate.performance_profiles(mats, taus, reps=aggregate.PROFILE_REPS)
    plots.plot_profiles(prof, cis, taus, out / f"{prefix}profiles.png")
    return text
