"""D4RL's antmaze-v2 tasks on the device with MJX, under D4RL's ids: `antmaze-umaze-v2`,
`antmaze-umaze-diverse-v2`, `antmaze-medium-play-v2`, `antmaze-medium-diverse-v2`,
`antmaze-large-play-v2`, `antmaze-large-diverse-v2`.

D4RL's ant and maze are not Gymnasium-Robotics' (`envs/gr_maze.py`): another ant model, another
maze frame, another goal rule, and the episode ends at the goal. The MuJoCo model is written
here as an XML string (`antmaze_xml`) from D4RL's published facts, compiled by MuJoCo and handed
to MJX (`envs/mjx_base.py`). Each rule, with the D4RL file and line it comes from (repository
Farama-Foundation/D4RL, commit 89141a6; paths under `d4rl/`):

- **Registration** (`locomotion/__init__.py:324-422`): maps `U_MAZE_TEST` (both umaze ids),
  `BIG_MAZE_TEST` (medium-*), `HARDEST_MAZE_TEST` (large-*) (`locomotion/maze_env.py:56-79`);
  reward_type sparse, eval=True, maze_size_scaling 4, non_zero_reset False, v2_resets True;
  max_episode_steps 700 (umaze*) / 1000 (the others). The play/diverse ids differ only in
  their datasets: the environments of a maze are the same.
- **Ant model** (`locomotion/assets/ant.xml`): timestep 0.02, RK4 (line 3); joint defaults
  limited, armature 1, damping 1 (8); geom defaults condim 3, conaffinity 0, margin 0.01,
  friction (1, 0.5, 0.5), solref (.02, 1), solimp (.8, .8, .01), density 5 (9); floor plane,
  conaffinity 1 (20); torso sphere r 0.25 at z 0.75 on a free joint without armature or
  damping (21-23); four legs, capsules r 0.08: hip link (0.2, 0.2) from the torso, thigh
  (0.2, 0.2), shin (0.4, 0.4) along the leg's diagonal; hips about z in [-30, 30] deg, ankles
  about the diagonal's normal in [30, 70] / [-70, -30] deg (24-67); eight motors, gear 1,
  ctrlrange [-30, 30], in the order hip_4, ankle_4, hip_1, ankle_1, hip_2, ankle_2, hip_3,
  ankle_3 (72-79). Frame skip 5 (`locomotion/ant.py:53`): dt = 0.1.
- **Maze** (`locomotion/maze_env.py:173-196`): the origin is the `r` cell; cell (i, j) is at
  `x = 4 j - x_r`, `y = 4 i - y_r` (y grows with the row; `_rowcol_to_xy` 227-234,
  `_find_robot` 270-277). A wall cell is a box `block_i_j` centred at (x, y, 1.0) with
  half-sizes (2, 2, 1) (maze_height 0.5 x scaling / 2), contype and conaffinity 1, after the
  ant, row-major; it takes the geom defaults above (margin, solref, solimp, friction).
- **Action** (`locomotion/ant.py:210-212`, `locomotion/wrappers.py:155-161`): the env is
  wrapped in NormalizedBoxEnv: a in [-1, 1] becomes `-30 + (a + 1) 30`, clipped to [-30, 30];
  then 5 x `mj_step` (`ant.py:71`).
- **Goal** (`maze_env.py:236-258`; set on every reset with v2_resets, `ant.py:186-202`): the
  `g` cell's (x, y) + U(0, 1) (`_rowcol_to_xy` with noise: U(0, 0.25 x scaling), 232-233)
  + U(0, 0.5) (U(0, 0.5) x 0.25 x scaling, 253-254) per axis, each axis clamped at >= 0 (256).
  The maps have one `g` cell each.
- **Reset** (`ant.py:120-134`): `qpos = qpos0 + U(-0.1, 0.1)` on all 15 entries (the
  quaternion too, not renormalised), `qvel = 0.1 N(0, 1)` on all 14 (non_zero_reset False:
  around the origin, the `r` cell); qpos0 is the model's (torso at z 0.75, upright, hinges 0).
  `set_state` starts from a reset `MjData`: zero solver warm start.
- **Observation** (`ant.py:90-101`, expose_all_qpos=True at `ant.py:169`; eval=True: no goal
  appended, `locomotion/goal_reaching_env.py:28-35`): `qpos[:15] ++ qvel[:14]` (29).
- **Reward and termination** (`goal_reaching_env.py:37-50`): with d = |xy - goal| after the
  step, reward `1{d <= 0.5}` and done at the same condition (eval=True); the ant's own reward
  and done are discarded. The return of an episode is 0 or 1: `success_rate` of
  `envs/gr_maze.py` reads it.
- **Time limit**: TimeLimit of the registration (700 / 1000), reported as truncation.

MJX setting (not a change of the physics): the model carries MJX's `max_geom_pairs` (48: every
agent-block pair that can be active, `envs/maze_contacts.py` proves the bound) and
`max_contact_points` (32; at most 15 active contacts measured), which MuJoCo C ignores. Without
them MJX carried 475 candidate contacts through every solver call and stepped 15x slower.

Deviations (named): MuJoCo 3.x/4.x instead of mujoco-py's MuJoCo 2.x (`coordinate="local"` and
the visual assets -- skybox, textures, materials, light -- are left out: they do not act on the
dynamics); float32; JAX's random streams instead of numpy's global and seeded generators (same
laws, not the same draws); the time limit does not truncate a step that terminates (jaxo2o's
convention). MJX's contact tangents on steep shins differ from C's, which rotates their friction
pyramids (see `CONE` below; measured, not corrected); MJX's capsule/sphere-box routines ignore
contact margins (0.01 here), so wall contacts start later than in C (not corrected: folding
margins into radii, as `gr_maze.margin_as_radius` does for the point, would move the floor
contacts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from mujoco import mjx

from jaxo2o.envs.base import EnvState, StepResult, time_limit
from jaxo2o.envs.gr_maze import success_rate
from jaxo2o.envs.maze_contacts import ANT_CONTACT_POINTS, compile_with_culling
from jaxo2o.envs.mjx_base import MjxPhysics, normal_noise, uniform_noise

SCALING = 4.0  # maze_size_scaling (locomotion/__init__.py:334, ...)
HEIGHT = 0.5  # maze_height default (maze_env.py:140)
GOAL_RADIUS = 0.5  # goal_reaching_env.py:42,46
ACTION_SCALE = 30.0  # ctrlrange +-30 (ant.xml:72-79) through NormalizedBoxEnv
FRAME_SKIP = 5  # ant.py:53
QPOS_NOISE = 0.1  # ant.py:121-122
QVEL_NOISE = 0.1  # ant.py:123
# The friction cone. D4RL's XML leaves MuJoCo's default, "pyramidal"; kept, although MJX and C
# then disagree in floor contact (median one-step error 4.6e-2): MJX's capsule-plane routine
# (mjx/_src/collision_primitive.py `plane_capsule`) takes a fixed tangent when the capsule's axis
# projects onto the plane with norm < 0.5 (a steep shin), where C aligns the first tangent with
# the projected axis, so the pyramid of such a contact is rotated about the normal. An elliptic
# cone is blind to that rotation (isotropic friction) and agrees with C to 5e-5, but it changes
# the physics: C elliptic vs C pyramidal differs more (median 0.17) than MJX vs C pyramidal.
# (results/antmaze-d4rl/README.md; `cone="elliptic"` builds that variant.)
CONE = "pyramidal"

R, G = "r", "g"
# maze_env.py:56-79 (the *_TEST maps the v2 ids register)
U_MAZE_TEST = (
    (1, 1, 1, 1, 1),
    (1, R, 0, 0, 1),
    (1, 1, 1, 0, 1),
    (1, G, 0, 0, 1),
    (1, 1, 1, 1, 1),
)
BIG_MAZE_TEST = (
    (1, 1, 1, 1, 1, 1, 1, 1),
    (1, R, 0, 1, 1, 0, 0, 1),
    (1, 0, 0, 1, 0, 0, 0, 1),
    (1, 1, 0, 0, 0, 1, 1, 1),
    (1, 0, 0, 1, 0, 0, 0, 1),
    (1, 0, 1, 0, 0, 1, 0, 1),
    (1, 0, 0, 0, 1, 0, G, 1),
    (1, 1, 1, 1, 1, 1, 1, 1),
)
HARDEST_MAZE_TEST = (
    (1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1),
    (1, R, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1),
    (1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1),
    (1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1),
    (1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 0, 1),
    (1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1),
    (1, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 1),
    (1, 0, 0, 1, 0, 0, 0, 1, 0, G, 0, 1),
    (1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1),
)


@dataclass(frozen=True)
class AntMazeSpec:
    env_id: str
    maze_map: tuple
    time_limit: int


_IDS = {
    "antmaze-umaze-v2": (U_MAZE_TEST, 700),
    "antmaze-umaze-diverse-v2": (U_MAZE_TEST, 700),
    "antmaze-medium-play-v2": (BIG_MAZE_TEST, 1000),
    "antmaze-medium-diverse-v2": (BIG_MAZE_TEST, 1000),
    "antmaze-large-play-v2": (HARDEST_MAZE_TEST, 1000),
    "antmaze-large-diverse-v2": (HARDEST_MAZE_TEST, 1000),
}
ANTMAZE_SPECS: dict[str, AntMazeSpec] = {k: AntMazeSpec(k, m, t) for k, (m, t) in _IDS.items()}
D4RL_ANTMAZE_TASKS = tuple(ANTMAZE_SPECS)

# ---------------------------------------------------------------------- the model
# (name, direction of the leg in the plane, ankle axis, ankle range in degrees); hip range is
# [-30, 30] for all four. Bodies in ant.xml's order; `n` numbers the joints and hip links.
_LEGS = (
    ("front_left_leg", 1, (1, 1), "-1 1 0", (30, 70), "left_leg_geom", "left_ankle_geom"),
    ("front_right_leg", 2, (-1, 1), "1 1 0", (-70, -30), "right_leg_geom", "right_ankle_geom"),
    ("back_leg", 3, (-1, -1), "-1 1 0", (-70, -30), "back_leg_geom", "third_ankle_geom"),
    ("right_back_leg", 4, (1, -1), "1 1 0", (30, 70), "rightback_leg_geom", "fourth_ankle_geom"),
)
_MOTOR_ORDER = (4, 1, 2, 3)  # ant.xml:72-79: hip_k, ankle_k for k in this order


def _leg_xml(name: str, n: int, d: tuple[int, int], ankle_axis: str, ankle_range, thigh: str,
             shin: str) -> str:  # fmt: skip
    def seg(length: float) -> str:
        return f'fromto="0 0 0 {d[0] * length:g} {d[1] * length:g} 0"'

    p = f"{d[0] * 0.2:g} {d[1] * 0.2:g} 0"
    return (
        f'<body name="{name}" pos="0 0 0">'
        f'<geom name="aux_{n}_geom" type="capsule" size="0.08" {seg(0.2)}/>'
        f'<body name="aux_{n}" pos="{p}">'
        f'<joint name="hip_{n}" type="hinge" pos="0 0 0" axis="0 0 1" range="-30 30"/>'
        f'<geom name="{thigh}" type="capsule" size="0.08" {seg(0.2)}/>'
        f'<body name="foot_{n}" pos="{p}">'
        f'<joint name="ankle_{n}" type="hinge" pos="0 0 0" axis="{ankle_axis}" '
        f'range="{ankle_range[0]} {ankle_range[1]}"/>'
        f'<geom name="{shin}" type="capsule" size="0.08" {seg(0.4)}/>'
        "</body></body></body>"
    )


def maze_origin(maze_map) -> tuple[float, float]:
    """(x_r, y_r): the `r` cell's (j s, i s), the offset of every maze coordinate
    (`_find_robot`, maze_env.py:270-277)."""
    for i, row in enumerate(maze_map):
        for j, c in enumerate(row):
            if c == R:
                return j * SCALING, i * SCALING
    raise ValueError("maze_map: no 'r' cell")


def cell_xy(maze_map, i: int, j: int) -> tuple[float, float]:
    """The centre of cell (row i, column j) in D4RL's frame (`_rowcol_to_xy`, maze_env.py:227)."""
    x_r, y_r = maze_origin(maze_map)
    return j * SCALING - x_r, i * SCALING - y_r


def antmaze_xml(maze_map, cone: str = CONE) -> str:
    """The MuJoCo XML of D4RL's ant in the maze (module docstring: every value's source)."""
    blocks = []
    for i, row in enumerate(maze_map):
        for j, c in enumerate(row):
            if c == 1:
                x, y = cell_xy(maze_map, i, j)
                z = HEIGHT / 2 * SCALING
                blocks.append(
                    f'<geom name="block_{i}_{j}" type="box" pos="{x:g} {y:g} {z:g}" '
                    f'size="{SCALING / 2:g} {SCALING / 2:g} {z:g}" contype="1" conaffinity="1"/>'
                )
    legs = "".join(_leg_xml(*leg) for leg in _LEGS)
    motors = "".join(
        f'<motor joint="{kind}_{k}" ctrlrange="-30 30" ctrllimited="true" gear="1"/>'
        for k in _MOTOR_ORDER
        for kind in ("hip", "ankle")
    )
    return (
        '<mujoco model="d4rl_antmaze">'
        '<compiler inertiafromgeom="true" angle="degree"/>'
        f'<option timestep="0.02" integrator="RK4" cone="{cone}"/>'
        "<default>"
        '<joint limited="true" armature="1" damping="1"/>'
        '<geom condim="3" conaffinity="0" margin="0.01" friction="1 0.5 0.5" solref=".02 1" '
        'solimp=".8 .8 .01" density="5.0"/>'
        "</default>"
        "<worldbody>"
        '<geom name="floor" type="plane" pos="0 0 0" size="40 40 40" conaffinity="1" condim="3"/>'
        '<body name="torso" pos="0 0 0.75">'
        '<geom name="torso_geom" type="sphere" size="0.25" pos="0 0 0"/>'
        '<joint name="root" type="free" limited="false" pos="0 0 0" axis="0 0 1" margin="0.01" '
        'armature="0" damping="0"/>'
        f"{legs}"
        "</body>"
        f"{''.join(blocks)}"
        "</worldbody>"
        f"<actuator>{motors}</actuator>"
        "</mujoco>"
    )


def build_model(maze_map, cone: str = CONE) -> mujoco.MjModel:
    """The compiled MuJoCo model of `antmaze_xml`, with MJX's exact wall-pair culling and contact
    bound (`envs/maze_contacts.py`; MuJoCo C ignores both)."""
    spec = mujoco.MjSpec.from_string(antmaze_xml(maze_map, cone))
    return compile_with_culling(spec, SCALING, ANT_CONTACT_POINTS)


def goal_cell(maze_map) -> tuple[float, float]:
    """The single `g` cell's (x, y) (the v2 maps have exactly one)."""
    cells = [(i, j) for i, r in enumerate(maze_map) for j, c in enumerate(r) if c == G]
    if len(cells) != 1:
        raise ValueError(f"maze_map: expected one 'g' cell, found {len(cells)}")
    return cell_xy(maze_map, *cells[0])


def to_ctrl(action: jax.Array) -> jax.Array:
    """NormalizedBoxEnv (wrappers.py:155-159): [-1, 1] -> [-30, 30], clipped."""
    lb, ub = -ACTION_SCALE, ACTION_SCALE
    return jnp.clip(lb + (action + 1.0) * 0.5 * (ub - lb), lb, ub)


class AntMazePhysics(NamedTuple):
    """The `physics` of an EnvState: what the next step depends on (qpos, qvel, the solver's
    warm start) and the episode's goal; small, and without zero-size arrays (checkpointable)."""

    qpos: jax.Array
    qvel: jax.Array
    qacc_warmstart: jax.Array
    goal: jax.Array  # (2,)


@dataclass(frozen=True)
class D4RLAntMaze:
    """One of D4RL's antmaze-v2 tasks on MJX (module docstring). `physics`: AntMazePhysics."""

    env_id: str
    episode_length: int = 0  # 0: the registered time limit
    cone: str = CONE
    _spec: AntMazeSpec = field(default=None, repr=False, compare=False, hash=False)

    def __post_init__(self):
        if self.env_id not in ANTMAZE_SPECS:
            raise ValueError(
                f"task: unknown antmaze {self.env_id!r}; choose one of {D4RL_ANTMAZE_TASKS}"
            )
        spec = ANTMAZE_SPECS[self.env_id]
        object.__setattr__(self, "_spec", spec)
        if self.episode_length <= 0:
            object.__setattr__(self, "episode_length", spec.time_limit)

    @property
    def name(self) -> str:
        return self.env_id

    @property
    def maze_map(self) -> tuple:
        return self._spec.maze_map

    @property
    def rows(self) -> tuple:
        """The maze map (`GRMaze.rows`' name, for `envs/gr_waypoints.py`)."""
        return self.maze_map

    def cell_of(self, xy: jax.Array) -> jax.Array:
        """(row, column) int32 of a point (last axis x, y): the nearest cell centre."""
        x_r, y_r = maze_origin(self.maze_map)
        i = jnp.floor((xy[..., 1] + y_r) / SCALING + 0.5)
        j = jnp.floor((xy[..., 0] + x_r) / SCALING + 0.5)
        return jnp.stack([i, j], axis=-1).astype(jnp.int32)

    def cell_xy(self, rowcol: jax.Array) -> jax.Array:
        """The centre (x, y) of cell (row, column) (`cell_xy` above, batched)."""
        x_r, y_r = maze_origin(self.maze_map)
        x = rowcol[..., 1] * SCALING - x_r
        y = rowcol[..., 0] * SCALING - y_r
        return jnp.stack([x, y], axis=-1).astype(jnp.float32)

    @property
    def torque_per_action(self) -> float:
        """Torque of an action of 1: NormalizedBoxEnv's 30 at gear 1."""
        return ACTION_SCALE * float(self.mj_model.actuator_gear[0, 0])

    @cached_property
    def mj_model(self) -> mujoco.MjModel:
        return build_model(self.maze_map, self.cone)

    @cached_property
    def physics(self) -> MjxPhysics:
        with jax.ensure_compile_time_eval():  # constants, even when first asked for in a trace
            return MjxPhysics(self.mj_model, FRAME_SKIP)

    @property
    def observation_size(self) -> int:
        return 29

    @property
    def action_size(self) -> int:
        return 8

    @cached_property
    def goal_base(self) -> np.ndarray:
        return np.asarray(goal_cell(self.maze_map), np.float32)

    def sample_goal(self, key: jax.Array) -> jax.Array:
        """`goal_sampler` (maze_env.py:236-258): g cell + U(0, 1) + U(0, 0.5), clamped >= 0."""
        k1, k2 = jax.random.split(key)
        a = jax.random.uniform(k1, (2,), minval=0.0, maxval=0.25 * SCALING)
        b = jax.random.uniform(k2, (2,), minval=0.0, maxval=0.5) * 0.25 * SCALING
        return jnp.maximum(jnp.asarray(self.goal_base) + a + b, 0.0)

    @staticmethod
    def observe(qpos: jax.Array, qvel: jax.Array) -> jax.Array:
        """`_get_obs` with expose_all_qpos (ant.py:92-96): qpos[:15] ++ qvel[:14]."""
        return jnp.concatenate([qpos[:15], qvel[:14]])

    def reset(self, key: jax.Array) -> EnvState:
        k_goal, k_q, k_v = jax.random.split(key, 3)
        p = self.physics
        qpos = uniform_noise(k_q, p.init_qpos, QPOS_NOISE)
        qvel = normal_noise(k_v, p.init_qvel, QVEL_NOISE)
        return self.reset_to(qpos, qvel, self.sample_goal(k_goal))

    def reset_to(self, qpos: jax.Array, qvel: jax.Array, goal: jax.Array) -> EnvState:
        """The state `set_state(qpos, qvel)` gives with this goal (zero warm start)."""
        d0 = self.physics._data0
        qpos = jnp.asarray(qpos, d0.qpos.dtype)
        qvel = jnp.asarray(qvel, d0.qvel.dtype)
        phys = AntMazePhysics(qpos, qvel, d0.qacc_warmstart, jnp.asarray(goal, jnp.float32))
        return EnvState(physics=phys, obs=self.observe(qpos, qvel), t=jnp.zeros((), jnp.int32))

    def physics_step(self, phys: AntMazePhysics, action: jax.Array) -> mjx.Data:
        """NormalizedBoxEnv's scaling, then 5 x mj_step."""
        d = self.physics._data0.replace(
            qpos=phys.qpos, qvel=phys.qvel, qacc_warmstart=phys.qacc_warmstart
        )
        return self.physics.step(d, to_ctrl(action))

    @staticmethod
    def reward_and_terminated(xy: jax.Array, goal: jax.Array) -> tuple[jax.Array, jax.Array]:
        """goal_reaching_env.py:41-47: reward 1 and done within 0.5 of the goal."""
        hit = jnp.linalg.norm(xy - goal) <= GOAL_RADIUS
        return hit.astype(jnp.float32), hit

    def step(self, state: EnvState, action: jax.Array) -> tuple[EnvState, StepResult]:
        phys = state.physics
        data = self.physics_step(phys, action)
        reward, terminated = self.reward_and_terminated(data.qpos[:2], phys.goal)
        obs = self.observe(data.qpos, data.qvel)
        t = state.t + 1
        truncated = time_limit(t, terminated, self.episode_length)
        new = AntMazePhysics(data.qpos, data.qvel, data.qacc_warmstart, phys.goal)
        return EnvState(physics=new, obs=obs, t=t), StepResult(obs, reward, terminated, truncated)


__all__ = [
    "ANTMAZE_SPECS",
    "CONE",
    "D4RL_ANTMAZE_TASKS",
    "AntMazePhysics",
    "D4RLAntMaze",
    "antmaze_xml",
    "build_model",
    "cell_xy",
    "goal_cell",
    "success_rate",
    "to_ctrl",
]
