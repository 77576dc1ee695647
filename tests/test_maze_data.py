"""The mazes' datasets: the waypoint controller, the segments and their D4RL AntMaze labels,
coverage, the recipe hash, and generation through `ensure_datasets` into Minari and back."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxo2o.data import cli, dataset_id, load_dataset
from jaxo2o.data import tiers as tiers_mod
from jaxo2o.data.dataset import episode_lengths
from jaxo2o.data.generate import ensure_datasets
from jaxo2o.data.maze import (
    MazeData,
    MazeSizes,
    SegmentRoller,
    controller_episodes,
    coverage,
    kind_cells,
    maze_recipe_hash,
)
from jaxo2o.data.recipe import MAZE_KINDS
from jaxo2o.envs import MAZE_TASKS, make_env
from jaxo2o.envs import maze as mz

SEGMENT = 200


def small(task: str, size: int = 8 * SEGMENT, **kw) -> MazeData:
    env = make_env(task)
    return MazeData(
        task=task,
        sizes=MazeSizes(play=size, diverse=size),
        episode_length=env.episode_length,
        segment_length=SEGMENT,
        rollout_envs=8,
        **kw,
    )


@pytest.mark.parametrize("task", MAZE_TASKS)
def test_controller_reaches_the_goal_from_the_start(task):
    env = make_env(task)
    success, steps = controller_episodes(env, jax.random.PRNGKey(0), 100, 0.0, 4.0, 1.0)
    assert success.mean() >= 0.95
    # the shortest path fits its time limit comfortably
    assert steps[success].max() < env.episode_length / 3


@pytest.fixture(scope="module")
def medium_segments():
    data = small("pointmaze-medium")
    env = make_env(data.task)
    roller = SegmentRoller(env, data)
    key = jax.random.PRNGKey(0)
    return env, data, {k: roller.collect(key, k, data.segments_of(k)) for k in MAZE_KINDS}


def test_segments_are_labelled_as_d4rl_antmaze(medium_segments):
    env, data, made = medium_segments
    for kind, t in made.items():
        n = data.segments_of(kind) * SEGMENT
        assert t.size == n
        # rewards and terminals relabelled for the evaluation goal, on every transition
        dist = np.linalg.norm(t.next_obs[:, :2] - np.asarray(env.goal_xy), axis=1)
        np.testing.assert_array_equal(t.reward, (dist <= mz.GOAL_RADIUS).astype(np.float32))
        np.testing.assert_array_equal(t.terminated, t.reward == 1.0)
        # segments end by the time limit only: truncated exactly at their last non-goal step
        last = (np.arange(n) % SEGMENT) == SEGMENT - 1
        np.testing.assert_array_equal(t.truncated, last & ~t.terminated)
        # ... and go on through goal transitions: next_obs is the next row's obs in a segment
        inside = np.flatnonzero(~last)
        np.testing.assert_array_equal(t.next_obs[inside], t.obs[inside + 1])
        # the dynamics made them: replaying row by row gives the same next observations
        pos, vel = jax.vmap(env.dynamics)(t.obs[:50, :2], t.obs[:50, 2:], t.action[:50])
        np.testing.assert_allclose(
            np.concatenate([pos, vel], axis=1), t.next_obs[:50], rtol=1e-6, atol=1e-6
        )
        assert np.abs(t.action).max() <= 1.0
        assert not np.any(mz.LAYOUTS["medium"].walls[tuple(mz.cell_of(t.obs[:, :2]).T)])
    # the play data reaches the evaluation goal (one of its play cells), mid-segment too
    play = made["play"]
    assert play.terminated.sum() > 0
    mid = play.terminated & ((np.arange(play.size) % SEGMENT) < SEGMENT - 1)
    assert mid.any()


def test_play_data_stays_on_the_play_cells_routes(medium_segments):
    env, _, made = medium_segments
    layout = env.layout
    starts = made["play"].obs[::SEGMENT, :2]
    cells = {tuple(c) for c in np.floor(starts[:, ::-1] + 0.5).astype(int)}
    assert cells <= set(layout.play_cells)
    w = layout.shape[1]
    assert kind_cells(layout, "play").sum() == len(layout.play_cells)
    assert kind_cells(layout, "diverse").sum() == len(layout.free_cells)
    assert all(kind_cells(layout, "play")[i * w + j] for i, j in layout.play_cells)


def test_diverse_data_covers_the_large_maze():
    data = small("pointmaze-large", size=20 * SEGMENT)
    env = make_env(data.task)
    t = SegmentRoller(env, data).collect(jax.random.PRNGKey(1), "diverse", 20)
    assert coverage(env.layout, t.obs[:, :2]) >= 0.9
    # random starts: the segments begin in many different cells
    starts = np.floor(t.obs[::SEGMENT, 1::-1] + 0.5).astype(int)
    assert len({tuple(c) for c in starts}) >= 10


def test_recipe_hash():
    base = small("pointmaze-umaze")
    assert maze_recipe_hash(base, "play") == maze_recipe_hash(small("pointmaze-umaze"), "play")
    assert maze_recipe_hash(base, "play") != maze_recipe_hash(base, "diverse")
    noisier = small("pointmaze-umaze", action_noise=0.3)
    assert all(maze_recipe_hash(base, k) != maze_recipe_hash(noisier, k) for k in MAZE_KINDS)
    bigger_play = MazeData(**{**base.__dict__, "sizes": MazeSizes(play=10_000, diverse=1600)})
    assert maze_recipe_hash(base, "play") != maze_recipe_hash(bigger_play, "play")
    assert maze_recipe_hash(base, "diverse") == maze_recipe_hash(bigger_play, "diverse")
    with pytest.raises(ValueError, match="kind"):
        maze_recipe_hash(base, "medium")
    with pytest.raises(ValueError, match="unknown maze"):
        MazeData("pointmaze-nowhere", MazeSizes(SEGMENT, SEGMENT), episode_length=100)
    with pytest.raises(ValueError, match="reference_episodes"):
        small("pointmaze-umaze", reference_episodes=10)


def test_generation_through_minari_and_back(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    data = small("pointmaze-umaze")
    tier = tiers_mod.Tier(name="mazetest", tasks=(data,))
    monkeypatch.setitem(tiers_mod.TIERS, "mazetest", tier)
    logs: list[str] = []
    ids = ensure_datasets("mazetest", progress=False, log=logs.append)
    assert ids == [dataset_id(data.task, k, "mazetest") for k in MAZE_KINDS]
    # the SAC kinds are not a maze's: asking only for them makes nothing here
    assert ensure_datasets("mazetest", kinds=("medium",), log=logs.append) == []
    env = make_env(data.task)
    for kind, ds_id in zip(MAZE_KINDS, ids, strict=True):
        ds = load_dataset(ds_id, observation_size=4, action_size=2)
        t = ds.transitions
        assert (ds.task, ds.kind, ds.tier) == (data.task, kind, "mazetest")
        assert ds.recipe_hash == maze_recipe_hash(data, kind)
        assert (ds.ref_min_score, ds.ref_max_score) == (0.0, 1.0)
        assert ds.size == data.segments_of(kind) * SEGMENT
        dist = np.linalg.norm(t.next_obs[:, :2] - np.asarray(env.goal_xy), axis=1)
        np.testing.assert_array_equal(t.reward, (dist <= mz.GOAL_RADIUS).astype(np.float32))
        np.testing.assert_array_equal(t.terminated, t.reward == 1.0)
        assert t.terminated.sum() > 0 and t.truncated.sum() <= data.segments_of(kind)
        # episodes are split at goal transitions and at segment ends
        np.testing.assert_array_equal(ds.episode_lengths, episode_lengths(t))
        assert len(ds.episode_lengths) == t.terminated.sum() + t.truncated.sum()
        np.testing.assert_allclose(ds.normalize(ds.episode_returns), 100 * ds.episode_returns)
        ref = ds.metadata["reference"]
        assert ref["expert"]["success_rate"] >= 0.95 and ref["noise_free"]["success_rate"] >= 0.95
        assert ref["expert"]["episodes"] >= 100
        assert ds.metadata["recipe"]["layout"] == list(env.layout.rows)
        stats = ds.metadata["data"]
        assert stats["free_cell_coverage"] == 1.0
        reached = t.terminated.reshape(-1, SEGMENT).any(axis=1)
        assert stats["return_mean"] == reached.mean() and stats["segments"] == len(reached)
    # cached by recipe hash: a second call makes nothing; a changed recipe remakes its kind
    logs.clear()
    assert ensure_datasets("mazetest", progress=False, log=logs.append) == ids
    assert logs == []
    bigger = MazeData(**{**data.__dict__, "sizes": MazeSizes(play=10 * SEGMENT, diverse=1600)})
    monkeypatch.setitem(tiers_mod.TIERS, "mazetest", tiers_mod.Tier("mazetest", (bigger,)))
    ensure_datasets("mazetest", progress=False, log=logs.append)
    assert any("play-mazetest" in m and "another recipe" in m for m in logs)
    assert not any("diverse-mazetest" in m and "will generate" in m for m in logs)
    assert load_dataset(ids[0]).size == 10 * SEGMENT
    # the CLI's info knows the maze facts
    assert cli.main(["info", ids[0]]) == 0
    assert "segments of 200 steps" in capsys.readouterr().out


def test_quick_and_paper_tiers_define_the_mazes():
    for name, sizes in (("quick", (100_000, 200_000, 300_000)), ("paper", (1_000_000,) * 3)):
        tier = tiers_mod.TIERS[name]
        for task, size in zip(MAZE_TASKS, sizes, strict=True):
            line = tier.task(task)
            assert isinstance(line, MazeData)
            assert line.size_of("play") == line.size_of("diverse") == size
            assert line.episode_length == make_env(task).episode_length
