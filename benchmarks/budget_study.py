"""How long must the quick tier's offline phase be? Mean Q against offline steps, per method.

    python -m benchmarks.budget_study --tier quick --tasks inverted_double_pendulum \\
        --kinds medium medium-replay --steps 100000 --out results/quick-budgets

For every dataset and every distinct offline phase of the suite (IQL, which iql-direct, PEX and
iql-union share; AWAC; FamO2O; ACA's SAC+ML, which sac-direct shares), run the suite's exact
settings offline only for `--steps` gradient steps and record, per evaluation interval, the
critic's mean Q on the training batches (`q_mean`) and the normalized score.

The fixed point is estimated from the run itself: the mean Q over the last `--tail` of the steps
(per seed, then averaged). A phase has *reached* it at the first evaluation from which every
later interval's mean Q (mean over seeds) stays within `--tolerance` of it. Writes
`<out>/<task>-<kind>.png` (mean Q and score against steps, the plateau and the reach step
marked), `reach.csv` and `summary.md`, and each phase's sweep files under `<out>/runs/`.
The plateau of a run that has not flattened by its end is no fixed point: the table says so
("not reached") rather than picking a budget.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.run import experiment_for
from benchmarks.suite import SUITES, domain_of
from jaxo2o.cli import parse_or_exit
from jaxo2o.config import EnvConfig
from jaxo2o.core.runner import enable_compilation_cache
from jaxo2o.data import dataset_id
from jaxo2o.data.tiers import TIERS
from jaxo2o.experiment.lines import Line
from jaxo2o.experiment.runner import RunnerOptions, run_lines
from jaxo2o.report.files import atomic_write_text, read_csv, write_csv
from jaxo2o.report.plots import pyplot

# one suite line per distinct offline phase (the others restore it: core.shared_offline)
PHASES = {"iql": "iql-direct", "awac": "awac-direct", "famo2o": "famo2o", "aca": "aca"}


@dataclass(frozen=True)
class StudyArgs:
    tier: str = "quick"
    tasks: tuple[str, ...] = ("inverted_double_pendulum",)
    kinds: tuple[str, ...] = ("medium", "medium-replay")
    phases: tuple[str, ...] = tuple(PHASES)  # of iql, awac, famo2o, aca
    steps: int = 100_000  # offline gradient steps of each run
    eval_every: int = 2_500  # steps between evaluations (and mean-Q intervals)
    tail: float = 0.2  # share of the run at its end whose mean Q estimates the fixed point
    tolerance: float = 0.05  # relative distance to the plateau that counts as reached
    out: str = "results/quick-budgets"


def reach_step(steps: np.ndarray, q: np.ndarray, plateau: float, tol: float) -> int | None:
    """The first step from which every later value of `q` lies within `tol` (relative) of
    `plateau`; None when even the last one does not."""
    inside = np.abs(q - plateau) <= tol * max(abs(plateau), 1e-8)
    if not inside[-1]:
        return None
    outside = np.flatnonzero(~inside)
    first = 0 if outside.size == 0 else int(outside[-1]) + 1
    return int(steps[first])


def offline_matrix(rows: list[dict], name: str) -> tuple[np.ndarray, np.ndarray]:
    """The offline evaluations of `rows` (one line on one dataset) that record mean Q:
    (steps, values of `name` as a seeds x steps array)."""
    off = [c for c in rows if c["phase"] == "offline" and c.get("q_mean") is not None]
    seeds = sorted({c["seed"] for c in off})
    steps = np.array(sorted({c["step"] for c in off}))
    values = np.array([[next(c[name] for c in off if c["seed"] == s and c["step"] == t)
                        for t in steps] for s in seeds])  # fmt: skip
    return steps, values


def analyse(curves: list[dict], steps_total: int, tail: float, tol: float) -> dict:
    """Plateau (mean Q over the last `tail` of the run, mean over seeds), its spread over seeds,
    the reach step, and the score at the reach step and at the end."""
    steps, q = offline_matrix(curves, "q_mean")
    score = offline_matrix(curves, "score")[1]
    last = steps >= steps_total * (1 - tail)
    per_seed = q[:, last].mean(axis=1)
    plateau = float(per_seed.mean())
    reach = reach_step(steps, q.mean(axis=0), plateau, tol)
    at = lambda t: float(score[:, list(steps).index(t)].mean()) if t is not None else None
    return {
        "plateau_q": plateau,
        "plateau_q_seed_std": float(per_seed.std(ddof=1)) if q.shape[0] > 1 else 0.0,
        "reach_step": reach,
        "score_at_reach": at(reach),
        "score_at_end": at(int(steps[-1])),
        "q_at_10k": float(q[:, list(steps).index(10_000)].mean()) if 10_000 in steps else None,
        "steps": steps,
        "q": q,
        "score": score,
    }


def plot(results: dict[str, dict], path: Path, title: str, tol: float) -> None:
    plt = pyplot()

    fig, (ax_q, ax_s) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (phase, r) in enumerate(results.items()):
        color = f"C{i}"
        scale = abs(r["plateau_q"]) or 1.0  # each method's Q on its own reward scale
        qn = r["q"] / scale
        ax_q.plot(r["steps"], qn.mean(0), color=color, label=phase)
        ax_q.fill_between(r["steps"], qn.min(0), qn.max(0), color=color, alpha=0.15)
        if r["reach_step"] is not None:
            ax_q.axvline(r["reach_step"], color=color, ls=":", lw=1)
        ax_s.plot(r["steps"], r["score"].mean(0), color=color, label=phase)
        ax_s.fill_between(r["steps"], r["score"].min(0), r["score"].max(0), color=color, alpha=0.15)
    ax_q.axhspan(1 - tol, 1 + tol, color="k", alpha=0.08)
    ax_q.axhline(1.0, color="k", lw=0.8)
    ax_q.set_ylabel("mean Q / its plateau (seeds' range shaded)")
    ax_s.set_ylabel("normalized score (seeds' range shaded)")
    for ax in (ax_q, ax_s):
        ax.set_xlabel("offline gradient steps")
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = parse_or_exit(StudyArgs, argv, __doc__)  # bad input: one line, exit 2
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        print(f"error: phases: unknown {sorted(unknown)}; choose from {tuple(PHASES)}",
              file=sys.stderr)  # fmt: skip
        return 2
    enable_compilation_cache()
    suite, tier = SUITES[args.tier], TIERS[args.tier]
    specs = {s.label: s for s in suite.methods}
    out = Path(args.out)
    table, lines = [], []
    for name in args.tasks:
        t = tier.task(name)
        domain = domain_of(t)
        env = EnvConfig(task=t.task, backend=t.backend, episode_length=t.episode_length)
        for kind in args.kinds:
            ds_id = dataset_id(t.task, kind, args.tier)
            for phase in args.phases:
                exp = experiment_for(suite, specs[PHASES[phase]], env, ds_id, kind, domain)
                run = dataclasses.replace(
                    exp.run, offline_steps=args.steps, offline_eval_every=args.eval_every,
                    online_steps=0, warmup_steps=0, protocol="direct", seed_episodes=0,
                )  # fmt: skip
                lines.append(Line(phase, t.task, kind, dataclasses.replace(exp, run=run)))
    options = RunnerOptions(replace_other=True, checkpoint_every=0, offline_cache="")
    results: dict[tuple[str, str], dict] = {}
    for job, _ in run_lines(lines, out / "runs", options):
        line = job.line
        r = analyse(read_csv(job.folder / "curves.csv"), args.steps, args.tail, args.tolerance)
        results.setdefault((line.task, line.kind), {})[line.label] = r
        table.append(
            {"task": line.task, "kind": line.kind, "phase": line.label}
            | {k: v for k, v in r.items() if k not in ("steps", "q", "score")}
        )
    for (task, kind), by_phase in results.items():
        plot(by_phase, out / f"{task}-{kind}.png",
             f"{task} {kind}: offline phases of the {args.tier} suite, "
             f"{suite.seeds} seeds", args.tolerance)  # fmt: skip
    write_csv(out / "reach.csv", table)
    lines = [
        f"# Offline budgets: mean Q against steps ({args.tier} tier)\n",
        f"Each phase runs the suite's settings offline for {args.steps} steps "
        f"({suite.seeds} seeds). Plateau: mean Q over the last {args.tail:.0%} of the run. "
        f"Reached: the first evaluation from which the seeds' mean Q stays within "
        f"{args.tolerance:.0%} of the plateau.\n",
        "| task | dataset | phase | plateau Q (seed std) | Q at 10k | reached at | score there "
        "| score at end |",
        "|---|---|---|---|---|---|---|---|",
    ]
    fmt = lambda v, d=1: "-" if v is None else f"{v:.{d}f}"
    for r in table:
        reach = "not reached" if r["reach_step"] is None else str(r["reach_step"])
        lines.append(
            f"| {r['task']} | {r['kind']} | {r['phase']} | {r['plateau_q']:.3g} "
            f"({r['plateau_q_seed_std']:.2g}) | {fmt(r['q_at_10k'], 3)} | {reach} | "
            f"{fmt(r['score_at_reach'])} | {fmt(r['score_at_end'])} |"
        )
    atomic_write_text(out / "summary.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
