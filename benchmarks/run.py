"""`make bench`: reproduce a tier's offline-to-online result table.

    python -m benchmarks.run --tier quick            # what `make bench` runs
    python -m benchmarks.run --tier smoke            # a 2-3 minute end-to-end check on `point`

Steps: make the tier's datasets if they are missing (cached), then for every dataset and every
line of the suite (`benchmarks/suite.py`) run all seeds as one compiled program, and write, in
<out>/<tier>/ (default `local-results/<tier>/`, not committed):
    runs/<task>/<kind>/<label>/   the sweep's files for that experiment
    runs.csv, curves.csv          every run and every evaluation, together
    act.csv                       PEX's offline-action share per online interval
    table.md                      the result table (mean ± std over seeds)
    <task>-<kind>.png             learning curves per dataset
    meta.json                     tier, provenance, timings
    compare.md                    every cell against the committed reference (results/<tier>/)
An experiment whose folder already holds results for the same configuration is not run again, so
an interrupted bench resumes where it stopped (`--force` reruns everything). The committed
results are a reference, never a cache: they are read only to compare with. Making a new
reference: `python -m benchmarks.run --tier quick --out results`.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tyro

from benchmarks.act_share import act_rows, share_table
from benchmarks.claims import write_claims
from benchmarks.compare import compare, summary
from benchmarks.dataset_check import dataset_report, differs_line, write_fingerprints
from benchmarks.suite import SUITES, MethodSpec, Suite, domain_of
from jaxo2o import presets
from jaxo2o.cli import one_line_errors
from jaxo2o.config import ConfigError, EnvConfig, RunConfig
from jaxo2o.core.runner import enable_compilation_cache
from jaxo2o.data import DatasetError, load_dataset, normalized_score
from jaxo2o.data.fingerprint import fingerprint
from jaxo2o.data.generate import ensure_datasets
from jaxo2o.data.minari_io import dataset_folder, datasets_root
from jaxo2o.data.tiers import TIERS, StandardData, tier_dataset_id
from jaxo2o.experiment import Experiment
from jaxo2o.experiment.lines import Line
from jaxo2o.experiment.results import DIP_TEXT
from jaxo2o.experiment.runner import RunnerOptions, finished, run_lines
from jaxo2o.presets import Applied
from jaxo2o.provenance import provenance
from jaxo2o.report.aggregate import diverged_note, group_stats, split_diverged
from jaxo2o.report.files import atomic_write_text, read_csv, write_csv, write_json
from jaxo2o.report.plots import plot_curves
from jaxo2o.report.stats import rliable_section
from jaxo2o.report.tables import fmt_mean_std


@dataclass(frozen=True)
class BenchArgs:
    tier: str = "quick"  # smoke | quick | paper
    out: str = "local-results"  # this run's results go to <out>/<tier>/ (resumable there)
    reference: str = "results"  # the committed reference: <reference>/<tier>/runs.csv
    force: bool = False  # rerun experiments that already have results
    only: tuple[str, ...] = ()  # run only these suite lines (labels), e.g. iql-direct pex
    skip_offline_table: bool = False  # do not run the offline IQL-vs-BC table
    report_only: bool = False  # run nothing: tabulate the experiments already finished
    tasks: tuple[str, ...] = ()  # restrict to these tasks
    kinds: tuple[str, ...] = ()  # restrict to these dataset kinds
    offline_cache: str = ".cache/offline"  # offline phases shared between lines ("" = none)
    # the first seed of every line (seeds first_seed .. first_seed + seeds - 1): a replication on
    # seeds the reference did not use, e.g. --first-seed 100 --out local-results/seeds-100
    first_seed: int = 0


def experiment_for(
    suite: Suite,
    spec: MethodSpec,
    env: EnvConfig,
    dataset: str,
    kind: str = "medium",
    domain: str = "locomotion",
) -> Experiment:
    preset = spec.preset(domain, kind)
    hparams, method_config = preset.as_options() if preset else ((), ())
    budget = suite.budget_for(spec.label, domain)
    run = RunConfig(
        offline_steps=budget.offline_steps if spec.offline else 0,
        online_steps=budget.online_steps,
        offline_eval_every=budget.offline_eval_every,
        online_eval_every=budget.online_eval_every,
        eval_episodes=budget.eval_episodes,
        batch_size=suite.batch_size,
        warmup_steps=budget.warmup_of(spec),
        warmup_random=spec.warmup_random,
        updates_per_step=spec.utd_of(suite.tier),
        offline_fraction=(preset.run.get("offline_fraction", 0.5) if preset else 0.5),
        protocol=spec.protocol,
        seed_episodes=preset.seed_episodes if preset else 0,
        progress=sys.stderr.isatty(),
    )
    hidden = ",".join([str(suite.width)] * spec.layers)
    # the dataset is passed even to runs that never sample it (scratch): it sets the reward
    # scaling of the IQL family, so every protocol of a method sees the same rewards
    return Experiment(
        method=spec.method,
        env=env,
        run=run,
        dataset=dataset,
        reference=dataset,
        seeds=suite.seeds,
        method_config=(f"hidden={hidden}", *method_config),
        hparams=hparams,
    )


OFFLINE_LABELS = {0.0: "bc"}  # inverse temperature -> name in the offline table; others: "iql"


def offline_experiment(
    suite: Suite, env: EnvConfig, dataset: str, domain: str = "locomotion"
) -> Experiment:
    """IQL (the domain's settings) and BC (inverse temperature 0) on one dataset: one program."""
    budget = suite.budget_of(domain)
    run = RunConfig(
        offline_steps=budget.offline_steps,
        online_steps=0,
        offline_eval_every=budget.offline_eval_every,
        eval_episodes=budget.eval_episodes,
        batch_size=suite.batch_size,
        progress=sys.stderr.isatty(),
    )
    iql = presets.iql(domain, finetuning=False)
    hparams, method_config = iql.as_options()
    fixed = tuple(h for h in hparams if not h.startswith("inverse_temperature="))
    beta = iql.hparams["inverse_temperature"]
    return Experiment(
        method="iql",
        env=env,
        run=run,
        dataset=dataset,
        seeds=suite.seeds,
        method_config=(f"hidden={suite.width},{suite.width}", *method_config),
        hparams=fixed,
        grid=(f"inverse_temperature=0.0,{beta}",),
    )


def offline_table(rows: list[dict], dataset_scores: dict[tuple[str, str], float]) -> str:
    metrics = ["offline_final", "weight_ess"]
    groups = {
        (g["task"], g["kind"], g["label"]): g
        for g in group_stats(rows, ["task", "kind", "label"], metrics)
    }
    lines = [
        "| task | dataset | data score | BC | IQL | IQL's AWR weight ESS |",
        "|---|---|---|---|---|---|",
    ]
    for task, kind in sorted({(t, k) for t, k, _ in groups}):
        cells = [
            fmt_mean_std(groups.get((task, kind, lab), {"n": 0}), "offline_final")
            for lab in ("bc", "iql")
        ]
        iql = groups.get((task, kind, "iql"), {"n": 0})
        cells.append(fmt_mean_std(iql, "weight_ess", digits=2))
        data = dataset_scores.get((task, kind), float("nan"))
        lines.append(f"| {task} | {kind} | {data:.1f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def final_metric(curves: list[dict], name: str) -> dict[tuple, float]:
    """Per (seed, inverse_temperature): `name` over the last offline interval (from curves.csv)."""
    out = {}
    for c in curves:
        if c.get("phase") == "offline" and c.get(name) is not None:
            out[(c["seed"], c["inverse_temperature"])] = c[name]  # rows are in step order
    return out


def table(rows: list[dict], dataset_scores: dict[tuple[str, str], float]) -> str:
    """Per dataset and suite line: offline score, dip, final score (mean ± std over seeds)."""
    metrics = ["offline_final", "online_dip", "online_final", "offline_fraction_mean"]
    groups = group_stats(split_diverged(rows)[0], ["task", "kind", "label"], metrics)
    lines = [
        "| task | dataset | data score | method | seeds | end of offline | dip (early updates) "
        "| final | offline-action share |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for g in groups:
        data = dataset_scores.get((g["task"], g["kind"]), float("nan"))
        lines.append(
            f"| {g['task']} | {g['kind']} | {data:.1f} | {g['label']} | {g['n']} | "
            + " | ".join(fmt_mean_std(g, m, digits=2 if "fraction" in m else 1) for m in metrics)
            + " |"
        )
    return "\n".join(lines) + "\n"


@dataclass
class Collected:
    """What a bench run gathered, experiment by experiment (run now or finished earlier)."""

    rows: list[dict] = field(default_factory=list)
    curves: list[dict] = field(default_factory=list)
    act: list[dict] = field(default_factory=list)
    offline_rows: list[dict] = field(default_factory=list)
    dataset_scores: dict[tuple[str, str], float] = field(default_factory=dict)
    timings: list[dict] = field(default_factory=list)
    data_seconds: float = 0.0
    fingerprints: dict[str, dict] = field(default_factory=dict)  # dataset id -> fingerprint


def suite_lines(args: BenchArgs, suite: Suite, tasks: list, specs: list) -> list[Line]:
    """The selection's lines, dataset by dataset: the offline table's, then the suite's."""
    lines = []
    for t in tasks:
        env = EnvConfig(task=t.task, backend=t.backend, episode_length=t.episode_length)
        domain = domain_of(t)
        online_kinds, offline_kinds = suite.kinds_of(domain)
        for kind in dict.fromkeys(offline_kinds + online_kinds):
            if (args.kinds and kind not in args.kinds) or not has_kind(t, kind):
                continue
            ds_id = tier_dataset_id(t, kind, args.tier)
            if kind in offline_kinds and not args.skip_offline_table:
                exp = offline_experiment(suite, env, ds_id, domain)
                lines.append(Line("offline", t.task, kind, exp))
            for spec in specs if kind in online_kinds else ():
                exp = experiment_for(suite, spec, env, ds_id, kind, domain)
                preset = spec.preset(domain, kind)
                record = Applied(preset, ()).record() if preset else None
                lines.append(Line(spec.label, t.task, kind, exp, record, spec.after))
    return [
        dataclasses.replace(
            line, experiment=dataclasses.replace(line.experiment, first_seed=args.first_seed)
        )
        for line in lines
    ]


def has_kind(task_data, kind: str) -> bool:
    """Whether a tier line has data of `kind`: a standard task only the kinds the field
    published for it (AntMaze_Medium-v4 has `play`, not `diverse`)."""
    return not isinstance(task_data, StandardData) or kind in task_data.kinds


def require_standard(args: BenchArgs, suite: Suite, tasks: list) -> None:
    """Stop with one line when a standard dataset the selection reads is not in the Minari root
    (the paper tier reads the field's datasets; it never makes or fetches them)."""
    missing = [
        ds_id
        for t in tasks
        if isinstance(t, StandardData)
        for kind in suite.kinds_of(domain_of(t))[0]
        if (not args.kinds or kind in args.kinds) and has_kind(t, kind)
        for ds_id in [tier_dataset_id(t, kind, args.tier)]
        if not dataset_folder(ds_id).is_dir()
    ]
    if missing:
        more = f" and {len(missing) - 1} more are" if len(missing) > 1 else " is"
        raise ConfigError(
            f"dataset: {missing[0]}{more} not in the Minari root {datasets_root()}; the "
            f"{args.tier} tier reads the standard datasets: `minari download {' '.join(missing)}`"
            " puts them there (or set MINARI_DATASETS_PATH)"
        )


def run_suite(args: BenchArgs, suite: Suite, tasks: list, specs: list, root: Path) -> Collected:
    """Make the datasets, then run (or reuse) every line of the selection."""
    out = Collected()
    t0 = time.perf_counter()
    if not args.report_only:
        require_standard(args, suite, tasks)
        made = [t for t in tasks if not isinstance(t, StandardData)]
        for domain in dict.fromkeys(domain_of(t) for t in made):
            kinds = tuple(dict.fromkeys(sum(suite.kinds_of(domain), ())))
            kinds = tuple(k for k in kinds if not args.kinds or k in args.kinds)
            names = tuple(t.task for t in made if domain_of(t) == domain)
            if kinds:
                ensure_datasets(args.tier, tasks=names, kinds=kinds)
    out.data_seconds = time.perf_counter() - t0
    lines = suite_lines(args, suite, tasks, specs)
    datasets: dict[str, Any] = {}
    for line in lines:
        ds_id = line.experiment.dataset
        if ds_id in datasets:
            continue
        try:
            datasets[ds_id] = ds = load_dataset(ds_id)
        except DatasetError:
            if not args.report_only:  # a report needs only the finished runs
                raise
            datasets[ds_id] = None
            continue
        score = normalized_score(ds.episode_returns, ds.ref_min_score, ds.ref_max_score)
        out.dataset_scores[(line.task, line.kind)] = float(np.mean(score))
        out.fingerprints[ds_id] = {"task": line.task, "kind": line.kind} | fingerprint(ds)
        said = differs_line(ds_id, out.fingerprints[ds_id], Path(args.reference) / args.tier)
        if said:  # plainly, before anything runs
            print(said, flush=True)
    runs = root / "runs"
    if args.report_only:
        for line in lines:
            if finished(runs / line.folder, line.experiment):
                collect(out, line, runs / line.folder)
        return out
    options = RunnerOptions(force=args.force, replace_other=True, offline_cache=args.offline_cache)
    for job, res in run_lines(lines, runs, options, datasets=datasets):  # errors name the line
        if res is not None:
            tag = {"task": job.line.task, "kind": job.line.kind, "label": job.line.label}
            act = act_rows(res, tag)
            if act:
                write_csv(job.folder / "act.csv", act)
            out.timings.append(
                tag
                | {
                    "compile_s": res.batch.compile_seconds,
                    "run_s": res.batch.run_seconds,
                    "offline_from": res.batch.offline_from,
                    "offline_s": res.batch.offline_seconds,
                    "offline_compile_s": res.batch.offline_compile_seconds,
                }
            )
        collect(out, job.line, job.folder)
    return out


def collect(out: Collected, line: Line, folder: Path) -> None:
    """Add a finished line's files to what the bench gathered."""
    runs = read_csv(folder / "runs.csv")
    kind = line.kind
    if line.label == "offline":
        ess = final_metric(read_csv(folder / "curves.csv"), "weight_ess")
        for r in runs:
            r |= {"kind": kind, "label": OFFLINE_LABELS.get(r["inverse_temperature"], "iql")}
            key = (r["seed"], r["inverse_temperature"])
            if key in ess:
                r["weight_ess"] = ess[key]
        out.offline_rows += runs
        return
    extra = {"kind": kind, "label": line.label}
    out.rows += [r | extra for r in runs]
    out.curves += [c | extra for c in read_csv(folder / "curves.csv")]
    if (folder / "act.csv").exists():
        out.act += read_csv(folder / "act.csv")


def write_report(args: BenchArgs, suite: Suite, got: Collected, root: Path, t_start: float) -> None:
    """The tier's combined CSVs, curves per dataset, table.md and meta.json."""
    for task, kind in dict.fromkeys((c["task"], c["kind"]) for c in got.curves):
        plot_curves(
            [c for c in got.curves if c["task"] == task and c["kind"] == kind],
            root / f"{task}-{kind}.png",
            f"{task} {kind} ({args.tier} tier, mean and 95% CI over {suite.seeds} seeds)",
            label_keys=["label"],
            band="ci",
        )
    write_csv(root / "runs.csv", got.rows)
    write_csv(root / "offline_runs.csv", got.offline_rows)
    write_csv(root / "curves.csv", got.curves)
    if got.act:
        write_csv(root / "act.csv", got.act)
    b = suite.budget
    header = (
        f"# {args.tier} tier: offline-to-online results\n\n"
        f"Normalized scores (100 = the task's expert, 0 = random; mazes: 100 x success rate), "
        f"mean ± std over {suite.seeds} seeds. Locomotion: offline {b.offline_steps} gradient "
        f"steps; online {b.online_steps} environment steps with one update each; evaluation "
        f"{b.eval_episodes} episodes every {b.online_eval_every} online steps"
        + (
            f"; mazes: {suite.maze_budget.offline_steps} + {suite.maze_budget.online_steps} "
            f"steps, {suite.maze_budget.eval_episodes} episodes every "
            f"{suite.maze_budget.online_eval_every}"
            if suite.maze_budget and suite.maze_kinds
            else ""
        )
        + f". Networks {suite.width} wide. '{DIP_TEXT}', each line after its own warm-up; "
        "'data score' is the mean "
        "normalized return of the dataset's episodes.\n\n"
    )
    offline_header = (
        f"\n## Offline: IQL against behaviour cloning\n\nNormalized score after the offline "
        f"phase ({b.offline_steps} gradient steps"
        + (f"; mazes {suite.maze_budget.offline_steps}" if suite.maze_budget else "")
        + f"), mean ± std over {suite.seeds} seeds. BC is "
        "IQL's actor loss with inverse temperature 0 (every weight 1); IQL uses its domain's "
        "settings (locomotion: expectile 0.7, inverse temperature 3, the IQL-family reward "
        "scaling; mazes: AntMaze's 0.9, 10, r - 1). *ESS*: the effective sample "
        "size of IQL's advantage weights as a share of the batch, (sum w)^2 / (n sum w^2), "
        "averaged over the last evaluation interval (1 = behaviour cloning; small = a few "
        "samples carry the batch).\n\n"
    )
    text = header + diverged_note(len(split_diverged(got.rows)[1]), len(got.rows))
    text += table(got.rows, got.dataset_scores)
    stats = rliable_section(got.rows, "label", ["task", "kind"], "online_final", root)
    text += f"\n## Aggregates over tasks and datasets (rliable)\n\n{stats}" if stats else ""
    share = share_table(got.act, b.pex_warmup_steps)
    text += f"\n## PEX: offline-action share\n\n{share}" if share else ""
    text += offline_header + offline_table(got.offline_rows, got.dataset_scores)
    atomic_write_text(root / "table.md", text)
    if not args.report_only:  # the datasets read now need not be those the runs were made on
        write_fingerprints(root, got.fingerprints)
    meta = provenance() | {"tier": args.tier, "suite": dataclasses.asdict(suite)}
    run_record = {
        "created": meta.get("created"),
        "git_revision": meta.get("git_revision"),
        "dataset_seconds": got.data_seconds,
        "total_seconds": time.perf_counter() - t_start,
        "experiments_run_now": got.timings,
    }
    if args.report_only and (root / "meta.json").exists():
        # a rebuilt table keeps the record of the bench run that made the experiments
        previous = json.loads((root / "meta.json").read_text())
        run_record = previous.get("bench_run", {k: previous.get(k) for k in run_record})
        meta["report_rebuilt"] = meta.get("created")
    write_json(root / "meta.json", meta | {"bench_run": run_record})


def main(argv: list[str] | None = None) -> int:
    try:
        with one_line_errors():
            args = tyro.cli(BenchArgs, args=argv, description=__doc__)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.tier not in SUITES:
        print(f"error: tier: unknown {args.tier!r}; choose one of {tuple(SUITES)}", file=sys.stderr)
        return 2
    enable_compilation_cache()
    suite, tier = SUITES[args.tier], TIERS[args.tier]
    specs = [s for s in suite.methods if not args.only or s.label in args.only]
    tasks = [
        t
        for t in tier.tasks
        if (not args.tasks or t.task in args.tasks)
        and (not suite.tasks or t.task in suite.tasks)
        and suite.kinds_of(domain_of(t))[0]
    ]
    if not specs or not tasks:
        labels = tuple(s.label for s in suite.methods)
        names = tuple(t.task for t in tier.tasks)
        print(
            f"error: --only/--tasks select nothing; lines {labels}, tasks {names}", file=sys.stderr
        )
        return 2
    root = Path(args.out) / args.tier
    t_start = time.perf_counter()
    try:
        got = run_suite(args, suite, tasks, specs, root)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    write_report(args, suite, got, root, t_start)
    print((root / "table.md").read_text())

    print(write_claims(root))
    compare_with_reference(root, Path(args.reference) / args.tier, suite.seeds)
    wall = time.perf_counter() - t_start
    compile_s = sum(t["compile_s"] for t in got.timings)
    run_s = sum(t["run_s"] for t in got.timings)
    print(
        f"wall time {wall:.0f} s: datasets {got.data_seconds:.0f} s, compile {compile_s:.0f} s, "
        f"run {run_s:.0f} s ({len(got.timings)} experiments run now); results in {root}/"
    )
    return 0


def compare_with_reference(root: Path, reference: Path, n_seeds: int) -> None:
    """Print (and write to <root>/compare.md) this run's cells against the reference's 95% CIs.
    Nothing when the reference is this run's own folder or has no results."""

    ref_csv = reference / "runs.csv"
    if not ref_csv.exists() or reference.resolve() == root.resolve():
        return
    data_text, apart = dataset_report(root, reference)
    text, counts = compare(read_csv(root / "runs.csv"), read_csv(ref_csv), apart)
    meta = reference / "meta.json"
    made = json.loads(meta.read_text()).get("git_revision", "?") if meta.exists() else "?"
    doc = (
        f"# This run against the reference\n\nReference: `{reference}` (revision {made}); this "
        f"run: `{root}`. Each cell: the reference's mean over seeds with the stratified-bootstrap "
        f"95% CI of that mean, this run's mean, and whether it lies inside.\n\n"
        f"{summary(counts, n_seeds)}\n\n{data_text}{text}"
    )
    atomic_write_text(root / "compare.md", doc)
    print(doc)


if __name__ == "__main__":
    raise SystemExit(main())
