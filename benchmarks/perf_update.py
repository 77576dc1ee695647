"""Throughput of one method's update step: a jitted `lax.scan` of `method.update` over a fixed
batch, vmapped over seeds, with its FLOPs counted three ways (see `perf_flops`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from benchmarks.perf_flops import (
    jaxpr_dot_flops,
    recomputed_flops,
    total_flops,
    update_passes,
    xla_cost,
)
from jaxo2o.core.returns import unknown_returns
from jaxo2o.core.runner import broadcast_tree
from jaxo2o.core.transitions import Transitions


def fixed_batch(key: jax.Array, obs_size: int, act_size: int, batch: int) -> Transitions:
    """A random batch; every field from its own key, so no two inputs are equal (XLA would
    otherwise merge the passes on s and s')."""
    ks = jax.random.split(key, 5)
    return Transitions(
        obs=jax.random.normal(ks[0], (batch, obs_size)),
        action=jax.random.uniform(ks[1], (batch, act_size), minval=-1.0, maxval=1.0),
        reward=jax.random.normal(ks[2], (batch,)),
        next_obs=jax.random.normal(ks[3], (batch, obs_size)),
        terminated=jax.random.bernoulli(ks[4], 0.05, (batch,)),
        truncated=jnp.zeros((batch,), bool),
    )


def method_batch(method: Any, key: jax.Array, obs_size: int, act_size: int, batch: int) -> Any:
    """`fixed_batch`, with Monte-Carlo return columns for a method that reads them (Cal-QL)."""
    rows = fixed_batch(key, obs_size, act_size, batch)
    if method.mc_returns is None:
        return rows
    return unknown_returns(rows)._replace(mc_return=rows.reward, mc_horizon=jnp.ones(batch))


def online_state(method: Any, key: jax.Array, obs_size: int, act_size: int, hp: Any) -> Any:
    """The state the online update sees: `init`, then the switch `to_online`."""
    k_init, k_switch = jax.random.split(key)
    return method.to_online(method.init(k_init, obs_size, act_size, hp), k_switch, hp)


def scan_updates(method: Any, steps: int, online: bool = True) -> Callable:
    """(state, batch, key, hp) -> state after `steps` updates on the same batch."""

    def run(state, batch, key, hp):
        def body(s, k):
            return method.update(s, batch, k, hp, online=online)[0], None

        return jax.lax.scan(body, state, jax.random.split(key, steps))[0]

    return run


@dataclass
class UpdateBench:
    """A compiled update program for `seeds` seeds and what it computes."""

    call: Callable[[], Any]
    seeds: int
    steps: int
    compile_seconds: float
    xla_flops_per_update: float  # XLA cost analysis (it counts a scan's body once) / seeds
    compiled: Any = None


def build_update_bench(
    method: Any, obs_size: int, act_size: int, batch: int, seeds: int, steps: int
) -> UpdateBench:
    hp = method.default_hparams()
    keys = jax.random.split(jax.random.PRNGKey(1), seeds)
    states = jax.vmap(lambda k: online_state(method, k, obs_size, act_size, hp))(keys)
    data = method_batch(method, jax.random.PRNGKey(2), obs_size, act_size, batch)
    hps = broadcast_tree(hp, seeds)
    fn = jax.vmap(scan_updates(method, steps), in_axes=(0, None, 0, 0))
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(states, data, keys, hps).compile()
    compile_s = time.perf_counter() - t0
    xla = xla_cost(compiled)["flops"] / seeds
    call = lambda: compiled(states, data, keys, hps)
    return UpdateBench(call, seeds, steps, compile_s, xla, compiled)


def update_flops(method: Any, obs_size: int, act_size: int, batch: int) -> dict[str, Any]:
    """FLOPs of one online update: the hand count from the network shapes (as the code writes
    it, and without the forward passes it repeats) and the dot products JAX traces."""
    hp = method.default_hparams()
    key = jax.random.PRNGKey(0)
    state = online_state(method, key, obs_size, act_size, hp)
    data = method_batch(method, key, obs_size, act_size, batch)
    fn = lambda s, b, k, h: method.update(s, b, k, h, online=True)
    out: dict[str, Any] = {"traced_dot_flops": jaxpr_dot_flops(fn, state, data, key, hp)}
    passes = update_passes(method, obs_size, act_size, batch, online=True)
    written = total_flops(passes)
    out |= {
        "counted_flops": written,
        "recomputed_flops": recomputed_flops(passes),
        "passes": [
            {"name": p.name, "widths": p.widths, "copies": p.copies, "flops": p.flops}
            | {"recomputed": p.recomputed}
            for p in passes
        ],
    }
    return out
