"""Env-steps/s of the MJX ports of Gymnasium's v5 tasks beside Brax's hopper and MuJoCo C.

Device tasks: `steps` random-action environment steps with auto-reset, as one compiled
`lax.scan`, for 1 and `--envs` environments side by side; reported: compile seconds (first call,
without the persistent cache) and the median steps/s over `--repeats` timed calls. MuJoCo C:
Gymnasium's own env, one environment, random actions, resets at episode ends.

    python -m benchmarks.perf_locomotion [--tasks Hopper-v5 hopper] [--envs 64] [--steps 200]
"""

from __future__ import annotations

import argparse
import platform
import time

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from jaxo2o.envs import make_env, step_autoreset
from jaxo2o.envs.locomotion import LOCOMOTION_TASKS


def device_rate(task: str, n_envs: int, steps: int, repeats: int) -> tuple[float, float]:
    """(compile seconds, median env-steps/s) of `task` on the device."""
    env = make_env(task, backend="positional")

    def run(key):
        keys = jax.random.split(key, n_envs)
        state = jax.vmap(env.reset)(keys)

        def body(s, k):
            ka, kr = jax.random.split(k)
            a = jax.random.uniform(ka, (n_envs, env.action_size), minval=-1.0, maxval=1.0)
            s, res = jax.vmap(lambda st, ac, kk: step_autoreset(env, st, ac, kk))(
                s, a, jax.random.split(kr, n_envs)
            )
            return s, res.reward

        _, rewards = jax.lax.scan(body, state, jax.random.split(key, steps))
        return rewards.sum()

    f = jax.jit(run)
    t0 = time.perf_counter()
    compiled = f.lower(jax.random.PRNGKey(0)).compile()
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(compiled(jax.random.PRNGKey(1)))
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(jax.random.PRNGKey(2 + r)))
        times.append(time.perf_counter() - t0)
    return compile_s, n_envs * steps / float(np.median(times))


def mujoco_c_rate(task: str, steps: int, repeats: int) -> float:
    """Median env-steps/s of Gymnasium's own env (MuJoCo C), one environment."""
    env = gym.make(task)
    env.action_space.seed(0)
    env.reset(seed=0)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            _, _, term, trunc, _ = env.step(env.action_space.sample())
            if term or trunc:
                env.reset()
        rates.append(steps / (time.perf_counter() - t0))
    return float(np.median(rates))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", nargs="*", default=["Hopper-v5", "hopper"])
    ap.add_argument("--envs", type=int, default=64)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"{platform.processor() or platform.machine()}, jax {jax.__version__}")
    print("| task | simulator | envs | compile s | env-steps/s |\n|---|---|---|---|---|")
    for task in args.tasks:
        sim = "MJX (jaxo2o port)" if task in LOCOMOTION_TASKS else "Brax positional"
        for n in (1, args.envs):
            c, rate = device_rate(task, n, args.steps, args.repeats)
            print(f"| {task} | {sim} | {n} | {c:.1f} | {rate:,.0f} |", flush=True)
        if task in LOCOMOTION_TASKS:
            rate = mujoco_c_rate(task, 20 * args.steps, args.repeats)
            print(f"| {task} | MuJoCo C (Gymnasium) | 1 | - | {rate:,.0f} |", flush=True)


if __name__ == "__main__":
    jnp.zeros(())  # initialise the backend before timing
    main()
