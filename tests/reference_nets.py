"""Plain-jax forward passes and Adam, written independently of `jaxo2o.core.networks`, for the
update-parity tests of Cal-QL, RLPD and WSRL: they read a method's parameter trees and compute
the same functions by hand (dense layers, LayerNorm, tanh-Gaussian sampling, Adam)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxo2o.core.transitions import Transitions

LN_EPS = 1e-6  # flax.linen.LayerNorm's default epsilon


def layer_norm(p: dict, x: jax.Array) -> jax.Array:
    mu = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean((x - mu) ** 2, axis=-1, keepdims=True)
    return (x - mu) / jnp.sqrt(var + LN_EPS) * p["scale"] + p["bias"]


def mlp(p: dict, x: jax.Array, n_hidden: int, with_out: bool = True) -> jax.Array:
    """Dense (-> LayerNorm if its parameters exist) -> ReLU per hidden layer, then the output
    Dense (if `with_out`)."""
    for i in range(n_hidden):
        x = x @ p[f"Dense_{i}"]["kernel"] + p[f"Dense_{i}"]["bias"]
        if f"LayerNorm_{i}" in p:
            x = layer_norm(p[f"LayerNorm_{i}"], x)
        x = jnp.maximum(x, 0.0)
    if with_out:
        x = x @ p[f"Dense_{n_hidden}"]["kernel"] + p[f"Dense_{n_hidden}"]["bias"]
    return x


def critics(p: dict, obs: jax.Array, act: jax.Array, n_hidden: int) -> jax.Array:
    """Every member of a `CriticEnsemble` parameter tree: (n, B)."""
    members = p["VmapCritic_0"]["MLP_0"]
    x = jnp.concatenate([obs, act], axis=-1)
    return jax.vmap(lambda m: mlp(m, x, n_hidden)[..., 0])(members)


def trunk(p: dict, obs: jax.Array, n_hidden: int) -> jax.Array:
    return mlp(p["MLP_0"], obs, n_hidden, with_out=False)


def squashed_sample(key, mean, log_std):
    """a = tanh(mean + std eps), log pi(a) with the change of variables (by the textbook form
    log(1 - tanh(u)^2), less stable than the library's but equal at these magnitudes)."""
    u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
    z = (u - mean) / jnp.exp(log_std)
    logp = jnp.sum(-0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi), axis=-1)
    logp = logp - jnp.sum(jnp.log(1.0 - jnp.tanh(u) ** 2), axis=-1)
    return jnp.tanh(u), logp


def samples(key, mean, log_std, n: int):
    """n samples per row, keys split as the methods do: (B, n, |A|), (B, n)."""
    keys = jax.random.split(key, n)
    outs = [squashed_sample(k, mean, log_std) for k in keys]
    return jnp.stack([o[0] for o in outs], 1), jnp.stack([o[1] for o in outs], 1)


def adam_init(params):
    zeros = jax.tree.map(jnp.zeros_like, params)
    return {"m": zeros, "v": zeros, "t": 0}


def adam_step(params, grads, state, lr, b1=0.9, b2=0.999, eps=1e-8):
    t = state["t"] + 1
    m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state["m"], grads)
    v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, state["v"], grads)
    new = jax.tree.map(
        lambda p, m, v: p - lr * (m / (1 - b1**t)) / (jnp.sqrt(v / (1 - b2**t)) + eps),
        params,
        m,
        v,
    )
    return new, {"m": m, "v": v, "t": t}


def polyak(target, online, tau):
    return jax.tree.map(lambda t, o: (1 - tau) * t + tau * o, target, online)


def assert_trees_close(a, b, tol: float = 2e-5) -> None:
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb, strict=True):
        err = float(jnp.max(jnp.abs(jnp.asarray(x) - jnp.asarray(y))))
        scale = 1.0 + float(jnp.max(jnp.abs(jnp.asarray(y))))
        assert err <= tol * scale, f"max abs difference {err} (scale {scale})"


def assert_first_moments_close(nets: dict, ref: dict) -> None:
    """Each optax Adam state's first moment against the hand-written Adam's (`ref[name]["m"]`):
    the moments carry the gradients' sizes, which Adam's first steps hide (each moves a
    parameter by about lr in its gradient's direction, whatever the gradient's size)."""
    for name, net in nets.items():
        assert_trees_close(net.opt_state[0].mu, ref[name]["m"])


def random_batches(key, terminated_row: tuple[bool, ...], g: int = 2, obs: int = 3, act: int = 2):
    """`g` random batches of len(terminated_row) transitions (a leading axis of g, as
    `update_many` takes them); every batch ends its episodes where `terminated_row` says."""
    b = len(terminated_row)
    ks = jax.random.split(key, 4)
    return Transitions(
        obs=jax.random.normal(ks[0], (g, b, obs)),
        action=jax.random.uniform(ks[1], (g, b, act), minval=-1, maxval=1),
        reward=jax.random.normal(ks[2], (g, b)),
        next_obs=jax.random.normal(ks[3], (g, b, obs)),
        terminated=jnp.tile(jnp.array(terminated_row), (g, 1)),
        truncated=jnp.zeros((g, b), bool),
    )
