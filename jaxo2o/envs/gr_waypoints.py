"""A scripted waypoint controller for the Gymnasium-Robotics point mazes (`envs/gr_maze.py`).

The recipe of Minari's `D4RL/pointmaze` datasets: follow the shortest cell path to the goal
with a PD law. Waypoint: the centre of the next cell on a BFS shortest path (4-connected, ties to
right, left, down, up: `envs/maze.Layout.next_cell`) from the agent's cell to the goal's, or the
goal itself once the agent is in the goal's cell or its neighbour on the path. Action:
`clip(KP (waypoint - xy) - KD v, -1, 1)` (+ optional Gaussian noise, then clipped again).

The observation is the flattened Dict (`[achieved_goal, desired_goal, x, y, vx, vy]`), so the
controller needs nothing but what a policy sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import jax
import jax.numpy as jnp
import numpy as np

from jaxo2o.envs.gr_maze import GRMaze
from jaxo2o.envs.maze import Layout

KP = 10.0
KD = 1.0


@dataclass(frozen=True)
class WaypointController:
    env: GRMaze
    kp: float = KP
    kd: float = KD

    @cached_property
    def next_cell(self) -> np.ndarray:
        """(H*W, H*W) int32: [goal cell, current cell] -> next cell toward the goal."""
        rows = tuple("".join("#" if c == 1 else "." for c in r) for r in self.env.rows)
        return Layout("gr", rows, 1).next_cell

    def waypoint(self, xy: jax.Array, goal: jax.Array) -> jax.Array:
        w = len(self.env.rows[0])
        h = len(self.env.rows)
        cur = jnp.clip(self.env.cell_of(xy), 0, jnp.array([h - 1, w - 1]))
        tgt = jnp.clip(self.env.cell_of(goal), 0, jnp.array([h - 1, w - 1]))
        lin = lambda c: c[..., 0] * w + c[..., 1]
        nxt = jnp.asarray(self.next_cell)[lin(tgt), lin(cur)]
        nxt_rc = jnp.stack([nxt // w, nxt % w], axis=-1)
        last = jnp.logical_or(nxt == lin(tgt), lin(cur) == lin(tgt))[..., None]
        return jnp.where(last, goal, self.env.cell_xy(nxt_rc))

    def __call__(self, obs: jax.Array, key: jax.Array | None = None, noise: float = 0.0):
        """Actions for a batch (or one) of observations; `noise` is the Gaussian action std."""
        xy, goal, vel = obs[..., 0:2], obs[..., 2:4], obs[..., 6:8]
        a = jnp.clip(self.kp * (self.waypoint(xy, goal) - xy) - self.kd * vel, -1.0, 1.0)
        if noise > 0.0:
            a = jnp.clip(a + noise * jax.random.normal(key, a.shape), -1.0, 1.0)
        return a
