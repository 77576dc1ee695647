"""The experiment runner: the one path from lines to result files, under `python -m
jaxo2o.sweep`, `make bench` and every study.

    for job, result in run_lines(lines, out, options):  # check all, then run what is not done
        ...

`run_lines` is `prepare` (finished? plan, memory: every line checked before anything compiles)
then `run_jobs` (run what is not finished, write its files); the sweep calls the two apart, to
print a dry run between them.

A line (`experiment.lines.Line`) is one experiment and its folder. For each line the runner
  1. skips it when its folder already holds the finished results of exactly this experiment
     (`finished`; another experiment's results are an error unless `replace_other`);
  2. plans it (validation, before anything compiles) and estimates its memory;
  3. runs it: checkpoints in <folder>/checkpoints every `checkpoint_every` evaluation intervals
     (an interrupted run continues from the last one), offline phases shared through
     `offline_cache`, the host hooks between chunks (progress, divergence flags, and a
     TensorBoard logger with `metrics_log`);
  4. writes runs.csv, curves.csv, summary.md, curves.png and meta.json (`write_result`), calls
     the line's `after`, and removes its checkpoints.
With several processes (`core.distributed`) every process runs every line and process 0 writes.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxo2o.config import ConfigError
from jaxo2o.core import distributed
from jaxo2o.core.checkpoint import Checkpointer
from jaxo2o.core.hooks import ChunkHook, MetricsLogger
from jaxo2o.data import load_dataset
from jaxo2o.experiment.final_state import save_final_state
from jaxo2o.experiment.lines import Line
from jaxo2o.experiment.memory import check_memory
from jaxo2o.experiment.plan import plan
from jaxo2o.experiment.planned import Plan
from jaxo2o.experiment.results import ExperimentResult, dip_text, execute
from jaxo2o.experiment.spec import Experiment
from jaxo2o.provenance import provenance
from jaxo2o.report.aggregate import diverged_note, group_stats, split_diverged
from jaxo2o.report.files import atomic_write_text, write_csv, write_json
from jaxo2o.report.plots import plot_curves
from jaxo2o.report.tables import markdown_table

SCORES = ("offline_final", "online_start", "online_dip", "online_final")


@dataclass(frozen=True)
class RunnerOptions:
    force: bool = False  # rerun finished lines (their checkpoints are cleared)
    replace_other: bool = False  # a folder with another experiment's results: rerun (else error)
    checkpoint_every: int = 1  # evaluation intervals between checkpoints (0 = none)
    offline_cache: str = ".cache/offline"  # shared offline phases ("" = do not share)
    devices: tuple | None = None  # devices to shard over (None = all)
    metrics_log: bool = False  # TensorBoard scalars in <folder>/tensorboard (tensorboardX)

    def __post_init__(self):
        if self.checkpoint_every < 0:
            raise ConfigError(f"checkpoint_every: must be >= 0, got {self.checkpoint_every}")


@dataclass
class Job:
    """A line, checked and planned: where its files go and whether they are already there."""

    line: Line
    folder: Path
    plan: Plan
    memory: dict[str, int]
    done: bool  # its folder holds its finished results

    def describe(self) -> str:
        p, est = self.plan, self.memory
        return (
            f"{self.line.folder}: {p.n_runs} runs ({p.experiment.seeds} seeds x "
            f"{p.n_runs // p.experiment.seeds} grid points), estimated memory "
            f"{est['total'] / 2**20:.1f} MiB ({est['per_run'] / 2**20:.2f} MiB per run)"
        )


def comparable(experiment: dict) -> dict:
    """An experiment's settings as far as they decide its numbers: without the progress bar,
    and its "name=value" options as values by name (so "3" and "3.0", or the same options in
    another order, are one experiment, as `experiment.plan` reads them)."""
    run = {k: v for k, v in experiment.get("run", {}).items() if k != "progress"}
    options = {
        key: {name: _value(value) for name, _, value in (o.partition("=") for o in items)}
        for key in ("hparams", "method_config", "grid")
        if isinstance(items := experiment.get(key), list | tuple)
    }
    return experiment | {"run": run} | options


def _value(text: str) -> tuple:
    """An option's value: numbers (a grid's comma-separated list too) as floats."""
    try:
        return tuple(float(v) for v in text.split(",") if v)
    except ValueError:
        return (text,)


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


def _finished_everywhere(folder: Path, exp: Experiment) -> bool | None:
    """`finished` as process 0 (the one that writes) sees it, in every process."""
    done = finished(folder, exp)
    if distributed.multi_process():
        code = {None: -1, False: 0, True: 1}[done]
        done = {-1: None, 0: False, 1: True}[int(distributed.from_main(np.int32(code)))]
    return done


def prepare(
    lines: list[Line],
    out: Path,
    options: RunnerOptions,
    folders: dict[str, Path] | None = None,
    datasets: dict[str, Any] | None = None,
) -> list[Job]:
    """Check and plan every line before anything compiles. `folders`: a line's folder by its
    `Line.folder` (default out/<line.folder>); `datasets`: loaded datasets by id, shared with
    the caller (filled here). A ConfigError names the line when there are several."""
    datasets = {} if datasets is None else datasets
    jobs = []
    for line in lines:
        folder = (folders or {}).get(line.folder, out / line.folder)
        try:
            jobs.append(_prepare_one(line, folder, options, datasets))
        except (ConfigError, ValueError, FileNotFoundError) as e:
            where = f"line {line.label} on {line.task} {line.kind}: " if len(lines) > 1 else ""
            raise ConfigError(where + str(e)) from e
    return jobs


def _prepare_one(line: Line, folder: Path, options: RunnerOptions, datasets: dict) -> Job:
    exp = line.experiment
    done = _finished_everywhere(folder, exp)
    if done is False and not options.force and not options.replace_other:
        raise ConfigError(
            f"out: {folder} already holds results of other arguments; pass --force to replace them"
        )
    if exp.dataset and exp.dataset not in datasets:
        datasets[exp.dataset] = load_dataset(exp.dataset)
    p = plan(exp, datasets.get(exp.dataset))  # a ConfigError names the field
    return Job(line, folder, p, check_memory(p), bool(done))


def run_lines(
    lines: list[Line],
    out: Path,
    options: RunnerOptions,
    folders: dict[str, Path] | None = None,
    datasets: dict[str, Any] | None = None,
    say: Any = print,
) -> Iterator[tuple[Job, ExperimentResult | None]]:
    """The runner's entry point: every line checked and planned (`prepare`), then run and
    written (`run_jobs`); yields (job, result) per line, result None when finished earlier."""
    yield from run_jobs(prepare(lines, out, options, folders, datasets), options, say)


def run_jobs(
    jobs: list[Job], options: RunnerOptions, say: Any = print
) -> Iterator[tuple[Job, ExperimentResult | None]]:
    """Run the jobs that are not finished (all with `force`), one after the other, writing each
    one's files; yields (job, result) after each, result None for a line finished earlier."""
    for job in jobs:
        if job.done and not options.force:
            meta = json.loads((job.folder / "meta.json").read_text())
            say(f"== {job.line.folder}: finished earlier (revision {meta.get('git_revision')})")
            yield job, None
            continue
        say(f"== {job.describe()}", flush=True)
        res = run_one(job, options)
        b = res.batch
        shared = ", offline phase shared" if b.offline_from == "shared" else ""
        say(f"   compile {b.compile_seconds:.0f} s, run {b.run_seconds:.0f} s{shared}", flush=True)
        yield job, res


def run_one(job: Job, options: RunnerOptions) -> ExperimentResult:
    """Run one planned line (resuming from its checkpoints) and write its files (process 0;
    every process holds the full results)."""
    line, folder = job.line, job.folder
    ckpt_dir = folder / "checkpoints"
    if options.force and ckpt_dir.exists():
        Checkpointer(ckpt_dir, "").clear()  # by process 0
    distributed.barrier("runner: old checkpoints cleared")  # before any process looks for one
    every = options.checkpoint_every
    res = execute(
        job.plan,
        devices=list(options.devices) if options.devices else None,
        desc=f"{line.task}/{line.kind or 'data'}/{line.label}",
        hooks=line_hooks(job, options),
        checkpoint_dir=ckpt_dir if every else None,
        checkpoint_every=max(every, 1),
        shared_offline=options.offline_cache or None,
    )
    if distributed.is_main_process():
        exp = line.experiment
        title = f"{line.label} ({exp.method}, {exp.run.protocol}) on {exp.env.task} {exp.dataset}"
        write_result(folder, res, title, {"preset": line.preset})
        if line.after is not None:
            line.after(job.plan, res, job.plan.dataset, folder)
        if ckpt_dir.exists():  # the results are written: the checkpoints are no longer needed
            Checkpointer(ckpt_dir, "").clear()
    return res


def line_hooks(job: Job, options: RunnerOptions) -> list[ChunkHook]:
    """The optional hooks of a line's host loop (progress, divergence flags, checkpoints and
    the shared offline phase are always on)."""
    if not options.metrics_log or not distributed.is_main_process():
        return []
    return [MetricsLogger(job.folder / "tensorboard", job.plan.trainer.run)]


def write_result(out: Path, res: ExperimentResult, title: str, extra: dict | None = None) -> None:
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
    write_json(out / "meta.json", meta | (extra or {}))
    plot_curves(res.curves, out / "curves.png", title, label_keys=by)
