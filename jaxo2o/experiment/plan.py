"""Turn a validated `Experiment` into everything a run needs: the method, the Trainer, the
batched hyperparameter pytrees (grid x seeds), the dataset(s) and the reward transform."""

from __future__ import annotations

import dataclasses
import itertools
import math
import typing
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxo2o.config import ConfigError, run_hparams
from jaxo2o.core.loop import Trainer, placeholder_dataset
from jaxo2o.core.runner import stack_trees
from jaxo2o.core.transitions import Transitions
from jaxo2o.data import load_dataset
from jaxo2o.data.dataset import top_return_episodes, trajectory_return_range, with_mc_returns
from jaxo2o.data.maze_standard import eval_env_kwargs
from jaxo2o.data.standard import check_recorded_env, reference_scores
from jaxo2o.envs import make_env
from jaxo2o.envs.gr_maze import GR_MAZE_TASKS, GRMaze
from jaxo2o.experiment.memory import check_memory
from jaxo2o.experiment.planned import Plan
from jaxo2o.experiment.spec import RUN_GRID_KEYS, Experiment, coerce, parse_float, parse_pairs
from jaxo2o.methods import get_method


def build_method(
    name: str, options: dict[str, str], offline_steps: int, online_updates: int = 0
) -> Any:
    """Instantiate a method with static config overrides; config fields named `offline_steps`
    and `online_updates` (schedule horizons) follow the run's."""
    cls = get_method(name)
    base = cls.Config()
    hints = typing.get_type_hints(type(base))
    valid = [f.name for f in dataclasses.fields(base)]
    updates: dict[str, Any] = {}
    for key, value in options.items():
        if key not in valid:
            raise ConfigError(f"method_config.{key}: not a field of {name}; choose from {valid}")
        updates[key] = coerce(value, hints[key], f"method_config.{key}")
    if "offline_steps" in valid and "offline_steps" not in updates:
        updates["offline_steps"] = offline_steps
    if "online_updates" in valid and "online_updates" not in updates:
        updates["online_updates"] = online_updates
    return cls(dataclasses.replace(base, **updates))


def reward_transform(method: Any, dataset: Any) -> tuple[float, float]:
    """(scale, shift) applied to every sampled reward, as the method's family prescribes."""
    kind = method.reward_normalization
    if kind == "none":
        return 1.0, 0.0
    if kind == "minus_one":
        return 1.0, -1.0
    if kind == "plus_minus_five":
        return 10.0, -5.0
    if kind == "trajectory_range":
        if dataset is None:
            raise ConfigError(
                "method_config.reward_normalization: 'trajectory_range' needs a dataset"
            )

        lo, hi = trajectory_return_range(dataset)
        if not hi > lo:
            raise ConfigError(
                f"dataset {dataset.dataset_id}: all episode returns equal ({lo}); "
                "cannot scale rewards by 1000 / (max - min)"
            )
        return 1000.0 / (hi - lo), 0.0
    raise ConfigError(f"method_config.reward_normalization: unknown {kind!r}")


OBS_STD_EPS = 1e-3  # CORL's compute_mean_std(states, eps=1e-3): std + eps


def with_observation_statistics(method: Any, dataset: Any) -> Any:
    """The method, rebuilt with the dataset's observation statistics if its config asks for them
    (`obs_normalization="dataset"`; AWAC, as CORL): per-dimension mean and standard deviation
    (population, + 1e-3) of the dataset's observations, computed once here on the host in
    float64 and stored as float32 values in the static config. Other methods come back as given."""
    if getattr(method.config, "obs_normalization", "none") != "dataset":
        return method
    if dataset is None:
        raise ConfigError("method_config.obs_normalization: 'dataset' needs a dataset")
    obs = np.asarray(dataset.transitions.obs, np.float64)
    mean = obs.mean(axis=0).astype(np.float32)
    std = (obs.std(axis=0) + OBS_STD_EPS).astype(np.float32)
    config = dataclasses.replace(
        method.config,
        obs_mean=tuple(float(x) for x in mean),
        obs_std=tuple(float(x) for x in std),
    )
    return type(method)(config)


def with_returns(method: Any, dataset: Any) -> Any:
    """The dataset with Monte-Carlo returns-to-go per episode if the method reads them
    (`Method.mc_returns`, Cal-QL), computed once here on the host; otherwise as given."""
    spec = method.mc_returns
    if spec is None or dataset is None:
        return dataset
    return dataclasses.replace(dataset, transitions=with_mc_returns(dataset.transitions, spec))


def check_sizes(dataset: Any, env: Any, name: str) -> None:
    """A dataset made for another task is refused before anything is traced (a dataset loaded
    without the task's sizes, e.g. once for several lines, is checked here)."""
    if dataset is None:
        return
    where = f"dataset {name}".rstrip()
    for what, rows, size in (
        ("observations", dataset.transitions.obs, env.observation_size),
        ("actions", dataset.transitions.action, env.action_size),
    ):
        found = int(np.shape(rows)[-1])
        if found != size:
            raise ConfigError(f"{where}: {what} have {found} dimensions, the task expects {size}")


def plan(exp: Experiment, dataset: Any = None) -> Plan:
    """Validate and assemble an experiment (loads the dataset unless one is given)."""
    exp.check_data()
    env = make_env(exp.env.task, exp.env.backend, exp.env.episode_length)
    method = build_method(
        exp.method,
        parse_pairs(exp.method_config, "method_config"),
        exp.run.offline_steps,
        exp.run.online_steps * exp.run.updates_per_step,
    )
    if dataset is None and exp.dataset:
        dataset = load_dataset(
            exp.dataset, observation_size=env.observation_size, action_size=env.action_size
        )
    if dataset is not None:  # data recorded on another environment is refused here, first
        note = check_recorded_env(dataset, exp.env.task)
        if note:
            print(note)
    check_sizes(dataset, env, exp.dataset)
    if exp.env.task in GR_MAZE_TASKS and eval_env_kwargs(dataset, exp.env.task):
        # a maze dataset's own evaluation env (its eval_env_spec: start/goal map, time limit)
        env = GRMaze(exp.env.task, **eval_env_kwargs(dataset, exp.env.task))
    ref = None
    ref_source = dataset
    if exp.reference and (dataset is None or exp.reference != dataset.dataset_id):
        ref_source = load_dataset(exp.reference)
    if ref_source is not None and ref_source.ref_min_score is not None:
        ref = (float(ref_source.ref_min_score), float(ref_source.ref_max_score))
    elif not exp.reference:  # a v5 task's own references (jaxo2o.data.standard)
        ref = reference_scores(None, exp.env.task)
    method = with_observation_statistics(method, dataset)
    dataset = with_returns(method, dataset)

    # hyperparameters: fixed values, then the grid's product, then seeds
    base_hp = method.default_hparams()
    hp_names = [f.name for f in dataclasses.fields(base_hp)]
    fixed = parse_pairs(exp.hparams, "hparams")
    if "offline_fraction" in fixed and not exp.run.batch_mix.gridable:
        raise ConfigError(
            f"hparams.offline_fraction: protocol {exp.run.protocol!r} fixes the batch mix "
            f"({exp.run.batch_mix.why})"
        )
    grid = parse_pairs(exp.grid, "grid")
    for where, pairs in (("hparams", fixed), ("grid", grid)):
        for key in pairs:
            if key not in hp_names and key not in RUN_GRID_KEYS:
                raise ConfigError(
                    f"{where}.{key}: not a hyperparameter of {exp.method}; "
                    f"choose from {hp_names + list(RUN_GRID_KEYS)}"
                )
    axes = {k: [parse_float(v, f"grid.{k}") for v in s.split(",") if v] for k, s in grid.items()}
    scale, shift = reward_transform(method, dataset)
    base_rhp = run_hparams(exp.run, scale, shift)

    # the quick memory bound first: an absurd run count is refused before any run is listed
    check_memory(
        Plan(exp, method, Trainer(method, env, exp.run), [], None, None, dataset, ref),
        workspace=False,
    )
    runs, hps, rhps = [], [], []
    for combo in itertools.product(*axes.values()) if axes else [()]:
        values = dict(zip(axes, combo, strict=True))
        chosen = {k: parse_float(v, f"hparams.{k}") for k, v in fixed.items()} | values
        method_vals = {k: v for k, v in chosen.items() if k in hp_names}
        run_vals = {k: v for k, v in chosen.items() if k in RUN_GRID_KEYS}
        hp = base_hp.replace(**{k: jnp.float32(v) for k, v in method_vals.items()})
        rhp = base_rhp.replace(**{k: jnp.float32(v) for k, v in run_vals.items()})
        for seed in range(exp.first_seed, exp.first_seed + exp.seeds):
            runs.append({"seed": seed, **values})
            hps.append(hp)
            rhps.append(rhp)
    hp_batch = stack_trees(hps)
    method.validate(hp_batch)
    rhp_batch = stack_trees(rhps)
    frac = np.asarray(rhp_batch.offline_fraction)
    if np.any((frac > 1) | (frac < 0)):
        bad = float(frac[(frac > 1) | (frac < 0)][0])
        raise ConfigError(f"grid.offline_fraction: values must lie in [0, 1], got {bad}")
    run, online_data, online_rows = exp.run, None, None
    if run.protocol == "seeded" and run.online_steps:
        returns = method.mc_returns is not None
        online_data, online_rows, run = seeded_buffer(exp, dataset, env, returns)
    trainer = Trainer(method, env, run, online_rows=online_rows)
    return Plan(exp, method, trainer, runs, hp_batch, rhp_batch, dataset, ref, online_data)


def seeded_buffer(
    exp: Experiment, dataset: Any, env: Any, returns: bool = False
) -> tuple[Transitions, int, Any]:
    """The seeded protocol's start: the `seed_episodes` highest-return complete episodes of the
    dataset (a one-row placeholder when none), and the run with its updates delayed until the
    buffer holds more than one batch (official ACA: d3rlpy starts updating once
    len(buffer) > batch_size). `returns`: the rows carry Monte-Carlo columns (`mc_returns`)."""

    run = exp.run
    n = run.seed_episodes
    if n and dataset is None:
        raise ConfigError(f"run.seed_episodes: {n} seed episodes need a dataset")
    rows = top_return_episodes(dataset.transitions, n) if n else None
    n_rows = 0 if rows is None else rows.size
    if n_rows == 0:
        rows = placeholder_dataset(env.observation_size, env.action_size, returns)
    # after iteration i the buffer holds n_rows + (i + 1) * num_envs rows
    first = max(0, math.ceil((run.batch_size + 1 - n_rows) / run.num_envs) - 1)
    run = dataclasses.replace(run, warmup_steps=max(run.warmup_steps, first))
    return rows, n_rows, run
