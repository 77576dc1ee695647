"""`python -m jaxo2o.sweep`: one method on one task, many seeds x a hyperparameter grid, compiled
once. Writes runs.csv (one row per run), curves.csv (every evaluation), summary.md, curves.png and
meta.json (the config, package versions, git revision, machine, timings) to --out.

Checkpoints go to --out/checkpoints every --checkpoint-every evaluation intervals (and at the end
of each phase): a sweep stopped at any moment (Ctrl-C, kill -9) and run again with the same
arguments continues from the last one; a finished sweep run again with the same arguments does
nothing; --force starts over. Runs whose losses or parameters became non-finite are flagged in
runs.csv (diverged_phase, diverged_step) and left out of summary.md's aggregates.

Example:
    python -m jaxo2o.sweep --method iql --dataset jaxo2o/point/medium-smoke-v0 \\
        --env.task point --env.episode-length 100 --run.offline-steps 2000 \\
        --run.online-steps 2000 --seeds 4 --grid expectile=0.7,0.9 --out results/sweeps/demo

Several processes (hosts) run one sweep together when each is started with the same arguments
plus --distributed.coordinator HOST0:PORT --distributed.num-processes N
--distributed.process-id I (or --distributed.auto under SLURM / Open MPI): the runs are sharded
over the devices of all of them; process 0 writes the checkpoints and result files, so --out must
be on a filesystem every host shares.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import jax
import numpy as np
import tyro

from jaxo2o.config import ConfigError
from jaxo2o.core import distributed
from jaxo2o.core.distributed import DistributedConfig
from jaxo2o.core.runner import enable_compilation_cache
from jaxo2o.experiment import Experiment, ExperimentResult, check_memory, execute, plan
from jaxo2o.report.aggregate import diverged_note, group_stats, split_diverged
from jaxo2o.report.files import atomic_write_text, provenance, write_csv, write_json
from jaxo2o.report.plots import plot_curves
from jaxo2o.report.tables import markdown_table

SCORES = ("offline_final", "online_start", "online_dip", "online_final")


@dataclass(frozen=True)
class SweepArgs:
    exp: Annotated[Experiment, tyro.conf.arg(name="")] = field(default_factory=Experiment)
    out: str = "results/sweeps/latest"  # folder for the result files
    force: bool = False  # replace results already in --out, ignore its checkpoints
    checkpoint_every: int = 1  # evaluation intervals between checkpoints (0 = no checkpoints)
    dry_run: bool = False  # validate, print the runs and the memory estimate, then stop
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
    scale = "normalized score" if res.plan.ref_scores else "raw return (no reference scores)"
    text = (
        f"# {title}\n\n{scale}; mean ± std over {exp.seeds} seeds per line; "
        f"dip = lowest score in the first tenth of the online phase.\n\n"
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


def main(argv: list[str] | None = None) -> int:
    try:
        args = tyro.cli(SweepArgs, args=argv, description=__doc__)
    except (ConfigError, ValueError) as e:  # raised while building the validated configs
        return fail(str(e))
    distributed.initialize(args.distributed)  # before anything touches a device
    main_process = distributed.is_main_process()
    say = print if main_process else lambda *a, **k: None  # one process reports
    exp = args.exp
    if not main_process:  # one progress bar (the setting does not change the numbers)
        exp = dataclasses.replace(exp, run=dataclasses.replace(exp.run, progress=False))
    out = Path(args.out)
    try:
        if args.checkpoint_every < 0:
            raise ConfigError(f"checkpoint_every: must be >= 0, got {args.checkpoint_every}")
        if args.devices and distributed.multi_process():
            raise ConfigError(
                "devices: with several processes the runs are sharded over the devices of all "
                "of them; leave --devices at 0"
            )
        done = finished(out, args.exp)
        if distributed.multi_process():  # what process 0 (the one that writes) sees
            code = {None: -1, False: 0, True: 1}[done]
            done = {-1: None, 0: False, 1: True}[int(distributed.from_main(np.int32(code)))]
        if done is not None and not args.force and not args.dry_run:
            if done:
                say(f"{out} already holds the finished results of these arguments; nothing to do")
                return 0
            raise ConfigError(
                f"out: {out} already holds results of other arguments; pass --force to replace them"
            )
        p = plan(exp)
        est = check_memory(p)
    except (ConfigError, ValueError, FileNotFoundError) as e:
        return fail(str(e))
    say(
        f"{p.n_runs} runs ({args.exp.seeds} seeds x {p.n_runs // args.exp.seeds} grid points), "
        f"estimated memory {est['total'] / 2**20:.1f} MiB "
        f"({est['per_run'] / 2**20:.2f} MiB per run)"
    )
    if args.dry_run:
        for r in p.runs:
            say("  ", r)
        return 0
    enable_compilation_cache()
    devices = jax.devices()[: args.devices] if args.devices else None
    ckpt_dir = out / "checkpoints"
    if args.force and ckpt_dir.exists():
        from jaxo2o.core.checkpoint import Checkpointer

        Checkpointer(ckpt_dir, "").clear()  # by process 0
    distributed.barrier("sweep: old checkpoints cleared")  # before any process looks for one
    every = args.checkpoint_every
    res = execute(p, devices=devices, checkpoint_dir=ckpt_dir if every else None,
                  checkpoint_every=max(every, 1))  # fmt: skip
    if main_process:  # every process holds the full results; process 0 writes them
        title = f"{args.exp.method} on {args.exp.env.task} {args.exp.dataset}".strip()
        write_result(out, res, title)
        if ckpt_dir.exists():  # the results are written: the checkpoints are no longer needed
            from jaxo2o.core.checkpoint import Checkpointer

            Checkpointer(ckpt_dir, "").clear()
        print((out / "summary.md").read_text())
        print(f"wrote {out}/runs.csv, curves.csv, summary.md, curves.png, meta.json")
    distributed.barrier("sweep: results written")  # every process exits once they are
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
