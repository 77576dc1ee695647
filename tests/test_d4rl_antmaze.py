"""D4RL's antmaze-v2 on MJX (`envs/d4rl_antmaze.py`): the model's facts, the reset and goal laws,
the reward/done rule, the observation, the antmaze HDF5 files, and (slow, heavy) one-step parity
with MuJoCo C on the same model."""

from __future__ import annotations

import h5py
import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from benchmarks.d4rl_antmaze_parity import REGIMES, collect, port_errors
from benchmarks.make_antmaze_data import record, relabel, write
from jaxo2o.data.d4rl_io import read_d4rl
from jaxo2o.data.dataset import DatasetError
from jaxo2o.data.standard import check_recorded_env
from jaxo2o.envs import make_env
from jaxo2o.envs.d4rl_antmaze import D4RL_ANTMAZE_TASKS, D4RLAntMaze, to_ctrl
from jaxo2o.presets import domain_of, official

UMAZE = "antmaze-umaze-v2"


def test_registry_ids_and_time_limits():
    limits = {t: make_env(t).episode_length for t in D4RL_ANTMAZE_TASKS}
    assert limits == {
        "antmaze-umaze-v2": 700,
        "antmaze-umaze-diverse-v2": 700,
        "antmaze-medium-play-v2": 1000,
        "antmaze-medium-diverse-v2": 1000,
        "antmaze-large-play-v2": 1000,
        "antmaze-large-diverse-v2": 1000,
    }
    assert all(domain_of(t) == "maze" for t in D4RL_ANTMAZE_TASKS)
    preset = official("iql", domain_of(UMAZE))
    assert preset.config["reward_normalization"] == "minus_one"
    assert preset.hparams == {"expectile": 0.9, "inverse_temperature": 10.0}


def test_model_facts_and_umaze_blocks():
    env = D4RLAntMaze(UMAZE)
    m = env.mj_model
    assert (m.nq, m.nv, m.nu, env.observation_size, env.action_size) == (15, 14, 8, 29, 8)
    assert m.opt.timestep == 0.02 and m.opt.integrator == mujoco.mjtIntegrator.mjINT_RK4
    assert env.physics.frame_skip == 5 and env.physics.dt == pytest.approx(0.1)
    np.testing.assert_array_equal(m.actuator_gear[:, 0], np.ones(8))
    np.testing.assert_array_equal(m.actuator_ctrlrange, np.tile([-30.0, 30.0], (8, 1)))
    names = [mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_JOINT, m.actuator_trnid[k, 0])
             for k in range(8)]  # fmt: skip
    assert names == ["hip_4", "ankle_4", "hip_1", "ankle_1", "hip_2", "ankle_2", "hip_3", "ankle_3"]
    np.testing.assert_allclose(m.dof_armature[6:], 1.0)
    np.testing.assert_allclose(m.dof_damping[6:], 1.0)
    assert m.dof_armature[:6].max() == 0.0 and m.dof_damping[:6].max() == 0.0
    np.testing.assert_allclose(m.qpos0[:7], [0, 0, 0.75, 1, 0, 0, 0])
    for g in ("floor", "block_0_0", "torso_geom", "fourth_ankle_geom"):
        geom = m.geom(g)
        np.testing.assert_allclose(geom.solref, [0.02, 1.0])
        np.testing.assert_allclose(geom.solimp[:3], [0.8, 0.8, 0.01])
        assert geom.margin[0] == pytest.approx(0.01) and geom.condim[0] == 3
    assert m.geom("torso_geom").conaffinity[0] == 0 and m.geom("block_0_0").conaffinity[0] == 1
    # U_MAZE_TEST, r at (row 1, col 1): x = 4 j - 4, y = 4 i - 4, z = 1; half-sizes (2, 2, 1)
    walls = {(0, 0): (-4, -4), (0, 4): (12, -4), (1, 0): (-4, 0), (2, 1): (0, 4), (2, 2): (4, 4),
             (2, 4): (12, 4), (3, 0): (-4, 8), (4, 4): (12, 12)}  # fmt: skip
    for (i, j), xy in walls.items():
        np.testing.assert_allclose(m.geom(f"block_{i}_{j}").pos, [*xy, 1.0])
        np.testing.assert_allclose(m.geom(f"block_{i}_{j}").size, [2.0, 2.0, 1.0])
    blocks = [m.geom(k).name for k in range(m.ngeom) if m.geom(k).name.startswith("block_")]
    assert len(blocks) == 18 and "block_2_3" not in blocks and "block_1_1" not in blocks
    assert m.geom("floor").type[0] == mujoco.mjtGeom.mjGEOM_PLANE


def test_action_scaling_is_normalized_box_env():
    a = jnp.array([-2.0, -1.0, -0.5, 0.0, 0.25, 1.0, 1.5, 0.1])
    np.testing.assert_allclose(to_ctrl(a), [-30, -30, -15, 0, 7.5, 30, 30, 3], atol=1e-5)


@pytest.mark.parametrize(
    "task,base",
    [
        (UMAZE, (0.0, 8.0)),
        ("antmaze-medium-play-v2", (20.0, 20.0)),
        ("antmaze-large-diverse-v2", (32.0, 24.0)),
    ],  # fmt: skip
)
def test_goal_law(task, base):
    """g cell + U(0, 1) + U(0, 0.5) per axis: within [base, base + 1.5], mean base + 0.75."""
    env = D4RLAntMaze(task)
    goals = np.asarray(
        jax.jit(jax.vmap(env.sample_goal))(jax.random.split(jax.random.key(1), 4000))
    )
    off = goals - np.asarray(base)
    assert off.min() >= 0.0 and off.max() <= 1.5
    assert off.max() > 1.35
    np.testing.assert_allclose(off.mean(0), [0.75, 0.75], atol=0.03)
    # the sum of U(0, 1) and U(0, 0.5): variance 1/12 + 0.25/12
    np.testing.assert_allclose(off.var(0), [1.25 / 12] * 2, rtol=0.1)


def test_reset_law_and_observation():
    env = D4RLAntMaze(UMAZE)
    n = 4000
    st = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.key(0), n))
    qpos, qvel = np.asarray(st.physics.qpos), np.asarray(st.physics.qvel)
    dq = qpos - env.mj_model.qpos0
    assert np.abs(dq).max() <= 0.1 + 1e-6 and np.abs(dq).max() > 0.099
    np.testing.assert_allclose(dq.mean(0), 0.0, atol=0.006)
    np.testing.assert_allclose(dq.std(0), 0.2 / np.sqrt(12), rtol=0.05)
    np.testing.assert_allclose(qvel.mean(0), 0.0, atol=0.006)
    np.testing.assert_allclose(qvel.std(0), 0.1, rtol=0.05)
    np.testing.assert_array_equal(np.asarray(st.obs), np.concatenate([qpos, qvel], 1))
    assert np.all(np.asarray(st.physics.qacc_warmstart) == 0.0)
    assert np.all(np.asarray(st.t) == 0)
    # the state is small and fixed-size (checkpointable): qpos, qvel, warm start, goal
    assert [x.shape for x in st.physics] == [(n, 15), (n, 14), (n, 14), (n, 2)]
    obs = D4RLAntMaze.observe(jnp.arange(15.0), jnp.arange(100.0, 114.0))
    np.testing.assert_array_equal(obs, np.r_[np.arange(15.0), np.arange(100.0, 114.0)])


def test_reward_and_done_rule():
    goal = jnp.array([0.7, 8.3])
    for d, hit in ((0.0, True), (0.499, True), (0.501, False), (3.0, False)):
        xy = goal + jnp.array([0.6, 0.8]) * d
        r, done = D4RLAntMaze.reward_and_terminated(xy, goal)
        assert float(r) == float(hit) and bool(done) == hit


def write_tiny(path, obs_dim: int = 29) -> dict:
    """A hand-written antmaze-layout file: two episodes, the first reaching the goal in its last
    two rows and ending at a timeout, the second cut by the end of the file."""
    n = 7
    obs = np.zeros((n, obs_dim), np.float32)
    obs[:, 0] = np.arange(n)
    a = {
        "observations": obs,
        "actions": np.full((n, 8), 0.5, np.float32),
        "rewards": np.array([0, 0, 1, 1, 0, 0, 0], np.float32),
        "terminals": np.array([0, 0, 1, 1, 0, 0, 0], bool),
        "timeouts": np.array([0, 0, 0, 0, 1, 0, 0], bool),
        "infos/goal": np.zeros((n, 2), np.float32),
    }
    write(path, a)
    return a


def test_antmaze_hdf5_reading(tmp_path):
    path = tmp_path / "antmaze-umaze-v2.hdf5"
    write_tiny(path)
    ds = read_d4rl(path)
    t = ds.transitions
    assert ds.metadata["d4rl_body"] == "antmaze"
    assert (ds.ref_min_score, ds.ref_max_score) == (0.0, 1.0)
    # the timeout row (4) is dropped (no valid next observation); the last row ends nothing
    np.testing.assert_array_equal(t.obs[:, 0], [0, 1, 2, 3, 5])
    np.testing.assert_array_equal(t.next_obs[:, 0], [1, 2, 3, 4, 6])
    np.testing.assert_array_equal(t.reward, [0, 0, 1, 1, 0])  # stored 0/1 (r - 1: the preset)
    np.testing.assert_array_equal(t.terminated, [0, 0, 1, 1, 0])
    np.testing.assert_array_equal(t.truncated, [0, 0, 0, 0, 1])
    assert list(ds.episode_lengths) == [3, 1, 1] and list(ds.episode_returns) == [1, 1, 0]
    assert check_recorded_env(ds, UMAZE) is None
    with pytest.raises(DatasetError, match="antmaze"):
        check_recorded_env(ds, "Hopper-v5")
    write_tiny(tmp_path / "hopper-medium-v2.hdf5", obs_dim=11)  # and a hopper file on antmaze
    with pytest.raises(DatasetError, match="'hopper', the task is 'antmaze-umaze-v2', which"):
        check_recorded_env(read_d4rl(tmp_path / "hopper-medium-v2.hdf5"), UMAZE)
    # D4RL's own download name is recognised too; a wrong observation size is refused
    ds2 = read_d4rl(write_tiny(tmp_path / "Ant_maze_u-maze_noisy_multistart_False.hdf5") and
                    tmp_path / "Ant_maze_u-maze_noisy_multistart_False.hdf5")  # fmt: skip
    assert ds2.metadata["d4rl_body"] == "antmaze"
    write_tiny(tmp_path / "antmaze-large-play-v2.hdf5", obs_dim=27)
    with pytest.raises(DatasetError, match="29-D"):
        read_d4rl(tmp_path / "antmaze-large-play-v2.hdf5")


def test_generated_file_follows_the_relabel_rule(tmp_path):
    a = record(UMAZE, episodes=3, steps=10, seed=2)
    assert a["observations"].shape == (33, 29) and a["actions"].shape == (33, 8)
    np.testing.assert_array_equal(np.flatnonzero(a["timeouts"]), [10, 21, 32])
    goal = a["infos/goal"][0]
    hit = np.linalg.norm(a["observations"][1:, :2] - goal, axis=1) <= 0.5
    np.testing.assert_array_equal(a["rewards"][:-1], hit)
    np.testing.assert_array_equal(a["terminals"][:-1], hit)
    assert a["rewards"][-1] == 0 and not a["terminals"][-1]
    np.testing.assert_allclose(a["observations"][:, :15], a["infos/qpos"], rtol=1e-6)
    obs = np.zeros((3, 29))
    obs[1, :2] = goal + [0.3, 0.3]
    r, term = relabel(obs, goal)
    np.testing.assert_array_equal(r, [1, 0, 0])
    np.testing.assert_array_equal(term, [True, False, False])
    path = tmp_path / "antmaze-umaze-v2.hdf5"
    write(path, a)
    with h5py.File(path) as f:
        assert set(f) == {"observations", "actions", "rewards", "terminals", "timeouts", "infos"}
    assert read_d4rl(path).transitions.obs.shape[1] == 29


@pytest.mark.slow
@pytest.mark.heavy
def test_one_step_parity_per_regime():
    """100 reference states per regime (benchmarks/d4rl_antmaze_parity.py; the MJX compile of
    the ant in the maze takes minutes on 2 cores). Tolerances from the measured envelope in
    results/antmaze-d4rl/README.md."""

    env = D4RLAntMaze(UMAZE)
    states = [collect(env, r, 100, seed=10 + k) for k, r in enumerate(REGIMES)]
    merged = type(states[0])(*(np.concatenate([getattr(s, f) for s in states])
                               for f in states[0].__dataclass_fields__))  # fmt: skip
    err = port_errors(env, merged).reshape(3, 100)
    air, floor, wall = err
    assert np.median(air) <= 1e-4 and air.max() <= 5e-4, air.max()
    assert np.median(floor) <= TOL["floor_median"] and floor.max() <= TOL["floor_max"]
    assert np.median(wall) <= TOL["wall_median"] and wall.max() <= TOL["wall_max"]


# measured on 300 states per regime (pyramidal cone): air median 1.1e-5 / max 1.1e-4; floor
# 4.6e-2 / 0.77 (MJX's tangents on steep shins, `d4rl_antmaze.CONE`); wall 0.21 / 2.1
TOL = {"floor_median": 0.15, "floor_max": 2.0, "wall_median": 0.5, "wall_max": 5.0}
