"""Episodes of a policy in the reference environment on the host: Gymnasium's own v5 task
(MuJoCo C, float64), the simulator the MJX ports are checked against.

Used by `python -m jaxo2o.evaluate --reference` to show that the port and the reference agree on
a trained policy. Episode `e` resets with seed `first_seed + e`; the time limit is the one given
(the task's 1000 steps unless the run used another).
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np

from jaxo2o.envs.locomotion import LOCOMOTION_TASKS

HostPolicy = Callable[[np.ndarray], np.ndarray]  # one float32 observation -> one action


def reference_returns(
    task: str, policy: HostPolicy, episodes: int, episode_length: int, first_seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(returns, lengths) of `episodes` episodes of `policy` in Gymnasium's `task`."""
    if task not in LOCOMOTION_TASKS:
        raise ValueError(
            f"task: no reference simulator for {task!r}; the reference exists for "
            f"{LOCOMOTION_TASKS}"
        )
    env = gym.make(task, max_episode_steps=episode_length)
    returns, lengths = np.zeros(episodes), np.zeros(episodes, np.int64)
    for e in range(episodes):
        obs, _ = env.reset(seed=first_seed + e)
        done = False
        while not done:
            obs, r, term, trunc, _ = env.step(policy(np.asarray(obs, np.float32)))
            returns[e] += float(r)
            lengths[e] += 1
            done = term or trunc
    env.close()
    return returns, lengths
