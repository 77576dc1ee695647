"""Test the seed papers' claims on a bench run's results, with stratified-bootstrap 95% CIs.

    python -m benchmarks.claims --root results/famo2o-aca/quick [--study results/famo2o-study]

Each claim compares two lines on the datasets both ran (a "task" = task x dataset kind):
- the effect: mean over tasks of (mean of X's runs - mean of Y's runs), with a stratified
  bootstrap CI (runs resampled within each task, rliable's `get_interval_estimates`);
- P(X > Y): rliable's probability of improvement (Mann-Whitney per task, averaged), with its CI.
Verdict: "shown" when the effect's CI lies above 0 and P(X > Y)'s above 0.5; "not shown" when
the effect's CI lies at or below 0; "inconclusive" otherwise. A study folder adds FamO2O's
coefficient claim (does beta vary with the state?).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tyro

from jaxo2o.report.aggregate import CONFIDENCE, REPS, _rly, _rng, improvement_probability
from jaxo2o.report.files import atomic_write_text, read_csv


@dataclass(frozen=True)
class Claim:
    paper: str
    text: str
    x: str  # the line that should win
    y: str
    metric: str  # a runs.csv column, or "drop" = online_dip - offline_final


CLAIMS = (
    Claim("FamO2O", "final score above IQL's (same buffer, budgets)", "famo2o", "iql-union",
          "online_final"),
    Claim("FamO2O", "(not a paper claim) the released code's broadcast weights change the score",
          "famo2o-official", "famo2o", "online_final"),
    Claim("ACA", "no collapse where direct fine-tuning collapses: smaller drop from the offline "
          "score to the dip", "aca", "sac-direct", "drop"),
    Claim("ACA", "final score above direct fine-tuning's", "aca", "sac-direct", "online_final"),
)  # fmt: skip


@dataclass(frozen=True)
class ClaimsArgs:
    root: str = "results/famo2o-aca/quick"  # a bench tier folder (runs/<task>/<kind>/<label>/)
    study: str = "results/famo2o-study"  # FamO2O study folders (<task>-<kind>/coefficient.csv)
    out: str = ""  # default: <root>/claims.md


def load_rows(root: Path, study: Path) -> list[dict]:
    """The bench's runs, and the FamO2O study's (its `per_sample` runs are the suite's famo2o
    line, same settings; `official_broadcast` becomes the line "famo2o-official") on datasets
    the bench has no famo2o run of."""
    rows = []
    for f in sorted(root.glob("runs/*/*/*/runs.csv")):
        task, kind, label = f.parts[-4:-1]
        rows += [r | {"task": task, "kind": kind, "label": label} for r in read_csv(f)]
    have = {(r["task"], r["kind"]) for r in rows if r["label"] == "famo2o"}
    for f in sorted(study.glob("*/*/runs.csv")):
        task, kind = f.parts[-3].rsplit("-", 1)
        label = {"per_sample": "famo2o", "official_broadcast": "famo2o-official"}[f.parts[-2]]
        if label == "famo2o" and (task, kind) in have:
            continue
        rows += [r | {"task": task, "kind": kind, "label": label} for r in read_csv(f)]
    return rows


def metric_of(row: dict, metric: str) -> float:
    if metric == "drop":
        return float(row["online_dip"]) - float(row["offline_final"])
    return float(row[metric])


def paired_matrices(rows, x: str, y: str, metric: str):
    tasks = sorted(
        {(r["task"], r["kind"]) for r in rows if r["label"] == x}
        & {(r["task"], r["kind"]) for r in rows if r["label"] == y}
    )

    def matrix(label):
        cols = [
            [
                metric_of(r, metric)
                for r in rows
                if r["label"] == label and (r["task"], r["kind"]) == t
            ]
            for t in tasks
        ]
        n = min(len(c) for c in cols)
        return np.array([c[:n] for c in cols]).T

    return tasks, (matrix(x), matrix(y)) if tasks else (None, None)


def effect_ci(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    library, _ = _rly()
    point, ci = library.get_interval_estimates(
        {"xy": (x, y)},
        lambda a, b: np.mean(a.mean(0) - b.mean(0)),
        reps=REPS,
        confidence_interval_size=CONFIDENCE,
        random_state=_rng(0),
    )
    return float(point["xy"]), float(np.ravel(ci["xy"])[0]), float(np.ravel(ci["xy"])[1])


def verdict(effect: tuple, poi: tuple) -> str:
    if effect[1] > 0 and poi[1] > 0.5:
        return "shown"
    if effect[2] <= 0:
        return "not shown"
    return "inconclusive"


def coefficient_rows(study: Path) -> list[str]:
    lines = []
    for f in sorted(study.glob("*/coefficient.csv")):
        rows = [r for r in read_csv(f) if r["mode"] == "per_sample"]
        if not rows:
            continue
        spread = np.array([float(r["beta_p95"]) - float(r["beta_p5"]) for r in rows])
        sd = np.array([float(r["beta_std_over_states"]) for r in rows])
        mean_ci = _rly()[0].get_interval_estimates(
            {"s": spread[:, None]}, lambda s: np.array([s.mean()]), reps=REPS,
            random_state=_rng(0),
        )[1]["s"][:, 0]  # fmt: skip
        shown = "shown" if mean_ci[0] > 0.5 else "not shown"
        lines.append(
            f"| FamO2O | the chosen coefficient varies with the state ({f.parent.name}, "
            f"per-sample weights) | beta 5-95% spread over dataset states {spread.mean():.2f} "
            f"[{mean_ci[0]:.2f}, {mean_ci[1]:.2f}], std {sd.mean():.2f} (range width 6 on mazes) "
            f"| – | {len(rows)} seeds | {shown} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    args = tyro.cli(ClaimsArgs, args=argv, description=__doc__)
    root = Path(args.root)
    rows = load_rows(root, Path(args.study))
    if not rows:
        print(f"error: {root}: no runs/<task>/<kind>/<label>/runs.csv found", file=sys.stderr)
        return 2
    lines = [
        "| paper | claim | effect X - Y, mean over tasks [95% CI] | P(X > Y) [95% CI] "
        "| tasks (runs each) | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for c in CLAIMS:
        tasks, (x, y) = paired_matrices(rows, c.x, c.y, c.metric)
        if not tasks:
            lines.append(f"| {c.paper} | {c.text} | no runs of both lines | | | not tested |")
            continue
        eff = effect_ci(x, y)
        poi = improvement_probability(x, y)
        names = ", ".join(f"{t}/{k}" for t, k in tasks)
        lines.append(
            f"| {c.paper} | {c.text} ({c.x} vs {c.y}, {c.metric}) | {eff[0]:.1f} "
            f"[{eff[1]:.1f}, {eff[2]:.1f}] | {poi[0]:.2f} [{poi[1]:.2f}, {poi[2]:.2f}] | "
            f"{names} ({x.shape[0]}) | {verdict(eff, poi)} |"
        )
    lines += coefficient_rows(Path(args.study))
    text = (
        "# The seed papers' claims on this run\n\n"
        f"From `{root}` (every finished experiment) and `{args.study}`. Stratified-bootstrap 95% "
        f"CIs ({REPS} replications, runs resampled within each task; rliable). Verdict: shown when "
        "the effect's CI is above 0 and P(X > Y)'s above 0.5; not shown when the effect's CI is "
        "at or below 0; inconclusive otherwise. 'drop' = dip - end-of-offline score (higher = "
        "smaller drop).\n\n" + "\n".join(lines) + "\n"
    )
    out = Path(args.out) if args.out else root / "claims.md"
    atomic_write_text(out, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
