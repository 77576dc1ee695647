"""ACA's losses and targets by hand: one offline (SAC+ML) update and one online (aligned SAC)
update on a tiny batch, every reported loss recomputed in numpy (float64) from the networks'
outputs and the sampler's noise, for both policy families.

The networks' forward passes (`ACA.policy`, `ACA.q`, `ACA.z`) are the only parts of the method
used here; every loss, target, clip, temperature step and Polyak average is recomputed. The
official default constants (discount 0.99, tau 0.005, ml_alpha 30, target entropy -1 per action
dimension) are written as literals, so a wrong default fails too. Every term moves the value: the
temperature starts at alpha = 0.5 (not 1, where alpha log pi - log pi cancels), w = 0.7 (not 1),
the online actor differs from pi0 and the target critics from the critics.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxo2o.core.optim import clip_grad_norm, net_init
from jaxo2o.core.transitions import Transitions
from jaxo2o.methods.aca import ACA
from jaxo2o.methods.aca_policies import policy_sample
from jaxo2o.methods.aca_settings import ACAConfig

OBS, ACT, N = 3, 2, 8
HIDDEN = (8,)
POLICIES = ("squashed", "maze")
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
# the official settings the hand computations spell out (spec part B.4)
DISCOUNT, TAU, ML_ALPHA, TARGET_ENTROPY = 0.99, 0.005, 30.0, -1.0 * ACT
LR = 3e-4  # every Adam learning rate
ALPHA0, W, CLIP_BETA = 0.5, 0.7, 2.0
ACTION_EDGE = np.float64(np.float32(1.0 - 1e-6))  # d3rlpy's clamp before atanh, in float32


def f64(x) -> np.ndarray:
    return np.asarray(x, np.float64)


# ------------------------------------------------------------------ numpy reference pieces
def normal_logp(x, mean, log_std) -> np.ndarray:
    """Sum over the last axis of log N(x; mean, exp(log_std)^2)."""
    z = (f64(x) - mean) / np.exp(log_std)
    return np.sum(-0.5 * z * z - log_std - HALF_LOG_2PI, axis=-1)


def squashed_logp_raw(u, mean, log_std) -> np.ndarray:
    """log-density of tanh(u) under tanh(N(mean, std)), from the pre-tanh u."""
    return normal_logp(u, mean, log_std) - np.sum(np.log1p(-(np.tanh(u) ** 2)), axis=-1)


def logp_of_action(kind: str, action, loc, log_std) -> np.ndarray:
    """log pi(a|s) of a given action: atanh of the clamped action (squashed) or the Gaussian."""
    if kind == "squashed":
        u = np.arctanh(np.clip(f64(action), -ACTION_EDGE, ACTION_EDGE))
        return squashed_logp_raw(u, loc, log_std)
    return normal_logp(action, loc, log_std)


def sample(kind: str, key, loc, log_std) -> tuple[np.ndarray, np.ndarray]:
    """(a, log pi(a|s)) of a draw with the sampler's standard normal noise for `key`."""
    eps = f64(jax.random.normal(key, loc.shape, jnp.float32))
    u = loc + np.exp(log_std) * eps
    if kind == "squashed":
        return np.tanh(u), squashed_logp_raw(u, loc, log_std)
    a = np.clip(u, -1.0, 1.0)
    return a, normal_logp(a, loc, log_std)


def clip_floor(kind: str, loc, log_std) -> np.ndarray:
    """m(s): the smaller log-density of pi0 at mu +- beta sigma (pre-tanh for the squashed)."""
    shift = CLIP_BETA * np.exp(log_std)
    if kind == "squashed":
        lo = squashed_logp_raw(loc - shift, loc, log_std)
        hi = squashed_logp_raw(loc + shift, loc, log_std)
        return np.minimum(lo, hi)
    return np.sum(-0.5 * CLIP_BETA**2 - log_std - HALF_LOG_2PI, axis=-1)


def c_term(kind: str, action, ref_loc, ref_log_std) -> np.ndarray:
    """c(log pi0(a|s)) = softplus(log pi0 - m(s)) + m(s)."""
    m = clip_floor(kind, ref_loc, ref_log_std)
    return np.logaddexp(0.0, logp_of_action(kind, action, ref_loc, ref_log_std) - m) + m


def adam_first_step(param: float, grad: float) -> float:
    """A fresh Adam's first step: bias-corrected moments give lr * g / (|g| + 1e-8)."""
    return param - LR * grad / (abs(grad) + 1e-8)


def polyak(target, online):
    return jax.tree.map(lambda t, o: (1.0 - TAU) * f64(t) + TAU * f64(o), target, online)


# ------------------------------------------------------------------ the fixture
def tiny_batch() -> Transitions:
    ks = jax.random.split(jax.random.PRNGKey(11), 4)
    return Transitions(
        obs=jax.random.normal(ks[0], (N, OBS)),
        action=jax.random.uniform(ks[1], (N, ACT), minval=-0.9, maxval=0.9),
        reward=jax.random.normal(ks[2], (N,)),
        next_obs=jax.random.normal(ks[3], (N, OBS)),
        terminated=jnp.array([0, 1, 0, 0, 0, 1, 0, 0], bool),
        truncated=jnp.zeros((N,), bool),
    )


def tame(method: ACA, actor, key):
    """Actor parameters whose samples stay well inside (-1, 1) before the squash (so float32 and
    float64 agree on atanh), moved by `key` so that two actors differ."""
    scaled = jax.tree.map(lambda p: 0.5 * p, actor)
    noise = jax.random.split(key, len(jax.tree.leaves(scaled)))
    leaves = [
        p + 0.2 * jax.random.normal(k, p.shape)
        for p, k in zip(jax.tree.leaves(scaled), noise, strict=True)
    ]
    actor = jax.tree.unflatten(jax.tree.structure(scaled), leaves)
    if method.config.policy == "squashed":
        bias = actor["Dense_0"]["bias"]
        actor["Dense_0"]["bias"] = bias.at[ACT:].set(bias[ACT:] - 1.0)  # std near exp(-1)
    return actor


def offline_state(method: ACA, hp):
    """Actor, critics, targets and Z from different keys; log alpha = log 0.5 on a fresh Adam."""
    parts = [method.init(jax.random.PRNGKey(i), OBS, ACT, hp) for i in range(3)]
    return parts[0]._replace(
        actor=net_init(tame(method, parts[0].actor.params, jax.random.PRNGKey(5)), optax.adam(LR)),
        target_critic=parts[1].critic.params,
        baseline=parts[2].baseline,
        log_alpha=net_init(jnp.asarray(math.log(ALPHA0), jnp.float32), optax.adam(LR)),
    )


def online_state(method: ACA, hp):
    """The switch's state, then: an actor that differs from pi0, R and Rbar from fresh critics
    (non-zero action columns, different from each other), w = 0.7 (sac-direct: its 0),
    log alpha = log 0.5."""
    off = offline_state(method, hp)
    on = method.to_online(off, None, hp)
    other = method.init(jax.random.PRNGKey(7), OBS, ACT, hp)
    return on._replace(
        actor=net_init(tame(method, on.reference_actor, jax.random.PRNGKey(6)), optax.adam(LR)),
        critic=net_init(other.critic.params, optax.adam(LR)),
        target_critic=other.target_critic,
        log_alpha=net_init(jnp.asarray(math.log(ALPHA0), jnp.float32), optax.adam(LR)),
        w=jnp.asarray(W if method.config.alignment else 0.0, jnp.float32),
    )


def forward(method: ACA):
    """The networks as float64 numpy functions."""
    policy = lambda p, s: tuple(f64(x) for x in method.policy(p, s))
    q = lambda p, s, a: f64(method.q(p, s, jnp.asarray(a, jnp.float32)))
    z = lambda p, s: f64(method.z(p, s))
    return policy, q, z


def assert_tree_close(a, b, rtol=1e-5, atol=1e-7):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(f64(x), f64(y), rtol=rtol, atol=atol)


def first_adam_step_size(before, after) -> float:
    """The largest parameter change: a fresh Adam's first step moves every parameter with a
    non-negligible gradient by lr, so a network that took its step moved by lr exactly."""
    return max(
        float(np.max(np.abs(f64(a) - f64(b))))
        for a, b in zip(jax.tree.leaves(after), jax.tree.leaves(before), strict=True)
    )


def temperature_by_hand(logp_temp) -> tuple[float, float]:
    """(loss, alpha after the step): loss = log alpha (H - H_target), H = -mean log pi."""
    h = -float(np.mean(logp_temp))
    loss = math.log(ALPHA0) * (h - TARGET_ENTROPY)
    # dL/dlog alpha = H - H_target: the first Adam step moves log alpha against its sign
    return loss, math.exp(adam_first_step(math.log(ALPHA0), h - TARGET_ENTROPY))


# ------------------------------------------------------------------ offline: SAC+ML and Z
@pytest.mark.parametrize("kind", POLICIES)
def test_offline_update_losses_by_hand(kind):
    method = ACA(ACAConfig(hidden=HIDDEN, policy=kind))
    hp = method.default_hparams(clip_beta=CLIP_BETA)
    state, batch, key = offline_state(method, hp), tiny_batch(), jax.random.PRNGKey(3)
    new, m = method.update(state, batch, key, hp, online=False)
    policy, q, z = forward(method)
    k_temp, k_next, k_z, k_pi = jax.random.split(key, 4)
    s, s2, a_d = batch.obs, batch.next_obs, f64(batch.action)
    r, mask = f64(batch.reward), 1.0 - f64(batch.terminated)
    loc, ls = policy(state.actor.params, s)
    loc_n, ls_n = policy(state.actor.params, s2)

    # 1. temperature: log alpha (H - H_target); the new alpha serves every later step
    t_loss, alpha = temperature_by_hand(sample(kind, k_temp, loc, ls)[1])
    assert float(m["temperature_loss"]) == pytest.approx(t_loss, rel=1e-5)
    assert float(m["alpha"]) == pytest.approx(alpha, rel=1e-6)

    # 2. critic: y = r + gamma mask [min_k Qbar_k(s', a') - alpha log pi(a'|s')]
    a_n, logp_n = sample(kind, k_next, loc_n, ls_n)
    y = r + DISCOUNT * mask * (np.min(q(state.target_critic, s2, a_n), axis=0) - alpha * logp_n)
    q_data = q(state.critic.params, s, a_d)
    assert float(m["critic_loss"]) == pytest.approx(np.sum(np.mean((q_data - y) ** 2, -1)), 1e-5)
    assert float(m["q_mean"]) == pytest.approx(np.mean(q_data), rel=1e-5, abs=1e-6)

    # 3. Z: y_Z = r + gamma mask [log pi(a''|s') + min_k Z_k(s') - alpha log pi(a''|s')],
    #    L_Z = sum_k mean((log pi(a_D|s) + Z_k(s) - y_Z)^2)
    _, logp_z = sample(kind, k_z, loc_n, ls_n)
    next_z = np.min(z(state.baseline.params, s2), axis=0)
    y_z = r + DISCOUNT * mask * (logp_z + next_z - alpha * logp_z)
    logp_d = logp_of_action(kind, a_d, loc, ls)
    z_loss = np.sum(np.mean((logp_d + z(state.baseline.params, s) - y_z) ** 2, axis=-1))
    assert float(m["baseline_loss"]) == pytest.approx(z_loss, rel=1e-5)

    # 4. actor: lambda mean(alpha log pi(a~|s) - min_k Q_k(s, a~)) - mean log pi(a_D|s), with
    #    the critics after their step and lambda = 30 / mean|q|
    a_pi, logp_pi = sample(kind, k_pi, loc, ls)
    q_pi = np.min(q(new.critic.params, s, a_pi), axis=0)
    lam = ML_ALPHA / np.mean(np.abs(q_pi))
    actor_loss = lam * np.mean(alpha * logp_pi - q_pi) - np.mean(logp_d)
    assert float(m["ml_lambda"]) == pytest.approx(lam, rel=1e-5)
    assert float(m["actor_loss"]) == pytest.approx(actor_loss, rel=1e-5)
    assert float(m["data_log_prob"]) == pytest.approx(np.mean(logp_d), rel=1e-5)
    assert float(m["entropy"]) == pytest.approx(-np.mean(logp_pi), rel=1e-5)

    # 5. target: Qbar <- (1 - tau) Qbar + tau Q; every network took one Adam step
    assert_tree_close(new.target_critic, polyak(state.target_critic, new.critic.params))
    for name in ("actor", "critic", "baseline"):
        step = first_adam_step_size(getattr(state, name).params, getattr(new, name).params)
        assert step == pytest.approx(LR, rel=2e-3), name


# ------------------------------------------------------------------ online: aligned SAC
@pytest.mark.parametrize("kind, align", [("squashed", True), ("maze", True), ("squashed", False)])
def test_online_update_losses_by_hand(kind, align):
    """ACA's online update; `align=False` is sac-direct: the same update without any c-term."""
    method = ACA(ACAConfig(hidden=HIDDEN, policy=kind, alignment=align))
    hp = method.default_hparams(clip_beta=CLIP_BETA, w0=0.8, w_k=2.0, w_min=0.1)
    state, batch, key = online_state(method, hp), tiny_batch(), jax.random.PRNGKey(4)
    new, m = method.update(state, batch, key, hp, online=True)
    policy, q, _ = forward(method)
    k_temp, k_next, k_pi = jax.random.split(key, 3)
    s, s2, a_d = batch.obs, batch.next_obs, f64(batch.action)
    r, mask = f64(batch.reward), 1.0 - f64(batch.terminated)
    loc, ls = policy(state.actor.params, s)
    loc_n, ls_n = policy(state.actor.params, s2)
    ref, ref_n = policy(state.reference_actor, s), policy(state.reference_actor, s2)
    assert not np.allclose(ref[0], loc, atol=1e-3), "pi and pi0 should differ in this test"
    w = W if align else 0.0  # sac-direct: no c-term anywhere

    # 1. temperature, as offline
    t_loss, alpha = temperature_by_hand(sample(kind, k_temp, loc, ls)[1])
    assert float(m["temperature_loss"]) == pytest.approx(t_loss, rel=1e-5)
    assert float(m["alpha"]) == pytest.approx(alpha, rel=1e-6)

    # 2. critic: y = r + gamma mask [min_k Rbar_k(s', a') + w c(log pi0(a'|s'))
    #    - alpha log pi(a'|s')]; L = sum_k mean((R_k(s, a) + w c(log pi0(a|s)) - y)^2)
    a_n, logp_n = sample(kind, k_next, loc_n, ls_n)
    next_r = np.min(q(state.target_critic, s2, a_n), axis=0)
    c_next = c_term(kind, a_n, *ref_n)
    y = r + DISCOUNT * mask * (next_r + w * c_next - alpha * logp_n)
    c_data = c_term(kind, a_d, *ref)
    q_data = q(state.critic.params, s, a_d) + w * c_data
    critic_loss = np.sum(np.mean((q_data - y) ** 2, axis=-1))
    assert float(m["critic_loss"]) == pytest.approx(critic_loss, rel=1e-5)
    assert float(m["q_mean"]) == pytest.approx(np.mean(q_data), rel=1e-5)
    if align:
        assert float(m["clipped_log_pi0"]) == pytest.approx(np.mean(c_data), rel=1e-5)
        # every term matters here: without the w c-term in y the loss would differ this much
        y_without = y - DISCOUNT * mask * W * c_next
        assert abs(np.sum(np.mean((q_data - y_without) ** 2, -1)) - critic_loss) > 0.1
    else:
        assert "w" not in m and "clipped_log_pi0" not in m

    # 3. actor: mean(alpha log pi(a~|s) - [min_k R_k(s, a~) + w c(log pi0(a~|s))]), R after
    #    its step
    a_pi, logp_pi = sample(kind, k_pi, loc, ls)
    q_pi = np.min(q(new.critic.params, s, a_pi), axis=0) + w * c_term(kind, a_pi, *ref)
    assert float(m["actor_loss"]) == pytest.approx(np.mean(alpha * logp_pi - q_pi), rel=1e-5)
    assert float(m["entropy"]) == pytest.approx(-np.mean(logp_pi), rel=1e-5)

    # 4. target, 5. w: this update used w = 0.7; next, w0 - 1 * w0 / (K 1000) from the count
    assert_tree_close(new.target_critic, polyak(state.target_critic, new.critic.params))
    for name in ("actor", "critic"):  # both took one Adam step
        step = first_adam_step_size(getattr(state, name).params, getattr(new, name).params)
        assert step == pytest.approx(LR, rel=2e-3), name
    assert int(new.updates) == 1
    if align:
        assert float(m["w"]) == pytest.approx(W)
        assert float(new.w) == pytest.approx(0.8 - 0.8 / 2000.0, abs=1e-7)
    else:
        assert float(new.w) == float(state.w)  # sac-direct keeps its unused w


# ------------------------------------------------------------------ the gradient clip's epsilon
def test_clip_grad_norm_adds_torchs_epsilon_to_the_norm():
    """scale = max_norm / (norm + 1e-6): at a norm of 2e-6 the epsilon decides the value (1/3
    with +1e-6; 1, i.e. no clip, with -1e-6; 1/2 without it)."""
    grads = {"a": jnp.asarray([2e-6, 0.0], jnp.float32)}
    clipped, norm = clip_grad_norm(grads, jnp.asarray(1e-6, jnp.float32))
    assert float(norm) == pytest.approx(2e-6, rel=1e-6)
    np.testing.assert_allclose(clipped["a"], [2e-6 / 3.0, 0.0], rtol=1e-5)


def test_maze_samples_are_clamped_to_the_action_box_and_scored_there():
    """The maze policy's draws are clamped to [-1, 1] and scored under the unsquashed Gaussian at
    the clamped value: with mean +-0.9 and std 1, both bounds are hit often."""
    key = jax.random.PRNGKey(8)
    loc = jnp.tile(jnp.asarray([[0.9, -0.9]], jnp.float32), (64, 1))
    log_std = jnp.zeros((64, 2), jnp.float32)
    a, logp = policy_sample("maze", key, loc, log_std)
    raw = f64(loc) + f64(jax.random.normal(key, (64, 2), jnp.float32))
    clamped = np.clip(raw, -1.0, 1.0)
    assert np.sum(raw > 1.0) > 5 and np.sum(raw < -1.0) > 5
    np.testing.assert_allclose(a, clamped, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(logp, normal_logp(clamped, f64(loc), 0.0), rtol=1e-5)
