"""What a task's datasets are made from: the behaviour SAC run, the rollouts and the sizes.

A `TaskData` is one line of a tier (`jaxo2o/data/tiers.py`). Every kind of a task comes from the
same SAC run (D4RL's recipe), so a dataset's *recipe hash* covers the whole `TaskData` except the
sizes of the other kinds: changing the expert size remakes `expert` and `medium-expert` only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

KINDS = ("random", "medium", "medium-replay", "medium-expert", "expert")
MAZE_KINDS = ("play", "diverse")  # the point-mass mazes' kinds (AntMaze's), `jaxo2o/data/maze.py`
GR_MAZE_KINDS = ("d4rl",)  # Gymnasium-Robotics' PointMaze v3, `jaxo2o/data/gr_pointmaze.py`
ALL_KINDS = KINDS + MAZE_KINDS + GR_MAZE_KINDS
GENERATOR_VERSION = 2  # bump when the generation code changes what it makes from a recipe


@dataclass(frozen=True)
class BehaviourSAC:
    """The SAC run that produces the behaviour policies and the medium-replay buffer."""

    online_steps: int  # environment iterations (each steps `num_envs` environments)
    num_envs: int = 1
    warmup_steps: int = 1_000  # iterations of uniform random actions before updates start
    eval_every: int = 1_000  # iterations between snapshots (candidates for the medium policy)
    eval_episodes: int = 5  # deterministic evaluation episodes per snapshot
    batch_size: int = 256
    hidden: tuple[int, ...] = (256, 256)
    learning_rate: float = 3e-4  # actor and critic
    init_temperature: float = 1.0
    reward_scale: float = 1.0  # SAC learns on r * reward_scale; the data keeps the raw rewards


@dataclass(frozen=True)
class DatasetSizes:
    """Transitions per rollout dataset. `medium-replay` is what SAC's replay buffer held when the
    medium policy was taken (its size follows from the run); `medium-expert` is medium + expert."""

    random: int
    medium: int
    expert: int


@dataclass(frozen=True)
class TaskData:
    """How the datasets of one task are made, in one tier."""

    task: str
    backend: str = "generalized"  # Brax backend (ignored by the pure-JAX `point` task)
    episode_length: int = 1000
    sac: BehaviourSAC = field(default_factory=lambda: BehaviourSAC(online_steps=100_000))
    sizes: DatasetSizes = field(default_factory=lambda: DatasetSizes(100_000, 100_000, 100_000))
    rollout_envs: int = 64  # environments stepped side by side in the rollouts
    rollout_chunk: int = 250  # steps per compiled rollout call (the host gathers episodes)
    reference_episodes: int = 100  # episodes averaged for each reference return (D4RL: 100)
    medium_fraction: float = 1.0 / 3.0  # the medium policy's target, as a fraction of the range
    seed: int = 0

    def __post_init__(self):
        if self.reference_episodes < 100:
            raise ValueError(
                f"{self.task}: reference_episodes must be >= 100, got {self.reference_episodes}"
            )
        if not 0.0 < self.medium_fraction < 1.0:
            raise ValueError(f"{self.task}: medium_fraction must lie in (0, 1)")
        for name in ("random", "medium", "expert"):
            if getattr(self.sizes, name) <= 0:
                raise ValueError(f"{self.task}: sizes.{name} must be > 0")

    def size_of(self, kind: str) -> int | None:
        """The target number of transitions of a kind (None: follows from the SAC run)."""
        s = self.sizes
        return {
            "random": s.random,
            "medium": s.medium,
            "expert": s.expert,
            "medium-expert": s.medium + s.expert,
            "medium-replay": None,
        }[kind]


def _kind_sizes(data: TaskData, kind: str) -> dict[str, int]:
    used = {
        "random": ("random",),
        "medium": ("medium",),
        "expert": ("expert",),
        "medium-expert": ("medium", "expert"),
        "medium-replay": (),
    }[kind]
    return {k: getattr(data.sizes, k) for k in used}


def recipe_dict(data: TaskData, kind: str) -> dict:
    """Everything that determines one dataset, as plain JSON-able values."""
    if kind not in KINDS:
        raise ValueError(f"kind: unknown {kind!r}; choose one of {KINDS}")
    common = dataclasses.asdict(data)
    common.pop("sizes")
    return {
        "generator_version": GENERATOR_VERSION,
        "kind": kind,
        "sizes": _kind_sizes(data, kind),
        **common,
    }


def recipe_hash(data: TaskData, kind: str) -> str:
    """A short stable hash of `recipe_dict` (stored in the dataset's metadata)."""
    text = json.dumps(recipe_dict(data, kind), sort_keys=True, default=list)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
