"""`make perf` section 5: Gymnasium's v5 locomotion tasks on MJX beside Brax and MuJoCo C.

1. Env-steps/s: `steps` random-action steps with auto-reset as one compiled `lax.scan`
   (`perf_env.build_env_bench`), for 1 and `envs` environments side by side, of every MJX port
   and of Brax's `hopper` (positional backend, the quick tier's kind of task); and Gymnasium's own
   env (MuJoCo C, one environment on the host, random actions, resets at episode ends).
2. A whole offline-to-online IQL run (`perf_worker`, 1 seed, the same spec on both tasks) on
   `Hopper-v5` and on Brax's `hopper`: compile with a cold and a warm persistent cache, the run's
   wall time, and the share of it that its environment steps take at the section's measured
   rates (online steps: one environment; evaluations: `eval_episodes` environments side by side).

    python -m benchmarks.perf_locomotion [--tasks Hopper-v5 hopper] [--envs 64] [--steps 100]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from typing import Any

import gymnasium as gym
import numpy as np

from benchmarks.perf_env import build_env_bench
from benchmarks.perf_markdown import spread_text, table
from benchmarks.perf_run import batch_runs, run_worker
from benchmarks.perf_stats import rates, spread, time_calls
from jaxo2o.envs.locomotion import LOCOMOTION_TASKS

# the whole run: IQL, direct protocol, 2x64 networks, batch 256, on a 2,000-step random dataset;
# 1,000 offline updates, 1,000 online steps; 5 evaluation episodes of up to 1,000 steps, twice a
# phase (`perf_worker.build_plan`)
WHOLE_RUN = {
    "dataset_rows": 2000,
    "offline_steps": 1000,
    "online_steps": 1000,
    "eval_episodes": 5,
    "episode_length": 1000,
}
BRAX_HOPPER = {"task": "hopper", "backend": "positional"}


def mujoco_c_rate(task: str, steps: int, repeats: int) -> dict[str, float]:
    """Env-steps/s of Gymnasium's own env (MuJoCo C), one environment, spread over repeats."""
    env = gym.make(task)
    env.action_space.seed(0)
    env.reset(seed=0)
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            _, _, term, trunc, _ = env.step(env.action_space.sample())
            if term or trunc:
                env.reset()
        out.append(steps / (time.perf_counter() - t0))
    env.close()
    return spread(out).as_dict()


def env_rows(
    tasks: tuple[str, ...], envs: tuple[int, ...], steps: int, repeats: int, log: Any = print
) -> list[dict[str, Any]]:
    """Env-steps/s rows: each task on the device for every count in `envs`, and each MJX port's
    reference (MuJoCo C) with one environment."""
    rows = []
    for task in tasks:
        mjx = task in LOCOMOTION_TASKS
        sim = "MJX (jaxo2o port)" if mjx else "Brax positional"
        for n in envs:
            bench = build_env_bench(task, "positional", n, steps, 1000)
            r = rates(bench.steps_per_call, time_calls(bench.call, repeats))
            rows.append(
                {
                    "task": task,
                    "simulator": sim,
                    "num_envs": n,
                    "compile_seconds": bench.compile_seconds,
                    "steps_per_s": r.as_dict(),
                }
            )
            log(f"locomotion {task} ({sim}) x{n}: {r.median:,.0f} env-steps/s")
        if mjx:
            r = mujoco_c_rate(task, 20 * steps, repeats)
            rows.append(
                {
                    "task": task,
                    "simulator": "MuJoCo C (Gymnasium)",
                    "num_envs": 1,
                    "compile_seconds": None,
                    "steps_per_s": r,
                }
            )
            log(f"locomotion {task} (MuJoCo C) x1: {r['median']:,.0f} env-steps/s")
    return rows


def whole_runs(repeats: int, log: Any = print) -> dict[str, Any]:
    """The same IQL run on Hopper-v5 (MJX) and Brax's hopper: every chunk program compiled with a
    fresh persistent cache (cold), again in a new process with it (warm), then the run executed
    `repeats` times by a third process on that cache."""
    out: dict[str, Any] = {"spec": WHOLE_RUN}
    for name, task in (("Hopper-v5", {"task": "Hopper-v5"}), ("hopper", BRAX_HOPPER)):
        spec = WHOLE_RUN | task
        folder = tempfile.mkdtemp(prefix="jaxo2o-perf-cache-")
        try:
            cold = run_worker(spec | {"compile_only": True}, folder)
            warm = run_worker(spec | {"compile_only": True}, folder)
            run = batch_runs(spec, [1], 1, repeats, folder)[0]
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        out[name] = {
            "compile_cold_seconds": cold["compile_seconds"],
            "compile_warm_seconds": warm["compile_seconds"],
            "run": run,
        }
        log(
            f"locomotion whole run on {name}: compile cold {cold['compile_seconds']:.1f} s, "
            f"warm {warm['compile_seconds']:.1f} s, run {run['run_seconds']['median']:.1f} s"
        )
    return out


def measure_locomotion(
    tasks: tuple[str, ...], envs: tuple[int, ...], steps: int, repeats: int, log: Any = print
) -> dict[str, Any]:
    return {
        "envs": env_rows(tasks, envs, steps, repeats, log),
        "whole_run": whole_runs(repeats, log),
    }


def render_section(loco: dict[str, Any]) -> str:
    """Section 5 of results/perf.md."""
    rows = [
        [
            r["task"],
            r["simulator"],
            str(r["num_envs"]),
            spread_text(r["steps_per_s"]),
            "-" if r["compile_seconds"] is None else f"{r['compile_seconds']:.1f}",
        ]
        for r in loco["envs"]
    ]
    whole = loco["whole_run"]
    spec = whole["spec"]
    brax_s = whole["hopper"]["run"]["run_seconds"]["median"]
    run_rows = []
    for task in ("Hopper-v5", "hopper"):
        w = whole[task]
        run = w["run"]
        n_eval = run.get("evaluations") or 0
        eval_steps = n_eval * spec["eval_episodes"] * spec["episode_length"]
        run_s = run["run_seconds"]["median"]
        extra = f"{(run_s - brax_s) / run_s:.0%}" if task != "hopper" else "-"
        run_rows.append(
            [
                task,
                f"{w['compile_cold_seconds']:.1f}",
                f"{w['compile_warm_seconds']:.1f}",
                spread_text(run["run_seconds"]),
                f"{run_s / brax_s:.1f}",
                f"{spec['online_steps']:,} + {eval_steps:,} ({n_eval} evaluations)",
                extra,
            ]
        )
    return (
        "\n## 5. Standard locomotion: Gymnasium's v5 tasks on MJX\n\n"
        "Env-steps/s as in section 3 (a jitted scan of auto-resetting steps with random "
        "actions) for the MJX ports of Gymnasium's v5 tasks (`jaxo2o/envs/locomotion.py`, "
        "Gymnasium's own XML and solver settings) beside Brax's `hopper` (positional backend) "
        "and Gymnasium's env itself (MuJoCo C, one environment on the host, random actions). "
        "Compile seconds: the scan alone, in this process (persistent cache on).\n\n"
        + table(["task", "simulator", "envs", "env steps/s", "compile s"], rows)
        + "\nThe same whole offline-to-online IQL run (direct, 1 seed, 2x64 networks, batch 256, "
        f"{spec['offline_steps']:,} offline updates on a {spec['dataset_rows']:,}-step random "
        f"dataset, {spec['online_steps']:,} online steps, {spec['eval_episodes']} evaluation "
        f"episodes of {spec['episode_length']:,} steps) on `Hopper-v5` (MJX) and on Brax's "
        "`hopper`, each in its own process (`perf_worker`): compile of every chunk program with "
        "a cold and a warm persistent cache, then the run (compiled once, executed "
        "repeatedly on that cache). Both runs make the same updates and the same number of "
        "environment steps (online + evaluation; an evaluation always scans the full episode "
        "length, its episodes side by side), so the difference of their run times is what the "
        "exact physics costs beyond Brax's: a lower bound on the share of the `Hopper-v5` run "
        "spent in physics.\n\n"
        + table(
            [
                "task",
                "compile cold s",
                "compile warm s",
                "run s",
                "x hopper's run",
                "env steps (online + evaluation)",
                "physics share, at least",
            ],
            run_rows,
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", nargs="*", default=["Hopper-v5", "hopper"])
    ap.add_argument("--envs", type=int, default=64)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rows = env_rows(tuple(args.tasks), (1, WHOLE_RUN["eval_episodes"], args.envs), args.steps,
                    args.repeats)  # fmt: skip
    print("| task | simulator | envs | compile s | env-steps/s |\n|---|---|---|---|---|")
    for r in rows:
        c = "-" if r["compile_seconds"] is None else f"{r['compile_seconds']:.1f}"
        rate = float(np.median(r["steps_per_s"]["median"]))
        print(f"| {r['task']} | {r['simulator']} | {r['num_envs']} | {c} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
