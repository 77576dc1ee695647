"""ACA's two policy families and the soft clip of the reference log-density (`aca.py` uses them).

- "squashed" (locomotion): tanh(N(mu, sigma)) with a state-dependent log-std (the project's
  `TanhGaussianPolicy`); the log-density of a given action uses atanh(clamp(a, +-0.999999)).
- "maze": d3rlpy's policy built with `use_std_parameter`, N(tanh mu(s), sigma) with a
  state-independent log sigma = -5 + 5 sigmoid(p); samples clamped to [-1, 1] and scored under the
  unsquashed Gaussian at the clamped value, no Jacobian.
Both act greedily with tanh mu(s).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxo2o.core.distributions import (
    gaussian_log_prob,
    gaussian_sample,
    tanh_gaussian_log_prob,
    tanh_gaussian_log_prob_raw,
    tanh_gaussian_sample,
)
from jaxo2o.core.networks import MLP, orthogonal

POLICIES = ("squashed", "maze")
SQUASHED_ACTION_EPS = 1e-6  # log pi(a|s) of a given action: atanh(clamp(a, +-0.999999))
MAZE_LOG_STD_MIN, MAZE_LOG_STD_MAX = -5.0, 0.0


def soft_clip(x: jax.Array, floor: jax.Array) -> jax.Array:
    """c(x) = softplus(x - m) + m: a soft lower bound at m, none above; dc/dx = sigmoid(x - m)."""
    return jax.nn.softplus(x - floor) + floor


class MazePolicy(nn.Module):
    """N(tanh mu(s), sigma): log sigma = min + (max - min) sigmoid(p), p a state-independent
    parameter initialised to 0 (d3rlpy's `use_std_parameter`)."""

    action_size: int
    hidden: tuple[int, ...] = (256, 256)

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = MLP(self.hidden)(obs)
        mean = jnp.tanh(nn.Dense(self.action_size, kernel_init=orthogonal(1.0))(h))
        p = self.param("log_std_param", nn.initializers.zeros, (self.action_size,))
        log_std = MAZE_LOG_STD_MIN + (MAZE_LOG_STD_MAX - MAZE_LOG_STD_MIN) * jax.nn.sigmoid(p)
        return mean, jnp.broadcast_to(log_std, mean.shape)


def policy_sample(
    kind: str, key: jax.Array, loc: jax.Array, log_std: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """(action, log pi(action|s)), reparameterised. `loc`: pre-tanh mean (squashed) or the
    tanh-bounded mean (maze)."""
    if kind == "squashed":
        return tanh_gaussian_sample(key, loc, log_std)
    a = jnp.clip(gaussian_sample(key, loc, log_std), -1.0, 1.0)
    return a, gaussian_log_prob(loc, log_std, a)


def policy_log_prob(kind: str, loc: jax.Array, log_std: jax.Array, action: jax.Array) -> jax.Array:
    """log pi(action|s) of a given action."""
    if kind == "squashed":
        return tanh_gaussian_log_prob(loc, log_std, action, SQUASHED_ACTION_EPS)
    return gaussian_log_prob(loc, log_std, action)


def clip_floor(kind: str, loc: jax.Array, log_std: jax.Array, beta: jax.Array) -> jax.Array:
    """m(s) = min(log pi0(mu - beta sigma|s), log pi0(mu + beta sigma|s)), without gradient.

    Squashed: mu, sigma pre-tanh, the squashed log-density at tanh(mu +- beta sigma). Maze: the
    Gaussian log-density at tanh mu +- beta sigma (both sides equal; state-independent)."""
    loc, log_std = jax.lax.stop_gradient(loc), jax.lax.stop_gradient(log_std)
    shift = beta * jnp.exp(log_std)
    if kind == "squashed":
        lo = tanh_gaussian_log_prob_raw(loc, log_std, loc - shift)
        hi = tanh_gaussian_log_prob_raw(loc, log_std, loc + shift)
    else:
        lo = gaussian_log_prob(loc, log_std, loc - shift)
        hi = gaussian_log_prob(loc, log_std, loc + shift)
    return jnp.minimum(lo, hi)


def greedy_action(kind: str, loc: jax.Array) -> jax.Array:
    """tanh(mu(s)) for both policies."""
    return jnp.tanh(loc) if kind == "squashed" else loc
