"""RLPD (Ball et al. 2023): SAC from scratch on symmetric offline/online batches, a LayerNorm
critic ensemble and a high update-to-data ratio.

Follows the official JAX code, ikostrikov/rlpd @c90fd4b (`rlpd/agents/sac/sac_learner.py`,
`rlpd/networks/*`, `configs/rlpd_config.py`, `train_finetuning.py`, README commands); spec:
`/work/shared/spec/calql_rlpd_wsrl.md` §2.

Networks: E = 10 critics with independent parameters, each [Dense -> LayerNorm -> ReLU] x L ->
Dense(1) on concat(s, a) (LayerNorm after the last hidden layer too); a tanh-Gaussian actor,
[Dense -> ReLU] x L (no LayerNorm), state-dependent log-std clipped to [-20, 2]; every kernel
xavier-uniform, biases 0. Adam 3e-4 for actor, critics and temperature (log alpha, init 0);
tau 0.005, gamma 0.99.

One online iteration with update-to-data ratio G (`update_many`, G = the run's
`updates_per_step`), on G batches:
- G critic steps, one per batch: a' ~ pi(s'), a subset Z of `n_target_critics` target critics
  drawn without replacement (fresh each step), y = r + gamma m (min_{j in Z} Qbar_j(s', a') -
  [backup_entropy] alpha log pi(a'|s')); loss mean over the 10 x B squared errors; Polyak update
  after each step;
- then one actor step on the last batch: mean(alpha log pi(a~|s) - mean_i Q_i(s, a~)) (the
  ensemble *mean*);
- then one temperature step: alpha (H - H_target), H = -mean log pi(a~|s) of the actor step,
  H_target = -|A|/2, gradient with respect to log alpha.
Each batch is half dataset, half online rows (the `buffer` protocol: fresh networks, 50/50). No
offline phase (run it with `offline_steps=0`); the official start (5,000 uniform random steps,
no updates) is the run's random warm-up.

Deviations (also in the README):
- Each of the G batches is drawn with its own 50/50 split, instead of one interleaved draw of
  B G rows cut into G slices: the same composition per slice (exactly half and half), the rows
  independently drawn.
- The actor's mean and log-std come from one Dense(2|A|) layer (xavier over the joint matrix: its
  fan-out is 2|A|, not |A| as with two separate heads).
- Offline actions are not clipped to +-(1 - 1e-5) (datasets are in [-1, 1]; log pi is not
  evaluated at dataset actions).
"""

from __future__ import annotations

from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxo2o.config import ConfigError, validate_hparams
from jaxo2o.core.distributions import tanh_gaussian_action, tanh_gaussian_sample
from jaxo2o.core.flops import Pass
from jaxo2o.core.losses import member_subset, td_target, temperature_loss
from jaxo2o.core.method import Method, check_network_config
from jaxo2o.core.networks import CriticEnsemble, TanhGaussianPolicy, init_actor_critic
from jaxo2o.core.optim import net_step, polyak
from jaxo2o.methods.sac import SACHParams, SACState, sac_state


# ------------------------------------------------------------------ losses (module level: tested)
def rlpd_target(
    next_q: jax.Array,
    reward: jax.Array,
    mask: jax.Array,
    discount: jax.Array,
    alpha: jax.Array,
    next_logp: jax.Array,
    backup_entropy: bool,
) -> jax.Array:
    """y = r + gamma m (min_j next_q_j - [backup_entropy] alpha log pi(a'|s')), next_q (k, B):
    the values of the target critics' random subset (`losses.member_subset`, no replacement)."""
    value = jnp.min(next_q, axis=0)
    if backup_entropy:
        value = value - alpha * next_logp
    return td_target(reward, mask, value, discount)


def ensemble_mean_mse(q: jax.Array, target: jax.Array) -> jax.Array:
    """Mean over critics and rows of (Q_i(s, a) - y)^2 (q: (E, B))."""
    return jnp.mean((q - target[None]) ** 2)


def mean_q_actor_loss(alpha: jax.Array, log_prob: jax.Array, q: jax.Array) -> jax.Array:
    """mean(alpha log pi(a~|s) - mean_i Q_i(s, a~)) (q: (E, B))."""
    return jnp.mean(alpha * log_prob - jnp.mean(q, axis=0))


# ------------------------------------------------------------------ the method
RLPDHParams = SACHParams  # SAC's rates, discount, tau, temperature; H_target = -|A| / 2


RLPDState = SACState  # actor, critic, target critic, log alpha


@dataclass(frozen=True)
class RLPDConfig:
    hidden: tuple[int, ...] = (256, 256)  # actor and critics (AntMaze, Adroit: 256 x 3)
    n_critics: int = 10
    n_target_critics: int = 2  # the target's subset (AntMaze: 1)
    backup_entropy: bool = True  # AntMaze, Adroit: False
    critic_layer_norm: bool = True
    reward_normalization: str = "none"  # AntMaze: minus_one (r - 1 on both halves)

    def __post_init__(self):
        check_network_config(self, "rlpd")
        k = self.n_target_critics
        if not (isinstance(k, int) and 1 <= k <= self.n_critics):
            raise ConfigError(
                f"rlpd.n_target_critics: must be an integer in [1, n_critics={self.n_critics}], "
                f"got {k!r}"
            )


XAVIER = nn.initializers.xavier_uniform()


class RLPD(Method):
    name = "rlpd"
    Config = RLPDConfig
    HParams = RLPDHParams

    def __init__(self, config: RLPDConfig | None = None):
        super().__init__(config)
        c = self.config
        self._critic = CriticEnsemble(
            c.hidden, c.n_critics, c.critic_layer_norm, kernel_init=XAVIER, out_init=XAVIER
        )
        # the target's subset, evaluated alone (official: only the drawn members are evaluated)
        self._subset = CriticEnsemble(
            c.hidden, c.n_target_critics, c.critic_layer_norm, kernel_init=XAVIER, out_init=XAVIER
        )

    def validate(self, hp: RLPDHParams) -> RLPDHParams:
        return validate_hparams(
            hp,
            self.name,
            positive=("actor_lr", "critic_lr", "alpha_lr", "init_temperature"),
            unit_interval=("discount", "tau"),
        )

    def _actor(self, act_size: int) -> TanhGaussianPolicy:
        hidden = self.config.hidden
        return TanhGaussianPolicy(
            act_size, hidden, -20.0, 2.0, kernel_init=XAVIER, head_init=XAVIER
        )

    def policy(self, params, obs, act_size: int):
        return self._actor(act_size).apply({"params": params}, obs)

    def sample(self, params, obs, key, act_size: int):
        return tanh_gaussian_sample(key, *self.policy(params, obs, act_size))

    def q(self, params, obs, action):
        return self._critic.apply({"params": params}, obs, action)

    def init(self, key, obs_size, act_size, hp: RLPDHParams) -> RLPDState:
        actor, critic = init_actor_critic(
            key, self._actor(act_size), self._critic, obs_size, act_size
        )
        return sac_state(actor, critic, hp)

    # ---------------------------------------------------------------- the three steps
    def critic_step(self, state: RLPDState, batch, key, hp: RLPDHParams):
        c, act_size = self.config, batch.action.shape[-1]
        k_next, k_subset = jax.random.split(key)
        alpha = jnp.exp(state.log_alpha.params)
        next_a, next_logp = self.sample(state.actor.params, batch.next_obs, k_next, act_size)
        idx = member_subset(k_subset, c.n_critics, c.n_target_critics, replace=False)
        members = jax.tree.map(lambda p: p[idx], state.target_critic)
        next_q = self._subset.apply({"params": members}, batch.next_obs, next_a)
        target = rlpd_target(
            next_q,
            batch.reward,
            batch.mask,
            hp.discount,
            alpha,
            next_logp,
            c.backup_entropy,
        )

        def loss(params):
            q = self.q(params, batch.obs, batch.action)
            return ensemble_mean_mse(q, target), jnp.mean(q)

        (value, q_mean), grads = jax.value_and_grad(loss, has_aux=True)(state.critic.params)
        critic = net_step(state.critic, grads, optax.adam(hp.critic_lr))
        target_critic = polyak(state.target_critic, critic.params, hp.tau)
        state = state._replace(critic=critic, target_critic=target_critic)
        return state, {"critic_loss": value, "q_mean": q_mean}

    def actor_temperature_step(self, state: RLPDState, batch, key, hp: RLPDHParams):
        act_size = batch.action.shape[-1]
        alpha = jnp.exp(state.log_alpha.params)

        def loss(params):
            a, logp = self.sample(params, batch.obs, key, act_size)
            return mean_q_actor_loss(alpha, logp, self.q(state.critic.params, batch.obs, a)), logp

        (a_loss, logp), grads = jax.value_and_grad(loss, has_aux=True)(state.actor.params)
        actor = net_step(state.actor, grads, optax.adam(hp.actor_lr))
        target_entropy = hp.target_entropy_per_dim * act_size
        t_loss, t_grad = jax.value_and_grad(temperature_loss)(
            state.log_alpha.params, logp, target_entropy
        )
        log_alpha = net_step(state.log_alpha, t_grad, optax.adam(hp.alpha_lr))
        metrics = {"actor_loss": a_loss, "alpha": alpha, "entropy": -jnp.mean(logp)}
        return state._replace(actor=actor, log_alpha=log_alpha), metrics

    # ---------------------------------------------------------------- the contract
    def update_many(self, state: RLPDState, batches, keys, hp: RLPDHParams, online: bool):
        """G critic steps (one per batch), then the actor and temperature on the last batch."""
        split = jax.vmap(jax.random.split)(keys)  # (G, 2, key)

        def critic(state, xs):
            return self.critic_step(state, *xs, hp)

        state, cm = jax.lax.scan(critic, state, (batches, split[:, 0]))
        last = jax.tree.map(lambda x: x[-1], batches)
        state, am = self.actor_temperature_step(state, last, split[-1, 1], hp)
        return state, {**jax.tree.map(jnp.mean, cm), **am}

    def update(self, state: RLPDState, batch, key, hp: RLPDHParams, online: bool):
        batches = jax.tree.map(lambda x: x[None], batch)
        return self.update_many(state, batches, key[None], hp, online)

    def act(self, state: RLPDState, obs, key, hp: RLPDHParams, deterministic: bool):
        act_size = state.actor.params["Dense_0"]["bias"].shape[0] // 2
        mean, log_std = self.policy(state.actor.params, obs, act_size)
        return tanh_gaussian_action(key, mean, log_std, deterministic), {}

    def flop_passes(self, obs_size: int, act_size: int, batch: int, online: bool) -> list[Pass]:
        """One critic step and one actor step (update_many with G = 1; G critic steps cost G
        times the first three)."""
        c, b = self.config, batch
        critic = (obs_size + act_size, *c.hidden, 1)
        actor = (obs_size, *c.hidden, 2 * act_size)
        return [
            Pass("actor(s') for a'", actor, b),
            Pass("target critics' subset(s', a')", critic, b, c.n_target_critics),
            Pass("critics(s, a) loss", critic, b, c.n_critics, weight_grad=True),
            Pass("actor(s) loss", actor, b, weight_grad=True),
            Pass("critics(s, a_pi) in actor loss", critic, b, c.n_critics, input_grad=True),
        ]
