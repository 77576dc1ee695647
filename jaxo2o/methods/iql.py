"""Implicit Q-Learning (Kostrikov et al. 2021): offline baseline, backbone of PEX and FamO2O.

Networks: twin critics Q1, Q2 with Polyak targets, a state value V, and a Gaussian policy whose
mean is tanh-bounded, with a state-independent log-std clipped to [-5, 2] and no squashing
(`GaussianPolicy`). All MLPs use orthogonal initialisation; Adam everywhere.

One update, in the official order (value -> actor -> critic -> target):
1. V:  expectile regression of V(s) onto min_j Qbar_j(s, a), the *target* critics;
2. pi: advantage-weighted regression, weights min(exp(beta (min_j Qbar_j(s, a) - V(s))), 100)
       with the target critics and the *new* V; dataset actions are clipped to +-(1 - 1e-5);
3. Q:  TD regression onto y = r + gamma * mask * V(s') with the new V, where mask is 0 only after
       a true termination (time-limit truncations bootstrap). The two critics' squared errors are
       **summed** (official IQL, `IQLConfig.critic_reduction="sum"`); PEX and CORL average them
       ("mean");
4. target: Qbar <- (1 - tau) Qbar + tau Q.

Actor learning rate (`IQLConfig.actor_schedule`, static):
- "cosine" (default; the official *offline* recipe, `learner.py`'s `opt_decay_schedule="cosine"`
  with `max_steps` from `train_offline.py`, and PEX's `main_offline.py`, `CosineAnnealingLR` over
  its steps): cosine decay from `actor_lr` to 0 over `IQLConfig.offline_steps` gradient steps of
  the offline phase (optax cosine schedule on the actor optimizer's step count; `offline_steps=0`
  disables the decay). Online the rate is the constant `actor_lr`. No official code fine-tunes
  after a cosine offline phase with the same optimizer: the rate jumps from ~0 to `actor_lr` at
  the switch while the Adam moments carry over. Use it for offline-only runs.
- "constant" (the official *fine-tuning* recipe, `configs/antmaze_finetune_config.py`:
  `opt_decay_schedule = None`, i.e. `optax.adam(actor_lr)`): `actor_lr` in both phases.
  `train_finetune.py` builds one `Learner` for the offline and the online steps, so the same
  Adam state (moments and step count) continues through the switch; here too (`to_online` is
  the identity). Use it for every run that fine-tunes.
CORL's fine-tuning IQL keeps stepping its cosine schedule online (a third variant, not offered).
PEX's online stage builds fresh optimizers with a constant rate (`jaxo2o.methods.pex`).

Evaluation acts with the policy mean; online exploration samples the Gaussian and clips to [-1, 1].

The loss functions below are module-level and take network-apply callables, so PEX and FamO2O
reuse them; the four sub-steps (`IQL.value_step`, `actor_step`, `critic_step`, `target_step`) act
on single networks, so PEX can keep the V/Q steps and replace only the actor step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import optax

from jaxo2o.config import ConfigError, require_in, validate_hparams
from jaxo2o.core.distributions import gaussian_log_prob, gaussian_sample
from jaxo2o.core.flops import Pass
from jaxo2o.core.losses import (
    awr_actor_loss,
    awr_weights,
    ensemble_mse,
    expectile_loss,
    td_target,
    weight_ess,
)
from jaxo2o.core.method import Method, check_network_config
from jaxo2o.core.networks import CriticEnsemble, GaussianPolicy, ValueNet
from jaxo2o.core.optim import NetState, net_init, net_step, polyak
from jaxo2o.core.transitions import Transitions

Metrics = dict[str, jax.Array]
ValueFn = Callable[[Any, jax.Array], jax.Array]  # (params, obs) -> (batch,)
CriticFn = Callable[[Any, jax.Array, jax.Array], jax.Array]  # (params, obs, act) -> (n, batch)
LogProbFn = Callable[[Any, jax.Array, jax.Array], jax.Array]  # (params, obs, act) -> (batch,)

ACTION_CLIP = 1.0 - 1e-5  # dataset actions are clipped to +-this for the policy log-probability
CRITIC_REDUCTIONS = ("sum", "mean")
ACTOR_SCHEDULES = ("cosine", "constant")  # offline recipe, fine-tuning recipe (module docstring)


# ------------------------------------------------------------------ pure losses (shared)
def min_q(critic_fn: CriticFn, critic_params: Any, obs: jax.Array, action: jax.Array) -> jax.Array:
    """min_j Q_j(s, a) over the critic ensemble."""
    return jnp.min(critic_fn(critic_params, obs, action), axis=0)


def iql_value_loss(
    value_params: Any,
    value_fn: ValueFn,
    obs: jax.Array,
    q_target: jax.Array,
    expectile: jax.Array,
) -> tuple[jax.Array, Metrics]:
    """Expectile regression of V(s) onto `q_target` = min_j Qbar_j(s, a) (treated as constant)."""
    v = value_fn(value_params, obs)
    loss = expectile_loss(jax.lax.stop_gradient(q_target) - v, expectile)
    return loss, {"v_mean": jnp.mean(v)}


def iql_critic_target(
    value_fn: ValueFn,
    value_params: Any,
    reward: jax.Array,
    mask: jax.Array,
    next_obs: jax.Array,
    discount: jax.Array,
) -> jax.Array:
    """y = r + gamma * mask * V(s'), without gradient."""
    return td_target(reward, mask, value_fn(value_params, next_obs), discount)


def iql_critic_loss(
    critic_params: Any,
    critic_fn: CriticFn,
    obs: jax.Array,
    action: jax.Array,
    target: jax.Array,
    reduction: str = "sum",
) -> tuple[jax.Array, Metrics]:
    """Squared TD error of each critic against `target`, summed (official) or averaged."""
    q = critic_fn(critic_params, obs, action)
    loss = ensemble_mse(q, target)
    if reduction == "mean":
        loss = loss / q.shape[0]
    elif reduction != "sum":
        raise ValueError(
            f"critic_reduction: unknown {reduction!r}; choose one of {CRITIC_REDUCTIONS}"
        )
    return loss, {"q_mean": jnp.mean(q)}


def iql_actor_loss(
    actor_params: Any,
    log_prob_fn: LogProbFn,
    obs: jax.Array,
    action: jax.Array,
    advantage: jax.Array,
    inverse_temperature: jax.Array,
    clip_actions: bool = True,
) -> tuple[jax.Array, Metrics]:
    """AWR: -mean(min(exp(beta * A), 100) * log pi(a|s)).

    `inverse_temperature` may be a scalar or per-sample (FamO2O). With `clip_actions`, actions are
    clipped to +-(1 - 1e-5) before the log-probability (official IQL's dataset preprocessing).
    """
    w = awr_weights(advantage, inverse_temperature)
    if clip_actions:
        action = jnp.clip(action, -ACTION_CLIP, ACTION_CLIP)
    log_prob = log_prob_fn(actor_params, obs, action)
    return awr_actor_loss(log_prob, w), {
        "adv_mean": jnp.mean(advantage),
        "weight_mean": jnp.mean(w),
        "weight_ess": weight_ess(w),
        "weight_max": jnp.max(w),
    }


# ------------------------------------------------------------------ hyperparameters
@flax.struct.dataclass
class IQLHParams:
    """Traced: a sweep may vmap over any of these."""

    expectile: jnp.ndarray = 0.7
    inverse_temperature: jnp.ndarray = 3.0  # beta in exp(beta * A)
    actor_lr: jnp.ndarray = 3e-4
    critic_lr: jnp.ndarray = 3e-4
    value_lr: jnp.ndarray = 3e-4
    discount: jnp.ndarray = 0.99
    tau: jnp.ndarray = 0.005


def validate_iql_hparams(hp: IQLHParams) -> IQLHParams:
    """Raise ConfigError naming the first out-of-range field (grids: every value is checked)."""
    return validate_hparams(
        hp,
        "iql",
        positive=("expectile", "actor_lr", "critic_lr", "value_lr", "tau"),
        nonnegative=("inverse_temperature",),
        unit_interval=("expectile", "discount", "tau"),
    )


@dataclass(frozen=True)
class IQLConfig:
    """Static: shapes and step counts."""

    hidden: tuple[int, ...] = (256, 256)
    n_critics: int = 2
    offline_steps: int = 0  # cosine horizon of the actor LR (set it to the run's); 0 = no decay
    reward_normalization: str = "none"
    critic_reduction: str = "sum"
    actor_schedule: str = "cosine"  # "constant" for runs that fine-tune (module docstring)

    def __post_init__(self):
        require = partial(require_in, "iql")

        check_network_config(self, "iql")
        require(
            isinstance(self.offline_steps, int) and self.offline_steps >= 0,
            "offline_steps",
            f"must be an integer >= 0, got {self.offline_steps!r}",
        )
        require(
            self.critic_reduction in CRITIC_REDUCTIONS,
            "critic_reduction",
            f"unknown {self.critic_reduction!r}; choose one of {CRITIC_REDUCTIONS}",
        )
        require(
            self.actor_schedule in ACTOR_SCHEDULES,
            "actor_schedule",
            f"unknown {self.actor_schedule!r}; choose one of {ACTOR_SCHEDULES}",
        )


IQL_PRESETS: dict[str, dict[str, Any]] = {
    # official IQL configs (ikostrikov/implicit_q_learning's configs)
    "locomotion": {
        "expectile": 0.7,
        "inverse_temperature": 3.0,
        "reward_normalization": "trajectory_range",
    },
    "antmaze": {"expectile": 0.9, "inverse_temperature": 10.0, "reward_normalization": "minus_one"},
}


def iql_preset(
    domain: str, offline_steps: int, **config_overrides: Any
) -> tuple[IQLConfig, IQLHParams]:
    """(config, hparams) of a domain's official settings, with the cosine horizon of the run."""
    if domain not in IQL_PRESETS:
        raise ConfigError(f"iql.domain: unknown {domain!r}; choose one of {tuple(IQL_PRESETS)}")
    p = IQL_PRESETS[domain]
    config = IQLConfig(
        offline_steps=offline_steps,
        reward_normalization=p["reward_normalization"],
        **config_overrides,
    )
    hp = IQL(config).default_hparams(
        expectile=p["expectile"], inverse_temperature=p["inverse_temperature"]
    )
    return config, hp


# ------------------------------------------------------------------ the method
class IQLState(NamedTuple):
    actor: NetState
    critic: NetState
    target_critic: Any
    value: NetState


class IQL(Method):
    name = "iql"
    Config = IQLConfig
    HParams = IQLHParams

    def __init__(self, config: IQLConfig | None = None):
        super().__init__(config)
        self._critic = CriticEnsemble(self.config.hidden, self.config.n_critics)
        self._value = ValueNet(self.config.hidden)

    def validate(self, hp: IQLHParams) -> IQLHParams:
        return validate_iql_hparams(hp)

    # -- networks as plain functions
    def _actor(self, act_size: int) -> GaussianPolicy:
        return GaussianPolicy(act_size, self.config.hidden)

    def policy(self, actor_params: Any, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(mean, log_std) of the policy."""
        act_size = actor_params["log_std"].shape[-1]
        return self._actor(act_size).apply({"params": actor_params}, obs)

    def log_prob(self, actor_params: Any, obs: jax.Array, action: jax.Array) -> jax.Array:
        mean, log_std = self.policy(actor_params, obs)
        return gaussian_log_prob(mean, log_std, action)

    def q(self, critic_params: Any, obs: jax.Array, action: jax.Array) -> jax.Array:
        return self._critic.apply({"params": critic_params}, obs, action)

    def v(self, value_params: Any, obs: jax.Array) -> jax.Array:
        return self._value.apply({"params": value_params}, obs)

    # -- optimizers (built from the traced hparams; their states do not depend on the rates)
    def actor_learning_rate(self, hp: IQLHParams, online: bool) -> Callable[[jax.Array], jax.Array]:
        """The actor's rate as a function of its optimizer step count (module docstring)."""
        constant = self.config.actor_schedule == "constant" or self.config.offline_steps == 0
        if online or constant:
            return lambda count: hp.actor_lr * jnp.ones_like(count, jnp.float32)
        return optax.cosine_decay_schedule(hp.actor_lr, self.config.offline_steps)

    def actor_tx(self, hp: IQLHParams, online: bool) -> optax.GradientTransformation:
        return optax.adam(self.actor_learning_rate(hp, online))

    def init_actor(self, key: jax.Array, obs_size: int, act_size: int, hp: IQLHParams) -> NetState:
        """A freshly initialised policy with its optimizer state (PEX's new online policy)."""
        params = self._actor(act_size).init(key, jnp.zeros((1, obs_size)))["params"]
        return net_init(params, self.actor_tx(hp, online=False))

    def init(self, key: jax.Array, obs_size: int, act_size: int, hp: IQLHParams) -> IQLState:
        k_a, k_c, k_v = jax.random.split(key, 3)
        obs, act = jnp.zeros((1, obs_size)), jnp.zeros((1, act_size))
        critic_params = self._critic.init(k_c, obs, act)["params"]
        value_params = self._value.init(k_v, obs)["params"]
        return IQLState(
            actor=self.init_actor(k_a, obs_size, act_size, hp),
            critic=net_init(critic_params, optax.adam(hp.critic_lr)),
            target_critic=critic_params,
            value=net_init(value_params, optax.adam(hp.value_lr)),
        )

    # -- the four sub-steps
    def value_step(
        self,
        value: NetState,
        target_critic: Any,
        batch: Transitions,
        hp: IQLHParams,
        q_target: jax.Array | None = None,
    ) -> tuple[NetState, Metrics]:
        """`q_target` = min_j Qbar_j(s, a), if the caller has it already (see `update`)."""
        if q_target is None:
            q_target = min_q(self.q, target_critic, batch.obs, batch.action)
        (loss, m), grads = jax.value_and_grad(iql_value_loss, has_aux=True)(
            value.params, self.v, batch.obs, q_target, hp.expectile
        )
        return net_step(value, grads, optax.adam(hp.value_lr)), {"value_loss": loss, **m}

    def advantage(
        self, target_critic: Any, value_params: Any, obs, action, q_target=None
    ) -> jax.Array:
        """A(s, a) = min_j Qbar_j(s, a) - V(s), without gradient (`q_target`: the first term)."""
        if q_target is None:
            q_target = min_q(self.q, target_critic, obs, action)
        return jax.lax.stop_gradient(q_target - self.v(value_params, obs))

    def actor_step(
        self,
        actor: NetState,
        target_critic: Any,
        value_params: Any,
        batch: Transitions,
        hp: IQLHParams,
        online: bool,
        q_target: jax.Array | None = None,
    ) -> tuple[NetState, Metrics]:
        adv = self.advantage(target_critic, value_params, batch.obs, batch.action, q_target)
        (loss, m), grads = jax.value_and_grad(iql_actor_loss, has_aux=True)(
            actor.params, self.log_prob, batch.obs, batch.action, adv, hp.inverse_temperature
        )
        count = actor.opt_state[1].count  # the schedule's step count (before this step)
        lr = self.actor_learning_rate(hp, online)(count)
        new = net_step(actor, grads, self.actor_tx(hp, online))
        return new, {"actor_loss": loss, "actor_lr": lr, **m}

    def critic_step(
        self, critic: NetState, value_params: Any, batch: Transitions, hp: IQLHParams
    ) -> tuple[NetState, Metrics]:
        y = iql_critic_target(
            self.v, value_params, batch.reward, batch.mask, batch.next_obs, hp.discount
        )
        (loss, m), grads = jax.value_and_grad(iql_critic_loss, has_aux=True)(
            critic.params, self.q, batch.obs, batch.action, y, self.config.critic_reduction
        )
        return net_step(critic, grads, optax.adam(hp.critic_lr)), {"critic_loss": loss, **m}

    def target_step(self, target_critic: Any, critic_params: Any, hp: IQLHParams) -> Any:
        return polyak(target_critic, critic_params, hp.tau)

    # -- the Method protocol
    def update(
        self, state: IQLState, batch: Transitions, key: jax.Array, hp: IQLHParams, online: bool
    ) -> tuple[IQLState, Metrics]:
        # min_j Qbar_j(s, a) serves both the value and the actor step: computed once here, as
        # XLA does not always merge the two identical forward passes inside a scanned loop
        q_target = min_q(self.q, state.target_critic, batch.obs, batch.action)
        value, m_v = self.value_step(state.value, state.target_critic, batch, hp, q_target)
        actor, m_a = self.actor_step(
            state.actor, state.target_critic, value.params, batch, hp, online, q_target
        )
        critic, m_c = self.critic_step(state.critic, value.params, batch, hp)
        target = self.target_step(state.target_critic, critic.params, hp)
        return IQLState(actor, critic, target, value), {**m_v, **m_a, **m_c}

    def act(
        self, state: IQLState, obs: jax.Array, key: jax.Array, hp: IQLHParams, deterministic: bool
    ) -> tuple[jax.Array, Metrics]:
        mean, log_std = self.policy(state.actor.params, obs)
        if deterministic:
            return jnp.clip(mean, -1.0, 1.0), {}
        return jnp.clip(gaussian_sample(key, mean, log_std), -1.0, 1.0), {}

    def flop_passes(self, obs_size: int, act_size: int, batch: int, online: bool) -> list[Pass]:
        return iql_passes(self.config, obs_size, act_size, batch)


def iql_passes(config: IQLConfig, obs_size: int, act_size: int, batch: int) -> list[Pass]:
    """The network evaluations of one IQL update (shared with PEX's offline phase)."""
    h, n, b = tuple(config.hidden), config.n_critics, batch
    critic, value, actor = (obs_size + act_size, *h, 1), (obs_size, *h, 1), (obs_size, *h, act_size)
    return [
        Pass("target critics(s, a) for V", critic, b, n),
        Pass("V(s) loss", value, b, weight_grad=True),
        Pass("new V(s) for A", value, b),
        Pass("actor(s) loss", actor, b, weight_grad=True),
        Pass("new V(s') for y", value, b),
        Pass("critics(s, a) loss", critic, b, n, weight_grad=True),
    ]
