"""FamO2O, family offline-to-online RL (Wang et al., NeurIPS 2023), on the IQL backbone.

Instead of one AWR policy with one inverse temperature beta, FamO2O trains a *family*:
- the universal model pi_u(a | s, beta) is IQL's Gaussian policy (tanh-bounded mean,
  state-independent log-std in [-5, 2], not squashed) applied to concat(s, enc(beta)), where
  enc is a 6-dimensional sin/cos encoding (`encode_coefficient`);
- the balance model pi_b(u | s) picks, per state, which member to use: a ReLU MLP with a 1-D mean
  head (no tanh on the mean) and a state-independent log-std in [-10, 2], tanh-squashed, so
  u lies in (-1, 1), mapped to beta = beta_min + (u + 1)/2 (beta_max - beta_min)
  (`coefficient_from_unit`). It has its own learned temperature alpha_b (SAC-style).
Critics are IQL's: twin Q with Polyak targets and a state value V (expectile regression). Every
network uses orthogonal initialisation with scale sqrt(2), the heads included.

One update, in the official order (LeapLabTHU/FamO2O `jax_iql/family_learner.py`):
1. V:  expectile regression onto min_j Qbar_j(s, a) (target critics), `IQL.value_step`;
2. pi_b: u ~ pi_b(s) (reparameterised), beta(u), a~ = reparameterised sample of
       pi_u(. | s, enc beta) with the pre-step universal parameters held fixed (the gradient
       reaches pi_b through pi_u's mean as a function of beta), a~ NOT clipped;
       L_b = mean(alpha_b * log pi_b(u|s) - min_j Qbar_j(s, a~)) with the *target* critics and the
       pre-step alpha_b;
3. alpha_b: L = alpha_b (H - H_target), H = -mean log pi_b(u|s) from step 2's samples (the
       pre-update pi_b); the parameter is log alpha_b;
4. pi_u: AWR with a per-sample coefficient, A = min_j Qbar_j(s, a) - V_new(s), dataset/replay
       actions clipped to +-(1 - 1e-5) for the log-probability (as `iql_actor_loss`):
       offline, beta_j ~ Uniform[beta_min, beta_max] independently per sample;
       online, beta_j = beta(u_j), u_j ~ pi_b(s_j) from the PRE-update balance model (the one
       step 2 started from), stochastic, stop-gradient;
       weights (`FamO2OConfig.weight_mode`, `famo2o_weights`):
         per_sample (default, the method as described): w_j = min(exp(beta_j A_j), 100);
         official_broadcast (the released code): w_j = mean_i min(exp(beta_i A_j), 100);
       L_u = -mean_j w_j log pi_u(a_j | s_j, enc beta_j);
5. Q:  TD regression onto r + gamma mask V_new(s'), the two critics' squared errors summed
       (`IQL.critic_step`);
6. target: Polyak with rate tau, `IQL.target_step`.
The balance model and its temperature train every step in both phases.

The switch (`to_online`) is the identity: nothing is reset (networks, Adam moments, targets,
temperature, coefficient range all carry over). The only change is that `update(online=True)`
draws the universal model's coefficients from the balance model instead of uniformly.

Acting: beta = the deterministic balance output (tanh of its mean, mapped); evaluation takes
pi_u's mean, exploration a sample of pi_u(. | s, enc beta); both are clipped to [-1, 1]. `act`
reports `beta` per environment ("act/beta" in the loop's metrics).

Deliberate deviations from the official code:
- D1 weight_mode: the released `family_actor.py` multiplies a (B,) advantage by a (B, 1)
  coefficient, which broadcasts to (B, B): each sample's weight is the batch mean over every
  sample's beta, independent of its own. The default here is the per-sample weight the method
  describes (and the FamO2O+CQL code uses); "official_broadcast" reproduces the released form.
- D2 independent keys: the official balance step draws u and a~ with the same PRNG key (the
  normal noise of a~'s first dimension equals u's pre-tanh noise); here they use separate keys.
- D3 action clipping: the official loader clips dataset actions to +-(1 - 1e-5) once, so V, Q and
  the advantage also see clipped actions; here, as in this project's IQL, the clip is applied
  only inside the universal model's log-probability.
- D4 balance learning rate: its own hyperparameter `balance_lr` (the official code uses
  `actor_lr`; the defaults are equal, 3e-4).
- D5 evaluation runs on a separate environment (the official code evaluates on the training env
  mid-episode); this is the loop's behaviour, not this module's.

Presets (`famo2o_preset`): "antmaze" is the only official configuration (range [8, 14],
expectile 0.9, rewards r - 1, no actor LR decay). "locomotion" is a PROJECT CHOICE: no official
FamO2O+IQL locomotion configuration exists, so its values (range [1, 5] centred on IQL's
locomotion inverse temperature 3, expectile 0.7, return-range reward normalisation) are to be
confirmed by a sweep.
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
from jaxo2o.core.distributions import gaussian_log_prob, gaussian_sample, tanh_gaussian_sample
from jaxo2o.core.flops import Pass
from jaxo2o.core.losses import awr_actor_loss, awr_weights, temperature_loss, weight_ess
from jaxo2o.core.method import Method, check_network_config
from jaxo2o.core.networks import GaussianPolicy
from jaxo2o.core.optim import NetState, net_init, net_step
from jaxo2o.core.transitions import Transitions
from jaxo2o.methods.iql import ACTION_CLIP, CRITIC_REDUCTIONS, IQL, IQLConfig, min_q

Metrics = dict[str, jax.Array]

WEIGHT_MODES = ("per_sample", "official_broadcast")
BALANCE_LOG_STD = (-10.0, 2.0)  # clip range of the balance model's log-std (official policy.py)


# ------------------------------------------------------------------ pure pieces
def encode_coefficient(beta: jax.Array, dim: int = 6, base: float = 10000.0) -> jax.Array:
    """enc(beta) in R^dim, interleaved: enc[2i] = sin(beta / base^(2i/dim)), enc[2i+1] = cos(...).

    beta has any shape; the encoding is appended as a last axis of size `dim` (even).
    """
    beta = jnp.asarray(beta, jnp.float32)
    divisors = jnp.asarray(base ** (2.0 * np.arange(dim // 2) / dim), jnp.float32)
    angle = beta[..., None] / divisors
    return jnp.stack([jnp.sin(angle), jnp.cos(angle)], axis=-1).reshape(*beta.shape, dim)


def coefficient_from_unit(u: jax.Array, beta_min: jax.Array, beta_max: jax.Array) -> jax.Array:
    """Maps the balance model's u in [-1, 1] linearly onto [beta_min, beta_max]."""
    return beta_min + (u + 1.0) / 2.0 * (beta_max - beta_min)


def famo2o_weights(advantage: jax.Array, beta: jax.Array, mode: str) -> jax.Array:
    """AWR weights of a batch with per-sample coefficients, without gradient (module docstring).

    per_sample:         w_j = min(exp(beta_j A_j), 100)
    official_broadcast: w_j = mean_i min(exp(beta_i A_j), 100)
    """
    if mode == "per_sample":
        return awr_weights(advantage, beta)
    if mode == "official_broadcast":
        return jnp.mean(awr_weights(advantage[None, :], beta[:, None]), axis=0)
    raise ValueError(f"weight_mode: unknown {mode!r}; choose one of {WEIGHT_MODES}")


# ------------------------------------------------------------------ hyperparameters and config
@flax.struct.dataclass
class FamO2OHParams:
    """Traced: a sweep may vmap over any of these (the official AntMaze values by default)."""

    expectile: jnp.ndarray = 0.9
    actor_lr: jnp.ndarray = 3e-4  # universal model
    critic_lr: jnp.ndarray = 3e-4
    value_lr: jnp.ndarray = 3e-4
    balance_lr: jnp.ndarray = 3e-4  # the official code uses actor_lr (deviation D4)
    balance_temperature_lr: jnp.ndarray = 3e-4
    init_balance_temperature: jnp.ndarray = 1.0
    balance_target_entropy: jnp.ndarray = -0.5
    beta_min: jnp.ndarray = 8.0
    beta_max: jnp.ndarray = 14.0
    discount: jnp.ndarray = 0.99
    tau: jnp.ndarray = 0.005


def validate_famo2o_hparams(hp: FamO2OHParams) -> FamO2OHParams:
    """Raise ConfigError naming the first bad field; every element of a batched pytree is checked
    (traced values are skipped)."""
    return validate_hparams(
        hp,
        "famo2o",
        positive=(
            "expectile",
            "actor_lr",
            "critic_lr",
            "value_lr",
            "balance_lr",
            "balance_temperature_lr",
            "init_balance_temperature",
            "tau",
        ),
        nonnegative=("beta_min",),
        unit_interval=("expectile", "discount", "tau"),
        finite=("balance_target_entropy",),
        ordered=(("beta_min", "beta_max", True),),
    )


@dataclass(frozen=True)
class FamO2OConfig:
    """Static: shapes and the choice of loss forms."""

    hidden: tuple[int, ...] = (256, 256)
    n_critics: int = 2
    reward_normalization: str = "minus_one"  # the official (AntMaze) setting
    critic_reduction: str = "sum"
    weight_mode: str = "per_sample"
    encoding_dim: int = 6
    encoding_base: float = 10000.0

    def __post_init__(self):
        require = partial(require_in, "famo2o")

        check_network_config(self, "famo2o")
        require(
            self.critic_reduction in CRITIC_REDUCTIONS,
            "critic_reduction",
            f"unknown {self.critic_reduction!r}; choose one of {CRITIC_REDUCTIONS}",
        )
        require(
            self.weight_mode in WEIGHT_MODES,
            "weight_mode",
            f"unknown {self.weight_mode!r}; choose one of {WEIGHT_MODES}",
        )
        require(
            isinstance(self.encoding_dim, int)
            and self.encoding_dim > 0
            and self.encoding_dim % 2 == 0,
            "encoding_dim",
            f"must be a positive even integer, got {self.encoding_dim!r}",
        )
        require(self.encoding_base > 0, "encoding_base", f"must be > 0, got {self.encoding_base}")

    def iql_config(self) -> IQLConfig:
        """The critic/value settings, as IQL's (its actor is not used; no LR decay)."""
        return IQLConfig(
            hidden=self.hidden,
            n_critics=self.n_critics,
            offline_steps=0,
            reward_normalization=self.reward_normalization,
            critic_reduction=self.critic_reduction,
        )


FAMO2O_PRESETS: dict[str, dict[str, Any]] = {
    # the only official FamO2O+IQL configuration (jax_iql/configs/family_antmaze_finetune_config.py)
    "antmaze": {
        "expectile": 0.9,
        "beta_min": 8.0,
        "beta_max": 14.0,
        "reward_normalization": "minus_one",
    },
    # PROJECT CHOICE, not an official setting (none exists for FamO2O+IQL on locomotion): a range
    # centred on IQL's locomotion inverse temperature 3, IQL's locomotion expectile and reward
    # normalisation. To be confirmed by a sweep.
    "locomotion": {
        "expectile": 0.7,
        "beta_min": 1.0,
        "beta_max": 5.0,
        "reward_normalization": "trajectory_range",
    },
}


def famo2o_preset(domain: str, **config_overrides: Any) -> tuple[FamO2OConfig, FamO2OHParams]:
    """(config, hparams) of a domain's preset (see FAMO2O_PRESETS for which are official)."""
    if domain not in FAMO2O_PRESETS:
        raise ConfigError(
            f"famo2o.domain: unknown {domain!r}; choose one of {tuple(FAMO2O_PRESETS)}"
        )
    p = dict(FAMO2O_PRESETS[domain])
    config = FamO2OConfig(reward_normalization=p.pop("reward_normalization"), **config_overrides)
    return config, FamO2O(config).default_hparams(**p)


# ------------------------------------------------------------------ the method
class FamO2OState(NamedTuple):
    universal: NetState  # pi_u(a | s, enc beta)
    balance: NetState  # pi_b(u | s)
    log_temperature: NetState  # log alpha_b, a scalar
    critic: NetState
    target_critic: Any
    value: NetState


class FamO2O(Method):
    name = "famo2o"
    Config = FamO2OConfig
    HParams = FamO2OHParams

    def __init__(self, config: FamO2OConfig | None = None):
        super().__init__(config)
        self.iql = IQL(self.config.iql_config())  # V, Q and target steps
        self._balance = GaussianPolicy(
            1,
            self.config.hidden,
            log_std_min=BALANCE_LOG_STD[0],
            log_std_max=BALANCE_LOG_STD[1],
            tanh_mean=False,  # the tanh is the squashing of the distribution
        )

    def validate(self, hp: FamO2OHParams) -> FamO2OHParams:
        return validate_famo2o_hparams(hp)

    # -- networks as plain functions
    def _universal(self, act_size: int) -> GaussianPolicy:
        return GaussianPolicy(act_size, self.config.hidden)

    def encode(self, beta: jax.Array) -> jax.Array:
        return encode_coefficient(beta, self.config.encoding_dim, self.config.encoding_base)

    def universal(self, params: Any, obs: jax.Array, beta: jax.Array) -> tuple[jax.Array, ...]:
        """(mean, log_std) of pi_u(. | s, enc beta); beta has obs's leading shape."""
        act_size = params["log_std"].shape[-1]
        x = jnp.concatenate([obs, self.encode(beta)], axis=-1)
        return self._universal(act_size).apply({"params": params}, x)

    def universal_log_prob(self, params: Any, obs, beta, action) -> jax.Array:
        mean, log_std = self.universal(params, obs, beta)
        return gaussian_log_prob(mean, log_std, action)

    def balance(self, params: Any, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(mean, log_std) of the balance model's Gaussian before the tanh; shapes (..., 1)."""
        return self._balance.apply({"params": params}, obs)

    def sample_coefficient(
        self, key: jax.Array, mean: jax.Array, log_std: jax.Array, hp: FamO2OHParams
    ) -> tuple[jax.Array, jax.Array]:
        """(beta, log pi_b(u|s)): a reparameterised draw u ~ pi_b mapped to the range."""
        u, log_prob = tanh_gaussian_sample(key, mean, log_std)
        return coefficient_from_unit(u[..., 0], hp.beta_min, hp.beta_max), log_prob

    def online_coefficient(
        self, balance_params: Any, obs: jax.Array, key: jax.Array, hp: FamO2OHParams
    ) -> jax.Array:
        """The universal model's online beta: a stochastic draw from pi_b, without gradient."""
        beta, _ = self.sample_coefficient(key, *self.balance(balance_params, obs), hp)
        return jax.lax.stop_gradient(beta)

    def coefficient(self, state: FamO2OState, obs: jax.Array, hp: FamO2OHParams) -> jax.Array:
        """The deterministic beta per observation: tanh of the balance mean, mapped."""
        mean, _ = self.balance(state.balance.params, obs)
        return coefficient_from_unit(jnp.tanh(mean[..., 0]), hp.beta_min, hp.beta_max)

    # -- init
    def init(self, key: jax.Array, obs_size: int, act_size: int, hp: FamO2OHParams) -> FamO2OState:
        k_u, k_b, k_c, k_v = jax.random.split(key, 4)
        obs, act = jnp.zeros((1, obs_size)), jnp.zeros((1, act_size))
        x = jnp.zeros((1, obs_size + self.config.encoding_dim))  # enc input initialised with 0s
        universal = self._universal(act_size).init(k_u, x)["params"]
        balance = self._balance.init(k_b, obs)["params"]
        critic = self.iql._critic.init(k_c, obs, act)["params"]
        value = self.iql._value.init(k_v, obs)["params"]
        log_temp = jnp.log(jnp.asarray(hp.init_balance_temperature, jnp.float32))
        return FamO2OState(
            universal=net_init(universal, optax.adam(hp.actor_lr)),
            balance=net_init(balance, optax.adam(hp.balance_lr)),
            log_temperature=net_init(log_temp, optax.adam(hp.balance_temperature_lr)),
            critic=net_init(critic, optax.adam(hp.critic_lr)),
            target_critic=critic,  # the same weights as Q at the start
            value=net_init(value, optax.adam(hp.value_lr)),
        )

    # -- the sub-steps
    def balance_step(
        self, state: FamO2OState, obs: jax.Array, key: jax.Array, hp: FamO2OHParams
    ) -> tuple[NetState, Metrics, jax.Array, tuple[jax.Array, jax.Array]]:
        """Step 2. Returns (new pi_b, metrics, log pi_b(u|s) of the samples, the pre-update
        (mean, log_std) of pi_b at `obs`)."""
        k_u, k_a = jax.random.split(key)
        alpha = jnp.exp(state.log_temperature.params)
        universal = jax.lax.stop_gradient(state.universal.params)  # pi_u held fixed

        def loss_fn(params):
            mean_b, log_std_b = self.balance(params, obs)
            beta, log_prob = self.sample_coefficient(k_u, mean_b, log_std_b, hp)
            mean_u, log_std_u = self.universal(universal, obs, beta)
            action = gaussian_sample(k_a, mean_u, log_std_u)  # not clipped (official)
            q = min_q(self.iql.q, state.target_critic, obs, action)
            loss = jnp.mean(alpha * log_prob - q)
            return loss, (log_prob, beta, q, (mean_b, log_std_b))

        (loss, (log_prob, beta, q, dist)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.balance.params
        )
        balance = net_step(state.balance, grads, optax.adam(hp.balance_lr))
        metrics = {
            "balance_loss": loss,
            "balance_q": jnp.mean(q),
            "balance_entropy": -jnp.mean(log_prob),
            "balance_beta_mean": jnp.mean(beta),
            "balance_temperature": alpha,
        }
        return balance, metrics, log_prob, jax.lax.stop_gradient(dist)

    def temperature_step(
        self, log_temperature: NetState, log_prob: jax.Array, hp: FamO2OHParams
    ) -> tuple[NetState, Metrics]:
        """Step 3: alpha_b (H - H_target) with H = -mean log pi_b(u|s) of step 2's samples."""
        loss, grad = jax.value_and_grad(temperature_loss)(
            log_temperature.params, log_prob, hp.balance_target_entropy
        )
        new = net_step(log_temperature, grad, optax.adam(hp.balance_temperature_lr))
        return new, {"temperature_loss": loss}

    def universal_coefficients(
        self,
        key: jax.Array,
        old_balance: tuple[jax.Array, jax.Array],
        hp: FamO2OHParams,
        online: bool,
    ) -> jax.Array:
        """Step 4's beta per sample: uniform offline; online a stop-gradient draw from the
        pre-update pi_b, given as its (mean, log_std) at the batch states."""
        mean_b, log_std_b = old_balance
        if online:
            beta, _ = self.sample_coefficient(key, mean_b, log_std_b, hp)
            return jax.lax.stop_gradient(beta)
        n = mean_b.shape[0]
        return jax.random.uniform(key, (n,), minval=hp.beta_min, maxval=hp.beta_max)

    def universal_step(
        self,
        universal: NetState,
        target_critic: Any,
        value_params: Any,
        batch: Transitions,
        beta: jax.Array,
        hp: FamO2OHParams,
        q_target: jax.Array | None = None,
    ) -> tuple[NetState, Metrics]:
        """Step 4: AWR of pi_u(. | s, enc beta) with per-sample coefficients `beta` (constants).
        `q_target` = min_j Qbar_j(s, a), if the caller has it already."""
        adv = self.iql.advantage(target_critic, value_params, batch.obs, batch.action, q_target)
        beta = jax.lax.stop_gradient(beta)
        w = famo2o_weights(adv, beta, self.config.weight_mode)
        action = jnp.clip(batch.action, -ACTION_CLIP, ACTION_CLIP)

        def loss_fn(params):
            return awr_actor_loss(self.universal_log_prob(params, batch.obs, beta, action), w)

        loss, grads = jax.value_and_grad(loss_fn)(universal.params)
        new = net_step(universal, grads, optax.adam(hp.actor_lr))
        return new, {
            "actor_loss": loss,
            "adv_mean": jnp.mean(adv),
            "weight_mean": jnp.mean(w),
            "weight_ess": weight_ess(w),
            "weight_max": jnp.max(w),
            "beta_mean": jnp.mean(beta),
            "beta_std": jnp.std(beta),
        }

    # -- the Method protocol
    def update(
        self, state: FamO2OState, batch: Transitions, key: jax.Array, hp: FamO2OHParams, online
    ) -> tuple[FamO2OState, Metrics]:
        """One step in the official order (module docstring). `key` splits into the balance
        step's key and the universal coefficients' key, in that order."""
        iql = self.iql
        k_balance, k_beta = jax.random.split(key)
        # min_j Qbar_j(s, a) serves the value and the universal step: computed once
        q_target = min_q(iql.q, state.target_critic, batch.obs, batch.action)
        value, m_v = iql.value_step(state.value, state.target_critic, batch, hp, q_target)
        balance, m_b, log_prob, old_balance = self.balance_step(state, batch.obs, k_balance, hp)
        log_temperature, m_t = self.temperature_step(state.log_temperature, log_prob, hp)
        beta = self.universal_coefficients(k_beta, old_balance, hp, online)
        universal, m_u = self.universal_step(
            state.universal, state.target_critic, value.params, batch, beta, hp, q_target
        )
        critic, m_c = iql.critic_step(state.critic, value.params, batch, hp)
        target = iql.target_step(state.target_critic, critic.params, hp)
        new = FamO2OState(universal, balance, log_temperature, critic, target, value)
        return new, {**m_v, **m_b, **m_t, **m_u, **m_c}

    def to_online(self, state: FamO2OState, key: jax.Array, hp: FamO2OHParams) -> FamO2OState:
        """Nothing is reset: only `update(online=True)`'s source of beta changes."""
        return state

    def act(
        self,
        state: FamO2OState,
        obs: jax.Array,
        key: jax.Array,
        hp: FamO2OHParams,
        deterministic: bool,
    ) -> tuple[jax.Array, Metrics]:
        beta = self.coefficient(state, obs, hp)
        mean, log_std = self.universal(state.universal.params, obs, beta)
        action = mean if deterministic else gaussian_sample(key, mean, log_std)
        return jnp.clip(action, -1.0, 1.0), {"beta": beta}

    # -- cost model
    def flop_passes(self, obs_size: int, act_size: int, batch: int, online: bool) -> list[Pass]:
        """The same passes in both phases: the online beta reuses step 2's forward of pi_b."""
        h, n, b = tuple(self.config.hidden), self.config.n_critics, batch
        critic, value = (obs_size + act_size, *h, 1), (obs_size, *h, 1)
        universal = (obs_size + self.config.encoding_dim, *h, act_size)
        balance = (obs_size, *h, 1)
        return [
            Pass("target critics(s, a) for V and A", critic, b, n),
            Pass("V(s) loss", value, b, weight_grad=True),
            Pass("pi_b(s) loss", balance, b, weight_grad=True),
            Pass("pi_u(s, beta) sample for pi_b", universal, b, input_grad=True),
            Pass("target critics(s, a~) for pi_b", critic, b, n, input_grad=True),
            Pass("new V(s) for A", value, b),
            Pass("pi_u(s, beta) loss", universal, b, weight_grad=True),
            Pass("new V(s') for y", value, b),
            Pass("critics(s, a) loss", critic, b, n, weight_grad=True),
        ]
