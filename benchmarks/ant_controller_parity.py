"""Closed-loop check of the ant maze ports: the scripted goal-reaching controller
(`envs/ant_gait.py`) on the port (MJX) and on MuJoCo C with the same model, from the same start
states and goals, with the same action-noise draws. Reports each side's success rate within the
time limit and within a shorter horizon (the reference's median hit time, where about half the
episodes have succeeded, so a slower or faster port would show), with Wilson 95% intervals; how
often both sides agree episode by episode; the two hit-time distributions (Kolmogorov-Smirnov);
and uniformly random actions from the same starts (which should almost never succeed).

    python -m benchmarks.ant_controller_parity --tasks antmaze-umaze-v2 AntMaze_UMaze-v4
"""

from __future__ import annotations

import argparse
import functools
import time

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from scipy import stats

from benchmarks.maze_parity import fmt, wilson
from jaxo2o.envs.ant_gait import AntWaypointController, ant_controller
from jaxo2o.envs.d4rl_antmaze import GOAL_RADIUS, D4RLAntMaze
from jaxo2o.envs.gr_maze import GOAL_THRESHOLD, GRMaze


def make_env(task: str) -> D4RLAntMaze | GRMaze:
    env = D4RLAntMaze(task) if task.startswith("antmaze-") else GRMaze(task)
    if isinstance(env, GRMaze) and env.agent.name != "ant":
        raise ValueError(f"task: {task!r} is not an ant maze")
    return env


def goal_radius(env) -> float:
    return GOAL_RADIUS if isinstance(env, D4RLAntMaze) else GOAL_THRESHOLD


def starts(env, n: int, seed: int):
    """`n` reset states of the port's own reset law: (qpos, qvel, goal) as numpy arrays."""
    st = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.key(seed), n))
    p = st.physics
    return np.asarray(p.qpos), np.asarray(p.qvel), np.asarray(p.goal)


@functools.lru_cache(maxsize=4)
def _port_episodes(env, ctrl: AntWaypointController, controlled: bool):
    """One compiled program per (task, controller, controlled): a batch of episodes."""
    w = 1.0 if controlled else 0.0
    radius = goal_radius(env)

    def episode(key, qpos, qvel, goal, noise):
        state = env.reset(key)
        state = state._replace(physics=state.physics._replace(qpos=qpos, qvel=qvel, goal=goal))

        def body(st, e):
            p = st.physics
            a = jnp.clip(w * ctrl.action(p.qpos, p.qvel, p.goal, st.t) + e, -1.0, 1.0)
            st, _ = env.step(st, a)
            return st, jnp.linalg.norm(st.physics.qpos[:2] - goal) <= radius

        _, hits = jax.lax.scan(body, state, noise)
        return jnp.where(hits.any(), jnp.argmax(hits) + 1, noise.shape[0] + 1)

    return jax.jit(jax.vmap(episode))


def port_hit_times(env, ctrl: AntWaypointController, s0, eps, controlled: bool,
                   batch: int = 25) -> np.ndarray:  # fmt: skip
    """First step (1-based) within the goal radius per episode on the port; horizon + 1 if
    none. `eps` (N, horizon, 8): added to the controller's action (then clipped), or the action
    itself when not `controlled`. Episodes run `batch` at a time (N a multiple of it)."""
    if len(eps) % batch:
        raise ValueError(f"episodes: {len(eps)} is not a multiple of the batch {batch}")
    f = _port_episodes(env, ctrl, controlled)
    keys = jax.random.split(jax.random.key(0), len(eps))
    out = []
    for i in range(0, len(eps), batch):
        sl = slice(i, i + batch)
        out.append(np.asarray(f(keys[sl], *(jnp.asarray(x[sl]) for x in s0), jnp.asarray(eps[sl]))))
        print(f"    port: {i + batch}/{len(eps)} episodes", flush=True)
    return np.concatenate(out)


def c_hit_times(env, ctrl: AntWaypointController, s0, eps, controlled: bool) -> np.ndarray:
    """The same on MuJoCo C: each episode from `mj_resetData` with the start's qpos and qvel."""
    m = env.mj_model
    d = mujoco.MjData(m)
    act = jax.jit(ctrl.action)
    ctrl_per_action = env.torque_per_action / float(m.actuator_gear[0, 0])
    frame_skip, radius = env.physics.frame_skip, goal_radius(env)
    n, horizon = eps.shape[:2]
    hit = np.full(n, horizon + 1)
    for k in range(n):
        mujoco.mj_resetData(m, d)
        d.qpos[:], d.qvel[:] = s0[0][k], s0[1][k]
        goal = s0[2][k]
        mujoco.mj_forward(m, d)
        for t in range(horizon):
            a = eps[k, t]
            if controlled:
                q, v = d.qpos.astype(np.float32), d.qvel.astype(np.float32)
                a = np.clip(np.asarray(act(q, v, goal, t)) + a, -1.0, 1.0)
            d.ctrl[:] = ctrl_per_action * a
            for _ in range(frame_skip):
                mujoco.mj_step(m, d)
            if np.linalg.norm(d.qpos[:2] - goal) <= radius:
                hit[k] = t + 1
                break
    return hit


def median_hit(times: np.ndarray, horizon: int) -> float | str:
    ok = times[times <= horizon]
    return float(np.median(ok)) if len(ok) else "-"


def compare(label: str, tp: np.ndarray, tc: np.ndarray, horizons) -> None:
    n = len(tp)
    for h in horizons:
        a, b = int((tp <= h).sum()), int((tc <= h).sum())
        print(
            f"  {label} within {h} steps: port {a}/{n} {fmt(wilson(a, n))}, C {b}/{n} "
            f"{fmt(wilson(b, n))}, same outcome {np.mean((tp <= h) == (tc <= h)):.2f}",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", nargs="+", default=["antmaze-umaze-v2", "AntMaze_UMaze-v4"])
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--noise", type=float, default=0.2, help="action noise std (Minari's 0.2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--random-episodes", type=int, default=50, help="0: no random actions")
    ap.add_argument("--batch", type=int, default=25, help="port episodes per compiled call")
    args = ap.parse_args()
    for task in args.tasks:
        t0 = time.time()
        env = make_env(task)
        ctrl = ant_controller(env)
        horizon, n = env.episode_length, args.episodes
        s0 = starts(env, n, args.seed)
        rng = np.random.default_rng(args.seed + 1)
        eps = rng.normal(0.0, args.noise, (n, horizon, env.action_size)).astype(np.float32)
        tc = c_hit_times(env, ctrl, s0, eps, True)
        t_c = time.time() - t0
        tp = port_hit_times(env, ctrl, s0, eps, True, args.batch)
        t_p = time.time() - t0 - t_c
        print(
            f"{task}: controller, noise {args.noise}, {n} episodes; median steps to the goal "
            f"port {median_hit(tp, horizon)}, C {median_hit(tc, horizon)}"
            f" (C {t_c:.0f} s, port {t_p:.0f} s with compilation)",
            flush=True,
        )
        cut = int(np.median(tc))
        compare("controller", tp, tc, sorted({min(cut, horizon), horizon}))
        ks = stats.ks_2samp(tp, tc)
        print(f"  hit times (horizon + 1 if none): KS {ks.statistic:.3f}, p = {ks.pvalue:.3f}")
        if args.random_episodes:
            k = args.random_episodes
            rand = rng.uniform(-1.0, 1.0, (k, *eps.shape[1:])).astype(np.float32)
            sk = tuple(x[:k] for x in s0)
            rp = port_hit_times(env, ctrl, sk, rand, False, args.batch)
            rc = c_hit_times(env, ctrl, sk, rand, False)
            compare("random actions", rp, rc, [horizon])
        print(f"  ({time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
