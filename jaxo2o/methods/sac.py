"""Soft Actor-Critic (Haarnoja et al. 2018) with automatic temperature, trained online.

Networks: a tanh-squashed Gaussian actor with state-dependent log-std, an ensemble of two
critics with Polyak-averaged targets. Per update: critic, actor, temperature, target.
The critic target is r + gamma * mask * (min_j Qbar_j(s', a') - alpha log pi(a'|s')),
with a' ~ pi(s') and mask 0 only after a true termination (time limits bootstrap).

SAC has no offline phase of its own: run it with `offline_steps=0` and the scratch protocol.
If given offline updates it simply runs the same SAC update on dataset batches.

Defaults follow jaxrl's SAC (ikostrikov/jaxrl `jaxrl/agents/sac/sac_learner.py`,
`jaxrl/networks/policies.py`): target entropy -dim(A)/2 (`target_entropy_per_dim=-0.5`; jaxrl:
`self.target_entropy = -action_dim / 2` when none is given), the policy's log-std clipped to
[-10, 2] (`LOG_STD_MIN = -10.0`, `LOG_STD_MAX = 2.0`), initial temperature 1, Adam 3e-4 for the
actor, the critics and the temperature, tau 0.005, the entropy term in the critic target
(`backup_entropy=True`), hidden layers orthogonal at scale sqrt(2) and the policy's output layer at
scale 1 (`policy_final_fc_init_scale=1.0`). jaxrl has one output layer each for the mean and the
log-std; here one layer of twice the width holds both (orthogonal over the joint matrix).
The behaviour SAC that makes the datasets (`jaxo2o.data.generate.behaviour_method`) keeps the
values it was made with, -dim(A) and [-20, 2], passed explicitly, so no dataset changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import optax

from jaxo2o.config import ConfigError, validate_hparams
from jaxo2o.core.distributions import tanh_gaussian_action, tanh_gaussian_sample
from jaxo2o.core.flops import Pass
from jaxo2o.core.losses import ensemble_mse, td_target, temperature_loss
from jaxo2o.core.method import Method, check_network_config
from jaxo2o.core.networks import CriticEnsemble, TanhGaussianPolicy, init_actor_critic
from jaxo2o.core.optim import NetState, net_init, net_step, polyak


@flax.struct.dataclass
class SACHParams:
    actor_lr: jnp.ndarray = 3e-4
    critic_lr: jnp.ndarray = 3e-4
    alpha_lr: jnp.ndarray = 3e-4
    discount: jnp.ndarray = 0.99
    tau: jnp.ndarray = 0.005
    init_temperature: jnp.ndarray = 1.0
    target_entropy_per_dim: jnp.ndarray = -0.5  # target entropy = this * action size (jaxrl)


class SACState(NamedTuple):
    actor: NetState
    critic: NetState
    target_critic: dict
    log_alpha: NetState


def sac_state(actor_params: Any, critic_params: Any, hp: Any) -> SACState:
    """A SAC learner's start from its networks' parameters: Adam states at `hp`'s learning rates,
    the target critic equal to the critic, log alpha at log(`hp.init_temperature`) (also RLPD's)."""
    log_alpha = jnp.log(jnp.asarray(hp.init_temperature, jnp.float32))
    return SACState(
        actor=net_init(actor_params, optax.adam(hp.actor_lr)),
        critic=net_init(critic_params, optax.adam(hp.critic_lr)),
        target_critic=critic_params,
        log_alpha=net_init(log_alpha, optax.adam(hp.alpha_lr)),
    )


@dataclass(frozen=True)
class SACConfig:
    hidden: tuple[int, ...] = (256, 256)
    n_critics: int = 2
    log_std_min: float = -10.0  # the policy's log-std bounds (jaxrl's)
    log_std_max: float = 2.0

    def __post_init__(self):
        check_network_config(self, "sac")
        if not self.log_std_min < self.log_std_max:
            raise ConfigError(
                f"sac.log_std_min: must be below log_std_max={self.log_std_max}, "
                f"got {self.log_std_min}"
            )


class SAC(Method):
    name = "sac"
    Config = SACConfig
    HParams = SACHParams

    def __init__(self, config: SACConfig | None = None):
        super().__init__(config)
        self._critic = CriticEnsemble(self.config.hidden, self.config.n_critics)

    def validate(self, hp: SACHParams) -> SACHParams:
        """Raise ConfigError naming the first out-of-range field (see `validate_hparams`)."""
        return validate_hparams(
            hp,
            "sac",
            positive=("actor_lr", "critic_lr", "alpha_lr", "init_temperature"),
            unit_interval=("discount", "tau"),
        )

    def _actor(self, act_size: int) -> TanhGaussianPolicy:
        c = self.config
        return TanhGaussianPolicy(act_size, c.hidden, c.log_std_min, c.log_std_max)

    def init(self, key, obs_size, act_size, hp: SACHParams) -> SACState:
        actor_params, critic_params = init_actor_critic(
            key, self._actor(act_size), self._critic, obs_size, act_size
        )
        return sac_state(actor_params, critic_params, hp)

    # -- pieces reused by ACA and the datasets' behaviour policies
    def policy(self, actor_params, obs, act_size: int):
        return self._actor(act_size).apply({"params": actor_params}, obs)

    def sample(self, actor_params, obs, key, act_size: int):
        mean, log_std = self.policy(actor_params, obs, act_size)
        return tanh_gaussian_sample(key, mean, log_std)

    def q(self, critic_params, obs, action):
        return self._critic.apply({"params": critic_params}, obs, action)

    def update(self, state: SACState, batch, key, hp: SACHParams, online: bool):
        act_size = batch.action.shape[-1]
        k_next, k_pi = jax.random.split(key)
        alpha = jnp.exp(state.log_alpha.params)

        # critic
        next_a, next_logp = self.sample(state.actor.params, batch.next_obs, k_next, act_size)
        next_q = jnp.min(self.q(state.target_critic, batch.next_obs, next_a), axis=0)
        target = td_target(batch.reward, batch.mask, next_q - alpha * next_logp, hp.discount)

        def critic_loss(params):
            q = self.q(params, batch.obs, batch.action)
            return ensemble_mse(q, target), jnp.mean(q)

        (c_loss, q_mean), c_grads = jax.value_and_grad(critic_loss, has_aux=True)(
            state.critic.params
        )
        critic = net_step(state.critic, c_grads, optax.adam(hp.critic_lr))

        # actor (against the updated critic)
        def actor_loss(params):
            a, logp = self.sample(params, batch.obs, k_pi, act_size)
            q = jnp.min(self.q(critic.params, batch.obs, a), axis=0)
            return jnp.mean(alpha * logp - q), logp

        (a_loss, logp), a_grads = jax.value_and_grad(actor_loss, has_aux=True)(state.actor.params)
        actor = net_step(state.actor, a_grads, optax.adam(hp.actor_lr))

        # temperature
        target_entropy = hp.target_entropy_per_dim * act_size
        t_loss, t_grad = jax.value_and_grad(temperature_loss)(
            state.log_alpha.params, logp, target_entropy
        )
        log_alpha = net_step(state.log_alpha, t_grad, optax.adam(hp.alpha_lr))

        new = SACState(actor, critic, polyak(state.target_critic, critic.params, hp.tau), log_alpha)
        metrics = {
            "critic_loss": c_loss,
            "actor_loss": a_loss,
            "alpha": alpha,
            "entropy": -jnp.mean(logp),
            "q_mean": q_mean,
        }
        return new, metrics

    def act(self, state: SACState, obs, key, hp: SACHParams, deterministic: bool):
        act_size = state.actor.params["Dense_0"]["bias"].shape[0] // 2
        mean, log_std = self.policy(state.actor.params, obs, act_size)
        return tanh_gaussian_action(key, mean, log_std, deterministic), {}

    def flop_passes(self, obs_size: int, act_size: int, batch: int, online: bool) -> list[Pass]:
        h, n, b = tuple(self.config.hidden), self.config.n_critics, batch
        critic = (obs_size + act_size, *h, 1)
        actor = (obs_size, *h, 2 * act_size)  # mean and log-std heads in one layer
        return [
            Pass("actor(s') for a'", actor, b),
            Pass("target critics(s', a')", critic, b, n),
            Pass("critics(s, a) loss", critic, b, n, weight_grad=True),
            Pass("actor(s) loss", actor, b, weight_grad=True),
            Pass("critics(s, a_pi) in actor loss", critic, b, n, input_grad=True),
        ]
