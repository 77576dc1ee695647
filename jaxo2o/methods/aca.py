"""ACA, actor-critic alignment (Yu & Zhang, ICML 2023), and its comparison line "sac-direct".

Offline, SAC+ML: SAC with a behaviour-likelihood term in the actor loss and baselines Z_k(s) fitted
to the soft value. At the switch the critic is re-parameterised as Q = R + w c(log pi0) with R
built from Z (R(s, a) = Z(s) exactly), so the online critic starts in agreement with the offline
policy pi0; online, SAC on that critic while w decays from w0 to w_min. `ACAConfig.alignment=False`
is sac-direct: the same offline checkpoint fine-tuned with plain SAC, so that the alignment is the
only difference. Checked against the official code (github.com/ZishunYu/ACA, on d3rlpy 1.1.0).
The full description (losses in their official order, the switch, the w schedule, the run-level
parts and every deviation from the official code) is `jaxo2o/methods/aca.md`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxo2o.core.flops import Pass
from jaxo2o.core.losses import ensemble_mse, log_temperature_loss, td_target
from jaxo2o.core.method import Method
from jaxo2o.core.networks import (
    CriticEnsemble,
    TanhGaussianPolicy,
    ValueEnsemble,
)
from jaxo2o.core.optim import NetState, clip_grad_norm, net_init, net_step, polyak, step_norm
from jaxo2o.core.transitions import Transitions
from jaxo2o.methods.aca_policies import (
    MazePolicy,
    clip_floor,
    greedy_action,
    policy_log_prob,
    policy_sample,
    soft_clip,
)
from jaxo2o.methods.aca_settings import (
    ACAConfig,
    ACAHParams,
    interpolation_weight,
    validate_aca_hparams,
)

Metrics = dict[str, jax.Array]


# ------------------------------------------------------------------ pure pieces
def ml_actor_loss(
    log_prob_pi: jax.Array,
    q_pi: jax.Array,
    log_prob_data: jax.Array,
    alpha: jax.Array,
    ml_alpha: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """SAC+ML: lambda mean(alpha log pi(a~|s) - q) - mean(log pi(a_D|s)), lambda = ml_alpha /
    mean|q| detached. Returns (loss, lambda)."""
    lam = jax.lax.stop_gradient(ml_alpha / jnp.mean(jnp.abs(q_pi)))
    return lam * jnp.mean(alpha * log_prob_pi - q_pi) - jnp.mean(log_prob_data), lam


# ------------------------------------------------------------------ baselines Z and R from Z
def critic_from_baseline(baseline_params: Any, act_size: int) -> Any:
    """R's parameters (a `CriticEnsemble` tree) from Z's: every layer copied, the first kernel's
    action rows (after the observation rows) set to zero, so R_k(s, a) = Z_k(s)."""
    mlp = baseline_params["VmapValueNet_0"]["MLP_0"]
    first = mlp["Dense_0"]
    n, _, width = first["kernel"].shape
    kernel = jnp.concatenate([first["kernel"], jnp.zeros((n, act_size, width))], axis=1)
    return {
        "VmapCritic_0": {"MLP_0": {**mlp, "Dense_0": {"bias": first["bias"], "kernel": kernel}}}
    }


# ------------------------------------------------------------------ states
class ACAOfflineState(NamedTuple):
    actor: NetState
    critic: NetState  # Q_k
    target_critic: Any
    baseline: NetState  # Z_k
    log_alpha: NetState


class ACAOnlineState(NamedTuple):
    reference_actor: Any  # pi0's parameters: frozen, in no optimizer
    actor: NetState
    critic: NetState  # R_k (ACA) or the offline Q_k (sac-direct)
    target_critic: Any
    log_alpha: NetState
    w: jax.Array  # the interpolation weight the next update uses (sac-direct: 0, unused)
    updates: jax.Array  # online updates done (int32)


# ------------------------------------------------------------------ the method
class ACA(Method):
    name = "aca"
    Config = ACAConfig
    HParams = ACAHParams

    def __init__(self, config: ACAConfig | None = None):
        super().__init__(config)
        c = self.config
        self._critic = CriticEnsemble(c.hidden, c.n_critics)
        self._baseline = ValueEnsemble(c.hidden, c.n_critics)

    def validate(self, hp: ACAHParams) -> ACAHParams:
        return validate_aca_hparams(hp)

    # -- networks as plain functions
    def _actor(self, act_size: int) -> nn.Module:
        if self.config.policy == "squashed":
            return TanhGaussianPolicy(act_size, self.config.hidden)
        return MazePolicy(act_size, self.config.hidden)

    def _act_size(self, actor_params: Any) -> int:
        if self.config.policy == "squashed":
            return int(actor_params["Dense_0"]["bias"].shape[-1]) // 2
        return int(actor_params["log_std_param"].shape[-1])

    def policy(self, actor_params: Any, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(loc, log_std): the pre-tanh mean (squashed) or tanh mu(s) (maze), and the log-std."""
        module = self._actor(self._act_size(actor_params))
        return module.apply({"params": actor_params}, obs)

    def q(self, critic_params: Any, obs: jax.Array, action: jax.Array) -> jax.Array:
        """Q_k(s, a) (or R_k online), shape (n, batch)."""
        return self._critic.apply({"params": critic_params}, obs, action)

    def z(self, baseline_params: Any, obs: jax.Array) -> jax.Array:
        """Z_k(s), shape (n, batch)."""
        return self._baseline.apply({"params": baseline_params}, obs)

    def init(self, key: jax.Array, obs_size: int, act_size: int, hp: ACAHParams) -> ACAOfflineState:
        k_a, k_c, k_z = jax.random.split(key, 3)
        obs, act = jnp.zeros((1, obs_size)), jnp.zeros((1, act_size))
        actor_params = self._actor(act_size).init(k_a, obs)["params"]
        critic_params = self._critic.init(k_c, obs, act)["params"]
        baseline_params = self._baseline.init(k_z, obs)["params"]
        return ACAOfflineState(
            actor=net_init(actor_params, optax.adam(hp.actor_lr)),
            critic=net_init(critic_params, optax.adam(hp.critic_lr)),
            target_critic=critic_params,
            baseline=net_init(baseline_params, optax.adam(hp.baseline_lr)),
            log_alpha=net_init(jnp.zeros((), jnp.float32), optax.adam(hp.alpha_lr)),
        )

    # -- shared sub-steps
    def temperature_step(
        self, log_alpha: NetState, log_prob: jax.Array, act_size: int, hp: ACAHParams
    ) -> tuple[NetState, jax.Array]:
        target_entropy = hp.target_entropy_per_dim * act_size
        loss, grad = jax.value_and_grad(log_temperature_loss)(
            log_alpha.params, log_prob, target_entropy
        )
        return net_step(log_alpha, grad, optax.adam(hp.alpha_lr)), loss

    def critic_step(
        self,
        critic: NetState,
        batch: Transitions,
        target: jax.Array,
        hp: ACAHParams,
        offset: jax.Array | float = 0.0,
    ) -> tuple[NetState, jax.Array, jax.Array]:
        """sum_k mean((Q_k(s, a) + offset - y)^2); `offset` (the w c-term) is a constant."""
        offset = jax.lax.stop_gradient(offset)

        def loss_fn(params):
            q = self.q(params, batch.obs, batch.action) + offset
            return ensemble_mse(q, target), jnp.mean(q)

        (loss, q_mean), grads = jax.value_and_grad(loss_fn, has_aux=True)(critic.params)
        return net_step(critic, grads, optax.adam(hp.critic_lr)), loss, q_mean

    # -- offline: SAC+ML
    def sac_ml_actor_loss(
        self,
        actor_params: Any,
        critic_params: Any,
        batch: Transitions,
        key: jax.Array,
        alpha: jax.Array,
        hp: ACAHParams,
    ) -> tuple[jax.Array, tuple[jax.Array, jax.Array, jax.Array]]:
        """`ml_actor_loss` with a~ ~ pi(s) drawn from `key` and q = min_k Q_k(s, a~).
        Returns (loss, (log pi(a~|s), lambda, log pi(a_D|s)))."""
        kind = self.config.policy
        loc, log_std = self.policy(actor_params, batch.obs)
        a, logp = policy_sample(kind, key, loc, log_std)
        q = jnp.min(self.q(critic_params, batch.obs, a), axis=0)
        logp_data = policy_log_prob(kind, loc, log_std, batch.action)
        loss, lam = ml_actor_loss(logp, q, logp_data, alpha, hp.ml_alpha)
        return loss, (logp, lam, logp_data)

    def _offline_update(
        self, state: ACAOfflineState, batch: Transitions, key: jax.Array, hp: ACAHParams
    ) -> tuple[ACAOfflineState, Metrics]:
        kind, act_size = self.config.policy, batch.action.shape[-1]
        k_temp, k_next, k_z, k_pi = jax.random.split(key, 4)
        actor_params = state.actor.params

        # pi(s) and pi(s') before the actor step: the temperature, critic and Z steps share them
        loc, log_std = self.policy(actor_params, batch.obs)
        loc_n, log_std_n = self.policy(actor_params, batch.next_obs)

        # 1. temperature
        _, logp_temp = policy_sample(kind, k_temp, loc, log_std)
        log_alpha, t_loss = self.temperature_step(state.log_alpha, logp_temp, act_size, hp)
        alpha = jnp.exp(log_alpha.params)

        # 2. critic
        next_a, next_logp = policy_sample(kind, k_next, loc_n, log_std_n)
        next_q = jnp.min(self.q(state.target_critic, batch.next_obs, next_a), axis=0)
        y = td_target(batch.reward, batch.mask, next_q - alpha * next_logp, hp.discount)
        critic, c_loss, q_mean = self.critic_step(state.critic, batch, y, hp)

        # 3. baseline Z (a second draw at s', no target network)
        _, z_logp = policy_sample(kind, k_z, loc_n, log_std_n)
        next_z = jnp.min(self.z(state.baseline.params, batch.next_obs), axis=0)
        y_z = td_target(batch.reward, batch.mask, z_logp + next_z - alpha * z_logp, hp.discount)
        logp_data = jax.lax.stop_gradient(policy_log_prob(kind, loc, log_std, batch.action))

        def baseline_loss(params):
            return ensemble_mse(logp_data[None] + self.z(params, batch.obs), y_z)

        z_loss, z_grads = jax.value_and_grad(baseline_loss)(state.baseline.params)
        baseline = net_step(state.baseline, z_grads, optax.adam(hp.baseline_lr))

        # 4. actor: SAC against the updated critic, scaled by lambda, plus the likelihood term
        (a_loss, (logp, lam, logp_d)), a_grads = jax.value_and_grad(
            self.sac_ml_actor_loss, has_aux=True
        )(actor_params, critic.params, batch, k_pi, alpha, hp)
        actor = net_step(state.actor, a_grads, optax.adam(hp.actor_lr))

        # 5. target
        target = polyak(state.target_critic, critic.params, hp.tau)
        new = ACAOfflineState(actor, critic, target, baseline, log_alpha)
        return new, {
            "critic_loss": c_loss,
            "baseline_loss": z_loss,
            "actor_loss": a_loss,
            "temperature_loss": t_loss,
            "alpha": alpha,
            "entropy": -jnp.mean(logp),
            "q_mean": q_mean,
            "ml_lambda": lam,
            "data_log_prob": jnp.mean(logp_d),
        }

    # -- the switch
    def to_online(self, state: ACAOfflineState, key: jax.Array, hp: ACAHParams) -> ACAOnlineState:
        """pi0 frozen; actor, Adam states carried over; log alpha = 0; ACA: R from Z (target = R);
        sac-direct: the offline Q and its target. `key` is unused (nothing is drawn)."""
        del key
        if not isinstance(state, ACAOfflineState):
            raise TypeError(f"aca.to_online expects the offline ACAOfflineState, got {type(state)}")
        if self.config.alignment:
            act_size = self._act_size(state.actor.params)
            r_params = critic_from_baseline(state.baseline.params, act_size)
            if jax.tree.structure(r_params) != jax.tree.structure(state.critic.params):
                raise ValueError("aca.to_online: R's parameter tree does not match the critic's")
            critic = NetState(r_params, state.critic.opt_state)
            target, w = r_params, jnp.asarray(hp.w0, jnp.float32)
        else:
            critic, target, w = state.critic, state.target_critic, jnp.zeros((), jnp.float32)
        return ACAOnlineState(
            reference_actor=state.actor.params,
            actor=state.actor,
            critic=critic,
            target_critic=target,
            log_alpha=self.switch_temperature(state.log_alpha),
            w=w,
            updates=jnp.zeros((), jnp.int32),
        )

    def switch_temperature(self, log_alpha: NetState) -> NetState:
        """The temperature at the switch: log alpha = 0, its Adam state kept (official)."""
        return NetState(jnp.zeros_like(log_alpha.params), log_alpha.opt_state)

    # -- online: ACA (or plain SAC for sac-direct)
    def aligned_term(
        self, ref_loc: jax.Array, ref_log_std: jax.Array, action: jax.Array, hp: ACAHParams
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """(c(log pi0(a|s)), log pi0(a|s), m(s)) from pi0's (loc, log_std) at s; the gradient
        flows through `action` only."""
        kind = self.config.policy
        ref_loc, ref_log_std = jax.lax.stop_gradient(ref_loc), jax.lax.stop_gradient(ref_log_std)
        floor = clip_floor(kind, ref_loc, ref_log_std, hp.clip_beta)
        logp0 = policy_log_prob(kind, ref_loc, ref_log_std, action)
        return soft_clip(logp0, floor), logp0, floor

    def aligned_q(
        self, state: ACAOnlineState, obs: jax.Array, action: jax.Array, hp: ACAHParams
    ) -> jax.Array:
        """The online critic of each member, shape (n, batch): R_k(s, a) + w c(log pi0(a|s)) for
        ACA, Q_k(s, a) for sac-direct. (The update computes the same terms piece by piece.)"""
        q = self.q(state.critic.params, obs, action)
        if not self.config.alignment:
            return q
        ref = self.policy(state.reference_actor, obs)
        return q + state.w * self.aligned_term(*ref, action, hp)[0]

    def _online_update(
        self, state: ACAOnlineState, batch: Transitions, key: jax.Array, hp: ACAHParams
    ) -> tuple[ACAOnlineState, Metrics]:
        kind, act_size, align = self.config.policy, batch.action.shape[-1], self.config.alignment
        k_temp, k_next, k_pi = jax.random.split(key, 3)
        w = state.w

        # 1. temperature
        loc, log_std = self.policy(state.actor.params, batch.obs)
        _, logp_temp = policy_sample(kind, k_temp, loc, log_std)
        log_alpha, t_loss = self.temperature_step(state.log_alpha, logp_temp, act_size, hp)
        alpha = jnp.exp(log_alpha.params)

        # 2. critic
        loc_n, log_std_n = self.policy(state.actor.params, batch.next_obs)
        next_a, next_logp = policy_sample(kind, k_next, loc_n, log_std_n)
        next_q = jnp.min(self.q(state.target_critic, batch.next_obs, next_a), axis=0)
        metrics: Metrics = {}
        if align:
            ref_n = self.policy(state.reference_actor, batch.next_obs)
            next_q = next_q + w * self.aligned_term(*ref_n, next_a, hp)[0]
            ref_s = self.policy(state.reference_actor, batch.obs)
            c_data, logp0_data, floor = self.aligned_term(*ref_s, batch.action, hp)
            offset = w * c_data
            metrics = {
                "w": w,
                "clip_floor": jnp.mean(floor),
                "log_pi0": jnp.mean(logp0_data),
                "clipped_log_pi0": jnp.mean(c_data),
            }
        else:
            offset = 0.0
        y = td_target(batch.reward, batch.mask, next_q - alpha * next_logp, hp.discount)
        critic, c_loss, q_mean = self.online_critic_step(state.critic, batch, y, hp, offset)

        # 3. actor (against the updated critic), gradient clipped
        def actor_loss(params):
            loc, log_std = self.policy(params, batch.obs)
            a, logp = policy_sample(kind, k_pi, loc, log_std)
            q = jnp.min(self.q(critic.params, batch.obs, a), axis=0)
            if align:
                q = q + w * self.aligned_term(*ref_s, a, hp)[0]
            return self.online_actor_objective(loc, log_std, logp, q, batch, alpha, hp), logp

        (a_loss, logp), a_grads = jax.value_and_grad(actor_loss, has_aux=True)(state.actor.params)
        a_grads, grad_norm = clip_grad_norm(a_grads, hp.actor_grad_clip)
        actor = net_step(state.actor, a_grads, optax.adam(hp.actor_lr))

        # 4. target, 5. w
        target = polyak(state.target_critic, critic.params, hp.tau)
        updates = state.updates + 1
        k = self.config.schedule_k(hp.w_k)
        new_w = interpolation_weight(updates, hp.w0, k, hp.w_min) if align else state.w
        new = ACAOnlineState(
            state.reference_actor, actor, critic, target, log_alpha, new_w, updates
        )
        return new, {
            "critic_loss": c_loss,
            "actor_loss": a_loss,
            "temperature_loss": t_loss,
            "alpha": alpha,
            "entropy": -jnp.mean(logp),
            "q_mean": q_mean,
            "actor_grad_norm": grad_norm,
            "actor_step_norm": step_norm(state.actor.params, actor.params),
            **metrics,
        }

    def online_critic_step(
        self, critic: NetState, batch: Transitions, y: jax.Array, hp: ACAHParams, offset: Any
    ) -> tuple[NetState, jax.Array, jax.Array]:
        """The online critic's step (`critic_step`)."""
        return self.critic_step(critic, batch, y, hp, offset)

    def online_actor_objective(
        self,
        loc: jax.Array,
        log_std: jax.Array,
        logp: jax.Array,
        q: jax.Array,
        batch: Transitions,
        alpha: jax.Array,
        hp: ACAHParams,
    ) -> jax.Array:
        """The online actor loss from the sampled actions' log pi and (aligned) q: plain SAC's
        mean(alpha log pi - q); `loc`, `log_std` and `batch` are there for variants."""
        return jnp.mean(alpha * logp - q)

    # -- the Method protocol
    def update(
        self, state: Any, batch: Transitions, key: jax.Array, hp: ACAHParams, online: bool
    ) -> tuple[Any, Metrics]:
        if not online:
            if not isinstance(state, ACAOfflineState):
                raise TypeError(
                    f"aca.update(online=False) expects an ACAOfflineState, got {type(state)}"
                )
            return self._offline_update(state, batch, key, hp)
        if not isinstance(state, ACAOnlineState):
            raise TypeError(f"aca.update(online=True) expects an ACAOnlineState, got {type(state)}")
        return self._online_update(state, batch, key, hp)

    def act(
        self, state: Any, obs: jax.Array, key: jax.Array, hp: ACAHParams, deterministic: bool
    ) -> tuple[jax.Array, Metrics]:
        kind = self.config.policy
        loc, log_std = self.policy(state.actor.params, obs)
        if deterministic:
            action = greedy_action(kind, loc)
        else:
            action = policy_sample(kind, key, loc, log_std)[0]
        if isinstance(state, ACAOnlineState) and self.config.alignment:
            return action, {"w": jnp.broadcast_to(state.w, obs.shape[:-1])}
        return action, {}

    def flop_passes(self, obs_size: int, act_size: int, batch: int, online: bool) -> list[Pass]:
        h, n, b = tuple(self.config.hidden), self.config.n_critics, batch
        critic, value = (obs_size + act_size, *h, 1), (obs_size, *h, 1)
        heads = 2 * act_size if self.config.policy == "squashed" else act_size
        actor = (obs_size, *h, heads)
        if not online:
            return [
                Pass("actor(s) for temperature and Z's log pi(a|s)", actor, b),
                Pass("actor(s') for a' and a''", actor, b),
                Pass("target critics(s', a')", critic, b, n),
                Pass("critics(s, a) loss", critic, b, n, weight_grad=True),
                Pass("Z(s') for Z's target", value, b, n),
                Pass("Z(s) loss", value, b, n, weight_grad=True),
                Pass("actor(s) loss", actor, b, weight_grad=True, recomputed=True),
                Pass("critics(s, a~) in actor loss", critic, b, n, input_grad=True),
            ]
        passes = [
            Pass("actor(s) for temperature", actor, b),
            Pass("actor(s') for a'", actor, b),
            Pass("target critics(s', a')", critic, b, n),
        ]
        if self.config.alignment:
            passes += [
                Pass("pi0(s') for c(log pi0(a'|s'))", actor, b),
                Pass("pi0(s) for c(log pi0(a|s)) and c(log pi0(a~|s))", actor, b),
            ]
        return passes + [
            Pass("critics(s, a) loss", critic, b, n, weight_grad=True),
            Pass("actor(s) loss", actor, b, weight_grad=True, recomputed=True),
            Pass("critics(s, a~) in actor loss", critic, b, n, input_grad=True),
        ]
