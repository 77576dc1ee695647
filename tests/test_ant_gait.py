"""The scripted ant controller (`envs/ant_gait.py`), driven on MuJoCo C (no MJX compilation):
the joint/motor layout it reads from the models, that the trot walks every way, and that the
waypoint controller reaches the goal of the U-mazes while random actions do not."""

from __future__ import annotations

import jax
import mujoco
import numpy as np
import pytest

from benchmarks.ant_controller_parity import c_hit_times
from benchmarks.ant_gait_grid import walk
from benchmarks.make_antmaze_data import sample_goal_np
from jaxo2o.envs.ant_gait import TrotGait, ant_controller
from jaxo2o.envs.d4rl_antmaze import D4RLAntMaze, G, R, antmaze_xml
from jaxo2o.envs.gr_maze import GRMaze


@pytest.fixture(scope="module")
def d4rl_env():
    return D4RLAntMaze("antmaze-umaze-v2")


def test_layout_is_read_from_the_model(d4rl_env):
    lay = ant_controller(d4rl_env).gait.layout
    # ant.xml's motors: hip_4, ankle_4, hip_1, ankle_1, hip_2, ankle_2, hip_3, ankle_3
    np.testing.assert_array_equal(lay["motor"], [2, 3, 4, 5, 6, 7, 0, 1])
    np.testing.assert_array_equal(lay["qpos"], np.arange(7, 15))
    np.testing.assert_array_equal(lay["dof"], np.arange(6, 14))
    np.testing.assert_array_equal(lay["down"], [1, -1, -1, 1])  # ankle ranges' signs
    s = np.sqrt(0.5)  # leg 1 points to (+x, +y): its tangent is (-x, +y)
    np.testing.assert_allclose(lay["tangent"], [[-s, s], [-s, -s], [s, -s], [s, s]], atol=1e-7)


@pytest.mark.parametrize("angle", range(0, 360, 45))
def test_the_trot_walks_every_way_and_stays_upright(angle):
    m = mujoco.MjModel.from_xml_string(antmaze_xml(((R, 0), (0, G))))  # no walls
    gait = jax.jit(TrotGait(m, dt=0.1, torque_per_action=30.0))
    v = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))], np.float32)
    q = walk(m, gait, v, 60)
    assert q[:2] @ v > 3.5  # 4.1-6.0 measured (the axes faster than the diagonals)
    assert abs(q[0] * v[1] - q[1] * v[0]) < 1.5  # sideways: at most 1.0 measured
    up_z = 1 - 2 * (q[4] ** 2 + q[5] ** 2)
    assert up_z > 0.9


def test_waypoint_controller_reaches_the_d4rl_umaze_goal(d4rl_env):
    env, m = d4rl_env, d4rl_env.mj_model
    rng = np.random.default_rng(0)
    goals = np.stack([sample_goal_np(env.maze_map, rng) for _ in range(2)]).astype(np.float32)
    qpos = m.qpos0 + rng.uniform(-0.1, 0.1, (2, m.nq))
    qvel = 0.1 * rng.standard_normal((2, m.nv))
    ctrl, horizon = ant_controller(env), env.episode_length
    still = np.zeros((2, horizon, m.nu), np.float32)
    hit = c_hit_times(env, ctrl, (qpos, qvel, goals), still, controlled=True)
    assert (hit < horizon).all()
    rand = rng.uniform(-1.0, 1.0, (2, horizon, m.nu))
    miss = c_hit_times(env, ctrl, (qpos, qvel, goals), rand, controlled=False)
    assert (miss > horizon).all()


def test_waypoint_controller_reaches_the_gymnasium_umaze_goal():
    env = GRMaze("AntMaze_UMaze-v4")
    st = env.reset(jax.random.key(3))
    s0 = (np.asarray(st.physics.qpos)[None], np.zeros((1, env.mj_model.nv)),
          np.asarray(st.physics.goal)[None])  # fmt: skip
    still = np.zeros((1, env.episode_length, env.action_size), np.float32)
    hit = c_hit_times(env, ant_controller(env), s0, still, controlled=True)
    assert hit[0] <= env.episode_length
