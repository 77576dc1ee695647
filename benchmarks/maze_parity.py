"""Parity of the MJX mazes (`jaxo2o/envs/gr_maze.py`) with Gymnasium-Robotics' own envs (MuJoCo C).

- `collect_states`: states of the reference env (C), reached by rollouts with held random
  actions from points anywhere in free cells (so walls get hit), with the action applied there
  and the state the reference step reached.
- `one_step_errors`: the port steps every collected state once (teacher-forced: the same qpos,
  qvel, qacc_warmstart and action), vmapped; max abs error over qpos and qvel per state.
- `controller_success`: the scripted waypoint controller (`envs/gr_waypoints.py`) with the same
  pre-drawn Gaussian action noise from the same start points and goals, on the port and on the
  reference; success = the goal was within 0.45 at some step.

    PYTHONPATH=. python -m benchmarks.maze_parity --tasks PointMaze_UMaze-v3 --states 1000
"""

from __future__ import annotations

import argparse
import functools
import time
from dataclasses import dataclass

import gymnasium as gym
import gymnasium_robotics
import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from jaxo2o.envs.gr_maze import GOAL_THRESHOLD, TASK_SPECS, GRMaze
from jaxo2o.envs.gr_waypoints import WaypointController

gym.register_envs(gymnasium_robotics)


def reference_env(env_id: str, **kwargs) -> gym.Env:
    return gym.make(env_id, **kwargs)


def _inner(env: gym.Env):
    u = env.unwrapped
    return u, (u.point_env if hasattr(u, "point_env") else u.ant_env)


@dataclass(frozen=True)
class States:
    qpos: np.ndarray  # (N, nq) before the step
    qvel: np.ndarray
    warm: np.ndarray  # qacc_warmstart before the step
    action: np.ndarray
    goal: np.ndarray  # (N, 2) the goal the step was rewarded against
    next_qpos: np.ndarray
    next_qvel: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    wall: np.ndarray  # bool: a wall contact occurred during the step


def _wall_geoms(model: mujoco.MjModel) -> np.ndarray:
    names = [model.geom(i).name for i in range(model.ngeom)]
    return np.array([n.startswith("block_") for n in names])


def port_agent_radius(env_id: str) -> float:
    return TASK_SPECS[env_id].agent.radius + 0.01


def collect_states(env_id: str, n: int, seed: int = 0, hold: int = 8, episode: int = 60) -> States:
    """`n` reference transitions: episodes of `episode` steps from a uniform point of a random
    free cell where the agent touches no wall, actions uniform in [-1, 1] held `hold` steps."""
    env = reference_env(env_id)
    u, inner = _inner(env)
    rng = np.random.default_rng(seed)
    walls = _wall_geoms(inner.model)
    free = [(i, j) for i, r in enumerate(u.maze.maze_map) for j, c in enumerate(r) if c != 1]
    s = u.maze.maze_size_scaling
    rec = {k: [] for k in States.__dataclass_fields__}
    env.reset(seed=seed)
    while len(rec["qpos"]) < n:
        env.reset(seed=int(rng.integers(1 << 30)))
        cell = free[rng.integers(len(free))]
        reach = 0.5 * s - port_agent_radius(env_id)
        xy = u.maze.cell_rowcol_to_xy(np.array(cell)) + rng.uniform(-reach, reach, 2)
        qpos = inner.data.qpos.copy()
        qpos[:2] = xy
        inner.set_state(qpos, inner.data.qvel)
        for t in range(episode):
            if t % hold == 0:
                a = rng.uniform(-1.0, 1.0, inner.model.nu)
            d = inner.data
            pre = (d.qpos.copy(), d.qvel.copy(), d.qacc_warmstart.copy(), u.goal.copy())
            _, r, term, _, _ = env.step(a)
            geoms = d.contact.geom[: d.ncon]
            rec["qpos"].append(pre[0])
            rec["qvel"].append(pre[1])
            rec["warm"].append(pre[2])
            rec["goal"].append(pre[3])
            rec["action"].append(a.copy())
            rec["next_qpos"].append(d.qpos.copy())
            rec["next_qvel"].append(d.qvel.copy())
            rec["reward"].append(r)
            rec["terminated"].append(term)
            rec["wall"].append(bool(walls[geoms].any()) if len(geoms) else False)
    env.close()
    return States(**{k: np.asarray(v[:n]) for k, v in rec.items()})


@functools.lru_cache(maxsize=8)
def _one_step_fn(port: GRMaze):
    d0 = port._data0

    def one(qpos, qvel, warm, action, goal):
        d = d0.replace(qpos=qpos, qvel=qvel, qacc_warmstart=warm)
        d = port.physics_step(d, action)
        reward, _, _ = port.reward_and_terminated(d.qpos[:2], goal)
        return d.qpos, d.qvel, reward

    return jax.jit(jax.vmap(one))


def one_step_errors(port: GRMaze, st: States) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per state: max abs qpos/qvel error of the port's teacher-forced step; its reward; its
    next qpos."""
    f32 = lambda x: jnp.asarray(x, jnp.float32)
    f = _one_step_fn(port)
    qpos, qvel, reward = f(f32(st.qpos), f32(st.qvel), f32(st.warm), f32(st.action), f32(st.goal))
    err = np.maximum(
        np.abs(np.asarray(qpos) - st.next_qpos).max(-1),
        np.abs(np.asarray(qvel) - st.next_qvel).max(-1),
    )
    return err, np.asarray(reward), np.asarray(qpos)


def _starts(port: GRMaze, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` (start, goal) pairs drawn by the port's own reset."""
    keys = jax.random.split(jax.random.key(seed), n)
    st = jax.jit(jax.vmap(port.reset))(keys)
    return np.asarray(st.physics.qpos[:, :2]), np.asarray(st.physics.goal)


@functools.lru_cache(maxsize=8)
def _hit_times_fn(port: GRMaze, ctrl: WaypointController):
    """One compiled program per (maze, controller): `w` weighs the controller (1) or not (0)."""

    def episode(start, goal, eps, w):
        state = port.reset_to(jax.random.key(0), start, goal)

        def body(st, e):
            st, res = port.step(st, jnp.clip(w * ctrl(st.obs) + e, -1.0, 1.0))
            return st, jnp.linalg.norm(res.next_obs[:2] - goal) <= GOAL_THRESHOLD

        _, hits = jax.lax.scan(body, state, eps)
        return jnp.where(hits.any(), jnp.argmax(hits) + 1, len(eps) + 1)

    return jax.jit(jax.vmap(episode, in_axes=(0, 0, 0, None)))


def port_hit_times(port, ctrl, starts, goals, noise, random_actions=False) -> np.ndarray:
    """Per episode: the first step (1-based) that ends within 0.45 of the goal, on the port;
    horizon + 1 if none. `noise` (N, horizon, nu): added to the controller's actions, or the
    actions themselves with `random_actions`."""
    f = _hit_times_fn(port, ctrl)
    w = jnp.float32(0.0 if random_actions else 1.0)
    return np.asarray(f(jnp.asarray(starts), jnp.asarray(goals), jnp.asarray(noise), w))


def reference_hit_times(env_id, ctrl, starts, goals, noise, random_actions=False) -> np.ndarray:
    """The same on Gymnasium-Robotics' env (MuJoCo C), all episodes in lockstep."""
    n, horizon = noise.shape[:2]
    envs = [reference_env(env_id) for _ in range(n)]
    obs = np.zeros((n, 4 + envs[0].observation_space["observation"].shape[0]))
    for k, env in enumerate(envs):
        u, inner = _inner(env)
        env.reset(seed=k)
        u.goal = goals[k].astype(np.float64).copy()
        qpos = inner.init_qpos.copy()
        qpos[:2] = starts[k]
        inner.set_state(qpos, np.zeros(inner.model.nv))
        obs[k] = np.concatenate([qpos[:2], u.goal, inner.data.qpos, inner.data.qvel])[
            : obs.shape[1]
        ]
    policy = jax.jit(ctrl)
    hit = np.full(n, horizon + 1)
    for t in range(horizon):
        if random_actions:
            act = noise[:, t]
        else:
            act = np.clip(np.asarray(policy(jnp.asarray(obs, jnp.float32))) + noise[:, t], -1, 1)
        for k, env in enumerate(envs):
            o, r, *_ = env.step(act[k].astype(np.float64))
            obs[k] = np.concatenate([o["achieved_goal"], o["desired_goal"], o["observation"]])
            if r > 0 and hit[k] > horizon:
                hit[k] = t + 1
    for env in envs:
        env.close()
    return hit


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion k / n."""
    p = k / n
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return c - h, c + h


def fmt(ci: tuple[float, float]) -> str:
    return f"[{100 * ci[0]:.0f}, {100 * ci[1]:.0f}]%"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=["PointMaze_UMaze-v3"])
    ap.add_argument("--states", type=int, default=1000)
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--noise", type=float, default=0.5)
    ap.add_argument("--horizon", type=int, default=0, help="0: the registered time limit")
    args = ap.parse_args()
    for task in args.tasks:
        t0 = time.time()
        port = GRMaze(task)
        st = collect_states(task, args.states)
        err, reward, _ = one_step_errors(port, st)
        free, wall = err[~st.wall], err[st.wall]
        line = (
            f"{task}: {len(err)} states ({int(st.wall.sum())} wall contact); free max "
            f"{free.max():.1e} median {np.median(free):.1e}"
        )
        if len(wall):
            line += (
                f"; contact max {wall.max():.1e} median {np.median(wall):.1e} "
                f"share<=1e-4 {np.mean(wall <= 1e-4):.3f}"
            )
        line += f"; reward equal {np.mean(reward == st.reward):.4f}"
        print(line, flush=True)
        if port.agent.name == "point":
            horizon = args.horizon or port.episode_length
            starts, goals = _starts(port, args.episodes, 1)
            rng = np.random.default_rng(2)
            noise = rng.normal(0.0, args.noise, (args.episodes, horizon, 2)).astype(np.float32)
            ctrl = WaypointController(port)
            ta = port_hit_times(port, ctrl, starts, goals, noise)
            tb = reference_hit_times(task, ctrl, starts, goals, noise)
            rand = rng.uniform(-1, 1, (args.episodes, horizon, 2)).astype(np.float32)
            ra = port_hit_times(port, ctrl, starts, goals, rand, random_actions=True) <= horizon
            rb = reference_hit_times(task, ctrl, starts, goals, rand, random_actions=True)
            rb = rb <= horizon
            n = args.episodes
            cut = int(np.median(tb))  # a horizon at which about half the episodes succeed
            for h in (cut, horizon):
                a, b = int((ta <= h).sum()), int((tb <= h).sum())
                print(
                    f"  controller (noise {args.noise}) success within {h} steps: port {a}/{n} "
                    f"{fmt(wilson(a, n))}, reference {b}/{n} {fmt(wilson(b, n))}, same outcome "
                    f"{np.mean((ta <= h) == (tb <= h)):.2f}",
                    flush=True,
                )
            print(
                f"  random actions ({horizon} steps): port {ra.sum()}/{n} "
                f"{fmt(wilson(ra.sum(), n))}, reference {rb.sum()}/{n} {fmt(wilson(rb.sum(), n))}",
                flush=True,
            )
        print(f"  ({time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
