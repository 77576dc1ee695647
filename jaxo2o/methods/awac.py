"""AWAC, Advantage-Weighted Actor-Critic (Nair et al. 2020), as in CORL's fine-tuning baseline.

Networks: a Gaussian actor (3x256 ReLU) with an *unbounded* mean and a state-independent log-std
clamped to [-20, 2]; two critics (3x256 ReLU) with Polyak targets (tau 0.005). Orthogonal
initialisation (the project's MLP default; CORL uses PyTorch's default). Adam everywhere.

One update (CORL's order: critic -> actor -> target):
1. Q:  y = r + gamma * mask * min_j Qbar_j(s', a'), a' ~ pi(.|s') clamped to [-1, 1]; the two
       critics' mean squared errors are summed. mask is 0 only after a true termination.
2. pi: A = min_j Q_j(s, a) - min_j Q_j(s, a_pi) with the *updated* critics and one policy sample
       a_pi ~ pi(.|s) clamped to [-1, 1]; L = -mean(min(exp(A / lambda), 100) * log pi(a|s)), the
       log-probability of the raw (not squashed) Gaussian at the stored action.
3. target: Qbar <- (1 - tau) Qbar + tau Q.

The temperature lambda is traced. AntMaze uses 0.1 (CORL config). The locomotion default is
lambda = 1.0: it is the default of CORL's AWAC code (the original paper's locomotion value is not
confirmed here); it weights advantages mildly, which keeps the actor close to the data where
the critic is reliable.

Acting: evaluation uses the mean clipped to [-1, 1]; exploration samples and clips to [-1, 1].

Observation normalization (`AWACConfig.obs_normalization`, static): with "dataset" (the presets
and the suite) every network input is (s - mean) / std with the offline dataset's per-dimension
observation mean and standard deviation + 1e-3, as CORL's `algorithms/finetune/awac.py`
(`compute_mean_std(dataset["observations"], eps=1e-3)`, applied to the dataset's observations and
next observations and, through `wrap_env`, to the training and evaluation environments). Here the
statistics are static config (`obs_mean`, `obs_std`) that the experiment layer computes once on
the host from the dataset (`jaxo2o.experiment.plan.with_observation_statistics`), and the method
applies them inside `policy` and `q`, the only places where observations enter a network: the
dataset, the replay buffer and the environments keep raw observations, and the actor at
evaluation and while acting online sees exactly the transform the updates see. A method knows no
dataset; a static field (not a traced hyperparameter) because the statistics are fixed by the
dataset for the whole program and no sweep varies them. With "none" (the config default) the
observations enter as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxo2o.config import ConfigError, require_in, validate_hparams
from jaxo2o.core.distributions import gaussian_log_prob, gaussian_sample
from jaxo2o.core.flops import Pass
from jaxo2o.core.losses import (
    awr_actor_loss,
    awr_weights,
    ensemble_mse,
    td_target,
    weight_ess,
)
from jaxo2o.core.method import Method, check_network_config
from jaxo2o.core.networks import CriticEnsemble, GaussianPolicy, init_actor_critic
from jaxo2o.core.optim import NetState, net_init, net_step, polyak
from jaxo2o.core.transitions import Transitions
from jaxo2o.methods.iql import (
    CriticFn,
    LogProbFn,
    Metrics,
    min_q,
)

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
OBS_NORMALIZATIONS = ("none", "dataset")


# ------------------------------------------------------------------ pure losses
def awac_critic_target(
    target_critic_fn: CriticFn,
    target_critic_params: Any,
    reward: jax.Array,
    mask: jax.Array,
    next_obs: jax.Array,
    next_action: jax.Array,
    discount: jax.Array,
) -> jax.Array:
    """y = r + gamma * mask * min_j Qbar_j(s', a'), without gradient."""
    next_q = min_q(target_critic_fn, target_critic_params, next_obs, next_action)
    return td_target(reward, mask, next_q, discount)


def awac_critic_loss(
    critic_params: Any, critic_fn: CriticFn, obs: jax.Array, action: jax.Array, target: jax.Array
) -> tuple[jax.Array, Metrics]:
    """Sum over the critics of the mean squared TD error."""
    q = critic_fn(critic_params, obs, action)
    return ensemble_mse(q, target), {"q_mean": jnp.mean(q)}


def awac_advantage(
    critic_fn: CriticFn, critic_params: Any, obs: jax.Array, action: jax.Array, pi_action: jax.Array
) -> jax.Array:
    """A = min_j Q_j(s, a) - min_j Q_j(s, a_pi), without gradient."""
    adv = min_q(critic_fn, critic_params, obs, action) - min_q(
        critic_fn, critic_params, obs, pi_action
    )
    return jax.lax.stop_gradient(adv)


def awac_actor_loss(
    actor_params: Any,
    log_prob_fn: LogProbFn,
    obs: jax.Array,
    action: jax.Array,
    advantage: jax.Array,
    awac_lambda: jax.Array,
) -> tuple[jax.Array, Metrics]:
    """-mean(min(exp(A / lambda), 100) * log pi(a|s)): the shared AWR loss with beta = 1/lambda."""
    w = awr_weights(advantage, 1.0 / awac_lambda)
    log_prob = log_prob_fn(actor_params, obs, action)
    return awr_actor_loss(log_prob, w), {
        "adv_mean": jnp.mean(advantage),
        "weight_mean": jnp.mean(w),
        "weight_ess": weight_ess(w),
        "weight_max": jnp.max(w),
    }


# ------------------------------------------------------------------ hyperparameters
@flax.struct.dataclass
class AWACHParams:
    """Traced: a sweep may vmap over any of these."""

    awac_lambda: jnp.ndarray = 1.0  # temperature: weights exp(A / lambda)
    actor_lr: jnp.ndarray = 3e-4
    critic_lr: jnp.ndarray = 3e-4
    discount: jnp.ndarray = 0.99
    tau: jnp.ndarray = 0.005


def validate_awac_hparams(hp: AWACHParams) -> AWACHParams:
    """Raise ConfigError naming the first out-of-range field (grids: every value is checked)."""
    return validate_hparams(
        hp,
        "awac",
        positive=("awac_lambda", "actor_lr", "critic_lr", "tau"),
        unit_interval=("discount", "tau"),
    )


@dataclass(frozen=True)
class AWACConfig:
    """Static: shapes, and the observation statistics (module docstring)."""

    hidden: tuple[int, ...] = (256, 256, 256)
    n_critics: int = 2
    reward_normalization: str = "none"
    obs_normalization: str = "none"  # "dataset": CORL's state normalization
    obs_mean: tuple[float, ...] = ()  # the dataset's; set by the experiment layer
    obs_std: tuple[float, ...] = ()  # the dataset's std + 1e-3; likewise

    def __post_init__(self):
        require = partial(require_in, "awac")

        check_network_config(self, "awac")
        kind = self.obs_normalization
        require(
            kind in OBS_NORMALIZATIONS,
            "obs_normalization",
            f"unknown {kind!r}; choose one of {OBS_NORMALIZATIONS}",
        )
        require(
            len(self.obs_mean) == len(self.obs_std),
            "obs_std",
            f"{len(self.obs_std)} values for {len(self.obs_mean)} in obs_mean",
        )
        require(
            kind == "dataset" or not self.obs_mean,
            "obs_mean",
            "observation statistics need obs_normalization='dataset'",
        )
        std = np.asarray(self.obs_std, np.float64)
        require(np.all(std > 0), "obs_std", "every value must be > 0")


AWAC_PRESETS: dict[str, dict[str, Any]] = {
    "locomotion": {"awac_lambda": 1.0, "reward_normalization": "none"},
    "antmaze": {"awac_lambda": 0.1, "reward_normalization": "minus_one"},
}


def awac_preset(domain: str, **config_overrides: Any) -> tuple[AWACConfig, AWACHParams]:
    """CORL's settings of a domain, observation normalization included (its statistics come from
    the dataset: the experiment layer fills them in)."""
    if domain not in AWAC_PRESETS:
        raise ConfigError(f"awac.domain: unknown {domain!r}; choose one of {tuple(AWAC_PRESETS)}")
    p = AWAC_PRESETS[domain]
    config = AWACConfig(
        reward_normalization=p["reward_normalization"],
        **({"obs_normalization": "dataset"} | config_overrides),
    )
    return config, AWAC(config).default_hparams(awac_lambda=p["awac_lambda"])


# ------------------------------------------------------------------ the method
class AWACState(NamedTuple):
    actor: NetState
    critic: NetState
    target_critic: Any


class AWAC(Method):
    name = "awac"
    Config = AWACConfig
    HParams = AWACHParams

    def __init__(self, config: AWACConfig | None = None):
        super().__init__(config)
        self._critic = CriticEnsemble(self.config.hidden, self.config.n_critics)
        self._obs_mean = np.asarray(self.config.obs_mean, np.float32)
        self._obs_std = np.asarray(self.config.obs_std, np.float32)

    def validate(self, hp: AWACHParams) -> AWACHParams:
        return validate_awac_hparams(hp)

    # -- observation normalization (module docstring)
    def check_obs_statistics(self, obs_size: int) -> None:
        """ConfigError unless the statistics fit `obs_size` (or none are asked for)."""
        if self.config.obs_normalization == "none":
            return
        n = self._obs_mean.shape[0]
        if n == 0:
            raise ConfigError(
                "awac.obs_mean: obs_normalization='dataset' needs the dataset's observation "
                "statistics; the experiment layer sets them "
                "(jaxo2o.experiment.plan.with_observation_statistics)"
            )
        if n != obs_size:
            raise ConfigError(f"awac.obs_mean: {n} values for observations of size {obs_size}")

    def normalize_obs(self, obs: jax.Array) -> jax.Array:
        """(s - mean) / std with the dataset's statistics; s itself without normalization."""
        if self.config.obs_normalization == "none":
            return obs
        self.check_obs_statistics(obs.shape[-1])
        return (obs - self._obs_mean) / self._obs_std

    # -- networks as plain functions
    def _actor(self, act_size: int) -> GaussianPolicy:
        return GaussianPolicy(
            act_size,
            self.config.hidden,
            log_std_min=LOG_STD_MIN,
            log_std_max=LOG_STD_MAX,
            tanh_mean=False,
        )

    def policy(self, actor_params: Any, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(mean, log_std) at raw observations (normalized here)."""
        act_size = actor_params["log_std"].shape[-1]
        return self._actor(act_size).apply({"params": actor_params}, self.normalize_obs(obs))

    def log_prob(self, actor_params: Any, obs: jax.Array, action: jax.Array) -> jax.Array:
        mean, log_std = self.policy(actor_params, obs)
        return gaussian_log_prob(mean, log_std, action)

    def sample(self, actor_params: Any, obs: jax.Array, key: jax.Array) -> jax.Array:
        """a ~ pi(.|s), clamped to [-1, 1]."""
        mean, log_std = self.policy(actor_params, obs)
        return jnp.clip(gaussian_sample(key, mean, log_std), -1.0, 1.0)

    def q(self, critic_params: Any, obs: jax.Array, action: jax.Array) -> jax.Array:
        """Q_j(s, a) at raw observations (normalized here)."""
        return self._critic.apply({"params": critic_params}, self.normalize_obs(obs), action)

    def init(self, key: jax.Array, obs_size: int, act_size: int, hp: AWACHParams) -> AWACState:
        self.check_obs_statistics(obs_size)
        actor_params, critic_params = init_actor_critic(
            key, self._actor(act_size), self._critic, obs_size, act_size
        )
        return AWACState(
            actor=net_init(actor_params, optax.adam(hp.actor_lr)),
            critic=net_init(critic_params, optax.adam(hp.critic_lr)),
            target_critic=critic_params,
        )

    # -- sub-steps
    def critic_step(
        self,
        critic: NetState,
        target_critic: Any,
        actor_params: Any,
        batch: Transitions,
        key: jax.Array,
        hp: AWACHParams,
    ) -> tuple[NetState, Metrics]:
        next_action = self.sample(actor_params, batch.next_obs, key)
        y = awac_critic_target(
            self.q,
            target_critic,
            batch.reward,
            batch.mask,
            batch.next_obs,
            next_action,
            hp.discount,
        )
        (loss, m), grads = jax.value_and_grad(awac_critic_loss, has_aux=True)(
            critic.params, self.q, batch.obs, batch.action, y
        )
        return net_step(critic, grads, optax.adam(hp.critic_lr)), {"critic_loss": loss, **m}

    def actor_step(
        self,
        actor: NetState,
        critic_params: Any,
        batch: Transitions,
        key: jax.Array,
        hp: AWACHParams,
    ) -> tuple[NetState, Metrics]:
        pi_action = self.sample(actor.params, batch.obs, key)
        adv = awac_advantage(self.q, critic_params, batch.obs, batch.action, pi_action)
        (loss, m), grads = jax.value_and_grad(awac_actor_loss, has_aux=True)(
            actor.params, self.log_prob, batch.obs, batch.action, adv, hp.awac_lambda
        )
        return net_step(actor, grads, optax.adam(hp.actor_lr)), {"actor_loss": loss, **m}

    # -- the Method protocol
    def update(
        self, state: AWACState, batch: Transitions, key: jax.Array, hp: AWACHParams, online: bool
    ) -> tuple[AWACState, Metrics]:
        k_next, k_pi = jax.random.split(key)
        critic, m_c = self.critic_step(
            state.critic, state.target_critic, state.actor.params, batch, k_next, hp
        )
        actor, m_a = self.actor_step(state.actor, critic.params, batch, k_pi, hp)
        target = polyak(state.target_critic, critic.params, hp.tau)
        log_std = jnp.clip(actor.params["log_std"], LOG_STD_MIN, LOG_STD_MAX)
        m = {**m_c, **m_a, "log_std_mean": jnp.mean(log_std)}
        return AWACState(actor, critic, target), m

    def act(
        self, state: AWACState, obs: jax.Array, key: jax.Array, hp: AWACHParams, deterministic: bool
    ) -> tuple[jax.Array, Metrics]:
        if deterministic:
            mean, _ = self.policy(state.actor.params, obs)
            return jnp.clip(mean, -1.0, 1.0), {}
        return self.sample(state.actor.params, obs, key), {}

    def flop_passes(self, obs_size: int, act_size: int, batch: int, online: bool) -> list[Pass]:
        h, n, b = tuple(self.config.hidden), self.config.n_critics, batch
        critic, actor = (obs_size + act_size, *h, 1), (obs_size, *h, act_size)
        return [
            Pass("actor(s') for a'", actor, b),
            Pass("target critics(s', a')", critic, b, n),
            Pass("critics(s, a) loss", critic, b, n, weight_grad=True),
            Pass("actor(s) for a_pi", actor, b),
            Pass("new critics(s, a) for A", critic, b, n),
            Pass("new critics(s, a_pi) for A", critic, b, n),
            Pass("actor(s) loss", actor, b, weight_grad=True, recomputed=True),
        ]
