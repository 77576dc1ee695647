"""Trajectory-level check of the antmaze-v2 port: uniformly random actions for a whole episode
(700 steps on umaze) from the env's resets, on the port (MJX) and on MuJoCo C with the same
model, reset law and goal law; reports how many episodes reach the goal (within 0.5, with Wilson
95% intervals), how far the ant got from the origin (final |xy|) and how upright it ended (the
torso's up axis, z component: 1 upright, -1 on its back), and compares the two sides'
distributions of both with a two-sample Kolmogorov-Smirnov test. The streams differ (JAX's vs
numpy's), so agreement is in distribution, not episode by episode.

    python -m benchmarks.d4rl_antmaze_random --episodes 100
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from scipy import stats

from benchmarks.make_antmaze_data import sample_goal_np
from benchmarks.maze_parity import wilson
from jaxo2o.envs.d4rl_antmaze import (
    FRAME_SKIP,
    GOAL_RADIUS,
    QPOS_NOISE,
    QVEL_NOISE,
    D4RLAntMaze,
)


def up_z(quat: np.ndarray) -> np.ndarray:
    """z component of the torso's up axis from its (w, x, y, z) quaternion: R[2, 2]."""
    return 1.0 - 2.0 * (quat[..., 1] ** 2 + quat[..., 2] ** 2)


Episodes = tuple[np.ndarray, np.ndarray, np.ndarray]  # success, final |xy|, final up_z


def port_episodes(env: D4RLAntMaze, n: int, seed: int) -> Episodes:
    """(success, final distance from the origin, final up_z) per episode on the port."""

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
        return done, jnp.linalg.norm(state.physics.qpos[:2]), state.physics.qpos[3:7]

    keys = jax.random.split(jax.random.key(seed), n)
    done, dist, quat = jax.jit(jax.vmap(one))(keys)
    return np.asarray(done), np.asarray(dist), up_z(np.asarray(quat))


def c_episodes(env: D4RLAntMaze, n: int, seed: int) -> Episodes:
    """The same on MuJoCo C (numpy's streams)."""
    m = env.mj_model
    d = mujoco.MjData(m)
    rng = np.random.default_rng(seed)
    success, dist, up = np.zeros(n, bool), np.zeros(n), np.zeros(n)
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
        up[k] = up_z(d.qpos[3:7])
    return success, dist, up


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="antmaze-umaze-v2")
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    env = D4RLAntMaze(args.task)
    out = {}
    for name, fn in (("C", c_episodes), ("port", port_episodes)):
        t0 = time.time()
        s, dist, up = out[name] = fn(env, args.episodes, args.seed)
        lo, hi = wilson(int(s.sum()), len(s))
        print(
            f"{name}: {int(s.sum())}/{len(s)} episodes reach the goal (95% CI {lo:.2f}-{hi:.2f}); "
            f"final |xy| median {np.median(dist):.2f} max {dist.max():.2f}; final up_z median "
            f"{np.median(up):.2f}, on its back (up_z < 0) {int((up < 0).sum())}/{len(up)} "
            f"({time.time() - t0:.0f}s)",
            flush=True,
        )
    for i, what in ((1, "final |xy|"), (2, "final up_z")):
        ks = stats.ks_2samp(out["C"][i], out["port"][i])
        print(f"C vs port, {what}: KS statistic {ks.statistic:.3f}, p = {ks.pvalue:.3f}")


if __name__ == "__main__":
    main()
