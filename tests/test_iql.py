"""IQL: each loss on a tiny fixed batch against numbers worked out by hand, the update order,
the actor's schedules (cosine offline recipe, constant fine-tuning recipe), validation, and one
compilation serving several expectiles."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxo2o.config import ConfigError, RunConfig, run_hparams
from jaxo2o.core.loop import Trainer
from jaxo2o.core.optim import NetState
from jaxo2o.core.runner import broadcast_tree, stack_trees
from jaxo2o.core.transitions import Transitions
from jaxo2o.envs import make_env
from jaxo2o.methods import get_method
from jaxo2o.methods.iql import (
    IQL,
    IQLConfig,
    IQLState,
    iql_actor_loss,
    iql_critic_loss,
    iql_critic_target,
    iql_preset,
    iql_value_loss,
)

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def normal_logp(x: float, mean: float = 0.0, std: float = 1.0) -> float:
    return -0.5 * ((x - mean) / std) ** 2 - math.log(std) - LOG_SQRT_2PI


def f32(x):
    return jnp.asarray(x, jnp.float32)


# ------------------------------------------------------------------ pure losses
def test_expectile_loss_is_asymmetric():
    # u = Q - V = [+1, -2]; tau = 0.7 -> (0.7 * 1 + 0.3 * 4) / 2 = 0.95
    v_fn = lambda p, obs: p
    v = f32([0.0, 0.0])
    q = f32([1.0, -2.0])
    loss, _ = iql_value_loss(v, v_fn, None, q, f32(0.7))
    assert float(loss) == pytest.approx(0.95, rel=1e-6)
    # tau = 0.5 is half the plain MSE: 0.5 * (1 + 4) / 2
    loss, _ = iql_value_loss(v, v_fn, None, q, f32(0.5))
    assert float(loss) == pytest.approx(1.25, rel=1e-6)
    # gradient dL/dV_i = -2 w_i u_i / B: [-0.7, +0.6]; the target gets no gradient
    g = jax.grad(lambda v: iql_value_loss(v, v_fn, None, q, f32(0.7))[0])(v)
    np.testing.assert_allclose(g, [-0.7, 0.6], rtol=1e-6)
    gq = jax.grad(lambda q: iql_value_loss(v, v_fn, None, q, f32(0.7))[0])(q)
    np.testing.assert_array_equal(gq, [0.0, 0.0])


def test_actor_weights_clip_at_100_and_dataset_actions_are_clipped():
    # unit Gaussian policy in 1-D; beta = 3
    log_prob_fn = lambda p, obs, a: -0.5 * ((a[:, 0] - p["mean"]) ** 2) - LOG_SQRT_2PI
    params = {"mean": f32(0.0)}
    adv = f32([2.0, 0.5, -1.0])  # exp(6) = 403 > 100 -> 100; exp(1.5); exp(-3)
    # 1.5 is clipped to 1 - 1e-5 before the log-prob (on the heaviest row, so that a clip at
    # 1 + 1e-5 would move the loss by 1e-5 of itself)
    act = f32([[1.5], [0.5], [0.0]])
    loss, m = iql_actor_loss(params, log_prob_fn, None, act, adv, f32(3.0))
    w = [100.0, math.exp(1.5), math.exp(-3.0)]
    logp = [normal_logp(1.0 - 1e-5), normal_logp(0.5), normal_logp(0.0)]
    expected = -sum(wi * li for wi, li in zip(w, logp, strict=True)) / 3
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    assert float(m["weight_max"]) == 100.0
    # effective sample size share: (sum w)^2 / (n sum w^2)
    ess = sum(w) ** 2 / (3 * sum(x * x for x in w))
    assert float(m["weight_ess"]) == pytest.approx(ess, rel=1e-6)
    # inverse temperature 0 is behaviour cloning: every weight is 1
    loss_bc, m_bc = iql_actor_loss(params, log_prob_fn, None, act, adv, f32(0.0))
    assert float(loss_bc) == pytest.approx(-sum(logp) / 3, rel=1e-6)
    assert float(m_bc["weight_mean"]) == 1.0
    assert float(m_bc["weight_ess"]) == pytest.approx(1.0, rel=1e-6)
    # per-sample inverse temperatures (FamO2O): beta = [0, 1, 2]
    loss_ps, _ = iql_actor_loss(params, log_prob_fn, None, act, adv, f32([0.0, 1.0, 2.0]))
    w_ps = [1.0, math.exp(0.5), math.exp(-2.0)]  # 0 x 2, 1 x 0.5, 2 x -1
    expected_ps = -sum(wi * li for wi, li in zip(w_ps, logp, strict=True)) / 3
    assert float(loss_ps) == pytest.approx(expected_ps, rel=1e-6)


def test_critic_target_masks_terminal_but_bootstraps_truncated():
    # three transitions: ordinary, terminal, time-limit truncated; V(s') = 10 everywhere
    batch = Transitions(
        obs=jnp.zeros((3, 1)),
        action=jnp.zeros((3, 1)),
        reward=f32([1.0, 1.0, 1.0]),
        next_obs=jnp.zeros((3, 1)),
        terminated=jnp.array([False, True, False]),
        truncated=jnp.array([False, False, True]),
    )
    v_fn = lambda p, obs: jnp.full(obs.shape[0], 10.0)
    y = iql_critic_target(v_fn, None, batch.reward, batch.mask, batch.next_obs, f32(0.99))
    np.testing.assert_allclose(y, [10.9, 1.0, 10.9], rtol=1e-6)

    q_fn = lambda p, obs, a: p
    q = f32([[10.9, 2.0, 10.9], [9.9, 1.0, 12.9]])  # errors [0, 1, 0] and [-1, 0, 2]
    loss_sum, _ = iql_critic_loss(q, q_fn, None, None, y)
    loss_mean, _ = iql_critic_loss(q, q_fn, None, None, y, reduction="mean")
    assert float(loss_sum) == pytest.approx(1 / 3 + 5 / 3, rel=1e-5)  # official: summed
    assert float(loss_mean) == pytest.approx(1.0, rel=1e-5)  # PEX / CORL: averaged


def test_polyak_target_update():
    iql = IQL()
    hp = iql.default_hparams()  # tau = 0.005
    new = iql.target_step({"w": f32([0.0, 2.0])}, {"w": f32([1.0, 4.0])}, hp)
    np.testing.assert_allclose(new["w"], [0.005, 2.01], rtol=1e-6)


# ------------------------------------------------------------------ the actor's learning rate
def test_cosine_schedule_offline_and_constant_online():
    iql = IQL(IQLConfig(offline_steps=1000))
    hp = iql.default_hparams(actor_lr=3e-4)
    lr = iql.actor_learning_rate(hp, online=False)
    assert float(lr(0)) == pytest.approx(3e-4, rel=1e-6)
    assert float(lr(250)) == pytest.approx(3e-4 * 0.5 * (1 + math.cos(math.pi / 4)), rel=1e-5)
    assert float(lr(500)) == pytest.approx(1.5e-4, rel=1e-5)
    assert float(lr(1000)) == pytest.approx(0.0, abs=1e-12)
    assert float(lr(1500)) == pytest.approx(0.0, abs=1e-12)  # stays at 0 past the horizon
    online = iql.actor_learning_rate(hp, online=True)
    for count in (0, 500, 1000, 5000):
        assert float(online(count)) == pytest.approx(3e-4, rel=1e-6)
    no_decay = IQL(IQLConfig(offline_steps=0)).actor_learning_rate(hp, online=False)
    assert float(no_decay(700)) == pytest.approx(3e-4, rel=1e-6)


def test_constant_schedule_keeps_the_rate_in_both_phases():
    """actor_schedule="constant" (official IQL fine-tuning): actor_lr at the start, middle and
    end of the offline horizon and online, whatever the step count."""
    iql = IQL(IQLConfig(offline_steps=1000, actor_schedule="constant"))
    hp = iql.default_hparams(actor_lr=3e-4)
    for online in (False, True):
        lr = iql.actor_learning_rate(hp, online)
        for count in (0, 500, 999, 1000, 1500, 5000):
            assert float(lr(count)) == pytest.approx(3e-4, rel=1e-6), (online, count)
    # the default stays the offline recipe: cosine offline
    assert IQLConfig().actor_schedule == "cosine"
    assert float(IQL(IQLConfig(offline_steps=1000)).actor_learning_rate(hp, False)(500)) == (
        pytest.approx(1.5e-4, rel=1e-5)
    )
    with pytest.raises(ConfigError, match="iql.actor_schedule"):
        IQLConfig(actor_schedule="linear")


def test_constant_schedule_through_a_direct_run_keeps_one_adam_state():
    """A direct run with the constant schedule: the actor's rate reported in every offline and
    online interval is actor_lr (a cosine run's falls offline), and one Adam state counts every
    update of both phases (official `train_finetune.py`: one Learner throughout)."""
    env = make_env("point", episode_length=10)
    run = RunConfig(
        offline_steps=30,
        online_steps=20,
        offline_eval_every=10,
        online_eval_every=10,
        batch_size=16,
        eval_episodes=1,
        protocol="direct",
        progress=False,
    )
    dataset = _point_dataset(env, 64, jax.random.PRNGKey(7))
    lrs = {}
    for schedule in ("constant", "cosine"):
        iql = IQL(IQLConfig(hidden=(8,), offline_steps=30, actor_schedule=schedule))
        hp = iql.default_hparams(actor_lr=1e-3)
        state, out = jax.jit(Trainer(iql, env, run).train)(
            jax.random.PRNGKey(0), hp, run_hparams(run), dataset
        )
        lrs[schedule] = [np.asarray(out[p]["actor_lr"]) for p in ("offline", "online")]
        assert int(state.actor.opt_state[1].count) == run.offline_steps + run.online_steps
    offline, online = lrs["constant"]
    np.testing.assert_allclose(offline, 1e-3, rtol=1e-6)  # 3 offline intervals: start..end
    np.testing.assert_allclose(online, 1e-3, rtol=1e-6)  # 2 online intervals
    offline, online = lrs["cosine"]
    assert offline[0] > offline[1] > offline[2] and offline[2] < 2e-4
    np.testing.assert_allclose(online, 1e-3, rtol=1e-6)


def _tiny_batch(obs_size=1, act_size=1):
    k = jax.random.split(jax.random.PRNGKey(3), 3)
    return Transitions(
        obs=jax.random.normal(k[0], (4, obs_size)),
        action=jax.random.uniform(k[1], (4, act_size), minval=-1, maxval=1),
        reward=f32([0.0, 1.0, 0.5, -1.0]),
        next_obs=jax.random.normal(k[2], (4, obs_size)),
        terminated=jnp.array([False, True, False, False]),
        truncated=jnp.array([False, False, True, False]),
    )


def test_actor_step_uses_the_scheduled_rate():
    """Adam's first step moves each parameter by lr * g / (|g| + eps) ~= lr: set the schedule's
    step count to half the horizon and the actor's bias moves by lr / 2."""
    iql = IQL(IQLConfig(hidden=(4,), offline_steps=1000))
    hp = iql.default_hparams(actor_lr=1e-2)
    state = iql.init(jax.random.PRNGKey(0), 1, 1, hp)
    adam, sched = state.actor.opt_state
    actor = NetState(state.actor.params, (adam, sched._replace(count=jnp.int32(500))))
    batch = _tiny_batch()
    new, m = iql.actor_step(actor, state.target_critic, state.value.params, batch, hp, False)
    assert float(m["actor_lr"]) == pytest.approx(5e-3, rel=1e-5)
    step = np.abs(np.asarray(new.params["Dense_0"]["bias"] - actor.params["Dense_0"]["bias"]))
    np.testing.assert_allclose(step, 5e-3, rtol=1e-4)
    assert int(new.opt_state[1].count) == 501
    # online: the constant rate, whatever the count
    new_on, m_on = iql.actor_step(actor, state.target_critic, state.value.params, batch, hp, True)
    assert float(m_on["actor_lr"]) == pytest.approx(1e-2, rel=1e-6)
    step = np.abs(np.asarray(new_on.params["Dense_0"]["bias"] - actor.params["Dense_0"]["bias"]))
    np.testing.assert_allclose(step, 1e-2, rtol=1e-4)


# ------------------------------------------------------------------ one full update, by hand
def _hand_state(iql: IQL, hp) -> IQLState:
    """obs and action are 1-D, one hidden layer of width 2, weights set by hand:
    V(s) = 0;  target critics Qbar1 = s, Qbar2 = 2 s;  online critics Q1 = 5 s, Q2 = 6 s (s > 0);
    policy mean = tanh(0) = 0, log-std 0."""
    state = iql.init(jax.random.PRNGKey(0), 1, 1, hp)
    z = lambda tree: jax.tree.map(jnp.zeros_like, tree)
    value = z(state.value.params)
    value["MLP_0"]["Dense_0"]["bias"] = f32([1.0, 0.0])  # hidden = [1, 0]; output weights 0

    def critic(w1, w2):
        p = z(state.critic.params)
        d0 = p["VmapCritic_0"]["MLP_0"]["Dense_0"]
        d0["kernel"] = d0["kernel"].at[:, 0, 0].set(1.0)  # hidden0 = relu(s)
        d1 = p["VmapCritic_0"]["MLP_0"]["Dense_1"]
        d1["kernel"] = d1["kernel"].at[:, 0, 0].set(f32([w1, w2]))
        return p

    actor = z(state.actor.params)
    tx_c, tx_v = jax.tree.map(jnp.zeros_like, state.critic.opt_state), state.value.opt_state
    return IQLState(
        actor=NetState(actor, iql.actor_tx(hp, False).init(actor)),
        critic=NetState(critic(5.0, 6.0), tx_c),
        target_critic=critic(1.0, 2.0),
        value=NetState(value, tx_v),
    )


def test_full_update_order_by_hand():
    """V (target critics) -> actor (target critics, new V) -> Q (new V) -> target (new Q).

    Batch: s = [1, 3], a = [0.5, -0.5], r = [0, 0], s' terminal for the second row.
    1. V: u = min(Qbar)(s, a) - V(s) = [1, 3] - 0 > 0; loss = 0.7 (1 + 9) / 2 = 3.5.
       Adam's first step moves V's output bias and its weight on the active hidden unit by
       +value_lr each (the gradient is negative), so V_new(s) = 2 value_lr = 1 everywhere.
    2. pi: A = [1, 3] - V_new = [0, 2]; weights [1, min(e^6, 100) = 100];
       log pi(a) = log N(+-0.5; 0, 1); loss = -(1 + 100) / 2 * log N(0.5).
       (With the old V the weights would be [e^3, 100].)
    3. Q: y = r + 0.99 mask V_new(s') = [0.99, 0]; online Q1 = [5, 15], Q2 = [6, 18];
       loss = ((5 - .99)^2 + 15^2) / 2 + ((6 - .99)^2 + 18^2) / 2.
    """
    iql = IQL(IQLConfig(hidden=(2,), offline_steps=100))
    hp = iql.default_hparams(expectile=0.7, inverse_temperature=3.0, value_lr=0.5)
    state = _hand_state(iql, hp)
    batch = Transitions(
        obs=f32([[1.0], [3.0]]),
        action=f32([[0.5], [-0.5]]),
        reward=f32([0.0, 0.0]),
        next_obs=f32([[2.0], [4.0]]),
        terminated=jnp.array([False, True]),
        truncated=jnp.array([False, False]),
    )
    new, m = jax.jit(iql.update, static_argnums=4)(state, batch, jax.random.PRNGKey(0), hp, False)

    assert float(m["value_loss"]) == pytest.approx(3.5, rel=1e-6)  # target critics, not online
    # (rtol: Adam's bias correction 1 - 0.999 is rounded in float32)
    np.testing.assert_allclose(iql.v(new.value.params, batch.obs), [1.0, 1.0], rtol=2e-5)

    logp = normal_logp(0.5)
    assert float(m["actor_loss"]) == pytest.approx(-(1 + 100) / 2 * logp, rel=1e-5)
    old_v_loss = -(math.exp(3.0) + 100) / 2 * logp
    assert abs(float(m["actor_loss"]) - old_v_loss) > 1.0
    assert float(m["adv_mean"]) == pytest.approx(1.0, rel=2e-5)

    expected_q = ((5 - 0.99) ** 2 + 15**2) / 2 + ((6 - 0.99) ** 2 + 18**2) / 2
    assert float(m["critic_loss"]) == pytest.approx(expected_q, rel=1e-5)

    # V's step computes min_j Qbar_j(s, a) itself when the caller does not pass it
    value, vm = iql.value_step(state.value, state.target_critic, batch, hp)
    assert float(vm["value_loss"]) == pytest.approx(3.5, rel=1e-6)
    np.testing.assert_allclose(iql.v(value.params, batch.obs), [1.0, 1.0], rtol=2e-5)

    # target = 0.995 old target + 0.005 *new* critic (which moved away from the old one)
    expected_target = jax.tree.map(
        lambda t, c: 0.995 * t + 0.005 * c, state.target_critic, new.critic.params
    )
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
        new.target_critic,
        expected_target,
    )
    moved = jax.tree.map(
        lambda a, b: float(jnp.max(jnp.abs(a - b))), new.critic.params, state.critic.params
    )
    assert max(jax.tree.leaves(moved)) > 1e-4


# ------------------------------------------------------------------ policy, acting, config
def test_policy_log_std_is_clipped_and_evaluation_uses_the_mean():
    iql = IQL(IQLConfig(hidden=(4,)))
    hp = iql.default_hparams()
    state = iql.init(jax.random.PRNGKey(0), 3, 2, hp)
    params = dict(state.actor.params, log_std=f32([-10.0, 7.0]))
    state = state._replace(actor=NetState(params, state.actor.opt_state))
    obs = jax.random.normal(jax.random.PRNGKey(1), (5, 3)) * 100.0
    mean, log_std = iql.policy(params, obs)
    np.testing.assert_array_equal(log_std, np.broadcast_to([-5.0, 2.0], (5, 2)))
    assert np.all(np.abs(mean) <= 1.0)
    a_det, _ = iql.act(state, obs, jax.random.PRNGKey(2), hp, deterministic=True)
    np.testing.assert_array_equal(a_det, mean)
    a_sto, _ = iql.act(state, obs, jax.random.PRNGKey(2), hp, deterministic=False)
    assert np.all(np.abs(a_sto) <= 1.0) and not np.allclose(a_sto, mean)
    # log-prob is the raw (unsquashed) diagonal Gaussian
    a = f32([[0.3, -0.2]] * 5)
    expected = sum(
        normal_logp(float(a[0, i]), float(mean[0, i]), math.exp(float(log_std[0, i])))
        for i in range(2)
    )
    assert float(iql.log_prob(params, obs, a)[0]) == pytest.approx(expected, rel=1e-5)


def test_validation_names_the_field():
    iql = IQL()
    with pytest.raises(ConfigError, match="iql.expectile"):
        iql.default_hparams(expectile=1.5)
    with pytest.raises(ConfigError, match="iql.inverse_temperature"):
        iql.default_hparams(inverse_temperature=-1.0)
    with pytest.raises(ConfigError, match="iql.value_lr"):
        iql.default_hparams(value_lr=0.0)
    with pytest.raises(ConfigError, match="iql: unknown hyperparameter"):
        iql.default_hparams(beta=3.0)
    grid = stack_trees([iql.default_hparams(), iql.default_hparams()])
    grid = grid.replace(tau=f32([0.005, 2.0]))
    with pytest.raises(ConfigError, match="iql.tau"):
        iql.validate(grid)
    with pytest.raises(ConfigError, match="iql.reward_normalization"):
        IQLConfig(reward_normalization="max")
    with pytest.raises(ConfigError, match="iql.critic_reduction"):
        IQLConfig(critic_reduction="median")
    with pytest.raises(ConfigError, match="iql.offline_steps"):
        IQLConfig(offline_steps=-1)


def test_presets_and_registry():
    cfg, hp = iql_preset("antmaze", offline_steps=1000)
    assert (float(hp.expectile), float(hp.inverse_temperature)) == pytest.approx((0.9, 10.0))
    assert cfg.reward_normalization == "minus_one" and cfg.offline_steps == 1000
    cfg, hp = iql_preset("locomotion", offline_steps=5)
    assert (float(hp.expectile), float(hp.inverse_temperature)) == pytest.approx((0.7, 3.0))
    assert cfg.reward_normalization == "trajectory_range"
    assert IQL(cfg).reward_normalization == "trajectory_range"
    assert get_method("iql") is IQL
    with pytest.raises(ConfigError, match="iql.domain"):
        iql_preset("kitchen", offline_steps=5)


# ------------------------------------------------------------------ traced hyperparameters
def _point_dataset(env, n: int, key) -> Transitions:
    """Random-action transitions on the point task, stepped with the real dynamics."""
    k_s, k_a = jax.random.split(key)
    states = jax.vmap(env.reset)(jax.random.split(k_s, n))
    action = jax.random.uniform(k_a, (n, env.action_size), minval=-1.0, maxval=1.0)
    _, res = jax.vmap(env.step)(states, action)
    return Transitions(states.obs, action, res.reward, res.next_obs, res.terminated, res.truncated)


def test_one_compilation_serves_a_grid_of_expectiles():
    env = make_env("point", episode_length=10)
    run = RunConfig(
        offline_steps=30,
        online_steps=20,
        offline_eval_every=30,
        online_eval_every=20,
        batch_size=16,
        eval_episodes=2,
        protocol="direct",
        progress=False,
    )
    iql = IQL(IQLConfig(hidden=(16, 16), offline_steps=run.offline_steps))
    trainer = Trainer(iql, env, run)
    dataset = _point_dataset(env, 64, jax.random.PRNGKey(7))
    fn = jax.jit(jax.vmap(trainer.train, in_axes=(0, 0, 0, None)))
    keys = jnp.stack([jax.random.PRNGKey(0)] * 2)  # same seed: only the expectile differs
    hp = stack_trees([iql.default_hparams(expectile=0.5), iql.default_hparams(expectile=0.95)])
    rhp = broadcast_tree(run_hparams(run), 2)
    state, out = fn(keys, hp, rhp, dataset)
    assert fn._cache_size() == 1
    v_mean = out["offline"]["v_mean"][:, -1]
    assert v_mean[1] > v_mean[0] + 1e-3  # a higher expectile pushes V up
    v = jax.vmap(iql.v, in_axes=(0, None))(state.value.params, dataset.obs)
    assert float(jnp.mean(v[1] - v[0])) > 1e-3

    # other traced values (rates, beta, mixing ratio): the same executable
    hp2 = stack_trees(
        [
            iql.default_hparams(expectile=0.7, inverse_temperature=1.0, actor_lr=1e-3),
            iql.default_hparams(expectile=0.8, critic_lr=1e-4, value_lr=1e-3),
        ]
    )
    rhp2 = rhp.replace(offline_fraction=f32([0.1, 0.9]))
    fn(keys, hp2, rhp2, dataset)
    assert fn._cache_size() == 1
    # and a direct run carries the optimizer count on: offline steps + one update per iteration
    assert np.all(
        np.asarray(state.actor.opt_state[1].count) == run.offline_steps + run.online_steps
    )
