"""Losses shared by several methods, written once (IQL, PEX, FamO2O, AWAC, SAC, ACA).

Each takes arrays, returns a scalar loss (or the weights), and has no knowledge of networks.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

AWR_WEIGHT_CLIP = 100.0


def expectile_loss(diff: jax.Array, expectile: jax.Array) -> jax.Array:
    """IQL value loss: mean of |tau - 1(u < 0)| * u^2 with u = Q - V."""
    weight = jnp.where(diff > 0, expectile, 1.0 - expectile)
    return jnp.mean(weight * diff**2)


def td_target(
    reward: jax.Array, mask: jax.Array, next_value: jax.Array, discount: jax.Array
) -> jax.Array:
    """y = r + gamma * mask * V(s'); mask is 0 only after a true termination. No gradient."""
    return jax.lax.stop_gradient(reward + discount * mask * next_value)


def ensemble_mse(q: jax.Array, target: jax.Array) -> jax.Array:
    """Sum over critics of the mean squared TD error; q has shape (n_critics, batch)."""
    return jnp.sum(jnp.mean((q - target[None]) ** 2, axis=-1))


def awr_weights(advantage: jax.Array, inverse_temperature: jax.Array) -> jax.Array:
    """min(exp(beta * A), 100), without gradient."""
    w = jnp.minimum(jnp.exp(inverse_temperature * advantage), AWR_WEIGHT_CLIP)
    return jax.lax.stop_gradient(w)


def weight_ess(weights: jax.Array) -> jax.Array:
    """Effective sample size of a batch's weights as a share of the batch: (sum w)^2 / (n sum w^2).

    1 when every weight is equal (behaviour cloning); 1/n when one sample carries all the weight;
    0 when every weight is 0 (each exp(beta A) underflowed: no sample carries any), where the
    ratio itself would be 0/0 and a NaN metric would flag a healthy run as diverged: the
    denominator's sum of squares is then replaced by 1, and the numerator is 0.
    """
    square_sum = jnp.sum(jnp.square(weights))
    denominator = weights.size * jnp.where(square_sum > 0, square_sum, 1.0)
    return jnp.square(jnp.sum(weights)) / denominator


def awr_actor_loss(log_prob: jax.Array, weights: jax.Array) -> jax.Array:
    """Advantage-weighted regression: -mean(w * log pi(a|s))."""
    return -jnp.mean(weights * log_prob)


def temperature_loss(
    log_alpha: jax.Array, log_prob: jax.Array, target_entropy: jax.Array
) -> jax.Array:
    """SAC's automatic temperature: alpha * (H - H_target), H = -mean log pi."""
    entropy = -jax.lax.stop_gradient(jnp.mean(log_prob))
    return jnp.exp(log_alpha) * (entropy - target_entropy)


def log_temperature_loss(
    log_alpha: jax.Array, log_prob: jax.Array, target_entropy: jax.Array
) -> jax.Array:
    """ACA's (d3rlpy's) temperature loss, on log alpha itself: log alpha * (H - H_target),
    H = -mean log pi (no gradient)."""
    entropy = -jax.lax.stop_gradient(jnp.mean(log_prob))
    return log_alpha * (entropy - target_entropy)


def member_subset(key: jax.Array, n: int, k: int, replace: bool) -> jax.Array:
    """Indices of `k` of an ensemble's `n` members, drawn afresh from `key`.

    `replace=False`: k distinct members (RLPD's target, ikostrikov/rlpd `ensemble.py`
    `subsample_ensemble`: `jax.random.choice(..., replace=False)`); `replace=True`: k independent
    draws, so a member may come twice (WSRL's target, `jax.random.randint`)."""
    if not replace and not 1 <= k <= n:
        raise ValueError(f"member_subset: k={k} must lie in [1, {n}] without replacement")
    if replace:
        return jax.random.randint(key, (k,), 0, n)
    return jax.random.choice(key, n, (k,), replace=False)


def subset_min(q: jax.Array, key: jax.Array, k: int, replace: bool) -> jax.Array:
    """Min over `k` members (`member_subset`) of an ensemble's values q (n_members, ...)."""
    return jnp.min(q[member_subset(key, q.shape[0], k, replace)], axis=0)
