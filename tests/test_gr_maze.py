"""The MJX PointMaze ports (`envs/gr_maze.py`) against Gymnasium-Robotics' own envs (MuJoCo C).

One-step parity is teacher-forced on 1,000 reference states per maze (held random actions from
points anywhere in free cells: ~15% of the steps touch a wall), with a tolerance per regime;
the closed-loop check runs the waypoint controller with the same noise from the same starts.
"""

from __future__ import annotations

import functools

import gymnasium as gym
import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest
from scipy import stats

from benchmarks.maze_parity import (
    collect_states,
    one_step_errors,
    port_hit_times,
    reference_env,
    reference_hit_times,
    wilson,
)
from jaxo2o.envs.gr_maze import GOAL_THRESHOLD, GRMaze, margin_as_radius
from jaxo2o.envs.gr_waypoints import WaypointController

POINT_TASKS = ("PointMaze_UMaze-v3", "PointMaze_Medium-v3", "PointMaze_Large-v3")


@functools.lru_cache(maxsize=4)
def jit_step(env: GRMaze):
    return jax.jit(env.step)


def test_model_is_the_builders_maze():
    env = GRMaze("PointMaze_Medium-v3")
    m = env.mj_model
    rows = env.rows
    blocks = [(i, j) for i, r in enumerate(rows) for j, c in enumerate(r) if c == 1]
    names = [m.geom(g).name for g in range(m.ngeom)]
    assert sum(n.startswith("block_") for n in names) == len(blocks)
    i, j = blocks[5]
    g = m.geom(f"block_{i}_{j}")
    np.testing.assert_allclose(g.pos[:2], [(j + 0.5) - 4.0, 4.0 - (i + 0.5)])
    np.testing.assert_allclose(g.size, [0.5, 0.5, 0.2])
    assert m.opt.timestep == 0.01 and m.opt.iterations == 20
    assert m.opt.integrator == mujoco.mjtIntegrator.mjINT_EULER
    assert (env.observation_size, env.action_size, env.episode_length) == (8, 2, 600)
    # the MJX copy: margins folded into the sphere's radius, the C model untouched
    mx = margin_as_radius(m)
    assert mx.geom_margin.max() == 0.0 and m.geom_margin.min() == 0.002
    assert mx.geom("particle_geom").size[0] == pytest.approx(0.104)


@pytest.mark.parametrize(
    "task",
    [POINT_TASKS[0]] + [pytest.param(t, marks=pytest.mark.slow) for t in POINT_TASKS[1:]],
)
def test_one_step_parity_per_regime(task):
    env = GRMaze(task)
    st = collect_states(task, 1000, seed=3)
    err, reward, _ = one_step_errors(env, st)
    free, wall = err[~st.wall], err[st.wall]
    assert st.wall.mean() > 0.05, "too few wall contacts to test that regime"
    assert free.max() <= 1e-5, free.max()
    # wall contact (measured max 2.4e-5): same active set as C once margins are radii
    assert np.median(wall) <= 1e-6 and wall.max() <= 1e-3, (np.median(wall), wall.max())
    assert np.mean(wall <= 1e-4) >= 0.99
    np.testing.assert_array_equal(reward, st.reward)  # no state within 1e-5 of the radius here
    assert not st.terminated.any()  # continuing_task=True never terminates


def test_reward_and_termination_rules():
    env = GRMaze("PointMaze_UMaze-v3", continuing_task=False)
    goal = jnp.array([1.0, -1.0])
    for d, hit in ((0.449, True), (0.451, False)):
        r, term, _ = env.reward_and_terminated(goal + jnp.array([d, 0.0]), goal)
        assert float(r) == float(hit) and bool(term) == hit
    r, term, _ = GRMaze("PointMaze_UMaze-v3").reward_and_terminated(goal, goal)
    assert float(r) == 1.0 and not bool(term)
    dense = GRMaze("PointMaze_UMazeDense-v3")
    r, _, _ = dense.reward_and_terminated(goal + jnp.array([0.3, 0.4]), goal)
    assert float(r) == pytest.approx(np.exp(-0.5), rel=1e-6)


def test_observation_is_minaris_flattening():
    ref = reference_env("PointMaze_UMaze-v3")
    obs, _ = ref.reset(seed=0)
    env = GRMaze("PointMaze_UMaze-v3")
    u = ref.unwrapped
    state = env.reset_to(jax.random.key(0), jnp.asarray(obs["achieved_goal"]), u.goal)
    flat = gym.spaces.flatten(ref.observation_space, obs)
    np.testing.assert_allclose(np.asarray(state.obs), flat, atol=1e-6)
    a = np.array([0.7, -0.3])
    o2, *_ = ref.step(a)
    _, res = jit_step(env)(state, jnp.asarray(a, jnp.float32))
    np.testing.assert_allclose(res.next_obs, gym.spaces.flatten(ref.observation_space, o2), 1e-5)


def test_reset_distribution_matches_reference():
    """10,000 resets each: goal and reset cells with the same frequencies (chi-square), noise
    uniform on +-0.25 per axis (KS), and never a start in the goal's cell."""
    n = 10_000
    task = "PointMaze_Medium-v3"
    env = GRMaze(task)
    st = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.key(0), n))
    pg, ps = np.asarray(st.physics.goal), np.asarray(st.physics.qpos[:, :2])
    ref = reference_env(task)
    ref.reset(seed=0)
    rg, rs = np.zeros((n, 2)), np.zeros((n, 2))
    for k in range(n):
        o, _ = ref.reset()
        rg[k], rs[k] = o["desired_goal"], o["achieved_goal"]
    cell = lambda xy: tuple(map(tuple, np.asarray(env.cell_of(jnp.asarray(xy)))))
    for p, r in ((pg, rg), (ps, rs)):
        cp, cr = cell(p), cell(r)
        keys = sorted(set(cp) | set(cr))
        table = np.array([[cp.count(k) for k in keys], [cr.count(k) for k in keys]])
        assert stats.chi2_contingency(table).pvalue > 0.01
        centre = np.asarray(env.cell_xy(env.cell_of(jnp.asarray(p))))
        off = p - centre
        assert np.abs(off).max() <= 0.25 + 1e-6
        assert stats.kstest(off[:, 0], stats.uniform(-0.25, 0.5).cdf).pvalue > 0.01
    assert not np.any(np.all(env.cell_of(jnp.asarray(ps)) == env.cell_of(jnp.asarray(pg)), -1))


def test_goal_update_with_reset_target():
    env = GRMaze("PointMaze_UMaze-v3", reset_target=True)
    goal = jnp.asarray(env.goal_cells[3]) + 0.1
    state = env.reset_to(jax.random.key(1), goal + 0.05, goal)
    state, res = jit_step(env)(state, jnp.zeros(2))
    assert float(res.reward) == 1.0
    np.testing.assert_allclose(res.next_obs[2:4], goal)  # the obs keeps the goal it was paid for
    new = state.physics.goal
    assert float(jnp.linalg.norm(new - state.obs[:2])) > GOAL_THRESHOLD
    plain = GRMaze("PointMaze_UMaze-v3")
    kept, _ = jit_step(plain)(plain.reset_to(jax.random.key(1), goal, goal), jnp.zeros(2))
    np.testing.assert_allclose(kept.physics.goal, goal)  # default reset_target=False: goal kept


def test_controller_success_matches_reference():
    """Waypoint controller, same starts, goals and N(0, 0.5^2) action noise on both: success
    within a horizon where about half succeed agrees within the CIs (and episode by episode
    almost always); uniformly random actions agree too."""
    task, n, horizon = "PointMaze_UMaze-v3", 60, 120
    env = GRMaze(task)
    keys = jax.random.split(jax.random.key(5), n)
    st = jax.jit(jax.vmap(env.reset))(keys)
    starts, goals = np.asarray(st.physics.qpos[:, :2]), np.asarray(st.physics.goal)
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 0.5, (n, horizon, 2)).astype(np.float32)
    ctrl = WaypointController(env)
    ta = port_hit_times(env, ctrl, starts, goals, noise)
    tb = reference_hit_times(task, ctrl, starts, goals, noise)
    h = int(np.median(tb))
    a, b = int((ta <= h).sum()), int((tb <= h).sum())
    lo_a, hi_a = wilson(a, n)
    lo_b, hi_b = wilson(b, n)
    assert lo_a <= b / n <= hi_a and lo_b <= a / n <= hi_b, (a, b)
    assert np.mean((ta <= h) == (tb <= h)) >= 0.9
    assert (tb <= horizon).mean() >= 0.9  # the controller does reach the goal
    rand = rng.uniform(-1.0, 1.0, (n, horizon, 2)).astype(np.float32)
    ra = (port_hit_times(env, ctrl, starts, goals, rand, random_actions=True) <= horizon).sum()
    rb = (
        reference_hit_times(task, ctrl, starts, goals, rand, random_actions=True) <= horizon
    ).sum()
    assert ra <= 0.3 * n and rb <= 0.3 * n
    assert wilson(int(ra), n)[0] <= rb / n <= wilson(int(ra), n)[1]


def test_render_draws_world_coordinates(tmp_path):
    """PointMaze_UMaze: cell (row 1, column 1) is centred at world (-1, 1), cell (3, 3) at
    (1, -1); a trajectory along row 1 is drawn there, walls where the map has 1."""
    from jaxo2o.envs.render import FLOOR, GOAL, WALL, render_trajectories

    line = np.stack([np.linspace(-1.0, 1.0, 20), np.full(20, 1.0)], -1)  # row 1, cols 1..3
    img = render_trajectories(
        "PointMaze_UMaze-v3", line, tmp_path / "u.png", scale=10, goal=(1.0, -1.0), cmap="gray"
    )
    assert img.shape == (50, 50, 3) and (tmp_path / "u.png").exists()
    px = lambda i, j: img[int((i + 0.5) * 10), int((j + 0.5) * 10)]
    np.testing.assert_allclose(px(1, 2), [0.0, 0.0, 0.0], atol=1e-6)  # the line (gray(0))
    np.testing.assert_allclose(px(0, 0), WALL, atol=1e-6)
    np.testing.assert_allclose(px(2, 1), WALL, atol=1e-6)  # row 2: [1, 1, 1, 0, 1]
    np.testing.assert_allclose(px(2, 3), FLOOR, atol=1e-6)
    np.testing.assert_allclose(px(3, 3), 0.5 * np.array(FLOOR) + 0.5 * np.array(GOAL), atol=1e-6)


def test_antmaze_model_reset_and_observation():
    """AntMaze_UMaze-v4: Gymnasium's ant in the builder's maze at scaling 4, the v4 ant's
    27-D observation behind the goals, resets at qpos0 with the xy of a noisy reset cell."""
    env = GRMaze("AntMaze_UMaze-v4")
    m = env.mj_model
    assert (m.nq, m.nv, m.nu, env.observation_size, env.episode_length) == (15, 14, 8, 31, 700)
    assert m.opt.timestep == 0.01 and env.agent.frame_skip == 5
    assert m.opt.integrator == mujoco.mjtIntegrator.mjINT_RK4
    g = m.geom("block_0_0")
    np.testing.assert_allclose(g.pos, [-8.0, 8.0, 1.0])
    np.testing.assert_allclose(g.size, [2.0, 2.0, 1.0])
    st = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.key(0), 256))
    qpos = np.asarray(st.physics.qpos)
    np.testing.assert_allclose(qpos[:, 2:], np.broadcast_to(m.qpos0[2:], (256, 13)), atol=1e-7)
    off = qpos[:, :2] - np.asarray(env.cell_xy(env.cell_of(jnp.asarray(qpos[:, :2]))))
    assert np.abs(off).max() <= 1.0 + 1e-5 and np.abs(off).max() > 0.9  # U(-0.25, 0.25) x 4
    obs = np.asarray(st.obs)
    np.testing.assert_allclose(obs[:, 4:17], qpos[:, 2:])  # observation = qpos[2:] ++ qvel
    assert np.all(obs[:, 17:] == 0.0)


@pytest.mark.slow
@pytest.mark.heavy
def test_antmaze_one_step_parity():
    """AntMaze_UMaze-v4, 200 reference states (RK4, 5 substeps; the compile alone takes
    minutes on 2 cores). The envelope is Ant-v5's measured one (`test_mjx_locomotion_parity`:
    MJX and MuJoCo C choose a steep leg's floor-contact tangents differently, so a few states
    differ by O(1) in qvel): median <= 5e-4, max <= 5."""
    task = "AntMaze_UMaze-v4"
    st = collect_states(task, 200, seed=1, hold=4, episode=25)
    err, reward, _ = one_step_errors(GRMaze(task), st)
    assert np.median(err) <= 5e-4 and err.max() <= 5.0, (np.median(err), err.max())
    np.testing.assert_array_equal(reward, st.reward)
