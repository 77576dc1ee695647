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
ID` is still accepted. Each line starts from its method's official settings for the task's
domain (`jaxo2o.presets`); an option given here wins over them, and --dry-run prints both
(`--no-presets`: the methods' defaults). `--grid pex.selection_inverse_temperature=1,10`
applies to one method. The work itself is the experiment runner's (`jaxo2o.experiment.runner`).

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
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import jax
import tyro

from jaxo2o.cli import one_line_errors
from jaxo2o.config import PROTOCOLS, ConfigError
from jaxo2o.core import distributed
from jaxo2o.core.checkpoint import finish_writes
from jaxo2o.core.distributed import DistributedConfig
from jaxo2o.core.loop import placeholder_dataset
from jaxo2o.core.runner import devices_used, enable_compilation_cache
from jaxo2o.core.shared_offline import offline_key
from jaxo2o.data.tiers import TIERS
from jaxo2o.experiment import Experiment
from jaxo2o.experiment.lines import Line, expand, given_run_options
from jaxo2o.experiment.results import DIP_TEXT
from jaxo2o.experiment.runner import SCORES, RunnerOptions, prepare, run_jobs
from jaxo2o.experiment.spec import parse_pairs
from jaxo2o.methods import method_names
from jaxo2o.provenance import provenance
from jaxo2o.report.aggregate import diverged_note, group_stats, split_diverged
from jaxo2o.report.files import atomic_write_text, read_csv, write_csv, write_json
from jaxo2o.report.stats import rliable_section
from jaxo2o.report.tables import markdown_table

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
    dry_run: bool = False  # validate, print the lines, presets, runs and memory, then stop
    presets: bool = True  # start each line from its method's official settings for the domain
    metrics_log: bool = False  # TensorBoard scalars per line in <line>/tensorboard (tensorboardX)
    devices: int = 0  # devices to shard the runs over (0 = all visible)
    # join a sweep run by several processes / hosts (see README, "More than one host")
    distributed: DistributedConfig = field(default_factory=DistributedConfig)


def fail(message: str) -> int:
    """A user's mistake: one line on stderr naming the option, exit status 2, no traceback."""
    print(f"error: {message}", file=sys.stderr)
    return 2


def offline_groups(plans: list[tuple[Line, Any]], devices: list | None) -> list[list[str]]:
    """The lines whose offline phases are one computation (`core.shared_offline.offline_key`),
    as groups of folders with more than one member."""

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

    return list(parse_pairs(exp.grid, "grid"))


def main(argv: list[str] | None = None) -> int:
    try:
        with one_line_errors():  # bad options and failed validation: one line, not tyro's box
            args = tyro.cli(SweepArgs, args=argv, description=__doc__)
    except (ConfigError, ValueError) as e:  # raised while building the validated configs
        return fail(str(e))
    distributed.initialize(args.distributed)  # before anything touches a device
    main_process = distributed.is_main_process()
    say = print if main_process else lambda *a, **k: None  # one process reports
    template = args.exp
    if not main_process:  # one progress bar (the setting does not change the numbers)
        quiet = dataclasses.replace(template.run, progress=False)
        template = dataclasses.replace(template, run=quiet)
    out = Path(args.out)
    devices = tuple(jax.devices()[: args.devices]) if args.devices else None
    try:
        if out.exists() and not out.is_dir():
            raise ConfigError(f"out: {out} is a file; name a folder for the results")
        if args.devices and distributed.multi_process():
            raise ConfigError(
                "devices: with several processes the runs are sharded over the devices of all "
                "of them; leave --devices at 0"
            )
        options = RunnerOptions(
            force=args.force,
            checkpoint_every=args.checkpoint_every,
            offline_cache=args.offline_cache,
            devices=devices,
            metrics_log=args.metrics_log,
        )
        given = given_run_options(sys.argv[1:] if argv is None else argv)
        lines = expand(
            template, args.methods, args.tasks, args.kinds, args.tier, args.presets, given
        )
        single = len(lines) == 1
        folders = {line.folder: out if single else out / line.folder for line in lines}
        if args.dry_run:  # the settings first: they need no dataset
            for line in lines:
                say(f"{line.folder}: preset {preset_text(line)}")
        dry = dataclasses.replace(options, force=True) if args.dry_run else options
        jobs = prepare(lines, out, dry, folders)
    except (ConfigError, ValueError, FileNotFoundError) as e:
        return fail(str(e))
    todo = [j for j in jobs if args.force or args.dry_run or not j.done]
    if not todo:
        what = "the finished results" if single else f"all {len(lines)} lines' finished results"
        say(f"{out} already holds {what} of these arguments; nothing to do")
        if single:
            return 0
    elif len(lines) > len(todo):
        say(f"{len(lines) - len(todo)} of {len(lines)} lines already finished in {out}")
    if args.dry_run:
        for job in todo:
            say(job.describe())
            say(f"  {job.line.folder}:", *job.plan.runs)
        plans = [(job.line, job.plan) for job in jobs]
        for group in offline_groups(plans, list(devices) if devices else None):
            say("one offline phase, computed once:", ", ".join(group))
        return 0
    enable_compilation_cache()
    try:
        for _ in run_jobs(jobs, options, say):
            pass
    except KeyboardInterrupt:
        finish_writes()
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
    results = [
        (line, read_csv(folders[line.folder] / "runs.csv"),
         read_csv(folders[line.folder] / "curves.csv"))
        for line in lines
    ]  # fmt: skip
    print(write_combined(out, results))
    meta = provenance() | {
        "lines": [{"folder": line.folder, "preset": line.preset,
                   "experiment": dataclasses.asdict(line.experiment)} for line in lines],
    }  # fmt: skip
    write_json(out / "meta.json", meta)
    print(f"wrote {out}/runs.csv, curves.csv, summary.md, meta.json and one folder per line")
    distributed.barrier("sweep: results written")
    return 0


def preset_text(line: Line) -> str:
    """The dry run's account of a line's official settings and what the user replaced."""
    if line.preset is None:
        return "none (the method's defaults and your options)"
    text = f"{line.preset['name']}: {line.preset['settings']}"
    overridden = line.preset["overridden_by_user"]
    return text + (f"; overridden by your options: {', '.join(overridden)}" if overridden else "")


if __name__ == "__main__":
    raise SystemExit(main())
