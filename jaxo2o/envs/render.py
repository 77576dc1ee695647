"""PNG pictures of a maze with a batch of trajectories (from a dataset or a policy's episodes).

The picture is rasterised on the device (one jitted JAX function: walls, goal and start discs,
and every trajectory as a 2-pixel line through its positions, sampled densely between
consecutive points) and written with matplotlib's `imsave`. Each cell is `scale` x `scale`
pixels; row 0 of the layout is at the top, as the layouts are written in `envs/maze.py`.

    render_trajectories("pointmaze-medium", positions, "medium.png")   # positions (B, T, >=2)
    render_trajectories("PointMaze_Medium-v3", positions, "m.png", goal=(1.5, -2.5))

Gymnasium-Robotics' mazes (`envs/gr_maze.py`) are drawn from their map: positions are in their
world coordinates (x right, y up, origin at the maze's centre, `scaling` units per cell) and
mapped to cells as `Maze.cell_xy_to_rowcol` does; the goal disc has their 0.45 radius. Their
goals and starts are random, so the discs are drawn where `goal` / `start` say (none if absent).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxo2o.envs import maze as mz
from jaxo2o.envs.gr_maze import GOAL_THRESHOLD, GR_MAZE_TASKS, GRMaze
from jaxo2o.report.plots import pyplot

FLOOR = (0.97, 0.97, 0.95)
WALL = (0.27, 0.29, 0.34)
GOAL = (0.85, 0.15, 0.15)
START = (0.15, 0.65, 0.25)
START_RADIUS = 0.15  # cells


def as_batch(trajectories: Any) -> np.ndarray:
    """(B, T, 2) float32 positions from (T, D) or (B, T, D) arrays, or a list of (T_i, D)
    arrays of different lengths (padded with NaN, which is not drawn). Columns 0, 1 are x, y."""
    if isinstance(trajectories, list | tuple):
        parts = [np.asarray(t, np.float32).reshape(len(t), -1)[:, :2] for t in trajectories]
        n = max((len(p) for p in parts), default=1)
        out = np.full((len(parts), max(n, 1), 2), np.nan, np.float32)
        for i, p in enumerate(parts):
            out[i, : len(p)] = p
        return out
    a = np.asarray(trajectories, np.float32)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[-1] < 2:
        raise ValueError(f"trajectories: expected (T, D) or (B, T, D) with D >= 2, got {a.shape}")
    return a[..., :2]


def episode_positions(obs: np.ndarray, next_obs: np.ndarray, ends: np.ndarray) -> list:
    """Split flat transitions into per-episode position arrays (each with its final position)."""
    stops = np.flatnonzero(ends) + 1
    starts = np.concatenate([[0], stops[:-1]])
    return [
        np.concatenate([obs[s:e, :2], next_obs[e - 1 : e, :2]])
        for s, e in zip(starts, stops, strict=True)
    ]


def _disc(h: int, w: int, scale: int, centre: jax.Array, radius: float) -> jax.Array:
    ys = (jnp.arange(h * scale) + 0.5) / scale - 0.5
    xs = (jnp.arange(w * scale) + 0.5) / scale - 0.5
    d = jnp.hypot(xs[None, :] - centre[0], ys[:, None] - centre[1])
    return d <= radius


@partial(jax.jit, static_argnames=("scale", "samples"))
def rasterize(
    walls: jax.Array,
    points: jax.Array,
    colors: jax.Array,
    goal_xy: jax.Array,
    start_xy: jax.Array,
    scale: int = 24,
    samples: int = 8,
    goal_radius: float = mz.GOAL_RADIUS,
) -> jax.Array:
    """An RGB float image (H*scale, W*scale, 3) of the layout with the trajectories drawn.

    points: (B, T, 2) positions (NaN: not drawn); colors: (B, 3) in [0, 1].
    """
    h, w = walls.shape
    hp, wp = h * scale, w * scale
    cells = jnp.repeat(jnp.repeat(walls, scale, axis=0), scale, axis=1)
    img = jnp.where(cells[..., None], jnp.asarray(WALL), jnp.asarray(FLOOR))
    goal = _disc(h, w, scale, goal_xy, goal_radius)[..., None]
    start = _disc(h, w, scale, start_xy, START_RADIUS)[..., None]
    img = jnp.where(goal, 0.5 * img + 0.5 * jnp.asarray(GOAL), img)
    img = jnp.where(start, 0.5 * img + 0.5 * jnp.asarray(START), img)

    p0 = points[:, :-1] if points.shape[1] > 1 else points
    p1 = points[:, 1:] if points.shape[1] > 1 else points
    u = jnp.linspace(0.0, 1.0, samples)[:, None]
    pts = p0[:, :, None, :] + u * (p1 - p0)[:, :, None, :]  # (B, T-1, samples, 2)
    col = jnp.broadcast_to(colors[:, None, None, :], pts.shape[:-1] + (3,))
    ok = jnp.all(jnp.isfinite(pts), axis=-1)
    px = jnp.floor((jnp.nan_to_num(pts[..., 0]) + 0.5) * scale).astype(jnp.int32)
    py = jnp.floor((jnp.nan_to_num(pts[..., 1]) + 0.5) * scale).astype(jnp.int32)
    for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):  # a 2x2 stamp: lines 2 pixels wide
        x, y = px + dx, py + dy
        inside = ok & (x >= 0) & (x < wp) & (y >= 0) & (y < hp)
        y = jnp.where(inside, y, hp)  # out of range: dropped
        img = img.at[y.ravel(), x.ravel()].set(col.reshape(-1, 3), mode="drop")
    return img


def _gr_frame(task: str, pts: np.ndarray, goal: Any, start: Any):
    """A Gymnasium-Robotics maze in the picture's cell frame (x = column, y = row, centres at
    integers): walls, positions, goal and start points (NaN: not drawn), goal radius."""
    env = GRMaze(task)
    m, s = env.maze, env.scaling
    to_cells = lambda xy: np.stack(
        [(xy[..., 0] + m.x_map_center) / s - 0.5, (m.y_map_center - xy[..., 1]) / s - 0.5], -1
    ).astype(np.float32)
    walls = np.array([[c == 1 for c in r] for r in env.rows], bool)
    point = lambda p: np.full(2, np.nan, np.float32) if p is None else to_cells(np.asarray(p))
    return walls, to_cells(pts), point(goal), point(start), GOAL_THRESHOLD / s


def render_trajectories(
    task: str,
    trajectories: Any,
    path: str | Path,
    *,
    scale: int = 24,
    cmap: str = "viridis",
    goal: Any = None,
    start: Any = None,
) -> np.ndarray:
    """Draw `trajectories` (see `as_batch`) in the maze of `task` and write a PNG to `path`.

    The picture is (H * scale) x (W * scale) pixels for an H x W layout; trajectory i gets the
    colour i / (B - 1) of `cmap`. Returns the RGB image (float32 in [0, 1]).
    """
    plt = pyplot()

    pts = as_batch(trajectories)
    b = pts.shape[0]
    colors = np.asarray(plt.get_cmap(cmap)(np.linspace(0.0, 1.0, max(b, 1)))[:b, :3], np.float32)
    if task in GR_MAZE_TASKS:
        walls, pts, goal_xy, start_xy, radius = _gr_frame(task, pts, goal, start)
    else:
        layout = mz.layout_of(task)
        (gi, gj), (si, sj) = layout.goal, layout.start
        walls, radius = layout.walls, mz.GOAL_RADIUS
        goal_xy, start_xy = np.array([gj, gi], np.float32), np.array([sj, si], np.float32)
    img = rasterize(
        jnp.asarray(walls),
        jnp.asarray(pts),
        jnp.asarray(colors),
        jnp.asarray(goal_xy),
        jnp.asarray(start_xy),
        scale=scale,
        goal_radius=radius,
    )
    img = np.clip(np.asarray(img, np.float32), 0.0, 1.0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    plt.imsave(path, img)
    return img
