"""The tiers: per tier, the tasks, their datasets' sizes and the budgets that make them.

- `smoke`: the tiny pure-JAX `point` task, for tests (seconds).
- `quick`: what `make bench` runs on a 2-core CPU. Two cheap Brax tasks on which a small SAC
  (2x64, learning rate 1e-3) reaches a real expert within a few minutes: every dataset of the tier
  is made in about 20 minutes on 2 cores (measured: results/datasets-quick.md). And the three
  point-mass mazes (`play`, `diverse`; `jaxo2o/data/maze.py`), about 40 s each.
- `paper`: D4RL's tasks and sizes (halfcheetah, hopper, walker2d, ant; 1M transitions per
  rollout dataset; SAC 2x256 for 1M steps). Defined, not run here: it needs an accelerator.
  The mazes with AntMaze's 1M transitions per dataset.

A tier line is a `TaskData` (SAC-made kinds) or a `MazeData` (the mazes' kinds).

How each kind is made from the numbers below: `jaxo2o/data/generate.py`. The O2O run settings
of each tier live in `benchmarks/suite.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

from jaxo2o.data.maze import MazeData, MazeSizes
from jaxo2o.data.recipe import ALL_KINDS, BehaviourSAC, DatasetSizes, TaskData
from jaxo2o.envs.maze import LAYOUTS


@dataclass(frozen=True)
class Tier:
    name: str
    tasks: tuple[TaskData | MazeData, ...]
    kinds: tuple[str, ...] = ALL_KINDS  # each task makes those of its own kinds among these

    def task(self, name: str) -> TaskData | MazeData:
        for t in self.tasks:
            if t.task == name:
                return t
        raise ValueError(
            f"task: {name!r} is not in the {self.name} tier; choose from "
            f"{tuple(t.task for t in self.tasks)}"
        )


SMOKE = Tier(
    name="smoke",
    tasks=(
        TaskData(
            task="point",
            episode_length=100,
            sac=BehaviourSAC(
                online_steps=3_000,
                warmup_steps=300,
                eval_every=300,
                eval_episodes=5,
                batch_size=64,
                hidden=(32, 32),
                learning_rate=1e-3,
            ),
            sizes=DatasetSizes(random=2_000, medium=2_000, expert=2_000),
            rollout_envs=16,
            rollout_chunk=100,
        ),
    ),
)


def _mazes(sizes: dict[str, int], rollout_envs: int) -> tuple[MazeData, ...]:
    """The three maze tasks, `sizes[layout]` transitions per kind, the layouts' time limits."""
    return tuple(
        MazeData(
            task=f"pointmaze-{name}",
            sizes=MazeSizes(play=n, diverse=n),
            episode_length=LAYOUTS[name].time_limit,
            rollout_envs=rollout_envs,
        )
        for name, n in sizes.items()
    )


# Quick maze sizes: 100 / 200 / 300 segments of 1000 steps. Measured: the `diverse` data visits
# every free cell and enters the goal region 400 / 400 / 240 times, the `play` data 600 / 1100 /
# 360 times; one dataset takes about 20 s to make and write on 2 busy cores.
QUICK_MAZES = _mazes({"umaze": 100_000, "medium": 200_000, "large": 300_000}, rollout_envs=100)

# A small SAC learns both tasks fast on the CPU: 2x64 networks at learning rate 1e-3 run ~4x
# more updates per second than 2x256. Measured (2 seeds, 40k steps): on inverted_double_pendulum
# it reaches the maximum return (~9360) between 24k and 36k steps; learning on rewards scaled by
# 0.1 (the returns are ~9000) got there by 28k and stayed there, unscaled it wavered first.
_QUICK_SAC = dict(batch_size=256, hidden=(64, 64), learning_rate=1e-3, eval_episodes=5)

QUICK = Tier(
    name="quick",
    tasks=(
        TaskData(
            task="inverted_double_pendulum",
            backend="generalized",
            episode_length=1000,
            sac=BehaviourSAC(
                online_steps=40_000,
                warmup_steps=1_000,
                eval_every=1_000,
                reward_scale=0.1,
                **_QUICK_SAC,
            ),
            sizes=DatasetSizes(random=100_000, medium=100_000, expert=100_000),
            rollout_envs=64,
            rollout_chunk=250,
        ),
        TaskData(
            task="reacher",
            backend="generalized",
            episode_length=100,
            # reacher is learnt in a few hundred updates: 8 environments per update give the
            # replay buffer (medium-replay) episodes of the whole way from random to medium
            sac=BehaviourSAC(
                online_steps=20_000,
                num_envs=8,
                warmup_steps=250,
                eval_every=250,
                **_QUICK_SAC,
            ),
            sizes=DatasetSizes(random=100_000, medium=100_000, expert=100_000),
            rollout_envs=64,
            rollout_chunk=100,
        ),
        *QUICK_MAZES,
    ),
)


_PAPER_SAC = BehaviourSAC(
    online_steps=1_000_000,
    warmup_steps=10_000,
    eval_every=10_000,
    eval_episodes=10,
    batch_size=256,
    hidden=(256, 256),
    learning_rate=3e-4,
)
_PAPER_SIZES = DatasetSizes(random=1_000_000, medium=1_000_000, expert=1_000_000)

PAPER = Tier(
    name="paper",
    tasks=tuple(
        TaskData(
            task=name,
            backend="mjx",  # MuJoCo's own physics, as D4RL
            episode_length=1000,
            sac=_PAPER_SAC,
            sizes=_PAPER_SIZES,
            rollout_envs=256,
            rollout_chunk=1000,
        )
        for name in ("halfcheetah", "hopper", "walker2d", "ant")
    )
    + _mazes({name: 1_000_000 for name in LAYOUTS}, rollout_envs=250),
)

TIERS: dict[str, Tier] = {t.name: t for t in (SMOKE, QUICK, PAPER)}
