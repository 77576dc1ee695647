"""Trajectory-level check of the antmaze-v2 port: uniformly random actions for a whole episode
(700 steps on umaze) from the env's resets, on the port (MJX) and on MuJoCo C with the same
model, reset law and goal law; reports how many episodes reach the goal (within 0.5) and how far
the ant got from its start (final |xy|).

    python -m benchmarks.d4rl_antmaze_random --episodes 100
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from benchmarks.make_antmaze_data import sample_goal_np
from jaxo2o.envs.d4rl_antmaze import (
    FRAME_SKIP,
    GOAL_RADIUS,
    QPOS_NOISE,
    QVEL_NOISE,
    D4RLAntMaze,
)


def port_episodes(env: D4RLAntMaze, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(success per episode, final distance from the origin) on the port."""

    def one(key):
        k_reset, k_act = jax.random.split(key)
        state = env.reset(k_reset)
        acts = jax.random.uniform(k_act, (env.episode_length, 8), minval=-1.0, maxval=1.0)

        def body(carry, a):
            st, done = carry
            nxt, res = env.step(st, a)
            st = jax.tree.map(lambda x, y: jnp.where(done, x, y), st, nxt)
            return (st, done | res.terminated), None

        (state, done), _ = jax.lax.scan(body, (state, jnp.zeros((), bool)), acts)
        return done, jnp.linalg.norm(state.physics.qpos[:2])

    keys = jax.random.split(jax.random.key(seed), n)
    done, dist = jax.jit(jax.vmap(one))(keys)
    return np.asarray(done), np.asarray(dist)


def c_episodes(env: D4RLAntMaze, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The same on MuJoCo C (numpy's streams)."""
    m = env.mj_model
    d = mujoco.MjData(m)
    rng = np.random.default_rng(seed)
    success, dist = np.zeros(n, bool), np.zeros(n)
    for k in range(n):
        goal = sample_goal_np(env.maze_map, rng)
        mujoco.mj_resetData(m, d)
        d.qpos[:] = m.qpos0 + rng.uniform(-QPOS_NOISE, QPOS_NOISE, m.nq)
        d.qvel[:] = QVEL_NOISE * rng.standard_normal(m.nv)
        mujoco.mj_forward(m, d)
        for _ in range(env.episode_length):
            d.ctrl[:] = np.clip(30.0 * rng.uniform(-1.0, 1.0, m.nu), -30.0, 30.0)
            for _ in range(FRAME_SKIP):
                mujoco.mj_step(m, d)
            if np.linalg.norm(d.qpos[:2] - goal) <= GOAL_RADIUS:
                success[k] = True
                break
        dist[k] = np.linalg.norm(d.qpos[:2])
    return success, dist


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="antmaze-umaze-v2")
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    env = D4RLAntMaze(args.task)
    for name, fn in (("C", c_episodes), ("port", port_episodes)):
        t0 = time.time()
        s, dist = fn(env, args.episodes, args.seed)
        print(
            f"{name}: {int(s.sum())}/{len(s)} episodes reach the goal; final |xy| median "
            f"{np.median(dist):.2f} max {dist.max():.2f} ({time.time() - t0:.0f}s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
