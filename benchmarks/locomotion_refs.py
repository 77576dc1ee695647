"""The random-policy reference return of Gymnasium's v5 locomotion tasks (`data.standard`).

Mean undiscounted return of the uniform random policy over 100 episodes of the Gymnasium env
itself (MuJoCo C, default arguments, 1000-step limit), reset seeds 0..99, action-space seed 0:
D4RL's recipe for its REF_MIN_SCORE (a random policy's average return), on the v5 tasks.

    python -m benchmarks.locomotion_refs
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from jaxo2o.envs.locomotion import LOCOMOTION_TASKS

EPISODES = 100


def random_return(task: str, episodes: int = EPISODES) -> tuple[float, float]:
    """(mean, standard error) of the random policy's return."""
    env = gym.make(task)
    env.action_space.seed(0)
    returns = []
    for ep in range(episodes):
        env.reset(seed=ep)
        total, done = 0.0, False
        while not done:
            _, r, term, trunc, _ = env.step(env.action_space.sample())
            total += float(r)
            done = term or trunc
        returns.append(total)
    r = np.asarray(returns)
    return float(r.mean()), float(r.std(ddof=1) / np.sqrt(len(r)))


def main() -> None:
    for task in LOCOMOTION_TASKS:
        mean, se = random_return(task)
        print(f"{task}: random return {mean:.2f} +- {se:.2f} (s.e., {EPISODES} episodes)")


if __name__ == "__main__":
    main()
