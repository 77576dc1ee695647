"""Gaussian and tanh-Gaussian log-probabilities and samplers; the shared networks."""

from __future__ import annotations

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxo2o.core.distributions import (
    gaussian_log_prob,
    gaussian_sample,
    tanh_gaussian_log_prob,
    tanh_gaussian_sample,
)
from jaxo2o.core.networks import CriticEnsemble, GaussianPolicy, TanhGaussianPolicy

RNG = np.random.default_rng(0)
MEAN = RNG.uniform(-0.8, 0.8, size=(6, 3)).astype(np.float32)
LOG_STD = RNG.uniform(-1.5, 0.5, size=(6, 3)).astype(np.float32)


def scipy_tanh_log_prob(mean, log_std, a):
    """log p(a) for a = tanh(u), u ~ N(mean, std): log N(atanh a) - log(1 - a^2), summed."""
    a = np.asarray(a, np.float64)
    u = np.arctanh(a)
    dens = stats.norm.logpdf(u, loc=mean, scale=np.exp(np.float64(log_std)))
    return np.sum(dens - np.log1p(-(a**2)), axis=-1)


def test_gaussian_log_prob_matches_scipy():
    x = RNG.normal(size=(6, 3)).astype(np.float32)
    got = gaussian_log_prob(MEAN, LOG_STD, x)
    want = stats.norm.logpdf(x, loc=MEAN, scale=np.exp(np.float64(LOG_STD))).sum(-1)
    assert got.shape == (6,)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_gaussian_log_prob_hand_value():
    # Standard normal in 2-D at the origin: -log(2 pi) = -1.837877.
    np.testing.assert_allclose(
        gaussian_log_prob(jnp.zeros(2), jnp.zeros(2), jnp.zeros(2)), -1.837877, rtol=1e-6
    )
    # 1-D, mean 1, std e (log_std 1), at x = 1 + e: -0.5 - 1 - 0.5 log(2 pi) = -2.418939.
    x = jnp.array([1.0 + np.e])
    np.testing.assert_allclose(gaussian_log_prob(jnp.ones(1), jnp.ones(1), x), -2.418939, rtol=1e-6)


def test_tanh_gaussian_log_prob_matches_scipy():
    a = RNG.uniform(-0.95, 0.95, size=(6, 3)).astype(np.float32)
    got = tanh_gaussian_log_prob(MEAN, LOG_STD, a)
    np.testing.assert_allclose(got, scipy_tanh_log_prob(MEAN, LOG_STD, a), rtol=1e-4, atol=1e-4)


def test_tanh_gaussian_log_prob_hand_value():
    # 1-D, mean 0, std 1, at a = tanh(0.5): log N(0.5) - log(1 - tanh(0.5)^2)
    # = -0.125 - 0.918939 + 2 log cosh(0.5) = -1.043939 + 0.240229 = -0.803710.
    a = jnp.tanh(jnp.array([0.5]))
    np.testing.assert_allclose(
        tanh_gaussian_log_prob(jnp.zeros(1), jnp.zeros(1), a), -0.803710, rtol=1e-5
    )


def test_tanh_gaussian_density_integrates_to_one():
    a = np.linspace(-1 + 1e-6, 1 - 1e-6, 200_001, dtype=np.float32)[:, None]
    for mean, log_std in [(0.0, 0.0), (0.7, -1.0), (-0.3, 0.4)]:
        lp = tanh_gaussian_log_prob(jnp.full((1,), mean), jnp.full((1,), log_std), a)
        mass = np.trapezoid(np.exp(np.asarray(lp, np.float64)), a[:, 0].astype(np.float64))
        assert abs(mass - 1.0) < 2e-3, (mean, log_std, mass)


def test_tanh_sample_log_prob_equals_log_prob_of_its_action():
    mean = jnp.asarray(RNG.uniform(-0.5, 0.5, size=(4096, 2)), jnp.float32)
    log_std = jnp.asarray(RNG.uniform(-1.5, -0.5, size=(4096, 2)), jnp.float32)
    a, lp = tanh_gaussian_sample(jax.random.PRNGKey(0), mean, log_std)
    assert a.shape == (4096, 2) and lp.shape == (4096,)
    assert float(jnp.max(jnp.abs(a))) < 1.0
    # Away from the edges, where float32 atanh loses precision.
    inner = np.asarray(jnp.max(jnp.abs(a), axis=-1) < 0.99)
    assert inner.mean() > 0.9
    np.testing.assert_allclose(
        np.asarray(lp)[inner],
        np.asarray(tanh_gaussian_log_prob(mean, log_std, a))[inner],
        atol=2e-3,
        rtol=1e-4,
    )
    np.testing.assert_allclose(
        np.asarray(lp)[inner],
        scipy_tanh_log_prob(np.asarray(mean), np.asarray(log_std), np.asarray(a))[inner],
        atol=2e-3,
        rtol=1e-4,
    )


def test_tanh_sample_distribution():
    """a = tanh(u) with u ~ N(m, s): tanh is monotone, so median(a) = tanh(m); and
    atanh(a) has mean m and std s."""
    n = 200_000
    m, log_s = 0.4, -0.7
    a, _ = tanh_gaussian_sample(jax.random.PRNGKey(1), jnp.full((n, 1), m), jnp.full((n, 1), log_s))
    a = np.asarray(a[:, 0], np.float64)
    se = np.exp(log_s) / np.sqrt(n)  # standard error of the mean of u
    assert abs(np.median(a) - np.tanh(m)) < 0.01
    u = np.arctanh(a)
    assert abs(u.mean() - m) < 5 * se
    assert abs(u.std() - np.exp(log_s)) < 0.01


def test_gaussian_sample_moments():
    n = 200_000
    x = gaussian_sample(
        jax.random.PRNGKey(2),
        jnp.full((n, 2), jnp.array([1.0, -2.0])),
        jnp.full((n, 2), jnp.array([0.0, -1.0])),
    )
    x = np.asarray(x)
    np.testing.assert_allclose(x.mean(0), [1.0, -2.0], atol=5 * 1 / np.sqrt(n))
    np.testing.assert_allclose(x.std(0), [1.0, np.exp(-1.0)], rtol=0.01)


def test_sample_gradients_flow_through_the_reparameterisation():
    """d a / d mean = 1 - tanh(u)^2 > 0 for the squashed sample (no stop-gradient)."""
    key = jax.random.PRNGKey(3)
    log_std = jnp.full((5, 1), -1.0)
    g = jax.grad(lambda m: jnp.sum(tanh_gaussian_sample(key, m, log_std)[0]))(jnp.zeros((5, 1)))
    a, _ = tanh_gaussian_sample(key, jnp.zeros((5, 1)), log_std)
    np.testing.assert_allclose(g, 1.0 - a**2, rtol=1e-5)


# ------------------------------------------------------------------ networks


@pytest.fixture(scope="module")
def ensemble():
    net = CriticEnsemble(hidden=(16, 16), n=3)
    obs = jnp.asarray(RNG.normal(size=(7, 4)), jnp.float32)
    act = jnp.asarray(RNG.uniform(-1, 1, size=(7, 2)), jnp.float32)
    params = net.init(jax.random.PRNGKey(0), obs, act)["params"]
    return net, params, obs, act


def test_critic_ensemble_shape_and_distinct_members(ensemble):
    net, params, obs, act = ensemble
    q = np.asarray(net.apply({"params": params}, obs, act))
    assert q.shape == (3, 7)
    for i in range(3):
        for j in range(i + 1, 3):
            assert not np.allclose(q[i], q[j]), (i, j)
    # Every parameter carries the member axis, and members were initialised differently.
    for leaf in jax.tree.leaves(params):
        assert leaf.shape[0] == 3
    kernels = [np.asarray(x) for x in jax.tree.leaves(params) if x.ndim == 3]
    assert len(kernels) == 3  # two hidden layers and the output layer
    for k in kernels:
        assert not np.allclose(k[0], k[1]) and not np.allclose(k[1], k[2])


def test_critic_ensemble_members_are_independent(ensemble):
    """Member 0's output depends only on member 0's parameters."""
    net, params, obs, act = ensemble
    grads = jax.grad(lambda p: jnp.sum(net.apply({"params": p}, obs, act)[0]))(params)
    for leaf in jax.tree.leaves(grads):
        g = np.asarray(leaf)
        assert np.any(g[0] != 0.0)
        np.testing.assert_array_equal(g[1:], 0.0)


def test_critic_ensemble_batch_shapes(ensemble):
    net, params, _, _ = ensemble
    q = net.apply({"params": params}, jnp.zeros((5, 11, 4)), jnp.zeros((5, 11, 2)))
    assert q.shape == (3, 5, 11)


def test_gaussian_policy_head():
    net = GaussianPolicy(action_size=2, hidden=(8,), log_std_min=-5.0, log_std_max=2.0)
    obs = 100.0 * jnp.asarray(RNG.normal(size=(9, 3)), jnp.float32)
    params = net.init(jax.random.PRNGKey(0), obs)["params"]
    mean, log_std = net.apply({"params": params}, obs)
    assert mean.shape == log_std.shape == (9, 2)
    assert float(jnp.max(jnp.abs(mean))) <= 1.0  # tanh-bounded mean
    np.testing.assert_array_equal(log_std, 0.0)  # state-independent, initialised at 0
    params = jax.tree.map(lambda x: x, params)
    params["log_std"] = jnp.array([-9.0, 5.0])
    _, log_std = net.apply({"params": params}, obs)
    np.testing.assert_array_equal(log_std, np.broadcast_to([-5.0, 2.0], (9, 2)))


def test_tanh_gaussian_policy_head():
    net = TanhGaussianPolicy(action_size=2, hidden=(8,), log_std_min=-20.0, log_std_max=2.0)
    obs = jnp.asarray(RNG.normal(size=(9, 3)), jnp.float32)
    params = net.init(jax.random.PRNGKey(0), obs)["params"]
    mean, log_std = net.apply({"params": params}, obs)
    assert mean.shape == log_std.shape == (9, 2)
    assert not np.allclose(log_std, log_std[0])  # state-dependent log-std
    _, big = net.apply({"params": params}, 1e4 * obs)
    assert float(big.max()) <= 2.0 and float(big.min()) >= -20.0


_VMAPPED_INIT = """
import jax, jax.numpy as jnp
from jaxo2o.core.networks import MLP
nets = [MLP((32, 32), 1) for _ in range(3)]
def init(key):
    return [n.init(k, jnp.zeros((1, 4))) for n, k in zip(nets, jax.random.split(key, 3))]
f = jax.jit(jax.vmap(init))
for i in range(50):
    jax.block_until_ready(f(jax.random.split(jax.random.PRNGKey(i), 8)))
print("done")
"""


def test_vmapped_orthogonal_init_does_not_hang():
    """Regression: with flax's plain orthogonal init, initialising independent networks
    vmapped over 8 seeds hung forever on a 2-core CPU (concurrent batched LAPACK QRs
    deadlock jaxlib 0.10's intra-op pool; see `networks._one_key_at_a_time`). It takes a
    few seconds when fixed; run in a subprocess so a regression fails instead of hanging."""
    try:
        out = subprocess.run(
            [sys.executable, "-c", _VMAPPED_INIT], capture_output=True, text=True, timeout=240
        )
    except subprocess.TimeoutExpired:
        pytest.fail("vmapped network init hung (batched LAPACK QR deadlock)")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "done" in out.stdout


def test_vmapped_init_equals_single_init_bitwise():
    net = CriticEnsemble(hidden=(16, 16), n=2)
    obs, act = jnp.zeros((1, 4)), jnp.zeros((1, 2))
    keys = jax.random.split(jax.random.PRNGKey(5), 3)
    init = lambda k: net.init(k, obs, act)
    batched = jax.jit(jax.vmap(init))(keys)
    single_init = jax.jit(init)
    for i in range(3):
        single = single_init(keys[i])
        for b, s in zip(jax.tree.leaves(batched), jax.tree.leaves(single), strict=True):
            np.testing.assert_array_equal(np.asarray(b)[i], np.asarray(s))


def test_iql_policy_layers_are_orthogonal_with_scale_sqrt2():
    """Official IQL initialises every policy layer, the mean's included, orthogonally at scale
    sqrt(2): a kernel's singular values all equal sqrt(2); the log-std starts at 0."""
    net = GaussianPolicy(action_size=3, hidden=(16, 16))
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, 5)))["params"]
    kernels = [np.asarray(x) for x in jax.tree.leaves(params) if x.ndim == 2]
    assert sorted(k.shape for k in kernels) == [(5, 16), (16, 3), (16, 16)]
    for k in kernels:
        np.testing.assert_allclose(np.linalg.svd(k, compute_uv=False), np.sqrt(2.0), rtol=1e-5)
    np.testing.assert_array_equal(params["log_std"], 0.0)
