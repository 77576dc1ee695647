"""The two Gaussian policies of the O2O literature, as plain functions of (mean, log_std).

Written by hand rather than taken from a distributions library: the project's package set has
none that is maintained for jax 0.10, and these are a few lines each.
- Plain diagonal Gaussian (IQL, PEX, FamO2O, AWAC): the mean is already tanh-bounded by the
  network, samples are *not* squashed, log-probabilities are of the raw Gaussian.
- Tanh-squashed Gaussian (SAC, ACA): a = tanh(u), u ~ N(mean, std), with the change-of-variables
  correction in the log-probability.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

# A Python float (the same weakly typed float32 constant in the programs as jnp.log would give):
# importing the package must not touch a device, so that `jax.distributed` can start after it.
_LOG_2PI = math.log(2.0 * math.pi)


def gaussian_log_prob(mean: jax.Array, log_std: jax.Array, x: jax.Array) -> jax.Array:
    """Sum over the last axis of the diagonal Gaussian log-density."""
    z = (x - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z * z - log_std - 0.5 * _LOG_2PI, axis=-1)


def gaussian_sample(key: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """Reparameterised sample of the diagonal Gaussian."""
    return mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape, mean.dtype)


def _log1m_tanh_sq(u: jax.Array) -> jax.Array:
    """log(1 - tanh(u)^2), computed stably as 2 (log 2 - u - softplus(-2u))."""
    return 2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u))


def tanh_gaussian_sample(
    key: jax.Array, mean: jax.Array, log_std: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Reparameterised sample a = tanh(u) and its log-probability under the squashed Gaussian."""
    u = gaussian_sample(key, mean, log_std)
    log_prob = gaussian_log_prob(mean, log_std, u) - jnp.sum(_log1m_tanh_sq(u), axis=-1)
    return jnp.tanh(u), log_prob


def tanh_gaussian_action(
    key: jax.Array, mean: jax.Array, log_std: jax.Array, deterministic: bool
) -> jax.Array:
    """The action a tanh-Gaussian policy takes: tanh(mean) when deterministic, else a sample."""
    return jnp.tanh(mean) if deterministic else tanh_gaussian_sample(key, mean, log_std)[0]


def tanh_gaussian_samples(
    key: jax.Array, mean: jax.Array, log_std: jax.Array, n: int
) -> tuple[jax.Array, jax.Array]:
    """`n` samples per row, each from its own key of `split(key, n)`: actions (B, n, |A|) and
    their log-probabilities (B, n)."""
    keys = jax.random.split(key, n)
    return jax.vmap(lambda k: tanh_gaussian_sample(k, mean, log_std), out_axes=1)(keys)


def tanh_gaussian_log_prob(
    mean: jax.Array, log_std: jax.Array, action: jax.Array, eps: float = 1e-6
) -> jax.Array:
    """Log-probability of a given action in (-1, 1) under the squashed Gaussian."""
    a = jnp.clip(action, -1.0 + eps, 1.0 - eps)
    u = jnp.arctanh(a)
    return gaussian_log_prob(mean, log_std, u) - jnp.sum(_log1m_tanh_sq(u), axis=-1)


def tanh_gaussian_log_prob_raw(mean: jax.Array, log_std: jax.Array, u: jax.Array) -> jax.Array:
    """Log-probability of a = tanh(u) under the squashed Gaussian, given the pre-tanh value u."""
    return gaussian_log_prob(mean, log_std, u) - jnp.sum(_log1m_tanh_sq(u), axis=-1)
