"""Each method's official settings per domain, in one place: the sweep applies them by the task's
domain and the bench's suite (`benchmarks/suite.py`) builds its lines from the same objects.

Domains: "locomotion" (the SAC-made datasets of the Brax and `point` tasks) and "maze" (the
point-mass mazes, AntMaze-style). A `Preset` holds typed values; `as_options` turns them into the
"name=value" options an `Experiment` carries. A user's explicit option always wins over a preset
(`apply`, which also says which of the preset's values were overridden).

Sources (public code):
- IQL (ikostrikov/implicit_q_learning): locomotion expectile 0.7, inverse temperature 3, rewards
  scaled by 1000 / (max - min trajectory return); AntMaze expectile 0.9, inverse temperature 10,
  rewards r - 1. Offline recipe: cosine actor-rate decay; fine-tuning recipe
  (`configs/antmaze_finetune_config.py`): a constant rate. PEX runs on IQL's settings (so it
  shares IQL's offline phase; its own script's raw rewards are a named deviation in the README).
- AWAC (CORL): lambda 1 on locomotion, 0.1 with r - 1 on AntMaze; observations normalized with
  the dataset's mean and std.
- FamO2O: maze is the only official configuration (range [8, 14], expectile 0.9, r - 1);
  locomotion is a PROJECT CHOICE (no official FamO2O+IQL locomotion configuration): IQL's
  locomotion expectile and reward scaling, range [1, 5] around IQL's inverse temperature 3.
- ACA: the official per-dataset-kind table (`jaxo2o.methods.aca_settings.ACA_PRESETS`; every
  maze kind uses the AntMaze row), on the seeded protocol; `alignment=False` is sac-direct.
- Cal-QL / CQL (nakamotoo/Cal-QL `scripts/run_antmaze.sh`), RLPD (ikostrikov/rlpd README
  commands), WSRL (zhouzypaul/wsrl launch scripts and configs): `calql_rlpd_wsrl` below, with run
  settings (`Preset.run`: update-to-data ratio, warm-up, batch mix) besides the method's own.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from jaxo2o.envs import D4RL_ANTMAZE_TASKS, GR_MAZE_TASKS, MAZE_TASKS
from jaxo2o.methods.aca_settings import ACA_PRESETS, aca_preset

DOMAINS = ("locomotion", "maze")


def domain_of(task: str) -> str:
    """The domain of a task name: the point-mass mazes, Gymnasium-Robotics' (sparse, goal
    reaching, as AntMaze) and D4RL's antmaze-v2 are "maze", every other task locomotion."""
    mazes = (MAZE_TASKS, GR_MAZE_TASKS, D4RL_ANTMAZE_TASKS)
    return "maze" if any(task in m for m in mazes) else "locomotion"


# CORL/IQL's AntMaze protocol (100 episodes): on the standard mazes each episode starts from its
# own noisy start (and goal), so a seed's score is a success rate in steps of 1 point with a
# standard error of at most 5, not the coin 10 episodes make of it (`results/gr-maze/README.md`).
STANDARD_MAZE_EVAL_EPISODES = 100


def task_run(task: str) -> dict[str, Any]:
    """Run settings that a task's standard protocol sets whatever the method: the standard mazes
    (Gymnasium-Robotics', D4RL's antmaze) evaluate on 100 episodes. The point-mass mazes keep
    the run's default (their quick-tier reference was made with it)."""
    standard_maze = domain_of(task) == "maze" and task not in MAZE_TASKS
    return {"eval_episodes": STANDARD_MAZE_EVAL_EPISODES} if standard_maze else {}


@dataclass(frozen=True)
class Preset:
    """The settings a method's official code uses in one domain (and dataset kind)."""

    name: str  # e.g. "famo2o/locomotion", for the reports
    hparams: dict[str, float] = field(default_factory=dict)  # traced hyperparameters
    config: dict[str, Any] = field(default_factory=dict)  # static config fields
    protocol: str | None = None  # the official fine-tuning protocol, when the method has one
    seed_episodes: int = 0  # the seeded protocol's best offline episodes
    # `RunConfig` fields (updates_per_step, warmup_steps, ...); each applies where the user left
    # the run's default
    run: dict[str, Any] = field(default_factory=dict)

    def as_options(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(hparams, method_config) as "name=value" options (floats as the shortest text that
        gives back the same float32)."""
        hp = tuple(f"{k}={_text(v)}" for k, v in self.hparams.items())
        return hp, tuple(f"{k}={v}" for k, v in self.config.items())

    def describe(self) -> str:
        """One line: every value the preset sets."""
        hp, cfg = self.as_options()
        extra = [f"protocol={self.protocol}"] if self.protocol else []
        extra += [f"seed_episodes={self.seed_episodes}"] if self.seed_episodes else []
        extra += [f"run.{k}={v}" for k, v in self.run.items()]
        return " ".join([*hp, *cfg, *extra])


def _text(v: Any) -> str:
    return np.format_float_positional(np.float32(float(v)), trim="-")


IQL_REWARDS = {"locomotion": "trajectory_range", "maze": "minus_one"}
IQL_VALUES = {
    "locomotion": {"expectile": 0.7, "inverse_temperature": 3.0},
    "maze": {"expectile": 0.9, "inverse_temperature": 10.0},
}


def iql(domain: str, finetuning: bool) -> Preset:
    """IQL's settings; `finetuning`: the fine-tuning recipe (constant actor rate), else the
    offline one (cosine decay, the method's default)."""
    config = {"reward_normalization": IQL_REWARDS[domain]}
    config |= {"actor_schedule": "constant"} if finetuning else {}
    recipe = "finetune" if finetuning else "offline"
    return Preset(f"iql-{recipe}/{domain}", dict(IQL_VALUES[domain]), config)


def pex(domain: str) -> Preset:
    base = iql(domain, finetuning=True)
    hp = base.hparams | {"selection_inverse_temperature": 10.0}
    return Preset(f"pex/{domain}", hp, base.config)


def awac(domain: str) -> Preset:
    if domain == "maze":
        config = {"reward_normalization": "minus_one", "obs_normalization": "dataset"}
        return Preset("awac/maze", {"awac_lambda": 0.1}, config)
    return Preset("awac/locomotion", {}, {"obs_normalization": "dataset"})


FAMO2O_VALUES = {
    "locomotion": {"expectile": 0.7, "beta_min": 1.0, "beta_max": 5.0},
    "maze": {"expectile": 0.9, "beta_min": 8.0, "beta_max": 14.0},
}


def famo2o(domain: str) -> Preset:
    config = {"reward_normalization": IQL_REWARDS[domain]}
    return Preset(f"famo2o/{domain}", dict(FAMO2O_VALUES[domain]), config, protocol="union")


def aca(domain: str, kind: str, alignment: bool = True) -> Preset | None:
    """ACA's row for the dataset kind (every maze kind: the AntMaze row); None for a locomotion
    dataset of no kind ACA's table has."""
    row = "maze" if domain == "maze" else kind
    if row not in ACA_PRESETS:
        return None
    config, hp, top_n = aca_preset(row, alignment=alignment)
    values = {f.name: float(getattr(hp, f.name)) for f in dataclasses.fields(hp)}
    static = {
        "policy": config.policy,
        "alignment": alignment,
        "reward_normalization": config.reward_normalization,
    }
    name = "aca" if alignment else "sac-direct"
    return Preset(f"{name}/{row}", values, static, protocol="seeded", seed_episodes=top_n)


# ---------------------------------------------------------------- Cal-QL, CQL, RLPD, WSRL
# Cal-QL / CQL. Maze: the official AntMaze script (critics 256 x 4, policy 256 x 2, Lagrange with
# g = 0.8 and w = 5, rewards 10 r - 5, the all-failure rule on raw reward 0, 50/50 batches, no
# warm-up). Locomotion has no official Cal-QL setting (the code refuses dense rewards); WSRL's
# port pretrains locomotion with CQL, w = 5, no Lagrange, 256 x 2: taken for both (Cal-QL with
# plain discounted returns, a named deviation).
CALQL_CONFIG = {
    "maze": {
        "hidden": "256,256,256,256",
        "actor_hidden": "256,256",
        "lagrange": True,
        "failure_reward": 0.0,
        "reward_normalization": "plus_minus_five",
    },
    "locomotion": {"hidden": "256,256", "lagrange": False},  # the actor as wide as the critics
}
CALQL_VALUES = {
    "maze": {"cql_weight": 5.0, "target_action_gap": 0.8},
    "locomotion": {"cql_weight": 5.0},
}
# RLPD: UTD 20, 5,000 uniform random steps, 50/50 batches from scratch (`buffer`), no offline
# phase. Locomotion 256 x 2, min over 2 of 10, entropy backup; AntMaze 256 x 3, min over 1, no
# entropy backup, r - 1.
RLPD_CONFIG = {
    "locomotion": {"hidden": "256,256", "n_target_critics": 2, "backup_entropy": True},
    "maze": {
        "hidden": "256,256,256",
        "n_target_critics": 1,
        "backup_entropy": False,
        "reward_normalization": "minus_one",
    },
}
RLPD_RUN = {"offline_steps": 0, "updates_per_step": 20, "warmup_steps": 5000, "warmup_random": True}
# WSRL: fine-tuning with UTD 4 (4 x 256 = the official batch 1024) on online data only
# (offline_fraction 0), after 5,000 steps of the frozen pretrained policy (first update at
# k = 5001). AntMaze: critics 256 x 4, actor 256 x 2, "uniform" std, a max backup of 10 online,
# Cal-QL pretraining with Lagrange g = 0.8, 10 r - 5. Locomotion: 256 x 2, CQL pretraining, w = 5.
WSRL_CONFIG = {
    "maze": {
        "hidden": "256,256,256,256",
        "actor_hidden": "256,256",
        "state_dependent_std": False,
        "online_backup_actions": 10,
        "calibrate": True,
        "lagrange": True,
        "failure_reward": 0.0,
        "reward_normalization": "plus_minus_five",
    },
    "locomotion": {"hidden": "256,256", "calibrate": False, "lagrange": False},
}
WSRL_VALUES = {"maze": {"target_action_gap": 0.8}, "locomotion": {"cql_weight": 5.0}}
WSRL_RUN = {
    "updates_per_step": 4,
    "warmup_steps": 5001,
    "warmup_random": False,
    "offline_fraction": 0.0,
}


def calql_rlpd_wsrl(method: str, domain: str) -> Preset:
    """The official settings of Cal-QL, CQL, RLPD or WSRL in a domain (tables above)."""
    if method in ("calql", "cql"):
        hp, config = dict(CALQL_VALUES[domain]), dict(CALQL_CONFIG[domain])
        run = {"offline_fraction": 0.5}  # the scripts' mixing ratio (the direct protocol's)
        return Preset(f"{method}/{domain}", hp, config, protocol="direct", run=run)
    if method == "rlpd":  # the buffer protocol's batches are 50/50
        config = dict(RLPD_CONFIG[domain])
        return Preset(f"rlpd/{domain}", {}, config, protocol="buffer", run=dict(RLPD_RUN))
    hp, config = dict(WSRL_VALUES[domain]), dict(WSRL_CONFIG[domain])
    return Preset(f"wsrl/{domain}", hp, config, protocol="direct", run=dict(WSRL_RUN))


def official(method: str, domain: str, kind: str = "", online: bool = True) -> Preset | None:
    """The official preset of `method` on a task of `domain` (and dataset `kind`); None when
    the method has none (SAC from scratch, methods added without one). `online`: the run
    fine-tunes (IQL then uses its fine-tuning recipe)."""
    if domain not in DOMAINS:
        raise ValueError(f"domain: unknown {domain!r}; choose one of {DOMAINS}")
    makers = {
        "iql": lambda: iql(domain, finetuning=online),
        "pex": lambda: pex(domain),
        "awac": lambda: awac(domain),
        "famo2o": lambda: famo2o(domain),
        "aca": lambda: aca(domain, kind),
        **{m: partial(calql_rlpd_wsrl, m, domain) for m in ("calql", "cql", "rlpd", "wsrl")},
    }
    return makers[method]() if method in makers else None


@dataclass(frozen=True)
class Applied:
    """What a preset did to one line: the preset, and the values the user's options replaced."""

    preset: Preset
    overridden: tuple[str, ...]  # the preset's keys the user set explicitly

    def record(self) -> dict[str, Any]:
        """For meta.json and the dry run."""
        return {
            "name": self.preset.name,
            "settings": self.preset.describe(),
            "overridden_by_user": list(self.overridden),
        }


def _keys(options: tuple[str, ...]) -> set[str]:
    return {o.partition("=")[0] for o in options}


def merge(
    preset: Preset, hparams: tuple, method_config: tuple, grid: tuple = ()
) -> tuple[tuple, tuple, tuple]:
    """(hparams, method_config, overridden): the preset's options first, the user's after them;
    a preset value the user set (in `hparams`, `method_config` or the `grid`) is left out, and
    `overridden` names it."""
    hp, cfg = preset.as_options()
    user_hp, user_cfg = _keys(hparams) | _keys(grid), _keys(method_config)
    kept_hp = tuple(o for o in hp if o.partition("=")[0] not in user_hp)
    kept_cfg = tuple(o for o in cfg if o.partition("=")[0] not in user_cfg)
    overridden = sorted((user_hp & set(preset.hparams)) | (user_cfg & set(preset.config)))
    return kept_hp + tuple(hparams), kept_cfg + tuple(method_config), tuple(overridden)
