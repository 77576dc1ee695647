"""Flax networks shared by all methods: MLP, critic ensemble, value, and the two policy heads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Initializer = nn.initializers.Initializer


def _one_key_at_a_time(fn):
    """`fn(key)` whose vmap is a sequential `lax.map` over the keys instead of a batched call.

    Flax's orthogonal initializer calls LAPACK QR. Vmapped over seeds, that becomes a
    batched QR, and jaxlib 0.10's CPU LAPACK kernels split a batch over XLA's intra-op
    thread pool and block waiting for it: when as many such QRs run concurrently as the
    pool has threads (2 on a 2-core machine, e.g. the layers of a network), every pool
    thread waits and the run hangs forever. One QR per key never splits. It also makes
    seed k's initial weights in a batch bitwise those of a single run with key k.
    """
    f = jax.custom_batching.custom_vmap(fn)

    @f.def_vmap
    def _rule(axis_size, in_batched, key):
        if not in_batched[0]:
            return f(key), False
        return jax.lax.map(f, key), True

    return f


_SQRT2: list[jax.Array] = []


def _sqrt2() -> jax.Array:
    """sqrt(2) as the float32 array the default scale always was, made on first use and not at
    import (importing the package must not touch a device: `jax.distributed` starts after it)."""
    if not _SQRT2:
        with jax.ensure_compile_time_eval():
            _SQRT2.append(jnp.sqrt(2.0))
    return _SQRT2[0]


def orthogonal(scale: float | None = None) -> Initializer:
    """Flax's orthogonal initializer, safe to vmap over seeds (see `_one_key_at_a_time`);
    `scale` None means sqrt(2)."""

    def init(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
        base = nn.initializers.orthogonal(_sqrt2() if scale is None else scale)
        return _one_key_at_a_time(lambda k: base(k, shape, dtype))(key)

    return init


class MLP(nn.Module):
    """ReLU MLP. `hidden` are the hidden widths; `out` the output width (None: no output layer).

    `layer_norm`: every hidden layer is Dense -> LayerNorm -> ReLU, the last one included (RLPD's
    and WSRL's critics, `activate_final=True, use_layer_norm=True`). `last_hidden_init`: the
    kernel initializer of the last hidden layer, if it differs (WSRL's `kernel_scale_final`)."""

    hidden: Sequence[int]
    out: int | None = None
    activate_final: bool = False
    kernel_init: Initializer = orthogonal()
    out_init: Initializer | None = None
    layer_norm: bool = False
    last_hidden_init: Initializer | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for i, w in enumerate(self.hidden):
            last = i == len(self.hidden) - 1
            init = self.last_hidden_init if last and self.last_hidden_init else self.kernel_init
            x = nn.Dense(w, kernel_init=init)(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = nn.relu(x)
        if self.out is not None:
            x = nn.Dense(self.out, kernel_init=self.out_init or self.kernel_init)(x)
            if self.activate_final:
                x = nn.relu(x)
        return x


class Critic(nn.Module):
    """Q(s, a) -> scalar: an `MLP` on concat(s, a) (its options: see `MLP`)."""

    hidden: Sequence[int] = (256, 256)
    layer_norm: bool = False
    kernel_init: Initializer = orthogonal()
    out_init: Initializer | None = None
    last_hidden_init: Initializer | None = None

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        x = jnp.concatenate([obs, action], axis=-1)
        mlp = MLP(
            self.hidden,
            1,
            kernel_init=self.kernel_init,
            out_init=self.out_init,
            layer_norm=self.layer_norm,
            last_hidden_init=self.last_hidden_init,
        )
        return mlp(x)[..., 0]


def ensemble(module: type[nn.Module], n: int) -> type[nn.Module]:
    """`module` n times with independent parameters, evaluated in one vmapped call (outputs
    stacked on a leading axis of size n)."""
    return nn.vmap(
        module,
        variable_axes={"params": 0},
        split_rngs={"params": True},
        in_axes=None,
        out_axes=0,
        axis_size=n,
    )


class CriticEnsemble(nn.Module):
    """`n` independent critics evaluated in one vmapped call; output shape (n, batch).
    The options are each member's (see `Critic`); the target's subset: `losses.subset_min`."""

    hidden: Sequence[int] = (256, 256)
    n: int = 2
    layer_norm: bool = False
    kernel_init: Initializer = orthogonal()
    out_init: Initializer | None = None
    last_hidden_init: Initializer | None = None

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        member = ensemble(Critic, self.n)(
            self.hidden, self.layer_norm, self.kernel_init, self.out_init, self.last_hidden_init
        )
        return member(obs, action)


class ValueNet(nn.Module):
    """V(s) -> scalar."""

    hidden: Sequence[int] = (256, 256)

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        return MLP(self.hidden, 1)(obs)[..., 0]


class ValueEnsemble(nn.Module):
    """`n` independent V(s) networks in one vmapped call; output shape (n, batch)."""

    hidden: Sequence[int] = (256, 256)
    n: int = 2

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        return ensemble(ValueNet, self.n)(self.hidden)(obs)


class GaussianPolicy(nn.Module):
    """IQL-family policy: mean = tanh(Dense(trunk)), state-independent log-std clipped to a range.

    Every layer, the mean's included, has orthogonal initialisation with scale sqrt(2), as the
    official IQL code (its `default_init()`).

    The distribution is a plain (not squashed) diagonal Gaussian; see `distributions`.
    """

    action_size: int
    hidden: Sequence[int] = (256, 256)
    log_std_min: float = -5.0
    log_std_max: float = 2.0
    tanh_mean: bool = True

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = MLP(self.hidden)(obs)
        mean = nn.Dense(self.action_size, kernel_init=orthogonal())(h)
        if self.tanh_mean:
            mean = jnp.tanh(mean)
        log_std = self.param("log_std", nn.initializers.zeros, (self.action_size,))
        log_std = jnp.clip(log_std, self.log_std_min, self.log_std_max)
        return mean, jnp.broadcast_to(log_std, mean.shape)


class TanhGaussianPolicy(nn.Module):
    """SAC policy: state-dependent mean and log-std; actions are tanh-squashed by the sampler.

    One output layer of width 2|A| holds the mean and the log-std. Options (defaults: SAC's):
    `layer_norm` and `last_hidden_init` of the trunk (`MLP`), its `kernel_init`, the head's
    `head_init`; `state_dependent_std=False` makes the log-std one trainable vector (init 0)
    and the head the mean's alone (WSRL's AntMaze "uniform" std)."""

    action_size: int
    hidden: Sequence[int] = (256, 256)
    log_std_min: float = -20.0
    log_std_max: float = 2.0
    layer_norm: bool = False
    kernel_init: Initializer = orthogonal()
    head_init: Initializer = orthogonal(1.0)
    last_hidden_init: Initializer | None = None
    state_dependent_std: bool = True

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = MLP(
            self.hidden,
            kernel_init=self.kernel_init,
            layer_norm=self.layer_norm,
            last_hidden_init=self.last_hidden_init,
        )(obs)
        if not self.state_dependent_std:
            mean = nn.Dense(self.action_size, kernel_init=self.head_init)(h)
            log_std = self.param("log_std", nn.initializers.zeros, (self.action_size,))
            log_std = jnp.broadcast_to(log_std, mean.shape)
            return mean, jnp.clip(log_std, self.log_std_min, self.log_std_max)
        out = nn.Dense(2 * self.action_size, kernel_init=self.head_init)(h)
        mean, log_std = jnp.split(out, 2, axis=-1)
        return mean, jnp.clip(log_std, self.log_std_min, self.log_std_max)


def init_actor_critic(
    key: jax.Array, actor: nn.Module, critic: nn.Module, obs_size: int, act_size: int
) -> tuple[Any, Any]:
    """(actor params, critic params) from one key (split in that order) on dummy rows of the
    given sizes: how every actor-critic method's `init` starts."""
    k_a, k_c = jax.random.split(key)
    obs, act = jnp.zeros((1, obs_size)), jnp.zeros((1, act_size))
    return actor.init(k_a, obs)["params"], critic.init(k_c, obs, act)["params"]
