"""Learning-curve plots (matplotlib, written headless to PNG)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxo2o.report.aggregate import mean_ci

BANDS = ("std", "ci")


def score_bands(
    curves: Sequence[dict[str, Any]], label_keys: Sequence[str], band: str = "std"
) -> tuple[int, dict[str, tuple[np.ndarray, ...]]]:
    """Per line (distinct `label_keys`): x (offline steps, then online steps after them), the
    mean score over runs and a band: +- one standard deviation ("std") or the stratified-
    bootstrap 95% CI of the mean ("ci", rliable over the runs at each point). Returns the
    offline length (where the switch is) and {label: (x, mean, low, high)}."""
    if band not in BANDS:
        raise ValueError(f"band: {band!r} is not one of {BANDS}")

    offline_len = max((c["step"] for c in curves if c["phase"] == "offline"), default=0)
    points: dict[str, dict[float, list[float]]] = {}
    for c in curves:
        label = " ".join(str(c[k]) for k in label_keys)
        x = c["step"] + (offline_len if c["phase"] == "online" else 0)
        points.setdefault(label, {}).setdefault(x, []).append(c["score"])
    out = {}
    for label, pts in sorted(points.items()):
        xs = np.array(sorted(pts))
        vals = [np.asarray(pts[x], np.float64) for x in xs]
        mean = np.array([v.mean() for v in vals])
        if band == "std":
            std = np.array([v.std() for v in vals])
            lo, hi = mean - std, mean + std
        else:
            lo, hi = np.array([mean_ci(v) if np.ptp(v) > 0 else (v[0], v[0]) for v in vals]).T
        out[label] = (xs, mean, lo, hi)
    return offline_len, out


def plot_curves(
    curves: Sequence[dict[str, Any]],
    path: str | Path,
    title: str,
    label_keys: Sequence[str],
    band: str = "std",
) -> None:
    """Mean score over runs against step, offline then online on one axis, with a band
    (`score_bands`: +- one std, or the 95% CI of the mean); the switch marked; one line per
    distinct `label_keys` combination. Runs evaluated at the switch appear at both its offline
    and online points, which share one x."""
    plt = pyplot()

    offline_len, lines = score_bands(curves, label_keys, band)
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, (xs, mean, lo, hi) in lines.items():
        ax.plot(xs, mean, label=label)
        ax.fill_between(xs, lo, hi, alpha=0.2)
    if offline_len:
        ax.axvline(offline_len, color="k", lw=0.8, ls="--")
        ax.text(offline_len, ax.get_ylim()[1], " online", va="top", fontsize=8)
    ax.set_xlabel("offline gradient steps, then online environment steps")
    ax.set_ylabel("normalized score")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(path).with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def _save(fig: Any, path: str | Path) -> None:
    plt = pyplot()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(path).with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)


def pyplot() -> Any:
    """`matplotlib.pyplot` on the file-only Agg backend, imported when a figure is first drawn:
    the import costs over a second, which a run that writes no figure should not pay."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _agg():
    pyplot()  # the backend first
    from rliable import plot_utils  # heavy (scipy, arch): only when rliable draws

    return plot_utils


def plot_interval_estimates(
    estimates: dict[str, dict[str, tuple[float, float, float]]], path: str | Path, xlabel: str
) -> None:
    """IQM, mean and optimality gap per line with their 95% CIs (rliable's layout)."""
    plot_utils = _agg()
    names = ["iqm", "mean", "optimality_gap"]
    lines = list(estimates)
    point = {k: np.array([estimates[k][n][0] for n in names]) for k in lines}
    ci = {k: np.array([[estimates[k][n][1] for n in names], [estimates[k][n][2] for n in names]])
          for k in lines}  # fmt: skip
    fig, _ = plot_utils.plot_interval_estimates(
        point, ci, metric_names=["IQM", "Mean", "Optimality gap"], algorithms=lines,
        xlabel=xlabel, xlabel_y_coordinate=-0.3 if len(lines) < 3 else -0.1,
    )  # fmt: skip
    _save(fig, path)


def plot_improvement(probs: dict[tuple[str, str], tuple[float, float, float]], path: str | Path):
    """P(X > Y) with 95% CIs, one bar per (X, Y) pair."""
    plt = pyplot()
    plot_utils = _agg()
    point = {f"{x},{y}": np.array([p[0]]) for (x, y), p in probs.items()}
    ci = {f"{x},{y}": np.array([[p[1]], [p[2]]]) for (x, y), p in probs.items()}
    fig, ax = plt.subplots(figsize=(4.5, 0.6 + 0.5 * len(point)))
    plot_utils.plot_probability_of_improvement(point, ci, ax=ax)
    _save(fig, path)


def plot_profiles(
    profiles: dict[str, np.ndarray], cis: dict[str, np.ndarray], taus: np.ndarray, path
) -> None:
    """Performance profiles (fraction of runs above each score) with 95% bands."""
    plt = pyplot()
    plot_utils = _agg()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    plot_utils.plot_performance_profiles(profiles, taus, performance_profile_cis=cis, ax=ax)
    ax.legend(list(profiles), fontsize=7)
    _save(fig, path)
