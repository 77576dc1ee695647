"""Aggregate scores over runs with rliable (Agarwal et al., 2021): interquartile mean (IQM),
mean, optimality gap, probability of improvement and performance profiles, each with
stratified-bootstrap 95% confidence intervals; plus the per-group mean/std of the tables.

Score matrices are (runs x tasks), one per method line. Diverged runs (a `diverged_step` in
runs.csv) are left out before anything is aggregated (`split_diverged`), and the reports say how
many.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

REPS = 2000  # bootstrap replications (rliable's default of 50000 is slow for no gain here)
CONFIDENCE = 0.95
# the papers' comparisons: (X, Y) reads "X improves on Y"
PAPER_PAIRS = (
    ("pex", "iql-direct"),
    ("famo2o", "iql-union"),
    ("aca", "sac-direct"),
    ("aca-scaled", "sac-direct"),
    ("calql", "cql"),
    ("rlpd", "sac-scratch"),
    ("wsrl", "wsrl-no-warmup"),
)


def rliable_modules():
    """rliable's `library` and `metrics`, imported on first use (see the import's comment).

    arch warns that rliable passes a RandomState (deprecated there); the numbers are the same."""
    warnings.filterwarnings("ignore", message="random_state is deprecated", category=FutureWarning)
    from rliable import library, metrics  # heavy (scipy, arch): only when an aggregate is asked

    return library, metrics


def _rng(seed: int) -> np.random.RandomState:
    """The random state of one bootstrap. rliable 1.2.0's stratified bootstraps draw their
    indices from numpy's global generator and ignore the state they are given
    (`StratifiedBootstrap.update_indices`), so the global one is seeded too: every interval is
    then reproducible whatever ran before it."""
    np.random.seed(seed)
    return np.random.RandomState(seed)


def iqm(x: Sequence[float] | np.ndarray) -> float:
    """Interquartile mean (rliable: `scipy.stats.trim_mean` cutting 25% at each end, over all
    runs and tasks)."""
    v = np.asarray(x, np.float64)
    if v.size == 0:
        return float("nan")
    return float(rliable_modules()[1].aggregate_iqm(v))


def bootstrap_ci(
    x: Sequence[float],
    stat: Callable[[np.ndarray], float] = iqm,
    n_boot: int = REPS,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile (stratified) bootstrap interval of `stat` over resampled runs of one task."""
    v = np.asarray(x, np.float64)
    if v.size < 2:
        return (float("nan"), float("nan"))
    library, _ = rliable_modules()
    _, ci = library.get_interval_estimates(
        {"x": v[:, None]},
        lambda s: np.array([stat(s)]),
        reps=n_boot,
        confidence_interval_size=confidence,
        random_state=_rng(seed),
    )
    return float(ci["x"][0, 0]), float(ci["x"][1, 0])


def interval_estimates(
    scores: Mapping[str, np.ndarray],
    gamma: float = 100.0,
    reps: int = REPS,
    seed: int = 0,
) -> dict[str, dict[str, tuple[float, float, float]]]:
    """Per line: IQM, mean and optimality gap (below `gamma`, 100 = expert on the normalized
    scale) of its (runs x tasks) score matrix, each as (point, ci_lo, ci_hi)."""
    library, metrics = rliable_modules()
    names = ("iqm", "mean", "optimality_gap")

    def agg(s: np.ndarray) -> np.ndarray:
        return np.array(
            [
                metrics.aggregate_iqm(s),
                metrics.aggregate_mean(s),
                metrics.aggregate_optimality_gap(s, gamma),
            ]
        )

    data = {k: np.asarray(v, np.float64) for k, v in scores.items() if np.size(v)}
    point, ci = library.get_interval_estimates(
        data, agg, reps=reps, confidence_interval_size=CONFIDENCE, random_state=_rng(seed)
    )
    out = {}
    for k in data:
        out[k] = {
            n: (float(point[k][i]), float(ci[k][0, i]), float(ci[k][1, i]))
            for i, n in enumerate(names)
        }
    return out


def pairwise_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """rliable's `probability_of_improvement` (per task the Mann-Whitney U of X over Y divided
    by n m, averaged over tasks) computed for all tasks at once: rliable calls scipy once per
    task and bootstrap replicate, which made it most of `make bench`'s report time. Equal to
    the library's value (tested)."""
    gt = (x[:, None, :] > y[None, :, :]).mean(axis=(0, 1))
    ties = (x[:, None, :] == y[None, :, :]).mean(axis=(0, 1))
    return float(np.mean(gt + 0.5 * ties))


def improvement_probability(
    x: np.ndarray, y: np.ndarray, reps: int = REPS, seed: int = 0
) -> tuple[float, float, float]:
    """P(X > Y): the probability that a run of X beats a run of Y on the same task, averaged
    over tasks (Mann-Whitney U / (n m); ties count half), with a stratified independent
    bootstrap 95% CI. `x`, `y`: (runs x tasks) matrices with the same tasks."""
    library, _ = rliable_modules()
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    point, ci = library.get_interval_estimates(
        {"xy": (x, y)},
        pairwise_improvement,
        reps=reps,
        confidence_interval_size=CONFIDENCE,
        random_state=_rng(seed),
    )
    return float(point["xy"]), float(np.ravel(ci["xy"])[0]), float(np.ravel(ci["xy"])[1])


def performance_profiles(
    scores: Mapping[str, np.ndarray], taus: np.ndarray, reps: int = REPS, seed: int = 0
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Score distributions: per line, the fraction of runs (over all tasks) scoring above each
    tau, with stratified-bootstrap 95% bands (2 x len(taus))."""
    library, _ = rliable_modules()
    np.random.seed(seed)  # rliable's profile bootstrap takes no random state
    data = {k: np.asarray(v, np.float64) for k, v in scores.items() if np.size(v)}
    return library.create_performance_profile(data, taus, reps=reps)


PROFILE_REPS = 300  # a profile bootstraps every tau: fewer replications keep it to seconds


# ---------------------------------------------------------------- rows -> matrices and groups
def is_diverged(row: Mapping[str, Any]) -> bool:
    v = row.get("diverged_step")
    return v is not None and v != "" and not (isinstance(v, float) and np.isnan(v))


def split_diverged(rows: Sequence[dict[str, Any]]) -> tuple[list[dict], list[dict]]:
    """(kept, diverged) rows."""
    kept = [r for r in rows if not is_diverged(r)]
    return kept, [r for r in rows if is_diverged(r)]


def diverged_note(n_diverged: int, n_total: int) -> str:
    if not n_diverged:
        return ""
    return f"{n_diverged} of {n_total} runs diverged, excluded from the aggregates.\n"


def score_matrices(
    rows: Sequence[dict[str, Any]], line: str, task_keys: Sequence[str], metric: str
) -> dict[str, np.ndarray]:
    """Per value of `line`: a (runs x tasks) matrix of `metric`, one column per distinct
    `task_keys` combination. Columns with fewer finite runs than others are cut to the smallest
    count (rliable needs a full matrix); lines missing a task are left out of that task."""
    tasks = sorted({tuple(r.get(k) for k in task_keys) for r in rows}, key=str)
    out = {}
    for name in dict.fromkeys(r[line] for r in rows):
        cols = []
        for t in tasks:
            vals = [
                r.get(metric)
                for r in rows
                if r[line] == name and tuple(r.get(k) for k in task_keys) == t
            ]
            vals = [float(v) for v in vals if v is not None and np.isfinite(float(v))]
            if vals:
                cols.append(vals)
        if cols:
            n = min(len(c) for c in cols)
            out[name] = np.array([c[:n] for c in cols], np.float64).T
    return out


def mean_ci(v: np.ndarray, reps: int = 1000) -> tuple[float, float]:
    """95% CI of the mean of one group's values (rliable's bootstrap over runs)."""
    if v.size < 2:
        return float("nan"), float("nan")
    library, _ = rliable_modules()
    _, ci = library.get_interval_estimates(
        {"x": v[:, None]},
        lambda s: np.array([np.mean(s)]),
        reps=reps,
        confidence_interval_size=CONFIDENCE,
        random_state=_rng(0),
    )
    return float(ci["x"][0, 0]), float(ci["x"][1, 0])


def group_stats(
    rows: Sequence[dict[str, Any]], by: Sequence[str], metrics: Sequence[str]
) -> list[dict[str, Any]]:
    """For each group of rows sharing the `by` keys: n, and per metric mean, std, IQM and the
    stratified-bootstrap 95% CI of the mean (`_ci_lo/_ci_hi`). Non-finite values are skipped."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(r.get(k) for k in by), []).append(r)
    out = []
    for key, members in groups.items():
        g: dict[str, Any] = dict(zip(by, key, strict=True)) | {"n": len(members)}
        for m in metrics:
            vals = np.array([r[m] for r in members if r.get(m) is not None], np.float64)
            vals = vals[np.isfinite(vals)]
            if vals.size == 0:
                continue
            g[f"{m}_mean"] = float(vals.mean())
            g[f"{m}_std"] = float(vals.std(ddof=1)) if vals.size > 1 else 0.0
            g[f"{m}_iqm"] = iqm(vals)
            g[f"{m}_ci_lo"], g[f"{m}_ci_hi"] = mean_ci(vals)
        out.append(g)
    return out
