"""Cost of an evaluation on the MJX mazes (`envs/gr_maze.py`) with 10 vs 100 episodes.

Runs `core.evaluation.evaluate` (the function every run uses) with the deterministic waypoint
controller (`envs/gr_waypoints.py`) as the policy, from the env's own noisy starts and goals;
prints the compile time, the median wall time of a compiled evaluation over `--repeats`, the
env steps per second, and the success rate (sparse reward: an episode succeeded iff its return
is positive).

    PYTHONPATH=. python -m benchmarks.maze_eval_cost --tasks PointMaze_UMaze-v3 --episodes 10 100

`--eval-spec`: on the D4RL-style evaluation env the pointmaze datasets store
(`data.gr_pointmaze.evaluation_env`: one goal cell) instead of the registered env; `--seeds S`:
S evaluations vmapped in one program, as a sweep of S seeds runs them.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from jaxo2o.core.evaluation import evaluate
from jaxo2o.data.gr_pointmaze import evaluation_env
from jaxo2o.envs.gr_maze import GRMaze, success_rate
from jaxo2o.envs.gr_waypoints import WaypointController


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=["PointMaze_UMaze-v3"])
    ap.add_argument("--episodes", nargs="+", type=int, default=[10, 100])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--eval-spec", action="store_true")
    ap.add_argument("--seeds", type=int, default=1)
    args = ap.parse_args()
    s = args.seeds
    for task in args.tasks:
        env = evaluation_env(task) if args.eval_spec else GRMaze(task)
        ctrl = WaypointController(env)
        policy = lambda obs, key, ctrl=ctrl: ctrl(obs)
        for n in args.episodes:
            one = lambda k, n=n, env=env, policy=policy: evaluate(env, policy, k, n)
            f = jax.jit(lambda k, one=one: jax.vmap(one)(jax.random.split(k, s)))
            t0 = time.perf_counter()
            jax.block_until_ready(f(jax.random.key(0)))
            compile_s = time.perf_counter() - t0
            times, rates = [], []
            for r in range(args.repeats):
                t0 = time.perf_counter()
                res = jax.block_until_ready(f(jax.random.key(r + 1)))
                times.append(time.perf_counter() - t0)
                rates.append(100 * success_rate(res.returns))
            med = float(np.median(times))
            steps = s * n * env.episode_length
            print(
                f"{task}{' (eval spec)' if args.eval_spec else ''}: {s} x {n} episodes x "
                f"{env.episode_length} steps: compile {compile_s:.1f} s, "
                f"run median {med:.2f} s ({steps / med:,.0f} env-steps/s), success "
                f"{', '.join(f'{x:.0f}' for x in rates)} %",
                flush=True,
            )


if __name__ == "__main__":
    main()
