"""ACA with the collapse study's diagnostic switches (`benchmarks/aca_collapse.py`): not official,
kept out of `jaxo2o/methods/aca.py` so that the method's config holds only what the method needs.

`aca-variant` is ACA (or sac-direct with `alignment=False`) whose online phase can depart from
the official code in one way at a time; with every switch at its default it is ACA exactly (the
same program):
- `online_temperature="keep"`: the offline temperature carried across the switch (official:
  reset to alpha = 1);
- `online_optimizers="fresh"`: new Adam states for the actor, critic and temperature at the switch
  (official: the offline ones carried over);
- `online_frozen="critic"`: the online critic never updated, so the actor trains against the
  critic it had at the switch;
- `online_ml=True`: SAC+ML's actor loss (with its behaviour-likelihood term) kept online.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import optax

from jaxo2o.config import require_in
from jaxo2o.core.optim import NetState, net_init
from jaxo2o.core.transitions import Transitions
from jaxo2o.methods.aca import ACA, ml_actor_loss
from jaxo2o.methods.aca_policies import policy_log_prob
from jaxo2o.methods.aca_settings import ACAConfig, ACAHParams

CHOICES = {
    "online_temperature": ("reset", "keep"),
    "online_optimizers": ("carry", "fresh"),
    "online_frozen": ("none", "critic"),
}


@dataclass(frozen=True)
class ACAVariantConfig(ACAConfig):
    """ACA's config and the diagnostic switches (module docstring); defaults are official."""

    online_temperature: str = "reset"
    online_ml: bool = False
    online_optimizers: str = "carry"
    online_frozen: str = "none"

    def __post_init__(self):
        super().__post_init__()
        require = partial(require_in, "aca-variant")
        for field, choices in CHOICES.items():
            value = getattr(self, field)
            require(value in choices, field, f"unknown {value!r}; choose one of {choices}")
        ok = isinstance(self.online_ml, bool)
        require(ok, "online_ml", f"must be True or False, got {self.online_ml!r}")


class ACAVariant(ACA):
    name = "aca-variant"
    Config = ACAVariantConfig

    def to_online(self, state: Any, key: jax.Array, hp: ACAHParams) -> Any:
        online = super().to_online(state, key, hp)
        if self.config.online_optimizers != "fresh":
            return online
        return online._replace(
            actor=net_init(online.actor.params, optax.adam(hp.actor_lr)),
            critic=net_init(online.critic.params, optax.adam(hp.critic_lr)),
            log_alpha=net_init(online.log_alpha.params, optax.adam(hp.alpha_lr)),
        )

    def switch_temperature(self, log_alpha: NetState) -> NetState:
        if self.config.online_temperature == "keep":
            return log_alpha
        return super().switch_temperature(log_alpha)

    def online_critic_step(
        self, critic: NetState, batch: Transitions, y: jax.Array, hp: ACAHParams, offset: Any
    ) -> tuple[NetState, jax.Array, jax.Array]:
        stepped, loss, q_mean = super().online_critic_step(critic, batch, y, hp, offset)
        if self.config.online_frozen == "critic":
            return critic, loss, q_mean
        return stepped, loss, q_mean

    def online_actor_objective(self, loc, log_std, logp, q, batch, alpha, hp) -> jax.Array:
        if not self.config.online_ml:
            return super().online_actor_objective(loc, log_std, logp, q, batch, alpha, hp)
        logp_data = policy_log_prob(self.config.policy, loc, log_std, batch.action)
        return ml_actor_loss(logp, q, logp_data, alpha, hp.ml_alpha)[0]
