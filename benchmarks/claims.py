"""Test the seed papers' claims on a bench run's results, with stratified-bootstrap 95% CIs.

    python -m benchmarks.claims --root results/quick [--study results/famo2o-study]

`make bench` writes `<root>/claims.md` with it at the end of every run.

Each claim compares two lines on the datasets both ran (a "task" = task x dataset kind):
- the effect: mean over tasks of (mean of X's runs - mean of Y's runs), with a stratified
  bootstrap CI (runs resampled within each task, rliable's `get_interval_estimates`);
- P(X > Y): rliable's probability of improvement (Mann-Whitney per task, averaged), with its CI.
Verdict: "shown" when the effect's CI lies above 0 and P(X > Y)'s above 0.5; "not shown" when
the effect's CI lies at or below 0; "inconclusive" otherwise.

Lines made for the claims: "bc" and "iql-offline" (the offline table's two halves), and PEX's
offline-action share in the first online interval after its warm-up ("pex-share-early") and in
the last ("pex-share-late"), from `act.csv`. FamO2O's coefficient claim (does beta vary with the
state?) reads `coefficient.csv` of the bench's famo2o lines and of FamO2O study folders: shown
when the 95% CI of beta's 5-95% spread over the dataset's states lies above a tenth of the
coefficient's range.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.aca_schedule import schedule_note
from benchmarks.claims_power import power_cell
from jaxo2o.cli import parse_or_exit
from jaxo2o.report.aggregate import CONFIDENCE, REPS, _rng, improvement_probability, rliable_modules
from jaxo2o.report.files import atomic_write_text, read_csv


@dataclass(frozen=True)
class Claim:
    paper: str
    text: str
    x: str  # the line that should win
    y: str
    metric: str  # a runs.csv column, or "drop" = online_dip - offline_final


CLAIMS = (
    Claim("PEX", "no dip where direct fine-tuning dips: smaller drop from the offline score to "
          "the dip", "pex", "iql-direct", "drop"),
    Claim("PEX", "final score above direct fine-tuning's", "pex", "iql-direct", "online_final"),
    Claim("PEX", "the offline policy's share of executed actions falls (first interval after "
          "warm-up vs last)", "pex-share-early", "pex-share-late", "share"),
    Claim("IQL", "beats behaviour cloning offline", "iql-offline", "bc", "offline_final"),
    Claim("FamO2O", "final score above IQL's (same buffer, budgets)", "famo2o", "iql-union",
          "online_final"),
    Claim("FamO2O", "(not a paper claim) the released code's broadcast weights change the score",
          "famo2o-official", "famo2o", "online_final"),
    Claim("ACA", "no collapse where direct fine-tuning collapses: smaller drop from the offline "
          "score to the dip", "aca", "sac-direct", "drop"),
    Claim("ACA", "final score above direct fine-tuning's", "aca", "sac-direct", "online_final"),
    Claim("ACA", "no collapse (w schedule scaled to the run): smaller drop than direct "
          "fine-tuning's", "aca-scaled", "sac-direct", "drop"),
    Claim("ACA", "final score above direct fine-tuning's (w schedule scaled to the run)",
          "aca-scaled", "sac-direct", "online_final"),
    Claim("Cal-QL", "a smaller dip than CQL's: smaller drop from the offline score to the dip",
          "calql", "cql", "drop"),
    Claim("Cal-QL", "final score above CQL's", "calql", "cql", "online_final"),
    Claim("RLPD", "SAC with the offline data in every batch beats SAC from scratch",
          "rlpd", "sac-scratch", "online_final"),
    Claim("WSRL", "no collapse without the offline data where fine-tuning without the warm-up "
          "collapses: smaller drop from the offline score to the dip", "wsrl", "wsrl-no-warmup",
          "drop"),
    Claim("WSRL", "final score above fine-tuning without the warm-up", "wsrl", "wsrl-no-warmup",
          "online_final"),
)  # fmt: skip


@dataclass(frozen=True)
class ClaimsArgs:
    root: str = "results/quick"  # a bench tier folder (runs/<task>/<kind>/<label>/)
    study: str = "results/famo2o-study"  # FamO2O study folders (<task>-<kind>/coefficient.csv)
    out: str = ""  # default: <root>/claims.md


def load_rows(root: Path, study: Path) -> list[dict]:
    """The bench's runs, and the FamO2O study's (its `per_sample` runs are the suite's famo2o
    line, same settings; `official_broadcast` becomes the line "famo2o-official") on datasets
    the bench has no famo2o run of."""
    rows = []
    for f in sorted(root.glob("runs/*/*/*/runs.csv")):
        task, kind, label = f.parts[-4:-1]
        for r in read_csv(f):
            if label == "offline":  # the offline table: BC is inverse temperature 0
                label_r = "bc" if float(r["inverse_temperature"]) == 0 else "iql-offline"
                rows.append(r | {"task": task, "kind": kind, "label": label_r})
            else:
                rows.append(r | {"task": task, "kind": kind, "label": label})
    rows += share_rows(root)
    have = {(r["task"], r["kind"]) for r in rows if r["label"] == "famo2o"}
    for f in sorted(study.glob("*/*/runs.csv")):
        task, kind = f.parts[-3].rsplit("-", 1)
        label = {"per_sample": "famo2o", "official_broadcast": "famo2o-official"}[f.parts[-2]]
        if label == "famo2o" and (task, kind) in have:
            continue
        rows += [r | {"task": task, "kind": kind, "label": label} for r in read_csv(f)]
    return rows


def share_rows(root: Path) -> list[dict]:
    """PEX's offline-action share per run: in the first online interval that ends after its
    warm-up ("pex-share-early") and in the last interval ("pex-share-late")."""

    rows = []
    for f in sorted(root.glob("runs/*/*/pex/act.csv")):
        task, kind = f.parts[-4:-2]
        meta = json.loads((f.parent / "meta.json").read_text())
        warmup = meta["experiment"]["run"]["warmup_steps"]
        act = read_csv(f)
        for seed in sorted({a["seed"] for a in act}):
            mine = sorted((a for a in act if a["seed"] == seed), key=lambda a: a["interval_end"])
            early = next((a for a in mine if a["interval_end"] > warmup), None)
            if early is None or early is mine[-1]:
                continue
            base = {"task": task, "kind": kind, "seed": seed}
            rows.append(base | {"label": "pex-share-early", "share": early["offline_fraction"]})
            rows.append(base | {"label": "pex-share-late", "share": mine[-1]["offline_fraction"]})
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
    library, _ = rliable_modules()
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


def coefficient_rows(folders: list[Path]) -> list[str]:
    """One claims row per dataset with FamO2O coefficient spreads (per-sample weight mode)."""
    lines = []
    for f in folders:
        rows = [r for r in read_csv(f) if r["mode"] == "per_sample"]
        if not rows:
            continue
        where = "/".join(f.parts[-4:-2]) if f.parent.name == "famo2o" else f.parent.name
        spread = np.array([float(r["beta_p95"]) - float(r["beta_p5"]) for r in rows])
        sd = np.array([float(r["beta_std_over_states"]) for r in rows])
        width = float(rows[0].get("beta_max", 14.0)) - float(rows[0].get("beta_min", 8.0))
        mean_ci = rliable_modules()[0].get_interval_estimates(
            {"s": spread[:, None]}, lambda s: np.array([s.mean()]), reps=REPS,
            random_state=_rng(0),
        )[1]["s"][:, 0]  # fmt: skip
        shown = "shown" if mean_ci[0] > 0.1 * width else "not shown"
        lines.append(
            f"| FamO2O | the chosen coefficient varies with the state ({where}, per-sample "
            f"weights) | beta 5-95% spread over dataset states {spread.mean():.2f} "
            f"[{mean_ci[0]:.2f}, {mean_ci[1]:.2f}] of a range {width:g} wide, std "
            f"{sd.mean():.2f} | – | {len(rows)} seeds | {shown} | – |"
        )
    return lines


def write_claims(root: Path, study: Path | None = None, out: Path | None = None) -> str:
    """Write `<root>/claims.md` (or `out`) and return its text ("" when there are no runs)."""
    study = study if study is not None else root / "no-study"
    rows = load_rows(root, study)
    if not rows:
        return ""
    lines = [
        "| paper | claim | effect X - Y, mean over tasks [95% CI] | P(X > Y) [95% CI] "
        "| tasks (runs each) | verdict | runs per task to decide |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in CLAIMS:
        tasks, (x, y) = paired_matrices(rows, c.x, c.y, c.metric)
        if not tasks:
            lines.append(f"| {c.paper} | {c.text} | no runs of both lines | | | not tested | |")
            continue
        eff = effect_ci(x, y)
        poi = improvement_probability(x, y)
        names = ", ".join(f"{t}/{k}" for t, k in tasks)
        said = verdict(eff, poi)
        power = power_cell(eff, poi, x.shape[0]) if said == "inconclusive" else "–"
        lines.append(
            f"| {c.paper} | {c.text} ({c.x} vs {c.y}, {c.metric}) | {eff[0]:.2f} "
            f"[{eff[1]:.2f}, {eff[2]:.2f}] | {poi[0]:.2f} [{poi[1]:.2f}, {poi[2]:.2f}] | "
            f"{names} ({x.shape[0]}) | {said} | {power} |"
        )
    coefficient_files = sorted(root.glob("runs/*/*/famo2o/coefficient.csv"))
    coefficient_files += sorted(study.glob("*/coefficient.csv"))
    lines += coefficient_rows(coefficient_files)
    text = (
        "# The seed papers' claims on this run\n\n"
        f"From `{root}` (every finished experiment)"
        + (f" and `{study}`" if study.exists() else "")
        + f". Stratified-bootstrap 95% CIs ({REPS} replications, runs resampled within each "
        "task; rliable). Verdict: shown when the effect's CI is above 0 and P(X > Y)'s above "
        "0.5; not shown when the effect's CI is at or below 0; inconclusive otherwise. 'drop' = "
        "dip - end-of-offline score (higher = smaller drop); 'share' = PEX's share of actions "
        "from its offline policy. *Runs per task to decide* (inconclusive claims): how many seeds "
        "per task a rerun needs for the effect's CI to exclude 0 (and, for 'shown', P(X > Y)'s "
        "to exclude 0.5) if the point estimate and the seeds' spread stay as observed: the "
        "bootstrap CI's half-width d toward the boundary shrinks as 1/sqrt(n), so n (d / "
        "|point - boundary|)^2 runs (`benchmarks/claims_power.py`); a lower bound, as a "
        "percentile bootstrap over 4 seeds is narrower than their true spread.\n\n"
        + "\n".join(lines)
        + "\n"
    )
    note = schedule_note(root)
    text += f"\n{note}" if note else ""
    atomic_write_text(out or root / "claims.md", text)
    return text


def main(argv: list[str] | None = None) -> int:
    args = parse_or_exit(ClaimsArgs, argv, __doc__)  # bad input: one line, exit 2
    root = Path(args.root)
    text = write_claims(root, Path(args.study), Path(args.out) if args.out else None)
    if not text:
        print(f"error: {root}: no runs/<task>/<kind>/<label>/runs.csv found", file=sys.stderr)
        return 2
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
