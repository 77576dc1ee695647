"""A scripted goal-reaching controller for the ant mazes: a trot steered along the maze's
shortest cell path. It stands in for the learned goal-reaching policies that made D4RL's and
Minari's AntMaze data (both trained an ant policy to follow waypoints; neither is available
here, and training one is GPU work), and it gives the ant ports the closed-loop check the
point mazes get from `envs/gr_waypoints.py`: the same controller on the port and on MuJoCo C
must reach the goal equally often.

**Gait** (`TrotGait`). Diagonal legs move together (legs 1 and 3 in phase, 2 and 4 half a
period later). Each joint follows a sinusoidal target through a PD law on the joint's angle,
`torque = KP (target - q) - KD q'`, clipped to the motor's range:

- hip k (a rotation about z that moves the foot along the leg's tangent `t_k`, the leg's
  direction turned by +90 degrees): `target = HIP_AMPLITUDE (t_k . v) sin(phase_k)`, where v is
  the wanted direction of travel in the torso's frame (the world direction turned by minus the
  torso's yaw). Legs whose tangent is across v swing most; v picks the direction, so the ant
  walks any way without turning.
- ankle k: `target = s_k (ANKLE_MID - ANKLE_LIFT sin(phase_k))`, with s_k the sign of the
  ankle's range (the sign that presses the foot down): the foot is up while the hip's target is
  on one side and down while it is on the other.

`phase_k = 2 pi t dt / PERIOD + (0 for legs 1, 3; pi for legs 2, 4)`, with t the env step and
dt its duration: the gait is set in seconds, so it is the same motion on D4RL's ant (dt 0.1,
torque 30 per unit action) and Gymnasium's (dt 0.05, torque 150 per unit action). Which joint a
motor drives, the legs' directions and the ankles' ranges are read from the model.

The constants were chosen on MuJoCo C in free space and then fixed: `benchmarks/ant_gait_grid.py`
walks D4RL's ant from rest for 60 steps (6 s) toward eight directions 45 degrees apart and keeps
the setting whose *worst* direction goes furthest, over hip amplitude {0.4, 0.8} x ankle phase
{0, 90, 180, 270 degrees} x period {0.6, 0.8, 1.2 s} x KP {30, 60} (KD = KP / 10); ANKLE_LIFT
and ANKLE_MID from an earlier, coarser search. The winner covers 4.1-6.0 units in 6 s in every
direction, drifts at most 1.0 sideways and stays upright (`results/antmaze-d4rl/gait_grid.txt`,
every setting tried). Lifting the ankles with the hip's *velocity* (ankle phase 90 degrees, the
textbook choice) walks backwards along the legs' diagonals (likely because the heavy joints,
armature 1, lag their targets; not measured).

**Steering** (`AntWaypointController`): the waypoint of `gr_waypoints.WaypointController`
(the next cell's centre on a BFS shortest path, the goal itself from the goal's cell or its
neighbour on the path), direction `v = (waypoint - xy) / |waypoint - xy|`. Optional Gaussian
action noise, clipped to [-1, 1] again (the Minari AntMaze recipe's N(0, 0.2^2) on its
waypoint-following policy).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from jaxo2o.envs.gr_waypoints import WaypointController

HIP_AMPLITUDE = 0.8  # rad per unit of t_k . v
ANKLE_LIFT = 0.5  # rad
ANKLE_MID = 0.9  # rad (the ankles' range is [30, 70] degrees in magnitude)
PERIOD = 0.8  # s
KP = 30.0  # N m / rad
KD = 3.0  # N m s / rad
HIP_LIMIT = 0.5  # rad: hip targets are kept inside the +-30 degree range


@dataclass(frozen=True)
class TrotGait:
    """The trot of the module docstring for one ant model. `torque_per_action`: the torque an
    action of 1 applies (D4RL: 30, NormalizedBoxEnv on ctrlrange 30 at gear 1; Gymnasium: 150,
    ctrl 1 at gear 150); `dt`: seconds per env step."""

    model: mujoco.MjModel
    dt: float
    torque_per_action: float
    hip_amplitude: float = HIP_AMPLITUDE
    ankle_lift: float = ANKLE_LIFT
    ankle_mid: float = ANKLE_MID
    ankle_phase: float = 0.0  # rad added to the ankle's phase (pi/2: lift with the hip's velocity)
    period: float = PERIOD
    kp: float = KP
    kd: float = KD

    @cached_property
    def layout(self) -> dict[str, np.ndarray]:
        """Per leg k = 1..4: the hip's and ankle's qpos and dof addresses, the motor that drives
        each, the leg's tangent and the ankle's down sign, read from the model."""
        m = self.model
        motor_of = {int(m.actuator_trnid[a, 0]): a for a in range(m.nu)}
        out: dict[str, list] = {k: [] for k in ("qpos", "dof", "motor", "tangent", "down")}
        for k in range(1, 5):
            hip, ankle = m.joint(f"hip_{k}").id, m.joint(f"ankle_{k}").id
            leg = m.body_pos[m.jnt_bodyid[hip], :2]
            leg = leg / np.linalg.norm(leg)
            out["qpos"] += [m.jnt_qposadr[hip], m.jnt_qposadr[ankle]]
            out["dof"] += [m.jnt_dofadr[hip], m.jnt_dofadr[ankle]]
            out["motor"] += [motor_of[hip], motor_of[ankle]]
            out["tangent"].append([-leg[1], leg[0]])
            out["down"].append(np.sign(m.jnt_range[ankle].sum()))
        return {k: np.asarray(v) for k, v in out.items()}

    def __call__(self, qpos: jax.Array, qvel: jax.Array, t: jax.Array, direction: jax.Array):
        """The action (8,) that walks toward world `direction` (2,) at env step t."""
        lay = self.layout
        w, x, y, z = qpos[3], qpos[4], qpos[5], qpos[6]
        yaw = jnp.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
        c, s = jnp.cos(yaw), jnp.sin(yaw)
        v = jnp.stack([c * direction[0] + s * direction[1], -s * direction[0] + c * direction[1]])
        phase = 2.0 * jnp.pi * t * self.dt / self.period + jnp.array([0.0, jnp.pi, 0.0, jnp.pi])
        swing = self.hip_amplitude * (jnp.asarray(lay["tangent"]) @ v) * jnp.sin(phase)
        hip = jnp.clip(swing, -HIP_LIMIT, HIP_LIMIT)
        lift = self.ankle_lift * jnp.sin(phase + self.ankle_phase)
        ankle = jnp.asarray(lay["down"]) * (self.ankle_mid - lift)
        target = jnp.stack([hip, ankle], axis=-1).reshape(8)
        torque = self.kp * (target - qpos[lay["qpos"]]) - self.kd * qvel[lay["dof"]]
        action = jnp.zeros(self.model.nu, torque.dtype).at[lay["motor"]].set(torque)
        return jnp.clip(action / self.torque_per_action, -1.0, 1.0)


@dataclass(frozen=True)
class AntWaypointController:
    """Follows the maze's shortest path to the episode's goal with `TrotGait` (module docstring).
    `env`: a `GRMaze` ant task or a `D4RLAntMaze`; both keep qpos, qvel and the goal in
    `state.physics` and the step count in `state.t`."""

    env: object
    gait: TrotGait

    @cached_property
    def waypoints(self) -> WaypointController:
        return WaypointController(self.env)

    def action(self, qpos, qvel, goal, t, key: jax.Array | None = None, noise: float = 0.0):
        xy = qpos[:2]
        d = self.waypoints.waypoint(xy, goal) - xy
        a = self.gait(qpos, qvel, t, d / (jnp.linalg.norm(d) + 1e-6))
        if noise > 0.0:
            a = jnp.clip(a + noise * jax.random.normal(key, a.shape), -1.0, 1.0)
        return a

    def __call__(self, state, key: jax.Array | None = None, noise: float = 0.0) -> jax.Array:
        p = state.physics
        return self.action(p.qpos, p.qvel, p.goal, state.t, key, noise)


def ant_controller(env) -> AntWaypointController:
    """The controller for an ant maze task (`GRMaze` ant or `D4RLAntMaze`)."""
    m = env.mj_model
    dt = float(m.opt.timestep) * env.physics.frame_skip
    per_action = float(env.torque_per_action)
    return AntWaypointController(env, TrotGait(m, dt, per_action))


__all__ = ["AntWaypointController", "TrotGait", "ant_controller"]
