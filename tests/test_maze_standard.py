"""The standard maze datasets: ids, a `D4RL/pointmaze/umaze-v2`-layout dataset made here with
`minari.DataCollector` on Gymnasium-Robotics' env (`benchmarks.maze_collector_dataset`'s recipe)
read as flat transitions, the recorded-environment check and the evaluation env it names."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

from benchmarks import maze_collector_dataset
from jaxo2o.data import DatasetError, load_dataset
from jaxo2o.data.maze_standard import eval_env_kwargs, maze_dataset_id
from jaxo2o.data.standard import check_recorded_env, standard_dataset_id
from jaxo2o.envs.gr_maze import GRMaze
from jaxo2o.experiment.lines import expand
from jaxo2o.experiment.spec import Experiment


@pytest.fixture
def minari_root(tmp_path, monkeypatch):
    root = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return root


def test_standard_maze_ids():
    assert standard_dataset_id("PointMaze_UMaze-v3", "d4rl") == "D4RL/pointmaze/umaze-v2"
    assert maze_dataset_id("PointMaze_LargeDense-v3", "d4rl") == "D4RL/pointmaze/large-dense-v2"
    assert maze_dataset_id("AntMaze_UMaze-v4", "diverse") == "D4RL/antmaze/umaze-diverse-v1"
    assert maze_dataset_id("AntMaze_Large_Diverse_GR-v4", "diverse") == (
        "D4RL/antmaze/large-diverse-v1"
    )
    with pytest.raises(ValueError, match="its kinds are"):
        maze_dataset_id("AntMaze_Medium-v4", "diverse")
    lines = expand(Experiment(method="iql"), tasks=("PointMaze_UMaze-v3",), kinds=("d4rl",))
    assert [ln.experiment.dataset for ln in lines] == ["D4RL/pointmaze/umaze-v2"]
    assert lines[0].experiment.env.episode_length == 300


def test_collector_dataset_is_read_flat_and_checked(minari_root):
    maze_collector_dataset.collect(
        "D4RL/pointmaze/umaze-v2", "PointMaze_UMaze-v3", 400, refs=(14.0, 230.0)
    )
    env = GRMaze("PointMaze_UMaze-v3")
    ds = load_dataset(
        "D4RL/pointmaze/umaze-v2",
        observation_size=env.observation_size,
        action_size=env.action_size,
    )
    t = ds.transitions
    assert t.obs.shape == (400, 8) and t.action.shape == (400, 2)
    # flattened as gymnasium.spaces.flatten: achieved_goal, desired_goal, observation
    np.testing.assert_allclose(t.obs[:, 0:2], t.obs[:, 4:6], atol=1e-6)
    # sparse reward: 1 exactly within 0.45 of the goal the step was paid against, the one its
    # next observation carries (the goal moves after it; the next episode's first observation
    # still shows the old one)
    d = np.linalg.norm(t.next_obs[:, 0:2] - t.next_obs[:, 2:4], axis=1)
    np.testing.assert_array_equal(t.reward, (d <= 0.45).astype(np.float32))
    # episodes are cut at success (truncated), never terminated
    assert not t.terminated.any() and t.truncated[t.reward > 0].all()
    assert check_recorded_env(ds, "PointMaze_UMaze-v3") is None
    with pytest.raises(DatasetError, match="recorded on 'PointMaze_UMaze-v3'"):
        check_recorded_env(ds, "PointMaze_Medium-v3")
    kw = eval_env_kwargs(ds, "PointMaze_UMaze-v3")
    assert kw["episode_length"] == 300 and kw["maze_map"][1][1] == "g"
    ev = GRMaze("PointMaze_UMaze-v3", **kw)
    assert ev.goal_cells.tolist() == [[-1.0, 1.0]]  # the one goal cell (row 1, column 1)
    assert len(ev.reset_cells) == 6  # every other free cell a start


def test_data_with_other_walls_is_refused(minari_root):
    maze_collector_dataset.collect(
        "D4RL/pointmaze/umaze-v2", "PointMaze_UMaze-v3", 50, refs=(0.0, 1.0), eval_env=False
    )
    env = GRMaze("PointMaze_UMaze-v3")
    ds = load_dataset(
        "D4RL/pointmaze/umaze-v2",
        observation_size=env.observation_size,
        action_size=env.action_size,
    )
    rows = [list(r) for r in gym.spec("PointMaze_UMaze-v3").kwargs["maze_map"]]
    rows[2][2] = 0  # a wall opened

    other = dataclasses.replace(ds, env_spec={**ds.env_spec, "kwargs": {"maze_map": rows}})
    with pytest.raises(DatasetError, match="other walls"):
        check_recorded_env(other, "PointMaze_UMaze-v3")
    assert eval_env_kwargs(ds, "PointMaze_UMaze-v3") == {}
