"""D4RL's recipe on the project's own tasks: one SAC run per task gives every kind of dataset.

Per task (a `TaskData` line of a tier):
1. Train SAC from scratch through the shared Trainer (offline_steps=0, scratch protocol, uniform
   random warm-up), keeping the method state at every evaluation (a chunk hook) and the
   replay buffer, which stays in insertion order (its capacity is the whole run).
2. Reference returns, each the mean of >= 100 episodes of fresh rollouts: R_random with the
   randomly initialised policy that makes the `random` data, R_expert with the final SAC policy;
   both act stochastically, as they do in the data. normalized = 100 (R - R_random) /
   (R_expert - R_random). (D4RL's script used uniformly random actions for R_random; here the
   random policy is a randomly initialised network, whose larger actions cost more on tasks with
   an action penalty, e.g. reacher; its own return keeps `random` data at 0. The uniform-action
   return is recorded in the metadata too.)
3. The medium policy: the snapshot whose stochastic return is closest to
   R_random + medium_fraction (R_expert - R_random) (one third, D4RL's "about one third of the
   expert"). Candidates are snapshots taken after the warm-up and no later than the first one
   whose deterministic evaluation reaches half the range (the policy is "stopped early"); the
   few whose deterministic return is closest to the target are rolled out stochastically and the
   closest stochastic return wins (ties: the earlier snapshot).
4. Datasets: `random` = rollouts of a randomly initialised SAC policy (stochastic), `medium` and
   `expert` = rollouts of the medium and final policies (stochastic, as D4RL), `medium-replay` =
   the replay buffer's first rows up to the medium snapshot, `medium-expert` = medium + expert.
   Rollouts keep whole episodes only (see `rollout`); the replay buffer's last, unfinished
   episode per environment is kept and marked truncated (bootstrapping through it is right).

Generation is cached: `ensure_datasets` makes only what is missing, incomplete or made from a
different recipe (the recipe hash in the dataset's metadata). The point-mass mazes' lines
(`MazeData`, kinds `play` and `diverse`) are made by `jaxo2o/data/maze.py` instead, the PointMaze
v3 lines (`GRPointMazeData`, kind `d4rl`) by `jaxo2o/data/gr_pointmaze.py`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxo2o.config import RunConfig, run_hparams
from jaxo2o.core.loop import Trainer
from jaxo2o.core.runner import ChunkHook, broadcast_tree, run_batch
from jaxo2o.core.transitions import Transitions
from jaxo2o.data.artefact import use_artefact
from jaxo2o.data.dataset import (
    dataset_id,
    normalized_score,
)
from jaxo2o.data.gr_pointmaze import GRPointMazeData, generate_gr_pointmaze, gr_recipe_hash
from jaxo2o.data.maze import MazeData, generate_maze, maze_recipe_hash
from jaxo2o.data.minari_io import (
    PROJECT_KEY,
    clean_staging,
    dataset_folder,
    datasets_root,
    incomplete_reason,
    read_metadata,
    write_dataset,
)
from jaxo2o.data.recipe import (
    ALL_KINDS,
    GR_MAZE_KINDS,
    KINDS,
    MAZE_KINDS,
    TaskData,
    recipe_dict,
    recipe_hash,
)
from jaxo2o.data.rollout import Episodes, Roller, concat_episodes
from jaxo2o.data.tiers import TIERS, StandardData
from jaxo2o.envs import make_env
from jaxo2o.methods.sac import SAC, SACConfig
from jaxo2o.provenance import provenance

MEDIUM_CANDIDATES = 4  # snapshots rolled out stochastically when choosing the medium policy
MEDIUM_TOLERANCE = 0.05  # stop searching once a candidate is this close (fraction of the range)
HALF = 0.5  # candidates end at the first snapshot whose deterministic score reaches this

Log = Callable[[str], None]


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class GenerationError(RuntimeError):
    """The behaviour run did not give usable datasets (e.g. SAC did not beat random)."""


# --------------------------------------------------------------------------- tiers
def tiers() -> dict[str, Any]:
    """The tier definitions (`jaxo2o/data/tiers.py`)."""

    return TIERS


def get_tier(name: str) -> Any:
    all_tiers = tiers()
    if name not in all_tiers:
        raise ValueError(f"tier: unknown {name!r}; choose one of {tuple(all_tiers)}")
    return all_tiers[name]


# --------------------------------------------------------------------------- the SAC run
@dataclass
class BehaviourRun:
    """What the behaviour SAC run left: final policy, snapshots, evaluations, replay buffer."""

    final_state: Any
    snapshots: Any  # method states stacked on a leading axis, one per evaluation
    snapshot_steps: np.ndarray  # iteration after which each snapshot was taken
    eval_returns: np.ndarray  # deterministic evaluation return per snapshot (mean of episodes)
    buffer: Transitions  # numpy, rows in insertion order (iteration-major, then environment)
    num_envs: int
    compile_seconds: float
    run_seconds: float

    def snapshot(self, i: int) -> Any:
        return jax.tree.map(lambda x: x[i], self.snapshots)


# The behaviour SAC's target entropy per action dimension and log-std bounds: the values every
# dataset so far was made with (SAC's defaults until they moved to jaxrl's -0.5 and [-10, 2]).
# Explicit here so that a change of SAC's defaults does not change the datasets under an
# unchanged recipe hash; changing these means bumping GENERATOR_VERSION.
BEHAVIOUR_TARGET_ENTROPY_PER_DIM = -1.0
BEHAVIOUR_LOG_STD = (-20.0, 2.0)


def behaviour_method(data: TaskData):

    lo, hi = BEHAVIOUR_LOG_STD
    method = SAC(SACConfig(hidden=tuple(data.sac.hidden), log_std_min=lo, log_std_max=hi))
    lr = data.sac.learning_rate
    hp = method.default_hparams(
        actor_lr=lr,
        critic_lr=lr,
        init_temperature=data.sac.init_temperature,
        target_entropy_per_dim=BEHAVIOUR_TARGET_ENTROPY_PER_DIM,
    )
    return method, hp


def train_behaviour(
    data: TaskData, env: Any, method: Any, hp: Any, key: jax.Array, progress: bool = True
) -> BehaviourRun:
    """Run SAC from scratch through the shared runner, keeping a snapshot of the method state at
    every evaluation (a chunk hook) and the final replay buffer."""

    s = data.sac
    run = RunConfig(
        offline_steps=0,
        online_steps=s.online_steps,
        num_envs=s.num_envs,
        updates_per_step=1,
        warmup_steps=s.warmup_steps,
        warmup_random=True,
        batch_size=s.batch_size,
        buffer_capacity=s.online_steps * s.num_envs,  # never wraps: insertion order is kept
        online_eval_every=s.eval_every,
        eval_episodes=s.eval_episodes,
        protocol="scratch",
        progress=progress,
    )
    trainer = Trainer(method, env, run)

    class Snapshots(ChunkHook):
        states: list[Any] = []

        def after_chunk(self, phase: str, chunk: int, carry: Any) -> None:
            self.states.append(jax.device_get(jax.tree.map(lambda x: x[0], carry.state)))

    snaps = Snapshots()
    snaps.states = []
    res = run_batch(
        trainer,
        key[None],
        broadcast_tree(hp, 1),
        broadcast_tree(run_hparams(run, reward_scale=s.reward_scale), 1),
        devices=jax.devices()[:1],
        desc=f"SAC {data.task}",
        hooks=[snaps],
    )
    evals = np.asarray(res.metrics["online"]["eval_returns"][0]).mean(axis=-1)[1:]  # [0]: start
    steps = np.asarray(trainer.eval_steps()["online"][1:])
    return BehaviourRun(
        final_state=jax.tree.map(lambda x: x[0], res.state),
        snapshots=jax.tree.map(lambda *xs: np.stack(xs), *snaps.states),
        snapshot_steps=steps,
        eval_returns=evals,
        buffer=Transitions(*(np.asarray(x[0]) for x in res.buffer.data)),
        num_envs=s.num_envs,
        compile_seconds=res.compile_seconds,
        run_seconds=res.run_seconds,
    )


# --------------------------------------------------------------------------- pieces
def replay_episodes(buffer: Transitions, rows: int, num_envs: int) -> Episodes:
    """The first `rows` buffer rows as episodes (per environment, in order of time).

    Rows are iteration-major (row = iteration * num_envs + env). Each environment's last,
    unfinished episode is kept and marked truncated: its next observations are the true ones.
    """
    rows -= rows % num_envs
    pieces, lengths = [], []
    for j in range(num_envs):
        seq = Transitions(*(x[j:rows:num_envs] for x in buffer))
        seq = seq._replace(truncated=seq.truncated.copy())
        done = seq.terminated | seq.truncated
        if not done[-1]:
            seq.truncated[-1] = True
            done[-1] = True
        ends = np.flatnonzero(done)
        lengths.append(np.diff(np.concatenate([[-1], ends])))
        pieces.append(seq)
    t = Transitions(*(np.concatenate(x, axis=0) for x in zip(*pieces, strict=True)))
    return Episodes(t, np.concatenate(lengths).astype(np.int64))


def choose_medium(
    run: BehaviourRun,
    roller: Roller,
    hp: Any,
    key: jax.Array,
    ref: tuple[float, float],
    data: TaskData,
    progress: bool,
) -> tuple[int, list[dict]]:
    """Index of the medium snapshot (module docstring, step 3) and the candidates tried."""
    lo, hi = ref
    frac = (run.eval_returns - lo) / (hi - lo)
    n = len(frac) - 1  # the last snapshot is the expert itself
    eligible = np.flatnonzero(run.snapshot_steps[:n] > data.sac.warmup_steps)
    if eligible.size == 0:
        raise GenerationError(
            f"{data.task}: no snapshot after the warm-up to pick a medium policy from; "
            "lower sac.eval_every or sac.warmup_steps"
        )
    reached = eligible[frac[eligible] >= HALF]
    last = reached[0] if reached.size else eligible[-1]
    eligible = eligible[eligible <= last]
    ranked = eligible[np.argsort(np.abs(frac[eligible] - data.medium_fraction), kind="stable")]
    tried = []
    for rank, i in enumerate(ranked[:MEDIUM_CANDIDATES]):
        eps = roller.collect(
            run.snapshot(int(i)),
            hp,
            jax.random.fold_in(key, int(i)),
            episodes=roller.n_envs,
            desc=f"{data.task} medium candidate {rank + 1}",
            progress=progress,
        )
        stoch = float(np.mean(eps.returns))
        tried.append(
            {
                "snapshot": int(i),
                "step": int(run.snapshot_steps[i]),
                "deterministic_return": float(run.eval_returns[i]),
                "stochastic_return": stoch,
                "stochastic_fraction": (stoch - lo) / (hi - lo),
                "episodes": int(len(eps.lengths)),
            }
        )
        if abs(tried[-1]["stochastic_fraction"] - data.medium_fraction) < MEDIUM_TOLERANCE:
            break
    best = min(
        tried, key=lambda c: (abs(c["stochastic_fraction"] - data.medium_fraction), c["step"])
    )
    return best["snapshot"], tried


def episode_stats(eps: Episodes, ref: tuple[float, float]) -> dict[str, float]:
    r = eps.returns
    s = normalized_score(r, *ref)
    return {
        "transitions": int(eps.size),
        "episodes": int(len(eps.lengths)),
        "terminations": int(np.sum(eps.transitions.terminated)),
        "truncations": int(np.sum(eps.transitions.truncated)),
        "return_mean": float(r.mean()),
        "return_std": float(r.std()),
        "return_min": float(r.min()),
        "return_max": float(r.max()),
        "length_mean": float(eps.lengths.mean()),
        "normalized_mean": float(s.mean()),
        "normalized_std": float(s.std()),
        "normalized_min": float(s.min()),
        "normalized_max": float(s.max()),
    }


KIND_TEXT = {
    "random": "rollouts of a randomly initialised SAC policy (stochastic actions)",
    "medium": "rollouts of the SAC policy stopped at about {frac:.0%} of the expert's return "
    "(snapshot after {medium_step} SAC iterations; stochastic actions)",
    "expert": "rollouts of the final SAC policy after {sac_steps} iterations (stochastic actions)",
    "medium-replay": "SAC's replay buffer up to the medium policy ({medium_step} iterations, "
    "uniform random actions in the first {warmup} transitions)",
    "medium-expert": "the medium rollouts followed by the expert rollouts",
}


def describe(data: TaskData, kind: str, tier: str, facts: dict, stats: dict) -> str:
    """The dataset's Minari description: recipe, reference scores and the data's score."""
    what = KIND_TEXT[kind].format(**facts)
    backend = "" if data.task == "point" else f", Brax {data.backend} backend"
    return (
        f"jaxo2o {tier}-tier dataset, D4RL-style recipe. Task: {data.task}{backend}, "
        f"{data.episode_length}-step episodes. Kind {kind}: {what}. Behaviour agent: SAC "
        f"{'x'.join(map(str, data.sac.hidden))}, {data.sac.online_steps} iterations x "
        f"{data.sac.num_envs} env(s) (one update each), batch {data.sac.batch_size}, "
        f"lr {data.sac.learning_rate:g}, "
        f"reward scale {data.sac.reward_scale:g}. "
        f"Reference returns (mean of {data.reference_episodes} episodes each): random "
        f"{facts['ref_min']:.2f} (the randomly initialised policy), expert {facts['ref_max']:.2f} "
        f"(final SAC policy), both stochastic. Data: {stats['transitions']} transitions in "
        f"{stats['episodes']} episodes, return {stats['return_mean']:.2f} +- "
        f"{stats['return_std']:.2f}, normalized score {stats['normalized_mean']:.1f} +- "
        f"{stats['normalized_std']:.1f} (100 (R - R_random) / (R_expert - R_random)). "
        f"Recipe hash {recipe_hash(data, kind)}."
    )


# --------------------------------------------------------------------------- one task
def generate_task(
    data: TaskData,
    tier: str,
    kinds: tuple[str, ...] = KINDS,
    *,
    siblings: tuple[str, ...] = (),
    progress: bool = True,
    log: Log = _log,
) -> dict[str, Path]:
    """Make the given kinds of one task from one SAC run; return {kind: dataset folder}.

    `siblings` are kinds of the task that already exist from the same recipe. The run is
    deterministic on one machine, but numerics can differ across machines: a sibling whose
    reference scores or medium policy differ from this run's is remade too, so that every kind
    of a task always shares its reference scores.
    """
    for k in kinds:
        if k not in KINDS:
            raise ValueError(f"kind: unknown {k!r}; choose one of {KINDS}")
    t_start = time.perf_counter()
    env = make_env(data.task, data.backend, data.episode_length)
    method, hp = behaviour_method(data)
    keys = jax.random.split(jax.random.PRNGKey(data.seed), 9)
    k_train, k_init, k_ref_rand, k_ref_exp, k_cand, k_rand, k_med, k_exp, k_ref_uniform = keys

    log(f"[{data.task}] SAC behaviour run: {data.sac.online_steps} steps (compiling first)")
    run = train_behaviour(data, env, method, hp, k_train, progress)
    log(
        f"[{data.task}] SAC: compile {run.compile_seconds:.0f} s, run {run.run_seconds:.0f} s; "
        f"deterministic evaluation {run.eval_returns[0]:.1f} -> {run.eval_returns[-1]:.1f}"
    )
    roller = Roller(env, method, data.rollout_envs, data.rollout_chunk)
    random_state = method.init(k_init, env.observation_size, env.action_size, hp)
    refs = reference_rollouts(
        data, roller, hp, random_state, run.final_state, (k_ref_rand, k_ref_uniform, k_ref_exp),
        progress, log,
    )  # fmt: skip
    need_medium = any(k in kinds + siblings for k in MEDIUM_KINDS)
    medium_i, tried = -1, []
    if need_medium:
        medium_i, tried = choose_medium(run, roller, hp, k_cand, refs.scores, data, progress)
        c = next(t for t in tried if t["snapshot"] == medium_i)
        log(
            f"[{data.task}] medium policy: snapshot after {c['step']} steps, stochastic return "
            f"{c['stochastic_return']:.2f} ({100 * c['stochastic_fraction']:.1f} normalized)"
        )
    medium_step = int(run.snapshot_steps[medium_i]) if need_medium else None
    kinds = kinds + stale_siblings(data, tier, kinds, siblings, refs.scores, medium_step, log)
    policies = {
        "random": (random_state, k_rand),
        "medium": (run.snapshot(medium_i) if need_medium else None, k_med),
        "expert": (run.final_state, k_exp),
    }
    episodes = KindEpisodes(data, roller, hp, policies, progress)
    behaviour = {
        "sac_compile_seconds": run.compile_seconds,
        "sac_run_seconds": run.run_seconds,
        "snapshot_steps": run.snapshot_steps.tolist(),
        "snapshot_deterministic_returns": run.eval_returns.tolist(),
        "medium_step": medium_step,
        "medium_candidates": tried,
    }
    facts = {
        "frac": data.medium_fraction,
        "medium_step": medium_step,
        "sac_steps": data.sac.online_steps,
        "warmup": data.sac.warmup_steps * data.sac.num_envs,
        "ref_min": refs.scores[0],
        "ref_max": refs.scores[1],
    }
    record = {"reference": refs.record(), "behaviour": behaviour, "provenance": provenance()}
    out: dict[str, Path] = {}
    for kind in kinds:
        if kind == "medium-replay":
            rows = int(run.snapshot_steps[medium_i]) * run.num_envs
            eps = replay_episodes(run.buffer, rows, run.num_envs)
        elif kind == "medium-expert":
            eps = concat_episodes(episodes("medium"), episodes("expert"))
        else:
            eps = episodes(kind)
        out[kind] = write_kind(data, tier, kind, eps, env, refs.scores, facts, record, t_start, log)
    log(f"[{data.task}] done in {time.perf_counter() - t_start:.0f} s")
    return out


MEDIUM_KINDS = ("medium", "medium-replay", "medium-expert")


@dataclass
class References:
    """The reference rollouts of a task: the random policy's, uniform actions', the expert's."""

    random: Episodes
    uniform: Episodes
    expert: Episodes

    @property
    def scores(self) -> tuple[float, float]:
        """(random, expert) mean returns: the normalized score's 0 and 100."""
        return float(self.random.returns.mean()), float(self.expert.returns.mean())

    def record(self) -> dict[str, Any]:
        """The reference returns as the dataset's metadata records them."""
        rows = {
            "random": ("randomly initialised SAC policy, stochastic (the random data's policy)",
                       self.random),
            "uniform_actions": ("uniform random actions (D4RL's R_random; not used for scores)",
                                self.uniform),
            "expert": ("final SAC policy, stochastic", self.expert),
        }  # fmt: skip
        return {
            name: {
                "policy": policy,
                "episodes": int(len(eps.lengths)),
                "return_mean": float(eps.returns.mean()),
                "return_std": float(eps.returns.std()),
            }
            for name, (policy, eps) in rows.items()
        }


def reference_rollouts(
    data: TaskData,
    roller: Roller,
    hp: Any,
    random_state: Any,
    expert_state: Any,
    keys: tuple[jax.Array, jax.Array, jax.Array],
    progress: bool,
    log: Log,
) -> References:
    """The reference episodes (random policy, uniform actions, expert); the expert must beat
    random actions."""
    k_rand, k_uniform, k_exp = keys
    n = data.reference_episodes
    collect = lambda state, key, what, **kw: roller.collect(
        state, hp, key, episodes=n, desc=f"{data.task} {what}", progress=progress, **kw
    )
    refs = References(
        random=collect(random_state, k_rand, "reference: random"),
        uniform=collect(random_state, k_uniform, "uniform random actions", uniform=True),
        expert=collect(expert_state, k_exp, "reference: expert"),
    )
    lo, hi = refs.scores
    log(
        f"[{data.task}] reference returns: random {lo:.2f}, expert {hi:.2f} (uniform "
        f"random actions: {refs.uniform.returns.mean():.2f})"
    )
    if not hi > lo:
        raise GenerationError(
            f"{data.task}: the final SAC policy ({hi:.2f}) does not beat random actions "
            f"({lo:.2f}); give the behaviour run more steps (sac.online_steps)"
        )
    return refs


def stale_siblings(
    data: TaskData,
    tier: str,
    kinds: tuple[str, ...],
    siblings: tuple[str, ...],
    ref: tuple[float, float],
    medium_step: int | None,
    log: Log,
) -> tuple[str, ...]:
    """The existing kinds of the task made by a run other than this one (other reference
    scores or medium snapshot): they are remade, so every kind shares one reference."""
    stale = []
    for k in siblings:
        meta = read_metadata(dataset_id(data.task, k, tier)).get(PROJECT_KEY, {})
        same = (meta.get("ref_min_score"), meta.get("ref_max_score")) == ref and (
            k not in MEDIUM_KINDS or meta.get("behaviour", {}).get("medium_step") == medium_step
        )
        if not same and k not in kinds:
            log(f"[{data.task}] {k}: made by a run that differs from this one; remaking it")
            stale.append(k)
    return tuple(stale)


class KindEpisodes:
    """The rollout datasets of a task (random, medium, expert), each collected once when first
    asked for (medium-expert reuses medium's and expert's)."""

    def __init__(self, data: TaskData, roller: Roller, hp: Any, policies: dict, progress: bool):
        self.data, self.roller, self.hp, self.progress = data, roller, hp, progress
        self.policies = policies  # kind -> (policy state, key)
        self.made: dict[str, Episodes] = {}

    def __call__(self, kind: str) -> Episodes:
        if kind not in self.made:
            state, key = self.policies[kind]
            self.made[kind] = self.roller.collect(
                state,
                self.hp,
                key,
                transitions=self.data.size_of(kind),
                uniform=False,
                desc=f"{self.data.task} {kind}",
                progress=self.progress,
            )
        return self.made[kind]


def write_kind(
    data: TaskData,
    tier: str,
    kind: str,
    eps: Episodes,
    env: Any,
    ref: tuple[float, float],
    facts: dict[str, Any],
    record: dict[str, Any],
    t_start: float,
    log: Log,
) -> Path:
    """Write one kind's dataset with its metadata (recipe, references, behaviour run, stats)."""
    stats = episode_stats(eps, ref)
    ds_id = dataset_id(data.task, kind, tier)
    meta = {
        "task": data.task,
        "kind": kind,
        "tier": tier,
        "backend": data.backend,
        "episode_length": data.episode_length,
        "recipe_hash": recipe_hash(data, kind),
        "recipe": recipe_dict(data, kind),
        "reference": record["reference"],
        "behaviour": record["behaviour"],
        "data": stats,
        "generation_seconds_so_far": time.perf_counter() - t_start,
        "provenance": record["provenance"],
    }
    folder = write_dataset(
        ds_id,
        eps.transitions,
        description=describe(data, kind, tier, facts, stats),
        ref_min_score=ref[0],
        ref_max_score=ref[1],
        project_metadata=meta,
        observation_size=env.observation_size,
        action_size=env.action_size,
        algorithm_name="SAC",
        overwrite=True,
    )
    log(
        f"[{data.task}] wrote {ds_id}: {stats['transitions']} transitions, "
        f"{stats['episodes']} episodes, normalized score {stats['normalized_mean']:.1f}"
    )
    return folder


# --------------------------------------------------------------------------- caching
def is_current(ds_id: str, expected_hash: str) -> tuple[bool, str]:
    """(True, "") if the dataset exists, is complete and was made from the expected recipe."""
    folder = dataset_folder(ds_id)
    if not folder.exists():
        return False, "missing"
    reason = incomplete_reason(ds_id)
    if reason:
        return False, f"incomplete ({reason})"

    meta = json.loads((folder / "data" / "metadata.json").read_text())
    found = meta.get(PROJECT_KEY, {}).get("recipe_hash")
    if found != expected_hash:
        return False, f"made from another recipe ({found} != {expected_hash})"
    return True, ""


@contextlib.contextmanager
def _task_lock(tier: str, task: str) -> Iterator[None]:
    """One generator per (tier, task) at a time, across processes."""
    lock_dir = datasets_root() / ".jaxo2o-locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"{tier}-{task}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def ensure_datasets(
    tier: str,
    tasks: tuple[str, ...] | None = None,
    kinds: tuple[str, ...] | None = None,
    *,
    progress: bool = True,
    log: Log = _log,
) -> list[str]:
    """Make the tier's datasets that are missing, incomplete or stale; return all their ids.

    Each task makes the asked kinds that are its own: the SAC kinds (`KINDS`) for a `TaskData`
    line, `play`/`diverse` for a maze (`MazeData`, made by `jaxo2o.data.maze.generate_maze`),
    `d4rl` for PointMaze v3 (`GRPointMazeData`, `jaxo2o.data.gr_pointmaze`).
    """

    t = get_tier(tier)
    names = tuple(d.task for d in t.tasks)
    kinds = tuple(kinds) if kinds else tuple(t.kinds)
    for k in kinds:
        if k not in ALL_KINDS:
            raise ValueError(f"kinds: unknown {k!r}; choose from {ALL_KINDS}")
    for name in tasks or ():
        if name not in names:
            raise ValueError(f"tasks: {name!r} is not in the {tier} tier; choose from {names}")
    ids = []
    for data in t.tasks:
        if tasks and data.task not in tasks:
            continue
        if isinstance(data, StandardData):  # the field's own datasets: read, never made here
            log(f"[{data.task}] reads the standard datasets from the Minari root; none to make")
            continue
        maze, gr = isinstance(data, MazeData), isinstance(data, GRPointMazeData)
        own, hash_of = (MAZE_KINDS, maze_recipe_hash) if maze else (KINDS, recipe_hash)
        if gr:
            own, hash_of = GR_MAZE_KINDS, gr_recipe_hash
        wanted = tuple(k for k in kinds if k in own)
        with _task_lock(tier, data.task):
            clean_staging()
            todo, current = [], []
            for k in own:
                ds_id = dataset_id(data.task, k, tier)
                # a committed artefact (`jaxo2o.data.artefact`) is the tier's dataset everywhere
                # (not a sibling that a new behaviour run may remake: kinds made here may then
                # have other reference scores than the artefacts', named in the log)
                if k in wanted and use_artefact(ds_id, hash_of(data, k), log=log):
                    continue
                ok, why = is_current(ds_id, hash_of(data, k))
                if ok:
                    current.append(k)
                elif k in wanted:
                    todo.append(k)
                    log(f"[{data.task}] {dataset_id(data.task, k, tier)}: {why}; will generate")
            if todo and maze:
                generate_maze(data, tier, tuple(todo), progress=progress, log=log)
            elif todo and gr:
                generate_gr_pointmaze(data, tier, tuple(todo), progress=progress, log=log)
            elif todo:
                generate_task(
                    data,
                    tier,
                    tuple(todo),
                    siblings=tuple(current),
                    progress=progress,
                    log=log,
                )
        ids += [dataset_id(data.task, k, tier) for k in wanted]
    return ids
