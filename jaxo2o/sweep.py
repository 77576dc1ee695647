"""`python -m jaxo2o.sweep`: methods x tasks x dataset kinds, each line many seeds x a
hyperparameter grid compiled once.

One line (one method, one task, one dataset) writes runs.csv (one row per run), curves.csv
(every evaluation), summary.md, curves.png, meta.json (the config, package versions, git
revision, machine, timings) and final_state.npz (the runs' final states, for
`python -m jaxo2o.evaluate`) to --out. Several lines write those files per line to
--out/<task>/<kind>/<method>-<protocol>/ and, over all lines, runs.csv, curves.csv, summary.md
(with rliable aggregates) and meta.json to --out.

Lines are named the way a user thinks: `--methods iql:direct pex sac:scratch --tasks
inverted_double_pendulum --kinds medium medium-replay --tier quick` (the tier gives the
environment settings and the Minari ids); the explicit form `--method M --env.task T --dataset
ID` is still accepted. `--grid pex.selection_inverse_temperature=1,10` applies to one method.

Lines whose offline phases are the same computation (IQL and PEX; the protocols of one method;
ACA and sac-direct) compute it once: its end is kept in --offline-cache and restored by the
others (also by later sweeps). Checkpoints go to <line>/checkpoints every --checkpoint-every
evaluation intervals (and at the end of each phase): a sweep stopped at any moment (Ctrl-C,
kill -9) and run again with the same arguments continues from the last one; finished lines are
not run again; --force starts over. Runs whose losses or parameters became non-finite are
flagged in runs.csv (diverged_phase, diverged_step) and left out of the aggregates.

Several processes (hosts) run one sweep together when each is started with the same arguments
plus --distributed.coordinator HOST0:PORT --distributed.num-processes N
--distributed.process-id I (or --distributed.auto under SLURM / Open MPI): the runs are sharded
over the devices of all of them; process 0 writes the checkpoints and result files, so --out
(and --offline-cache) must be on a filesystem every host shares.

Examples:
    python -m jaxo2o.sweep --method iql --dataset jaxo2o/point/medium-smoke-v0 \\
        --env.task point --env.episode-length 100 --run.offline-steps 2000 \\
        --run.online-steps 2000 --seeds 4 --grid expectile=0.7,0.9 --out results/sweeps/demo
    python -m jaxo2o.sweep --methods iql:union pex:direct --tasks point --kinds medium \\
        --tier smoke --run.offline-steps 2000 --run.online-steps 2000 --out results/sweeps/two
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import jax
import numpy as np
import tyro

from jaxo2o.config import PROTOCOLS, ConfigError
from jaxo2o.core import distributed
from jaxo2o.core.distributed import DistributedConfig
from jaxo2o.core.runner import enable_compilation_cache
from jaxo2o.data.tiers import TIERS
from jaxo2o.experiment import Experiment, ExperimentResult, check_memory, execute, plan
from jaxo2o.experiment.final_state import save_final_state
from jaxo2o.experiment.lines import Line, expand
from jaxo2o.experiment.results import DIP_TEXT, dip_text
from jaxo2o.methods import method_names
from jaxo2o.report.aggregate import diverged_note, group_stats, split_diverged
from jaxo2o.report.files import atomic_write_text, provenance, write_csv, write_json
from jaxo2o.report.plots import plot_curves
from jaxo2o.report.tables import markdown_table

SCORES = ("offline_final", "online_start", "online_dip", "online_final")


_METHODS_HELP = (
    "the lines' methods, each NAME or NAME:PROTOCOL (protocol default: --run.protocol); "
    f"methods {method_names()}, protocols {PROTOCOLS}; empty: --method"
)


@dataclass(frozen=True)
class SweepArgs:
    exp: Annotated[Experiment, tyro.conf.arg(name="")] = field(default_factory=Experiment)
    methods: Annotated[tuple[str, ...], tyro.conf.arg(help=_METHODS_HELP)] = ()
    tasks: Annotated[tuple[str, ...], tyro.conf.arg(aliases=("--task",))] = ()
    """tasks of --tier (environment settings and datasets from the tier); empty: --env.task"""
    kinds: tuple[str, ...] = ()
    """dataset kinds of each task, e.g. medium medium-replay (mazes: play diverse)"""
    tier: Annotated[str, tyro.conf.arg(help=f"tier of --tasks, one of {tuple(TIERS)}")] = "quick"
    out: str = "results/sweeps/latest"  # folder for the result files
    force: bool = False  # replace results already in --out, ignore its checkpoints
    checkpoint_every: int = 1  # evaluation intervals between checkpoints (0 = no checkpoints)
    offline_cache: str = ".cache/offline"  # shared offline phases ("" = do not share)
    dry_run: bool = False  # validate, print the lines, runs and memory estimate, then stop
    devices: int = 0  # devices to shard the runs over (0 = all visible)
    # join a sweep run by several processes / hosts (see README, "More than one host")
    distributed: DistributedConfig = field(default_factory=DistributedConfig)


def write_result(out: Path, res: ExperimentResult, title: str) -> None:
    """Write every result file of an experiment (each atomically)."""
    exp = res.plan.experiment
    grid_keys = [k for k in res.plan.runs[0] if k != "seed"]
    by = ["method", "protocol", *grid_keys]
    kept, diverged = split_diverged(res.rows)
    groups = group_stats(kept, by, [s for s in SCORES if s in res.rows[0]])
    write_csv(out / "runs.csv", res.rows)
    write_csv(out / "curves.csv", res.curves)
    save_final_state(out, res.batch.state)  # for `python -m jaxo2o.evaluate <out>`
    scale = "normalized score" if res.plan.ref_scores else "raw return (no reference scores)"
    text = (
        f"# {title}\n\n{scale}; mean ± std over {exp.seeds} seeds per line; "
        f"{dip_text(res.plan.trainer.run)}.\n\n"
        + diverged_note(len(diverged), len(res.rows))
        + ("\n" if diverged else "")
        + markdown_table(groups, by, [s for s in SCORES if s in res.rows[0]])
        + f"\ncompile {res.batch.compile_seconds:.1f} s, run {res.batch.run_seconds:.1f} s "
        f"on {res.batch.n_devices} device(s).\n"
    )
    atomic_write_text(out / "summary.md", text)
    meta = provenance() | {
        "experiment": dataclasses.asdict(exp),
        "reference_scores": res.plan.ref_scores,
        "compile_seconds": res.batch.compile_seconds,
        "run_seconds": res.batch.run_seconds,
        "n_devices": res.batch.n_devices,
        "n_processes": jax.process_count(),
        "compiled_memory": res.batch.memory,
        "resumed_from": res.batch.resumed_from,
        "offline_from": res.batch.offline_from,
        "offline_seconds": res.batch.offline_seconds,
        "offline_compile_seconds": res.batch.offline_compile_seconds,
        "checkpoints_written": res.checkpoints,
        "diverged_runs": len(diverged),
    }
    write_json(out / "meta.json", meta)
    plot_curves(res.curves, out / "curves.png", title, label_keys=by)


def comparable(experiment: dict) -> dict:
    """An experiment's settings without those that cannot change its numbers (the progress bar)."""
    run = {k: v for k, v in experiment.get("run", {}).items() if k != "progress"}
    return experiment | {"run": run}


def finished(folder: Path, exp: Experiment) -> bool | None:
    """True: `folder` holds the finished results of exactly this experiment; False: of another
    one; None: no finished results."""
    meta = folder / "meta.json"
    if not (folder / "runs.csv").exists() or not meta.exists():
        return None
    try:
        recorded = json.loads(meta.read_text()).get("experiment") or {}
    except (OSError, ValueError):
        return False
    return comparable(recorded) == comparable(json.loads(json.dumps(dataclasses.asdict(exp))))


def fail(message: str) -> int:
    """A user's mistake: one line on stderr naming the option, exit status 2, no traceback."""
    print(f"error: {message}", file=sys.stderr)
    return 2


def offline_groups(plans: list[tuple[Line, Any]], devices: list | None) -> list[list[str]]:
    """The lines whose offline phases are one computation (`core.shared_offline.offline_key`),
    as groups of folders with more than one member."""
    from jaxo2o.core.loop import placeholder_dataset
    from jaxo2o.core.runner import devices_used
    from jaxo2o.core.shared_offline import offline_key

    n_dev = len(devices if devices is not None else jax.devices())
    groups: dict[str, list[str]] = {}
    for line, p in plans:
        if not p.experiment.run.offline_steps:
            continue
        t = p.trainer
        data = p.dataset.transitions if p.dataset is not None else None
        data = data if data is not None else placeholder_dataset(t.obs_size, t.act_size)
        key = offline_key(t, p.keys(), p.hp, p.rhp, data, devices_used(n_dev, len(p.runs)))
        groups.setdefault(key, []).append(line.folder)
    return [g for g in groups.values() if len(g) > 1]


def write_combined(out: Path, results: list[tuple[Line, list[dict], list[dict]]]) -> str:
    """The files over every line of a sweep: runs.csv, curves.csv, summary.md (mean ± std per
    line and grid point, rliable aggregates over tasks when there are several methods)."""
    from jaxo2o.report.stats import rliable_section

    rows, curves = [], []
    for line, r, c in results:
        tag = {"kind": line.kind, "line": line.label}
        rows += [x | tag for x in r]
        curves += [x | tag for x in c]
    grid_keys = sorted({k for line, *_ in results for k in _grid_keys(line.experiment)})
    by = ["task", "kind", "line", *grid_keys]
    scores = [s for s in SCORES if any(s in r for r in rows)]
    kept, diverged = split_diverged(rows)
    for r in kept:
        for k in set(grid_keys) - set(r):
            r[k] = ""
    text = (
        f"# Sweep: {len(results)} lines\n\nmean ± std over each line's seeds; "
        f"{DIP_TEXT}.\n\n"
        + diverged_note(len(diverged), len(rows))
        + ("\n" if diverged else "")
        + markdown_table(group_stats(kept, by, scores), by, scores)
    )
    if len({line.label for line, *_ in results}) > 1 and "online_final" in scores:
        stats = rliable_section(rows, "line", ["task", "kind"], "online_final", out)
        text += f"\n## Aggregates over tasks and datasets (rliable)\n\n{stats}" if stats else ""
    write_csv(out / "runs.csv", rows)
    write_csv(out / "curves.csv", curves)
    atomic_write_text(out / "summary.md", text)
    return text


def _grid_keys(exp: Experiment) -> list[str]:
    from jaxo2o.experiment.spec import parse_pairs

    return list(parse_pairs(exp.grid, "grid"))


def main(argv: list[str] | None = None) -> int:
    try:
        args = tyro.cli(SweepArgs, args=argv, description=__doc__)
    except (ConfigError, ValueError) as e:  # raised while building the validated configs
        return fail(str(e))
    distributed.initialize(args.distributed)  # before anything touches a device
    main_process = distributed.is_main_process()
    say = print if main_process else lambda *a, **k: None  # one process reports
    template = args.exp
    if not main_process:  # one progress bar (the setting does not change the numbers)
        run = dataclasses.replace(template.run, progress=False)
        template = dataclasses.replace(template, run=run)
    out = Path(args.out)
    try:
        if args.checkpoint_every < 0:
            raise ConfigError(f"checkpoint_every: must be >= 0, got {args.checkpoint_every}")
        if args.devices and distributed.multi_process():
            raise ConfigError(
                "devices: with several processes the runs are sharded over the devices of all "
                "of them; leave --devices at 0"
            )
        lines = expand(template, args.methods, args.tasks, args.kinds, args.tier)
        single = len(lines) == 1
        folders = {line.folder: out if single else out / line.folder for line in lines}
        todo, plans, datasets = [], [], {}
        for line in lines:
            folder = folders[line.folder]
            done = finished(folder, line.experiment)
            if distributed.multi_process():  # what process 0 (the one that writes) sees
                code = {None: -1, False: 0, True: 1}[done]
                done = {-1: None, 0: False, 1: True}[int(distributed.from_main(np.int32(code)))]
            if done is False and not args.force and not args.dry_run:
                raise ConfigError(
                    f"out: {folder} already holds results of other arguments; pass --force "
                    "to replace them"
                )
            exp = line.experiment
            if exp.dataset and exp.dataset not in datasets:
                from jaxo2o.data import load_dataset

                datasets[exp.dataset] = load_dataset(exp.dataset)
            p = plan(exp, datasets.get(exp.dataset))  # a ConfigError names the line's field
            est = check_memory(p)
            plans.append((line, p))
            if args.force or not done or args.dry_run:
                todo.append((line, p, est))
    except (ConfigError, ValueError, FileNotFoundError) as e:
        where = f"line {line.label} on {line.task} {line.kind}: " if not single and lines else ""
        return fail(where + str(e) if "line" in locals() else str(e))
    devices = jax.devices()[: args.devices] if args.devices else None
    for line, p, est in todo:
        say(
            f"{line.folder}: {p.n_runs} runs ({p.experiment.seeds} seeds x "
            f"{p.n_runs // p.experiment.seeds} grid points), estimated memory "
            f"{est['total'] / 2**20:.1f} MiB ({est['per_run'] / 2**20:.2f} MiB per run)"
        )
    if not todo:
        what = "the finished results" if single else f"all {len(lines)} lines' finished results"
        say(f"{out} already holds {what} of these arguments; nothing to do")
        if single:
            return 0
    elif len(lines) > len(todo):
        say(f"{len(lines) - len(todo)} of {len(lines)} lines already finished in {out}")
    if args.dry_run:
        for line, p, _ in todo:
            say(f"  {line.folder}:", *p.runs)
        for group in offline_groups(plans, devices):
            say("one offline phase, computed once:", ", ".join(group))
        return 0
    enable_compilation_cache()
    try:
        for line, p, _ in todo:
            run_line(args, line, p, folders[line.folder], devices)
    except KeyboardInterrupt:
        print(
            "\ninterrupted: the checkpoints written so far are kept; run the same command "
            "again to continue",
            file=sys.stderr,
        )
        return 130
    if not main_process:
        distributed.barrier("sweep: results written")  # every process exits once they are
        return 0
    if single:
        print((out / "summary.md").read_text())
        print(f"wrote {out}/runs.csv, curves.csv, summary.md, curves.png, meta.json")
        distributed.barrier("sweep: results written")
        return 0
    from jaxo2o.report.files import read_csv

    results = [
        (line, read_csv(folders[line.folder] / "runs.csv"),
         read_csv(folders[line.folder] / "curves.csv"))
        for line in lines
    ]  # fmt: skip
    print(write_combined(out, results))
    meta = provenance() | {
        "lines": [{"folder": line.folder, "experiment": dataclasses.asdict(line.experiment)}
                  for line in lines],
    }  # fmt: skip
    write_json(out / "meta.json", meta)
    print(f"wrote {out}/runs.csv, curves.csv, summary.md, meta.json and one folder per line")
    distributed.barrier("sweep: results written")
    return 0


def run_line(args: SweepArgs, line: Line, p: Any, folder: Path, devices: list | None) -> None:
    """Run one line (resuming from its checkpoints) and write its files (process 0; every
    process holds the full results)."""
    from jaxo2o.core.checkpoint import Checkpointer

    ckpt_dir = folder / "checkpoints"
    if args.force and ckpt_dir.exists():
        Checkpointer(ckpt_dir, "").clear()  # by process 0
    distributed.barrier("sweep: old checkpoints cleared")  # before any process looks for one
    every = args.checkpoint_every
    res = execute(
        p,
        devices=devices,
        desc=f"{line.label} {line.task} {line.kind}".strip(),
        checkpoint_dir=ckpt_dir if every else None,
        checkpoint_every=max(every, 1),
        shared_offline=args.offline_cache or None,
    )
    if not distributed.is_main_process():
        return
    exp = line.experiment
    write_result(folder, res, f"{exp.method} ({exp.run.protocol}) on {exp.env.task} {exp.dataset}")
    if ckpt_dir.exists():  # the results are written: the checkpoints are no longer needed
        Checkpointer(ckpt_dir, "").clear()
    if res.batch.offline_from == "shared":
        print(f"{line.folder}: offline phase restored from {args.offline_cache}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
