"""`envs.mjx_base`: the generic MJX physics agrees with MuJoCo C on a small model."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from jaxo2o.envs.mjx_base import MjxPhysics, normal_noise, uniform_noise

# A ball on a slide joint with viscous damping and a motor, above a floor it does not reach:
# smooth dynamics, so MJX (float32) and MuJoCo C (float64) agree to float32 rounding.
XML = """
<mujoco>
  <option timestep="0.01"/>
  <worldbody>
    <geom type="plane" size="5 5 0.1"/>
    <body pos="0 0 2">
      <joint name="x" type="slide" axis="1 0 0" damping="0.5"/>
      <joint name="z" type="slide" axis="0 0 1" ref="0.3"/>
      <geom type="sphere" size="0.1" mass="2"/>
    </body>
  </worldbody>
  <actuator><motor joint="x" gear="3" ctrlrange="-1 1" ctrllimited="true"/></actuator>
</mujoco>
"""


@pytest.fixture(scope="module")
def physics() -> MjxPhysics:
    return MjxPhysics.from_xml_string(XML, frame_skip=3)


def test_constants_follow_the_model(physics):
    assert physics.dt == pytest.approx(0.03)
    assert (physics.nq, physics.nv, physics.nu) == (2, 2, 1)
    np.testing.assert_array_equal(physics.init_qpos, [0.0, 0.3])  # qpos0 = the joints' refs
    np.testing.assert_array_equal(physics.init_qvel, [0.0, 0.0])


def test_step_matches_mujoco_c_and_clamps_the_control(physics):
    qpos, qvel, ctrl = np.array([0.2, 0.1]), np.array([-0.4, 0.5]), np.array([1.7])
    c = mujoco.MjData(physics.mj_model)
    c.qpos[:], c.qvel[:] = qpos, qvel
    mujoco.mj_forward(physics.mj_model, c)
    c.ctrl[:] = ctrl  # out of range: MuJoCo clamps it to 1
    mujoco.mj_step(physics.mj_model, c, nstep=3)
    d = jax.jit(lambda q, v, a: physics.step(physics.set_state(q, v), a))(qpos, qvel, ctrl)
    np.testing.assert_allclose(np.asarray(d.qpos), c.qpos, atol=1e-6)
    np.testing.assert_allclose(np.asarray(d.qvel), c.qvel, atol=1e-6)
    # hand-computed: x accelerates at (3 * 1 - 0.5 v) / 2, semi-implicit damping; far from 1.7 * 3
    assert c.qvel[0] == pytest.approx(-0.4 + 0.03 * 1.5, abs=2e-2)


def test_bad_frame_skip_and_missing_file_are_refused(tmp_path):
    with pytest.raises(ValueError, match="frame_skip"):
        MjxPhysics.from_xml_string(XML, frame_skip=0)
    with pytest.raises(FileNotFoundError, match="nope.xml"):
        MjxPhysics.from_xml_path(tmp_path / "nope.xml", frame_skip=1)


def test_noise_helpers_have_the_stated_ranges_and_moments():
    base = jnp.full((20_000,), 2.0)
    u = np.asarray(uniform_noise(jax.random.PRNGKey(0), base, 0.1))
    n = np.asarray(normal_noise(jax.random.PRNGKey(1), base, 0.1))
    assert u.min() >= 1.9 and u.max() <= 2.1 and abs(u.std() - 0.2 / np.sqrt(12)) < 1e-3
    assert abs(n.mean() - 2.0) < 3e-3 and abs(n.std() - 0.1) < 3e-3
