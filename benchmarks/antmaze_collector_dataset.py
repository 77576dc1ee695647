"""A dataset in the layout of Minari's `D4RL/antmaze/umaze-v1`, made here with
`minari.DataCollector` on Gymnasium-Robotics' own env, with that recipe (spec C.4;
minari-dataset-generation-scripts, scripts/D4RL/antmaze/create_antmaze_dataset.py):
`AntMaze_UMaze-v4` on the map with one `r` and one `g` cell
(`maze_standard.ANT_UMAZE_COLLECTION_MAP`), `continuing_task=True, reset_target=False`, the
registered 700-step limit, so every episode is a TimeLimit truncation (terminations all False)
and the env is reset with the next seed; actions from a goal-reaching ant controller plus
Gaussian noise (the recipe's N(0, 0.2^2); here 0.1 by default, below), clipped to [-1, 1];
`record_infos=True` with the recipe's infos: success, qpos (achieved_goal ++
observation[:13]), qvel (observation[13:]), goal (desired_goal). The
evaluation env stored with it is the collection env (spec C.4: one `r`, one `g`). Reference
scores: Minari's own (100 episodes of the eval env; random: a uniform random policy, expert:
the noise-free controller).

**Deviation**: the recipe's controller is a SAC policy trained to walk to waypoints (the next
cell of a Q-iteration path), which is not available here; this uses the repo's scripted trot
steered along the BFS shortest cell path (`envs/ant_gait.py`, `ant_controller`) instead. It
reaches the goal, but its gait, speed and state distribution are not the SAC policy's, so the
data is in the standard layout and recipe, not a copy of the public dataset. Also not copied:
the recipe's forced truncation every 200k steps (its checkpoint interval) and its per-episode
reseeding of the noise (here one NumPy stream from --seed).

**The recipe's noise swamps the trot** on this ant (150 N m per unit action; the trot's torques
are set in N m, mean |action| 0.08): measured on 35,000 steps (50 episodes, seed 0), N(0, 0.2^2)
gives no rewarded row (the closest approach 4.0 from the goal) and 12 episodes end with the ant
on its back; --noise 0.1 gives 3,122 rewarded rows in 46 episodes (first reward at step
463-691), none on its back; noise-free the trot reaches the goal after 410-530 steps. Both
measured 0.0 (random) and 178.1 (expert) as Minari's reference scores. So the default noise is
0.1 (a named deviation: data without a single reward would teach nothing); `--noise 0.2` gives
the recipe's.

    MINARI_DATASETS_PATH=/tmp/minari python -m benchmarks.antmaze_collector_dataset \\
        --id D4RL/antmaze/umaze-v1 --env AntMaze_UMaze-v4 --steps 35000
"""

from __future__ import annotations

import itertools

import gymnasium as gym
import gymnasium_robotics
import jax
import minari
import numpy as np
from minari import StepDataCallback

from benchmarks.collector_dataset import collector_cli, create_dataset
from jaxo2o.data.maze_standard import ant_umaze_collection_spec
from jaxo2o.envs.ant_gait import ant_controller
from jaxo2o.envs.gr_maze import GRMaze

gym.register_envs(gymnasium_robotics)

NOISE = 0.1  # action noise std; the recipe's 0.2 swamps the trot (module docstring)


def ant_state(obs: dict) -> tuple[np.ndarray, np.ndarray]:
    """(qpos (15,), qvel (14,)) of the ant from an AntMaze observation: achieved_goal is qpos[:2],
    observation is qpos[2:] ++ qvel (gymnasium_robotics ant_maze_v4, the ant's observation with
    its position included)."""
    qpos = np.concatenate([obs["achieved_goal"], obs["observation"][:13]])
    return qpos, obs["observation"][13:]


class AntMazeInfos(StepDataCallback):
    """The recipe's infos. The step info of AntMaze carries the ant's reward terms, which the
    reset info has not (DataCollector needs the same keys): keep success, add the state."""

    def __call__(self, env, obs, info, **kwargs):
        step = super().__call__(env, obs, info, **kwargs)
        qpos, qvel = ant_state(obs)
        step["info"] = {
            "success": step["info"]["success"],
            "qpos": qpos,
            "qvel": qvel,
            "goal": obs["desired_goal"],
        }
        return step


class AntPolicy:
    """`ant_controller` (jitted) on the Gymnasium env's observations; `t` is the step index within
    the episode (the trot's phase)."""

    def __init__(self, spec: gym.envs.registration.EnvSpec):
        maze = GRMaze(spec.id, maze_map=spec.kwargs["maze_map"])
        self._act = jax.jit(ant_controller(maze).action)
        self.episode_length = spec.max_episode_steps

    def __call__(self, obs: dict, t: int) -> np.ndarray:
        qpos, qvel = ant_state(obs)
        goal = obs["desired_goal"].astype(np.float32)
        a = self._act(qpos.astype(np.float32), qvel.astype(np.float32), goal, t)
        return np.asarray(a, np.float64)

    def expert(self):
        """A policy of the observation alone, for Minari's reference rollouts: they step the eval
        env, which never terminates (continuing_task), episode after episode, so the step index
        is the call count modulo the time limit."""
        calls = itertools.count()
        return lambda obs: self(obs, next(calls) % self.episode_length).astype(np.float32)


def collect(
    ds_id: str,
    env_id: str,
    steps: int,
    seed: int = 0,
    noise: float = NOISE,
    refs: tuple[float, float] | None = None,
) -> minari.MinariDataset:
    """`steps` noisy-controller steps on `env_id` (the umaze-v1 collection spec) as the Minari
    dataset `ds_id`; episode k is reset with seed + k. `refs`: give (random, expert) scores
    instead of Minari's 100-episode measurement (tests)."""
    spec = ant_umaze_collection_spec(env_id)
    env = minari.DataCollector(gym.make(spec), record_infos=True, step_data_callback=AntMazeInfos)
    policy = AntPolicy(spec)
    rng = np.random.default_rng(seed)
    episode, t = 0, 0
    obs, _ = env.reset(seed=seed)
    for i in range(steps):
        a = policy(obs, t) + rng.normal(0.0, noise, env.action_space.shape)
        obs, _, term, trunc, _ = env.step(np.clip(a, -1.0, 1.0).astype(np.float32))
        t += 1
        if (term or trunc) and i + 1 < steps:
            episode, t = episode + 1, 0
            obs, _ = env.reset(seed=seed + episode)
    ds = create_dataset(
        env,
        ds_id,
        "antmaze_collector_dataset.py",
        algorithm_name=f"scripted ant trot along the BFS path + N(0, {noise}^2) action noise",
        description=f"{steps} steps of {env_id} with the D4RL/antmaze umaze recipe (scripted "
        "trot instead of the recipe's SAC waypoint follower)",
        eval_env=spec,
        refs=refs,
        expert_policy=policy.expert(),
    )
    env.close()
    return ds


def main() -> None:
    collector_cli(collect, __doc__, noise=NOISE)


if __name__ == "__main__":
    main()
