"""Cal-QL and CQL (`jaxo2o.methods.calql`): every loss term against the hand-computed values of
the spec (`/work/shared/spec/calql_rlpd_wsrl.md` §1.7, computed with numpy), and the update
against an independent plain-jax reference over a few steps."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from reference_nets import (
    adam_init,
    adam_step,
    assert_first_moments_close,
    assert_trees_close,
    critics,
    polyak,
    samples,
    squashed_sample,
    trunk,
)

from jaxo2o.core.distributions import tanh_gaussian_log_prob_raw
from jaxo2o.core.returns import ReturnTransitions
from jaxo2o.methods import get_method
from jaxo2o.methods.calql import (
    CQL,
    CalQL,
    CalQLConfig,
    CQLConfig,
    cql_gap,
    cql_penalty,
    log_alpha_loss,
    max_backup_target,
)
from jaxo2o.presets import official

E = math.e


# ---------------------------------------------------------------- T2: the CQL term
def _t2(calibrate: bool, importance_sampling: bool = True) -> jax.Array:
    return cql_gap(
        q_data=jnp.array([[1.0]]),
        q_rand=jnp.array([[[0.5, -0.2]]]),
        q_cur=jnp.array([[[0.3, 2.0]]]),
        logp_cur=jnp.array([[-0.5, -1.0]]),
        q_next=jnp.array([[[-1.0, 0.0]]]),
        logp_next=jnp.array([[-0.2, -0.7]]),
        bound=jnp.array([0.8]) if calibrate else None,
        temperature=jnp.float32(1.0),
        act_size=1,
        importance_sampling=importance_sampling,
    )


def test_cql_gap_calibrated_matches_the_hand_value():
    # cat = [1.193147, 0.493147, 1.0, 1.5, 1.3, 3.0]: logsumexp 3.580451, minus Q(s, a) = 1
    np.testing.assert_allclose(_t2(True), [2.580451], rtol=1e-6)


def test_cql_gap_uncalibrated_is_cqls():
    # no lift: Q_next - logp = [-0.8, 0.7], Q_cur - logp = [0.8, 3.0]
    np.testing.assert_allclose(_t2(False), [2.391452], rtol=1e-6)


def test_cql_gap_without_importance_sampling_includes_the_data_action():
    cat = np.array([0.5, -0.2, 1.0, 0.8, 0.8, 0.8, 2.0])  # [Q_rand, Q(s,a), lifted Q_nxt, Q_cur]
    want = np.log(np.sum(np.exp(cat))) - 1.0
    np.testing.assert_allclose(_t2(True, importance_sampling=False), [want], rtol=1e-6)


def test_cql_gap_temperature_scales_the_logsumexp():
    cat = np.array([1.193147, 0.493147, 1.0, 1.5, 1.3, 3.0])
    t = 2.0
    want = t * np.log(np.sum(np.exp(cat / t))) - 1.0
    got = cql_gap(
        jnp.array([[1.0]]),
        jnp.array([[[0.5, -0.2]]]),
        jnp.array([[[0.3, 2.0]]]),
        jnp.array([[-0.5, -1.0]]),
        jnp.array([[[-1.0, 0.0]]]),
        jnp.array([[-0.2, -0.7]]),
        jnp.array([0.8]),
        jnp.float32(t),
        1,
    )
    np.testing.assert_allclose(got, [want], rtol=1e-5)


def test_cql_penalty_fixed_weight_and_lagrange():
    gap = jnp.array([2.580451])
    fixed, zero = cql_penalty(gap, 5.0, False, jnp.float32(E), 0.8)
    np.testing.assert_allclose(fixed, [12.902253], rtol=1e-6)
    assert float(zero) == 0.0
    lagr, _ = cql_penalty(gap, 5.0, True, jnp.float32(E), 0.8)
    np.testing.assert_allclose(lagr, [24.198832], rtol=1e-6)


def test_lagrange_multiplier_loss_and_its_gradient():
    gap = jnp.array([1.3, 0.5])
    loss = lambda log_ap: cql_penalty(gap, 5.0, True, jnp.exp(log_ap), 0.8)[1]
    value, grad = jax.value_and_grad(loss)(jnp.float32(1.0))
    np.testing.assert_allclose(value, -1.359141, rtol=1e-6)
    np.testing.assert_allclose(grad, -1.359141, rtol=1e-6)


# ---------------------------------------------------------------- T3: target and temperature
NEXT_Q = jnp.array([[[1.0, 3.0, 2.0]], [[2.0, 1.0, 4.0]]])  # (critics, B, N)


def test_max_backup_takes_the_min_over_critics_then_the_max_over_actions():
    y = max_backup_target(NEXT_Q, jnp.array([-5.0]), jnp.array([1.0]), 0.99)
    np.testing.assert_allclose(y, [-3.02], rtol=1e-6)
    y_done = max_backup_target(NEXT_Q, jnp.array([-5.0]), jnp.array([0.0]), 0.99)
    np.testing.assert_allclose(y_done, [-5.0], rtol=1e-6)


def test_max_backup_with_entropy_subtracts_the_argmax_actions_log_prob():
    logp = jnp.array([[-1.0, -2.0, -3.0]])  # argmax of min [1, 1, 2] is the third action
    y = max_backup_target(NEXT_Q, jnp.array([-5.0]), jnp.array([1.0]), 0.99, logp, 0.5)
    np.testing.assert_allclose(y, [-1.535], rtol=1e-6)


def test_temperature_loss_multiplies_log_alpha():
    grad = jax.grad(log_alpha_loss)(jnp.float32(0.0), jnp.array([-2.0, -4.0]), -2.0)
    np.testing.assert_allclose(grad, 5.0, rtol=1e-6)
    tx = optax.adam(1e-4)
    upd, _ = tx.update(grad, tx.init(jnp.float32(0.0)))
    np.testing.assert_allclose(upd, -1e-4, rtol=1e-3)


# ---------------------------------------------------------------- the policy
def test_policy_log_std_is_an_affine_map_of_the_raw_head_then_clipped():
    method = CalQL(CalQLConfig(hidden=(4,), actor_hidden=(4,)))
    params = method.init(jax.random.PRNGKey(0), 3, 2, method.default_hparams()).actor.params
    params = jax.tree.map(jnp.zeros_like, params)
    obs = jnp.ones((1, 3))
    with_k = lambda k, c, raw: {
        **params,
        "log_std_multiplier": jnp.float32(k),
        "log_std_offset": jnp.float32(c),
        "Dense_0": {"kernel": params["Dense_0"]["kernel"], "bias": jnp.array([0.0, 0, raw, raw])},
    }
    _, log_std = method.policy(with_k(1.0, -1.0, 0.0), obs, 2)  # the initial k, c, raw 0
    np.testing.assert_allclose(log_std, [[-1.0, -1.0]])
    _, log_std = method.policy(with_k(2.0, -1.0, 0.5), obs, 2)
    np.testing.assert_allclose(log_std, [[0.0, 0.0]])
    _, log_std = method.policy(with_k(1.0, -1.0, 20.0), obs, 2)  # clipped after the map
    np.testing.assert_allclose(log_std, [[2.0, 2.0]])
    _, log_std = method.policy(with_k(1.0, -1.0, -30.0), obs, 2)
    np.testing.assert_allclose(log_std, [[-20.0, -20.0]])
    # tanh-Gaussian log-prob at init, per dimension (spec: 0.081061)
    lp = tanh_gaussian_log_prob_raw(jnp.zeros((1, 1)), jnp.full((1, 1), -1.0), jnp.zeros((1, 1)))
    np.testing.assert_allclose(lp, [0.081061], atol=1e-6)
    lp = tanh_gaussian_log_prob_raw(
        jnp.full((1, 1), 0.5), jnp.full((1, 1), -1.0), jnp.full((1, 1), 0.2)
    )
    np.testing.assert_allclose(lp, [-0.211710], atol=1e-6)


def test_registry_and_returns_spec():
    assert get_method("calql") is CalQL and get_method("cql") is CQL
    assert CalQL(CalQLConfig(failure_reward=0.0)).mc_returns.failure_reward == 0.0
    assert CQL().mc_returns is None and not CQLConfig().calibrate
    for domain in ("maze", "locomotion"):
        assert official("calql", domain).protocol == "direct"


# ---------------------------------------------------------------- update parity
HIDDEN, ACTOR_HIDDEN, N = (8, 8), (8,), 3


def _batch(key, b=5, obs=3, act=2):
    ks = jax.random.split(key, 6)
    return ReturnTransitions(
        obs=jax.random.normal(ks[0], (b, obs)),
        action=jax.random.uniform(ks[1], (b, act), minval=-1, maxval=1),
        reward=jax.random.normal(ks[2], (b,)),
        next_obs=jax.random.normal(ks[3], (b, obs)),
        terminated=jnp.array([False, True, False, False, False]),
        truncated=jnp.zeros(b, bool),
        mc_return=jax.random.normal(ks[4], (b,)) * 3.0,
        mc_horizon=jnp.ones(b),
    )


def _reference_step(ref, batch, key, hp, calibrate: bool, lagrange: bool, max_backup: bool):
    """One Cal-QL update written from the spec (§1.2) with hand-written networks."""
    a_size, n_h = batch.action.shape[-1], len(HIDDEN)
    k_pi, k_next, k_rand, k_cur, k_nxt = jax.random.split(key, 5)
    alpha = jnp.exp(ref["log_alpha"])

    def dist(actor, obs):
        out = trunk(actor, obs, len(ACTOR_HIDDEN)) @ actor["Dense_0"]["kernel"]
        out = out + actor["Dense_0"]["bias"]
        mean, raw = out[:, :a_size], out[:, a_size:]
        k, c = actor["log_std_multiplier"], actor["log_std_offset"]
        return mean, jnp.clip(k * raw + c, -20.0, 2.0)

    def q_at(params, obs, actions):  # actions (B, N, A) -> (2, B, N)
        rep = jnp.broadcast_to(obs[:, None], (*actions.shape[:2], obs.shape[-1]))
        return critics(params, rep, actions, n_h)

    def actor_loss(actor):
        a, logp = squashed_sample(k_pi, *dist(actor, batch.obs))
        q = jnp.min(critics(ref["critic"], batch.obs, a, n_h), axis=0)
        return jnp.mean(alpha * logp - q), logp

    a_grad, logp = jax.grad(actor_loss, has_aux=True)(ref["actor"])
    t_grad = -jnp.mean(logp - a_size)  # d/dlog alpha of -log alpha mean(log pi - |A|)

    next_a, _ = samples(k_next, *dist(ref["actor"], batch.next_obs), N if max_backup else 1)
    best = jnp.max(jnp.min(q_at(ref["target"], batch.next_obs, next_a), axis=0), axis=-1)
    y = batch.reward + 0.99 * (1.0 - batch.terminated) * best
    rand_a = jax.random.uniform(k_rand, (5, N, a_size), minval=-1.0, maxval=1.0)
    cur_a, cur_lp = samples(k_cur, *dist(ref["actor"], batch.obs), N)
    nxt_a, nxt_lp = samples(k_nxt, *dist(ref["actor"], batch.next_obs), N)
    alpha_p = jnp.exp(ref["log_alpha_prime"])

    def gaps(critic):
        q = critics(critic, batch.obs, batch.action, n_h)
        q_cur, q_nxt = q_at(critic, batch.obs, cur_a), q_at(critic, batch.obs, nxt_a)
        if calibrate:
            q_cur = jnp.maximum(q_cur, batch.mc_return[:, None])
            q_nxt = jnp.maximum(q_nxt, batch.mc_return[:, None])
        cat = jnp.concatenate(
            [
                q_at(critic, batch.obs, rand_a) + a_size * math.log(2.0),
                q_nxt - nxt_lp,
                q_cur - cur_lp,
            ],
            axis=-1,
        )
        lse = jnp.log(jnp.sum(jnp.exp(cat), axis=-1))
        return jnp.mean(lse - q, axis=-1), q

    def critic_loss(critic):
        gap, q = gaps(critic)
        bellman = jnp.sum(jnp.mean((q - y) ** 2, axis=-1))
        w = hp.cql_weight
        penalty = alpha_p * w * (gap - hp.target_action_gap) if lagrange else w * gap
        return bellman + jnp.sum(penalty), gap

    c_grad, gap = jax.grad(critic_loss, has_aux=True)(ref["critic"])
    ap_grad = -0.5 * jnp.sum(alpha_p * hp.cql_weight * (gap - hp.target_action_gap))

    out = dict(ref)
    out["actor"], out["actor_opt"] = adam_step(ref["actor"], a_grad, ref["actor_opt"], 1e-4)
    out["critic"], out["critic_opt"] = adam_step(ref["critic"], c_grad, ref["critic_opt"], 3e-4)
    out["target"] = polyak(ref["target"], out["critic"], 0.005)
    out["entropy"] = -jnp.mean(logp)
    out["log_alpha"], out["alpha_opt"] = adam_step(ref["log_alpha"], t_grad, ref["alpha_opt"], 1e-4)
    if lagrange:
        out["log_alpha_prime"], out["ap_opt"] = adam_step(
            ref["log_alpha_prime"], ap_grad, ref["ap_opt"], 3e-4
        )
    return out


@pytest.mark.parametrize(
    "calibrate,lagrange,max_backup",
    [(True, True, True), (False, False, True), (True, False, False)],
)
def test_update_matches_an_independent_reference(calibrate, lagrange, max_backup):
    cls, cfg = (CalQL, CalQLConfig) if calibrate else (CQL, CQLConfig)
    config = cfg(hidden=HIDDEN, actor_hidden=ACTOR_HIDDEN, n_actions=N, lagrange=lagrange)
    method = cls(dataclasses.replace(config, max_target_backup=max_backup))
    hp = method.default_hparams()
    state = method.init(jax.random.PRNGKey(3), 3, 2, hp)
    ref = {
        "actor": state.actor.params,
        "critic": state.critic.params,
        "target": state.target_critic,
        "log_alpha": state.log_alpha.params,
        "log_alpha_prime": state.log_alpha_prime.params,
        "entropy": jnp.float32(0.0),
    }
    for name, opt in (("actor", "actor_opt"), ("critic", "critic_opt")):
        ref[opt] = adam_init(ref[name])
    ref["alpha_opt"], ref["ap_opt"] = adam_init(ref["log_alpha"]), adam_init(ref["log_alpha_prime"])
    update = jax.jit(lambda s, b, k: method.update(s, b, k, hp, online=False))
    reference = jax.jit(_reference_step, static_argnums=(4, 5, 6))
    for step in range(3):
        batch = _batch(jax.random.PRNGKey(100 + step))
        key = jax.random.PRNGKey(200 + step)
        state, metrics = update(state, batch, key)
        ref = reference(ref, batch, key, hp, calibrate, lagrange, max_backup)
        np.testing.assert_allclose(metrics["entropy"], ref["entropy"], rtol=1e-5)
    assert_trees_close(state.actor.params, ref["actor"])
    assert_trees_close(state.critic.params, ref["critic"])
    assert_trees_close(state.target_critic, ref["target"])
    assert_trees_close(state.log_alpha.params, ref["log_alpha"])
    assert_trees_close(state.log_alpha_prime.params, ref["log_alpha_prime"])
    nets = {"actor_opt": state.actor, "critic_opt": state.critic, "alpha_opt": state.log_alpha}
    assert_first_moments_close(nets | ({"ap_opt": state.log_alpha_prime} if lagrange else {}), ref)
    if lagrange:  # the multiplier moved (a missing alpha' step would leave it at 1)
        assert float(state.log_alpha_prime.params) != 1.0
    else:
        assert float(state.log_alpha_prime.params) == 1.0
    assert np.isfinite(float(metrics["critic_loss"]))


def test_policy_starts_at_k_1_c_minus_1_with_a_small_head_and_takes_one_observation():
    """The official init: log-std multiplier 1, offset -1, the output layer orthogonal at scale
    1e-2; one observation (no batch axis) gives the batch's row."""
    method = CalQL(CalQLConfig(hidden=HIDDEN, actor_hidden=ACTOR_HIDDEN))
    params = method.init(jax.random.PRNGKey(0), 3, 2, method.default_hparams()).actor.params
    assert float(params["log_std_multiplier"]) == 1.0
    assert float(params["log_std_offset"]) == -1.0
    singular = np.linalg.svd(np.asarray(params["Dense_0"]["kernel"]), compute_uv=False)
    np.testing.assert_allclose(singular, 1e-2, rtol=1e-4)
    obs = jax.random.normal(jax.random.PRNGKey(1), (4, 3))
    mean, log_std = method.policy(params, obs, 2)
    mean_1, log_std_1 = method.policy(params, obs[0], 2)
    np.testing.assert_allclose(mean_1, mean[0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(log_std_1, log_std[0], rtol=1e-5, atol=1e-7)


def test_lagrange_multiplier_is_capped_at_a_million():
    """alpha' = clip(exp(log alpha'), 0, 1e6) (the official clamp), in the penalty and in the
    multiplier's own loss."""
    method = CQL(CQLConfig(hidden=HIDDEN, actor_hidden=ACTOR_HIDDEN, n_actions=N, lagrange=True))
    hp = method.default_hparams()
    state = method.init(jax.random.PRNGKey(3), 3, 2, hp)
    for log_ap, expected in ((20.0, 1e6), (2.0, math.exp(2.0)), (-2.0, math.exp(-2.0))):
        ap = state.log_alpha_prime._replace(params=jnp.float32(log_ap))
        start = state._replace(log_alpha_prime=ap)
        batch, key = _batch(jax.random.PRNGKey(4)), jax.random.PRNGKey(5)
        new, metrics = method.update(start, batch, key, hp, online=False)
        if log_ap > 10:  # exactly the cap (1e6 is a float32), not a neighbour of it
            assert float(metrics["alpha_prime"]) == expected
        np.testing.assert_allclose(float(metrics["alpha_prime"]), expected, rtol=1e-6)
        if log_ap < 10:  # unclipped, the loss is alpha' K, so its log-gradient is the loss itself:
            loss = float(metrics["alpha_prime_loss"])  # Adam's first moment is 0.1 of it
            assert abs(loss) > 1e-3
            mu = float(new.log_alpha_prime.opt_state[0].mu)
            np.testing.assert_allclose(mu, 0.1 * loss, rtol=1e-4)
