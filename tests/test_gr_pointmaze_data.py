"""The device generator of `D4RL/pointmaze`-recipe datasets on PointMaze v3
(`jaxo2o/data/gr_pointmaze.py`): the stored rows are the env's steps, the episodes are cut at
success, the action noise is N(0, 0.5^2), the labels follow the sparse rule, the written Minari
dataset reads back with its env specs, and the episode lengths match `minari.DataCollector` on
Gymnasium-Robotics' C env (`benchmarks.maze_collector_dataset`)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from benchmarks import maze_collector_dataset
from jaxo2o.config import EnvConfig, RunConfig
from jaxo2o.core.runner import BatchResult
from jaxo2o.core.transitions import Transitions
from jaxo2o.data import dataset_id, load_dataset
from jaxo2o.data import gr_pointmaze as grp
from jaxo2o.data import tiers as tiers_mod
from jaxo2o.data.dataset import episode_lengths
from jaxo2o.data.generate import ensure_datasets
from jaxo2o.data.maze_standard import check_maze_env, eval_env_kwargs
from jaxo2o.envs.gr_maze import GRMaze
from jaxo2o.envs.gr_waypoints import WaypointController
from jaxo2o.experiment import Experiment, plan, summarize

TASK = "PointMaze_UMaze-v3"
STREAMS, STEPS = 16, 1000


@pytest.fixture(scope="module")
def made():
    data = grp.GRPointMazeData(TASK, size=STREAMS * STEPS, rollout_envs=STREAMS, chunk_steps=500)
    roller = grp.StreamRoller(data)
    t = roller.collect(jax.random.PRNGKey(3))
    return data, roller, t


def _streams(x: np.ndarray) -> np.ndarray:
    return x.reshape(STREAMS, STEPS, *x.shape[1:])


def test_rows_are_the_env_steps(made):
    data, roller, t = made
    env = roller.env
    obs, nxt = _streams(t.obs), _streams(t.next_obs)
    # one continuing stream per env: each row starts where the previous one ended
    np.testing.assert_array_equal(obs[:, 1:], nxt[:, :-1])
    np.testing.assert_allclose(t.obs[:, 0:2], t.obs[:, 4:6])  # achieved_goal = position

    # every row's next observation is the port's step of (its state, its action)
    def step(o, a):
        d0 = env._data0
        return env.physics_step(d0.replace(qpos=o[4:6], qvel=o[6:8]), a)

    out = jax.jit(jax.vmap(step))(jnp.asarray(t.obs), jnp.asarray(t.action))
    np.testing.assert_allclose(np.asarray(out.qpos), t.next_obs[:, 4:6], atol=1e-5)
    np.testing.assert_allclose(np.asarray(out.qvel), t.next_obs[:, 6:8], atol=1e-4)


def test_episodes_are_cut_exactly_at_success(made):
    _, _, t = made
    d = np.linalg.norm(t.next_obs[:, 0:2] - t.next_obs[:, 2:4], axis=1)
    success = d <= 0.45
    assert success.sum() >= 20
    assert not t.terminated.any()
    stream_end = np.zeros((STREAMS, STEPS), bool)
    stream_end[:, -1] = True
    np.testing.assert_array_equal(t.truncated, success | stream_end.reshape(-1))
    # the sparse reward, against the goal the next observation carries
    np.testing.assert_array_equal(t.reward, success.astype(np.float32))
    # the goal is redrawn after a success (the cut's next episode starts with the old goal in
    # its first observation, the new one in the next), and only then
    cut = _streams(success)[:, :-1].reshape(-1)
    obs, nxt = _streams(t.obs)[:, 1:].reshape(-1, 8), _streams(t.next_obs)[:, 1:].reshape(-1, 8)
    np.testing.assert_array_equal(nxt[~cut, 2:4], obs[~cut, 2:4])
    moved = np.linalg.norm(nxt[cut, 2:4] - obs[cut, 2:4], axis=1)
    assert (moved > 0).all()
    assert (np.linalg.norm(nxt[cut, 2:4] - obs[cut, 0:2], axis=1) > 0.45).all()


def test_action_noise_is_gaussian_with_std_half(made):
    data, roller, t = made
    ctrl = WaypointController(roller.env, data.kp, data.kd)
    clean = np.asarray(jax.jit(ctrl)(jnp.asarray(t.obs)))
    a = t.action
    assert np.abs(a).max() <= 1.0
    # clipping moves only noise beyond 1 - |clean| > 0.34 (the median |noise| of N(0, 0.5^2)
    # is 0.337), so the median of |a - clean| over rows with |clean| < 0.6 is that of |noise|
    inner = np.abs(clean) < 0.6
    assert inner.sum() > 1000
    sigma = np.median(np.abs(a - clean)[inner]) / stats.norm.ppf(0.75)
    assert abs(sigma - 0.5) < 0.04, sigma
    # the noise is centred and independent of the axis
    r = (a - clean)[inner & (np.abs(clean) < 0.2)]
    assert abs(np.median(r)) < 0.05


def test_written_dataset_reads_back_with_its_env_specs(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    refs = {
        name: {"policy": name, "episodes": 100, "return_mean": r, "return_std": 0.0,
               "success_rate": 0.5}
        for name, r in (("random", 10.0), ("expert", 200.0))
    }  # fmt: skip
    monkeypatch.setattr(grp, "reference_scores", lambda data, key: refs)  # (100 MJX episodes)
    data = grp.GRPointMazeData(TASK, size=1000, rollout_envs=10, chunk_steps=50)
    monkeypatch.setitem(tiers_mod.TIERS, "grtest", tiers_mod.Tier("grtest", (data,)))
    logs: list[str] = []
    ids = ensure_datasets("grtest", progress=False, log=logs.append)
    assert ids == [dataset_id(TASK, "d4rl", "grtest")]
    env = GRMaze(TASK)
    ds = load_dataset(ids[0], observation_size=env.observation_size, action_size=2)
    assert (ds.task, ds.kind, ds.tier) == (TASK, "d4rl", "grtest")
    assert ds.recipe_hash == grp.gr_recipe_hash(data, "d4rl")
    assert (ds.ref_min_score, ds.ref_max_score) == (10.0, 200.0)
    assert ds.size == 1000 and not ds.transitions.terminated.any()
    np.testing.assert_array_equal(ds.episode_lengths, episode_lengths(ds.transitions))
    # the recording env: the public sets' spec
    assert ds.env_spec["id"] == TASK and ds.env_spec["max_episode_steps"] == 1_000_000
    kw = ds.env_spec["kwargs"]
    assert kw["continuing_task"] is True and kw["reset_target"] is True
    check_maze_env(ds, TASK)
    # the evaluation env: one goal cell (1, 1), every other free cell a start, 300 steps
    ev = eval_env_kwargs(ds, TASK)
    assert ev["episode_length"] == 300 and ev["maze_map"][1][1] == "g"
    assert ev.get("reset_target", False) is False
    assert GRMaze(TASK, **ev).goal_cells.tolist() == [[-1.0, 1.0]]
    # cached by recipe: a second call makes nothing
    logs.clear()
    assert ensure_datasets("grtest", progress=False, log=logs.append) == ids and logs == []
    with pytest.raises(ValueError, match="kind"):
        grp.gr_recipe_hash(data, "play")
    with pytest.raises(ValueError, match="PointMaze"):
        grp.GRPointMazeData("AntMaze_UMaze-v4", size=10)


def _inner_lengths(t) -> np.ndarray:
    """Episode lengths without each stream's first (from a reset) and last (cut short)."""
    lengths = episode_lengths(t)
    return lengths[1:-1]


def test_episode_lengths_match_the_c_data_collector(made, tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    maze_collector_dataset.collect(
        "test/pointmaze/umaze-v0", TASK, 3000, seed=1, refs=(0.0, 1.0), eval_env=False
    )
    c = _inner_lengths(load_dataset("test/pointmaze/umaze-v0").transitions)
    _, _, t = made
    dev = np.concatenate(
        [_inner_lengths(type(t)(*(_streams(x)[i] for x in t))) for i in range(STREAMS)]
    )
    assert len(c) >= 30 and len(dev) >= 150
    assert stats.ks_2samp(c, dev).pvalue > 0.01


def test_sweep_rows_carry_the_success_rate_on_sparse_mazes():
    """`summarize` adds the % of episodes with a positive return (reached the goal) on the
    sparse Gymnasium-Robotics mazes, per evaluation and at the end of each phase."""
    n = 32
    obs = np.zeros((n, 4), np.float32)
    t = Transitions(obs, np.zeros((n, 2), np.float32), np.zeros(n, np.float32), obs,
                    np.zeros(n, bool), np.zeros(n, bool))  # fmt: skip

    @dataclasses.dataclass(frozen=True)
    class Fake:
        dataset_id: str
        transitions: Transitions
        ref_min_score: float
        ref_max_score: float
        episode_returns: np.ndarray

    run = RunConfig(
        offline_steps=20,
        online_steps=20,
        offline_eval_every=10,
        online_eval_every=10,
        batch_size=16,
        eval_episodes=4,
        progress=False,
    )
    env = EnvConfig(task="point", episode_length=20)
    exp = Experiment(
        method="iql",
        env=env,
        run=run,
        dataset="test/fake-v0",
        seeds=1,
        method_config=("hidden=8,8",),
    )
    p = plan(exp, Fake("test/fake-v0", t, 0.0, 100.0, np.array([0.0])))
    metrics = {
        "offline": {"eval_returns": np.array([[[0.0, 0.0, 3.0, 0.0], [5.0, 1.0, 0.0, 2.0]]])},
        "online": {"eval_returns": np.array([[[0.0] * 4, [9.0] * 4, [0.0, 0.0, 0.0, 7.0]]])},
    }
    batch = BatchResult(metrics, None, 0.0, 0.0, 1, {})
    (row,), _ = summarize(p, batch)
    assert "offline_success" not in row  # not a Gymnasium-Robotics maze
    for task, has in (("PointMaze_UMaze-v3", True), ("PointMaze_UMazeDense-v3", False)):
        env = dataclasses.replace(p.experiment.env, task=task)
        q = dataclasses.replace(p, experiment=dataclasses.replace(p.experiment, env=env))
        (row,), curves = summarize(q, batch)
        if has:
            assert (row["offline_success"], row["online_success"]) == (75.0, 25.0)
            assert [c["success"] for c in curves] == [25.0, 75.0, 0.0, 100.0, 25.0]
        else:
            assert "offline_success" not in row and "success" not in curves[0]
