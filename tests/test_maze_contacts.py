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
from benchmarks.maze_parity import collect_states
from jaxo2o.envs import d4rl_antmaze as am
from jaxo2o.envs.gr_maze import TASK_SPECS, GRMaze, margin_as_radius, maze_spec
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
    assert contact_limits(GRMaze("AntMaze_Medium-v4").mj_model) == {
        "max_geom_pairs": 48,
        "max_contact_points": ANT_CONTACT_POINTS,
    }
    assert contact_limits(GRMaze("PointMaze_Large-v3").mj_model) == {"max_geom_pairs": 4}


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


def _gr_plain(task: str) -> mujoco.MjModel:
    """A Gymnasium-Robotics maze model without the MJX limits (`gr_maze.build_model` without
    `compile_with_culling`), margins folded as the env folds them."""
    agent = TASK_SPECS[task].agent
    model = maze_spec(agent, TASK_SPECS[task].maze_map)[1].compile()
    return margin_as_radius(model) if agent.fold_margins else model


def _d4rl_case():
    env = am.D4RLAntMaze("antmaze-umaze-v2")
    st = collect(env, "wall", 24, seed=3)  # MuJoCo C rollouts pushed into the start cell's walls
    return env.mj_model, _plain(env.maze_map), (st.qpos, st.qvel, st.warm, 30.0 * st.action)


def _gr_case(task: str, n: int):
    env = GRMaze(task)
    st = collect_states(task, n, seed=1, hold=4, episode=25)  # MuJoCo C rollouts, walls hit
    culled = env.physics.mj_model  # the device model, as the env builds it
    return culled, _gr_plain(task), (st.qpos, st.qvel, st.warm, st.action)


@pytest.mark.parametrize(
    "case",
    [
        _d4rl_case,
        lambda: _gr_case("AntMaze_UMaze-v4", 24),
        lambda: _gr_case("PointMaze_Medium-v3", 48),
    ],
    ids=["antmaze-umaze-v2", "AntMaze_UMaze-v4", "PointMaze_Medium-v3"],
)
def test_mjx_with_culling_finds_the_same_contacts_and_accelerations(case):
    """Contact states from MuJoCo C: MJX's number of active contacts and its qacc agree with and
    without the limits (float32 rounding only). Gymnasium's ant declares a numeric of its own
    (`init_qpos`), which once made MJX read the limits as 0 and carry no contact."""
    culled, plain, states = case()
    out = []
    for m in (culled, plain):
        mx = mjx.put_model(m)

        def forward(q, v, w, ctrl, mx=mx):
            d = mjx.make_data(mx).replace(qpos=q, qvel=v, qacc_warmstart=w, ctrl=ctrl)
            d = mjx.forward(mx, d)
            c = d._impl.contact
            return d.qacc, jnp.sum(c.dist < c.includemargin)

        args = (jnp.asarray(x, jnp.float32) for x in states)
        out.append(jax.jit(jax.vmap(forward))(*args))
    (qacc_c, n_c), (qacc_p, n_p) = out
    assert int(n_p.max()) > 0  # the states do touch something
    np.testing.assert_array_equal(np.asarray(n_c), np.asarray(n_p))
    scale = np.abs(np.asarray(qacc_p)).max(axis=1, keepdims=True)
    assert np.abs(np.asarray(qacc_c) - np.asarray(qacc_p)).max() <= 1e-5 * scale.max()


def test_limits_go_before_a_models_own_numerics():
    """MJX reads numeric_data[id]: a model's own multi-value numeric placed first would shift
    the limits (Gymnasium's ant.xml has `init_qpos`, 15 values); they are put first instead."""
    xml = am.antmaze_xml(am.U_MAZE_TEST).replace(
        "<worldbody>", '<custom><numeric name="init_qpos" data="1 2 3 4 5"/></custom><worldbody>', 1
    )
    model = compile_with_culling(mujoco.MjSpec.from_string(xml), 4.0, 32)
    assert contact_limits(model) == {"max_geom_pairs": 48, "max_contact_points": 32}
    i = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_NUMERIC, "init_qpos")
    adr = model.numeric_adr[i]
    np.testing.assert_array_equal(model.numeric_data[adr : adr + 5], [1, 2, 3, 4, 5])
