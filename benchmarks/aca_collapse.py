"""Why do ACA and sac-direct collapse on inverted_double_pendulum medium? A diagnostic.

    python -m benchmarks.aca_collapse --out results/aca-collapse

Runs the quick suite's `aca` and `sac-direct` lines on inverted_double_pendulum medium exactly as
`make bench` does, with one change per variant:
- `as-bench`: none (the bench's lines at this revision, logging every online metric);
- `keep-temperature`: `online_temperature=keep`, the offline temperature carried into the online
  phase instead of the official reset to alpha = 1;
- `seed-50`: the buffer starts with the 50 best offline episodes (the official setting of the
  medium-replay and expert kinds; `medium`'s is none, so updates start on a buffer of one batch);
- `online-ml`: `online_ml=True`, SAC+ML's actor loss (with its behaviour-likelihood term) kept
  online instead of the official plain SAC actor loss;
- `fresh-optimizers`: `online_optimizers=fresh`, new Adam states for the actor, critic and
  temperature at the switch instead of the offline ones carried over (official);
- `frozen-critic`: `online_frozen=critic`, the critic is never updated online, so the actor trains
  against the critic it had at the switch (a test of whether the actor exploits that critic or
  follows the critic's online drift).
Writes each line's sweep files and `summary.md`, beside the bench's own numbers read from
`--reference`. The offline phase is the bench's (restored from `--offline-cache` when present),
so only the online phase differs.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.aca_variants import ACAVariant
from benchmarks.run import experiment_for
from benchmarks.suite import SUITES, domain_of
from jaxo2o.cli import parse_or_exit
from jaxo2o.config import EnvConfig
from jaxo2o.core.runner import enable_compilation_cache
from jaxo2o.data import dataset_id
from jaxo2o.data.tiers import TIERS
from jaxo2o.experiment.lines import Line
from jaxo2o.experiment.runner import RunnerOptions, run_lines
from jaxo2o.report.aggregate import group_stats
from jaxo2o.report.files import atomic_write_text, read_csv
from jaxo2o.report.tables import fmt_mean_std


def with_option(option: str):
    """A variant: the line's experiment on `aca-variant` (`benchmarks/aca_variants.py`) with one
    diagnostic switch ("field=value") set."""
    return lambda e: dataclasses.replace(
        e, method=ACAVariant.name, method_config=(*e.method_config, option)
    )


VARIANTS = {
    "as-bench": lambda e: e,  # no change: the reference at this revision, with every metric
    "keep-temperature": with_option("online_temperature=keep"),
    "online-ml": with_option("online_ml=True"),
    "fresh-optimizers": with_option("online_optimizers=fresh"),
    "frozen-critic": with_option("online_frozen=critic"),
    "seed-50": lambda e: dataclasses.replace(e, run=dataclasses.replace(e.run, seed_episodes=50)),
}


@dataclass(frozen=True)
class Args:
    task: str = "inverted_double_pendulum"
    kind: str = "medium"
    variants: tuple[str, ...] = tuple(VARIANTS)
    out: str = "results/aca-collapse"
    reference: str = "results/quick"  # the bench run to compare with
    offline_cache: str = ".cache/offline"


def main(argv: list[str] | None = None) -> int:
    args = parse_or_exit(Args, argv, __doc__)  # bad input: one line, exit 2
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        print(f"error: variants: unknown {unknown}; choose from {tuple(VARIANTS)}", file=sys.stderr)
        return 2
    enable_compilation_cache()
    suite, tier = SUITES["quick"], TIERS["quick"]
    t = tier.task(args.task)
    env = EnvConfig(task=t.task, backend=t.backend, episode_length=t.episode_length)
    ds_id = dataset_id(t.task, args.kind, "quick")
    out, rows, lines, folders = Path(args.out), [], [], {}
    for variant in args.variants:
        for spec in (s for s in suite.methods if s.label in ("aca", "sac-direct")):
            base = experiment_for(suite, spec, env, ds_id, args.kind, domain_of(t))
            line = Line(f"{spec.label}, {variant}", t.task, args.kind, VARIANTS[variant](base))
            lines.append(line)
            folders[line.folder] = out / variant / spec.label
    options = RunnerOptions(replace_other=True, offline_cache=args.offline_cache)
    for job, _ in run_lines(lines, out, options, folders):
        rows += [r | {"label": job.line.label} for r in read_csv(job.folder / "runs.csv")]
    ref = Path(args.reference) / "runs.csv"
    if ref.exists():
        rows += [
            r | {"label": f"{r['label']}, as the bench"}
            for r in read_csv(ref)
            if r["task"] == t.task and r["kind"] == args.kind
            and r["label"] in ("aca", "sac-direct")
        ]  # fmt: skip
    metrics = ["offline_final", "online_dip", "online_final"]
    lines = [
        f"# ACA and sac-direct: what changes the collapse ({t.task} {args.kind})\n",
        "Normalized score, mean ± std over seeds; the offline phase is the same in every row.\n",
        "| line, variant | seeds | end of offline | dip | final |",
        "|---|---|---|---|---|",
    ]
    for g in group_stats(rows, ["label"], metrics):
        cells = " | ".join(fmt_mean_std(g, m) for m in metrics)
        lines.append(f"| {g['label']} | {g['n']} | {cells} |")
    atomic_write_text(out / "summary.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
