"""Fixed-capacity, device-resident replay and the mixed offline/online sampler.

Everything has static shapes so it lives inside one compiled program:
- `ReplayBuffer` is a ring buffer: inserts wrap around, sampling is uniform over what is filled.
- `sample_mixed` draws a batch whose rows come either from the offline rows or from the
  online buffer, as the protocol's `BatchMix` says (`jaxo2o.config`):
  * fixed (``uniform=False``): exactly ``round(f * batch)`` rows from the dataset, f traced
    (PEX's 128 + 128 is ``f = 0.5``; the scratch protocol is ``f = 0``);
  * uniform (``uniform=True``, static): uniform over the offline rows and the online data
    together, as if the offline rows had been copied into one buffer that then grows online
    (official IQL, FamO2O and ACA). The rows are not copied per seed, which saves memory when
    seeds are vmapped.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxo2o.core.transitions import Transitions, empty_transitions, transition_bytes


class ReplayBuffer(NamedTuple):
    data: Transitions
    position: jax.Array  # int32 index of the next write
    size: jax.Array  # int32 number of filled rows (<= capacity)

    @property
    def capacity(self) -> int:
        return int(self.data.reward.shape[0])


def replay_init(capacity: int, obs_size: int, act_size: int) -> ReplayBuffer:
    return ReplayBuffer(
        data=empty_transitions(capacity, obs_size, act_size),
        position=jnp.zeros((), jnp.int32),
        size=jnp.zeros((), jnp.int32),
    )


def replay_bytes(capacity: int, obs_size: int, act_size: int) -> int:
    """Device bytes of one buffer, known before anything is compiled."""
    return capacity * transition_bytes(obs_size, act_size) + 8


def replay_insert(buffer: ReplayBuffer, batch: Transitions) -> ReplayBuffer:
    """Append a batch (leading axis = rows), overwriting the oldest rows once full."""
    n = batch.reward.shape[0]
    cap = buffer.capacity
    if n > cap:
        raise ValueError(f"insert of {n} rows into a buffer of capacity {cap}")
    idx = (buffer.position + jnp.arange(n)) % cap
    data = jax.tree.map(
        lambda store, x: store.at[idx].set(x.astype(store.dtype)), buffer.data, batch
    )
    return ReplayBuffer(
        data=data,
        position=(buffer.position + n) % cap,
        size=jnp.minimum(buffer.size + n, cap),
    )


def _take(data: Transitions, idx: jax.Array) -> Transitions:
    return jax.tree.map(lambda x: x[idx], data)


def replay_sample(buffer: ReplayBuffer, key: jax.Array, batch_size: int) -> Transitions:
    """Uniform sample (with replacement) from the filled part of the buffer."""
    idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buffer.size, 1))
    return _take(buffer.data, idx)


def dataset_sample(dataset: Transitions, key: jax.Array, batch_size: int) -> Transitions:
    idx = jax.random.randint(key, (batch_size,), 0, dataset.reward.shape[0])
    return _take(dataset, idx)


def offline_row_mask(
    key: jax.Array,
    batch_size: int,
    offline_fraction: jax.Array,
    n_dataset: int,
    n_online: jax.Array,
    uniform: bool,
) -> jax.Array:
    """Which rows of a batch come from the dataset (True) rather than the online buffer."""
    if uniform:
        if n_dataset == 0:
            return jnp.zeros((batch_size,), bool)
        total = n_dataset + n_online
        return jax.random.randint(key, (batch_size,), 0, total) < n_dataset
    return jnp.arange(batch_size) < jnp.round(offline_fraction * batch_size)


def sample_mixed(
    dataset: Transitions,
    buffer: ReplayBuffer,
    key: jax.Array,
    batch_size: int,
    offline_fraction: jax.Array | float,
    uniform: bool = False,
    n_dataset: int | None = None,
) -> tuple[Transitions, jax.Array]:
    """A batch mixing dataset and online rows (module docstring); returns (batch, is_offline).

    `n_dataset` (static) is the number of usable dataset rows, when the array holds a
    placeholder row for an empty set (the seeded protocol with no seed episodes)."""
    k_mask, k_off, k_on = jax.random.split(key, 3)
    n_dataset = dataset.reward.shape[0] if n_dataset is None else n_dataset
    is_offline = offline_row_mask(
        k_mask,
        batch_size,
        jnp.asarray(offline_fraction, jnp.float32),
        n_dataset,
        buffer.size,
        uniform,
    )
    off = dataset_sample(dataset, k_off, batch_size)
    on = replay_sample(buffer, k_on, batch_size)

    def pick(a, b):
        m = is_offline.reshape((-1,) + (1,) * (a.ndim - 1))
        return jnp.where(m, a, b)

    return jax.tree.map(pick, off, on), is_offline
