"""The scripted ant controller (`envs/ant_gait.py`), driven on MuJoCo C (no MJX compilation):
the joint/motor layout it reads from the models, that the trot walks every way, and that the
waypoint controller reaches the goal of the U-mazes while random actions do not."""

from __future__ import annotations

import jax
import mujoco
import numpy as np
import pytest

from benchmarks.make_antmaze_data import sample_goal_np
from jaxo2o.envs.ant_gait import TrotGait, ant_controller
from jaxo2o.envs.d4rl_antmaze import GOAL_RADIUS, D4RLAntMaze, G, R, antmaze_xml
from jaxo2o.envs.gr_maze import GOAL_THRESHOLD, GRMaze


@pytest.fixture(scope="module")
def d4rl_env():
    return D4RLAntMaze("antmaze-umaze-v2")


def run_c(m, frame_skip, per_action, qpos, qvel, goal, steps, radius, policy):
    """Steps MuJoCo C with `policy(qpos, qvel, t)` (ctrl = per_action x action); returns (first
    step within `radius` of `goal`, or None; the final qpos)."""
    d = mujoco.MjData(m)
    d.qpos[:], d.qvel[:] = qpos, qvel
    mujoco.mj_forward(m, d)
    for t in range(steps):
        d.ctrl[:] = per_action * np.asarray(policy(d.qpos, d.qvel, t))
        for _ in range(frame_skip):
            mujoco.mj_step(m, d)
        if goal is not None and np.linalg.norm(d.qpos[:2] - goal) <= radius:
            return t + 1, d.qpos.copy()
    return None, d.qpos.copy()


def run_env(env, qpos, qvel, goal, radius, policy):
    m = env.mj_model
    per_action = env.torque_per_action / float(m.actuator_gear[0, 0])
    return run_c(m, env.physics.frame_skip, per_action, qpos, qvel, goal, env.episode_length,
                 radius, policy)  # fmt: skip


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
    f = lambda qp, qv, t: gait(qp.astype(np.float32), qv.astype(np.float32), t, v)
    _, q = run_c(m, 5, 30.0, m.qpos0, np.zeros(m.nv), None, 60, 0.0, f)
    assert q[:2] @ v > 3.5  # 4.1-6.0 measured (the axes faster than the diagonals)
    assert abs(q[0] * v[1] - q[1] * v[0]) < 1.5  # sideways: at most 1.0 measured
    up_z = 1 - 2 * (q[4] ** 2 + q[5] ** 2)
    assert up_z > 0.9


def test_waypoint_controller_reaches_the_d4rl_umaze_goal(d4rl_env):
    env, m = d4rl_env, d4rl_env.mj_model
    act = jax.jit(ant_controller(env).action)
    rng = np.random.default_rng(0)
    for _ in range(2):
        goal = sample_goal_np(env.maze_map, rng).astype(np.float32)
        qpos = m.qpos0 + rng.uniform(-0.1, 0.1, m.nq)
        qvel = 0.1 * rng.standard_normal(m.nv)
        f = lambda qp, qv, t, g=goal: act(qp.astype(np.float32), qv.astype(np.float32), g, t)
        hit, _ = run_env(env, qpos, qvel, goal, GOAL_RADIUS, f)
        assert hit is not None and hit < env.episode_length
        rand = lambda qp, qv, t: rng.uniform(-1.0, 1.0, m.nu)
        miss, _ = run_env(env, qpos, qvel, goal, GOAL_RADIUS, rand)
        assert miss is None


def test_waypoint_controller_reaches_the_gymnasium_umaze_goal():
    env = GRMaze("AntMaze_UMaze-v4")
    act = jax.jit(ant_controller(env).action)
    st = env.reset(jax.random.key(3))
    goal = np.asarray(st.physics.goal)
    f = lambda qp, qv, t: act(qp.astype(np.float32), qv.astype(np.float32), goal, t)
    qpos, qvel = np.asarray(st.physics.qpos), np.zeros(env.mj_model.nv)
    hit, _ = run_env(env, qpos, qvel, goal, GOAL_THRESHOLD, f)
    assert hit is not None
