"""FamO2O: the coefficient encoding on the spec's test vectors and the range mapping, the two AWR
weight forms against hand-computed weights, the universal step on a hand-made model, the
balance step and the temperature on hand-made networks (direction and size of one Adam step),
the online coefficient drawn from the pre-update balance model without gradient, validation and
presets, and real Trainer runs on `point` in both phases and both weight modes."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxo2o.config import ConfigError, RunConfig, run_hparams
from jaxo2o.core.loop import Trainer
from jaxo2o.core.runner import broadcast_tree, stack_trees
from jaxo2o.core.transitions import Transitions
from jaxo2o.envs import make_env
from jaxo2o.methods import get_method
from jaxo2o.methods.famo2o import (
    FAMO2O_PRESETS,
    FamO2O,
    FamO2OConfig,
    FamO2OState,
    coefficient_from_unit,
    encode_coefficient,
    famo2o_preset,
    famo2o_weights,
)

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
OBS, ACT = 4, 2
HIDDEN = (4, 4)
SMALL = FamO2O(FamO2OConfig(hidden=HIDDEN))


def f32(x):
    return jnp.asarray(x, jnp.float32)


def normal_logp(x: float, mean: float = 0.0, log_std: float = 0.0) -> float:
    return -0.5 * ((x - mean) / math.exp(log_std)) ** 2 - log_std - LOG_SQRT_2PI


def leaves_equal(a, b) -> bool:
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(la) == len(lb) and all(
        np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb, strict=True)
    )


# ------------------------------------------------------------------ encoding and mapping
def test_encoding_matches_the_spec_test_vectors():
    expected = {
        0.0: [0, 1, 0, 1, 0, 1],
        8.0: [0.989358, -0.145500, 0.362852, 0.931847, 0.017235, 0.999851],
        11.0: [-0.999990, 0.004426, 0.488679, 0.872464, 0.023697, 0.999719],
        14.0: [0.990607, 0.136737, 0.605045, 0.796191, 0.030158, 0.999545],
    }
    for beta, vec in expected.items():
        np.testing.assert_allclose(encode_coefficient(f32(beta)), vec, atol=1e-5)
    # batched: one encoding per element, in the order given
    betas = f32(list(expected))
    enc = encode_coefficient(betas)
    assert enc.shape == (4, 6)
    np.testing.assert_allclose(enc, np.array(list(expected.values())), atol=1e-5)
    assert encode_coefficient(f32([[8.0, 14.0]])).shape == (1, 2, 6)


def test_unit_interval_maps_linearly_onto_the_coefficient_range():
    beta = coefficient_from_unit(f32([-1.0, 0.0, 1.0, 0.5]), f32(8.0), f32(14.0))
    np.testing.assert_allclose(beta, [8.0, 11.0, 14.0, 12.5], rtol=1e-7)
    np.testing.assert_allclose(coefficient_from_unit(f32(0.0), f32(1.0), f32(5.0)), 3.0)


# ------------------------------------------------------------------ the two weight forms
ADV = np.array([0.1, 0.2, -0.3, 0.5], np.float32)
BETA = np.array([8.0, 10.0, 12.0, 14.0], np.float32)


def test_per_sample_weights_use_each_samples_own_coefficient():
    w = np.asarray(famo2o_weights(f32(ADV), f32(BETA), "per_sample"))
    # exp(0.8), exp(2), exp(-3.6), exp(7) = 1096.6 -> clipped at 100
    np.testing.assert_allclose(w, [math.exp(0.8), math.exp(2.0), math.exp(-3.6), 100.0], rtol=1e-6)
    # swapping the coefficients of samples 0 and 2 changes exactly those two weights
    swapped = BETA[[2, 1, 0, 3]]
    w2 = np.asarray(famo2o_weights(f32(ADV), f32(swapped), "per_sample"))
    np.testing.assert_allclose(w2, [math.exp(1.2), math.exp(2.0), math.exp(-2.4), 100.0], rtol=1e-6)
    changed = ~np.isclose(w, w2, rtol=1e-6)
    np.testing.assert_array_equal(changed, [True, False, True, False])


def test_official_broadcast_weights_are_the_batch_mean_over_coefficients():
    w = np.asarray(famo2o_weights(f32(ADV), f32(BETA), "official_broadcast"))
    # numpy: the (B, B) matrix of the released code, element [i, j] = min(exp(beta_i A_j), 100)
    by_hand = np.minimum(np.exp(BETA[:, None].astype(np.float64) * ADV[None, :]), 100.0)
    np.testing.assert_allclose(w, by_hand.mean(axis=0), rtol=1e-6)
    # the released loss -(exp_a * log_probs).mean() over the (B, B) product is -mean_j w_j l_j
    logp = np.array([-1.0, -2.0, -0.5, -3.0])
    assert -(by_hand * logp).mean() == pytest.approx(-(w * logp).mean(), rel=1e-6)
    # the sample with A = 0.5 saturates at 100 only for beta >= 9.2: mean(54.6, 100, 100, 100)
    assert w[3] == pytest.approx((math.exp(4.0) + 300.0) / 4, rel=1e-6)
    # a sample's weight does not depend on its own coefficient: any permutation gives the same
    w_perm = famo2o_weights(f32(ADV), f32(BETA[[3, 0, 2, 1]]), "official_broadcast")
    np.testing.assert_allclose(w_perm, w, rtol=1e-6)
    with pytest.raises(ValueError, match="weight_mode"):
        famo2o_weights(f32(ADV), f32(BETA), "mean")


# ------------------------------------------------------------------ hand-made networks
def zeros_like(tree):
    return jax.tree.map(jnp.zeros_like, tree)


def relu_critic(template, sign: float):
    """Every ensemble member: Q(s, a) = sign * relu(a_0 + 0.5)."""
    p = zeros_like(template)
    mlp = p["VmapCritic_0"]["MLP_0"]
    mlp["Dense_0"]["kernel"] = mlp["Dense_0"]["kernel"].at[:, OBS + 0, 0].set(1.0)
    mlp["Dense_0"]["bias"] = mlp["Dense_0"]["bias"].at[:, 0].set(0.5)
    mlp["Dense_1"]["kernel"] = mlp["Dense_1"]["kernel"].at[:, 0, 0].set(1.0)
    mlp["Dense_2"]["kernel"] = mlp["Dense_2"]["kernel"].at[:, 0, 0].set(sign)
    return p


def universal_rising_in_beta(template, log_std: float):
    """pi_u's mean: a_0 = tanh(enc(beta)[2]) = tanh(sin(beta / 21.544)), increasing on [8, 14];
    a_1 = 0; state-independent log_std."""
    p = zeros_like(template)
    p["MLP_0"]["Dense_0"]["kernel"] = p["MLP_0"]["Dense_0"]["kernel"].at[OBS + 2, 0].set(1.0)
    p["MLP_0"]["Dense_1"]["kernel"] = p["MLP_0"]["Dense_1"]["kernel"].at[0, 0].set(1.0)
    p["Dense_0"]["kernel"] = p["Dense_0"]["kernel"].at[0, 0].set(1.0)
    p["log_std"] = jnp.full((ACT,), log_std)
    return p


def balance_constant(template, bias: float, log_std: float):
    """pi_b: mean `bias` at every state (zero weights), log-std `log_std`."""
    p = zeros_like(template)
    p["Dense_0"]["bias"] = jnp.full((1,), bias)
    p["log_std"] = jnp.full((1,), log_std)
    return p


def hand_state(method: FamO2O, hp, target_sign: float = 1.0, critic_sign: float | None = None):
    """Universal rising in beta (log-std -5), balance mean 0 and log-std -3, target critics
    Qbar = target_sign * relu(a_0 + 0.5), current critics with `critic_sign` (default the
    opposite sign, so a step that used them would go the other way), V = 0."""
    base = method.init(jax.random.PRNGKey(0), OBS, ACT, hp)
    critic_sign = -target_sign if critic_sign is None else critic_sign
    return base._replace(
        universal=base.universal._replace(
            params=universal_rising_in_beta(base.universal.params, -5.0)
        ),
        balance=base.balance._replace(params=balance_constant(base.balance.params, 0.0, -3.0)),
        critic=base.critic._replace(params=relu_critic(base.critic.params, critic_sign)),
        target_critic=relu_critic(base.critic.params, target_sign),
        value=base.value._replace(params=zeros_like(base.value.params)),
    )


def make_batch(n: int, action: float = 0.3, seed: int = 5) -> Transitions:
    obs = jax.random.normal(jax.random.PRNGKey(seed), (n, OBS))
    return Transitions(
        obs=obs,
        action=jnp.full((n, ACT), action),
        reward=jnp.zeros(n),
        next_obs=obs,
        terminated=jnp.zeros(n, bool),
        truncated=jnp.zeros(n, bool),
    )


# ------------------------------------------------------------------ the universal step
@pytest.mark.parametrize("mode", ["per_sample", "official_broadcast"])
def test_universal_step_loss_by_hand(mode):
    method = FamO2O(FamO2OConfig(hidden=HIDDEN, weight_mode=mode))
    hp = method.default_hparams()
    state = hand_state(method, hp)
    # pi_u: zero weights -> mean 0 and log-std 0 at every (s, beta); the replay actions: a_0 = 1.5
    # (clipped to 1 - 1e-5 for the log-prob) and a_0 = -0.2; a_1 = 0
    universal = state.universal._replace(params=zeros_like(state.universal.params))
    batch = make_batch(2)._replace(action=f32([[1.5, 0.0], [-0.2, 0.0]]))
    beta = f32([8.0, 14.0])
    _, m = method.universal_step(
        universal, state.target_critic, state.value.params, batch, beta, hp
    )
    # A = Qbar - V = relu(a_0 + 0.5) - 0 = [2.0, 0.3] (the advantage sees the unclipped action)
    a = np.array([2.0, 0.3])
    if mode == "per_sample":
        w = [min(math.exp(8 * a[0]), 100.0), math.exp(14 * a[1])]  # [100, 66.7]
    else:
        w = [min(math.exp(8 * a[0]), 100.0), (math.exp(8 * a[1]) + math.exp(14 * a[1])) / 2]
    logp = [normal_logp(1.0 - 1e-5) + normal_logp(0.0), normal_logp(-0.2) + normal_logp(0.0)]
    expected = -(w[0] * logp[0] + w[1] * logp[1]) / 2
    assert float(m["actor_loss"]) == pytest.approx(expected, rel=1e-5)
    assert float(m["adv_mean"]) == pytest.approx(1.15, rel=1e-5)
    assert float(m["beta_mean"]) == pytest.approx(11.0)
    assert float(m["beta_std"]) == pytest.approx(3.0)


# ------------------------------------------------------------------ the balance step
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_balance_step_moves_the_coefficient_toward_higher_q(sign):
    """Qbar rises (sign +1) or falls (-1) with a_0, and pi_u's a_0 rises with beta: one Adam step
    moves the balance mean's bias by +-lr (the only parameter of the mean with a gradient: the
    zero weights see zero hidden activations), so the deterministic beta becomes
    11 +- 3 tanh(lr)."""
    lr = 0.1
    hp = SMALL.default_hparams(balance_lr=lr, init_balance_temperature=1e-3)
    state = hand_state(SMALL, hp, target_sign=sign)  # current critics: the opposite sign
    obs = make_batch(16).obs
    assert np.allclose(SMALL.coefficient(state, obs, hp), 11.0)
    balance, m, log_prob, old = SMALL.balance_step(state, obs, jax.random.PRNGKey(3), hp)
    new = state._replace(balance=balance)
    expected = 11.0 + sign * 3.0 * math.tanh(lr)  # 11.299 or 10.701
    np.testing.assert_allclose(SMALL.coefficient(new, obs, hp), expected, rtol=1e-5)
    # the loss read the target critics: Qbar(s, a~) = sign * relu(a_0 + 0.5) with a_0 close to
    # tanh(sin(beta / 21.544)) in [0.35, 0.54] (beta near 11: 0.453)
    assert sign * float(m["balance_q"]) == pytest.approx(0.5 + math.tanh(0.488679), abs=0.03)
    # it reported the pre-update distribution and the pre-step temperature
    np.testing.assert_allclose(old[0], 0.0)
    np.testing.assert_allclose(old[1], -3.0)
    assert float(m["balance_temperature"]) == pytest.approx(1e-3, rel=1e-5)
    assert log_prob.shape == (16,)


def test_balance_model_sees_q_only_through_the_universal_models_dependence_on_beta():
    """With a universal model whose mean ignores beta, Qbar(s, a~) carries no gradient to pi_b:
    the step is the same whichever way Qbar slopes (only the entropy term acts)."""
    hp = SMALL.default_hparams(init_balance_temperature=1e-3)
    obs = make_batch(16).obs
    key = jax.random.PRNGKey(3)
    steps = {}
    for sign in (1.0, -1.0):
        state = hand_state(SMALL, hp, target_sign=sign)
        flat = state._replace(
            universal=state.universal._replace(params=zeros_like(state.universal.params))
        )
        steps[sign, "rising"] = SMALL.balance_step(state, obs, key, hp)[0].params
        steps[sign, "flat"] = SMALL.balance_step(flat, obs, key, hp)[0].params
    assert leaves_equal(steps[1.0, "flat"], steps[-1.0, "flat"])
    lr = float(hp.balance_lr)
    assert float(steps[1.0, "rising"]["Dense_0"]["bias"][0]) == pytest.approx(lr, rel=1e-4)
    assert float(steps[-1.0, "rising"]["Dense_0"]["bias"][0]) == pytest.approx(-lr, rel=1e-4)


def test_balance_step_scores_the_unclipped_universal_sample():
    """pi_u with mean tanh(2) = 0.964 and std 1 in every dimension; Qbar = relu(a_0 + 0.5).
    Unclipped a~: E Qbar = E relu(1.464 + e) = 1.464 Phi(1.464) + phi(1.464) = 1.496;
    clipped to [-1, 1] it would be 1.115."""
    hp = SMALL.default_hparams()
    state = hand_state(SMALL, hp)
    universal = zeros_like(state.universal.params)
    universal["Dense_0"]["bias"] = f32([2.0, 2.0])
    state = state._replace(universal=state.universal._replace(params=universal))
    obs = jax.random.normal(jax.random.PRNGKey(2), (20_000, OBS))
    _, m, _, _ = SMALL.balance_step(state, obs, jax.random.PRNGKey(4), hp)
    e = np.linspace(-12.0, 12.0, 240_001)
    density = np.exp(-0.5 * e * e) / math.sqrt(2 * math.pi) * (e[1] - e[0])
    mean = math.tanh(2.0)
    unclipped = np.sum(np.maximum(mean + e + 0.5, 0.0) * density)
    clipped = np.sum(np.maximum(np.clip(mean + e, -1.0, 1.0) + 0.5, 0.0) * density)
    assert unclipped == pytest.approx(1.496, abs=1e-3)
    assert clipped == pytest.approx(1.115, abs=1e-3)
    assert float(m["balance_q"]) == pytest.approx(unclipped, abs=0.03)  # sd of the mean 0.008


def test_temperature_rises_when_the_entropy_is_below_target():
    hp = SMALL.default_hparams()  # target entropy -0.5, temperature 1, lr 3e-4
    lr = float(hp.balance_temperature_lr)
    batch = make_batch(16)
    for log_std, direction in ((-10.0, +1.0), (0.0, -1.0)):
        state = hand_state(SMALL, hp)
        state = state._replace(
            balance=state.balance._replace(
                params=balance_constant(state.balance.params, 0.0, log_std)
            )
        )
        new, m = SMALL.update(state, batch, jax.random.PRNGKey(1), hp, online=False)
        entropy = float(m["balance_entropy"])
        # log-std -10: H ~ 1.42 - 10 = -8.6 < -0.5; log-std 0: tanh(N(0, 1)), H ~ 0.55 > -0.5
        assert direction * (entropy + 0.5) < 0
        # loss alpha (H - H_target): its gradient in log alpha has the sign of H - H_target, so the
        # first Adam step moves log alpha by -lr sign(H - H_target)
        assert float(new.log_temperature.params) == pytest.approx(direction * lr, rel=1e-3)
        assert float(m["temperature_loss"]) == pytest.approx(entropy + 0.5, rel=1e-5)
        assert float(m["balance_temperature"]) == 1.0  # the pre-step value was used


# ------------------------------------------------------------------ the online coefficient
def test_online_coefficient_is_a_stop_gradient_draw_from_the_pre_update_balance_model():
    # a large balance rate: the post-update balance model is far from the pre-update one
    hp = SMALL.default_hparams(balance_lr=0.5, beta_min=1.0, beta_max=5.0)
    base = SMALL.init(jax.random.PRNGKey(0), OBS, ACT, hp)
    state = base._replace(
        balance=base.balance._replace(params=balance_constant(base.balance.params, 0.0, -1.0))
    )
    batch = make_batch(64)
    key = jax.random.PRNGKey(9)
    new, m = SMALL.update(state, batch, key, hp, online=True)
    _, k_beta = jax.random.split(key)  # update's documented key split (balance, coefficients)

    def draws(balance_params):
        return SMALL.online_coefficient(balance_params, batch.obs, k_beta, hp)

    before, after = draws(state.balance.params), draws(new.balance.params)
    assert float(jnp.max(jnp.abs(before - after))) > 0.1
    assert float(m["beta_mean"]) == pytest.approx(float(jnp.mean(before)), abs=1e-5)
    assert float(m["beta_std"]) == pytest.approx(float(jnp.std(before)), abs=1e-5)
    # the universal loss is exactly the one with the pre-update draws
    value, _ = SMALL.iql.value_step(state.value, state.target_critic, batch, hp)
    universal, m_u = SMALL.universal_step(
        state.universal, state.target_critic, value.params, batch, before, hp
    )
    assert float(m["actor_loss"]) == pytest.approx(float(m_u["actor_loss"]), rel=1e-5)
    for a, b in zip(jax.tree.leaves(new.universal), jax.tree.leaves(universal), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    _, m_after = SMALL.universal_step(
        state.universal, state.target_critic, value.params, batch, after, hp
    )
    assert float(m["actor_loss"]) != pytest.approx(float(m_after["actor_loss"]), rel=1e-3)
    # beta depends differentiably on the balance parameters (a reparameterised draw) ...
    mean_b = lambda p: jnp.mean(
        SMALL.sample_coefficient(k_beta, *SMALL.balance(p, batch.obs), hp)[0]
    )
    g_raw = jax.grad(mean_b)(state.balance.params)
    assert float(jnp.abs(g_raw["Dense_0"]["bias"][0])) > 0.1
    # ... but the universal loss of an online update has zero gradient in them

    def loss_of_balance(balance_params):
        s = state._replace(balance=state.balance._replace(params=balance_params))
        return SMALL.update(s, batch, key, hp, online=True)[1]["actor_loss"]

    g = jax.grad(loss_of_balance)(state.balance.params)
    for leaf in jax.tree.leaves(g):
        np.testing.assert_array_equal(leaf, 0.0)


def test_offline_coefficients_are_uniform_on_the_range():
    hp = SMALL.default_hparams()
    n = 20_000
    old = (jnp.zeros((n, 1)), jnp.zeros((n, 1)))
    beta = np.asarray(SMALL.universal_coefficients(jax.random.PRNGKey(2), old, hp, online=False))
    assert beta.shape == (n,)
    assert beta.min() >= 8.0 and beta.max() <= 14.0
    assert beta.mean() == pytest.approx(11.0, abs=0.05)  # sd of the mean 0.012
    assert beta.std() == pytest.approx(6.0 / math.sqrt(12.0), abs=0.03)  # 1.732
    # online draws follow the balance model: mean 0, std 1 before the tanh -> symmetric about 11
    on = np.asarray(SMALL.universal_coefficients(jax.random.PRNGKey(2), old, hp, online=True))
    assert on.mean() == pytest.approx(11.0, abs=0.05)
    assert on.min() > 8.0 and on.max() < 14.0
    # sd of beta = 3 sqrt(E tanh(x)^2), x ~ N(0, 1): 3 * 0.628 = 1.884 (wider than uniform)
    x = np.linspace(-10.0, 10.0, 200_001)
    e_tanh2 = (
        np.sum(np.tanh(x) ** 2 * np.exp(-0.5 * x * x)) * (x[1] - x[0]) / math.sqrt(2 * math.pi)
    )
    assert on.std() == pytest.approx(3.0 * math.sqrt(e_tanh2), abs=0.03)


# ------------------------------------------------------------------ switch and acting
def test_to_online_is_the_identity_and_acting_uses_the_deterministic_coefficient():
    hp = SMALL.default_hparams()
    state = hand_state(SMALL, hp)
    assert SMALL.to_online(state, jax.random.PRNGKey(1), hp) is state
    # balance mean 0.5 everywhere -> beta = 11 + 3 tanh(0.5); pi_u mean tanh(2) and log-std 1
    universal = zeros_like(state.universal.params)
    universal["Dense_0"]["bias"] = f32([2.0, -2.0])
    universal["log_std"] = f32([1.0, 1.0])
    state = state._replace(
        universal=state.universal._replace(params=universal),
        balance=state.balance._replace(params=balance_constant(state.balance.params, 0.5, 0.0)),
    )
    n = 2000
    obs = jax.random.normal(jax.random.PRNGKey(2), (n, OBS))
    beta = 11.0 + 3.0 * math.tanh(0.5)
    a, info = SMALL.act(state, obs, jax.random.PRNGKey(3), hp, deterministic=True)
    np.testing.assert_allclose(a, np.tile([math.tanh(2.0), -math.tanh(2.0)], (n, 1)), rtol=1e-6)
    assert info["beta"].shape == (n,)
    np.testing.assert_allclose(info["beta"], beta, rtol=1e-6)
    np.testing.assert_allclose(SMALL.coefficient(state, obs, hp), beta, rtol=1e-6)
    a, info = SMALL.act(state, obs, jax.random.PRNGKey(3), hp, deterministic=False)
    a = np.asarray(a)
    np.testing.assert_allclose(info["beta"], beta, rtol=1e-6)  # deterministic in both modes
    assert a.min() == -1.0 and a.max() == 1.0  # std e = 2.7: samples clipped to [-1, 1]
    # P(a_0 clipped at 1) = P(N(tanh 2, e) > 1) = 0.495
    assert np.mean(a[:, 0] == 1.0) == pytest.approx(0.495, abs=0.04)


# ------------------------------------------------------------------ validation and presets
def test_validation_names_the_field():
    with pytest.raises(ConfigError, match="famo2o.weight_mode"):
        FamO2OConfig(weight_mode="mean")
    with pytest.raises(ConfigError, match="famo2o.reward_normalization"):
        FamO2OConfig(reward_normalization="max")
    with pytest.raises(ConfigError, match="famo2o.encoding_dim"):
        FamO2OConfig(encoding_dim=5)
    with pytest.raises(ConfigError, match="famo2o.hidden"):
        FamO2OConfig(hidden=())
    method = FamO2O()
    with pytest.raises(ConfigError, match="famo2o.beta_min: must be < beta_max"):
        method.default_hparams(beta_min=14.0, beta_max=8.0)
    with pytest.raises(ConfigError, match="famo2o.beta_min"):
        method.default_hparams(beta_min=5.0, beta_max=5.0)
    with pytest.raises(ConfigError, match="famo2o.beta_min"):
        method.default_hparams(beta_min=-1.0)
    with pytest.raises(ConfigError, match="famo2o.expectile"):
        method.default_hparams(expectile=1.5)
    with pytest.raises(ConfigError, match="famo2o.balance_temperature_lr"):
        method.default_hparams(balance_temperature_lr=0.0)
    with pytest.raises(ConfigError, match="famo2o.init_balance_temperature"):
        method.default_hparams(init_balance_temperature=-1.0)
    with pytest.raises(ConfigError, match="famo2o.balance_target_entropy"):
        method.default_hparams(balance_target_entropy=float("nan"))
    with pytest.raises(ConfigError, match="famo2o: unknown"):
        method.default_hparams(inverse_temperature=3.0)
    # a batch of hparams: every element is checked
    good = method.default_hparams()
    grid = stack_trees([good, good.replace(beta_max=f32(7.0))])
    with pytest.raises(ConfigError, match="beta_max=7"):
        method.validate(grid)
    method.validate(stack_trees([good, good.replace(beta_min=f32(1.0))]))


def test_registry_defaults_and_presets():
    assert get_method("famo2o") is FamO2O
    method = FamO2O()
    assert method.config.weight_mode == "per_sample"
    assert method.reward_normalization == "minus_one"
    hp = method.default_hparams()
    expected = {
        "expectile": 0.9,
        "beta_min": 8.0,
        "beta_max": 14.0,
        "balance_lr": 3e-4,
        "balance_temperature_lr": 3e-4,
        "init_balance_temperature": 1.0,
        "balance_target_entropy": -0.5,
        "discount": 0.99,
        "tau": 0.005,
    }
    for name, value in expected.items():
        assert float(getattr(hp, name)) == pytest.approx(value), name
    assert hp.beta_min.dtype == jnp.float32
    cfg, hp = famo2o_preset("antmaze", hidden=(8,))
    assert cfg.reward_normalization == "minus_one" and cfg.hidden == (8,)
    got = (float(hp.beta_min), float(hp.beta_max), float(hp.expectile))
    assert got == pytest.approx((8.0, 14.0, 0.9))
    cfg, hp = famo2o_preset("locomotion", weight_mode="official_broadcast")
    assert cfg.reward_normalization == "trajectory_range"
    assert cfg.weight_mode == "official_broadcast"
    assert float(hp.beta_min) == 1.0 and float(hp.beta_max) == 5.0
    assert float(hp.expectile) == pytest.approx(0.7)
    assert set(FAMO2O_PRESETS) == {"antmaze", "locomotion"}
    with pytest.raises(ConfigError, match="famo2o.domain"):
        famo2o_preset("kitchen")


# ------------------------------------------------------------------ through the Trainer
ENV = make_env("point", episode_length=10)


def point_dataset(n: int = 64) -> Transitions:
    """Random-action transitions on `point`, stepped with the real dynamics."""
    k_s, k_a = jax.random.split(jax.random.PRNGKey(11))
    states = jax.vmap(ENV.reset)(jax.random.split(k_s, n))
    action = jax.random.uniform(k_a, (n, ACT), minval=-1.0, maxval=1.0)
    _, res = jax.vmap(ENV.step)(states, action)
    return Transitions(states.obs, action, res.reward, res.next_obs, res.terminated, res.truncated)


RUN = RunConfig(
    offline_steps=30,
    online_steps=20,
    offline_eval_every=30,
    online_eval_every=10,
    batch_size=16,
    eval_episodes=2,
    protocol="direct",
    progress=False,
)


def test_trainer_runs_both_phases():
    method = FamO2O(FamO2OConfig(hidden=(8, 8)))
    trainer = Trainer(method, ENV, RUN)
    data = point_dataset()
    # two runs in one program: the official range and the locomotion project choice
    hps = stack_trees(
        [method.default_hparams(), method.default_hparams(beta_min=1.0, beta_max=5.0)]
    )
    keys = jnp.stack([jax.random.PRNGKey(0)] * 2)
    rhp = broadcast_tree(run_hparams(RUN, reward_shift=-1.0), 2)
    fn = jax.jit(jax.vmap(trainer.train, in_axes=(0, 0, 0, None)))
    state, out = fn(keys, hps, rhp, data)
    assert isinstance(state, FamO2OState)
    for phase in ("offline", "online"):
        for name, value in out[phase].items():
            assert np.all(np.isfinite(np.asarray(value))), (phase, name)
    off, on = out["offline"], out["online"]
    for name in ("actor_loss", "balance_loss", "temperature_loss", "critic_loss", "value_loss"):
        assert name in off and name in on
    # the coefficients the universal model saw: uniform offline, balance draws online; in range
    lo, hi = np.array([[8.0], [1.0]]), np.array([[14.0], [5.0]])
    for m in (off, on):
        assert np.all((m["beta_mean"] >= lo) & (m["beta_mean"] <= hi))
    # acting online reports the deterministic beta, in range
    beta = np.asarray(on["act/beta"])
    assert beta.shape == (2, RUN.online_steps // RUN.online_eval_every)
    assert np.all((beta >= lo) & (beta <= hi))
    # every network and the temperature trained: one Adam count per update in both phases
    n_updates = RUN.offline_steps + RUN.online_steps
    for net in (state.universal, state.balance, state.log_temperature, state.critic, state.value):
        assert np.all(np.asarray(net.opt_state[0].count) == n_updates)
    # the state's deterministic coefficient agrees with the last act info's range
    obs = data.obs[:5]
    coef = jax.vmap(method.coefficient, in_axes=(0, None, 0))(state, obs, hps)
    assert np.all((np.asarray(coef) >= lo) & (np.asarray(coef) <= hi))


def test_official_broadcast_mode_compiles_and_runs_both_phases():
    """The released code's weight form, in a short jitted offline-then-online sequence (the
    Trainer run above uses the default per-sample form)."""
    method = FamO2O(FamO2OConfig(hidden=(8, 8), weight_mode="official_broadcast"))
    hp = method.default_hparams()
    data = point_dataset(32)

    def run(key):
        k_init, k_off, k_on, k_act = jax.random.split(key, 4)
        state = method.init(k_init, OBS, ACT, hp)

        def step(online):
            return lambda s, k: method.update(s, data, k, hp, online=online)

        state, m_off = jax.lax.scan(step(False), state, jax.random.split(k_off, 5))
        state = method.to_online(state, k_on, hp)
        state, m_on = jax.lax.scan(step(True), state, jax.random.split(k_on, 5))
        _, info = method.act(state, data.obs, k_act, hp, deterministic=False)
        return m_off, m_on, info

    m_off, m_on, info = jax.jit(run)(jax.random.PRNGKey(0))
    for m in (m_off, m_on):
        for name, value in m.items():
            assert np.all(np.isfinite(np.asarray(value))), name
        assert np.all((m["beta_mean"] >= 8.0) & (m["beta_mean"] <= 14.0))
    beta = np.asarray(info["beta"])
    assert beta.shape == (32,) and np.all((beta >= 8.0) & (beta <= 14.0))


# ------------------------------------------------------------------ the balance loss by hand
def test_balance_loss_value_by_hand():
    """L_b = mean(alpha_b log pi_b(u|s) - min_j Qbar_j(s, a~)) recomputed in numpy from the
    sampler's noise and the hand-made networks: pi_b = tanh(N(0, e^-6)) (log pi_b ~ +4.1, so the
    entropy term is as large as the Q term and its sign decides the value), beta on [8, 14],
    pi_u's mean (tanh(sin(beta / 21.544)), 0) with std e^-5, Qbar = relu(a_0 + 0.5), alpha_b 0.5."""
    alpha, log_std_b = 0.5, -6.0
    hp = SMALL.default_hparams(init_balance_temperature=alpha, beta_min=8.0, beta_max=14.0)
    state = hand_state(SMALL, hp)
    state = state._replace(
        balance=state.balance._replace(
            params=balance_constant(state.balance.params, 0.0, log_std_b)
        )
    )
    obs, key = make_batch(6).obs, jax.random.PRNGKey(9)
    _, m, log_prob, _ = SMALL.balance_step(state, obs, key, hp)

    k_u, k_a = jax.random.split(key)
    x = math.exp(log_std_b) * np.asarray(jax.random.normal(k_u, (6, 1)), np.float64)[:, 0]
    logp_b = np.array([normal_logp(v, 0.0, log_std_b) for v in x]) - np.log1p(-(np.tanh(x) ** 2))
    beta = 8.0 + (np.tanh(x) + 1.0) / 2.0 * 6.0
    eps = np.asarray(jax.random.normal(k_a, (6, ACT)), np.float64)
    a0 = np.tanh(np.sin(beta / 10000.0 ** (2.0 / 6.0))) + math.exp(-5.0) * eps[:, 0]
    q = np.maximum(a0 + 0.5, 0.0)
    np.testing.assert_allclose(log_prob, logp_b, rtol=1e-5)
    assert float(m["balance_q"]) == pytest.approx(np.mean(q), rel=1e-5)
    assert float(m["balance_entropy"]) == pytest.approx(-np.mean(logp_b), rel=1e-5)
    assert float(m["balance_loss"]) == pytest.approx(np.mean(alpha * logp_b - q), rel=1e-5)
    # the entropy term moves the value by more than the tolerance by far
    assert abs(np.mean(alpha * logp_b)) > 1.0


def test_balance_log_std_is_clipped_to_the_official_range():
    """The balance model's log-std is clipped to [-10, 2] (official `policy.py`), the universal
    model's to [-5, 2]."""
    state = SMALL.init(jax.random.PRNGKey(0), OBS, ACT, SMALL.default_hparams())
    obs = make_batch(3).obs
    for raw, clipped in ((-12.0, -10.0), (-9.5, -9.5), (1.5, 1.5), (5.0, 2.0)):
        _, log_std = SMALL.balance(balance_constant(state.balance.params, 0.0, raw), obs)
        np.testing.assert_allclose(log_std, clipped)
        universal = {**state.universal.params, "log_std": jnp.full((ACT,), raw)}
        _, log_std_u = SMALL.universal(universal, obs, jnp.full((3,), 11.0))
        np.testing.assert_allclose(log_std_u, min(max(raw, -5.0), 2.0))
