"""Parameters with their optimizer state, updated with optax.

Learning rates are traced hyperparameters: methods build the optax transformation inside the
update from `hp` (the Adam state does not depend on the rate), so one compiled program serves
a whole grid of learning rates.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax


class NetState(NamedTuple):
    params: Any
    opt_state: Any


def net_init(params: Any, tx: optax.GradientTransformation) -> NetState:
    return NetState(params, tx.init(params))


def net_step(net: NetState, grads: Any, tx: optax.GradientTransformation) -> NetState:
    """One optimizer step."""
    updates, opt_state = tx.update(grads, net.opt_state, net.params)
    return NetState(optax.apply_updates(net.params, updates), opt_state)


def polyak(target: Any, online: Any, rate: jax.Array) -> Any:
    """target <- (1 - rate) * target + rate * online."""
    return optax.incremental_update(online, target, rate)


GRAD_CLIP_EPS = 1e-6  # torch.nn.utils.clip_grad_norm_: scale = max_norm / (norm + 1e-6)


def clip_grad_norm(grads: Any, max_norm: jax.Array) -> tuple[Any, jax.Array]:
    """torch's `clip_grad_norm_`: scale every gradient by min(1, max_norm / (norm + 1e-6)), where
    norm is the global L2 norm. Returns (clipped gradients, norm before clipping)."""
    norm = optax.global_norm(grads)
    scale = jnp.minimum(1.0, max_norm / (norm + GRAD_CLIP_EPS))
    return jax.tree.map(lambda g: g * scale, grads), norm


def step_norm(before: Any, after: Any) -> jax.Array:
    """Global L2 norm of a parameter change (the size of one optimizer step)."""
    return optax.global_norm(jax.tree.map(jnp.subtract, after, before))
