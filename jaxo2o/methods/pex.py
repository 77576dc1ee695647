"""PEX, policy expansion (Zhang, Xu, Yu; ICLR 2023) on the IQL backbone.

Offline phase: plain IQL. `init`, `update(online=False)` and `act` on the offline state delegate
to `jaxo2o.methods.iql.IQL` with the same configuration, so for the same key and the same IQL
hyperparameters PEX's offline phase is IQL's, bit for bit (the "same offline checkpoint" of the
PEX-vs-IQL comparisons, inside one compiled run). That includes the actor's learning-rate schedule
(`IQLConfig.actor_schedule`): PEX's own `main_offline.py` anneals the policy's rate with
`CosineAnnealingLR` over its 1M steps ("cosine", the default); the suite runs PEX's offline phase
with the official IQL fine-tuning schedule ("constant") so that it shares its offline result with
the IQL lines it is compared against.

Switch (`to_online`): the policy set {pi_off, pi_on}. pi_off is the offline policy, **frozen**
(its parameters are in no optimizer); pi_on is a **new, randomly initialised** policy of the same
architecture, the only actor trained online. Q, V and the target Q continue from the offline
checkpoint (the target is *not* re-copied from Q). Every optimizer starts afresh (new Adam
moments) and the actor's rate is the constant `actor_lr`, whatever the offline schedule: the
official `PEX.__init__` builds new optimizers with `use_lr_scheduler=False`.

Composite policy at state s (`PEX.composite_action`):
    a_off = mode of pi_off(s) (tanh-bounded);   a_on ~ pi_on(s), **not clipped**;
    P(w) = softmax_w(alpha_inv * min_j Q_j(s, a_w))   with the *current* (not target) critics;
    training: w ~ P;  evaluation: a_on is pi_on's mode with probability `eval_greedy` (0.9) and a
    sample otherwise, and w = argmax P with probability `eval_greedy`, else w ~ P (per state).
`alpha_inv` is the traced hyperparameter `selection_inverse_temperature` (default 10, the official
`--inv_temperature`), so a sweep over it compiles once.
As the official `select_action` (`pex/algorithms/pex.py`), pi_on's Gaussian sample enters the
selection as drawn, may lie outside [-1, 1], and is the action `act` returns: the loop stores it in
the replay buffer as it is (the official `main_online.py` pushes the unclipped action) and the
environment clips it when it executes it (as MuJoCo's control range does for the official
`env.step(action)`). The online actor loss takes the log-probability of that unclipped action (no
+-(1 - 1e-5) clip: the official `policy_update` has none).

Online update, in IQL's order (value -> actor -> critic -> target):
1. V: `IQL.value_step` (expectile regression onto min Qbar(s, a), dataset/replay actions);
2. pi_on: at every batch state draw a~ from the composite policy (training mode), then AWR with
   `iql_actor_loss`: -mean(min(exp(beta (min Qbar(s, a~) - V(s))), 100) log pi_on(a~|s)), with the
   target critics and the new V, a~ unclipped. The replay actions are not used by the actor;
3. Q: `IQL.critic_step` (TD onto r + gamma mask V(s'), new V);
4. target: `IQL.target_step` (Polyak).
The official code (`pex/algorithms/{iql,pex}.py`) orders one step V -> Q -> target -> pi, with the
critic target built from V before its update and the actor's selection and advantage using the
already updated critics; its IQL baselines share that order, as ours share this one.

Run settings of the official online stage (not part of the method; see `pex_run_config`): batches
of 128 dataset + 128 online transitions (protocol "direct", offline_fraction 0.5, batch 256), 5,000
environment steps collected with the composite policy before updates start (warmup_random=False;
the script's `--initial_collection_steps`, for all of its lines: scratch, buffer, direct, pex),
one update per environment step, evaluation every 10k steps with 10 episodes. The method is meant
for the "direct" protocol: with "scratch"/"buffer" the frozen offline policy would be a random one.

`act` reports, per environment, `offline_fraction` (1.0 when pi_off's action was taken) and
`offline_prob` (P(w = off)); the loop averages them per evaluation interval ("act/<name>").
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import optax

from jaxo2o.config import ConfigError, RunConfig, validate_hparams
from jaxo2o.core.distributions import gaussian_sample
from jaxo2o.core.flops import Pass
from jaxo2o.core.method import Method
from jaxo2o.core.optim import NetState, net_init, net_step
from jaxo2o.core.transitions import Transitions
from jaxo2o.methods.iql import (
    IQL,
    IQLConfig,
    IQLHParams,
    IQLState,
    iql_actor_loss,
    iql_passes,
    min_q,
    validate_iql_hparams,
)

Metrics = dict[str, jax.Array]

OFFLINE, ONLINE = 0, 1  # indices of the two members of the policy set

PEX_RUN_SETTINGS: dict[str, Any] = {
    # main_online.py: 128 dataset + 128 online rows, 5k composite-policy steps before updates,
    # 1 update per env step, 10 evaluation episodes every 10k steps (locomotion)
    "protocol": "direct",
    "offline_fraction": 0.5,
    "batch_size": 256,
    "warmup_steps": 5_000,
    "warmup_random": False,
    "updates_per_step": 1,
    "online_eval_every": 10_000,
    "eval_episodes": 10,
}


def pex_run_config(**overrides: Any) -> RunConfig:
    """The official PEX online settings as a RunConfig; `overrides` replace any field."""
    return RunConfig(**(PEX_RUN_SETTINGS | overrides))


# ------------------------------------------------------------------ pure selection rule
def selection_probabilities(q_values: jax.Array, inverse_temperature: jax.Array) -> jax.Array:
    """P(w = i) = softmax_i(alpha_inv * Q_i) over the last axis ([offline, online] in PEX)."""
    return jax.nn.softmax(inverse_temperature * q_values, axis=-1)


def select_policy(
    key: jax.Array,
    q_values: jax.Array,
    inverse_temperature: jax.Array,
    greedy_prob: jax.Array | float = 0.0,
) -> jax.Array:
    """Index of the chosen policy per row of `q_values` (..., n_policies).

    With probability `greedy_prob` the argmax of Q (ties: the lower index, the offline policy),
    otherwise a draw from `selection_probabilities`. Training uses greedy_prob = 0.
    """
    k_draw, k_greedy = jax.random.split(key)
    drawn = jax.random.categorical(k_draw, inverse_temperature * q_values, axis=-1)
    greedy = jax.random.uniform(k_greedy, drawn.shape) < greedy_prob
    return jnp.where(greedy, jnp.argmax(q_values, axis=-1), drawn)


# ------------------------------------------------------------------ hyperparameters and config
@flax.struct.dataclass
class PEXHParams(IQLHParams):
    """IQL's traced hyperparameters (same defaults) plus the selection inverse temperature."""

    selection_inverse_temperature: jnp.ndarray = 10.0  # alpha_inv of the Boltzmann selection


def validate_pex_hparams(hp: PEXHParams) -> PEXHParams:
    validate_iql_hparams(hp)
    return validate_hparams(hp, "pex", nonnegative=("selection_inverse_temperature",))


@dataclass(frozen=True)
class PEXConfig(IQLConfig):
    """Static: IQL's fields (the offline phase and the V/Q losses, same defaults) plus the
    evaluation rule. The official PEX code's backbone differs from these defaults in
    `critic_reduction="mean"` and `inverse_temperature=10` (see `PEX_OFFICIAL_BACKBONE`)."""

    eval_greedy: float = 0.9  # evaluation: P(mode of pi_on) and P(argmax selection)

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 <= self.eval_greedy <= 1.0:
            raise ConfigError(f"pex.eval_greedy: must lie in [0, 1], got {self.eval_greedy}")

    def iql_config(self) -> IQLConfig:
        return IQLConfig(**{f.name: getattr(self, f.name) for f in fields(IQLConfig)})


PEX_OFFICIAL_BACKBONE: dict[str, Any] = {
    # the IQL settings of Haichao-Zhang/PEX's CLI defaults (`main_offline.py`); locomotion rewards
    # are not rescaled there. Use them for *both* PEX and the IQL baselines of a comparison.
    "method_config": {"critic_reduction": "mean", "reward_normalization": "none"},
    "hparams": {"expectile": 0.7, "inverse_temperature": 10.0},
}


# ------------------------------------------------------------------ the method
class PEXState(NamedTuple):
    offline_actor: Any  # parameters of pi_off: frozen, in no optimizer
    actor: NetState  # pi_on
    critic: NetState
    target_critic: Any
    value: NetState


def _obs_size(actor_params: Any) -> int:
    """Observation width, read off the first layer of a `GaussianPolicy`'s parameters."""
    return int(actor_params["MLP_0"]["Dense_0"]["kernel"].shape[0])


class PEX(Method):
    name = "pex"
    Config = PEXConfig
    HParams = PEXHParams

    def __init__(self, config: PEXConfig | None = None):
        super().__init__(config)
        self.iql = IQL(self.config.iql_config())

    def validate(self, hp: PEXHParams) -> PEXHParams:
        return validate_pex_hparams(hp)

    # -- offline phase: IQL
    def init(self, key: jax.Array, obs_size: int, act_size: int, hp: PEXHParams) -> IQLState:
        return self.iql.init(key, obs_size, act_size, hp)

    # -- the switch
    def to_online(self, state: IQLState, key: jax.Array, hp: PEXHParams) -> PEXState:
        """Freeze pi_off, add a fresh pi_on (from `key`), keep Q/V/target, restart optimizers."""
        if not isinstance(state, IQLState):
            raise TypeError(f"pex.to_online expects the offline IQLState, got {type(state)}")
        offline_params = state.actor.params
        act_size = offline_params["log_std"].shape[-1]
        obs = jnp.zeros((1, _obs_size(offline_params)))
        online_params = self.iql._actor(act_size).init(key, obs)["params"]
        return PEXState(
            offline_actor=offline_params,
            actor=net_init(online_params, self.iql.actor_tx(hp, online=True)),
            critic=net_init(state.critic.params, optax.adam(hp.critic_lr)),
            target_critic=state.target_critic,
            value=net_init(state.value.params, optax.adam(hp.value_lr)),
        )

    # -- the composite policy
    def composite_action(
        self,
        state: PEXState,
        obs: jax.Array,
        key: jax.Array,
        hp: PEXHParams,
        deterministic: bool,
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """(action, chosen policy index, P(w = offline)) for a batch of observations."""
        k_sample, k_greedy, k_select = jax.random.split(key, 3)
        a_off = self.iql.policy(state.offline_actor, obs)[0]  # the mode, tanh-bounded
        mean, log_std = self.iql.policy(state.actor.params, obs)
        a_on = gaussian_sample(k_sample, mean, log_std)  # unclipped, as the official code
        greedy = self.config.eval_greedy if deterministic else 0.0
        if deterministic:
            take_mode = jax.random.uniform(k_greedy, mean.shape[:-1]) < greedy
            a_on = jnp.where(take_mode[..., None], mean, a_on)
        critic = state.critic.params
        q = jnp.stack(
            [min_q(self.iql.q, critic, obs, a_off), min_q(self.iql.q, critic, obs, a_on)], -1
        )
        alpha = hp.selection_inverse_temperature
        w = select_policy(k_select, q, alpha, greedy)
        action = jnp.where((w == OFFLINE)[..., None], a_off, a_on)
        p_off = selection_probabilities(q, alpha)[..., OFFLINE]
        return action, w, p_off

    def act(
        self, state: Any, obs: jax.Array, key: jax.Array, hp: PEXHParams, deterministic: bool
    ) -> tuple[jax.Array, Metrics]:
        if isinstance(state, IQLState):  # offline phase: IQL's policy
            return self.iql.act(state, obs, key, hp, deterministic)
        action, w, p_off = self.composite_action(state, obs, key, hp, deterministic)
        info = {"offline_fraction": (w == OFFLINE).astype(jnp.float32), "offline_prob": p_off}
        return action, info

    # -- the online actor step
    def actor_step(
        self,
        state: PEXState,
        value_params: Any,
        batch: Transitions,
        key: jax.Array,
        hp: PEXHParams,
    ) -> tuple[NetState, Metrics]:
        """AWR of pi_on onto composite-policy actions drawn at the batch states (training mode).

        The selection uses `state.critic` (current critics), the advantage the target critics and
        `value_params` (the V just updated). The drawn actions are constants of the loss, and
        enter the advantage and the log-probability unclipped (module docstring).
        """
        action, w, p_off = self.composite_action(state, batch.obs, key, hp, deterministic=False)
        action = jax.lax.stop_gradient(action)
        adv = self.iql.advantage(state.target_critic, value_params, batch.obs, action)
        (loss, m), grads = jax.value_and_grad(iql_actor_loss, has_aux=True)(
            state.actor.params,
            self.iql.log_prob,
            batch.obs,
            action,
            adv,
            hp.inverse_temperature,
            clip_actions=False,
        )
        new = net_step(state.actor, grads, self.iql.actor_tx(hp, online=True))
        return new, {
            "actor_loss": loss,
            **m,
            "select_offline_fraction": jnp.mean((w == OFFLINE).astype(jnp.float32)),
            "select_offline_prob": jnp.mean(p_off),
        }

    # -- the Method protocol
    def update(
        self, state: Any, batch: Transitions, key: jax.Array, hp: PEXHParams, online: bool
    ) -> tuple[Any, Metrics]:
        if not online:
            return self.iql.update(state, batch, key, hp, online=False)
        if not isinstance(state, PEXState):
            raise TypeError(f"pex.update(online=True) expects a PEXState, got {type(state)}")
        iql = self.iql
        value, m_v = iql.value_step(state.value, state.target_critic, batch, hp)
        actor, m_a = self.actor_step(state, value.params, batch, key, hp)
        critic, m_c = iql.critic_step(state.critic, value.params, batch, hp)
        target = iql.target_step(state.target_critic, critic.params, hp)
        new = PEXState(state.offline_actor, actor, critic, target, value)
        return new, {**m_v, **m_a, **m_c}

    def flop_passes(self, obs_size: int, act_size: int, batch: int, online: bool) -> list[Pass]:
        if not online:
            return iql_passes(self.config, obs_size, act_size, batch)
        h, n, b = tuple(self.config.hidden), self.config.n_critics, batch
        critic = (obs_size + act_size, *h, 1)
        value, actor = (obs_size, *h, 1), (obs_size, *h, act_size)
        return [
            Pass("target critics(s, a) for V", critic, b, n),
            Pass("V(s) loss", value, b, weight_grad=True),
            Pass("pi_off(s) mode", actor, b),
            Pass("pi_on(s) sample", actor, b),
            Pass("critics(s, a_off) for selection", critic, b, n),
            Pass("critics(s, a_on) for selection", critic, b, n),
            Pass("target critics(s, a~) for A", critic, b, n),
            Pass("new V(s) for A", value, b),
            Pass("pi_on(s) loss", actor, b, weight_grad=True, recomputed=True),
            Pass("new V(s') for y", value, b),
            Pass("critics(s, a) loss", critic, b, n, weight_grad=True),
        ]
