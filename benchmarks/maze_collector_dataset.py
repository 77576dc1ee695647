"""A dataset in the layout of Minari's `D4RL/pointmaze/*-v2`, made here with `minari.DataCollector`
on Gymnasium-Robotics' own env, with that recipe (spec C.4): `PointMaze_*-v3` with
`continuing_task=True, reset_target=True` and a 1e6-step limit; actions from the waypoint
controller (`envs/gr_waypoints.py`) plus N(0, 0.5^2) noise, clipped; an episode is cut (marked
truncated) whenever the step reaches the goal (`info["success"]`), the env going on with its new
goal; `record_infos=True` (infos: success). The evaluation env stored with it (`eval_env_spec`)
is the D4RL-style one (`maze_standard.point_eval_spec`: one goal cell, the pointmaze-v1
generation script's, every empty cell a start, the registered time limit). Reference scores:
Minari's own (100 episodes of the eval env; random: a uniform random policy, expert: the
noise-free controller).

    MINARI_DATASETS_PATH=/tmp/minari python -m benchmarks.maze_collector_dataset \\
        --id D4RL/pointmaze/umaze-v2 --env PointMaze_UMaze-v3 --steps 20000
"""

from __future__ import annotations

import gymnasium as gym
import gymnasium_robotics
import jax
import jax.numpy as jnp
import minari
import numpy as np
from minari import StepDataCallback

from benchmarks.collector_dataset import collector_cli, create_dataset
from jaxo2o.data.maze_standard import point_eval_spec
from jaxo2o.envs.gr_maze import GRMaze
from jaxo2o.envs.gr_waypoints import WaypointController

gym.register_envs(gymnasium_robotics)


class CutAtSuccess(StepDataCallback):
    """Mark the step that reaches the goal truncated (the recipe's episode boundaries)."""

    def __call__(self, env, **kwargs):
        step = super().__call__(env, **kwargs)
        if step["info"]["success"]:
            step["truncated"] = True
        return step


def collect(
    ds_id: str,
    env_id: str,
    steps: int,
    seed: int = 0,
    noise: float = 0.5,
    refs: tuple[float, float] | None = None,
    eval_env: bool = True,
) -> None:
    """`steps` noisy-controller steps on `env_id` as the Minari dataset `ds_id`. `refs`: give
    (random, expert) scores instead of Minari's 100-episode measurement (tests)."""
    base = gym.make(env_id, continuing_task=True, reset_target=True, max_episode_steps=1_000_000)
    env = minari.DataCollector(base, record_infos=True, step_data_callback=CutAtSuccess)
    ctrl = WaypointController(GRMaze(env_id))
    act = jax.jit(ctrl)
    flat = lambda o: np.concatenate([o["achieved_goal"], o["desired_goal"], o["observation"]])
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    for _ in range(steps):
        a = np.asarray(act(jnp.asarray(flat(obs), jnp.float32)), np.float64)
        a = np.clip(a + rng.normal(0.0, noise, 2), -1.0, 1.0).astype(np.float32)
        obs, *_ = env.step(a)
    create_dataset(
        env,
        ds_id,
        "maze_collector_dataset.py",
        algorithm_name="waypoint PD controller + N(0, 0.5^2) action noise",
        description=f"{steps} steps of {env_id} with the D4RL pointmaze recipe",
        eval_env=point_eval_spec(env_id) if eval_env else None,
        refs=refs,
        expert_policy=lambda o: np.asarray(act(jnp.asarray(flat(o), jnp.float32)), np.float64),
    )
    env.close()


def main() -> None:
    collector_cli(collect, __doc__)


if __name__ == "__main__":
    main()
