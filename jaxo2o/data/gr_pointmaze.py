"""`D4RL/pointmaze`-recipe datasets made on the device, on Gymnasium-Robotics' PointMaze v3 (MJX).

The recipe is that of Minari's `D4RL/pointmaze/{umaze,medium,large}-v2` (spec
`standard_tasks.md` C.4: minari-dataset-generation-scripts `scripts/pointmaze/
create_pointmaze_dataset.py`), stepped here on `envs/gr_maze.py`'s MJX port:
- env `PointMaze_{UMaze,Medium,Large}[Dense]-v3` with `continuing_task=True, reset_target=True`
  and a 1e6-step limit: the env never terminates, and on reaching the goal it draws a new one;
- action = the waypoint PD controller (`envs/gr_waypoints.py`) + N(0, 0.5^2) noise, clipped to
  [-1, 1];
- an episode is cut (marked truncated, never terminated) at the step that reaches the goal
  (`info["success"]`, d <= 0.45 from the goal the step is paid against), and the stream goes on
  without a reset: the next episode's first observation is that step's observation, which still
  carries the old goal (the env redraws it after building the observation); the step after
  shows the new one. Rewards are the env's (sparse `1{d <= 0.45}`, or dense `exp(-d)`).

`rollout_envs` such streams are vmapped and stepped in a compiled `lax.scan` of `chunk_steps`
steps per call; each stream starts from its own reset and its last, unfinished episode is marked
truncated (as Minari truncates an open episode when the dataset is written). Rows are
stream-major. The Minari dataset (`minari_io.write_dataset`) stores the recording env spec and
the D4RL-style evaluation spec the public datasets store (`maze_standard.point_eval_spec`).
Reference scores, as Minari computes them for the public sets: the mean return of 100 episodes
of the evaluation env under uniform random actions (min) and the noise-free controller (max).

Not reproduced: the public sets' `infos/` (success, qpos, qvel, goal) are not stored; the
observations are stored flat (`[achieved_goal, desired_goal, x, y, vx, vy]`, the reader's
flattening of the Dict space), not as the Dict's sub-groups; one 1e6-step stream there is
`rollout_envs` shorter streams here (`rollout_envs` reset starts and forced last truncations);
the random streams are JAX's. Streams of 10,000 steps (the default 10 streams at 100k rows) give the
C collector's episode-length distribution (KS p = 0.998 against 150k DataCollector steps);
streams of 1,000 make the complete episodes shorter, as the long ones are more often cut by the
stream's end (p = 0.009; `results/gr-pointmaze-data/README.md`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxo2o.core.transitions import Transitions
from jaxo2o.data.dataset import dataset_id, episode_lengths, episode_returns, normalized_score
from jaxo2o.data.maze_standard import (
    COLLECTION_STEPS,
    point_collection_spec,
    point_eval_spec,
    point_layout,
)
from jaxo2o.data.minari_io import write_dataset
from jaxo2o.data.recipe import GR_MAZE_KINDS
from jaxo2o.envs.base import EnvState
from jaxo2o.envs.gr_maze import GOAL_THRESHOLD, TASK_SPECS, GRMaze
from jaxo2o.envs.gr_waypoints import KD, KP, WaypointController
from jaxo2o.provenance import provenance

GR_GENERATOR_VERSION = 1  # bump when the code changes what it makes from a recipe

Log = Callable[[str], None]


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class GRPointMazeData:
    """How the `d4rl` dataset of one PointMaze v3 task is made, in one tier (a `tiers.py` line)."""

    task: str  # PointMaze_{UMaze,Medium,Large}[Dense]-v3
    size: int  # transitions
    action_noise: float = 0.5  # std of the Gaussian added to the controller's action
    kp: float = KP  # the controller's PD gains
    kd: float = KD
    rollout_envs: int = 10  # streams stepped side by side (10,000 steps each at 100k rows)
    chunk_steps: int = 1000  # steps per compiled call
    reference_episodes: int = 100  # evaluation-env episodes per reference score (Minari: 100)
    seed: int = 0
    backend: str = "mjx"
    kinds: ClassVar[tuple[str, ...]] = GR_MAZE_KINDS

    def __post_init__(self):
        point_layout(self.task)
        for name in ("size", "rollout_envs", "chunk_steps"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{self.task}: {name} must be > 0")
        if self.reference_episodes < 100:
            raise ValueError(f"{self.task}: reference_episodes must be >= 100")

    @property
    def episode_length(self) -> int:
        """The evaluation env's time limit (the registered one)."""
        return TASK_SPECS[self.task].time_limit

    @property
    def steps_per_env(self) -> int:
        return math.ceil(self.size / self.rollout_envs)


def _check_kind(kind: str) -> str:
    if kind not in GR_MAZE_KINDS:
        raise ValueError(f"kind: unknown kind {kind!r}; choose one of {GR_MAZE_KINDS}")
    return kind


def gr_recipe_dict(data: GRPointMazeData, kind: str) -> dict[str, Any]:
    """Everything that determines the dataset, the env specs included."""
    return {
        "generator_version": GR_GENERATOR_VERSION,
        "kind": _check_kind(kind),
        **dataclasses.asdict(data),
        "env_spec": point_collection_spec(data.task).to_json(),
        "eval_env_spec": point_eval_spec(data.task).to_json(),
    }


def gr_recipe_hash(data: GRPointMazeData, kind: str) -> str:
    text = json.dumps(gr_recipe_dict(data, kind), sort_keys=True, default=list)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def collection_env(task: str) -> GRMaze:
    """The recording env: continuing, goals redrawn on success, 1e6-step limit."""
    return GRMaze(task, episode_length=COLLECTION_STEPS, continuing_task=True, reset_target=True)


def evaluation_env(task: str) -> GRMaze:
    """The D4RL-style evaluation env of `point_eval_spec` (one goal cell, registered limit)."""
    spec = point_eval_spec(task)
    kw = spec.kwargs
    return GRMaze(
        task,
        episode_length=int(spec.max_episode_steps),
        continuing_task=bool(kw.get("continuing_task", True)),
        reset_target=bool(kw.get("reset_target", False)),
        maze_map=tuple(tuple(r) for r in kw["maze_map"]),
    )


class StreamRoller:
    """`rollout_envs` noisy-controller streams, `chunk_steps` steps per compiled call."""

    def __init__(self, data: GRPointMazeData):
        self.data = data
        self.env = collection_env(data.task)
        self.ctrl = WaypointController(self.env, data.kp, data.kd)
        self._chunk = jax.jit(jax.vmap(self._steps))
        self._reset = jax.jit(jax.vmap(self.env.reset))
        self.compile_seconds = 0.0
        self.run_seconds = 0.0

    def step(self, state: EnvState, key: jax.Array) -> tuple[EnvState, Transitions]:
        """One recipe step of one stream: the stored row, the episode cut at success."""
        a = self.ctrl(state.obs, key, self.data.action_noise)
        new, res = self.env.step(state, a)
        # the goal the step is paid against is the one its observation carries
        success = jnp.linalg.norm(res.next_obs[0:2] - res.next_obs[2:4]) <= GOAL_THRESHOLD
        row = Transitions(state.obs, a, res.reward, res.next_obs, jnp.array(False), success)
        return new, row

    def _steps(self, state: EnvState, key: jax.Array) -> tuple[EnvState, jax.Array, Transitions]:
        def body(carry, _):
            s, k = carry
            k, sub = jax.random.split(k)
            s, row = self.step(s, sub)
            return (s, k), row

        (state, key), rows = jax.lax.scan(body, (state, key), None, self.data.chunk_steps)
        return state, key, rows

    def collect(self, key: jax.Array) -> Transitions:
        """`data.size` rows (numpy, stream-major; each stream's last row truncated)."""
        d = self.data
        k_reset, k_run = jax.random.split(key)
        state = self._reset(jax.random.split(k_reset, d.rollout_envs))
        keys = jax.random.split(k_run, d.rollout_envs)
        t0 = time.perf_counter()
        fn = self._chunk.lower(state, keys).compile()
        self.compile_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        parts = []
        for _ in range(math.ceil(d.steps_per_env / d.chunk_steps)):
            state, keys, rows = fn(state, keys)
            parts.append(jax.device_get(rows))
        self.run_seconds = time.perf_counter() - t0
        t = Transitions(*(np.concatenate(x, axis=1) for x in zip(*parts, strict=True)))
        t = Transitions(*(x[:, : d.steps_per_env] for x in t))
        trunc = t.truncated.copy()
        trunc[:, -1] = True  # a stream's open episode ends with it
        t = t._replace(truncated=trunc)
        t = Transitions(*(x.reshape(-1, *x.shape[2:])[: d.size] for x in t))
        trunc = t.truncated.copy()
        trunc[-1] = True
        return t._replace(truncated=trunc)


def _episode_returns(env: GRMaze, policy: Callable, key: jax.Array, n: int) -> np.ndarray:
    """Returns of `n` full episodes of `env` (it never terminates: continuing task)."""

    def run(k):
        k_reset, k_act = jax.random.split(k)

        def body(s, kk):
            s, res = env.step(s, policy(s.obs, kk))
            return s, res.reward

        _, r = jax.lax.scan(body, env.reset(k_reset), jax.random.split(k_act, env.episode_length))
        return r.sum()

    return np.asarray(jax.jit(jax.vmap(run))(jax.random.split(key, n)), np.float64)


def reference_scores(data: GRPointMazeData, key: jax.Array) -> dict[str, Any]:
    """Mean returns on the evaluation env: uniform random actions (min), the noise-free
    controller (max); with their success rates (return > 0 under the sparse reward)."""
    env = evaluation_env(data.task)
    ctrl = WaypointController(env, data.kp, data.kd)
    policies = {
        "random": ("uniform random actions", lambda o, k: jax.random.uniform(k, (2,), None, -1, 1)),
        "expert": ("noise-free waypoint controller", lambda o, k: ctrl(o)),
    }
    out = {}
    for i, (name, (text, pol)) in enumerate(policies.items()):
        r = _episode_returns(env, pol, jax.random.fold_in(key, i), data.reference_episodes)
        out[name] = {
            "policy": text,
            "episodes": int(len(r)),
            "return_mean": float(r.mean()),
            "return_std": float(r.std()),
            "success_rate": float(np.mean(r > 0)),
        }
    return out


def data_stats(t: Transitions, data: GRPointMazeData, ref: dict) -> dict[str, Any]:
    """Sizes, episode lengths and returns; normalized by the evaluation env's references
    (the data's episodes are cut at success, so their returns are 0 or 1 under the sparse
    reward: the normalized values are for the CLI's tables, not a policy's score)."""
    lengths = episode_lengths(t)
    rets = episode_returns(t.reward, lengths)
    norm = normalized_score(rets, ref["random"]["return_mean"], ref["expert"]["return_mean"])
    d = np.linalg.norm(t.next_obs[:, 0:2] - t.next_obs[:, 2:4], axis=1)
    return {
        "transitions": int(t.size),
        "episodes": int(len(lengths)),
        "streams": data.rollout_envs,
        "successes": int(np.sum(d <= GOAL_THRESHOLD)),
        "terminations": int(np.sum(t.terminated)),
        "truncations": int(np.sum(t.truncated)),
        "length_mean": float(lengths.mean()),
        "length_median": float(np.median(lengths)),
        "return_mean": float(rets.mean()),
        "return_std": float(rets.std()),
        "return_min": float(rets.min()),
        "return_max": float(rets.max()),
        "normalized_mean": float(norm.mean()),
        "normalized_std": float(norm.std()),
        "normalized_min": float(norm.min()),
        "normalized_max": float(norm.max()),
        "reward_sum": float(np.sum(t.reward)),
    }


def describe(data: GRPointMazeData, tier: str, ref: dict, stats: dict) -> str:
    return (
        f"jaxo2o {tier}-tier dataset, the D4RL/pointmaze recipe on {data.task} (MJX port of "
        "Gymnasium-Robotics' env, continuing_task=True, reset_target=True): waypoint PD "
        f"controller (kp {data.kp:g}, kd {data.kd:g}) + N(0, {data.action_noise:g}^2) action "
        "noise, clipped to [-1, 1]; an episode is cut (truncated) at each step that reaches "
        f"the goal, the env going on with its new goal; {data.rollout_envs} streams of "
        f"{data.steps_per_env} steps. Data: {stats['transitions']} transitions in "
        f"{stats['episodes']} episodes (mean length {stats['length_mean']:.1f}). Reference "
        f"returns on the evaluation env ({ref['random']['episodes']} episodes each): random "
        f"{ref['random']['return_mean']:.2f}, controller {ref['expert']['return_mean']:.2f}. "
        f"Recipe hash {gr_recipe_hash(data, 'd4rl')}."
    )


def generate_gr_pointmaze(
    data: GRPointMazeData,
    tier: str,
    kinds: tuple[str, ...] = GR_MAZE_KINDS,
    *,
    progress: bool = True,
    log: Log = _log,
) -> dict[str, Path]:
    """Make (and write) the given kinds of one PointMaze v3 line; return {kind: folder}."""
    del progress  # a few compiled calls: no bar needed
    for k in kinds:
        _check_kind(k)
    t_start = time.perf_counter()
    k_ref, k_data = jax.random.split(jax.random.PRNGKey(data.seed))
    out: dict[str, Path] = {}
    for kind in kinds:
        roller = StreamRoller(data)
        t0 = time.perf_counter()
        t = roller.collect(jax.random.fold_in(k_data, GR_MAZE_KINDS.index(kind)))
        rollout_s = time.perf_counter() - t0
        ref = reference_scores(data, k_ref)
        stats = data_stats(t, data, ref)
        ds_id = dataset_id(data.task, kind, tier)
        meta = {
            "task": data.task,
            "kind": kind,
            "tier": tier,
            "backend": data.backend,
            "episode_length": data.episode_length,
            "recipe_hash": gr_recipe_hash(data, kind),
            "recipe": gr_recipe_dict(data, kind),
            "reference": ref,
            "data": stats,
            "compile_seconds": roller.compile_seconds,
            "run_seconds": roller.run_seconds,
            "rollout_seconds": rollout_s,
            "generation_seconds_so_far": time.perf_counter() - t_start,
            "provenance": provenance(),
        }
        out[kind] = write_dataset(
            ds_id,
            t,
            description=describe(data, tier, ref, stats),
            ref_min_score=ref["random"]["return_mean"],
            ref_max_score=ref["expert"]["return_mean"],
            project_metadata=meta,
            observation_size=roller.env.observation_size,
            action_size=roller.env.action_size,
            algorithm_name=f"waypoint PD controller + N(0, {data.action_noise:g}^2) action noise",
            overwrite=True,
            env_spec=point_collection_spec(data.task),
            eval_env_spec=point_eval_spec(data.task),
        )
        log(
            f"[{data.task}] wrote {ds_id}: {stats['transitions']} transitions, "
            f"{stats['episodes']} episodes (compile {roller.compile_seconds:.1f} s, run "
            f"{roller.run_seconds:.1f} s); references random {ref['random']['return_mean']:.2f}, "
            f"controller {ref['expert']['return_mean']:.2f}"
        )
    log(f"[{data.task}] done in {time.perf_counter() - t_start:.0f} s")
    return out
