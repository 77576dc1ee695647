"""Where each line's critic stands when fine-tuning starts: mean Q at the end of the offline phase.

    python -m benchmarks.offline_q local-results/quick --budgets results/quick-budgets/reach.csv

For every distinct offline phase of a bench run (`benchmarks.budget_study.PHASES`: IQL, which
iql-direct, iql-union and PEX share; AWAC; FamO2O; SAC+ML, which ACA and sac-direct share; and
the CQL family's three: CQL, Cal-QL, and WSRL's, which wsrl-no-warmup shares) it reads the
bench's `curves.csv` and reports, mean over seeds:
- the critic's mean Q on the training batches at the last offline evaluation;
- its relative change over the last quarter of the offline phase (a critic at its fixed point
  changes by a few percent at most; one still climbing changes by much more);
- where the budget study measured the phase's plateau on the same dataset (`--budgets`, its
  `reach.csv`; 100k steps), the end value as a share of that plateau.
Writes `<root>/offline_q.md` and prints it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tyro

from benchmarks.budget_study import PHASES, offline_matrix
from jaxo2o.cli import parse_or_exit
from jaxo2o.report.files import atomic_write_text, read_csv


@dataclass(frozen=True)
class OfflineQArgs:
    root: tyro.conf.Positional[str]  # a bench run's folder, e.g. local-results/quick
    budgets: str = "results/quick-budgets/reach.csv"  # the budget study's plateaus ("" = none)


# offline phases without a budget-study plateau: the CQL family's (shorter in the quick tier)
CQL_FAMILY_PHASES = {"cql": "cql", "calql": "calql", "wsrl": "wsrl"}


def offline_q(curves: list[dict], label: str, task: str, kind: str) -> dict | None:
    """Mean Q over seeds at each offline evaluation of one line on one dataset: the end value
    (with its seed std) and its relative change over the last quarter of the phase."""
    rows = [c for c in curves if c["label"] == label and c["task"] == task and c["kind"] == kind]
    steps, q = offline_matrix(rows, "q_mean")
    if not steps.size:
        return None
    end = q[:, -1]
    earlier = max(int(np.searchsorted(steps, 0.75 * steps[-1], side="right")) - 1, 0)
    ref = q[:, earlier].mean()
    return {
        "steps": int(steps[-1]),
        "q_end": float(end.mean()),
        "q_end_std": float(end.std(ddof=1)) if end.size > 1 else 0.0,
        "from_step": int(steps[earlier]),
        "last_quarter_change": float(end.mean() / ref - 1.0) if ref else float("nan"),
    }


def table(curves: list[dict], plateaus: dict[tuple[str, str, str], float]) -> str:
    lines = [
        "| task | dataset | offline phase (line) | steps | mean Q at the end (seed std) "
        "| change over the last quarter | plateau (budget study) | end / plateau |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for task, kind in dict.fromkeys((c["task"], c["kind"]) for c in curves):
        for phase, label in {**PHASES, **CQL_FAMILY_PHASES}.items():
            r = offline_q(curves, label, task, kind)
            if r is None:
                continue
            plateau = plateaus.get((task, kind, phase))
            share = f"{r['q_end'] / plateau:.0%}" if plateau else "-"
            lines.append(
                f"| {task} | {kind} | {phase} ({label}) | {r['steps']} | {r['q_end']:.3g} "
                f"({r['q_end_std']:.2g}) | {r['last_quarter_change']:+.1%} from "
                f"{r['from_step']} | {f'{plateau:.3g}' if plateau else '-'} | {share} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_or_exit(OfflineQArgs, argv, __doc__)  # bad input: one line, exit 2
    root = Path(args.root)
    if not (root / "curves.csv").exists():
        print(f"error: {root}/curves.csv not found: not a bench run's folder", file=sys.stderr)
        return 2
    plateaus = {}
    if args.budgets:
        if not Path(args.budgets).exists():
            print(f"error: --budgets: {args.budgets} not found", file=sys.stderr)
            return 2
        plateaus = {(r["task"], r["kind"], r["phase"]): float(r["plateau_q"])
                    for r in read_csv(Path(args.budgets))}  # fmt: skip
    text = (
        "# Mean Q at the end of the offline phase\n\nWritten by `python -m benchmarks.offline_q`"
        " from this folder's curves.csv; mean over seeds. The plateau is the budget study's "
        f"(`{args.budgets}`, 100k offline steps) where it measured the same dataset.\n\n"
        + table(read_csv(root / "curves.csv"), plateaus)
    )
    atomic_write_text(root / "offline_q.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
