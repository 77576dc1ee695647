"""`make perf`: throughput and scaling benchmark; writes results/perf.md, perf.png, perf.json.

    python -m benchmarks.perf            # the full benchmark (about 20 minutes on 2 cores)
    python -m benchmarks.perf --quick    # a few minutes: every code path, fewer repeats

Measured in one run, each figure a median over repeats with its spread:
1. the machine's ceilings: float32 matmul rate (256 and 2048 square, JAX) and memory bandwidth;
2. per registered method: seed-updates per second of its update step (a jitted scan over a fixed
   batch, 1 and 8 seeds by vmap), its FLOPs per update (counted from the network shapes, checked
   against the traced program and XLA's cost analysis) and the achieved share of the matmul rate;
3. environment steps per second: `point` and Brax tasks on two backends;
4. a whole offline-to-online run (IQL, direct, on `point` with a synthetic dataset), each in
   its own process: compile time with a cold and a warm persistent cache, wall time split into
   compile and execution for 1, 2, 4, ... seeds, seeds sharded over 1 and 2 host devices, and
   device memory per seed against the sweep's estimate (`jaxo2o.experiment.estimate_memory`);
5. Gymnasium's v5 locomotion tasks on MJX: env-steps/s beside Brax's hopper and MuJoCo C, and
   the same whole IQL run on `Hopper-v5` and on Brax's `hopper` (`benchmarks.perf_locomotion`);
6. a full run's offline phase against an offline-only run of the same updates, alternating
   (`benchmarks.perf_phase`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np
import psutil

from benchmarks.perf_ceilings import copy_bandwidth, matmul_rate, paired_ratio, sum_bandwidth
from benchmarks.perf_env import build_env_bench
from benchmarks.perf_locomotion import measure_locomotion
from benchmarks.perf_phase import measure_phase
from benchmarks.perf_profile import breakdown
from benchmarks.perf_report import machine_info, plot, render
from benchmarks.perf_run import (
    BRAX_RUN,
    MAZE_RUN,
    batch_runs,
    chunked_vs_single,
    compile_cold_warm,
    memory_cap,
    memory_check,
)
from benchmarks.perf_stats import rates, time_calls
from benchmarks.perf_update import build_update_bench, update_flops
from jaxo2o.core.replay import replay_bytes
from jaxo2o.core.runner import enable_compilation_cache
from jaxo2o.experiment import update_workspace
from jaxo2o.methods import get_method, method_names
from jaxo2o.methods.iql import IQL
from jaxo2o.provenance import provenance
from jaxo2o.report.files import atomic_write_text, write_json

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mode:
    """How much to measure (the full default vs --quick)."""

    name: str
    repeats: int  # timed repeats of the ceilings and environment figures
    update_repeats: int  # timed (paired) repeats of every update figure
    matmul_iters: tuple[int, int]  # products per timed call at 256 and at 2048
    bandwidth_mib: int
    update_seeds: tuple[int, ...]
    update_steps: int  # updates per timed call
    profile: bool
    envs: tuple[tuple[str, str, int, int], ...]  # (task, backend, num_envs, steps per call)
    run_spec: dict[str, Any]
    run_repeats: int
    run_seeds: tuple[int, ...]
    device_seeds: tuple[int, ...]
    compile_repeats: int
    fresh_run_cache: bool  # scaling runs compile cold (True) or use the project's cache
    brax_compile_repeats: int = 0  # cold/warm compiles of the same run on a Brax task
    # section 5: the v5 tasks measured (with Brax's hopper beside them) and their env counts
    loco_tasks: tuple[str, ...] = ("Hopper-v5", "hopper")
    loco_envs: tuple[int, ...] = (1, 5, 64)  # 5: the whole run's evaluation episodes
    loco_steps: int = 100
    # section 6: offline and online steps of the full run, alternating rounds
    phase_steps: tuple[int, int] = (4_000, 4_000)
    phase_rounds: int = 3


_POINT = (("point", "positional", 1, 2000), ("point", "positional", 256, 200))
_MAZE = (("pointmaze-medium", "-", 1, 2000), ("pointmaze-medium", "-", 256, 200))
FULL = Mode(
    name="full",
    repeats=5,
    update_repeats=7,
    matmul_iters=(100, 2),
    bandwidth_mib=256,
    update_seeds=(1, 8),
    update_steps=20,
    profile=True,
    envs=_POINT
    + _MAZE
    + (
        ("inverted_double_pendulum", "positional", 1, 300),
        ("inverted_double_pendulum", "spring", 1, 300),
        ("hopper", "positional", 1, 300),
        ("hopper", "spring", 1, 300),
        ("hopper", "positional", 64, 50),
    ),
    run_spec={"offline_steps": 500, "online_steps": 500},
    run_repeats=3,
    run_seeds=(1, 2, 4, 8, 16),
    device_seeds=(2, 8),
    compile_repeats=3,
    fresh_run_cache=True,
    brax_compile_repeats=1,
    loco_tasks=("Hopper-v5", "Walker2d-v5", "HalfCheetah-v5", "Ant-v5", "hopper"),
)
QUICK = Mode(
    name="quick",
    repeats=3,
    update_repeats=3,
    matmul_iters=(50, 1),
    bandwidth_mib=64,
    update_seeds=(1, 8),
    update_steps=4,
    profile=True,
    envs=_POINT + _MAZE + (("inverted_double_pendulum", "positional", 1, 100),),
    run_spec={"offline_steps": 100, "online_steps": 100},
    run_repeats=2,
    run_seeds=(1, 2),
    device_seeds=(2,),
    compile_repeats=1,
    fresh_run_cache=False,
    loco_envs=(1, 5),
    loco_steps=20,
    phase_steps=(400, 400),
    phase_rounds=1,
)


# the update benchmark's shapes: width and batch 256 (the networks' defaults), and the
# observation/action sizes of a D4RL-style locomotion task (halfcheetah: 17 and 6)
OBS_SIZE, ACT_SIZE, BATCH = 17, 6, 256


def log(msg: str) -> None:
    print(f"[perf {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ sections
def measure_ceilings(mode: Mode) -> dict[str, Any]:

    out = {
        "matmul_256": matmul_rate(256, mode.matmul_iters[0], mode.repeats + 2),
        "matmul_2048": matmul_rate(2048, mode.matmul_iters[1], mode.repeats),
        "copy_gbs": copy_bandwidth(mode.bandwidth_mib, mode.repeats + 2),
        "sum_gbs": sum_bandwidth(mode.bandwidth_mib, mode.repeats + 2),
    }
    log("ceilings: " + ", ".join(f"{k} {v.median:.3g}" for k, v in out.items()))
    return {k: v.as_dict() for k, v in out.items()} | {"bandwidth_mib": mode.bandwidth_mib}


def measure_updates(mode: Mode) -> dict[str, Any]:

    out: dict[str, Any] = {}
    for name in method_names():
        method = get_method(name)()
        entry: dict[str, Any] = {
            "hidden": list(method.config.hidden),
            "n_critics": getattr(method.config, "n_critics", None),
            "flops": update_flops(method, OBS_SIZE, ACT_SIZE, BATCH),
            "seeds": {},
        }
        fl = entry["flops"]
        for seeds in mode.update_seeds:
            bench = build_update_bench(method, OBS_SIZE, ACT_SIZE, BATCH, seeds, mode.update_steps)
            fl.setdefault("xla_flops", bench.xla_flops_per_update)
            useful = fl.get("counted_flops", fl["xla_flops"]) - fl.get("recomputed_flops", 0)
            fl["useful_flops"] = useful
            work = useful * seeds * mode.update_steps
            rate, ceil, ratio = paired_ratio(bench.call, work, 256, mode.update_repeats)
            entry["seeds"][str(seeds)] = {
                "compile_seconds": bench.compile_seconds,
                "seed_updates_per_s": rate.scaled(1e9 / useful).as_dict(),
                "gflops": rate.as_dict(),
                "ceiling_gflops": ceil.as_dict(),
                "ratio": ratio.as_dict(),
                # the fastest update over the fastest ceiling: the least disturbed repeats
                "best_ratio": rate.hi / ceil.hi,
            }
            log(
                f"update {name} x{seeds}: {rate.median * 1e9 / useful:.1f} seed-updates/s, "
                f"{rate.median:.1f} GFLOP/s = {ratio.median:.0%} of the paired 256 matmul"
            )
            if mode.profile and seeds == 1:
                hlo = bench.compiled.as_text()
                entry["profile"] = breakdown(bench.call, hlo, 2, mode.update_steps)
        out[name] = entry
    return out


def measure_envs(mode: Mode) -> list[dict[str, Any]]:

    rows = []
    for task, backend, num_envs, steps in mode.envs:
        length = 100 if task == "point" else 1000
        bench = build_env_bench(task, backend, num_envs, steps, length)
        r = rates(bench.steps_per_call, time_calls(bench.call, mode.repeats))
        rows.append(
            {
                "task": task,
                "backend": backend if task != "point" else "-",
                "num_envs": num_envs,
                "steps_per_call": bench.steps_per_call,
                "compile_seconds": bench.compile_seconds,
                "steps_per_s": r.as_dict(),
            }
        )
        log(f"env {task}/{backend} x{num_envs}: {r.median:.0f} steps/s")
    return rows


def measure_run(mode: Mode) -> dict[str, Any]:

    spec = dict(mode.run_spec)
    out: dict[str, Any] = {"spec": spec}
    out["compile"] = compile_cold_warm(spec, mode.compile_repeats)
    c = out["compile"]
    log(
        f"whole-run compile: cold {c['cold']['compile_seconds']['median']:.1f} s, "
        f"warm {c['warm']['compile_seconds']['median']:.1f} s"
    )
    out["compile_maze"] = compile_cold_warm(spec | MAZE_RUN, mode.compile_repeats)
    c = out["compile_maze"]
    log(
        f"whole-run compile on {MAZE_RUN['task']}: cold "
        f"{c['cold']['compile_seconds']['median']:.1f} s, warm "
        f"{c['warm']['compile_seconds']['median']:.1f} s"
    )
    if mode.brax_compile_repeats:
        out["compile_brax"] = compile_cold_warm(BRAX_RUN, mode.brax_compile_repeats)
        c = out["compile_brax"]
        log(
            f"whole-run compile on {BRAX_RUN['task']}: cold "
            f"{c['cold']['compile_seconds']['median']:.1f} s, warm "
            f"{c['warm']['compile_seconds']['median']:.1f} s"
        )
    if mode.fresh_run_cache:
        folder = tempfile.mkdtemp(prefix="jaxo2o-perf-cache-")
    else:
        folder = enable_compilation_cache()
    try:
        out["chunked_vs_single"] = chunked_vs_single(spec, mode.run_repeats, folder)
        log(f"chunked / single run time: {out['chunked_vs_single']['chunked_over_single']:.3f}")
        out["scaling"] = batch_runs(spec, list(mode.run_seeds), 1, mode.run_repeats, folder)
        for r in out["scaling"]:
            log(
                f"run x{r['seeds']} on 1 device: compile {r['compile_seconds']:.1f} s, "
                f"run {r['run_seconds']['median']:.1f} s"
            )
        out["devices2"] = batch_runs(spec, list(mode.device_seeds), 2, mode.run_repeats, folder)
        for r in out["devices2"]:
            log(f"run x{r['seeds']} on 2 devices: run {r['run_seconds']['median']:.1f} s")
    finally:
        if mode.fresh_run_cache:
            shutil.rmtree(folder, ignore_errors=True)
    mem = memory_check(out["scaling"])
    avail = psutil.virtual_memory().available
    est = out["scaling"][0]["estimate"]
    mem["available_bytes"] = avail
    mem["cap_seeds"] = memory_cap(est["per_run"], est["dataset"], avail)
    out["memory"] = mem
    log(
        f"memory per seed: estimate {mem['estimate_per_seed'] / 2**20:.2f} MiB, compiled "
        f"{mem['compiled_per_seed'] / 2**20:.2f} MiB (ratio {mem['estimate_over_compiled']:.2f})"
    )
    return out


def measure_locomotion_section(mode: Mode) -> dict[str, Any]:

    return measure_locomotion(
        mode.loco_tasks, mode.loco_envs, mode.loco_steps, mode.repeats, log=log
    )


def measure_phase_section(mode: Mode) -> dict[str, Any]:

    return measure_phase(*mode.phase_steps, mode.phase_rounds, log=log)


def paper_scale_memory() -> dict[str, Any]:
    """The estimate for a paper-tier run (2x256 IQL, 1M-row buffer on hopper), to show where the
    memory limit starts to bind the number of seeds."""

    obs, act, rows = 11, 3, 1_000_000  # hopper; the dataset has 1M rows too
    method = IQL()
    hp = method.default_hparams()
    state = jax.eval_shape(lambda k: method.init(k, obs, act, hp), jax.random.PRNGKey(0))
    state_b = sum(int(np.prod(x.shape)) * x.dtype.itemsize for x in jax.tree.leaves(state))
    per_run = replay_bytes(rows, obs, act) + 2 * state_b
    per_run += update_workspace(method, obs, act, 256, True)
    dataset = replay_bytes(rows, obs, act)
    avail = psutil.virtual_memory().available
    return {
        "per_run": per_run,
        "dataset": dataset,
        "cap_seeds": memory_cap(per_run, dataset, avail),
    }


# ------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few-minute check of every path")
    parser.add_argument("--out", default=str(REPO / "results"), help="folder for perf.*")
    parser.add_argument(
        "--sections",
        default="ceilings,updates,envs,run,locomotion,phase",
        help="comma-separated subset of ceilings,updates,envs,run,locomotion,phase",
    )
    args = parser.parse_args(argv)
    mode = QUICK if args.quick else FULL
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]

    cache = enable_compilation_cache()

    t0 = time.time()
    results: dict[str, Any] = {
        "meta": provenance()
        | {
            "mode": mode.name,
            "command": " ".join(["python -m benchmarks.perf", *(argv or sys.argv[1:])]),
            "machine_info": machine_info(),
            "load_average_start": list(os.getloadavg()),
            "compilation_cache": cache,
            "shapes": {"obs": OBS_SIZE, "act": ACT_SIZE, "batch": BATCH},
        }
    }
    steps = {
        "ceilings": measure_ceilings,
        "updates": measure_updates,
        "envs": measure_envs,
        "run": measure_run,
        "locomotion": measure_locomotion_section,
        "phase": measure_phase_section,
    }
    unknown = [name for name in sections if name not in steps]
    if unknown:
        print(f"error: sections: unknown {unknown}; choose from {list(steps)}", file=sys.stderr)
        return 2
    for name in sections:
        log(f"section {name} ...")
        results[name] = steps[name](mode)
        results["meta"].setdefault("load_average_sections", []).append(os.getloadavg()[0])
    if "run" in sections:
        results["paper_scale_memory"] = paper_scale_memory()
    results["meta"]["load_average_end"] = list(os.getloadavg())
    results["meta"]["wall_seconds"] = time.time() - t0

    out = Path(args.out)
    write_json(out / "perf.json", results)
    plot(results, out / "perf.png")
    atomic_write_text(out / "perf.md", render(results))
    log(f"wrote {out}/perf.md, perf.png, perf.json in {results['meta']['wall_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
