"""Datasets: Minari round trips, episode boundaries, foreign Minari datasets, scores, bad input.

Every test writes to its own temporary MINARI_DATASETS_PATH and uses hand-built arrays (or a
tiny Gymnasium environment), so nothing here compiles a training run or touches ~/.minari.
"""

from __future__ import annotations

import json
import os

import gymnasium as gym
import h5py
import minari
import numpy as np
import pytest

from jaxo2o.core.transitions import Transitions
from jaxo2o.data import (
    DatasetError,
    dataset_id,
    load_dataset,
    minari_io,
    normalized_score,
    trajectory_return_range,
    write_dataset,
)
from jaxo2o.data.generate import is_current, replay_episodes
from jaxo2o.data.minari_io import missing_error
from jaxo2o.data.recipe import KINDS, BehaviourSAC, DatasetSizes, TaskData, recipe_hash


@pytest.fixture(autouse=True)
def minari_root(tmp_path, monkeypatch):
    root = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return root


def episodes_to_transitions(episodes):
    """Hand-built episodes -> flat transitions. Each episode: (observations T+1, actions T,
    rewards T, terminated at the end?)."""
    parts = {k: [] for k in Transitions._fields}
    for obs, act, rew, terminated in episodes:
        n = len(rew)
        parts["obs"].append(obs[:-1])
        parts["next_obs"].append(obs[1:])
        parts["action"].append(act)
        parts["reward"].append(rew)
        term = np.zeros(n, bool)
        trunc = np.zeros(n, bool)
        (term if terminated else trunc)[-1] = True
        parts["terminated"].append(term)
        parts["truncated"].append(trunc)
    return Transitions(*(np.concatenate(parts[k]) for k in Transitions._fields))


def random_episodes(rng, lengths, terminated, obs_size=3, act_size=2):
    eps = []
    for n, term in zip(lengths, terminated, strict=True):
        obs = rng.normal(size=(n + 1, obs_size)).astype(np.float32)
        act = rng.uniform(-1, 1, size=(n, act_size)).astype(np.float32)
        rew = rng.normal(size=n).astype(np.float32)
        eps.append((obs, act, rew, term))
    return eps


def sample_transitions(seed=0, lengths=(4, 7, 1, 5), terminated=(True, False, True, False)):
    return episodes_to_transitions(
        random_episodes(np.random.default_rng(seed), lengths, terminated)
    )


# ----------------------------------------------------------------------------- scores, ids
def test_normalized_score_on_hand_computed_numbers():
    got = normalized_score([10.0, 110.0, 60.0, 0.0, 160.0], 10.0, 110.0)
    np.testing.assert_allclose(got, [0.0, 100.0, 50.0, -10.0, 150.0])
    # D4RL's hopper references: R = 1000 -> 100 * 1020.272305 / 3254.572305
    np.testing.assert_allclose(normalized_score(1000.0, -20.272305, 3234.3), 31.34889, rtol=1e-6)
    with pytest.raises(ValueError, match="reference scores"):
        normalized_score([1.0], None, 5.0)
    with pytest.raises(ValueError, match="differ"):
        normalized_score([1.0], 5.0, 5.0)


def test_dataset_id_scheme():
    assert (
        dataset_id("reacher", "medium-replay", "quick") == "jaxo2o/reacher/medium-replay-quick-v0"
    )
    with pytest.raises(ValueError, match="kind"):
        dataset_id("reacher", "median", "quick")


def test_recipe_hash_tracks_what_each_kind_depends_on():
    base = TaskData(
        task="point",
        sac=BehaviourSAC(online_steps=1000),
        sizes=DatasetSizes(random=10, medium=20, expert=30),
    )
    more_expert = TaskData(
        task="point",
        sac=BehaviourSAC(online_steps=1000),
        sizes=DatasetSizes(random=10, medium=20, expert=31),
    )
    longer_sac = TaskData(
        task="point",
        sac=BehaviourSAC(online_steps=2000),
        sizes=DatasetSizes(random=10, medium=20, expert=30),
    )
    changed = {k for k in KINDS if recipe_hash(base, k) != recipe_hash(more_expert, k)}
    assert changed == {"expert", "medium-expert"}
    assert all(recipe_hash(base, k) != recipe_hash(longer_sac, k) for k in KINDS)
    assert len({recipe_hash(base, k) for k in KINDS}) == len(KINDS)
    assert base.size_of("medium-expert") == 50 and base.size_of("medium-replay") is None


# ----------------------------------------------------------------------------- round trips
def test_write_then_read_is_bitwise_identical(minari_root):
    t = sample_transitions()
    ds_id = "jaxo2o/point/handmade-test-v0"
    folder = write_dataset(
        ds_id,
        t,
        description="hand-built",
        ref_min_score=-1.0,
        ref_max_score=3.0,
        project_metadata={"task": "point", "kind": "medium"},
    )
    assert folder == minari_root / ds_id
    ds = load_dataset(ds_id)
    for name, a, b in zip(Transitions._fields, t, ds.transitions, strict=True):
        assert a.dtype == b.dtype, name
        assert np.array_equal(a, b), name  # exact, bit for bit
    np.testing.assert_array_equal(ds.episode_lengths, [4, 7, 1, 5])
    starts = [0, 4, 11, 12]
    want = [
        float(np.sum(t.reward[s : s + n], dtype=np.float64))
        for s, n in zip(starts, [4, 7, 1, 5], strict=True)
    ]
    np.testing.assert_array_equal(ds.episode_returns, want)
    assert trajectory_return_range(ds) == (min(want), max(want))
    assert (ds.ref_min_score, ds.ref_max_score) == (-1.0, 3.0)
    assert (ds.task, ds.kind) == ("point", "medium")
    # Minari itself reads it too, with the reference scores it would otherwise have dropped
    m = minari.load_dataset(ds_id)
    assert m.total_steps == 17 and m.total_episodes == 4
    np.testing.assert_allclose(minari.get_normalized_score(m, np.array([1.0])), [0.5])
    # nothing left in the staging area
    assert not any((minari_root / minari_io.STAGING).iterdir())


def test_episode_boundaries_keep_the_true_final_observation():
    # two episodes of a 1-D walk: the first ends by termination, the second by the time limit
    ep1 = np.array([[0.0], [1.0], [2.0]], np.float32)  # 2 steps, final observation 2.0
    ep2 = np.array([[10.0], [11.0], [12.0], [13.0]], np.float32)  # 3 steps, final 13.0
    act = lambda n: np.zeros((n, 1), np.float32)
    t = episodes_to_transitions(
        [(ep1, act(2), np.ones(2, np.float32), True), (ep2, act(3), np.ones(3, np.float32), False)]
    )
    write_dataset("jaxo2o/point/bounds-test-v0", t, description="boundaries")
    got = load_dataset("jaxo2o/point/bounds-test-v0").transitions
    np.testing.assert_array_equal(got.obs[:, 0], [0, 1, 10, 11, 12])
    np.testing.assert_array_equal(got.next_obs[:, 0], [1, 2, 11, 12, 13])  # 2, not 10, at row 1
    np.testing.assert_array_equal(got.terminated, [False, True, False, False, False])
    np.testing.assert_array_equal(got.truncated, [False, False, False, False, True])
    np.testing.assert_array_equal(np.asarray(Transitions(*got).mask), [1, 0, 1, 1, 1])


class CountdownEnv(gym.Env):
    """A tiny environment that terminates when its counter runs out (after 2 to 5 steps)."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.left = int(self.np_random.integers(2, 6))
        self.x = float(self.np_random.normal())
        return self._obs(), {}

    def _obs(self):
        return np.array([self.x, self.left], np.float32)

    def step(self, action):
        self.x += float(action[0])
        self.left -= 1
        return self._obs(), float(self.x), self.left == 0, False, {}


def collect_with_minari(env, ds_id, n_episodes, seed, **create_kwargs):
    """Record episodes with Minari's DataCollector; return what was seen, per episode."""
    collector = minari.DataCollector(env)
    rng = np.random.default_rng(seed)
    seen = []
    for e in range(n_episodes):
        obs, _ = collector.reset(seed=seed + e)
        ep = {"obs": [obs], "act": [], "rew": [], "term": [], "trunc": []}
        while True:
            a = rng.uniform(env.action_space.low, env.action_space.high).astype(np.float32)
            obs, r, term, trunc, _ = collector.step(a)
            for k, v in (("obs", obs), ("act", a), ("rew", r), ("term", term), ("trunc", trunc)):
                ep[k].append(v)
            if term or trunc:
                break
        seen.append(ep)
    collector.create_dataset(dataset_id=ds_id, **create_kwargs)
    collector.close()
    return seen


def assert_matches_episodes(ds, seen):
    t, row = ds.transitions, 0
    for ep in seen:
        n = len(ep["rew"])
        obs = np.asarray(ep["obs"], np.float32)
        sl = slice(row, row + n)
        np.testing.assert_array_equal(t.obs[sl], obs[:-1])
        np.testing.assert_array_equal(t.next_obs[sl], obs[1:])
        np.testing.assert_array_equal(t.action[sl], np.asarray(ep["act"], np.float32))
        np.testing.assert_allclose(t.reward[sl], np.asarray(ep["rew"], np.float32))
        np.testing.assert_array_equal(t.terminated[sl], ep["term"])
        # a step that is both (TimeLimit on an ending step) is kept as terminated only
        trunc = np.asarray(ep["trunc"]) & ~np.asarray(ep["term"])
        np.testing.assert_array_equal(t.truncated[sl], trunc)
        row += n
    assert row == t.size
    np.testing.assert_array_equal(ds.episode_lengths, [len(e["rew"]) for e in seen])


def test_reads_a_minari_datacollector_dataset_with_time_limits():
    env = gym.make("Pendulum-v1", max_episode_steps=15)  # truncates every episode at 15 steps
    with pytest.warns(UserWarning):  # Minari warns about unset author etc.
        seen = collect_with_minari(
            env, "pendulum/collected-v0", 3, seed=7, ref_min_score=-1500.0, ref_max_score=-150.0
        )
    ds = load_dataset("pendulum/collected-v0", observation_size=3, action_size=1)
    assert_matches_episodes(ds, seen)
    assert ds.transitions.truncated.sum() == 3 and not ds.transitions.terminated.any()
    assert (ds.ref_min_score, ds.ref_max_score) == (-1500.0, -150.0)
    assert ds.task is None and ds.kind is None  # not one of the project's datasets


def test_reads_a_minari_datacollector_dataset_with_terminations():
    env = gym.wrappers.TimeLimit(CountdownEnv(), max_episode_steps=4)  # unregistered: no spec
    with pytest.warns(UserWarning):
        seen = collect_with_minari(env, "countdown/collected-v0", 6, seed=3)
    ds = load_dataset("countdown/collected-v0")
    assert_matches_episodes(ds, seen)
    term, trunc = ds.transitions.terminated, ds.transitions.truncated
    assert term.any() and trunc.any()  # both kinds of ends occur with these seeds
    assert any(e["term"][-1] and e["trunc"][-1] for e in seen)  # Gymnasium set both flags once
    assert not np.any(term & trunc)
    assert ds.ref_min_score is None
    with pytest.raises(ValueError, match="reference scores"):
        ds.normalized_returns()


# ----------------------------------------------------------------------------- bad input
def nothing_written(root, ds_id):
    staging = root / minari_io.STAGING
    return not (root / ds_id).exists() and (not staging.exists() or not any(staging.iterdir()))


def test_missing_dataset_lists_local_ones_and_the_command(minari_root):
    write_dataset("jaxo2o/point/there-test-v0", sample_transitions(), description="x")
    with pytest.raises(DatasetError) as e:
        load_dataset("jaxo2o/reacher/medium-quick-v0")
    msg = str(e.value)
    assert str(minari_root / "jaxo2o/reacher/medium-quick-v0") in msg
    assert "jaxo2o/point/there-test-v0" in msg
    assert "python -m jaxo2o.data generate --tier quick --tasks reacher --kinds medium" in msg


@pytest.mark.parametrize("field,value", [("obs", np.nan), ("reward", np.inf), ("action", -np.inf)])
def test_non_finite_values_are_refused_and_nothing_is_written(minari_root, field, value):
    t = sample_transitions()
    bad = getattr(t, field).copy()
    bad[5] = value
    ds_id = "jaxo2o/point/nan-test-v0"
    with pytest.raises(
        DatasetError, match=rf"dataset {ds_id}: {field} holds {bad[5].size} non-finite .* row 5"
    ):
        write_dataset(ds_id, t._replace(**{field: bad}), description="x")
    assert nothing_written(minari_root, ds_id)


def test_non_finite_values_in_a_file_are_refused_on_read(minari_root):
    ds_id = "jaxo2o/point/nanfile-test-v0"
    write_dataset(ds_id, sample_transitions(), description="x")
    h5 = minari_root / ds_id / "data" / "main_data.hdf5"
    with h5py.File(h5, "a") as f:
        f["episode_2"]["rewards"][0] = np.nan
    # the reader applies the writer's rules (one validator), naming the file and the first row
    with pytest.raises(DatasetError, match=rf"{h5}: reward holds 1 non-finite .* first at row"):
        load_dataset(ds_id)


def test_inconsistent_lengths_are_refused(minari_root):
    t = sample_transitions()
    ds_id = "jaxo2o/point/len-test-v0"
    with pytest.raises(
        DatasetError, match="inconsistent lengths: action has 16 rows, reward has 17"
    ):
        write_dataset(ds_id, t._replace(action=t.action[:-1]), description="x")
    assert nothing_written(minari_root, ds_id)
    # a file whose episode has one action too few
    write_dataset(ds_id, t, description="x")
    h5 = minari_root / ds_id / "data" / "main_data.hdf5"
    with h5py.File(h5, "a") as f:
        f["episode_1"]["actions"].resize((6, 2))
    with pytest.raises(DatasetError, match=rf"{h5}: episode 1: inconsistent lengths: 6 actions"):
        load_dataset(ds_id)


def test_broken_episode_chain_is_refused(minari_root):
    t = sample_transitions()
    nxt = t.next_obs.copy()
    nxt[1] += 1.0  # row 1 is inside the first episode: its next observation must be row 2's
    with pytest.raises(DatasetError, match="row 1: next_obs differs from the observation of row 2"):
        write_dataset("jaxo2o/point/chain-test-v0", t._replace(next_obs=nxt), description="x")
    unfinished = t._replace(truncated=np.zeros_like(t.truncated))
    with pytest.raises(DatasetError, match="the last row ends no episode"):
        write_dataset("jaxo2o/point/chain-test-v0", unfinished, description="x")
    assert nothing_written(minari_io.datasets_root(), "jaxo2o/point/chain-test-v0")


def test_sizes_that_do_not_match_the_task_are_refused(minari_root):
    t = sample_transitions()  # 3-d observations, 2-d actions
    ds_id = "jaxo2o/point/size-test-v0"
    with pytest.raises(DatasetError, match="observations have 3 dimensions, the task expects 4"):
        write_dataset(ds_id, t, description="x", observation_size=4, action_size=2)
    assert nothing_written(minari_root, ds_id)
    write_dataset(ds_id, t, description="x")
    h5 = minari_root / ds_id / "data" / "main_data.hdf5"
    with pytest.raises(
        DatasetError, match=rf"{h5}: observations have 3 dimensions, but the task expects 4"
    ):
        load_dataset(ds_id, observation_size=4, action_size=2)
    with pytest.raises(
        DatasetError, match=rf"{h5}: actions have 2 dimensions, but the task expects 1"
    ):
        load_dataset(ds_id, observation_size=3, action_size=1)
    assert load_dataset(ds_id, observation_size=3, action_size=2).size == 17


def test_an_interrupted_write_leaves_nothing_under_the_name(minari_root, monkeypatch):
    ds_id = "jaxo2o/point/crash-test-v0"

    def crash(self, episodes):
        list(episodes)[:1]
        raise KeyboardInterrupt  # as if the process were stopped half-way through the file

    from minari.dataset._storages.hdf5_storage import HDF5Storage

    monkeypatch.setattr(HDF5Storage, "update_episodes", crash)
    with pytest.raises(KeyboardInterrupt):
        write_dataset(ds_id, sample_transitions(), description="x")
    assert nothing_written(minari_root, ds_id)


def test_a_half_written_folder_is_never_read_as_complete(minari_root):
    # what an interrupted generation without staging leaves: Minari's folder, episodes and all,
    # but not the project's completion record that is written last
    ds_id = dataset_id("point", "medium", "smoke")
    t = sample_transitions()
    write_dataset(ds_id, t, description="x")
    meta_file = minari_root / ds_id / "data" / "metadata.json"
    meta = json.loads(meta_file.read_text())
    del meta[minari_io.PROJECT_KEY]
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match=r"metadata.json|main_data.hdf5") as e:
        load_dataset(ds_id)
    assert "incomplete dataset (the completion record is missing)" in str(e.value)
    assert "main_data.hdf5" in str(e.value)
    ok, why = is_current(ds_id, "anything")
    assert not ok and why.startswith("incomplete")
    # a folder where even the episode file is missing
    os.remove(minari_root / ds_id / "data" / "main_data.hdf5")
    with pytest.raises(DatasetError, match="incomplete dataset \\(no main_data.hdf5\\)"):
        load_dataset(ds_id)
    # an empty versioned folder (stopped right after mkdir)
    (minari_root / "jaxo2o/point/empty-smoke-v0").mkdir(parents=True)
    with pytest.raises(DatasetError, match="incomplete dataset \\(no data/ folder\\)"):
        load_dataset("jaxo2o/point/empty-smoke-v0")
    assert "jaxo2o/point/empty-smoke-v0" in minari_io.list_local()


def test_a_dataset_from_another_recipe_is_not_current(minari_root):
    ds_id = dataset_id("point", "expert", "smoke")
    write_dataset(
        ds_id, sample_transitions(), description="x", project_metadata={"recipe_hash": "abc"}
    )
    assert is_current(ds_id, "abc") == (True, "")
    ok, why = is_current(ds_id, "def")
    assert not ok and "another recipe" in why
    assert is_current(dataset_id("point", "random", "smoke"), "abc") == (False, "missing")


def test_stale_staging_folders_are_cleaned(minari_root):
    stale = minari_root / minari_io.STAGING / "999999999-deadbeef"
    stale.mkdir(parents=True)
    live = minari_root / minari_io.STAGING / f"{os.getpid()}-cafe0000"
    live.mkdir()
    assert minari_io.clean_staging() == [stale]
    assert live.exists() and not stale.exists()


# ----------------------------------------------------------------------------- replay -> episodes
def test_replay_buffer_rows_become_per_environment_episodes():
    # two environments interleaved: row = iteration * 2 + env; env 0 ends an episode at
    # iteration 1, env 1 at iteration 2; the buffer is cut after iteration 3
    n_it, n_env = 4, 2
    obs = np.arange(n_it * n_env, dtype=np.float32).reshape(-1, 1)
    term = np.zeros(n_it * n_env, bool)
    trunc = np.zeros(n_it * n_env, bool)
    term[1 * 2 + 0] = True
    trunc[2 * 2 + 1] = True
    buf = Transitions(obs, np.zeros((8, 1), np.float32), obs[:, 0], obs + 100, term, trunc)
    eps = replay_episodes(buf, rows=8, num_envs=2)
    np.testing.assert_array_equal(eps.lengths, [2, 2, 3, 1])
    np.testing.assert_array_equal(eps.transitions.obs[:, 0], [0, 2, 4, 6, 1, 3, 5, 7])
    # env 0's and env 1's unfinished last episodes are marked truncated
    np.testing.assert_array_equal(eps.transitions.terminated, [0, 1, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(eps.transitions.truncated, [0, 0, 0, 1, 0, 0, 1, 1])
    np.testing.assert_array_equal(eps.returns, [2.0, 10.0, 9.0, 7.0])
    assert not buf.truncated[7]  # the buffer itself is untouched


def test_a_missing_dataset_names_the_command_that_makes_or_fetches_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    own = str(missing_error("jaxo2o/pointmaze-umaze/play-quick-v0"))
    assert "python -m jaxo2o.data generate --tier quick --tasks pointmaze-umaze --kinds play" in own
    public = str(missing_error("D4RL/pointmaze/umaze-v2"))
    assert "minari download D4RL/pointmaze/umaze-v2" in public and "generate" not in public
    assert str(tmp_path) in public and "(none)" in public
