"""`make bench`: reproduce a tier's offline-to-online result table.

    python -m benchmarks.run --tier quick            # what `make bench` runs
    python -m benchmarks.run --tier smoke            # a 2-3 minute end-to-end check on `point`

Steps: make the tier's datasets if they are missing (cached), then for every dataset and every
line of the suite (`benchmarks/suite.py`) run all seeds as one compiled program, and write
    results/<tier>/runs/<task>/<kind>/<label>/   the sweep's files for that experiment
    results/<tier>/runs.csv, curves.csv          every run and every evaluation, together
    results/<tier>/act.csv                        PEX's offline-action share per online interval
    results/<tier>/table.md                       the result table (mean ± std over seeds)
    results/<tier>/<task>-<kind>.png              learning curves per dataset
    results/<tier>/meta.json                      tier, provenance, timings
An experiment whose folder already holds results for the same configuration is not run again, so
an interrupted bench resumes where it stopped (`--force` reruns everything).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tyro

from benchmarks.act_share import act_rows, share_table
from benchmarks.suite import IQL_CONFIG, SUITES, MethodSpec, Suite
from jaxo2o.config import ConfigError, EnvConfig, RunConfig
from jaxo2o.core.checkpoint import Checkpointer
from jaxo2o.core.runner import enable_compilation_cache
from jaxo2o.data.tiers import TIERS
from jaxo2o.experiment import Experiment, execute, plan
from jaxo2o.report.aggregate import diverged_note, group_stats, split_diverged
from jaxo2o.report.files import atomic_write_text, provenance, read_csv, write_csv, write_json
from jaxo2o.report.plots import plot_curves
from jaxo2o.report.stats import rliable_section
from jaxo2o.report.tables import fmt_mean_std
from jaxo2o.sweep import finished, write_result


@dataclass(frozen=True)
class BenchArgs:
    tier: str = "quick"  # smoke | quick | paper
    out: str = "results"  # results go to <out>/<tier>/
    force: bool = False  # rerun experiments that already have results
    only: tuple[str, ...] = ()  # run only these suite lines (labels), e.g. iql-direct pex
    skip_offline_table: bool = False  # do not run the offline IQL-vs-BC table
    report_only: bool = False  # run nothing: tabulate the experiments already finished
    tasks: tuple[str, ...] = ()  # restrict to these tasks


def experiment_for(suite: Suite, spec: MethodSpec, env: EnvConfig, dataset: str) -> Experiment:
    run = RunConfig(
        offline_steps=suite.offline_steps if spec.offline else 0,
        online_steps=suite.online_steps,
        offline_eval_every=suite.offline_eval_every,
        online_eval_every=suite.online_eval_every,
        eval_episodes=suite.eval_episodes,
        batch_size=suite.batch_size,
        warmup_steps=suite.warmup_steps if spec.warmup else 0,
        warmup_random=spec.warmup_random,
        protocol=spec.protocol,
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
        method_config=(f"hidden={hidden}", *spec.method_config),
        hparams=spec.hparams,
    )


OFFLINE_LABELS = {0.0: "bc", 3.0: "iql"}  # inverse temperature -> name in the offline table


def offline_experiment(suite: Suite, env: EnvConfig, dataset: str) -> Experiment:
    """IQL (0.7 / 3.0) and BC (inverse temperature 0) on one dataset: one program."""
    run = RunConfig(
        offline_steps=suite.offline_steps,
        online_steps=0,
        offline_eval_every=suite.offline_eval_every,
        eval_episodes=suite.eval_episodes,
        batch_size=suite.batch_size,
        progress=sys.stderr.isatty(),
    )
    return Experiment(
        method="iql",
        env=env,
        run=run,
        dataset=dataset,
        seeds=suite.seeds,
        method_config=(f"hidden={suite.width},{suite.width}", *IQL_CONFIG),
        hparams=("expectile=0.7",),
        grid=("inverse_temperature=" + ",".join(str(b) for b in OFFLINE_LABELS),),
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


def _done(folder: Path, exp: Experiment) -> bool:
    """Whether `folder` holds the finished results of exactly this experiment."""
    return bool(finished(folder, exp))


def table(rows: list[dict], dataset_scores: dict[tuple[str, str], float]) -> str:
    """Per dataset and suite line: offline score, dip, final score (mean ± std over seeds)."""
    metrics = ["offline_final", "online_dip", "online_final", "offline_fraction_mean"]
    groups = group_stats(split_diverged(rows)[0], ["task", "kind", "label"], metrics)
    lines = [
        "| task | dataset | data score | method | seeds | end of offline | dip (first 10% online) "
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


def main(argv: list[str] | None = None) -> int:
    args = tyro.cli(BenchArgs, args=argv, description=__doc__)
    if args.tier not in SUITES:
        print(f"error: tier: unknown {args.tier!r}; choose one of {tuple(SUITES)}", file=sys.stderr)
        return 2
    from jaxo2o.data import dataset_id, ensure_datasets, load_dataset, normalized_score

    enable_compilation_cache()
    suite, tier = SUITES[args.tier], TIERS[args.tier]
    specs = [s for s in suite.methods if not args.only or s.label in args.only]
    tasks = [t for t in tier.tasks if not args.tasks or t.task in args.tasks]
    if not specs or not tasks:
        print("error: --only/--tasks select nothing", file=sys.stderr)
        return 2
    root = Path(args.out) / args.tier
    t_start = time.perf_counter()

    t0 = time.perf_counter()
    if not args.report_only:
        kinds = tuple(dict.fromkeys(suite.offline_kinds + suite.kinds))
        ensure_datasets(args.tier, tasks=tuple(t.task for t in tasks), kinds=kinds)
    data_seconds = time.perf_counter() - t0

    all_rows, all_curves, all_act, offline_rows, dataset_scores, timings = [], [], [], [], {}, []
    for t in tasks:
        env = EnvConfig(task=t.task, backend=t.backend, episode_length=t.episode_length)
        for kind in dict.fromkeys(suite.offline_kinds + suite.kinds):
            ds_id = dataset_id(t.task, kind, args.tier)
            ds = load_dataset(ds_id)
            dataset_scores[(t.task, kind)] = float(
                np.mean(normalized_score(ds.episode_returns, ds.ref_min_score, ds.ref_max_score))
            )
            jobs = []
            if kind in suite.offline_kinds and not args.skip_offline_table:
                jobs.append(("offline", offline_experiment(suite, env, ds_id)))
            if kind in suite.kinds:
                jobs += [(spec.label, experiment_for(suite, spec, env, ds_id)) for spec in specs]
            for label, exp in jobs:
                folder = root / "runs" / t.task / kind / label
                if args.report_only and not _done(folder, exp):
                    continue
                if args.force or not _done(folder, exp):
                    try:
                        p = plan(exp, dataset=ds)
                    except ConfigError as e:
                        print(f"error: {t.task}/{kind}/{label}: {e}", file=sys.stderr)
                        return 2
                    print(f"== {t.task} {kind} {label}: {p.n_runs} runs", flush=True)
                    ckpt = folder / "checkpoints"
                    if args.force and ckpt.exists():
                        Checkpointer(ckpt, "").clear()
                    # an interrupted experiment continues from its last checkpoint
                    res = execute(p, desc=f"{t.task}/{kind}/{label}", checkpoint_dir=ckpt)
                    write_result(folder, res, f"{label} on {ds_id}")
                    Checkpointer(ckpt, "").clear()
                    act = act_rows(res, {"task": t.task, "kind": kind, "label": label})
                    if act:
                        write_csv(folder / "act.csv", act)
                    timings.append(
                        {
                            "task": t.task,
                            "kind": kind,
                            "label": label,
                            "compile_s": res.batch.compile_seconds,
                            "run_s": res.batch.run_seconds,
                        }
                    )
                    print(
                        f"   compile {res.batch.compile_seconds:.0f} s, run "
                        f"{res.batch.run_seconds:.0f} s",
                        flush=True,
                    )
                else:
                    made_at = json.loads((folder / "meta.json").read_text()).get("git_revision")
                    print(f"== {t.task} {kind} {label}: finished earlier (revision {made_at})")
                runs = read_csv(folder / "runs.csv")
                if label == "offline":
                    ess = final_metric(read_csv(folder / "curves.csv"), "weight_ess")
                    for r in runs:
                        r |= {"kind": kind, "label": OFFLINE_LABELS[r["inverse_temperature"]]}
                        key = (r["seed"], r["inverse_temperature"])
                        if key in ess:
                            r["weight_ess"] = ess[key]
                    offline_rows += runs
                    continue
                extra = {"kind": kind, "label": label}
                all_rows += [r | extra for r in runs]
                all_curves += [c | extra for c in read_csv(folder / "curves.csv")]
                if (folder / "act.csv").exists():
                    all_act += read_csv(folder / "act.csv")
            curves = [c for c in all_curves if c["task"] == t.task and c["kind"] == kind]
            if kind not in suite.kinds or not curves:
                continue
            plot_curves(
                curves,
                root / f"{t.task}-{kind}.png",
                f"{t.task} {kind} ({args.tier} tier, mean ± std over {suite.seeds} seeds)",
                label_keys=["label"],
            )

    write_csv(root / "runs.csv", all_rows)
    write_csv(root / "offline_runs.csv", offline_rows)
    write_csv(root / "curves.csv", all_curves)
    if all_act:
        write_csv(root / "act.csv", all_act)
    header = (
        f"# {args.tier} tier: offline-to-online results\n\n"
        f"Normalized scores (100 = the task's expert, 0 = random), mean ± std over "
        f"{suite.seeds} seeds. Offline: {suite.offline_steps} gradient steps; online: "
        f"{suite.online_steps} environment steps with one update each; networks "
        f"{suite.width} wide; evaluation {suite.eval_episodes} episodes every "
        f"{suite.online_eval_every} online steps. 'dip' is the lowest score in the first tenth "
        "of the online phase (including right after the switch); 'data score' is the mean "
        "normalized return of the dataset's episodes.\n\n"
    )
    offline_header = (
        f"\n## Offline: IQL against behaviour cloning\n\nNormalized score after "
        f"{suite.offline_steps} offline gradient steps, mean ± std over {suite.seeds} seeds. BC is "
        "IQL's actor loss with inverse temperature 0 (every weight 1); IQL uses expectile 0.7 and "
        "inverse temperature 3, with the IQL-family reward scaling. *ESS*: the effective sample "
        "size of IQL's advantage weights as a share of the batch, (sum w)^2 / (n sum w^2), "
        "averaged over the last evaluation interval (1 = behaviour cloning; small = a few "
        "samples carry the batch).\n\n"
    )
    text = header + diverged_note(len(split_diverged(all_rows)[1]), len(all_rows))
    text += table(all_rows, dataset_scores)
    stats = rliable_section(all_rows, "label", ["task", "kind"], "online_final", root)
    text += f"\n## Aggregates over tasks and datasets (rliable)\n\n{stats}" if stats else ""
    share = share_table(all_act, suite.online_steps, suite.online_eval_every, suite.warmup_steps)
    text += f"\n## PEX: offline-action share\n\n{share}" if share else ""
    text += offline_header + offline_table(offline_rows, dataset_scores)
    atomic_write_text(root / "table.md", text)
    meta = provenance() | {"tier": args.tier, "suite": dataclasses.asdict(suite)}
    run_record = {
        "created": meta.get("created"),
        "git_revision": meta.get("git_revision"),
        "dataset_seconds": data_seconds,
        "total_seconds": time.perf_counter() - t_start,
        "experiments_run_now": timings,
    }
    if args.report_only and (root / "meta.json").exists():
        # a rebuilt table keeps the record of the bench run that made the experiments
        previous = json.loads((root / "meta.json").read_text())
        run_record = previous.get("bench_run", {k: previous.get(k) for k in run_record})
        meta["report_rebuilt"] = meta.get("created")
    write_json(root / "meta.json", meta | {"bench_run": run_record})
    print((root / "table.md").read_text())
    print(f"total {time.perf_counter() - t_start:.0f} s; results in {root}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
