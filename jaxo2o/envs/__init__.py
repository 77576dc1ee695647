"""On-device environments: `make_env(task, backend, episode_length)` returns a jaxo2o Env."""

from __future__ import annotations

from jaxo2o.envs.base import Env, EnvState, StepResult, step_autoreset
from jaxo2o.envs.brax_env import BRAX_BACKENDS, BRAX_TASKS, BraxEnv
from jaxo2o.envs.d4rl_antmaze import D4RL_ANTMAZE_TASKS, D4RLAntMaze
from jaxo2o.envs.gr_maze import GR_MAZE_TASKS, GRMaze
from jaxo2o.envs.locomotion import LOCOMOTION_TASKS, GymLocomotion
from jaxo2o.envs.maze import MAZE_TASKS, PointMaze
from jaxo2o.envs.point import PointMass

TOY_TASKS = ("point",)
TASKS = TOY_TASKS + BRAX_TASKS + MAZE_TASKS + LOCOMOTION_TASKS + GR_MAZE_TASKS + D4RL_ANTMAZE_TASKS


def make_env(task: str, backend: str = "positional", episode_length: int | None = None) -> Env:
    """Build a task by name. `backend` applies to Brax tasks only (Gymnasium's v5 locomotion
    tasks, e.g. `Hopper-v5`, always step MJX: `envs.locomotion`).

    `episode_length` (the time limit) defaults to 1000 steps, or the layout's own for mazes.
    """
    if task in MAZE_TASKS:
        return PointMaze(task.removeprefix("pointmaze-"), episode_length=episode_length or 0)
    if task in GR_MAZE_TASKS:  # Gymnasium-Robotics' mazes on MJX (`envs.gr_maze`)
        return GRMaze(task, episode_length=episode_length or 0)
    if task in D4RL_ANTMAZE_TASKS:  # D4RL's antmaze-v2 on MJX (`envs.d4rl_antmaze`)
        return D4RLAntMaze(task, episode_length=episode_length or 0)
    episode_length = episode_length or 1000
    if task in LOCOMOTION_TASKS:
        return GymLocomotion(task, episode_length=episode_length)
    if task == "point":
        return PointMass(episode_length=episode_length)
    if task in BRAX_TASKS:
        if backend not in BRAX_BACKENDS:
            raise ValueError(f"backend: unknown {backend!r}; choose one of {BRAX_BACKENDS}")
        return BraxEnv(task, backend=backend, episode_length=episode_length)
    raise ValueError(f"task: unknown {task!r}; choose one of {TASKS}")


__all__ = [
    "BRAX_BACKENDS",
    "BRAX_TASKS",
    "D4RL_ANTMAZE_TASKS",
    "GR_MAZE_TASKS",
    "LOCOMOTION_TASKS",
    "MAZE_TASKS",
    "TASKS",
    "Env",
    "EnvState",
    "StepResult",
    "make_env",
    "step_autoreset",
]
