"""Frozen, validated configuration of a run. Shapes and step counts are static; the values a sweep
varies live in traced hyperparameter pytrees (`RunHParams` here, one per method elsewhere)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from jaxo2o.envs import BRAX_BACKENDS, BRAX_TASKS, TASKS

PROTOCOLS = ("direct", "buffer", "scratch", "union", "seeded")
"""Fine-tuning protocols (how the online phase starts and what it samples):
- direct:  start from the offline result; batches mix dataset and online data at `offline_fraction`.
- buffer:  start from a fresh random initialisation; batches 50/50 dataset and online data.
- scratch: fresh random initialisation; online data only.
- union:   start from the offline result; one buffer that starts as the dataset and grows
           online, sampled uniformly (the official IQL / FamO2O protocol).
- seeded:  start from the offline result; one buffer that starts as the `seed_episodes`
           highest-return complete episodes of the dataset and grows online, sampled uniformly;
           updates begin once it holds more than one batch (the official ACA protocol)."""


@dataclass(frozen=True)
class BatchMix:
    """How an online batch is drawn: the protocol decides it, in one place.

    `uniform`: rows are drawn uniformly from the offline rows and the online buffer together,
    as if both were one buffer (union, seeded). Otherwise exactly round(offline_fraction *
    batch) rows come from the dataset and the rest from the online buffer. `gridable`: whether a
    sweep may vary `offline_fraction` (it is a traced value) under this protocol.
    """

    uniform: bool
    offline_fraction: float
    gridable: bool
    why: str  # what fixes the mix, for error messages


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field."""


def require(cond: bool, field: str, msg: str) -> None:
    """A config check: unless `cond`, raise ConfigError "<field>: <msg>"."""
    if not cond:
        raise ConfigError(f"{field}: {msg}")


def require_in(prefix: str, cond: bool, field: str, msg: str) -> None:
    """`require` for a field of the config named `prefix` (e.g. "iql": "iql.<field>: <msg>");
    bound with functools.partial by each method's config."""
    require(cond, f"{prefix}.{field}", msg)


def validate_hparams(
    hp: Any,
    prefix: str,
    positive: Sequence[str] = (),
    nonnegative: Sequence[str] = (),
    unit_interval: Sequence[str] = (),
    finite: Sequence[str] = (),
    ordered: Sequence[tuple[str, str, bool]] = (),
) -> Any:
    """Check a method's hyperparameter pytree; raise ConfigError naming the first bad field.

    `ordered`: (low, high, strict) pairs of fields, low < high (strict) or low <= high, element
    by element. Values may be scalars or arrays with a leading runs axis (every element is
    checked). Traced values (inside jit/vmap) cannot be inspected and are skipped. Returns `hp`.
    """
    rules = (
        (positive, lambda v: v > 0, "must be > 0"),
        (nonnegative, lambda v: v >= 0, "must be >= 0"),
        (unit_interval, lambda v: (v >= 0) & (v <= 1), "must lie in [0, 1]"),
        (finite, np.isfinite, "must be finite"),
    )
    for names, ok, what in rules:
        for name in names:
            value = getattr(hp, name)
            if isinstance(value, jax.core.Tracer):
                continue
            v = np.asarray(value, np.float64)
            bad = ~ok(v) | np.isnan(v)
            if np.any(bad):
                raise ConfigError(f"{prefix}.{name}: {what}, got {float(v[bad].ravel()[0]):.6g}")
    for low, high, strict in ordered:
        lo, hi = getattr(hp, low), getattr(hp, high)
        if isinstance(lo, jax.core.Tracer) or isinstance(hi, jax.core.Tracer):
            continue
        lo, hi = np.broadcast_arrays(np.asarray(lo, np.float64), np.asarray(hi, np.float64))
        bad = ~(lo < hi) if strict else ~(lo <= hi)
        if np.any(bad):
            i = np.flatnonzero(bad.ravel())[0]
            raise ConfigError(
                f"{prefix}.{low}: must be {'<' if strict else '<='} {high}, got {low}="
                f"{lo.ravel()[i]:.6g} and {high}={hi.ravel()[i]:.6g}"
            )
    return hp


@dataclass(frozen=True)
class EnvConfig:
    task: str = "point"  # point, a Brax task (hopper, ...) or pointmaze-{umaze,medium,large}
    backend: str = "positional"  # Brax: generalized|positional|spring|mjx; pure-JAX tasks: none
    episode_length: int = 1000  # steps before an episode is truncated

    def __post_init__(self):

        require(self.task in TASKS, "env.task", f"unknown {self.task!r}; choose one of {TASKS}")
        choices = BRAX_BACKENDS if self.task in BRAX_TASKS else (*BRAX_BACKENDS, "none")
        require(
            self.backend in choices,
            "env.backend",
            f"unknown {self.backend!r}; choose one of {choices}",
        )
        require(
            self.episode_length > 0, "env.episode_length", f"must be > 0, got {self.episode_length}"
        )


@dataclass(frozen=True)
class RunConfig:
    """The shape of one offline-then-online run (all static)."""

    offline_steps: int = 0  # gradient steps on the dataset
    online_steps: int = 10_000  # environment iterations (each steps `num_envs` environments)
    num_envs: int = 1  # environments stepped side by side online
    updates_per_step: int = 1  # gradient steps per online iteration
    warmup_steps: int = 0  # online iterations before updates start
    warmup_random: bool = False  # act uniformly at random during warm-up (SAC from scratch)
    batch_size: int = 256  # transitions per gradient step
    buffer_capacity: int = 0  # online buffer rows; 0 means online_steps * num_envs
    offline_eval_every: int = 5_000  # gradient steps between offline evaluations
    online_eval_every: int = 5_000  # online iterations between evaluations
    eval_episodes: int = 10  # deterministic episodes per evaluation
    protocol: str = "direct"  # direct | buffer | scratch | union | seeded (module docstring)
    offline_fraction: float = 0.5  # share of dataset rows per online batch (direct protocol)
    seed_episodes: int = 0  # seeded protocol: best offline episodes that start the buffer
    progress: bool = True

    def __post_init__(self):
        nonneg = ("offline_steps", "online_steps", "warmup_steps", "buffer_capacity")
        nonneg += ("seed_episodes",)
        for name in nonneg:
            v = getattr(self, name)
            ok = isinstance(v, int) and not isinstance(v, bool) and v >= 0
            require(ok, f"run.{name}", f"must be an integer >= 0, got {v!r}")
        positive = ("num_envs", "updates_per_step", "batch_size", "eval_episodes")
        positive += ("offline_eval_every", "online_eval_every")
        for name in positive:
            v = getattr(self, name)
            ok = isinstance(v, int) and not isinstance(v, bool) and v > 0
            require(ok, f"run.{name}", f"must be an integer > 0, got {v!r}")
        require(
            self.protocol in PROTOCOLS,
            "run.protocol",
            f"unknown {self.protocol!r}; choose one of {PROTOCOLS}",
        )
        require(
            0.0 <= self.offline_fraction <= 1.0,
            "run.offline_fraction",
            f"must lie in [0, 1], got {self.offline_fraction}",
        )
        require(
            self.seed_episodes == 0 or self.protocol == "seeded",
            "run.seed_episodes",
            f"{self.seed_episodes} needs protocol 'seeded', got {self.protocol!r}",
        )
        for phase in ("offline", "online"):
            steps, every = getattr(self, f"{phase}_steps"), getattr(self, f"{phase}_eval_every")
            require(
                steps % every == 0,
                f"run.{phase}_eval_every",
                f"{every} does not divide run.{phase}_steps={steps}",
            )
        if self.online_steps:
            require(
                self.warmup_steps < self.online_steps,
                "run.warmup_steps",
                f"{self.warmup_steps} leaves no online updates (online_steps={self.online_steps})",
            )
            require(
                self.batch_size <= self.capacity,
                "run.batch_size",
                f"{self.batch_size} exceeds the online buffer capacity {self.capacity}",
            )
            require(
                self.num_envs <= self.capacity,
                "run.num_envs",
                f"{self.num_envs} exceeds the online buffer capacity {self.capacity}",
            )

    @property
    def capacity(self) -> int:
        return self.buffer_capacity or self.online_steps * self.num_envs

    @property
    def init_from_offline(self) -> bool:
        return self.protocol in ("direct", "union", "seeded")

    @property
    def batch_mix(self) -> BatchMix:
        """The online batch composition the protocol implies (see `BatchMix`)."""
        return {
            "direct": BatchMix(False, self.offline_fraction, True, "set by run.offline_fraction"),
            "buffer": BatchMix(False, 0.5, True, "50/50 unless varied"),
            "scratch": BatchMix(False, 0.0, False, "online data only"),
            "union": BatchMix(True, 0.0, False, "uniform over dataset + online rows"),
            "seeded": BatchMix(True, 0.0, False, "uniform over seed episodes + online rows"),
        }[self.protocol]

    @property
    def samples_offline_data_online(self) -> bool:
        mix = self.batch_mix
        if self.protocol == "seeded":
            return self.seed_episodes > 0
        return mix.uniform or mix.offline_fraction > 0


@flax.struct.dataclass
class RunHParams:
    """Traced run-level values: may differ across the vmapped runs of one compiled program."""

    offline_fraction: jnp.ndarray  # dataset share of online batches (fixed mixes only)
    reward_scale: jnp.ndarray  # rewards are transformed as r * scale + shift in every batch
    reward_shift: jnp.ndarray


def run_hparams(run: RunConfig, reward_scale: float = 1.0, reward_shift: float = 0.0) -> RunHParams:
    f = jnp.float32
    return RunHParams(
        offline_fraction=jnp.asarray(run.batch_mix.offline_fraction, f),
        reward_scale=jnp.asarray(reward_scale, f),
        reward_shift=jnp.asarray(reward_shift, f),
    )


def field_names(cls) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))
