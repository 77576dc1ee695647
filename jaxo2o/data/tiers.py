"""The tiers: per tier, the tasks, their datasets' sizes and the budgets that make them.

- `smoke`: the tiny pure-JAX `point` task, for tests (seconds).
- `quick`: what `make bench` runs on a 2-core CPU. Two cheap Brax tasks on which a small SAC
  (2x64, learning rate 1e-3) reaches a real expert within a few minutes: every dataset of the tier
  is made in about 20 minutes on 2 cores (measured: results/datasets-quick.md). And the three
  point-mass mazes (`play`, `diverse`; `jaxo2o/data/maze.py`), about 40 s each.
- `paper`: the field's standard locomotion benchmark: Gymnasium's `Hopper-v5`, `Walker2d-v5`,
  `HalfCheetah-v5` and `Ant-v5` (MJX ports, `envs.locomotion`) on the Minari datasets
  `mujoco/<body>/{simple,medium,expert}-v0`, read from the user's Minari root (`minari download`
  puts them there; never made or fetched here). Gymnasium-Robotics' AntMaze v4 on Minari's
  `D4RL/antmaze/*-v1` (the environments those datasets were recorded on, `play`/`diverse` as each
  maze has them). And the point-mass mazes with AntMaze's 1M transitions per dataset. Defined,
  not run here: it needs an accelerator.
- `quick-gr`: Gymnasium-Robotics' `PointMaze_{UMaze,Medium,Large}-v3` (MJX) with the
  `D4RL/pointmaze` recipe made on the device (`jaxo2o/data/gr_pointmaze.py`, kind `d4rl`), the
  quick tier's maze sizes: data with the standard physics for CPU runs (no suite runs it yet).

A tier line is a `TaskData` (SAC-made kinds), a `MazeData` (the mazes' kinds), a
`GRPointMazeData` (PointMaze v3's `d4rl` kind) or a `StandardData` (a standard task whose
datasets are the field's own).

How each kind is made from the numbers below: `jaxo2o/data/generate.py`. The O2O run settings
of each tier live in `benchmarks/suite.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

from jaxo2o.data.dataset import dataset_id
from jaxo2o.data.gr_pointmaze import GRPointMazeData
from jaxo2o.data.maze import MazeData, MazeSizes
from jaxo2o.data.maze_standard import MAZE_DATASETS, maze_kinds
from jaxo2o.data.recipe import ALL_KINDS, BehaviourSAC, DatasetSizes, TaskData
from jaxo2o.data.standard import STANDARD_KINDS, standard_dataset_id
from jaxo2o.envs.gr_maze import TASK_SPECS
from jaxo2o.envs.maze import LAYOUTS


@dataclass(frozen=True)
class StandardData:
    """A tier line on a standard task whose datasets are the field's published ones, read by
    their ids from the user's Minari root (`data.standard`); nothing is made for it."""

    task: str  # a Gymnasium id, e.g. "Hopper-v5"
    kinds: tuple[str, ...] = STANDARD_KINDS  # the kinds the task has data of
    backend: str = "mjx"  # the v5 tasks and the mazes always step MJX
    episode_length: int = 1000  # Gymnasium's time limit of the v5 tasks


TierLine = TaskData | MazeData | GRPointMazeData | StandardData


def tier_dataset_id(line: TierLine, kind: str, tier: str) -> str:
    """The Minari id of a tier line's dataset of `kind`: the standard id of a `StandardData`
    line (e.g. `mujoco/hopper/medium-v0`), else the id of the dataset made for the tier."""
    if isinstance(line, StandardData):
        return standard_dataset_id(line.task, kind)
    return dataset_id(line.task, kind, tier)


@dataclass(frozen=True)
class Tier:
    name: str
    tasks: tuple[TierLine, ...]
    kinds: tuple[str, ...] = ALL_KINDS  # each task makes those of its own kinds among these

    def task(self, name: str) -> TierLine:
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


# the paper tier's locomotion: Gymnasium's v5 tasks on their standard Minari datasets
PAPER_LOCOMOTION = ("Hopper-v5", "Walker2d-v5", "HalfCheetah-v5", "Ant-v5")

# the paper tier's AntMaze: the Gymnasium-Robotics mazes Minari's D4RL/antmaze sets were recorded
# on, each with the kinds it has (`data.maze_standard`) and its registered time limit
PAPER_ANTMAZE = tuple(task for task in MAZE_DATASETS if task.startswith("AntMaze_"))

PAPER = Tier(
    name="paper",
    tasks=tuple(StandardData(task=name) for name in PAPER_LOCOMOTION)
    + tuple(
        StandardData(
            task=name,
            kinds=maze_kinds(name),
            backend="mjx",
            episode_length=TASK_SPECS[name].time_limit,
        )
        for name in PAPER_ANTMAZE
    )
    + _mazes({name: 1_000_000 for name in LAYOUTS}, rollout_envs=250),
)

# the quick tier's maze sizes on Gymnasium-Robotics' PointMaze v3 (D4RL/pointmaze recipe)
QUICK_GR = Tier(
    name="quick-gr",
    tasks=tuple(
        GRPointMazeData(task=f"PointMaze_{name}-v3", size=n)
        for name, n in (("UMaze", 100_000), ("Medium", 200_000), ("Large", 300_000))
    ),
)

TIERS: dict[str, Tier] = {t.name: t for t in (SMOKE, QUICK, PAPER, QUICK_GR)}
