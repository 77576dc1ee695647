"""Point-mass mazes after D4RL's AntMaze: a sparse-reward, goal-terminated navigation family.

Tasks `pointmaze-umaze`, `pointmaze-medium`, `pointmaze-large` use the cell grids of D4RL's
AntMaze (`U_MAZE`, `BIG_MAZE`, `HARDEST_MAZE` in D4RL's `locomotion/maze_env.py`), with its
fixed start (the `R` cell) and its evaluation goal (the `G` cell of the `*_TEST` maps). The
cells D4RL marks `G` in its dataset-generation maps are kept as *play cells* (the hand-picked
goals of the `play` datasets, `jaxo2o/data/maze.py`).

Coordinates are in cells: the centre of cell (row i, column j) is the point (x, y) = (j, i), and
the cell of a point is (floor(y + 1/2), floor(x + 1/2)); row 0 is drawn at the top.

Dynamics (per step, DT = 0.1 time units), a point mass with bounded force and damping:

    v' = clip((1 - DAMPING DT) v + FORCE DT clip(a, -1, 1), -V_MAX, V_MAX)   (per axis)
    p' = p + DT v'   (then walls, below)

with FORCE = 3 and DAMPING = 2, so full force holds the terminal speed V_MAX = FORCE / DAMPING =
1.5 cells per time unit (0.15 cells per step per axis), reached to 89% in 10 steps. The clip on
v' never binds from a reachable state (|v| <= V_MAX stays so); it makes the bound hold for
hand-made states too.

Walls: the agent is a point; it moves along x, then along y. Each axis moves at most
DT V_MAX = 0.15 < 1/2 cell per step, so a move can only reach the neighbouring cell along that
axis; if that cell is a wall the coordinate is put back MARGIN inside the current cell's
boundary and that velocity component is zeroed (an inelastic hit; the other component slides
on). Starting from a free cell, the point therefore always ends in a free cell: no tunnelling
(no wall is thinner than one cell), corners included. A step is two table lookups, no loop.

Observation: position (x, y) and velocity (vx, vy), 4 numbers (AntMaze gives the ant's
positions and velocities; here the point's). The goal is not observed: it is fixed per layout,
as AntMaze's evaluation goal.

Reward and termination, as AntMaze: reward 1 on the step whose next position lies within
GOAL_RADIUS of the goal, and that step terminates the episode; every other step gives 0. The
time limit truncates. An episode's return is 1 on success, else 0, so the normalized score with
ref_min 0 and ref_max 1 is 100 x the success rate. Goal radius: 0.25 cells, the disc a point
crossing the goal cell's centre region must touch (AntMaze: 0.5 with cells of 4 units and an
ant body about 1 unit across); its diameter 0.5 exceeds the longest step (0.15 sqrt 2), so a
pass through it cannot skip it.

Starts: the start cell's centre plus a uniform jitter of +-START_JITTER cells per axis.
Time limits (AntMaze: umaze 700, medium and large 1000 steps for an ant): here 200, 300 and
400 steps, about 4x the time the waypoint controller of `jaxo2o/data/maze.py` takes from start to
goal (measured, noise-free: 45, 72 and 100 steps for shortest paths of 6, 10 and 14 cells), so a
policy at half the controller's speed, or with a detour as long as the path, still fits.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from functools import cached_property

import jax
import jax.numpy as jnp
import numpy as np

from jaxo2o.envs.base import EnvState, StepResult, time_limit

DT = 0.1
FORCE = 3.0  # acceleration per unit of action (cells / time^2)
DAMPING = 2.0  # velocity damping (1 / time)
V_MAX = FORCE / DAMPING  # terminal speed per axis (cells / time)
MARGIN = 1e-3  # how far inside its cell a point stopped by a wall is put (cells)
GOAL_RADIUS = 0.25  # cells
START_JITTER = 0.1  # cells, uniform per axis


@dataclass(frozen=True)
class Layout:
    """A maze: `#` wall, `.` free, `S` start, `G` evaluation goal, `p` play cell.

    The start and the goal are play cells too. The outer ring must be walls.
    """

    name: str
    rows: tuple[str, ...]
    time_limit: int

    @cached_property
    def walls(self) -> np.ndarray:
        """Bool (H, W): True where the cell is a wall."""
        return np.array([[c == "#" for c in row] for row in self.rows], bool)

    @property
    def shape(self) -> tuple[int, int]:
        return self.walls.shape

    def _find(self, chars: str) -> list[tuple[int, int]]:
        return [(i, j) for i, row in enumerate(self.rows) for j, c in enumerate(row) if c in chars]

    @cached_property
    def start(self) -> tuple[int, int]:
        return self._find("S")[0]

    @cached_property
    def goal(self) -> tuple[int, int]:
        return self._find("G")[0]

    @cached_property
    def play_cells(self) -> list[tuple[int, int]]:
        return self._find("SGp")

    @cached_property
    def free_cells(self) -> list[tuple[int, int]]:
        return self._find(".SGp")

    def distances(self, target: tuple[int, int]) -> np.ndarray:
        """BFS distance (in cells, 4-connected) from every cell to `target`; -1 if unreachable."""
        h, w = self.shape
        dist = np.full((h, w), -1, np.int64)
        dist[target] = 0
        queue = deque([target])
        while queue:
            i, j = queue.popleft()
            for di, dj in ((0, 1), (0, -1), (1, 0), (-1, 0)):
                ni, nj = i + di, j + dj
                if 0 <= ni < h and 0 <= nj < w and not self.walls[ni, nj] and dist[ni, nj] < 0:
                    dist[ni, nj] = dist[i, j] + 1
                    queue.append((ni, nj))
        return dist

    @cached_property
    def next_cell(self) -> np.ndarray:
        """Int32 (H*W, H*W): [target, current] -> the neighbouring cell one BFS step closer to
        `target` (linear indices i * W + j); the target itself when current == target, and
        current for walls and unreachable cells. Ties go to the first of right, left, down, up.
        """
        h, w = self.shape
        n = h * w
        table = np.tile(np.arange(n, dtype=np.int32), (n, 1))
        for ti, tj in self.free_cells:
            dist = self.distances((ti, tj))
            for i, j in self.free_cells:
                if dist[i, j] <= 0:
                    continue
                for di, dj in ((0, 1), (0, -1), (1, 0), (-1, 0)):
                    if dist[i + di, j + dj] == dist[i, j] - 1:
                        table[ti * w + tj, i * w + j] = (i + di) * w + (j + dj)
                        break
        return table

    def check(self) -> None:
        w = self.walls
        if len({len(r) for r in self.rows}) != 1:
            raise ValueError(f"layout {self.name}: rows differ in length")
        if not (w[0].all() and w[-1].all() and w[:, 0].all() and w[:, -1].all()):
            raise ValueError(f"layout {self.name}: the outer ring must be walls")
        if len(self._find("S")) != 1 or len(self._find("G")) != 1:
            raise ValueError(f"layout {self.name}: needs exactly one S and one G")
        if self.distances(self.goal)[self.start] < 0:
            raise ValueError(f"layout {self.name}: the goal cannot be reached from the start")


# D4RL's AntMaze grids. Play cells (`p`, with S and G) are D4RL's `G` cells of the
# dataset-generation maps; U_MAZE has one goal only, so its play cells are its four corners.
LAYOUTS: dict[str, Layout] = {
    "umaze": Layout(
        "umaze",
        (
            "#####",
            "#S.p#",
            "###.#",
            "#G.p#",
            "#####",
        ),
        time_limit=200,
    ),
    "medium": Layout(
        "medium",
        (
            "########",
            "#S.##..#",
            "#..#..p#",
            "##...###",
            "#..#...#",
            "#p#..#.#",
            "#...#pG#",
            "########",
        ),
        time_limit=300,
    ),
    "large": Layout(
        "large",
        (
            "############",
            "#S...#p....#",
            "#.##.#.#.#.#",
            "#....p.#..p#",
            "#.####.###.#",
            "#.p#.#.....#",
            "##.#.#.#.###",
            "#..#p.p#.G.#",
            "############",
        ),
        time_limit=400,
    ),
}
for _layout in LAYOUTS.values():
    _layout.check()

MAZE_TASKS = tuple(f"pointmaze-{name}" for name in LAYOUTS)


def layout_of(task: str) -> Layout:
    """The layout of a `pointmaze-<name>` task."""
    name = task.removeprefix("pointmaze-")
    if not task.startswith("pointmaze-") or name not in LAYOUTS:
        raise ValueError(f"task: unknown maze {task!r}; choose one of {MAZE_TASKS}")
    return LAYOUTS[name]


def cell_of(pos: jax.Array) -> jax.Array:
    """(row, column) int32 of a position (x, y) (last axis); works on batches."""
    return jnp.floor(pos[..., ::-1] + 0.5).astype(jnp.int32)


def _move_axis(walls, pos, vel, axis: int):
    """Move along one axis; stop MARGIN inside the boundary of a wall cell and zero that speed."""
    x = pos[axis] + DT * vel[axis]
    cell = cell_of(pos)
    target = cell.at[1 - axis].set(jnp.floor(x + 0.5).astype(jnp.int32))
    h, w = walls.shape
    hit = walls[jnp.clip(target[0], 0, h - 1), jnp.clip(target[1], 0, w - 1)]
    edge = cell[1 - axis] + jnp.sign(vel[axis]) * (0.5 - MARGIN)
    pos = pos.at[axis].set(jnp.where(hit, edge, x))
    vel = vel.at[axis].set(jnp.where(hit, 0.0, vel[axis]))
    return pos, vel


def maze_dynamics(walls: jax.Array, pos: jax.Array, vel: jax.Array, action: jax.Array):
    """One step of the point in the maze (module docstring): (pos', vel')."""
    a = jnp.clip(action, -1.0, 1.0)
    vel = jnp.clip((1.0 - DAMPING * DT) * vel + FORCE * DT * a, -V_MAX, V_MAX)
    pos, vel = _move_axis(walls, pos, vel, 0)
    pos, vel = _move_axis(walls, pos, vel, 1)
    return pos, vel


@dataclass(frozen=True)
class PointMaze:
    """A point-mass maze task; `physics` and `obs` are both (x, y, vx, vy)."""

    layout_name: str = "umaze"
    episode_length: int = 0  # 0: the layout's time limit
    observation_size: int = 4
    action_size: int = 2
    _layout: Layout = field(default=None, repr=False, compare=False, hash=False)

    def __post_init__(self):
        object.__setattr__(self, "_layout", layout_of(f"pointmaze-{self.layout_name}"))
        if self.episode_length <= 0:
            object.__setattr__(self, "episode_length", self._layout.time_limit)

    @property
    def name(self) -> str:
        return f"pointmaze-{self.layout_name}"

    @property
    def layout(self) -> Layout:
        return self._layout

    @property
    def walls(self) -> jax.Array:
        return jnp.asarray(self._layout.walls)

    @property
    def start_xy(self) -> jax.Array:
        i, j = self._layout.start
        return jnp.array([j, i], jnp.float32)

    @property
    def goal_xy(self) -> jax.Array:
        i, j = self._layout.goal
        return jnp.array([j, i], jnp.float32)

    def at_goal(self, pos: jax.Array) -> jax.Array:
        """Bool: the position (last axis x, y) lies within GOAL_RADIUS of the goal."""
        return jnp.linalg.norm(pos - self.goal_xy, axis=-1) <= GOAL_RADIUS

    def dynamics(self, pos: jax.Array, vel: jax.Array, action: jax.Array):
        return maze_dynamics(self.walls, pos, vel, action)

    def reset(self, key: jax.Array) -> EnvState:
        jitter = jax.random.uniform(key, (2,), minval=-START_JITTER, maxval=START_JITTER)
        obs = jnp.concatenate([self.start_xy + jitter, jnp.zeros(2)])
        return EnvState(physics=obs, obs=obs, t=jnp.zeros((), jnp.int32))

    def step(self, state: EnvState, action: jax.Array) -> tuple[EnvState, StepResult]:
        pos, vel = self.dynamics(state.physics[:2], state.physics[2:], action)
        obs = jnp.concatenate([pos, vel])
        terminated = self.at_goal(pos)
        reward = terminated.astype(jnp.float32)
        t = state.t + 1
        truncated = time_limit(t, terminated, self.episode_length)
        return EnvState(physics=obs, obs=obs, t=t), StepResult(obs, reward, terminated, truncated)
