"""Cal-QL (Nakamoto et al. 2023) and CQL (Kumar et al. 2020): conservative SAC, calibrated or not.

Follows the official JAX code, nakamotoo/Cal-QL @ac6eafe (`JaxCQL/conservative_sac.py`,
`JaxCQL/model.py`, `scripts/run_antmaze.sh`, `run_adroit.sh`); spec:
`/work/shared/spec/calql_rlpd_wsrl.md` §1. CQL is Cal-QL with the calibration off (`cql`).

Networks: a tanh-squashed Gaussian policy whose log-std is k * raw + c with trainable scalars k, c
(init 1, -1), clipped to [-20, 2] after the affine map; two critics on concat(s, a) with Polyak
targets. Hidden kernels orthogonal(sqrt 2), output kernels orthogonal(1e-2), biases 0; no
LayerNorm. Adam: policy 1e-4, critics 3e-4, log alpha (init 0) 1e-4, log alpha' (init 1) 3e-4.

One update; every loss at the pre-update parameters, each loss's gradient to its own parameters:
- temperature: -log alpha * mean(log pi(a~|s) + H_target), H_target = -|A|;
- actor: mean(alpha log pi(a~|s) - min(Q1, Q2)(s, a~));
- target: y = r + gamma m max_k min(Qbar1, Qbar2)(s', a'_k) over N = 10 actions a'_k ~ pi(s')
  (max backup; no entropy term unless `backup_entropy`);
- critic i: mean (Q_i(s, a) - y)^2 + CQL term. N uniform actions, N from pi(s), N from pi(s'), all
  scored by Q_i at s. Cal-QL lifts the policy actions' values to max(Q, V_mc), V_mc the
  Monte-Carlo return-to-go of the row (random actions are not lifted). With importance sampling
  the logsumexp (temperature T) is over [Q_rand - log 0.5^|A|, Q_next - log pi, Q_cur - log pi];
  Q(s, a) is only subtracted. gap_i = mean(T lse(cat / T) - Q_i(s, a)). Fixed weight: w gap_i;
  Lagrange: alpha' w (gap_i - g), alpha' = clip(exp(log alpha'), 0, 1e6), with
  L_alpha' = -(1/2) sum_i alpha' w (gap_i - g) (gradient to log alpha' only);
- targets: Qbar <- 0.005 Q + 0.995 Qbar after every update.
Nothing is reset at the switch (`to_online` is the identity); the calibration stays on online,
with the online episodes' returns (`jaxo2o.core.returns`). Batches mix dataset and online rows at
the run's `offline_fraction` (official 0.5: the `direct` protocol).

Deviations (also in the README):
- Online updates are one per environment step (the run's `updates_per_step`), not bursts of
  len(trajectory) updates after each episode; the count is the same.
- Online rows of an episode still running carry no bound (G = -inf) until it ends; the official
  code inserts whole trajectories after they end, so it never samples such rows.
- The two critics share one Adam over their stacked parameters (Adam is elementwise, so this is
  two Adams); the discount is a static setting (it also defines the Monte-Carlo returns).
- Dense-reward (locomotion) tasks: the official code refuses them (NotImplementedError); here the
  returns are plain discounted sums without the all-failure rule (`failure_reward=None`).
- Dataset episodes end at terminations and time limits; time-limit rows are kept (the official
  AntMaze loader drops them). Actions are not clipped to +-0.99999 (the sampler's actions lie
  inside (-1, 1) and datasets are in [-1, 1]).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import optax

from jaxo2o.config import ConfigError, validate_hparams
from jaxo2o.core.distributions import (
    tanh_gaussian_action,
    tanh_gaussian_sample,
    tanh_gaussian_samples,
)
from jaxo2o.core.flops import Pass
from jaxo2o.core.losses import ensemble_mse, td_target
from jaxo2o.core.method import Method, check_network_config
from jaxo2o.core.networks import MLP, CriticEnsemble, init_actor_critic, orthogonal
from jaxo2o.core.optim import NetState, net_init, net_step, polyak
from jaxo2o.core.returns import ReturnSpec

ALPHA_PRIME_MAX = 1e6


# ------------------------------------------------------------------ losses (module level: tested)
def lift(q: jax.Array, bound: jax.Array | None) -> jax.Array:
    """Cal-QL's calibration: max(Q, V_mc) per row (bound shape (B,), q (..., B, N))."""
    return q if bound is None else jnp.maximum(q, bound[:, None])


def cql_gap(
    q_data: jax.Array,
    q_rand: jax.Array,
    q_cur: jax.Array,
    logp_cur: jax.Array,
    q_next: jax.Array,
    logp_next: jax.Array,
    bound: jax.Array | None,
    temperature: jax.Array,
    act_size: int,
    importance_sampling: bool = True,
) -> jax.Array:
    """Per critic: mean_B (T lse(cat / T) - Q(s, a)). q_data (n, B); q_rand, q_cur, q_next
    (n, B, N); logp_* (B, N); `bound` V_mc (B,) or None (CQL). See the module docstring."""
    q_cur, q_next = lift(q_cur, bound), lift(q_next, bound)
    if importance_sampling:
        rand_logp = act_size * math.log(0.5)  # log density of U[-1, 1]^|A|
        cat = jnp.concatenate([q_rand - rand_logp, q_next - logp_next, q_cur - logp_cur], axis=-1)
    else:
        cat = jnp.concatenate([q_rand, q_data[..., None], q_next, q_cur], axis=-1)
    ood = temperature * jax.nn.logsumexp(cat / temperature, axis=-1)
    return jnp.mean(ood - q_data, axis=-1)


def cql_penalty(
    gap: jax.Array,
    weight: jax.Array,
    lagrange: bool,
    alpha_prime: jax.Array,
    target_gap: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """(per-critic CQL loss, L_alpha'). Fixed weight: w gap; Lagrange: alpha' w (gap - g) and
    L_alpha' = -(1/2) sum of those (0 without Lagrange)."""
    if not lagrange:
        return weight * gap, jnp.zeros(())
    penalty = alpha_prime * weight * (gap - target_gap)
    return penalty, -0.5 * jnp.sum(penalty)


def max_backup_target(
    next_q: jax.Array,
    reward: jax.Array,
    mask: jax.Array,
    discount: float,
    next_logp: jax.Array | None = None,
    alpha: jax.Array | None = None,
) -> jax.Array:
    """y = r + gamma m max_k min_j Qbar_j(s', a'_k); next_q (n, B, N). With `next_logp` (B, N)
    and `alpha` (backup_entropy): minus alpha log pi of the argmax action inside the bracket."""
    q = jnp.min(next_q, axis=0)
    best = jnp.argmax(q, axis=-1)
    value = jnp.take_along_axis(q, best[:, None], axis=-1)[:, 0]
    if next_logp is not None:
        value = value - alpha * jnp.take_along_axis(next_logp, best[:, None], axis=-1)[:, 0]
    return td_target(reward, mask, value, discount)


def log_alpha_loss(log_alpha: jax.Array, log_prob: jax.Array, target_entropy) -> jax.Array:
    """Cal-QL's temperature loss: -log alpha * mean(log pi + H_target) (log pi held fixed)."""
    return -log_alpha * jnp.mean(jax.lax.stop_gradient(log_prob) + target_entropy)


# ------------------------------------------------------------------ networks
class ScaledLogStdPolicy(nn.Module):
    """Cal-QL's policy: MLP -> Dense(2|A|) = (mean, raw); log-std = k raw + c (trainable scalars,
    init 1 and -1), clipped to [-20, 2]."""

    action_size: int
    hidden: tuple[int, ...] = (256, 256)

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = MLP(self.hidden)(obs)
        out = nn.Dense(2 * self.action_size, kernel_init=orthogonal(1e-2))(h)
        mean, raw = jnp.split(out, 2, axis=-1)
        k = self.param("log_std_multiplier", nn.initializers.constant(1.0), ())
        c = self.param("log_std_offset", nn.initializers.constant(-1.0), ())
        return mean, jnp.clip(k * raw + c, -20.0, 2.0)


# ------------------------------------------------------------------ the method
@flax.struct.dataclass
class CalQLHParams:
    actor_lr: jnp.ndarray = 1e-4
    critic_lr: jnp.ndarray = 3e-4
    alpha_lr: jnp.ndarray = 1e-4  # official: the policy's rate
    alpha_prime_lr: jnp.ndarray = 3e-4  # official: the critics' rate
    tau: jnp.ndarray = 0.005
    cql_weight: jnp.ndarray = 5.0  # w (AntMaze 5, Adroit 1)
    target_action_gap: jnp.ndarray = 0.8  # g of the Lagrange form
    cql_temperature: jnp.ndarray = 1.0  # T
    init_log_alpha_prime: jnp.ndarray = 1.0


class CalQLState(NamedTuple):
    actor: NetState
    critic: NetState
    target_critic: dict
    log_alpha: NetState
    log_alpha_prime: NetState


@dataclass(frozen=True)
class CalQLConfig:
    hidden: tuple[int, ...] = (256, 256)  # critics (official AntMaze 256 x 4: `jaxo2o.presets`)
    actor_hidden: tuple[int, ...] = ()  # () = the critics' widths
    n_actions: int = 10  # N: sampled actions per state for the backup and the CQL term
    calibrate: bool = True  # Cal-QL; False is CQL
    lagrange: bool = False  # AntMaze: True (g = 0.8); Adroit: False
    importance_sampling: bool = True
    max_target_backup: bool = True
    backup_entropy: bool = False
    discount: float = 0.99  # static: it also defines the Monte-Carlo returns
    failure_reward: float | None = None  # raw reward of a failed step (sparse tasks: 0)
    reward_normalization: str = "none"

    def __post_init__(self):
        check_network_config(self, "calql")
        if not (isinstance(self.n_actions, int) and self.n_actions >= 1):
            raise ConfigError(f"calql.n_actions: must be an integer >= 1, got {self.n_actions!r}")
        if not 0.0 <= self.discount < 1.0:
            raise ConfigError(f"calql.discount: must lie in [0, 1), got {self.discount}")
        if self.actor_hidden and not all(isinstance(h, int) and h > 0 for h in self.actor_hidden):
            raise ConfigError(f"calql.actor_hidden: positive widths, got {self.actor_hidden!r}")


class CalQL(Method):
    name = "calql"
    Config = CalQLConfig
    HParams = CalQLHParams

    def __init__(self, config: CalQLConfig | None = None):
        super().__init__(config)
        c = self.config
        self._critic = CriticEnsemble(c.hidden, 2, out_init=orthogonal(1e-2))

    def validate(self, hp: CalQLHParams) -> CalQLHParams:
        return validate_hparams(
            hp,
            self.name,
            positive=("actor_lr", "critic_lr", "alpha_lr", "alpha_prime_lr", "cql_temperature"),
            nonnegative=("cql_weight",),
            unit_interval=("tau",),
        )

    @property
    def mc_returns(self) -> ReturnSpec | None:
        c = self.config
        return ReturnSpec(c.discount, c.failure_reward) if c.calibrate else None

    def _actor(self, act_size: int) -> ScaledLogStdPolicy:
        return ScaledLogStdPolicy(act_size, self.config.actor_hidden or self.config.hidden)

    def policy(self, params, obs, act_size: int):
        return self._actor(act_size).apply({"params": params}, obs)

    def q(self, params, obs, action):
        return self._critic.apply({"params": params}, obs, action)

    def init(self, key, obs_size, act_size, hp: CalQLHParams) -> CalQLState:
        actor, critic = init_actor_critic(
            key, self._actor(act_size), self._critic, obs_size, act_size
        )
        f = jnp.float32
        return CalQLState(
            actor=net_init(actor, optax.adam(hp.actor_lr)),
            critic=net_init(critic, optax.adam(hp.critic_lr)),
            target_critic=critic,
            log_alpha=net_init(jnp.zeros((), f), optax.adam(hp.alpha_lr)),
            log_alpha_prime=net_init(
                jnp.asarray(hp.init_log_alpha_prime, f), optax.adam(hp.alpha_prime_lr)
            ),
        )

    def _samples(self, params, obs, key, n: int, act_size: int):
        """n actions per row from pi(obs): (B, n, |A|) and log pi (B, n)."""
        return tanh_gaussian_samples(key, *self.policy(params, obs, act_size), n)

    def _q_many(self, params, obs, actions):
        """Q_i(s, a_k) for actions (B, N, |A|) at obs (B, obs): (n, B, N)."""
        b, n, d = actions.shape
        rep = jnp.repeat(obs, n, axis=0)
        return self.q(params, rep, actions.reshape(b * n, d)).reshape(-1, b, n)

    def update(self, state: CalQLState, batch, key, hp: CalQLHParams, online: bool):
        c = self.config
        act_size = batch.action.shape[-1]
        n, b = c.n_actions, batch.reward.shape[0]
        k_pi, k_next, k_rand, k_cur, k_nxt = jax.random.split(key, 5)
        alpha = jnp.exp(state.log_alpha.params)
        actor_p, critic_p = state.actor.params, state.critic.params

        # actor and temperature (pre-update critics)
        def actor_loss(params):
            mean, log_std = self.policy(params, batch.obs, act_size)
            a, logp = tanh_gaussian_sample(k_pi, mean, log_std)
            q = jnp.min(self.q(critic_p, batch.obs, a), axis=0)
            return jnp.mean(alpha * logp - q), logp

        (a_loss, logp), a_grads = jax.value_and_grad(actor_loss, has_aux=True)(actor_p)
        t_loss, t_grad = jax.value_and_grad(log_alpha_loss)(
            state.log_alpha.params, logp, -float(act_size)
        )

        # target: the max over n sampled next actions (over one without the max backup)
        m = n if c.max_target_backup else 1
        next_a, next_logp = self._samples(actor_p, batch.next_obs, k_next, m, act_size)
        next_q = self._q_many(state.target_critic, batch.next_obs, next_a)
        ent = (next_logp, alpha) if c.backup_entropy else (None, None)
        target = max_backup_target(next_q, batch.reward, batch.mask, c.discount, *ent)

        # CQL actions (pre-update policy), all scored at s
        rand_a = jax.random.uniform(k_rand, (b, n, act_size), minval=-1.0, maxval=1.0)
        cur_a, cur_logp = self._samples(actor_p, batch.obs, k_cur, n, act_size)
        nxt_a, nxt_logp = self._samples(actor_p, batch.next_obs, k_nxt, n, act_size)
        cur_logp, nxt_logp = jax.lax.stop_gradient((cur_logp, nxt_logp))
        bound = batch.mc_return if c.calibrate else None
        alpha_prime = jnp.clip(jnp.exp(state.log_alpha_prime.params), 0.0, ALPHA_PRIME_MAX)

        def critic_loss(params):
            q = self.q(params, batch.obs, batch.action)
            gap = cql_gap(
                q,
                self._q_many(params, batch.obs, rand_a),
                self._q_many(params, batch.obs, cur_a),
                cur_logp,
                self._q_many(params, batch.obs, nxt_a),
                nxt_logp,
                bound,
                hp.cql_temperature,
                act_size,
                c.importance_sampling,
            )
            penalty, _ = cql_penalty(
                gap, hp.cql_weight, c.lagrange, alpha_prime, hp.target_action_gap
            )
            bellman = ensemble_mse(q, target)
            return bellman + jnp.sum(penalty), (bellman, gap, jnp.mean(q))

        (c_loss, (bellman, gap, q_mean)), c_grads = jax.value_and_grad(critic_loss, has_aux=True)(
            critic_p
        )

        def alpha_prime_loss(log_ap):
            ap = jnp.clip(jnp.exp(log_ap), 0.0, ALPHA_PRIME_MAX)
            gap_fixed = jax.lax.stop_gradient(gap)
            return cql_penalty(gap_fixed, hp.cql_weight, c.lagrange, ap, hp.target_action_gap)[1]

        ap_loss, ap_grad = jax.value_and_grad(alpha_prime_loss)(state.log_alpha_prime.params)

        critic = net_step(state.critic, c_grads, optax.adam(hp.critic_lr))
        new = CalQLState(
            actor=net_step(state.actor, a_grads, optax.adam(hp.actor_lr)),
            critic=critic,
            target_critic=polyak(state.target_critic, critic.params, hp.tau),
            log_alpha=net_step(state.log_alpha, t_grad, optax.adam(hp.alpha_lr)),
            log_alpha_prime=(
                net_step(state.log_alpha_prime, ap_grad, optax.adam(hp.alpha_prime_lr))
                if c.lagrange
                else state.log_alpha_prime
            ),
        )
        metrics = {
            "critic_loss": c_loss,
            "bellman_loss": bellman,
            "cql_gap": jnp.mean(gap),
            "actor_loss": a_loss,
            "alpha": alpha,
            "alpha_prime": alpha_prime,
            "alpha_prime_loss": ap_loss,
            "temperature_loss": t_loss,
            "entropy": -jnp.mean(logp),
            "q_mean": q_mean,
        }
        return new, metrics

    def act(self, state: CalQLState, obs, key, hp: CalQLHParams, deterministic: bool):
        act_size = state.actor.params["Dense_0"]["bias"].shape[0] // 2
        mean, log_std = self.policy(state.actor.params, obs, act_size)
        return tanh_gaussian_action(key, mean, log_std, deterministic), {}

    def flop_passes(self, obs_size: int, act_size: int, batch: int, online: bool) -> list[Pass]:
        c, b, n = self.config, batch, self.config.n_actions
        critic = (obs_size + act_size, *c.hidden, 1)
        actor = (obs_size, *(c.actor_hidden or c.hidden), 2 * act_size)
        m = n if c.max_target_backup else 1
        return [
            Pass("actor(s) loss", actor, b, weight_grad=True),
            Pass("critics(s, a_pi) in actor loss", critic, b, 2, input_grad=True),
            Pass("actor(s') for a'", actor, b),
            Pass("target critics(s', a'_k)", critic, b * m, 2),
            Pass("actor(s) for CQL actions", actor, b, recomputed=True),
            Pass("actor(s') for CQL actions", actor, b, recomputed=True),
            Pass("critics(s, a) loss", critic, b, 2, weight_grad=True),
            Pass("critics(s, a_rand|a_cur|a_next)", critic, 3 * b * n, 2, weight_grad=True),
        ]


@dataclass(frozen=True)
class CQLConfig(CalQLConfig):
    calibrate: bool = False


class CQL(CalQL):
    """CQL: Cal-QL's update with the calibration off (no Monte-Carlo returns needed)."""

    name = "cql"
    Config = CQLConfig
