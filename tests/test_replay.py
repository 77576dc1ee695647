"""Replay buffer: ring insertion, sampling from filled rows, the mixed offline/online sampler."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxo2o.core.replay import (
    replay_bytes,
    replay_init,
    replay_insert,
    replay_sample,
    sample_mixed,
)
from jaxo2o.core.transitions import Transitions, transition_bytes

OBS, ACT = 3, 2


def rows(values) -> Transitions:
    """Transitions whose every field is filled with the row's value, so rows are identifiable."""
    v = jnp.asarray(values, jnp.float32)
    n = v.shape[0]
    return Transitions(
        obs=jnp.broadcast_to(v[:, None], (n, OBS)),
        action=jnp.broadcast_to(v[:, None] + 0.5, (n, ACT)),
        reward=v,
        next_obs=jnp.broadcast_to(v[:, None] + 0.25, (n, OBS)),
        terminated=(jnp.asarray(values) % 2 == 1),
        truncated=(jnp.asarray(values) % 3 == 0),
    )


def filled_buffer(capacity: int, values) -> jax.Array:
    return replay_insert(replay_init(capacity, OBS, ACT), rows(values))


def assert_rows(data: Transitions, values) -> None:
    """Every field of `data` matches `rows(values)` exactly."""
    want = rows(values)
    for name, got, exp in zip(Transitions._fields, data, want, strict=True):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(exp), err_msg=name)


def test_wrap_around_exact_contents():
    buf = replay_init(5, OBS, ACT)
    buf = replay_insert(buf, rows([1, 2, 3]))
    assert int(buf.position) == 3 and int(buf.size) == 3
    assert_rows(jax.tree.map(lambda x: x[:3], buf.data), [1, 2, 3])
    for x in buf.data:  # slots 3 and 4 are still empty
        assert not np.any(np.asarray(x[3:]))
    # Four more rows: slots 3, 4, then wrap to 0, 1 (overwriting the oldest, 1 and 2).
    buf = replay_insert(buf, rows([4, 5, 6, 7]))
    assert int(buf.position) == 2 and int(buf.size) == 5
    assert_rows(buf.data, [6, 7, 3, 4, 5])


def test_insert_under_jit_matches_eager():
    buf = replay_init(5, OBS, ACT)
    ins = jax.jit(replay_insert)
    for chunk in ([1, 2], [3, 4], [5, 6], [7, 8]):
        buf = ins(buf, rows(chunk))
    # 8 rows into 5 slots: 6, 7, 8 overwrote slots 0, 1, 2.
    assert_rows(buf.data, [6, 7, 8, 4, 5])
    assert int(buf.position) == 3 and int(buf.size) == 5


def test_insert_larger_than_capacity_is_refused():
    with pytest.raises(ValueError, match="capacity"):
        replay_insert(replay_init(3, OBS, ACT), rows([1, 2, 3, 4]))


def test_sampling_only_from_filled_rows():
    buf = filled_buffer(10, [1, 2, 3])
    batch = replay_sample(buf, jax.random.PRNGKey(0), 2000)
    got = np.asarray(batch.reward)
    assert set(np.unique(got)) == {1.0, 2.0, 3.0}  # never an empty (zero) row, all rows drawn
    # Rows are sampled whole: every field of a drawn row belongs to the same transition.
    assert_rows(batch, got.astype(int))
    # Roughly uniform over the 3 filled rows: each share within 5 sigma of 1/3 (sigma ~ 0.011).
    shares = np.array([np.mean(got == v) for v in (1, 2, 3)])
    assert np.all(np.abs(shares - 1 / 3) < 0.055), shares


@pytest.fixture(scope="module")
def mixed():
    """A 40-row dataset with values 1000+i and a half-full buffer (30 of 64) with values 1..30."""
    dataset = rows(1000 + np.arange(40))
    buffer = filled_buffer(64, np.arange(1, 31))
    sample = jax.jit(sample_mixed, static_argnums=(3,))
    return dataset, buffer, sample


def split_rows(batch: Transitions):
    r = np.asarray(batch.reward)
    return r >= 1000, r


@pytest.mark.parametrize("fraction, n_offline", [(0.5, 128), (0.0, 0), (1.0, 256), (0.25, 64)])
def test_mixed_fixed_fraction_exact_counts(mixed, fraction, n_offline):
    dataset, buffer, sample = mixed
    # The fraction is a traced argument (it is a sweepable hyperparameter).
    batch, is_offline = sample(dataset, buffer, jax.random.PRNGKey(1), 256, jnp.float32(fraction))
    from_dataset, r = split_rows(batch)
    assert from_dataset.sum() == n_offline
    np.testing.assert_array_equal(np.asarray(is_offline), from_dataset)
    assert np.all(np.isin(r[from_dataset], 1000 + np.arange(40)))
    assert np.all(np.isin(r[~from_dataset], np.arange(1, 31)))  # filled online rows only
    assert_rows(batch, r.astype(int))


def test_mixed_union_share_matches_sizes(mixed):
    """UNION samples uniformly over dataset + filled buffer: P(dataset row) = N / (N + size).

    Here N = 40, size = 30 (capacity 64), so p = 4/7 = 0.5714. Each row is an independent
    Bernoulli(p) draw, so over 200 batches of 256 rows (n = 51200) the share has standard
    deviation sqrt(p (1 - p) / n) = 0.0022. A 5-sigma bound (0.011) fails a correct sampler
    with probability < 1e-6, and rejects the likely wrong ones by a wide margin: a 50/50
    split (0.5), using the capacity instead of the filled size (40/104 = 0.385), or sampling
    only one source (0 or 1).
    """
    dataset, buffer, sample = mixed
    keys = jax.random.split(jax.random.PRNGKey(2), 200)
    draw = jax.jit(jax.vmap(lambda k: sample_mixed(dataset, buffer, k, 256, 0.0, uniform=True)))
    batch, is_offline = draw(keys)
    r = np.asarray(batch.reward).ravel()
    from_dataset = r >= 1000
    np.testing.assert_array_equal(np.asarray(is_offline).ravel(), from_dataset)
    p = 40 / 70
    sigma = np.sqrt(p * (1 - p) / r.size)
    assert abs(from_dataset.mean() - p) < 5 * sigma, (from_dataset.mean(), p)
    assert np.all(np.isin(r[~from_dataset], np.arange(1, 31)))
    # Within each source, the draw is uniform too: every dataset and online row shows up.
    assert len(np.unique(r[from_dataset])) == 40 and len(np.unique(r[~from_dataset])) == 30


def test_union_follows_the_growing_buffer(mixed):
    """The same compiled sampler gives a smaller dataset share once the buffer is fuller."""
    dataset, _, sample = mixed
    full = filled_buffer(64, np.arange(1, 65))  # N = 40, size = 64: p = 40/104 = 0.385
    keys = jax.random.split(jax.random.PRNGKey(3), 100)
    draw = jax.vmap(lambda k: sample_mixed(dataset, full, k, 256, 0.0, uniform=True)[0].reward)
    share = np.mean(np.asarray(draw(keys)) >= 1000)
    p = 40 / 104
    assert abs(share - p) < 5 * np.sqrt(p * (1 - p) / (100 * 256)), (share, p)


def test_uniform_mix_with_no_usable_dataset_rows_draws_online_rows_only(mixed):
    """The seeded protocol with no seed episodes passes a placeholder row (n_dataset=0)."""
    dataset, buffer, _ = mixed
    keys = jax.random.split(jax.random.PRNGKey(4), 20)
    draw = jax.vmap(lambda k: sample_mixed(dataset, buffer, k, 64, 0.0, True, n_dataset=0))
    batch, is_offline = draw(keys)
    assert not np.any(np.asarray(is_offline))
    assert np.all(np.isin(np.asarray(batch.reward), np.arange(1, 31)))


def test_replay_bytes_matches_the_arrays():
    for cap, obs, act in [(5, OBS, ACT), (1000, 17, 6), (1, 1, 1)]:
        buf = replay_init(cap, obs, act)
        data_bytes = sum(np.asarray(x).nbytes for x in buf.data)
        counters = np.asarray(buf.position).nbytes + np.asarray(buf.size).nbytes
        assert counters == 8
        assert replay_bytes(cap, obs, act) == data_bytes + counters
        assert transition_bytes(obs, act) * cap == data_bytes
