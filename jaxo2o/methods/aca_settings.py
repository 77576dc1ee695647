"""ACA's settings: the traced hyperparameters, the static config, the w schedule and the
official per-dataset-kind presets (the official code's `configs/online/*.yaml` and
`configs/offline/*.yaml`). The method itself is `jaxo2o.methods.aca`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp

from jaxo2o.config import ConfigError, require_in, validate_hparams
from jaxo2o.core.method import build_hparams, check_network_config
from jaxo2o.methods.aca_policies import POLICIES

UPDATES_PER_K = 1000.0  # w falls by w0 / (K * 1000) per update (the official "steps per epoch")
OFFICIAL_ONLINE_UPDATES = 100_000  # the official online phase: 100k env steps, one update each
W_SCHEDULES = ("absolute", "scaled")


# ------------------------------------------------------------------ the w schedule
def interpolation_weight(
    n_updates: jax.Array, w0: jax.Array, k: jax.Array, w_min: jax.Array
) -> jax.Array:
    """w after `n_updates` updates: max(w0 - n w0 / (K 1000), w_min)."""
    n = jnp.asarray(n_updates, jnp.float32)
    return jnp.maximum(w0 - n * (w0 / (k * UPDATES_PER_K)), w_min)


def scaled_w_k(w_k: jax.Array, online_updates: int) -> jax.Array:
    """K of the "scaled" w schedule: the official K times (the run's online updates) / 100k, so
    w reaches after a share of the run's updates the value the official run reaches after the
    same share of its 100k."""
    return w_k * (online_updates / OFFICIAL_ONLINE_UPDATES)


# ------------------------------------------------------------------ hyperparameters and config
@flax.struct.dataclass
class ACAHParams:
    """Traced: a sweep may vmap over any of these. Defaults: the medium preset."""

    actor_lr: jnp.ndarray = 3e-4
    critic_lr: jnp.ndarray = 3e-4
    alpha_lr: jnp.ndarray = 3e-4
    baseline_lr: jnp.ndarray = 3e-4
    discount: jnp.ndarray = 0.99
    tau: jnp.ndarray = 0.005
    ml_alpha: jnp.ndarray = 30.0  # lambda = ml_alpha / mean|Q| of the offline actor loss
    target_entropy_per_dim: jnp.ndarray = -1.0  # H_target = this * dim(A)
    clip_beta: jnp.ndarray = 7.0  # beta of the soft clip's floor m(s)
    w0: jnp.ndarray = 1.0  # interpolation schedule (w0, K, w_min)
    w_k: jnp.ndarray = 40.0
    w_min: jnp.ndarray = 0.5
    actor_grad_clip: jnp.ndarray = 0.25  # online actor gradient global-norm clip


def validate_aca_hparams(hp: ACAHParams) -> ACAHParams:
    """Raise ConfigError naming the first out-of-range field (grids: every value is checked)."""
    return validate_hparams(
        hp,
        "aca",
        positive=(
            "actor_lr",
            "critic_lr",
            "alpha_lr",
            "baseline_lr",
            "w0",
            "w_k",
            "actor_grad_clip",
        ),
        nonnegative=("ml_alpha", "clip_beta", "w_min"),
        unit_interval=("discount", "tau"),
        finite=("target_entropy_per_dim",),
        ordered=(("w_min", "w0", False),),
    )


# ACAConfig's string fields and their allowed values
_CONFIG_CHOICES = {
    "policy": POLICIES,
    "w_schedule": W_SCHEDULES,
}


@dataclass(frozen=True)
class ACAConfig:
    """Static: shapes, the policy family and the line (ACA or sac-direct)."""

    hidden: tuple[int, ...] = (256, 256)
    n_critics: int = 2  # also the number of baselines Z_k (official: as many as critics)
    policy: str = "squashed"
    alignment: bool = True  # False: sac-direct (plain SAC fine-tuning of the offline Q)
    reward_normalization: str = "none"
    # the w schedule's K: "absolute" (official: K 1000 updates per w0) or "scaled" to the run's
    # online updates (`scaled_w_k`; not official, for budgets shorter than 100k updates)
    w_schedule: str = "absolute"
    online_updates: int = (
        0  # the run's online gradient updates (set from the run; "scaled" needs it)
    )

    def __post_init__(self):
        require = partial(require_in, "aca")

        check_network_config(self, "aca")
        for field, choices in _CONFIG_CHOICES.items():
            value = getattr(self, field)
            require(value in choices, field, f"unknown {value!r}; choose one of {choices}")
        value = self.alignment
        require(isinstance(value, bool), "alignment", f"must be True or False, got {value!r}")
        n = self.online_updates
        require(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0,
            "online_updates",
            f"must be an integer >= 0, got {n!r}",
        )
        require(
            self.w_schedule != "scaled" or n > 0,
            "w_schedule",
            "'scaled' needs the run's online updates (online_updates > 0)",
        )

    def schedule_k(self, hp_w_k: jax.Array) -> jax.Array:
        """The K the schedule uses: the hyperparameter (absolute) or it scaled to the run."""
        if self.w_schedule == "scaled":
            return scaled_w_k(hp_w_k, self.online_updates)
        return hp_w_k


_PRESET_FIELDS = (
    "clip_beta", "w0", "w_k", "w_min", "top_n", "target_entropy_per_dim", "policy",
    "reward_normalization",
)  # fmt: skip
# configs/online/*.yaml and configs/offline/*.yaml of the official code. The maze
# reward shift applies in both phases (a deviation: the official offline run had no shift).
# fmt: off
ACA_PRESETS: dict[str, dict[str, Any]] = {
    kind: dict(zip(_PRESET_FIELDS, row, strict=True))
    for kind, row in {
        #                 beta  w0   K      w_min top_n H/dim policy      rewards
        "random":        (7.0,  1.0, 10.0,  0.0,  0,    -1.0, "squashed", "none"),
        "medium":        (7.0,  1.0, 40.0,  0.5,  0,    -1.0, "squashed", "none"),
        "medium-replay": (7.0,  1.0, 40.0,  0.5,  50,   -1.0, "squashed", "none"),
        "medium-expert": (15.0, 1.0, 100.0, 1.0,  50,   -1.0, "squashed", "none"),
        "expert":        (15.0, 1.0, 100.0, 1.0,  50,   -1.0, "squashed", "none"),
        "maze":          (3.0,  1.0, 200.0, 0.5,  0,    -0.5, "maze",     "minus_one"),
    }.items()
}
# fmt: on
_PRESET_HPARAMS = ("clip_beta", "w0", "w_k", "w_min", "target_entropy_per_dim")


def aca_preset(
    kind: str, alignment: bool = True, **config_overrides: Any
) -> tuple[ACAConfig, ACAHParams, int]:
    """(config, hparams, top_n) of a dataset kind's official settings; `alignment=False` gives
    sac-direct with the same settings. `config_overrides` replace config fields (e.g. hidden)."""
    if kind not in ACA_PRESETS:
        raise ConfigError(f"aca.kind: unknown {kind!r}; choose one of {tuple(ACA_PRESETS)}")
    p = ACA_PRESETS[kind]
    fields = {"policy": p["policy"], "reward_normalization": p["reward_normalization"]}
    config = ACAConfig(**(fields | {"alignment": alignment} | config_overrides))
    hp = build_hparams(ACAHParams, "aca", {k: p[k] for k in _PRESET_HPARAMS})
    validate_aca_hparams(hp)
    return config, hp, int(p["top_n"])
