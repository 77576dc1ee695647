"""Datasets of the point-mass mazes with D4RL AntMaze's recipe: a noisy waypoint controller.

The behaviour policy (D4RL: a goal-reaching ant policy steered by waypoints,
`MazeEnv.create_navigation_policy`):
- **waypoints**: the shortest path over the cell grid (BFS on the host, once per target cell,
  into a next-cell table `Layout.next_cell`); on the device the waypoint is the centre of the
  next cell toward the commanded goal, or the goal point itself once the next cell is the goal's;
- **a PD law** toward it, a = clip(kp (waypoint - p) - kd v, -1, 1), plus Gaussian action noise
  (D4RL's `--noisy`: N(0, 0.2^2) added to the action, then clipped to [-1, 1]).

Segments (D4RL `generate_ant_maze_datasets.py`): each starts at rest near a cell's centre and
runs for `segment_length` steps (D4RL: 1000); it ends by the time limit only (marked truncated),
never on reaching a commanded goal.
- `play`: starts and commanded goals are the layout's hand-picked play cells (D4RL's `G` cells of
  its dataset-generation maps, plus the start and the evaluation goal);
- `diverse`: starts and commanded goals are uniformly random free cells (D4RL's multi-start,
  multi-goal data).
Commanded goals are a cell centre plus a uniform jitter of +-`goal_jitter` cells (D4RL adds up to
a quarter cell). One deviation: D4RL's ant keeps one commanded goal per 1000-step segment (it
needs most of the segment to get there); the point reaches a goal in tens of steps, so whenever
it comes within GOAL_RADIUS of its commanded goal a new one (another cell) is drawn and the
segment goes on, instead of hovering at the goal for the rest of the segment.

Labels, relabelled for the evaluation goal as D4RL's `relabel_antmaze_rewards.py` (sparse):
reward = terminal = [|next position - goal| <= GOAL_RADIUS] on *every* transition, whatever goal
was commanded; the segment goes on through such transitions. In jaxo2o's storage an episode ends
at every terminated row (no bootstrap through a goal entry, as D4RL's terminals), so a segment is
stored as several Minari episodes split at its goal-reaching transitions: the data holds exactly
D4RL's (s, a, r, s', terminal, timeout) rows, with `truncated` = D4RL's `timeouts` at segment ends
that are not also goal-reaching.

Sizes: segments are whole, so a dataset holds ceil(size / segment_length) segments.

Reference scores: ref_min_score 0 and ref_max_score 1 (returns are 1 on success, else 0; a random
policy essentially never reaches the goal), so normalized = 100 x success rate, as D4RL's
AntMaze. The controller's own success rate from the task's start state (the noisy behaviour
controller, and noise-free) is recorded in the metadata as the expert reference.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxo2o.core.transitions import Transitions
from jaxo2o.data.dataset import dataset_id, episode_lengths, episode_returns
from jaxo2o.data.minari_io import write_dataset
from jaxo2o.data.recipe import MAZE_KINDS
from jaxo2o.envs import make_env
from jaxo2o.envs import maze as mz
from jaxo2o.provenance import provenance

MAZE_GENERATOR_VERSION = 1  # bump when the code changes what it makes from a recipe

Log = Callable[[str], None]


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the recipe
@dataclass(frozen=True)
class MazeSizes:
    """Transitions per kind (rounded up to whole segments)."""

    play: int
    diverse: int


@dataclass(frozen=True)
class MazeData:
    """How the datasets of one maze task are made, in one tier (a line of `tiers.py`)."""

    task: str
    sizes: MazeSizes
    episode_length: int  # the task's time limit (reference episodes; the O2O runs use it too)
    segment_length: int = 1000  # D4RL: 1000-step segments
    action_noise: float = 0.2  # std of the Gaussian added to the controller's action (D4RL: 0.2)
    kp: float = 4.0  # PD gains of the waypoint controller
    kd: float = 1.0
    goal_jitter: float = 0.25  # commanded goals: cell centre + U(-j, j) per axis (cells)
    rollout_envs: int = 100  # segments stepped side by side in one compiled call
    reference_episodes: int = 100  # controller episodes from the start state
    seed: int = 0
    backend: str = "none"  # no physics backend (kept beside TaskData.backend for readers)
    kinds: ClassVar[tuple[str, ...]] = MAZE_KINDS

    def __post_init__(self):
        mz.layout_of(self.task)
        for name in ("episode_length", "segment_length", "rollout_envs"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{self.task}: {name} must be > 0")
        for k in MAZE_KINDS:
            if getattr(self.sizes, k) <= 0:
                raise ValueError(f"{self.task}: sizes.{k} must be > 0")
        if self.reference_episodes < 100:
            raise ValueError(f"{self.task}: reference_episodes must be >= 100")

    def size_of(self, kind: str) -> int:
        return getattr(self.sizes, _check_kind(kind))

    def segments_of(self, kind: str) -> int:
        return math.ceil(self.size_of(kind) / self.segment_length)


def _check_kind(kind: str) -> str:
    if kind not in MAZE_KINDS:
        raise ValueError(f"kind: unknown maze kind {kind!r}; choose one of {MAZE_KINDS}")
    return kind


def maze_recipe_dict(data: MazeData, kind: str) -> dict:
    """Everything that determines one maze dataset, the layout and the dynamics included."""
    common = dataclasses.asdict(data)
    common.pop("sizes")
    layout = mz.layout_of(data.task)
    return {
        "generator": "maze-waypoint",
        "generator_version": MAZE_GENERATOR_VERSION,
        "kind": _check_kind(kind),
        "size": data.size_of(kind),
        "layout": list(layout.rows),
        "dynamics": {
            "dt": mz.DT,
            "force": mz.FORCE,
            "damping": mz.DAMPING,
            "margin": mz.MARGIN,
            "goal_radius": mz.GOAL_RADIUS,
            "start_jitter": mz.START_JITTER,
        },
        **common,
    }


def maze_recipe_hash(data: MazeData, kind: str) -> str:
    text = json.dumps(maze_recipe_dict(data, kind), sort_keys=True, default=list)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- the controller
def waypoint_action(
    layout: mz.Layout,
    pos: jax.Array,
    vel: jax.Array,
    target: jax.Array,
    target_xy: jax.Array,
    kp: float,
    kd: float,
) -> jax.Array:
    """The PD action toward the next waypoint on the shortest path to cell `target` (linear
    index i * W + j), the waypoint being `target_xy` once the next cell is the target."""
    w = layout.shape[1]
    table = jnp.asarray(layout.next_cell)
    cell = mz.cell_of(pos)
    nxt = table[target, cell[0] * w + cell[1]]
    centre = jnp.stack([nxt % w, nxt // w]).astype(jnp.float32)
    waypoint = jnp.where(nxt == target, target_xy, centre)
    return jnp.clip(kp * (waypoint - pos) - kd * vel, -1.0, 1.0)


def _noisy(action: jax.Array, key: jax.Array, noise: float) -> jax.Array:
    return jnp.clip(action + noise * jax.random.normal(key, action.shape), -1.0, 1.0)


def controller_episodes(
    env: mz.PointMaze, key: jax.Array, episodes: int, noise: float, kp: float, kd: float
) -> tuple[np.ndarray, np.ndarray]:
    """Evaluation episodes of the controller toward the task's goal (vmapped, compiled).

    Returns (success, steps) per episode: success = the episode terminated at the goal within
    the time limit; steps = the episode's length.
    """
    keys = jax.random.split(key, episodes)
    success, steps = _controller_program(env)(keys, noise, kp, kd)
    return np.asarray(success), np.asarray(steps)


@functools.lru_cache(maxsize=8)
def _controller_program(env: mz.PointMaze) -> Callable:
    """(keys, noise, kp, kd) -> (success, steps) per key; noise and gains are traced."""
    layout = env.layout
    target = layout.goal[0] * layout.shape[1] + layout.goal[1]

    def episode(k, noise, kp, kd):
        k_reset, k_steps = jax.random.split(k)
        state = env.reset(k_reset)

        def body(carry, k_act):
            state, done, success, steps = carry
            pos, vel = state.obs[:2], state.obs[2:]
            a = _noisy(waypoint_action(layout, pos, vel, target, env.goal_xy, kp, kd), k_act, noise)
            nxt, res = env.step(state, a)
            live = jnp.logical_not(done)
            success = success | (live & res.terminated)
            steps = steps + live.astype(jnp.int32)
            done = done | res.terminated | res.truncated
            return (nxt, done, success, steps), None

        init = (state, jnp.array(False), jnp.array(False), jnp.array(0, jnp.int32))
        keys = jax.random.split(k_steps, env.episode_length)
        (_, _, success, steps), _ = jax.lax.scan(body, init, keys)
        return success, steps

    return jax.jit(jax.vmap(episode, in_axes=(0, None, None, None)))


# --------------------------------------------------------------------------- segments
def _cell_mask(layout: mz.Layout, cells: list[tuple[int, int]]) -> np.ndarray:
    h, w = layout.shape
    mask = np.zeros(h * w, bool)
    for i, j in cells:
        mask[i * w + j] = True
    return mask


def kind_cells(layout: mz.Layout, kind: str) -> np.ndarray:
    """Bool (H*W,): the cells that segments of `kind` start at and are commanded to."""
    cells = layout.play_cells if _check_kind(kind) == "play" else layout.free_cells
    return _cell_mask(layout, cells)


class SegmentRoller:
    """Compiled, vmapped segments of the noisy controller: `rollout_envs` per call.

    The cells to start at and command are an argument (a mask), so both kinds share one program.
    """

    def __init__(self, env: mz.PointMaze, data: MazeData):
        self.env, self.data = env, data
        self._fn = jax.jit(jax.vmap(self._segment, in_axes=(0, None)))

    def _segment(self, key: jax.Array, cells: jax.Array) -> Transitions:
        env, d, layout = self.env, self.data, self.env.layout
        w = layout.shape[1]
        idx = jnp.arange(cells.shape[0])

        def draw(k, exclude):
            """A cell of the mask other than `exclude`, and a jittered point in it."""
            k_cell, k_jit = jax.random.split(k)
            logits = jnp.where(cells & (idx != exclude), 0.0, -jnp.inf)
            c = jax.random.categorical(k_cell, logits)
            centre = jnp.stack([c % w, c // w]).astype(jnp.float32)
            return c, centre

        k_start, k_sj, k_goal, k_gj, k_steps = jax.random.split(key, 5)
        start, centre = draw(k_start, -1)
        pos = centre + jax.random.uniform(
            k_sj, (2,), minval=-mz.START_JITTER, maxval=mz.START_JITTER
        )
        goal, goal_centre = draw(k_goal, start)
        gj = d.goal_jitter
        goal_xy = goal_centre + jax.random.uniform(k_gj, (2,), minval=-gj, maxval=gj)

        def body(carry, k):
            pos, vel, goal, goal_xy = carry
            k_act, k_new, k_jit = jax.random.split(k, 3)
            a = waypoint_action(layout, pos, vel, goal, goal_xy, d.kp, d.kd)
            a = _noisy(a, k_act, d.action_noise)
            pos2, vel2 = env.dynamics(pos, vel, a)
            at_goal = env.at_goal(pos2)  # the evaluation goal: reward and terminal (relabelled)
            reached = jnp.linalg.norm(pos2 - goal_xy) <= mz.GOAL_RADIUS  # the commanded goal
            new, new_centre = draw(k_new, goal)
            new_xy = new_centre + jax.random.uniform(k_jit, (2,), minval=-gj, maxval=gj)
            goal = jnp.where(reached, new, goal)
            goal_xy = jnp.where(reached, new_xy, goal_xy)
            row = Transitions(
                jnp.concatenate([pos, vel]),
                a,
                at_goal.astype(jnp.float32),
                jnp.concatenate([pos2, vel2]),
                at_goal,
                jnp.array(False),
            )
            return (pos2, vel2, goal, goal_xy), row

        init = (pos, jnp.zeros(2), goal, goal_xy)
        _, rows = jax.lax.scan(body, init, jax.random.split(k_steps, d.segment_length))
        last = jnp.arange(d.segment_length) == d.segment_length - 1
        return rows._replace(truncated=last & jnp.logical_not(rows.terminated))

    def collect(self, key: jax.Array, kind: str, segments: int) -> Transitions:
        """`segments` whole segments, concatenated in order (numpy, rows segment-major)."""
        cells = jnp.asarray(kind_cells(self.env.layout, kind))
        n = self.data.rollout_envs
        parts = []
        for i in range(math.ceil(segments / n)):
            rows = self._fn(jax.random.split(jax.random.fold_in(key, i), n), cells)
            parts.append(jax.tree.map(np.asarray, rows))
        t = Transitions(*(np.concatenate(x, axis=0)[:segments] for x in zip(*parts, strict=True)))
        return Transitions(*(x.reshape(-1, *x.shape[2:]) for x in t))


# --------------------------------------------------------------------------- statistics
def coverage(layout: mz.Layout, positions: np.ndarray) -> float:
    """Fraction of the layout's free cells that some position (x, y) lies in."""
    cells = np.floor(np.asarray(positions)[:, ::-1] + 0.5).astype(np.int64)
    h, w = layout.shape
    seen = np.zeros((h, w), bool)
    seen[cells[:, 0], cells[:, 1]] = True
    free = ~layout.walls
    return float((seen & free).sum() / free.sum())


def data_stats(layout: mz.Layout, t: Transitions, segment_length: int) -> dict:
    """Sizes, goal transitions and coverage of segment-major rows.

    `return_*` and `normalized_*` (the keys of the CLI's score table) are per *segment*: 1 if the
    segment reaches the evaluation goal, else 0, i.e. 100 x the fraction of segments that get
    there. The stored episodes are split at every goal transition, so their returns (almost all
    1, in `episode_return_mean`) say little about the data.
    """

    lengths = episode_lengths(t)
    term = np.asarray(t.terminated, bool)
    seg = term.reshape(-1, segment_length)
    before = np.concatenate([np.zeros((seg.shape[0], 1), bool), seg[:, :-1]], axis=1)
    r = seg.any(axis=1).astype(np.float64)  # per segment: reached the evaluation goal
    s = 100.0 * r  # ref_min 0, ref_max 1
    return {
        "transitions": int(t.size),
        "episodes": int(len(lengths)),
        "segments": int(seg.shape[0]),
        "segment_length": segment_length,
        "terminations": int(term.sum()),
        "truncations": int(np.sum(t.truncated)),
        "goal_entries": int(np.sum(seg & ~before)),  # outside -> inside the goal disc
        "free_cell_coverage": coverage(layout, t.obs[:, :2]),
        "score_unit": "segment (1 if it reaches the evaluation goal)",
        "return_mean": float(r.mean()),
        "return_std": float(r.std()),
        "return_min": float(r.min()),
        "return_max": float(r.max()),
        "normalized_mean": float(s.mean()),
        "normalized_std": float(s.std()),
        "normalized_min": float(s.min()),
        "normalized_max": float(s.max()),
        "episode_return_mean": float(episode_returns(t.reward, lengths).mean()),
        "length_mean": float(lengths.mean()),
    }


def describe(data: MazeData, kind: str, tier: str, reference: dict, stats: dict) -> str:
    starts = {
        "play": "the layout's hand-picked play cells",
        "diverse": "uniformly random free cells",
    }[kind]
    ctrl = reference["expert"]
    return (
        f"jaxo2o {tier}-tier dataset, D4RL AntMaze-style recipe. Task: {data.task} (point mass, "
        f"{data.episode_length}-step episodes, reward 1 and termination within "
        f"{mz.GOAL_RADIUS} cells of the goal). Kind {kind}: a waypoint controller (BFS shortest "
        f"path over the cells, PD law kp {data.kp:g} kd {data.kd:g}, Gaussian action noise "
        f"{data.action_noise:g}) in {stats['segments']} segments of {data.segment_length} "
        f"steps ended by the time limit; starts and commanded goals are {starts}, a new goal "
        "whenever one is reached. Rewards and terminals relabelled for the evaluation goal on "
        "every transition (D4RL's sparse relabelling); the segment goes on through them, so "
        "episodes here end at each goal-reaching transition. Reference scores 0 and 1 "
        f"(normalized = 100 x success rate); the noisy controller's success from the start: "
        f"{100 * ctrl['success_rate']:.1f}% ({ctrl['episodes']} episodes). Data: "
        f"{stats['transitions']} transitions, {stats['terminations']} goal transitions "
        f"({stats['goal_entries']} entries), {100 * stats['return_mean']:.0f}% of segments reach "
        f"the goal, {100 * stats['free_cell_coverage']:.0f}% of free "
        f"cells visited. Recipe hash {maze_recipe_hash(data, kind)}."
    )


# --------------------------------------------------------------------------- generation
def controller_reference(env: mz.PointMaze, data: MazeData, key: jax.Array) -> dict:
    """The controller's success from the start state, with the data's noise and without."""
    n = data.reference_episodes
    out = {}
    for name, noise, k in (
        ("expert", data.action_noise, key),
        ("noise_free", 0.0, jax.random.fold_in(key, 1)),
    ):
        success, steps = controller_episodes(env, k, n, noise, data.kp, data.kd)
        out[name] = {
            "policy": f"waypoint controller, action noise {noise:g}",
            "episodes": n,
            "success_rate": float(success.mean()),
            "return_mean": float(success.mean()),
            "steps_to_goal_mean": float(steps[success].mean()) if success.any() else None,
        }
    out["random"] = {
        "policy": "a policy that never reaches the goal (D4RL AntMaze's ref_min_score 0)",
        "return_mean": 0.0,
    }
    return out


def generate_maze(
    data: MazeData,
    tier: str,
    kinds: tuple[str, ...] = MAZE_KINDS,
    *,
    progress: bool = True,
    log: Log = _log,
) -> dict[str, Path]:
    """Make the given kinds of one maze task; return {kind: dataset folder}."""
    del progress  # one compiled call per `rollout_envs` segments: no bar needed

    for k in kinds:
        _check_kind(k)
    t_start = time.perf_counter()
    env = make_env(data.task, episode_length=data.episode_length)
    k_ref, k_data = jax.random.split(jax.random.PRNGKey(data.seed))
    reference = controller_reference(env, data, k_ref)
    log(
        f"[{data.task}] controller success from the start: "
        f"{100 * reference['expert']['success_rate']:.1f}% (noise {data.action_noise:g}), "
        f"{100 * reference['noise_free']['success_rate']:.1f}% noise-free"
    )
    roller = SegmentRoller(env, data)
    prov = provenance()
    out: dict[str, Path] = {}
    for kind in kinds:
        t0 = time.perf_counter()
        t = roller.collect(
            jax.random.fold_in(k_data, MAZE_KINDS.index(kind)), kind, data.segments_of(kind)
        )
        rollout_s = time.perf_counter() - t0
        stats = data_stats(env.layout, t, data.segment_length)
        ds_id = dataset_id(data.task, kind, tier)
        meta = {
            "task": data.task,
            "kind": kind,
            "tier": tier,
            "backend": None,
            "episode_length": data.episode_length,
            "recipe_hash": maze_recipe_hash(data, kind),
            "recipe": maze_recipe_dict(data, kind),
            "reference": reference,
            "data": stats,
            "rollout_seconds": rollout_s,
            "generation_seconds_so_far": time.perf_counter() - t_start,
            "provenance": prov,
        }
        out[kind] = write_dataset(
            ds_id,
            t,
            description=describe(data, kind, tier, reference, stats),
            ref_min_score=0.0,
            ref_max_score=1.0,
            project_metadata=meta,
            observation_size=env.observation_size,
            action_size=env.action_size,
            algorithm_name="waypoint controller",
            overwrite=True,
        )
        log(
            f"[{data.task}] wrote {ds_id}: {stats['transitions']} transitions "
            f"({rollout_s:.1f} s of rollouts), {stats['terminations']} goal transitions, "
            f"{100 * stats['free_cell_coverage']:.0f}% of free cells"
        )
    log(f"[{data.task}] done in {time.perf_counter() - t_start:.0f} s")
    return out
