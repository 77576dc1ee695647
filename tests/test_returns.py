"""Monte-Carlo returns-to-go (`jaxo2o.core.returns`, `jaxo2o.data.dataset.with_mc_returns`):
the spec's hand values (`/work/shared/spec/calql_rlpd_wsrl.md` §1.7 T1), the all-failure rule,
the exact reward transform, and the online backfill against the dataset computation; plus the
shared network options (LayerNorm)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxo2o.core.networks import MLP
from jaxo2o.core.replay import replay_init, replay_insert
from jaxo2o.core.returns import (
    ReturnSpec,
    backfill_returns,
    transform_returns,
    unknown_returns,
)
from jaxo2o.core.transitions import Transitions
from jaxo2o.data.dataset import with_mc_returns

ANTMAZE = ReturnSpec(0.99, failure_reward=0.0)


def _rows(reward, terminated, truncated=None) -> Transitions:
    n = len(reward)
    z = np.zeros((n, 1), np.float32)
    trunc = np.zeros(n, bool) if truncated is None else np.asarray(truncated, bool)
    return Transitions(z, z, np.asarray(reward, np.float32), z, np.asarray(terminated, bool), trunc)


def _scaled(t, scale, shift):
    return np.asarray(transform_returns(t, scale, shift).mc_return)


def test_antmaze_hand_values():
    cases = [
        ([0, 0, 0], [0, 0, 0], [-500, -500, -500]),  # all failures: r_neg / (1 - gamma)
        ([0, 0, 1], [0, 0, 1], [-5.0495, -0.05, 5.0]),
        ([0, 1, 0], [0, 0, 0], [-4.9505, 0.05, -5.0]),  # ends unfinished: bootstraps 0
    ]
    for r, d, want in cases:
        got = _scaled(with_mc_returns(_rows(r, d), ANTMAZE), 10.0, -5.0)
        np.testing.assert_allclose(got, want, atol=2e-5)


def test_adroit_style_failure_reward_and_episode_split():
    spec = ReturnSpec(0.99, failure_reward=-1.0)
    got = _scaled(with_mc_returns(_rows([-1, -1, 0, 0], [0, 0, 1, 1]), spec), 10.0, 5.0)
    np.testing.assert_allclose(got, [-5.0495, -0.05, 5.0, 5.0], atol=2e-5)


def test_dense_returns_have_no_failure_rule_and_split_at_time_limits():
    t = _rows([1, 2, 3, 0, 0], [0, 0, 0, 0, 0], truncated=[0, 1, 0, 0, 0])
    got = with_mc_returns(t, ReturnSpec(0.5))
    np.testing.assert_allclose(got.mc_return, [2.0, 2.0, 3.0, 0.0, 0.0])
    np.testing.assert_allclose(got.mc_horizon, [1.5, 1.0, 1.75, 1.5, 1.0])


def _simulate(spec, rewards, dones, n_envs, window):
    """Insert rows iteration by iteration as the loop does, with the backfill after each."""
    steps = rewards.shape[0]
    buffer = replay_init(steps * n_envs, 1, 1)
    buffer = buffer._replace(data=unknown_returns(buffer.data))

    @jax.jit
    def step(buffer, r, d):
        z = jnp.zeros((n_envs, 1))
        rows = Transitions(z, z, r, z, d, jnp.zeros(n_envs, bool))
        first = buffer.position
        buffer = replay_insert(buffer, unknown_returns(rows))
        return backfill_returns(buffer, first, d, spec, window)

    for i in range(steps):
        buffer = step(buffer, jnp.asarray(rewards[i]), jnp.asarray(dones[i]))
    return buffer


def test_online_backfill_equals_the_dataset_computation():
    rng = np.random.default_rng(0)
    steps, n_envs, window = 40, 3, 6
    rewards = (rng.random((steps, n_envs)) < 0.15).astype(np.float32)
    dones = rng.random((steps, n_envs)) < 0.25
    t = np.zeros(n_envs, int)  # force the time limit: no episode longer than the window
    for i in range(steps):
        t += 1
        dones[i] |= t >= window
        t[dones[i]] = 0
    buffer = _simulate(ANTMAZE, rewards, dones, n_envs, window)
    for e in range(n_envs):
        got_g = np.asarray(buffer.data.mc_return)[e::n_envs]
        got_h = np.asarray(buffer.data.mc_horizon)[e::n_envs]
        last_end = np.flatnonzero(dones[:, e])[-1]
        ended = slice(0, last_end + 1)
        want = with_mc_returns(_rows(rewards[ended, e], dones[ended, e]), ANTMAZE)
        np.testing.assert_allclose(got_g[ended], want.mc_return, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got_h[ended], want.mc_horizon, rtol=1e-5, atol=1e-5)
        assert np.all(np.isneginf(got_g[last_end + 1 :]))  # episodes still running: no bound
    assert np.any(np.asarray(buffer.data.mc_horizon) == 100.0)  # the all-failure rule fired


def test_mlp_layer_norm_option_normalises_each_hidden_layer():
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 3)) * 10.0
    mlp = MLP((16,), layer_norm=True)
    params = mlp.init(jax.random.PRNGKey(1), x)["params"]
    assert set(params) == {"Dense_0", "LayerNorm_0"}
    pre = x @ params["Dense_0"]["kernel"] + params["Dense_0"]["bias"]
    mu, var = pre.mean(-1, keepdims=True), pre.var(-1, keepdims=True)
    want = np.maximum((pre - mu) / np.sqrt(var + 1e-6), 0.0)
    np.testing.assert_allclose(mlp.apply({"params": params}, x), want, rtol=1e-4, atol=1e-5)
    plain = MLP((16,)).init(jax.random.PRNGKey(1), x)["params"]
    assert set(plain) == {"Dense_0"}
