"""Gymnasium's MuJoCo v5 locomotion tasks on the device: Hopper-v5, Walker2d-v5, HalfCheetah-v5,
Ant-v5, under their Gymnasium ids and with Gymnasium's default arguments.

The model is the XML shipped inside the installed `gymnasium` package (read from there at run
time), stepped with MJX under MuJoCo's own solver settings (`envs.mjx_base`). Around the
simulator everything follows the v5 Python code (gymnasium/envs/mujoco/*_v5.py, 1.4.0):

- reward `forward_weight * dx/dt + healthy_reward * is_healthy - ctrl_cost - contact_cost`, x the
  root's qpos[0] before/after the step (Ant: the torso's `xpos[0]`, which after an RK4 step is
  the last RK stage's, as in MuJoCo C); the costs use the raw (unclipped) action; v5's rule: the
  step that becomes unhealthy earns no healthy reward;
- Ant's contact cost `5e-4 * sum(clip(cfrc_ext, -1, 1)^2)` over every body, from
  `mj_rnePostConstraint` after the last substep;
- observations without the x (Ant: x, y) position; Hopper and Walker2d clip qvel to [-10, 10]
  in the observation only; Ant appends the clipped `cfrc_ext` of bodies 1..13 (zero at reset,
  as `mj_forward` does not compute them);
- termination on the post-step state (`not is_healthy`): the strict ranges of Hopper and
  Walker2d, Ant's inclusive z range and finiteness; HalfCheetah never terminates;
- reset noise: Hopper/Walker2d U(-5e-3, 5e-3) on qpos and qvel; HalfCheetah/Ant U(-0.1, 0.1) on
  qpos (Ant: the quaternion too, not renormalised, and the first observation shows it as drawn)
  and 0.1 N(0, 1) on qvel;
- the 1000-step time limit of the Gymnasium registration, reported as truncation.

Deviations: float32 physics and observations (MuJoCo C: float64; one-step agreement measured by
tests/test_mjx_locomotion_parity.py), and JAX's random streams instead of numpy's PCG64 (the
reset distribution is the same, the draws are not).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from jaxo2o.envs.base import EnvState, StepResult, time_limit


def gymnasium_asset(name: str) -> Path:
    """Path of an XML shipped with the installed gymnasium (without importing its MuJoCo envs)."""
    return Path(str(resources.files("gymnasium") / "envs" / "mujoco" / "assets" / name))


@dataclass(frozen=True)
class LocomotionSpec:
    """One v5 task's constants (Gymnasium's defaults)."""

    xml: str
    frame_skip: int
    ctrl_cost_weight: float
    healthy_reward: float = 0.0  # 0: the task has no healthy notion (HalfCheetah)
    contact_cost_weight: float = 0.0  # Ant only
    qpos_noise: float = 5e-3  # half-width of the uniform qpos noise
    qvel_noise: float = 5e-3  # uniform half-width, or the normal's scale if `qvel_normal`
    qvel_normal: bool = False
    obs_skip: int = 1  # leading qpos entries left out of the observation
    obs_qvel_clip: float | None = None
    contact_obs: bool = False  # Ant: clipped cfrc_ext of bodies 1.. appended


SPECS: dict[str, LocomotionSpec] = {
    "Hopper-v5": LocomotionSpec("hopper.xml", 4, 1e-3, healthy_reward=1.0, obs_qvel_clip=10.0),
    "Walker2d-v5": LocomotionSpec(
        "walker2d_v5.xml", 4, 1e-3, healthy_reward=1.0, obs_qvel_clip=10.0
    ),
    "HalfCheetah-v5": LocomotionSpec(
        "half_cheetah.xml", 5, 0.1, qpos_noise=0.1, qvel_noise=0.1, qvel_normal=True
    ),
    "Ant-v5": LocomotionSpec(
        "ant.xml",
        5,
        0.5,
        healthy_reward=1.0,
        contact_cost_weight=5e-4,
        qpos_noise=0.1,
        qvel_noise=0.1,
        qvel_normal=True,
        obs_skip=2,
        contact_obs=True,
    ),
}
LOCOMOTION_TASKS = tuple(SPECS)


def _uniform(key: jax.Array, base: Any, scale: float) -> jax.Array:
    """`base + U(-scale, scale)` per entry (Gymnasium's `np_random.uniform`)."""
    return base + jax.random.uniform(key, base.shape, jnp.float32, -scale, scale)


def is_healthy(task: str, qpos: jax.Array, qvel: jax.Array) -> jax.Array:
    """Gymnasium v5's `is_healthy` of a state (bool scalar); always True for HalfCheetah."""
    if task == "Hopper-v5":  # state_vector()[2:]: qpos[2:] and the *unclipped* qvel
        rest = jnp.concatenate([qpos[2:], qvel])
        ok_state = jnp.all((rest > -100.0) & (rest < 100.0))
        return ok_state & (qpos[1] > 0.7) & (qpos[2] > -0.2) & (qpos[2] < 0.2)
    if task == "Walker2d-v5":
        return (qpos[1] > 0.8) & (qpos[1] < 2.0) & (qpos[2] > -1.0) & (qpos[2] < 1.0)
    if task == "Ant-v5":
        finite = jnp.all(jnp.isfinite(qpos)) & jnp.all(jnp.isfinite(qvel))
        return finite & (qpos[2] >= 0.2) & (qpos[2] <= 1.0)
    return jnp.asarray(True)


def observation(spec: LocomotionSpec, qpos: jax.Array, qvel: jax.Array, cfrc_ext: jax.Array):
    """Gymnasium v5's `_get_obs` (float32)."""
    vel = (
        qvel
        if spec.obs_qvel_clip is None
        else jnp.clip(qvel, -spec.obs_qvel_clip, spec.obs_qvel_clip)
    )
    parts = [qpos[spec.obs_skip :], vel]
    if spec.contact_obs:
        parts.append(jnp.clip(cfrc_ext[1:], -1.0, 1.0).ravel())
    return jnp.concatenate(parts).astype(jnp.float32)


def step_reward(
    spec: LocomotionSpec,
    x_velocity: jax.Array,
    action: jax.Array,
    healthy: jax.Array,
    cfrc_ext: jax.Array,
) -> jax.Array:
    """Gymnasium v5's reward: forward velocity + healthy bonus (0 on the step that becomes
    unhealthy) - control cost on the raw action - Ant's contact cost on the clipped forces."""
    reward = x_velocity - spec.ctrl_cost_weight * jnp.sum(jnp.square(action))
    if spec.healthy_reward:
        reward = reward + spec.healthy_reward * healthy
    if spec.contact_cost_weight:
        forces = jnp.clip(cfrc_ext, -1.0, 1.0)
        reward = reward - spec.contact_cost_weight * jnp.sum(jnp.square(forces))
    return reward


@dataclass(frozen=True)
class GymLocomotion:
    """A Gymnasium v5 locomotion task (`name` its id) behind the jaxo2o Env interface."""

    name: str
    episode_length: int = 1000
    _physics: Any = field(default=None, repr=False, compare=False, hash=False)

    def __post_init__(self):
        if self.name not in SPECS:
            raise ValueError(f"task: unknown {self.name!r}; choose one of {LOCOMOTION_TASKS}")
        # MJX is imported on first use, as Brax in `BraxEnv`: `import jaxo2o.envs` stays free of
        # its ~2 s import (and its messages about the optional warp backend)
        from jaxo2o.envs.mjx_base import MjxPhysics

        s = SPECS[self.name]
        physics = MjxPhysics.from_xml_path(
            gymnasium_asset(s.xml), s.frame_skip, post_constraint=s.contact_cost_weight > 0
        )
        object.__setattr__(self, "_physics", physics)

    @property
    def spec(self) -> LocomotionSpec:
        return SPECS[self.name]

    @property
    def physics(self) -> Any:  # envs.mjx_base.MjxPhysics
        return self._physics

    @property
    def observation_size(self) -> int:
        p, s = self._physics, self.spec
        return p.nq - s.obs_skip + p.nv + (6 * (p.mj_model.nbody - 1) if s.contact_obs else 0)

    @property
    def action_size(self) -> int:
        return self._physics.nu

    def reset(self, key: jax.Array) -> EnvState:
        p, s = self._physics, self.spec
        kq, kv = jax.random.split(key)
        qpos = _uniform(kq, p.init_qpos, s.qpos_noise)
        if s.qvel_normal:
            qvel = p.init_qvel + s.qvel_noise * jax.random.normal(kv, p.init_qvel.shape)
        else:
            qvel = _uniform(kv, p.init_qvel, s.qvel_noise)
        data = p.set_state(qpos, qvel)
        # the drawn qpos (MJX's forward normalises Ant's quaternion in data.qpos; C does not)
        obs = observation(s, qpos, qvel, jnp.zeros_like(data.cfrc_ext))
        return EnvState(physics=data, obs=obs, t=jnp.zeros((), jnp.int32))

    def x_position(self, data: Any) -> jax.Array:
        """The x the forward reward differentiates: Ant's torso xpos, else the root qpos[0]."""
        return data.xpos[1, 0] if self.name == "Ant-v5" else data.qpos[0]

    def step(self, state: EnvState, action: jax.Array) -> tuple[EnvState, StepResult]:
        p, s = self._physics, self.spec
        before = state.physics
        data = p.step(before, action)
        healthy = is_healthy(self.name, data.qpos, data.qvel)
        x0, x1 = self.x_position(before), self.x_position(data)
        reward = step_reward(s, (x1 - x0) / p.dt, action, healthy, data.cfrc_ext)
        terminated = jnp.logical_not(healthy) if s.healthy_reward else jnp.asarray(False)
        obs = observation(s, data.qpos, data.qvel, data.cfrc_ext)
        t = state.t + 1
        truncated = time_limit(t, terminated, self.episode_length)
        result = StepResult(obs, reward.astype(jnp.float32), terminated, truncated)
        return EnvState(physics=data, obs=obs, t=t), result
