"""Parity of the MJX ports of Gymnasium's v5 locomotion tasks with Gymnasium itself (MuJoCo C).

Per task: states gathered from Gymnasium rollouts under uniform random actions (reset when an
episode ends), then every recorded transition replayed teacher-forced through the port, in one
vmapped call: the port starts from the recorded state (qpos, qvel, the solver's warm start and,
for Ant, the torso position the forward reward differentiates) and takes the recorded action.
Compared: next qpos/qvel, observation, reward, terminated flag. Also the reset distribution
(mean and std of the first observation over many resets).

    python -m benchmarks.locomotion_parity [--states 1000]   # prints the README's table
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from jaxo2o.envs.base import EnvState
from jaxo2o.envs.locomotion import LOCOMOTION_TASKS, GymLocomotion


@dataclass
class Recorded:
    """Transitions recorded from Gymnasium (float64, leading axis = transitions)."""

    qpos: np.ndarray
    qvel: np.ndarray
    qacc_warmstart: np.ndarray
    xpos: np.ndarray  # body positions before the step
    action: np.ndarray
    next_qpos: np.ndarray
    next_qvel: np.ndarray
    next_xpos: np.ndarray  # body positions after the step (RK4: of the last stage)
    next_cfrc_ext: np.ndarray
    next_obs: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray


def record(task: str, n: int, seed: int = 0) -> Recorded:
    """`n` transitions of Gymnasium's `task` under uniform random actions."""
    env = gym.make(task)
    env.action_space.seed(seed)
    data = env.unwrapped.data
    env.reset(seed=seed)
    rows: dict[str, list] = {k: [] for k in Recorded.__dataclass_fields__}
    for _ in range(n):
        a = env.action_space.sample()
        rows["qpos"].append(data.qpos.copy())
        rows["qvel"].append(data.qvel.copy())
        rows["qacc_warmstart"].append(data.qacc_warmstart.copy())
        rows["xpos"].append(data.xpos.copy())
        rows["action"].append(a)
        obs, r, term, trunc, _ = env.step(a)
        rows["next_qpos"].append(data.qpos.copy())
        rows["next_qvel"].append(data.qvel.copy())
        rows["next_xpos"].append(data.xpos.copy())
        rows["next_cfrc_ext"].append(data.cfrc_ext.copy())
        rows["next_obs"].append(obs)
        rows["reward"].append(r)
        rows["terminated"].append(term)
        if term or trunc:
            env.reset()
    env.close()
    return Recorded(**{k: np.asarray(v) for k, v in rows.items()})


def replay(env: GymLocomotion, rec: Recorded) -> tuple[np.ndarray, ...]:
    """The port's (next qpos, next qvel, next obs, reward, terminated) from each recorded state."""
    p = env.physics

    def one(qpos, qvel, warm, xpos, action):
        d = p.set_state(qpos, qvel)
        d = d.replace(
            qpos=jnp.asarray(qpos, d.qpos.dtype),  # C keeps an un-normalised reset quaternion
            qacc_warmstart=jnp.asarray(warm, d.qacc_warmstart.dtype),
            xpos=jnp.asarray(xpos, d.xpos.dtype),  # C's: the last RK4 stage's of the step before
        )
        state = EnvState(physics=d, obs=jnp.zeros(env.observation_size), t=jnp.zeros((), jnp.int32))
        nxt, res = env.step(state, action)
        return nxt.physics.qpos, nxt.physics.qvel, res.next_obs, res.reward, res.terminated

    f = jax.jit(jax.vmap(one))
    out = f(rec.qpos, rec.qvel, rec.qacc_warmstart, rec.xpos, rec.action.astype(np.float32))
    return tuple(np.asarray(x) for x in out)


@dataclass
class Parity:
    task: str
    states: int
    err_median: float  # of max |qpos, qvel difference| per state
    err_max: float
    obs_max: float
    reward_max_rel: float  # max |dr| / max(1, |r|)
    reward_within: int  # states whose reward agrees within the tolerance given
    terminated_equal: int
    seconds: float  # compile + run of the replay


def measure(task: str, n: int, seed: int = 0, reward_tol: float = 1e-4) -> Parity:
    rec = record(task, n, seed)
    env = GymLocomotion(task)
    t0 = time.perf_counter()
    qpos, qvel, obs, reward, term = replay(env, rec)
    seconds = time.perf_counter() - t0
    err = np.maximum(
        np.abs(qpos - rec.next_qpos).max(axis=1), np.abs(qvel - rec.next_qvel).max(axis=1)
    )
    rel = np.abs(reward - rec.reward) / np.maximum(1.0, np.abs(rec.reward))
    return Parity(
        task=task,
        states=n,
        err_median=float(np.median(err)),
        err_max=float(err.max()),
        obs_max=float(np.abs(obs - rec.next_obs).max()),
        reward_max_rel=float(rel.max()),
        reward_within=int((rel <= reward_tol).sum()),
        terminated_equal=int((term == rec.terminated).sum()),
        seconds=seconds,
    )


def table(rows: list[Parity]) -> str:
    head = (
        "| task | states | qpos/qvel one-step error, median | max | obs max | "
        "reward max rel. | reward within 1e-4 | terminated equal |\n"
        "|---|---|---|---|---|---|---|---|\n"
    )
    return head + "".join(
        f"| {r.task} | {r.states} | {r.err_median:.1e} | {r.err_max:.1e} | {r.obs_max:.1e} | "
        f"{r.reward_max_rel:.1e} | {r.reward_within}/{r.states} | "
        f"{r.terminated_equal}/{r.states} |\n"
        for r in rows
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--states", type=int, default=1000)
    ap.add_argument("--tasks", nargs="*", default=list(LOCOMOTION_TASKS))
    args = ap.parse_args()
    rows = []
    for task in args.tasks:
        rows.append(measure(task, args.states))
        print(f"{task}: {rows[-1]}", flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
