"""An experiment: one method on one task (and dataset), many seeds x a hyperparameter grid, run as
one compiled program. This module turns a validated `Experiment` into a Trainer, the batched
hyperparameter pytrees and the per-run table; runs it; and reduces the metrics to the numbers the
reports print (normalized scores at the end of offline, the online dip, the final score).

Everything that can be wrong in the inputs is checked here, in Python, before compiling.
"""

from __future__ import annotations

import dataclasses
import itertools
import typing
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxo2o.config import ConfigError, EnvConfig, RunConfig, RunHParams, run_hparams
from jaxo2o.core.loop import Trainer
from jaxo2o.core.replay import replay_bytes
from jaxo2o.core.runner import BatchResult, run_batch, stack_trees
from jaxo2o.envs import make_env
from jaxo2o.methods import METHODS, get_method

RUN_GRID_KEYS = ("offline_fraction",)  # grid keys that are run-level, not method, hyperparameters


@dataclass(frozen=True)
class Experiment:
    """One method x one task/dataset, over seeds and a grid of traced hyperparameters.

    Options are "name=value" strings so the command line stays flat:
    `method_config` sets static fields of the method's config (e.g. "hidden=64,64");
    `hparams` fixes traced hyperparameters ("expectile=0.9"); `grid` sweeps them
    ("expectile=0.7,0.9"), and the runs are the product of the grid and the seeds.
    """

    method: str = "sac"
    env: EnvConfig = field(default_factory=EnvConfig)
    run: RunConfig = field(default_factory=RunConfig)
    dataset: str = ""  # Minari dataset id of the offline data ("" = none)
    reference: str = ""  # dataset id whose reference scores normalize returns ("" = `dataset`)
    seeds: int = 4
    first_seed: int = 0
    method_config: tuple[str, ...] = ()
    hparams: tuple[str, ...] = ()
    grid: tuple[str, ...] = ()

    def __post_init__(self):
        if self.method not in METHODS:
            raise ConfigError(f"method: unknown {self.method!r}; choose one of {tuple(METHODS)}")
        if self.seeds < 1:
            raise ConfigError(f"seeds: must be >= 1, got {self.seeds}")
        if self.first_seed < 0:
            raise ConfigError(f"first_seed: must be >= 0, got {self.first_seed}")
        _parse_pairs(self.method_config, "method_config")
        _parse_pairs(self.hparams, "hparams")
        _parse_pairs(self.grid, "grid")

    def check_data(self) -> None:
        """Cross-field checks between the run and the offline data."""
        if self.run.offline_steps and not self.dataset:
            raise ConfigError(
                f"dataset: run.offline_steps={self.run.offline_steps} needs offline data; "
                "name a Minari dataset id (see `python -m jaxo2o.data list`)"
            )
        needs_data = self.run.online_steps and self.run.online_offline_fraction != 0.0
        if needs_data and not self.dataset:
            raise ConfigError(
                f"dataset: protocol {self.run.protocol!r} samples offline data online; "
                "name a dataset or use protocol 'scratch'"
            )


# ------------------------------------------------------------------ parsing "name=value" options
def _parse_pairs(items: tuple[str, ...], where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ConfigError(f"{where}: expected 'name=value', got {item!r}")
        if name.strip() in out:
            raise ConfigError(f"{where}: {name.strip()!r} given twice")
        out[name.strip()] = value.strip()
    return out


def _coerce(value: str, typ: Any, where: str) -> Any:
    origin = typing.get_origin(typ)
    try:
        if origin is tuple:
            inner = typing.get_args(typ)[0]
            return tuple(inner(v) for v in value.split(",") if v)
        if typ is bool:
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(value)
            return value.lower() in ("true", "1")
        return typ(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: cannot read {value!r} as {typ}") from None


def _float(value: str, where: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{where}: expected a number, got {value!r}") from None


# ------------------------------------------------------------------ building
def build_method(name: str, options: dict[str, str], offline_steps: int) -> Any:
    """Instantiate a method with static config overrides; a config field named `offline_steps`
    (a schedule horizon) follows the run's."""
    cls = get_method(name)
    base = cls().config
    hints = typing.get_type_hints(type(base))
    valid = [f.name for f in dataclasses.fields(base)]
    updates: dict[str, Any] = {}
    for key, value in options.items():
        if key not in valid:
            raise ConfigError(f"method_config.{key}: not a field of {name}; choose from {valid}")
        updates[key] = _coerce(value, hints[key], f"method_config.{key}")
    if "offline_steps" in valid and "offline_steps" not in updates:
        updates["offline_steps"] = offline_steps
    return cls(dataclasses.replace(base, **updates))


@dataclass
class Plan:
    """Everything needed to run an experiment, built and validated before compilation."""

    experiment: Experiment
    method: Any
    trainer: Trainer
    runs: list[dict[str, Any]]  # one entry per run: seed and grid values
    hp: Any  # method hyperparameters with a leading runs axis
    rhp: RunHParams  # run hyperparameters with a leading runs axis
    dataset: Any  # OfflineDataset or None
    ref_scores: tuple[float, float] | None

    @property
    def n_runs(self) -> int:
        return len(self.runs)


def reward_transform(method: Any, dataset: Any) -> tuple[float, float]:
    """(scale, shift) applied to every sampled reward, as the method's family prescribes."""
    kind = getattr(method, "reward_normalization", "none")
    if kind == "none":
        return 1.0, 0.0
    if kind == "minus_one":
        return 1.0, -1.0
    if kind == "trajectory_range":
        if dataset is None:
            raise ConfigError(
                "method_config.reward_normalization: 'trajectory_range' needs a dataset"
            )
        from jaxo2o.data import trajectory_return_range

        lo, hi = trajectory_return_range(dataset)
        if not hi > lo:
            raise ConfigError(
                f"dataset {dataset.dataset_id}: all episode returns equal ({lo}); "
                "cannot scale rewards by 1000 / (max - min)"
            )
        return 1000.0 / (hi - lo), 0.0
    raise ConfigError(f"method_config.reward_normalization: unknown {kind!r}")


def plan(exp: Experiment, dataset: Any = None) -> Plan:
    """Validate and assemble an experiment (loads the dataset unless one is given)."""
    exp.check_data()
    env = make_env(exp.env.task, exp.env.backend, exp.env.episode_length)
    method = build_method(
        exp.method, _parse_pairs(exp.method_config, "method_config"), exp.run.offline_steps
    )
    if dataset is None and exp.dataset:
        from jaxo2o.data import load_dataset

        dataset = load_dataset(
            exp.dataset, observation_size=env.observation_size, action_size=env.action_size
        )
    ref = None
    ref_source = dataset
    if exp.reference and (dataset is None or exp.reference != dataset.dataset_id):
        from jaxo2o.data import load_dataset

        ref_source = load_dataset(exp.reference)
    if ref_source is not None and ref_source.ref_min_score is not None:
        ref = (float(ref_source.ref_min_score), float(ref_source.ref_max_score))

    # hyperparameters: fixed values, then the grid's product, then seeds
    base_hp = method.default_hparams()
    hp_names = [f.name for f in dataclasses.fields(base_hp)]
    fixed = _parse_pairs(exp.hparams, "hparams")
    grid = _parse_pairs(exp.grid, "grid")
    for where, pairs in (("hparams", fixed), ("grid", grid)):
        for key in pairs:
            if key not in hp_names and key not in RUN_GRID_KEYS:
                raise ConfigError(
                    f"{where}.{key}: not a hyperparameter of {exp.method}; "
                    f"choose from {hp_names + list(RUN_GRID_KEYS)}"
                )
    axes = {k: [_float(v, f"grid.{k}") for v in s.split(",") if v] for k, s in grid.items()}
    scale, shift = reward_transform(method, dataset)
    base_rhp = run_hparams(exp.run, scale, shift)

    runs, hps, rhps = [], [], []
    for combo in itertools.product(*axes.values()) if axes else [()]:
        values = dict(zip(axes, combo, strict=True))
        chosen = {k: _float(v, f"hparams.{k}") for k, v in fixed.items()} | values
        method_vals = {k: v for k, v in chosen.items() if k in hp_names}
        run_vals = {k: v for k, v in chosen.items() if k in RUN_GRID_KEYS}
        hp = base_hp.replace(**{k: jnp.float32(v) for k, v in method_vals.items()})
        rhp = base_rhp.replace(**{k: jnp.float32(v) for k, v in run_vals.items()})
        for seed in range(exp.first_seed, exp.first_seed + exp.seeds):
            runs.append({"seed": seed, **values})
            hps.append(hp)
            rhps.append(rhp)
    hp_batch = stack_trees(hps)
    validate = getattr(method, "validate", None)
    if validate is not None:
        validate(hp_batch)
    rhp_batch = stack_trees(rhps)
    frac = np.asarray(rhp_batch.offline_fraction)
    if np.any((frac > 1) | ((frac < 0) & (frac != -1))):
        raise ConfigError("grid.offline_fraction: values must lie in [0, 1]")
    trainer = Trainer(method, env, exp.run)
    return Plan(exp, method, trainer, runs, hp_batch, rhp_batch, dataset, ref)


# ------------------------------------------------------------------ memory
_WORKSPACE: dict[tuple, int] = {}


def _tree_bytes(tree: Any) -> int:
    return sum(int(np.prod(x.shape)) * x.dtype.itemsize for x in jax.tree.leaves(tree))


def update_workspace(
    method: Any, obs_size: int, act_size: int, batch_size: int, online: bool
) -> int:
    """XLA's temporary buffers for one update step of one run, from compiling the update alone.

    They are mostly the activations kept for the backward passes (batch x width arrays), which
    no shape formula predicts well (XLA's buffer assignment decides what is live at once); at
    width 64 and batch 256 they outweigh the parameters. The program is small (seconds to
    compile) and the result is memoized per method config and shapes.
    """
    from jaxo2o.core.transitions import empty_transitions

    key = (type(method).__name__, getattr(method, "config", None), obs_size, act_size)
    key += (batch_size, online)
    if key not in _WORKSPACE:
        hp = method.default_hparams()
        rng = jax.random.PRNGKey(0)

        def state_of(k):
            state = method.init(k, obs_size, act_size, hp)
            return method.to_online(state, k, hp) if online else state

        state = jax.eval_shape(state_of, rng)
        batch = jax.eval_shape(lambda: empty_transitions(batch_size, obs_size, act_size))
        fn = lambda s, b, k, h: method.update(s, b, k, h, online=online)
        mem = jax.jit(fn).lower(state, batch, rng, hp).compile().memory_analysis()
        _WORKSPACE[key] = int(getattr(mem, "temp_size_in_bytes", 0) or 0) if mem else 0
    return _WORKSPACE[key]


def estimate_memory(p: Plan) -> dict[str, int]:
    """Bytes the compiled program needs, estimated before compiling it.

    Per run: the online replay buffer, the method state (parameters and optimizer moments,
    counted exactly by abstract evaluation of `init`, and of `to_online` when the state grows
    at the switch), a second state copy for the update in flight, and the update's workspace
    (`update_workspace`: compiles the update step alone). Shared: the dataset (not copied per
    run). `benchmarks/perf.py` checks the estimate against the compiled program's own numbers.
    """
    t, run = p.trainer, p.experiment.run
    hp = p.method.default_hparams()
    init = lambda k: p.method.init(k, t.obs_size, t.act_size, hp)
    rng = jax.random.PRNGKey(0)
    state_bytes = _tree_bytes(jax.eval_shape(init, rng))
    phases = [False] * bool(run.offline_steps) + [True] * bool(run.online_steps)
    if run.online_steps:
        online = jax.eval_shape(lambda k: p.method.to_online(init(k), k, hp), rng)
        state_bytes = max(state_bytes, _tree_bytes(online))
    workspace = max(
        [update_workspace(p.method, t.obs_size, t.act_size, run.batch_size, o) for o in phases],
        default=0,
    )
    buffer = replay_bytes(run.capacity, t.obs_size, t.act_size) if run.online_steps else 0
    data = 0
    if p.dataset is not None:
        data = sum(np.asarray(x).nbytes for x in p.dataset.transitions)
    per_run = buffer + 2 * state_bytes + workspace
    return {
        "per_run": per_run,
        "runs": p.n_runs,
        "dataset": data,
        "total": per_run * p.n_runs + data,
        "buffer_per_run": buffer,
        "state_per_run": state_bytes,
        "workspace_per_run": workspace,
    }


def check_memory(p: Plan, limit_fraction: float = 0.8) -> dict[str, int]:
    """Refuse a grid whose estimate exceeds `limit_fraction` of the available host memory."""
    import psutil

    est = estimate_memory(p)
    avail = psutil.virtual_memory().available
    if est["total"] > limit_fraction * avail:
        fit = max(0, int((limit_fraction * avail - est["dataset"]) // max(est["per_run"], 1)))
        raise ConfigError(
            f"memory: {p.n_runs} runs need about {est['total'] / 2**30:.2f} GiB "
            f"({est['per_run'] / 2**20:.1f} MiB per run + {est['dataset'] / 2**20:.1f} MiB "
            f"dataset) but only {avail / 2**30:.2f} GiB is available; at most {fit} runs fit. "
            "Use fewer seeds or grid values, or a smaller run.buffer_capacity."
        )
    return est


# ------------------------------------------------------------------ running and reducing
@dataclass
class ExperimentResult:
    plan: Plan
    batch: BatchResult
    rows: list[dict[str, Any]]  # one summary row per run
    curves: list[dict[str, Any]]  # one row per (run, phase, evaluation)


def normalize(returns: np.ndarray, ref: tuple[float, float] | None) -> np.ndarray:
    """D4RL's normalized score, or the raw return when no reference scores are known."""
    if ref is None:
        return np.asarray(returns, np.float64)
    lo, hi = ref
    return 100.0 * (np.asarray(returns, np.float64) - lo) / (hi - lo)


def _interval_metrics(m: dict, run: int, n_evals: int) -> dict[str, list[float]]:
    """Run `run`'s scalar training metrics (losses, Q means, AWR weights, ...), one value per
    evaluation: the mean over the interval that ends at it. The online phase's first evaluation,
    taken before any update, gets NaN."""
    out = {}
    for key, value in m.items():
        if key in ("eval_returns", "eval_lengths", "states") or key.startswith("act/"):
            continue
        v = np.asarray(value[run], np.float64)
        if v.ndim != 1:
            continue
        pad = n_evals - v.shape[0]  # 1 online (the evaluation at the switch), 0 offline
        out[key] = [float("nan")] * pad + [float(x) for x in v]
    return out


def summarize(p: Plan, batch: BatchResult) -> tuple[list[dict], list[dict]]:
    """Per-run summary rows and per-evaluation curve rows (scores normalized when possible)."""
    exp, run = p.experiment, p.experiment.run
    steps = p.trainer.eval_steps()
    base = {
        "method": exp.method,
        "task": exp.env.task,
        "dataset": exp.dataset,
        "protocol": run.protocol,
    }
    rows, curves = [], []
    for i, r in enumerate(p.runs):
        row = dict(base) | r
        for phase in ("offline", "online"):
            m = batch.metrics.get(phase) or {}
            if "eval_returns" not in m:
                continue
            ret = np.asarray(m["eval_returns"][i], np.float64)  # (n_evals, episodes)
            score = normalize(ret.mean(-1), p.ref_scores)
            train = _interval_metrics(m, i, len(score))
            for j, (s, sc, rt) in enumerate(zip(steps[phase], score, ret.mean(-1), strict=True)):
                curves.append(
                    dict(base)
                    | r
                    | {"phase": phase, "step": s, "score": sc, "return": rt}
                    | {k: v[j] for k, v in train.items()}
                )
            if phase == "offline":
                row["offline_final"] = float(score[-1])
            else:
                first_tenth = np.asarray(steps["online"]) <= run.online_steps / 10
                row["online_start"] = float(score[0])
                row["online_dip"] = float(score[first_tenth].min())
                row["online_final"] = float(score[-1])
                for key, value in m.items():
                    if key.startswith("act/"):
                        row[key[4:] + "_mean"] = float(np.nanmean(value[i]))
        rows.append(row)
    return rows, curves


def execute(p: Plan, devices: list | None = None, desc: str | None = None) -> ExperimentResult:
    """Compile once and run every seed and grid value of the plan."""
    check_memory(p)
    keys = jnp.stack([jax.random.PRNGKey(r["seed"]) for r in p.runs])
    data = None
    if p.dataset is not None:
        data = jax.tree.map(jnp.asarray, p.dataset.transitions)
    label = desc or f"{p.experiment.method}/{p.experiment.run.protocol} {p.experiment.env.task}"
    batch = run_batch(p.trainer, keys, p.hp, p.rhp, data, devices=devices, desc=label)
    rows, curves = summarize(p, batch)
    for row in rows:
        row["compile_s"] = round(batch.compile_seconds, 2)
        row["run_s"] = round(batch.run_seconds, 2)
    return ExperimentResult(p, batch, rows, curves)
