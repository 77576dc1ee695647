"""WSRL (Zhou et al. 2025): warm-start RL. Pretrain conservatively, then fine-tune with SAC on
online data only, after a warm-up of rollouts from the frozen pretrained policy.

Follows the official JAX code, zhouzypaul/wsrl @891ee35 (`wsrl/agents/sac.py`,
`wsrl/agents/cql.py`, `wsrl/networks/*`, `experiments/configs/*`, `finetune.py`, launch scripts);
spec: `/work/shared/spec/calql_rlpd_wsrl.md` §3.

Networks (pretraining and fine-tuning alike): E = 10 critics, each [Dense -> LayerNorm -> ReLU] x L
-> Dense(1) on concat(s, a); a tanh-Gaussian actor [Dense -> LayerNorm -> ReLU] x L with a
state-dependent std ("exp": log-std clipped to [log 1e-5, log 10], i.e. std in [1e-5, 10]) or,
on AntMaze-style mazes, a state-independent one ("uniform", `state_dependent_std=False`, init 0).
Kernels orthogonal(sqrt 2), heads included, the last hidden layer orthogonal(1e-2); biases 0.
Temperature alpha = softplus(p), p0 = softplus^-1(1). Adam: actor 1e-4, critics 3e-4,
temperature 1e-4; tau 0.005, gamma 0.99.

Offline (`update(..., online=False)`; the port of Cal-QL / CQL with `--use_redq`), every loss
at the pre-update parameters:
- target: y = r + gamma m max_k min_{j in Z} Qbar_j(s', a'_k), N = 10 actions a'_k ~ pi(s'), Z two
  target critics drawn *with* replacement; critic loss mean over 10 x B of (Q_i(s, a) - y)^2;
- CQL term (Cal-QL's `cql_gap`: uniform, pi(s) and pi(s') actions scored at s, importance
  sampling, Cal-QL's bound max(Q, V_mc) when `calibrate`) on the two subsampled critics only:
  fixed weight w mean_{i in Z} gap_i; Lagrange (`lagrange`): lambda (mean gap - g) with
  lambda = softplus(l), l0 = softplus^-1(1), and L_lambda = -lambda (mean gap - g);
- actor and temperature as online (below), on the same batch.
Online (`update_many`, G = the run's `updates_per_step`, official 4 minibatches of 256): G critic
steps, one per batch: a' ~ pi(s') (N = `online_backup_actions`: 10 max-backup on AntMaze, else 1
sample), y = r + gamma m [max_k] min_{j in Z} Qbar_j(s', a'_k), Z two with replacement, no
entropy term; Polyak after each. Then one actor and temperature step on all G batches together:
actor mean(alpha log pi(a~|s)) - mean(min over all 10 Q_i(s, a~)); temperature alpha (H - H_target)
with H = -mean log pi(a'|s') of fresh next-state samples (N as the backup), H_target = -|A|,
gradient with respect to p.
The switch keeps everything (parameters, targets, optimizer states, temperature); the run
(protocol `direct`, `offline_fraction=0`, `warmup_steps`) drops the dataset and collects the
warm-up with the pretrained policy, stochastic, before the first update.

Deviations (also in the README):
- The official update steps every component's Adam in every step (zero loss in critic-only
  steps: the actor and temperature move on momentum 4 times per environment step; the critics
  during the actor step). Here an Adam steps only when its own loss is taken.
- The Lagrange multiplier's learning rate is the critics' (not read from the port's config).
- The penalty's reduction over the two subsampled critics is their mean.
- Warm-up count: the official first update comes at online step k = 5001 (k > 5000); here at
  iteration `warmup_steps` (set 5001 for the same count).
- Dense-reward tasks pretrain with CQL (as the port's locomotion); the mazes with Cal-QL, whose
  online rows still get Monte-Carlo returns (unused online).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

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
from jaxo2o.core.losses import member_subset, td_target
from jaxo2o.core.method import Method, check_network_config
from jaxo2o.core.networks import CriticEnsemble, TanhGaussianPolicy, init_actor_critic, orthogonal
from jaxo2o.core.optim import NetState, net_init, net_step, polyak
from jaxo2o.core.returns import ReturnSpec
from jaxo2o.methods.calql import cql_gap

SOFTPLUS_INV_ONE = math.log(math.e - 1.0)  # softplus^-1(1) = 0.541325


# ------------------------------------------------------------------ losses (module level: tested)
def subset_max_target(
    next_q: jax.Array, idx: jax.Array, reward: jax.Array, mask: jax.Array, discount
) -> jax.Array:
    """y = r + gamma m max_k min_{j in idx} next_q[j, :, k]; next_q (E, B, N)."""
    value = jnp.max(jnp.min(next_q[idx], axis=0), axis=-1)
    return td_target(reward, mask, value, discount)


def min_q_actor_loss(alpha: jax.Array, log_prob: jax.Array, q: jax.Array) -> jax.Array:
    """mean(alpha log pi(a~|s)) - mean(min over all critics Q_i(s, a~)); q (E, B)."""
    return jnp.mean(alpha * log_prob) - jnp.mean(jnp.min(q, axis=0))


def softplus_temperature_loss(p: jax.Array, next_log_prob: jax.Array, target_entropy) -> jax.Array:
    """softplus(p) (H - H_target), H = -mean log pi(a'|s') (held fixed)."""
    entropy = -jax.lax.stop_gradient(jnp.mean(next_log_prob))
    return jax.nn.softplus(p) * (entropy - target_entropy)


def lagrange_penalty(gap: jax.Array, multiplier: jax.Array, target_gap) -> jax.Array:
    """lambda (mean gap - g): added to the critic loss; its negative is the multiplier's loss."""
    return multiplier * (jnp.mean(gap) - target_gap)


# ------------------------------------------------------------------ the method
@flax.struct.dataclass
class WSRLHParams:
    actor_lr: jnp.ndarray = 1e-4
    critic_lr: jnp.ndarray = 3e-4
    alpha_lr: jnp.ndarray = 1e-4
    discount: jnp.ndarray = 0.99
    tau: jnp.ndarray = 0.005
    target_entropy_per_dim: jnp.ndarray = -1.0  # H_target = -|A|
    cql_weight: jnp.ndarray = 5.0  # pretraining, fixed weight (port: locomotion CQL 5)
    target_action_gap: jnp.ndarray = 0.8  # pretraining, Lagrange form (port: AntMaze 0.8)
    cql_temperature: jnp.ndarray = 1.0


class WSRLState(NamedTuple):
    actor: NetState
    critic: NetState
    target_critic: dict
    temperature: NetState  # p, alpha = softplus(p)
    multiplier: NetState  # l, lambda = softplus(l) (pretraining's Lagrange form)


@dataclass(frozen=True)
class WSRLConfig:
    hidden: tuple[int, ...] = (256, 256)  # critics (AntMaze 256 x 4, Adroit 512 x 3)
    actor_hidden: tuple[int, ...] = ()  # () = the critics' widths
    n_critics: int = 10
    n_target_critics: int = 2  # drawn with replacement
    state_dependent_std: bool = True  # AntMaze: False ("uniform")
    online_backup_actions: int = 1  # AntMaze: 10 (max backup online too)
    n_actions: int = 10  # pretraining: N for the max backup and the CQL term
    calibrate: bool = False  # pretraining: Cal-QL (mazes) or CQL (locomotion)
    lagrange: bool = False  # pretraining: AntMaze True
    discount: float = 0.99  # of the Monte-Carlo returns (calibrate)
    failure_reward: float | None = None
    reward_normalization: str = "none"

    def __post_init__(self):
        check_network_config(self, "wsrl")
        for name in ("n_target_critics", "online_backup_actions", "n_actions"):
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
                raise ConfigError(f"wsrl.{name}: must be an integer >= 1, got {v!r}")


LOG_STD_MIN, LOG_STD_MAX = math.log(1e-5), math.log(10.0)


class WSRL(Method):
    name = "wsrl"
    Config = WSRLConfig
    HParams = WSRLHParams

    def __init__(self, config: WSRLConfig | None = None):
        super().__init__(config)
        c = self.config
        options = (True, orthogonal(), orthogonal(), orthogonal(1e-2))
        self._critic = CriticEnsemble(c.hidden, c.n_critics, *options)
        # the drawn members alone (target, CQL term): the same values as all ten then indexed
        self._drawn = CriticEnsemble(c.hidden, c.n_target_critics, *options)

    def validate(self, hp: WSRLHParams) -> WSRLHParams:
        return validate_hparams(
            hp,
            self.name,
            positive=("actor_lr", "critic_lr", "alpha_lr", "cql_temperature"),
            nonnegative=("cql_weight",),
            unit_interval=("discount", "tau"),
        )

    @property
    def mc_returns(self) -> ReturnSpec | None:
        c = self.config
        return ReturnSpec(c.discount, c.failure_reward) if c.calibrate else None

    def _actor(self, act_size: int) -> TanhGaussianPolicy:
        c = self.config
        return TanhGaussianPolicy(
            act_size,
            c.actor_hidden or c.hidden,
            LOG_STD_MIN,
            LOG_STD_MAX,
            layer_norm=True,
            kernel_init=orthogonal(),
            head_init=orthogonal(),
            last_hidden_init=orthogonal(1e-2),
            state_dependent_std=c.state_dependent_std,
        )

    def policy(self, params, obs, act_size: int):
        return self._actor(act_size).apply({"params": params}, obs)

    def q(self, params, obs, action):
        return self._critic.apply({"params": params}, obs, action)

    def init(self, key, obs_size, act_size, hp: WSRLHParams) -> WSRLState:
        actor, critic = init_actor_critic(
            key, self._actor(act_size), self._critic, obs_size, act_size
        )
        p0 = jnp.asarray(SOFTPLUS_INV_ONE, jnp.float32)
        return WSRLState(
            actor=net_init(actor, optax.adam(hp.actor_lr)),
            critic=net_init(critic, optax.adam(hp.critic_lr)),
            target_critic=critic,
            temperature=net_init(p0, optax.adam(hp.alpha_lr)),
            multiplier=net_init(p0, optax.adam(hp.critic_lr)),
        )

    # ---------------------------------------------------------------- pieces
    def _samples(self, params, obs, key, n: int, act_size: int):
        """n actions per row from pi(obs): (B, n, |A|) and log pi (B, n)."""
        return tanh_gaussian_samples(key, *self.policy(params, obs, act_size), n)

    def _q_drawn(self, params, idx, obs, actions):
        """Q_j(s, a_k) of the drawn members j = idx for actions (B, N, |A|): (len(idx), B, N)."""
        b, n, d = actions.shape
        members = jax.tree.map(lambda p: p[idx], params)
        rep = jnp.repeat(obs, n, axis=0)
        q = self._drawn.apply({"params": members}, rep, actions.reshape(b * n, d))
        return q.reshape(-1, b, n)

    def _target(self, state: WSRLState, batch, key, hp, n: int):
        k_next, k_subset = jax.random.split(key)
        c, act_size = self.config, batch.action.shape[-1]
        next_a, _ = self._samples(state.actor.params, batch.next_obs, k_next, n, act_size)
        idx = member_subset(k_subset, c.n_critics, c.n_target_critics, True)
        next_q = self._q_drawn(state.target_critic, idx, batch.next_obs, next_a)
        drawn = jnp.arange(c.n_target_critics)
        return subset_max_target(next_q, drawn, batch.reward, batch.mask, hp.discount), idx

    def _actor_temperature(self, state: WSRLState, critic_params, batch, key, hp, n: int):
        """Gradients of the actor and temperature losses (and metrics) at `state`'s actor."""
        act_size = batch.action.shape[-1]
        k_pi, k_next = jax.random.split(key)
        alpha = jax.nn.softplus(state.temperature.params)

        def actor_loss(params):
            mean, log_std = self.policy(params, batch.obs, act_size)
            a, logp = tanh_gaussian_sample(k_pi, mean, log_std)
            return min_q_actor_loss(alpha, logp, self.q(critic_params, batch.obs, a)), logp

        (a_loss, logp), a_grads = jax.value_and_grad(actor_loss, has_aux=True)(state.actor.params)
        _, next_logp = self._samples(state.actor.params, batch.next_obs, k_next, n, act_size)
        target_entropy = hp.target_entropy_per_dim * act_size
        t_loss, t_grad = jax.value_and_grad(softplus_temperature_loss)(
            state.temperature.params, next_logp, target_entropy
        )
        metrics = {"actor_loss": a_loss, "alpha": alpha, "entropy": -jnp.mean(next_logp)}
        return a_grads, t_grad, metrics

    # ---------------------------------------------------------------- offline: conservative
    def update(self, state: WSRLState, batch, key, hp: WSRLHParams, online: bool):
        if online:
            batches = jax.tree.map(lambda x: x[None], batch)
            return self.update_many(state, batches, key[None], hp, online)
        c, act_size = self.config, batch.action.shape[-1]
        b, n = batch.reward.shape[0], c.n_actions
        k_target, k_rand, k_cur, k_nxt, k_actor = jax.random.split(key, 5)
        target, idx = self._target(state, batch, k_target, hp, n)
        actor_p = state.actor.params
        rand_a = jax.random.uniform(k_rand, (b, n, act_size), minval=-1.0, maxval=1.0)
        cur_a, cur_logp = self._samples(actor_p, batch.obs, k_cur, n, act_size)
        nxt_a, nxt_logp = self._samples(actor_p, batch.next_obs, k_nxt, n, act_size)
        cur_logp, nxt_logp = jax.lax.stop_gradient((cur_logp, nxt_logp))
        bound = batch.mc_return if c.calibrate else None
        multiplier = jax.nn.softplus(state.multiplier.params)

        def critic_loss(params):
            q = self.q(params, batch.obs, batch.action)
            gap = cql_gap(
                q[idx],
                self._q_drawn(params, idx, batch.obs, rand_a),
                self._q_drawn(params, idx, batch.obs, cur_a),
                cur_logp,
                self._q_drawn(params, idx, batch.obs, nxt_a),
                nxt_logp,
                bound,
                hp.cql_temperature,
                act_size,
            )
            if c.lagrange:
                penalty = lagrange_penalty(gap, multiplier, hp.target_action_gap)
            else:
                penalty = hp.cql_weight * jnp.mean(gap)
            td = jnp.mean((q - target[None]) ** 2)
            return td + penalty, (td, gap, jnp.mean(q))

        (c_loss, (td, gap, q_mean)), c_grads = jax.value_and_grad(critic_loss, has_aux=True)(
            state.critic.params
        )
        a_grads, t_grad, am = self._actor_temperature(
            state, state.critic.params, batch, k_actor, hp, n
        )
        m_loss, m_grad = jax.value_and_grad(
            lambda m: (
                -lagrange_penalty(
                    jax.lax.stop_gradient(gap), jax.nn.softplus(m), hp.target_action_gap
                )
            )
        )(state.multiplier.params)
        critic = net_step(state.critic, c_grads, optax.adam(hp.critic_lr))
        new = WSRLState(
            actor=net_step(state.actor, a_grads, optax.adam(hp.actor_lr)),
            critic=critic,
            target_critic=polyak(state.target_critic, critic.params, hp.tau),
            temperature=net_step(state.temperature, t_grad, optax.adam(hp.alpha_lr)),
            multiplier=(
                net_step(state.multiplier, m_grad, optax.adam(hp.critic_lr))
                if c.lagrange
                else state.multiplier
            ),
        )
        metrics = {
            "critic_loss": c_loss,
            "bellman_loss": td,
            "cql_gap": jnp.mean(gap),
            "multiplier": multiplier,
            "q_mean": q_mean,
            **am,
        }
        return new, metrics

    # ---------------------------------------------------------------- online: SAC, UTD G
    def critic_step(self, state: WSRLState, batch, key, hp: WSRLHParams):
        target, _ = self._target(state, batch, key, hp, self.config.online_backup_actions)

        def loss(params):
            q = self.q(params, batch.obs, batch.action)
            return jnp.mean((q - target[None]) ** 2), jnp.mean(q)

        (value, q_mean), grads = jax.value_and_grad(loss, has_aux=True)(state.critic.params)
        critic = net_step(state.critic, grads, optax.adam(hp.critic_lr))
        state = state._replace(
            critic=critic, target_critic=polyak(state.target_critic, critic.params, hp.tau)
        )
        return state, {"critic_loss": value, "q_mean": q_mean}

    def update_many(self, state: WSRLState, batches, keys, hp: WSRLHParams, online: bool):
        """G critic steps on the G batches, then one actor and temperature step on all of them."""
        split = jax.vmap(jax.random.split)(keys)
        state, cm = jax.lax.scan(
            lambda s, xs: self.critic_step(s, *xs, hp), state, (batches, split[:, 0])
        )
        full = jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), batches)
        n = self.config.online_backup_actions
        a_grads, t_grad, am = self._actor_temperature(
            state, state.critic.params, full, split[-1, 1], hp, n
        )
        state = state._replace(
            actor=net_step(state.actor, a_grads, optax.adam(hp.actor_lr)),
            temperature=net_step(state.temperature, t_grad, optax.adam(hp.alpha_lr)),
        )
        return state, {**jax.tree.map(jnp.mean, cm), **am}

    def act(self, state: WSRLState, obs, key, hp: WSRLHParams, deterministic: bool):
        act_size = state.actor.params["Dense_0"]["bias"].shape[0]
        if self.config.state_dependent_std:
            act_size //= 2
        mean, log_std = self.policy(state.actor.params, obs, act_size)
        return tanh_gaussian_action(key, mean, log_std, deterministic), {}

    def flop_passes(self, obs_size: int, act_size: int, batch: int, online: bool) -> list[Pass]:
        """Offline: one conservative update. Online: one critic step and one actor step (G
        critic steps cost G times the first three; the actor step runs on G batches)."""
        c, b = self.config, batch
        e = c.n_critics
        critic = (obs_size + act_size, *c.hidden, 1)
        out = 2 * act_size if c.state_dependent_std else act_size
        actor = (obs_size, *(c.actor_hidden or c.hidden), out)
        n = c.online_backup_actions if online else c.n_actions
        passes = [
            Pass("actor(s') for a'", actor, b),
            Pass("target critics' draw(s', a'_k)", critic, b * n, c.n_target_critics),
            Pass("critics(s, a) loss", critic, b, e, weight_grad=True),
            Pass("actor(s) loss", actor, b, weight_grad=True),
            Pass("critics(s, a_pi) in actor loss", critic, b, e, input_grad=True),
            Pass("actor(s') for the entropy", actor, b, recomputed=True),
        ]
        if not online:
            passes += [
                Pass("actor(s), actor(s') for CQL actions", actor, 2 * b, recomputed=True),
                Pass(
                    "drawn critics(s, a_rand|a_cur|a_next)",
                    critic,
                    3 * b * n,
                    c.n_target_critics,
                    weight_grad=True,
                ),
            ]
        return passes
