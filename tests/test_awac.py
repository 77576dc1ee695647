"""AWAC: critic target, critic and actor losses on a tiny batch with hand-set networks, against
numbers worked out by hand; the update order; the policy head; validation; CORL's observation
normalization with the dataset's statistics (training, acting and evaluation)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxo2o.config import ConfigError, EnvConfig, RunConfig, run_hparams
from jaxo2o.core.loop import Trainer
from jaxo2o.core.optim import NetState
from jaxo2o.core.transitions import Transitions
from jaxo2o.envs import make_env
from jaxo2o.experiment import Experiment, plan, with_observation_statistics
from jaxo2o.methods import get_method
from jaxo2o.methods.awac import (
    AWAC,
    AWACConfig,
    AWACState,
    awac_actor_loss,
    awac_advantage,
    awac_preset,
)

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def normal_logp(x: float, mean: float = 0.0, std: float = 1.0) -> float:
    return -0.5 * ((x - mean) / std) ** 2 - math.log(std) - LOG_SQRT_2PI


def f32(x):
    return jnp.asarray(x, jnp.float32)


def test_actor_loss_weights_divide_by_lambda_and_clip_at_100():
    log_prob_fn = lambda p, obs, a: -0.5 * ((a[:, 0] - p) ** 2) - LOG_SQRT_2PI
    act = f32([[0.2], [-0.4], [0.7]])
    adv = f32([1.0, 3.0, -0.5])  # lambda 0.5: exp(2), exp(6) = 403 -> 100, exp(-1)
    loss, m = awac_actor_loss(f32(0.0), log_prob_fn, None, act, adv, f32(0.5))
    w = [math.exp(2.0), 100.0, math.exp(-1.0)]
    logp = [normal_logp(0.2), normal_logp(-0.4), normal_logp(0.7)]
    expected = -sum(wi * li for wi, li in zip(w, logp, strict=True)) / 3
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    assert float(m["weight_max"]) == 100.0


def _hand_state(awac: AWAC, hp) -> AWACState:
    """obs and action 1-D, one hidden layer of width 2, weights set by hand:
    Q1(s, a) = s - a and Q2(s, a) = s - 2a (for s > 0, a < 2), targets equal to the critics;
    policy mean 5 (unbounded), log-std 0, so every clamped sample is 1."""
    state = awac.init(jax.random.PRNGKey(0), 1, 1, hp)
    z = lambda tree: jax.tree.map(jnp.zeros_like, tree)
    critic = z(state.critic.params)
    d0 = critic["VmapCritic_0"]["MLP_0"]["Dense_0"]
    d0["kernel"] = d0["kernel"].at[:, 1, 0].set(-1.0).at[:, 0, 1].set(1.0)  # inputs are [s, a]
    d0["bias"] = d0["bias"].at[:, 0].set(2.0)  # hidden = [relu(2 - a), relu(s)]
    d1 = critic["VmapCritic_0"]["MLP_0"]["Dense_1"]
    d1["kernel"] = f32([[[1.0], [1.0]], [[2.0], [1.0]]])
    d1["bias"] = f32([[-2.0], [-4.0]])
    actor = z(state.actor.params)
    actor["Dense_0"]["bias"] = f32([5.0])
    return AWACState(
        actor=NetState(actor, state.actor.opt_state),
        critic=NetState(critic, state.critic.opt_state),
        target_critic=critic,
    )


BATCH = Transitions(
    obs=f32([[1.0], [2.0], [1.0]]),
    action=f32([[0.9], [-0.5], [0.0]]),
    reward=f32([0.5, 0.5, 0.5]),
    next_obs=f32([[3.0], [4.0], [5.0]]),
    terminated=jnp.array([False, True, False]),  # row 2 is terminal,
    truncated=jnp.array([False, False, True]),  # row 3 is cut by the time limit: it bootstraps
)


def test_update_by_hand():
    """Critic: a' = clamp(sample) = 1, so min Qbar(s', 1) = s' - 2 = [1, 2, 3];
    y = 0.5 + 0.99 * mask * [1, 2, 3] = [1.49, 0.5, 3.47];
    Q1 = s - a = [0.1, 2.5, 1], Q2 = s - 2a = [-0.8, 3, 1]; loss = sum of the two MSEs.
    Actor (critic rate ~0 so Q is unchanged): min Q(s, a) = [-0.8, 2.5, 1],
    min Q(s, 1) = [-1, 0, -1], A = [0.2, 2.5, 2]; lambda = 0.1: w = [e^2, 100, 100];
    log pi(a|s) = log N(a; 5, 1)."""
    awac = AWAC(AWACConfig(hidden=(2,)))
    hp = awac.default_hparams(awac_lambda=0.1, critic_lr=1e-9)
    state = _hand_state(awac, hp)
    q = awac.q(state.critic.params, BATCH.obs, BATCH.action)
    np.testing.assert_allclose(q, [[0.1, 2.5, 1.0], [-0.8, 3.0, 1.0]], rtol=1e-6, atol=1e-7)
    new, m = jax.jit(awac.update, static_argnums=4)(state, BATCH, jax.random.PRNGKey(0), hp, False)

    y = [1.49, 0.5, 3.47]
    q1, q2 = [0.1, 2.5, 1.0], [-0.8, 3.0, 1.0]
    mse = lambda q: sum((qi - yi) ** 2 for qi, yi in zip(q, y, strict=True)) / 3
    assert float(m["critic_loss"]) == pytest.approx(mse(q1) + mse(q2), rel=1e-5)

    w = [math.exp(2.0), 100.0, 100.0]
    logp = [normal_logp(a, 5.0) for a in (0.9, -0.5, 0.0)]
    expected = -sum(wi * li for wi, li in zip(w, logp, strict=True)) / 3
    assert float(m["actor_loss"]) == pytest.approx(expected, rel=1e-5)
    assert float(m["adv_mean"]) == pytest.approx((0.2 + 2.5 + 2.0) / 3, rel=1e-5)


def test_actor_uses_the_updated_critic_and_target_follows_it():
    awac = AWAC(AWACConfig(hidden=(2,)))
    hp = awac.default_hparams(awac_lambda=1.0, critic_lr=0.2)
    state = _hand_state(awac, hp)
    new, m = jax.jit(awac.update, static_argnums=4)(state, BATCH, jax.random.PRNGKey(0), hp, False)
    a_pi = jnp.ones_like(BATCH.action)  # every clamped policy sample is 1 here

    def loss_with(critic_params):
        adv = awac_advantage(awac.q, critic_params, BATCH.obs, BATCH.action, a_pi)
        return float(
            awac_actor_loss(
                state.actor.params, awac.log_prob, BATCH.obs, BATCH.action, adv, hp.awac_lambda
            )[0]
        )

    assert float(m["actor_loss"]) == pytest.approx(loss_with(new.critic.params), rel=1e-5)
    assert abs(loss_with(new.critic.params) - loss_with(state.critic.params)) > 0.1
    expected_target = jax.tree.map(
        lambda t, c: 0.995 * t + 0.005 * c, state.target_critic, new.critic.params
    )
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
        new.target_critic,
        expected_target,
    )


def test_policy_head_unbounded_mean_clamped_log_std_and_acting():
    awac = AWAC(AWACConfig(hidden=(2,)))
    hp = awac.default_hparams()
    state = _hand_state(awac, hp)
    params = dict(state.actor.params, log_std=f32([-30.0]))
    mean, log_std = awac.policy(params, BATCH.obs)
    np.testing.assert_array_equal(mean, 5.0)  # no tanh on the mean
    np.testing.assert_array_equal(log_std, -20.0)
    _, log_std = awac.policy(dict(params, log_std=f32([5.0])), BATCH.obs)
    np.testing.assert_array_equal(log_std, 2.0)
    a_det, _ = awac.act(state, BATCH.obs, jax.random.PRNGKey(0), hp, deterministic=True)
    np.testing.assert_array_equal(a_det, 1.0)  # the mean, clipped to the action box
    params = dict(state.actor.params, Dense_0={"kernel": f32([[0.0], [0.0]]), "bias": f32([0.0])})
    state = state._replace(actor=NetState(params, state.actor.opt_state))
    obs = jnp.ones((256, 1))
    a_sto, _ = awac.act(state, obs, jax.random.PRNGKey(1), hp, deterministic=False)
    assert np.all(np.abs(a_sto) <= 1.0)
    assert 0.5 < float(jnp.std(a_sto)) < 1.0  # N(0, 1) clamped to [-1, 1]: std ~0.74


def test_validation_presets_and_registry():
    awac = AWAC()
    with pytest.raises(ConfigError, match="awac.awac_lambda"):
        awac.default_hparams(awac_lambda=0.0)
    with pytest.raises(ConfigError, match="awac.discount"):
        awac.default_hparams(discount=1.5)
    with pytest.raises(ConfigError, match="awac.reward_normalization"):
        AWACConfig(reward_normalization="scale")
    cfg, hp = awac_preset("antmaze")
    assert float(hp.awac_lambda) == pytest.approx(0.1)
    assert cfg.reward_normalization == "minus_one" and cfg.hidden == (256, 256, 256)
    _, hp = awac_preset("locomotion")
    assert float(hp.awac_lambda) == 1.0
    assert get_method("awac") is AWAC


def test_runs_through_the_trainer():
    env = make_env("point", episode_length=10)
    run = RunConfig(
        offline_steps=20,
        online_steps=20,
        offline_eval_every=20,
        online_eval_every=20,
        batch_size=16,
        eval_episodes=2,
        progress=False,
    )
    awac = AWAC(AWACConfig(hidden=(16, 16)))
    k_s, k_a = jax.random.split(jax.random.PRNGKey(5))
    states = jax.vmap(env.reset)(jax.random.split(k_s, 64))
    action = jax.random.uniform(k_a, (64, 2), minval=-1.0, maxval=1.0)
    _, res = jax.vmap(env.step)(states, action)
    data = Transitions(states.obs, action, res.reward, res.next_obs, res.terminated, res.truncated)
    state, out = jax.jit(Trainer(awac, env, run).train)(
        jax.random.PRNGKey(0), awac.default_hparams(), run_hparams(run), data
    )
    for phase in ("offline", "online"):
        for name in ("critic_loss", "actor_loss"):
            assert np.all(np.isfinite(out[phase][name]))
    assert int(state.actor.opt_state[0].count) == run.offline_steps + run.online_steps


# ------------------------------------------------------------------ observation normalization
@dataclass(frozen=True)
class FakeDataset:
    """The fields of `jaxo2o.data.OfflineDataset` an experiment reads."""

    dataset_id: str
    transitions: Transitions
    ref_min_score: float = 0.0
    ref_max_score: float = 50.0
    episode_returns: np.ndarray = field(default_factory=lambda: np.array([10.0, 30.0]))


LOC, SCALE = np.array([5.0, -3.0, 0.0, 100.0]), np.array([10.0, 0.1, 1.0, 50.0])


def scaled_dataset(n: int = 512) -> FakeDataset:
    """Observations of 4 dimensions with very different means and scales."""
    rng = np.random.default_rng(0)
    obs = (LOC + SCALE * rng.standard_normal((n, 4))).astype(np.float32)
    t = Transitions(
        obs=obs,
        action=rng.uniform(-1, 1, (n, 2)).astype(np.float32),
        reward=rng.uniform(0, 1, n).astype(np.float32),
        next_obs=(obs + 0.1).astype(np.float32),
        terminated=np.zeros(n, bool),
        truncated=np.zeros(n, bool),
    )
    return FakeDataset("test/point/scaled-v0", t)


def normalized_awac(ds: FakeDataset) -> AWAC:
    return with_observation_statistics(
        AWAC(AWACConfig(hidden=(8, 8), obs_normalization="dataset")), ds
    )


def test_statistics_come_from_the_dataset_and_normalize_it():
    """CORL: mean and std (+ 1e-3) of the dataset's observations, computed once on the host;
    the dataset's observations then enter every network with mean 0 and std 1 (up to the eps)."""
    ds = scaled_dataset()
    awac = normalized_awac(ds)
    obs = np.asarray(ds.transitions.obs, np.float64)
    np.testing.assert_allclose(awac.config.obs_mean, obs.mean(0), rtol=1e-6)
    np.testing.assert_allclose(awac.config.obs_std, obs.std(0) + 1e-3, rtol=1e-6)
    z = np.asarray(awac.normalize_obs(jnp.asarray(ds.transitions.obs)), np.float64)
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(z.std(0), obs.std(0) / (obs.std(0) + 1e-3), rtol=1e-4)
    assert np.all(np.abs(z.std(0) - 1.0) < 0.02)  # the 0.1-scale dimension: 0.1 / 0.101
    # one observation (no batch axis) is normalized as a batch's row is
    one = awac.normalize_obs(jnp.asarray(ds.transitions.obs[0]))
    batch = awac.normalize_obs(jnp.asarray(ds.transitions.obs))
    np.testing.assert_allclose(one, batch[0], rtol=1e-6, atol=1e-7)
    # a method that asks for no normalization comes back as it was
    plain = AWAC(AWACConfig(hidden=(8, 8)))
    assert with_observation_statistics(plain, ds) is plain
    z = np.asarray(plain.normalize_obs(jnp.asarray(ds.transitions.obs)))
    np.testing.assert_array_equal(z, ds.transitions.obs)


def test_every_network_input_is_normalized():
    """The actor and the critics (hence the TD target at s' and the advantage at s) see
    (s - mean) / std: the normalizing method at raw observations is the plain method at
    normalized ones, bit for bit."""
    ds = scaled_dataset()
    awac, plain = normalized_awac(ds), AWAC(AWACConfig(hidden=(8, 8)))
    hp = awac.default_hparams()
    state = awac.init(jax.random.PRNGKey(0), 4, 2, hp)
    mean, std = jnp.asarray(awac.config.obs_mean), jnp.asarray(awac.config.obs_std)
    raw = jnp.asarray(ds.transitions.obs[:32])
    z = (raw - mean) / std
    act = jnp.asarray(ds.transitions.action[:32])
    (m_a, s_a), (m_b, s_b) = (
        awac.policy(state.actor.params, raw),
        plain.policy(state.actor.params, z),
    )
    np.testing.assert_array_equal(m_a, m_b)
    np.testing.assert_array_equal(s_a, s_b)
    np.testing.assert_array_equal(
        awac.q(state.critic.params, raw, act), plain.q(state.critic.params, z, act)
    )
    # a whole update: the same as the plain method's on the normalized batch
    batch = jax.tree.map(lambda x: jnp.asarray(x[:32]), ds.transitions)
    norm_batch = batch._replace(obs=z, next_obs=(batch.next_obs - mean) / std)
    key = jax.random.PRNGKey(3)
    new, _ = awac.update(state, batch, key, hp, online=False)
    new_plain, _ = plain.update(state, norm_batch, key, hp, online=False)
    jax.tree.map(np.testing.assert_array_equal, new, new_plain)


class NormalizedObsEnv:
    """CORL's `wrap_env`: the environment itself returns (s - mean) / std."""

    def __init__(self, env, mean, std):
        self.env, self.mean, self.std = env, jnp.asarray(mean), jnp.asarray(std)
        self.name, self.episode_length = env.name, env.episode_length
        self.observation_size, self.action_size = env.observation_size, env.action_size

    def _norm(self, obs):
        return (obs - self.mean) / self.std

    def reset(self, key):
        s = self.env.reset(key)
        return s._replace(obs=self._norm(s.obs))

    def step(self, state, action):
        s, res = self.env.step(state, action)
        return s._replace(obs=self._norm(s.obs)), res._replace(next_obs=self._norm(res.next_obs))


def test_evaluation_and_acting_use_the_same_statistics():
    """Evaluation episodes (and online acting, the same `act`) of the normalizing method on the
    raw environment equal the plain method's on CORL's normalized environment, and differ from
    the plain method's on the raw one."""
    env = make_env("point", episode_length=20)
    ds = scaled_dataset()
    awac, plain = normalized_awac(ds), AWAC(AWACConfig(hidden=(8, 8)))
    wrapped = NormalizedObsEnv(env, awac.config.obs_mean, awac.config.obs_std)
    run = RunConfig(online_steps=0, eval_episodes=4, progress=False)
    hp = awac.default_hparams()
    state = awac.init(jax.random.PRNGKey(1), 4, 2, hp)
    key = jax.random.PRNGKey(2)
    ours = Trainer(awac, env, run).evaluate(state, key, hp)
    corl = Trainer(plain, wrapped, run).evaluate(state, key, hp)
    unnormalized = Trainer(plain, env, run).evaluate(state, key, hp)
    np.testing.assert_array_equal(ours.returns, corl.returns)
    assert not np.array_equal(ours.returns, unnormalized.returns)
    obs = env.reset(jax.random.PRNGKey(4)).obs[None]
    for det in (True, False):
        a, _ = awac.act(state, obs, key, hp, det)
        np.testing.assert_array_equal(a, plain.act(state, wrapped._norm(obs), key, hp, det)[0])


def test_normalization_through_the_experiment_and_its_errors():
    ds = scaled_dataset()
    exp = Experiment(
        method="awac",
        env=EnvConfig(task="point", episode_length=20),
        run=RunConfig(offline_steps=10, online_steps=20, offline_eval_every=10,
                      online_eval_every=10, batch_size=16, eval_episodes=1, progress=False),
        dataset=ds.dataset_id,
        seeds=1,
        method_config=("hidden=8,8", "obs_normalization=dataset"),
    )  # fmt: skip
    p = plan(exp, ds)
    assert p.method.config.obs_mean == normalized_awac(ds).config.obs_mean
    assert p.trainer.method is p.method
    # the presets and the suite ask for it
    assert awac_preset("locomotion")[0].obs_normalization == "dataset"
    assert awac_preset("antmaze")[0].obs_normalization == "dataset"
    with pytest.raises(ConfigError, match="obs_normalization"):
        with_observation_statistics(AWAC(AWACConfig(obs_normalization="dataset")), None)
    with pytest.raises(ConfigError, match="awac.obs_mean: obs_normalization='dataset' needs"):
        AWAC(AWACConfig(hidden=(8,), obs_normalization="dataset")).init(
            jax.random.PRNGKey(0), 4, 2, AWAC().default_hparams()
        )
    with pytest.raises(ConfigError, match="awac.obs_mean: 4 values for observations of size 3"):
        normalized_awac(ds).init(jax.random.PRNGKey(0), 3, 2, AWAC().default_hparams())
    with pytest.raises(ConfigError, match="awac.obs_normalization"):
        AWACConfig(obs_normalization="running")
    with pytest.raises(ConfigError, match="awac.obs_mean"):
        AWACConfig(obs_mean=(0.0,), obs_std=(1.0,))
    with pytest.raises(ConfigError, match="awac.obs_std"):
        AWACConfig(obs_normalization="dataset", obs_mean=(0.0,), obs_std=(0.0,))
