"""A `D4RL/antmaze/umaze-v1`-layout dataset made with `minari.DataCollector` on Gymnasium-Robotics'
AntMaze_UMaze-v4 (`benchmarks.antmaze_collector_dataset`: the recipe with the scripted ant), read
through the repo's Minari reader: 700-step TimeLimit episodes, no terminations, the recipe's
infos, the sparse labels, the recorded-env check and the evaluation env it names (one r, one g).
Reference scores are given, so Minari does no rollouts."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import antmaze_collector_dataset as acd
from jaxo2o.data import DatasetError, load_dataset
from jaxo2o.data.dataset import episode_lengths
from jaxo2o.data.maze_standard import eval_env_kwargs, maze_dataset_id
from jaxo2o.data.standard import check_recorded_env
from jaxo2o.envs.gr_maze import GRMaze

TASK = "AntMaze_UMaze-v4"
DS_ID = "D4RL/antmaze/umaze-v1"


@pytest.fixture(scope="module")
def minari_root(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("MINARI_DATASETS_PATH", str(tmp_path_factory.mktemp("minari")))
    yield
    mp.undo()


@pytest.fixture(scope="module")
def recipe(minari_root):
    """1,500 steps with the recipe's N(0, 0.2^2) noise: two full episodes and 100 steps."""
    assert maze_dataset_id(TASK, "play") == DS_ID
    minari_ds = acd.collect(DS_ID, TASK, 1500, seed=0, noise=0.2, refs=(0.0, 120.0))
    env = GRMaze(TASK)
    ds = load_dataset(DS_ID, observation_size=env.observation_size, action_size=env.action_size)
    return minari_ds, ds


def test_episodes_are_the_time_limit_and_never_terminate(recipe):
    _, ds = recipe
    t = ds.transitions
    assert ds.size == 1500 and t.obs.shape == (1500, 31) and t.action.shape == (1500, 8)
    np.testing.assert_array_equal(episode_lengths(t), [700, 700, 100])
    assert not t.terminated.any()
    assert t.truncated.sum() == 3 and t.truncated[[699, 1399, 1499]].all()
    assert np.abs(t.action).max() <= 1.0
    # N(0, 0.2^2) noise on the gait's small actions (mean |a| 0.08): within 4.5 sigma of 0
    assert 0.2 < t.action.std() < 0.23 and np.abs(t.action).max() < 0.2 * 4.5 + 0.1
    # flattened as gymnasium.spaces.flatten: achieved_goal (x, y), desired_goal, observation
    # (z, the torso's quaternion, ...): it starts at rest in the r cell (3, 1) at (-4, -4), at
    # z 0.75 upright; the goal is fixed (reset_target False), in the g cell (1, 1) at (-4, 4),
    # both +- 0.25 * 4 per axis
    starts = t.obs[[0, 700, 1400]]
    assert np.abs(starts[:, 0:2] - [-4.0, -4.0]).max() <= 1.0
    np.testing.assert_array_equal(starts[:, 4:9], [[0.75, 1.0, 0.0, 0.0, 0.0]] * 3)
    np.testing.assert_array_equal(starts[:, 17:], 0.0)
    goal = t.obs[:, 2:4]
    assert np.abs(goal - [-4.0, 4.0]).max() <= 1.0
    assert (np.ptp(goal[:700], axis=0) == 0).all()
    # the sparse reward against the next observation's position
    d = np.linalg.norm(t.next_obs[:, 0:2] - t.next_obs[:, 2:4], axis=1)
    np.testing.assert_array_equal(t.reward, (d <= 0.45).astype(np.float32))
    assert (ds.ref_min_score, ds.ref_max_score) == (0.0, 120.0)


def test_recipe_infos_hold_the_state(recipe):
    minari_ds, _ = recipe
    ep = next(minari_ds.iterate_episodes())
    assert sorted(ep.infos) == ["goal", "qpos", "qvel", "success"]
    obs = ep.observations
    np.testing.assert_array_equal(ep.infos["qpos"][:, :2], obs["achieved_goal"])
    np.testing.assert_array_equal(ep.infos["qpos"][:, 2:], obs["observation"][:, :13])
    np.testing.assert_array_equal(ep.infos["qvel"], obs["observation"][:, 13:])
    np.testing.assert_array_equal(ep.infos["goal"], obs["desired_goal"])
    np.testing.assert_array_equal(ep.infos["success"][1:], ep.rewards > 0)
    assert ep.id == 0 and minari_ds.storage.metadata["total_episodes"] == 3


def test_recorded_and_evaluation_env(recipe):
    _, ds = recipe
    assert check_recorded_env(ds, TASK) is None
    with pytest.raises(DatasetError, match="recorded on 'AntMaze_UMaze-v4'"):
        check_recorded_env(ds, "AntMaze_Medium-v4")
    kw = ds.env_spec["kwargs"]
    assert ds.env_spec["max_episode_steps"] == 700
    assert kw["continuing_task"] is True and kw["reset_target"] is False
    ev = eval_env_kwargs(ds, TASK)
    assert ev["episode_length"] == 700
    assert ev["continuing_task"] is True and ev["reset_target"] is False
    cells = [c for row in ev["maze_map"] for c in row]
    assert cells.count("g") == 1 and cells.count("r") == 1
    assert ev["maze_map"][1][1] == "g" and ev["maze_map"][3][1] == "r"
    env = GRMaze(TASK, **ev)
    assert env.goal_cells.tolist() == [[-4.0, 4.0]] and env.reset_cells.tolist() == [[-4.0, -4.0]]


def test_the_noise_free_gait_reaches_the_goal(minari_root):
    """The recipe's noise is N(0, 0.2^2) on actions of 150 N m per unit, about 2.5x the gait's
    mean |action| (0.08), and slows the trot so that it does not reach the goal in 700 steps;
    noise-free it does, after 410-520 steps (from the r cell, measured), and stays there."""
    acd.collect("test/antmaze/umaze-noisefree-v1", TASK, 1400, seed=1, noise=0.0, refs=(0, 1))
    t = load_dataset("test/antmaze/umaze-noisefree-v1", observation_size=31).transitions
    for ep in (t.reward[:700], t.reward[700:]):
        first = int(np.argmax(ep > 0))
        assert ep.any() and 300 < first < 600, first
        assert ep[first:].mean() > 0.5
