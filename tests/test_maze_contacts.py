"""MJX's wall-pair culling for agents in block mazes (`envs/maze_contacts.py`): the bound's value,
its refusal when the geometry breaks it, that MuJoCo C ignores it, and that MJX's contacts and
accelerations with it equal those without it."""

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest
from mujoco import mjx

from benchmarks.d4rl_antmaze_parity import collect
from jaxo2o.envs import d4rl_antmaze as am
from jaxo2o.envs.gr_maze import GRMaze
from jaxo2o.envs.maze_contacts import (
    ANT_CONTACT_POINTS,
    compile_with_culling,
    contact_limits,
    wall_pair_limit,
)


def _plain(maze_map) -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_string(am.antmaze_xml(maze_map))


def test_pair_limit_is_four_blocks_per_geom_of_the_largest_type():
    # D4RL's ant: 12 capsules and 1 sphere collide with the blocks -> 4 x 12
    assert wall_pair_limit(_plain(am.U_MAZE_TEST), 4.0) == 48
    # the point: one sphere -> 4
    assert wall_pair_limit(GRMaze("PointMaze_UMaze-v3").mj_model, 1.0) == 4
    for task in ("antmaze-umaze-v2", "antmaze-large-diverse-v2"):
        limits = contact_limits(am.D4RLAntMaze(task).mj_model)
        assert limits == {"max_geom_pairs": 48, "max_contact_points": ANT_CONTACT_POINTS}
    assert contact_limits(GRMaze("AntMaze_Medium-v4").mj_model)["max_geom_pairs"] == 48
    assert contact_limits(GRMaze("PointMaze_UMaze-v3").mj_model) == {}


def test_pair_limit_refuses_a_grid_too_tight_for_the_bound():
    # blocks of bounding radius 3 (half-sizes 2, 2, 1) + the shin's 0.36 + margins reach 3.38
    with pytest.raises(ValueError, match="grid spacing 3.3"):
        wall_pair_limit(_plain(am.U_MAZE_TEST), 3.3)
    assert wall_pair_limit(_plain(am.U_MAZE_TEST), 3.4) == 48


def test_mujoco_c_ignores_the_limits():
    plain = _plain(am.U_MAZE_TEST)
    culled = compile_with_culling(mujoco.MjSpec.from_string(am.antmaze_xml(am.U_MAZE_TEST)), 4.0, 8)
    assert contact_limits(culled) == {"max_geom_pairs": 48, "max_contact_points": 8}
    rng = np.random.default_rng(0)
    runs = []
    for m in (plain, culled):
        d = mujoco.MjData(m)
        d.qpos[:2] = (-1.2, 1.2)  # against the start cell's walls
        d.qvel[:2] = (-2.0, 2.0)
        for _ in range(100):
            d.ctrl[:] = rng.uniform(-30, 30, m.nu)
            mujoco.mj_step(m, d)
        runs.append(np.concatenate([d.qpos, d.qvel]))
        rng = np.random.default_rng(0)
    np.testing.assert_array_equal(runs[0], runs[1])


def test_mjx_with_culling_finds_the_same_contacts_and_accelerations():
    """Wall-contact states (MuJoCo C rollouts pushed into the start cell's walls): the number of
    active contacts and MJX's qacc agree with and without the limits (float32 rounding only)."""
    env = am.D4RLAntMaze("antmaze-umaze-v2")
    st = collect(env, "wall", 24, seed=3)
    out = []
    for m in (env.mj_model, _plain(env.maze_map)):
        mx = mjx.put_model(m)

        def forward(q, v, w, a, mx=mx):
            d = mjx.make_data(mx).replace(qpos=q, qvel=v, qacc_warmstart=w, ctrl=30.0 * a)
            d = mjx.forward(mx, d)
            c = d._impl.contact
            return d.qacc, jnp.sum(c.dist < c.includemargin)

        args = (jnp.asarray(x, jnp.float32) for x in (st.qpos, st.qvel, st.warm, st.action))
        out.append(jax.jit(jax.vmap(forward))(*args))
    (qacc_c, n_c), (qacc_p, n_p) = out
    assert int(n_p.max()) > 0  # the states do touch something
    np.testing.assert_array_equal(np.asarray(n_c), np.asarray(n_p))
    scale = np.abs(np.asarray(qacc_p)).max(axis=1, keepdims=True)
    assert np.abs(np.asarray(qacc_c) - np.asarray(qacc_p)).max() <= 1e-5 * scale.max()
