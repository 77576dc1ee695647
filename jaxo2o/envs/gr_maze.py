"""Gymnasium-Robotics' PointMaze (v3) and AntMaze (v4) on the device with MJX, under their ids.

The MuJoCo model is the one Gymnasium-Robotics itself builds: at setup we call its maze builder
`Maze.make_maze` (gymnasium_robotics/envs/maze/maze_v4.py:149-244) on its own agent XML
(`envs/assets/point/point.xml`; for the ant, Gymnasium's `envs/mujoco/assets/ant.xml`) and its
own maps (`envs/maze/maps.py`), load the written XML with MuJoCo and hand it to MJX. Nothing of
the XML is copied here. What the Python of those packages does around `mj_step` is reproduced:

- **PointMaze step** (gr `envs/maze/point.py:55-77`): the action is clipped to [-1, 1]; the
  velocity is clipped to [-5, 5] *before* the step (`_clip_velocity`, via `set_state`, which
  re-runs the forward pass: `mjx.step` does that itself); one `mj_step` (frame_skip 1, dt 0.01).
  Agent observation `[qpos, qvel]` (4) after the step, unclipped.
- **AntMaze step** (gr `envs/maze/ant_maze_v4.py:62-68,108-123`; gymnasium
  `envs/mujoco/ant_v4.py`): Gymnasium's Ant v4 with the maze XML, `reset_noise_scale=0`,
  positions kept in the observation, no contact forces; 5 substeps of dt 0.01 (RK4), the action
  written to `ctrl` unclipped (MuJoCo clamps it to ctrlrange). The ant's own reward and
  termination are discarded. Agent observation `qpos[2:] ++ qvel` (27).
- **Observation**: the Dict space flattened as `gymnasium.spaces.flatten` does (sorted keys),
  `[achieved_goal (x, y), desired_goal (2), observation]`, as Minari stores and flattens it.
- **Reward** (gr `maze_v4.py:375-382`): d = |xy - goal| with the goal *before* any update;
  sparse `1{d <= 0.45}` (the registered ids), dense `exp(-d)` (the `...Dense` ids).
- **Termination** (`maze_v4.py:384-392`): `continuing_task=True` (the default) never
  terminates; False terminates when d <= 0.45. Truncation is the registered time limit
  (gr `__init__.py`: PointMaze UMaze 300, Medium 600, Large 800; AntMaze UMaze 700, the
  others 1000).
- **Goal update** (`maze_v4.py:394-412`, called after reward and observation are built,
  `point_maze.py:392-406`): with `continuing_task` and `reset_target` (default False), on
  d <= 0.45 and more than one goal cell, a new noisy goal is drawn until it is more than 0.45
  from the agent. The returned observation still carries the old goal; the next one the new.
- **Reset** (`maze_v4.py:270-373`, `point_maze.py:375-390`, `ant_maze_v4.py:95-106`): a goal
  cell uniformly among the goal cells, plus U(-0.25, 0.25) x scaling per axis; a reset cell
  uniformly among the reset cells whose centre lies more than 0.5 x scaling from the noisy goal
  (Gymnasium-Robotics redraws until it does: the same law), plus the same noise. The agent's
  qpos[:2] is that point, the rest of qpos is the model's qpos0 (the ant at z 0.75, upright),
  qvel 0. Cell lists: `r`, `g`, `c` cells, with the builder's fall-backs to the empty cells
  (`maze_v4.py:217-236`), read from the builder's own `Maze` object.

Deviations (deliberate): the random streams are JAX's, so resets match in distribution only; the
time limit does not truncate a step that terminates (jaxo2o's convention, `envs/base.py`;
Gymnasium reports both flags); float32. MJX collides spheres and capsules with the wall boxes
through its convex routines, which ignore contact margins: for the point the MJX copy of the
model folds the margins into the radius (`margin_as_radius`; one-step wall-contact error 0.59
-> 2.4e-5, `results/gr-maze/README.md`); the ant's model is used as is (its floor contacts would
move), so its rare wall contacts keep MJX's margin-less behaviour. Both models carry MJX's
exact far-pair culling (`envs/maze_contacts.py`: the point's sphere meets at most 4 blocks, the
ant's geoms 48 pairs), the ant's also a bound of 32 active contacts; MuJoCo C ignores both.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

import gymnasium
import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from mujoco import mjx

from jaxo2o.envs.base import EnvState, StepResult, time_limit
from jaxo2o.envs.maze_contacts import ANT_CONTACT_POINTS, compile_with_culling
from jaxo2o.envs.mjx_base import MjxPhysics

# Importing gymnasium_robotics prints a notice about its Adroit tasks' rewards to stderr (through
# farama_notifications); it does not concern the mazes and would break the command line's
# one-line errors, so it is kept off stderr.
with contextlib.redirect_stderr(io.StringIO()):
    from gymnasium_robotics.envs.maze import maps
    from gymnasium_robotics.envs.maze.maze_v4 import Maze

GOAL_THRESHOLD = 0.45  # maze_v4.py:382,389,400
POSITION_NOISE = 0.25  # maze_v4.py:257, times the scaling
POINT_MAX_SPEED = 5.0  # point.py:76

_GR_ASSETS = Path(sys.modules["gymnasium_robotics"].__file__).parent / "envs" / "assets"
_GYM_ASSETS = Path(gymnasium.__file__).parent / "envs" / "mujoco" / "assets"


@dataclass(frozen=True)
class AgentSpec:
    """What differs between the point and the ant (Gymnasium-Robotics' values, cited above)."""

    name: str
    xml: Path
    scaling: float  # maze_size_scaling
    height: float  # maze_height (unscaled)
    frame_skip: int
    clip_action: bool  # PointEnv clips the action; the ant leaves it to MuJoCo's ctrlrange
    max_speed: float | None  # PointEnv clips qvel before each step
    radius: float  # how far the agent reaches from its centre in the plane (tests' start points)
    fold_margins: bool  # MJX copy with margins folded into radii (`margin_as_radius`)
    # MJX's bound on active contacts (None: none; far-pair culling is always on, exact;
    # `envs/maze_contacts.py`)
    contact_points: int | None


POINT = AgentSpec(
    "point", _GR_ASSETS / "point" / "point.xml", 1.0, 0.4, 1, True, POINT_MAX_SPEED, 0.1, True, None
)
# the ant's contacts are mostly with the floor (plane contacts, where MJX honours margins; folding
# would move their contact points): measured one-step error with the fold, median 9e-3
ANT = AgentSpec(
    "ant", _GYM_ASSETS / "ant.xml", 4.0, 0.5, 5, False, None, 1.2, False, ANT_CONTACT_POINTS
)


@dataclass(frozen=True)
class TaskSpec:
    """One registered id: the agent, its map, its time limit and the env kwargs."""

    env_id: str
    agent: AgentSpec
    maze_map: tuple  # rows of 0 / 1 / "r" / "g" / "c"
    time_limit: int
    reward_type: str = "sparse"


def _freeze(rows) -> tuple:
    return tuple(tuple(r) for r in rows)


def _registered() -> dict[str, TaskSpec]:
    out = {}
    point = {"UMaze": (maps.U_MAZE, 300), "Medium": (maps.MEDIUM_MAZE, 600)}
    point["Large"] = (maps.LARGE_MAZE, 800)
    for name, (rows, t) in point.items():
        for suffix, rt in (("", "sparse"), ("Dense", "dense")):
            eid = f"PointMaze_{name}{suffix}-v3"
            out[eid] = TaskSpec(eid, POINT, _freeze(rows), t, rt)
    ant = {
        "UMaze": (maps.U_MAZE, 700),
        "Medium": (maps.MEDIUM_MAZE, 1000),
        "Medium_Diverse_GR": (maps.MEDIUM_MAZE_DIVERSE_GR, 1000),
        "Large": (maps.LARGE_MAZE, 1000),
        "Large_Diverse_GR": (maps.LARGE_MAZE_DIVERSE_GR, 1000),
    }
    for name, (rows, t) in ant.items():
        for suffix, rt in (("", "sparse"), ("Dense", "dense")):
            eid = f"AntMaze_{name}{suffix}-v4"
            out[eid] = TaskSpec(eid, ANT, _freeze(rows), t, rt)
    return out


TASK_SPECS: dict[str, TaskSpec] = _registered()
GR_MAZE_TASKS = tuple(TASK_SPECS)


def success_rate(returns: jax.Array) -> jax.Array:
    """Share of episodes that reached the goal, from their returns under the sparse reward
    (reward 1 exactly on the steps within 0.45 of the goal, so a return > 0 iff it got there;
    with `continuing_task` the return counts those steps). Not for the dense ids."""
    return jnp.mean(jnp.asarray(returns) > 0)


def maze_spec(agent: AgentSpec, maze_map) -> tuple[Maze, mujoco.MjSpec]:
    """Gymnasium-Robotics' maze builder on its agent XML, read as a spec; the temporary XML is
    removed after."""
    rows = [list(r) for r in maze_map]
    maze, xml_path = Maze.make_maze(str(agent.xml), rows, agent.scaling, agent.height)
    try:
        spec = mujoco.MjSpec.from_file(xml_path)
    finally:
        os.remove(xml_path)
    return maze, spec


def build_model(agent: AgentSpec, maze_map) -> tuple[Maze, mujoco.MjModel]:
    """The maze model with MJX's exact wall-pair culling added (`envs/maze_contacts.py`)."""
    maze, spec = maze_spec(agent, maze_map)
    return maze, compile_with_culling(spec, agent.scaling, agent.contact_points)


def margin_as_radius(model: mujoco.MjModel) -> mujoco.MjModel:
    """A copy for MJX in which contact margins are folded into the agent's radii.

    MuJoCo C makes a contact active when the surfaces are closer than the pair's margin (the sum
    of the two geoms' margins) and measures its violation as distance - margin. MJX's
    sphere/capsule-against-box routines (`collision_convex.py`, `sphere_convex`) return "no
    contact" as soon as the surfaces are apart, so a sphere pushed against a wall rests ~the
    margin deeper than in C (measured: velocity errors up to 0.6 in one step). With every
    margin m (one value, checked) set to 0 and every sphere and capsule of a moving body made
    2m thicker, contact is active exactly when C's is and its violation is C's; the contact
    point moves by m (irrelevant for the point mass: its joints are slides). Their bounding
    radii grow with them (MJX's far-pair culling ranks pairs by them).
    """
    margins = np.unique(model.geom_margin)
    if len(margins) != 1:
        raise ValueError(f"margin_as_radius: expects one geom margin, found {margins}")
    out = copy.deepcopy(model)
    round_ = np.isin(out.geom_type, [mujoco.mjtGeom.mjGEOM_SPHERE, mujoco.mjtGeom.mjGEOM_CAPSULE])
    moving = out.geom_bodyid > 0
    out.geom_size[round_ & moving, 0] += 2.0 * margins[0]
    out.geom_rbound[round_ & moving] += 2.0 * margins[0]
    out.geom_margin[:] = 0.0
    return out


class MazePhysics(NamedTuple):
    """The `physics` of an EnvState: the simulator state, the current goal, the goal-update key.

    Only what the next step depends on is kept (qpos, qvel and the solver's warm start; every
    other field of the MJX data is recomputed by the step's forward pass): a small state for
    replay buffers, and no zero-size arrays (which checkpoints cannot save).
    """

    qpos: jax.Array
    qvel: jax.Array
    qacc_warmstart: jax.Array
    goal: jax.Array  # (2,)
    key: jax.Array


@dataclass(frozen=True)
class GRMaze:
    """A Gymnasium-Robotics maze task on MJX (module docstring). `physics` is a MazePhysics."""

    env_id: str
    episode_length: int = 0  # 0: the registered time limit
    continuing_task: bool = True
    reset_target: bool = False
    maze_map: tuple | None = None  # None: the registered map (e.g. an eval spec's map instead)
    _spec: TaskSpec = field(default=None, repr=False, compare=False, hash=False)

    def __post_init__(self):
        if self.env_id not in TASK_SPECS:
            raise ValueError(f"task: unknown maze {self.env_id!r}; choose one of {GR_MAZE_TASKS}")
        spec = TASK_SPECS[self.env_id]
        object.__setattr__(self, "_spec", spec)
        if self.maze_map is not None:
            object.__setattr__(self, "maze_map", _freeze(self.maze_map))
        if self.episode_length <= 0:
            object.__setattr__(self, "episode_length", spec.time_limit)
        goals, resets = self.goal_cells, self.reset_cells
        far = np.linalg.norm(goals[:, None] - resets[None], axis=-1) > 0.5 * self.scaling
        if not far.any(axis=1).all():
            raise ValueError(f"{self.env_id}: a goal cell has no reset cell apart from itself")

    # ------------------------------------------------------------------ static description
    @property
    def name(self) -> str:
        return self.env_id

    @property
    def spec(self) -> TaskSpec:
        return self._spec

    @property
    def agent(self) -> AgentSpec:
        return self._spec.agent

    @property
    def scaling(self) -> float:
        return self._spec.agent.scaling

    @property
    def rows(self) -> tuple:
        return self.maze_map if self.maze_map is not None else self._spec.maze_map

    @cached_property
    def _built(self) -> tuple[Maze, mujoco.MjModel]:
        return build_model(self.agent, self.rows)

    @property
    def torque_per_action(self) -> float:
        """The ant's torque for an action of 1 (ctrl = action, gear 150)."""
        return float(self.mj_model.actuator_gear[0, 0])

    @property
    def maze(self) -> Maze:
        return self._built[0]

    @property
    def mj_model(self) -> mujoco.MjModel:
        return self._built[1]

    @cached_property
    def physics(self) -> MjxPhysics:
        """The device model (margins folded into radii, `margin_as_radius`) and its stepping."""
        with jax.ensure_compile_time_eval():  # constants, even when first asked for in a trace
            m = margin_as_radius(self.mj_model) if self.agent.fold_margins else self.mj_model
            return MjxPhysics(m, self.agent.frame_skip)

    @property
    def _data0(self) -> mjx.Data:
        return self.physics._data0

    @cached_property
    def goal_cells(self) -> np.ndarray:
        return np.asarray(self.maze.unique_goal_locations, np.float32).reshape(-1, 2)

    @cached_property
    def reset_cells(self) -> np.ndarray:
        return np.asarray(self.maze.unique_reset_locations, np.float32).reshape(-1, 2)

    @property
    def agent_obs_size(self) -> int:
        m = self.mj_model
        return m.nq + m.nv - (0 if self.agent.name == "point" else 2)

    @property
    def observation_size(self) -> int:
        return 4 + self.agent_obs_size

    @property
    def action_size(self) -> int:
        return int(self.mj_model.nu)

    # ------------------------------------------------------------------ sampling
    def noisy(self, key: jax.Array, xy: jax.Array) -> jax.Array:
        """`add_xy_position_noise`: U(-0.25, 0.25) x scaling on each axis."""
        r = POSITION_NOISE
        return xy + jax.random.uniform(key, (2,), minval=-r, maxval=r) * self.scaling

    def sample_goal(self, key: jax.Array) -> jax.Array:
        k_idx, k_noise = jax.random.split(key)
        cells = jnp.asarray(self.goal_cells)
        return self.noisy(k_noise, cells[jax.random.randint(k_idx, (), 0, len(cells))])

    def sample_reset(self, key: jax.Array, goal: jax.Array) -> jax.Array:
        """A reset cell uniformly among those more than 0.5 x scaling from the goal, + noise."""
        k_idx, k_noise = jax.random.split(key)
        cells = jnp.asarray(self.reset_cells)
        ok = jnp.linalg.norm(cells - goal, axis=-1) > 0.5 * self.scaling
        idx = jax.random.choice(k_idx, len(cells), p=ok / jnp.sum(ok))
        return self.noisy(k_noise, cells[idx])

    def update_goal(self, key: jax.Array, achieved: jax.Array, goal: jax.Array) -> jax.Array:
        """`update_goal`: redraw while within 0.45 of the agent, if the task asks for it."""
        if not (self.continuing_task and self.reset_target and len(self.goal_cells) > 1):
            return goal

        def near(carry):
            return jnp.linalg.norm(achieved - carry[0]) <= GOAL_THRESHOLD

        def redraw(carry):
            _, k = carry
            k, sub = jax.random.split(k)
            return self.sample_goal(sub), k

        return jax.lax.while_loop(near, redraw, (goal, key))[0]

    # ------------------------------------------------------------------ the env
    def agent_obs(self, data: mjx.Data) -> jax.Array:
        start = 0 if self.agent.name == "point" else 2
        return jnp.concatenate([data.qpos[start:], data.qvel])

    def observe(self, data: mjx.Data, goal: jax.Array) -> jax.Array:
        return jnp.concatenate([data.qpos[:2], goal, self.agent_obs(data)])

    def reset(self, key: jax.Array) -> EnvState:
        k_goal, k_reset, k_next = jax.random.split(key, 3)
        goal = self.sample_goal(k_goal)
        return self.reset_to(k_next, self.sample_reset(k_reset, goal), goal)

    def reset_to(self, key: jax.Array, start: jax.Array, goal: jax.Array) -> EnvState:
        """The state a reset reaches for a given start point and goal (qvel 0, rest qpos0)."""
        d0 = self._data0
        data = d0.replace(qpos=d0.qpos.at[:2].set(start), qvel=jnp.zeros_like(d0.qvel))
        phys = MazePhysics(
            data.qpos, data.qvel, data.qacc_warmstart, jnp.asarray(goal, jnp.float32), key
        )
        return EnvState(physics=phys, obs=self.observe(data, goal), t=jnp.zeros((), jnp.int32))

    def cell_of(self, xy: jax.Array) -> jax.Array:
        """(row, column) int32 of a point (last axis x, y): `Maze.cell_xy_to_rowcol`."""
        m = self.maze
        i = jnp.floor((m.y_map_center - xy[..., 1]) / self.scaling)
        j = jnp.floor((xy[..., 0] + m.x_map_center) / self.scaling)
        return jnp.stack([i, j], axis=-1).astype(jnp.int32)

    def cell_xy(self, rowcol: jax.Array) -> jax.Array:
        """The centre (x, y) of cell (row, column): `Maze.cell_rowcol_to_xy`."""
        m = self.maze
        x = (rowcol[..., 1] + 0.5) * self.scaling - m.x_map_center
        y = m.y_map_center - (rowcol[..., 0] + 0.5) * self.scaling
        return jnp.stack([x, y], axis=-1).astype(jnp.float32)

    def physics_step(self, data: mjx.Data, action: jax.Array) -> mjx.Data:
        """The agent env's step around `mj_step` (module docstring)."""
        if self.agent.clip_action:
            action = jnp.clip(action, -1.0, 1.0)
        if self.agent.max_speed is not None:
            data = data.replace(
                qvel=jnp.clip(data.qvel, -self.agent.max_speed, self.agent.max_speed)
            )
        return self.physics.step(data, action)

    def reward_and_terminated(self, achieved: jax.Array, goal: jax.Array):
        dist = jnp.linalg.norm(achieved - goal)
        hit = dist <= GOAL_THRESHOLD
        dense = self._spec.reward_type == "dense"
        reward = jnp.exp(-dist) if dense else hit.astype(jnp.float32)
        terminated = jnp.logical_and(hit, not self.continuing_task)
        return reward, terminated, hit

    def step(self, state: EnvState, action: jax.Array) -> tuple[EnvState, StepResult]:
        phys = state.physics
        before = self._data0.replace(
            qpos=phys.qpos, qvel=phys.qvel, qacc_warmstart=phys.qacc_warmstart
        )
        data = self.physics_step(before, action)
        achieved = data.qpos[:2]
        reward, terminated, _ = self.reward_and_terminated(achieved, phys.goal)
        obs = self.observe(data, phys.goal)
        k_goal, k_next = jax.random.split(phys.key)
        goal = self.update_goal(k_goal, achieved, phys.goal)
        t = state.t + 1
        truncated = time_limit(t, terminated, self.episode_length)
        phys = MazePhysics(data.qpos, data.qvel, data.qacc_warmstart, goal, k_next)
        new = EnvState(physics=phys, obs=obs, t=t)
        return new, StepResult(obs, reward, terminated, truncated)
