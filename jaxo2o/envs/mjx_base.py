"""MuJoCo physics on the device (MJX): a compiled MuJoCo model, stepped `frame_skip` substeps.

The building block of the MuJoCo tasks (Gymnasium's locomotion, the mazes). It mirrors what
Gymnasium's `MujocoEnv` does around the simulator, and nothing more:

- the model is compiled by MuJoCo itself from an XML file or string (so `<compiler>` options
  such as `settotalmass` act exactly as in MuJoCo C) and put on the device with its own solver
  settings (`mjx.put_model`; nothing is overridden);
- `set_state(qpos, qvel)` is `MujocoEnv.set_state`: a fresh `MjData` (mj_resetData: zero
  warm-start, zero controls) with the state written in, then `mj_forward`;
- `step(data, ctrl)` is `MujocoEnv.do_simulation`: write `ctrl` (MuJoCo clamps it to
  `ctrlrange` itself), `frame_skip` x `mj_step`, then, if `post_constraint`, `mj_rnePostConstraint`
  (fills `cacc`, `cfrc_int`, `cfrc_ext`; Ant's contact forces need it).

Differences from MuJoCo C the caller must know:
- MJX's kinematics writes normalised quaternions back into `data.qpos`; MuJoCo C does not.
  After `set_state` with an un-normalised quaternion, observe the qpos you wrote, not
  `data.qpos`. Every integration step normalises quaternions in both, so stepping agrees.
- Derived quantities (`xpos`, ...) after an RK4 step are those of the last RK4 stage, as in C.
- Values are float32 unless `jax_enable_x64` is on (MuJoCo C: float64).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from mujoco import mjx


class MjxPhysics:
    """A MuJoCo model on the device, stepped `frame_skip` substeps per environment step.

    Build with `from_xml_path` or `from_xml_string`. Instances are immutable and hashed by
    identity (safe to close over in jitted functions).
    """

    def __init__(self, mj_model: mujoco.MjModel, frame_skip: int, post_constraint: bool = False):
        if frame_skip < 1:
            raise ValueError(f"frame_skip: must be >= 1, got {frame_skip}")
        self.mj_model = mj_model  # the host model (MuJoCo C), e.g. for a reference simulation
        self.model = mjx.put_model(mj_model)
        self.frame_skip = int(frame_skip)
        self.post_constraint = bool(post_constraint)
        fresh = mujoco.MjData(mj_model)
        self.init_qpos = np.array(fresh.qpos)  # Gymnasium's init_qpos: the model's qpos0
        self.init_qvel = np.array(fresh.qvel)  # zeros
        self._data0 = mjx.make_data(self.model)  # mj_resetData's state, on the device

    @classmethod
    def from_xml_path(
        cls, path: str | Path, frame_skip: int, post_constraint: bool = False
    ) -> MjxPhysics:
        """Compile the XML file with MuJoCo (relative includes and assets resolve from it)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such MuJoCo XML file")
        return cls(mujoco.MjModel.from_xml_path(str(path)), frame_skip, post_constraint)

    @classmethod
    def from_xml_string(
        cls, xml: str, frame_skip: int, post_constraint: bool = False
    ) -> MjxPhysics:
        """Compile an XML string (e.g. one generated for a maze layout)."""
        return cls(mujoco.MjModel.from_xml_string(xml), frame_skip, post_constraint)

    @property
    def dt(self) -> float:
        """Seconds of simulated time per environment step (timestep x frame_skip)."""
        return float(self.mj_model.opt.timestep) * self.frame_skip

    @property
    def nq(self) -> int:
        return int(self.mj_model.nq)

    @property
    def nv(self) -> int:
        return int(self.mj_model.nv)

    @property
    def nu(self) -> int:
        return int(self.mj_model.nu)

    def set_state(self, qpos: jax.Array, qvel: jax.Array) -> mjx.Data:
        """A reset simulator holding (qpos, qvel), with every derived quantity computed."""
        d = self._data0.replace(
            qpos=jnp.asarray(qpos, self._data0.qpos.dtype),
            qvel=jnp.asarray(qvel, self._data0.qvel.dtype),
        )
        return mjx.forward(self.model, d)

    def step(self, data: mjx.Data, ctrl: jax.Array) -> mjx.Data:
        """One environment step: `frame_skip` simulator steps under the control `ctrl`."""
        d = data.replace(ctrl=jnp.asarray(ctrl, data.ctrl.dtype))
        d = jax.lax.fori_loop(0, self.frame_skip, lambda _, x: mjx.step(self.model, x), d)
        return mjx.rne_postconstraint(self.model, d) if self.post_constraint else d


def uniform_noise(key: jax.Array, base: jax.Array, scale: float) -> jax.Array:
    """`base + U(-scale, scale)` per entry (Gymnasium's `np_random.uniform(low, high, size)`)."""
    base = jnp.asarray(base, jnp.float32)
    return base + jax.random.uniform(key, base.shape, base.dtype, -scale, scale)


def normal_noise(key: jax.Array, base: jax.Array, scale: float) -> jax.Array:
    """`base + scale * N(0, 1)` per entry (Gymnasium's `scale * np_random.standard_normal(n)`)."""
    base = jnp.asarray(base, jnp.float32)
    return base + scale * jax.random.normal(key, base.shape, base.dtype)
