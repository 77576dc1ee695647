"""PEX: the selection rule against hand-computed softmax values, the evaluation rule, the switch
to the policy set, the online actor's loss on composite-policy actions (hand-made networks), the
unclipped online sample in the selection and the actor loss, the
128 + 128 batches of the PEX run settings, bitwise equality of PEX's offline phase with IQL's,
and a real Trainer run on `point` in which the offline policy stays bitwise frozen."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxo2o.config import ConfigError, run_hparams
from jaxo2o.core.loop import Trainer
from jaxo2o.core.optim import NetState
from jaxo2o.core.replay import replay_init, replay_insert, sample_mixed
from jaxo2o.core.transitions import Transitions
from jaxo2o.envs import make_env
from jaxo2o.methods import get_method
from jaxo2o.methods.iql import ACTION_CLIP, IQL, IQLConfig, IQLHParams, IQLState
from jaxo2o.methods.pex import (
    OFFLINE,
    ONLINE,
    PEX,
    PEXConfig,
    PEXState,
    pex_run_config,
    select_policy,
    selection_probabilities,
)

LOG_2PI = math.log(2 * math.pi)
OBS, ACT = 4, 2
HIDDEN = (4, 4)
T1 = math.tanh(1.0)


def f32(x):
    return jnp.asarray(x, jnp.float32)


def leaves_equal(a, b) -> bool:
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(la) == len(lb) and all(
        np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb, strict=True)
    )


def moved(a, b) -> float:
    """Largest absolute difference between two pytrees of the same structure."""
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(la, lb, strict=True))


# ------------------------------------------------------------------ the selection rule
def test_selection_probabilities_are_the_softmax_of_scaled_q():
    q = f32([[1.0, 1.2], [0.5, -0.5], [3.0, 3.0]])
    p = np.asarray(selection_probabilities(q, f32(10.0)))
    e2 = math.exp(2.0)  # 10 * (1.2 - 1.0)
    np.testing.assert_allclose(p[0], [1 / (1 + e2), e2 / (1 + e2)], rtol=1e-6)
    np.testing.assert_allclose(p[1], [1 / (1 + math.exp(-10)), 1 / (1 + math.exp(10))], rtol=1e-6)
    np.testing.assert_allclose(p[2], [0.5, 0.5], rtol=1e-6)
    np.testing.assert_allclose(selection_probabilities(q, f32(0.0)), 0.5, rtol=1e-6)
    # alpha_inv = 1: softmax([1, 1.2]) = [0.45017, 0.54983]
    np.testing.assert_allclose(
        selection_probabilities(q[0], f32(1.0)), [0.450166, 0.549834], rtol=1e-5
    )
    # a large inverse temperature is the argmax, with no overflow
    np.testing.assert_allclose(selection_probabilities(q[:2], f32(1e4)), [[0, 1], [1, 0]])


def test_selection_draws_follow_the_softmax_and_greedy_mixes_in_the_argmax():
    n = 40_000
    q = jnp.tile(f32([1.0, 1.2]), (n, 1))
    p_on = math.exp(2.0) / (1 + math.exp(2.0))  # 0.8808 at alpha_inv = 10
    key = jax.random.PRNGKey(3)
    w = np.asarray(select_policy(key, q, f32(10.0)))
    assert set(np.unique(w)) == {OFFLINE, ONLINE}
    assert w.mean() == pytest.approx(p_on, abs=0.01)  # sd 0.0016
    # evaluation: argmax with probability 0.9, otherwise drawn -> 0.9 + 0.1 * p_on
    w_eval = np.asarray(select_policy(key, q, f32(10.0), 0.9))
    assert w_eval.mean() == pytest.approx(0.9 + 0.1 * p_on, abs=0.005)
    # a large inverse temperature always picks the argmax, even for a tiny gap
    q_close = jnp.tile(f32([0.51, 0.50]), (n, 1))
    assert np.all(np.asarray(select_policy(key, q_close, f32(1e5))) == OFFLINE)
    assert np.all(np.asarray(select_policy(key, q_close[:, ::-1], f32(1e5))) == ONLINE)


# ------------------------------------------------------------------ hand-made networks
def zeros_like(tree):
    return jax.tree.map(jnp.zeros_like, tree)


def gaussian_params(template, mean_bias: float, log_std: float):
    """A policy with mean tanh(mean_bias) in every dimension and state-independent log_std."""
    p = zeros_like(template)
    p["Dense_0"]["bias"] = jnp.full((ACT,), mean_bias)
    p["log_std"] = jnp.full((ACT,), log_std)
    return p


def relu_critic(template, sign: float):
    """Every ensemble member: Q(s, a) = sign * relu(a_0 + 0.5)."""
    p = zeros_like(template)
    mlp = p["VmapCritic_0"]["MLP_0"]
    mlp["Dense_0"]["kernel"] = mlp["Dense_0"]["kernel"].at[:, OBS + 0, 0].set(1.0)
    mlp["Dense_0"]["bias"] = mlp["Dense_0"]["bias"].at[:, 0].set(0.5)
    mlp["Dense_1"]["kernel"] = mlp["Dense_1"]["kernel"].at[:, 0, 0].set(1.0)
    mlp["Dense_2"]["kernel"] = mlp["Dense_2"]["kernel"].at[:, 0, 0].set(sign)
    return p


def hand_state(
    method: PEX, hp, critic_sign: float = -1.0, target_sign: float | None = None
) -> PEXState:
    """pi_off: mean -tanh(1), std 1; pi_on: mean +tanh(1), std exp(-2); V = 0;
    Q = critic_sign * relu(a_0 + 0.5), Qbar the same with `target_sign` (default: critic_sign).
    With sign -1 the offline action has Q = 0 and the online action Q <= -0.58 (5 std), so a
    large alpha_inv always selects pi_off."""
    base = method.to_online(
        method.init(jax.random.PRNGKey(0), OBS, ACT, hp), jax.random.PRNGKey(1), hp
    )
    critic = relu_critic(base.critic.params, critic_sign)
    target = relu_critic(base.critic.params, critic_sign if target_sign is None else target_sign)
    return PEXState(
        offline_actor=gaussian_params(base.offline_actor, -1.0, 0.0),
        actor=NetState(gaussian_params(base.actor.params, 1.0, -2.0), base.actor.opt_state),
        critic=NetState(critic, base.critic.opt_state),
        target_critic=target,
        value=NetState(zeros_like(base.value.params), base.value.opt_state),
    )


def neg_log_prob(a: float, mean: float, log_std: float) -> float:
    """-log N(a; mean, exp(log_std)^2) for one action dimension."""
    z = (a - mean) / math.exp(log_std)
    return 0.5 * z * z + log_std + 0.5 * LOG_2PI


PEX_SMALL = PEX(PEXConfig(hidden=HIDDEN))
HP = PEX_SMALL.default_hparams(selection_inverse_temperature=100.0)  # beta = 3 (IQL default)


def batch_with_replay_action(n: int, action: float) -> Transitions:
    obs = jax.random.normal(jax.random.PRNGKey(5), (n, OBS))
    return Transitions(
        obs=obs,
        action=jnp.full((n, ACT), action),
        reward=jnp.zeros(n),
        next_obs=obs,
        terminated=jnp.zeros(n, bool),
        truncated=jnp.zeros(n, bool),
    )


def test_online_actor_regresses_onto_composite_actions_not_replay_actions():
    # current critics prefer pi_off's action (the selection), Qbar = +relu(a_0 + 0.5) (the
    # advantage): 0 at pi_off's action, 1.26 at the replay actions, placed at pi_on's own mean
    state = hand_state(PEX_SMALL, HP, target_sign=+1.0)
    batch = batch_with_replay_action(8, T1)
    value0 = state.value.params
    new_actor, m = PEX_SMALL.actor_step(state, value0, batch, jax.random.PRNGKey(7), HP)
    # every composite action is pi_off's mode (-tanh 1, -tanh 1): Qbar = 0, V = 0 -> A = 0, w = 1
    assert float(m["select_offline_fraction"]) == 1.0
    composite = 2 * neg_log_prob(-T1, T1, -2.0)  # = 124.50
    assert float(m["actor_loss"]) == pytest.approx(composite, rel=1e-5)
    assert float(m["weight_mean"]) == pytest.approx(1.0, abs=1e-6)
    # the replay-action computation: A = relu(tanh 1 + 0.5) = 1.2616, w = exp(3 A) = 44, z = 0
    replay = math.exp(3 * (T1 + 0.5)) * 2 * neg_log_prob(T1, T1, -2.0)  # = -94.7
    assert abs(float(m["actor_loss"]) - replay) > 200.0
    # the first Adam step moves each parameter by -lr * sign(grad): composite actions pull
    # pi_on's mean down and widen it (z^2 = 126.7 > 1); replay actions would leave the mean
    # (zero gradient at z = 0) and narrow it
    lr = float(HP.actor_lr)
    p0, p1 = state.actor.params, new_actor.params
    np.testing.assert_allclose(p1["Dense_0"]["bias"] - p0["Dense_0"]["bias"], -lr, rtol=1e-3)
    np.testing.assert_allclose(p1["log_std"] - p0["log_std"], lr, rtol=1e-3)


def test_update_trains_only_the_online_actor_and_reuses_iql_value_and_critic_steps():
    state = hand_state(PEX_SMALL, HP)
    batch = batch_with_replay_action(8, T1)
    new, m = PEX_SMALL.update(state, batch, jax.random.PRNGKey(7), HP, online=True)
    assert leaves_equal(new.offline_actor, state.offline_actor)
    assert float(m["select_offline_fraction"]) == 1.0
    # V, Q and the target follow IQL's sub-steps exactly
    iql = PEX_SMALL.iql
    value, _ = iql.value_step(state.value, state.target_critic, batch, HP)
    critic, _ = iql.critic_step(state.critic, value.params, batch, HP)
    assert leaves_equal(new.value, value)
    assert leaves_equal(new.critic, critic)
    assert leaves_equal(new.target_critic, iql.target_step(state.target_critic, critic.params, HP))
    # the actor step saw the new V: V fell by lr (its target Qbar(s, a_replay) = -1.26 < 0)
    v_new = float(iql.v(value.params, batch.obs[:1])[0])
    assert v_new == pytest.approx(-float(HP.value_lr), rel=1e-3)
    w = math.exp(3 * -v_new)  # A = 0 - V_new
    assert float(m["actor_loss"]) == pytest.approx(w * 2 * neg_log_prob(-T1, T1, -2.0), rel=1e-5)
    assert float(new.actor.params["Dense_0"]["bias"][0]) < 1.0 - 2e-4


def kinked_critic(template, slope: float):
    """Every ensemble member: Q(s, a) = slope * relu(a_0 - 1) + relu(-a_0 - 0.5): 0 on
    [-0.5, 1], rising steeply past the action bound 1 and gently below -0.5."""
    p = zeros_like(template)
    mlp = p["VmapCritic_0"]["MLP_0"]
    d0, d1, d2 = mlp["Dense_0"], mlp["Dense_1"], mlp["Dense_2"]
    d0["kernel"] = d0["kernel"].at[:, OBS + 0, 0].set(1.0).at[:, OBS + 0, 1].set(-1.0)
    d0["bias"] = d0["bias"].at[:, 0].set(-1.0).at[:, 1].set(-0.5)
    d1["kernel"] = d1["kernel"].at[:, 0, 0].set(1.0).at[:, 1, 1].set(1.0)
    d2["kernel"] = d2["kernel"].at[:, 0, 0].set(slope).at[:, 1, 0].set(1.0)
    return p


def test_selection_sees_the_unclipped_online_sample():
    """pi_on's mean is tanh(10) = 1 with std exp(-5), so about half of its samples lie just
    above the bound 1. pi_off's mode -tanh(1) has Q = 0.26; a sample s > 1 has
    Q = 1000 (s - 1), above 0.26 from s > 1.00026, while clipped to 1 it would have Q = 0 and
    never be chosen (alpha_inv = 100: P(online) = sigmoid(-26)). The official selection sees
    the sample as drawn: pi_on wins about half the states, and its action is returned (to be
    stored and executed) unclipped."""
    n = 4000
    base = hand_state(PEX_SMALL, HP)
    state = base._replace(
        actor=base.actor._replace(params=gaussian_params(base.actor.params, 10.0, -5.0)),
        critic=base.critic._replace(params=kinked_critic(base.critic.params, 1000.0)),
    )
    obs = jax.random.normal(jax.random.PRNGKey(2), (n, OBS))
    a, info = PEX_SMALL.act(state, obs, jax.random.PRNGKey(9), HP, deterministic=False)
    a = np.asarray(a)
    online = info["offline_fraction"] == 0.0
    # P(z > 0.039) = 0.484 for z ~ N(0, 1) (sd of the share over 4000 states: 0.008)
    assert float(np.mean(online)) == pytest.approx(0.484, abs=0.03)
    assert np.all(a[online, 0] > 1.0)  # the chosen online actions, outside the box as drawn
    np.testing.assert_array_equal(a[~online], np.float32(-T1))
    # the clipped sample would have lost everywhere: Q(s, 1) = 0 < Q(s, a_off)
    q = PEX_SMALL.iql.q(state.critic.params, obs[:1], jnp.ones((1, ACT)))
    q_off = PEX_SMALL.iql.q(state.critic.params, obs[:1], jnp.full((1, ACT), -T1))
    assert float(jnp.min(q)) == 0.0 and float(jnp.min(q_off)) == pytest.approx(T1 - 0.5)


def test_online_actor_loss_uses_the_unclipped_composite_action():
    """Q prefers pi_on everywhere, Qbar = V = 0 (every weight 1): the loss is the mean negative
    log-likelihood of the drawn actions under pi_on, taken at the actions as drawn (the
    official `policy_update`), not at actions clipped to +-(1 - 1e-5)."""
    base = hand_state(PEX_SMALL, HP, critic_sign=+1.0)
    state = base._replace(
        actor=base.actor._replace(params=gaussian_params(base.actor.params, 10.0, -5.0)),
        target_critic=zeros_like(base.target_critic),
    )
    batch = batch_with_replay_action(64, 0.0)
    key = jax.random.PRNGKey(7)
    drawn, w, _ = PEX_SMALL.composite_action(state, batch.obs, key, HP, deterministic=False)
    drawn = np.asarray(drawn, np.float64)
    assert np.all(np.asarray(w) == ONLINE)
    assert 0.3 < np.mean(drawn > 1.0) < 0.7  # about half of the entries beyond the bound
    mean = float(np.tanh(np.float32(10.0)))
    nll = lambda acts: float(
        np.mean([sum(neg_log_prob(x, mean, -5.0) for x in row) for row in acts])
    )
    _, m = PEX_SMALL.actor_step(state, state.value.params, batch, key, HP)
    assert float(m["weight_mean"]) == pytest.approx(1.0)
    assert float(m["actor_loss"]) == pytest.approx(nll(drawn), rel=1e-4)
    clipped = np.clip(drawn, -ACTION_CLIP, ACTION_CLIP)
    assert abs(nll(clipped) - nll(drawn)) > 0.1  # what a clip would have given


# ------------------------------------------------------------------ acting
def test_acting_follows_the_greedy_evaluation_rule_and_reports_the_offline_fraction():
    n = 4000
    obs = jax.random.normal(jax.random.PRNGKey(2), (n, OBS))
    key = jax.random.PRNGKey(9)
    # Q prefers the offline action, a large alpha_inv: pi_off's mode everywhere. The target
    # critics prefer the online action: the selection must use the current critics
    state = hand_state(PEX_SMALL, HP, target_sign=+1.0)
    a, info = PEX_SMALL.act(state, obs, key, HP, deterministic=False)
    np.testing.assert_allclose(a, -T1, rtol=1e-6)
    np.testing.assert_array_equal(info["offline_fraction"], np.ones(n))
    assert info["offline_fraction"].shape == (n,)
    # Q prefers the online action: evaluation takes pi_on's mode with probability 0.9
    state_on = hand_state(PEX_SMALL, HP, critic_sign=+1.0, target_sign=-1.0)
    a, info = PEX_SMALL.act(state_on, obs, key, HP, deterministic=True)
    assert float(jnp.mean(info["offline_fraction"])) == 0.0
    is_mode = np.all(np.asarray(a) == np.float32(T1), axis=-1)
    assert is_mode.mean() == pytest.approx(0.9, abs=0.02)
    a, _ = PEX_SMALL.act(state_on, obs, key, HP, deterministic=False)  # training: samples only
    assert not np.any(np.all(np.asarray(a) == np.float32(T1), axis=-1))
    # alpha_inv = 0: training draws 50/50; evaluation takes the argmax (online) with prob 0.9
    hp0 = HP.replace(selection_inverse_temperature=f32(0.0))
    _, info = PEX_SMALL.act(state_on, obs, key, hp0, deterministic=False)
    assert float(jnp.mean(info["offline_fraction"])) == pytest.approx(0.5, abs=0.03)
    np.testing.assert_allclose(info["offline_prob"], 0.5)
    _, info = PEX_SMALL.act(state_on, obs, key, hp0, deterministic=True)
    assert float(jnp.mean(info["offline_fraction"])) == pytest.approx(0.05, abs=0.015)


def test_one_row_selection_and_one_observation_act():
    """The selection and acting take one row (no batch axis) as they take a batch."""
    w = select_policy(jax.random.PRNGKey(0), f32([0.0, 1.0]), f32(1e5))
    assert w.shape == () and int(w) == ONLINE
    w = select_policy(jax.random.PRNGKey(0), f32([1.0, 0.0]), f32(0.0), 1.0)  # greedy: argmax
    assert w.shape == () and int(w) == OFFLINE
    state = hand_state(PEX_SMALL, HP)  # Q prefers pi_off's mode at alpha_inv 100
    obs = jax.random.normal(jax.random.PRNGKey(2), (OBS,))
    for deterministic in (False, True):
        a, info = PEX_SMALL.act(state, obs, jax.random.PRNGKey(9), HP, deterministic)
        assert a.shape == (ACT,)
        np.testing.assert_allclose(a, -T1, rtol=1e-6)
        assert float(info["offline_fraction"]) == 1.0


def test_online_actor_keeps_a_constant_rate_after_a_cosine_offline_schedule():
    """Offline, the actor's rate decays to 0 over `offline_steps` (IQL's cosine); pi_on's rate
    is constant: past that many steps it still moves by Adam's lr-sized steps."""
    pex = PEX(PEXConfig(hidden=HIDDEN, actor_schedule="cosine", offline_steps=2))
    state = hand_state(pex, HP)
    batch = batch_with_replay_action(8, T1)
    for i in range(4):
        new, _ = pex.update(state, batch, jax.random.PRNGKey(7 + i), HP, online=True)
        if i >= 2:  # the cosine would be at 0 here
            assert moved(new.actor.params, state.actor.params) > 0.5 * float(HP.actor_lr)
        state = new


# ------------------------------------------------------------------ the switch
def test_to_online_freezes_the_offline_policy_and_adds_a_fresh_one():
    hp = PEX_SMALL.default_hparams()
    off = PEX_SMALL.init(jax.random.PRNGKey(0), OBS, ACT, hp)
    # pretend some offline training happened: the target differs from Q, Adam has moved
    off = off._replace(
        critic=off.critic._replace(params=jax.tree.map(lambda x: x + 0.1, off.critic.params)),
        value=NetState(off.value.params, jax.tree.map(lambda x: x + 1, off.value.opt_state)),
    )
    key = jax.random.PRNGKey(42)
    on = PEX_SMALL.to_online(off, key, hp)
    assert isinstance(on, PEXState)
    assert leaves_equal(on.offline_actor, off.actor.params)
    # pi_on: the policy architecture initialised from to_online's key, not a copy of pi_off
    fresh = IQL(IQLConfig(hidden=HIDDEN))._actor(ACT).init(key, jnp.zeros((1, OBS)))["params"]
    assert leaves_equal(on.actor.params, fresh)
    assert not leaves_equal(on.actor.params, off.actor.params)
    # Q, V, target carried over; the target is not re-copied from Q
    assert leaves_equal(on.critic.params, off.critic.params)
    assert leaves_equal(on.value.params, off.value.params)
    assert leaves_equal(on.target_critic, off.target_critic)
    assert not leaves_equal(on.target_critic, on.critic.params)
    # fresh optimizers: zero counts and moments
    for net in (on.actor, on.critic, on.value):
        for leaf in jax.tree.leaves(net.opt_state):
            assert not np.any(np.asarray(leaf))


def test_registry_hparams_and_validation():
    assert get_method("pex") is PEX
    hp = PEX().default_hparams()
    assert float(hp.selection_inverse_temperature) == 10.0
    assert float(hp.inverse_temperature) == float(IQL().default_hparams().inverse_temperature)
    with pytest.raises(ConfigError, match="pex.selection_inverse_temperature"):
        PEX().default_hparams(selection_inverse_temperature=-1.0)
    with pytest.raises(ConfigError, match="pex.eval_greedy"):
        PEXConfig(eval_greedy=1.5)


# ------------------------------------------------------------------ run settings
def test_pex_run_settings_give_128_dataset_plus_128_online_rows():
    run = pex_run_config(online_steps=20_000)
    assert (run.protocol, run.batch_size, run.warmup_steps, run.warmup_random) == (
        "direct",
        256,
        5_000,
        False,
    )
    rhp = run_hparams(run)
    n_data, n_online = 500, 300
    marker = 7.0  # dataset rows carry this reward, online rows 0
    data = Transitions(
        jnp.zeros((n_data, OBS)),
        jnp.zeros((n_data, ACT)),
        jnp.full((n_data,), marker),
        jnp.zeros((n_data, OBS)),
        jnp.zeros(n_data, bool),
        jnp.zeros(n_data, bool),
    )
    online = jax.tree.map(lambda x: x[:n_online], data._replace(reward=jnp.zeros(n_data)))
    buffer = replay_insert(replay_init(run.capacity, OBS, ACT), online)
    for seed in range(3):
        batch, is_offline = sample_mixed(
            data, buffer, jax.random.PRNGKey(seed), run.batch_size, rhp.offline_fraction
        )
        assert batch.reward.shape == (256,)
        assert int(jnp.sum(is_offline)) == 128
        assert int(jnp.sum(batch.reward == marker)) == 128


# ------------------------------------------------------------------ through the Trainer
ENV = make_env("point", episode_length=20)
TINY = (16, 16)
OFFLINE_STEPS = 60


def point_dataset(n: int = 256) -> Transitions:
    """Random-action transitions on `point`."""
    k_s, k_a = jax.random.split(jax.random.PRNGKey(11))
    states = jax.vmap(ENV.reset)(jax.random.split(k_s, n))
    action = jax.random.uniform(k_a, (n, ACT), minval=-1.0, maxval=1.0)
    _, res = jax.vmap(ENV.step)(states, action)
    return Transitions(states.obs, action, res.reward, res.next_obs, res.terminated, res.truncated)


@pytest.mark.parametrize("schedule", ["cosine", "constant"])
def test_offline_phase_is_iql_bitwise(schedule):
    run = pex_run_config(
        offline_steps=OFFLINE_STEPS,
        offline_eval_every=OFFLINE_STEPS // 2,
        online_steps=0,
        batch_size=32,
        eval_episodes=2,
        progress=False,
    )
    data = point_dataset()
    pex = PEX(PEXConfig(hidden=TINY, offline_steps=OFFLINE_STEPS, actor_schedule=schedule))
    iql = IQL(IQLConfig(hidden=TINY, offline_steps=OFFLINE_STEPS, actor_schedule=schedule))
    hp_pex = pex.default_hparams(expectile=0.8, selection_inverse_temperature=3.0)
    hp_iql = IQLHParams(
        **{k: getattr(hp_pex, k) for k in IQLHParams.__dataclass_fields__}  # same IQL values
    )
    key, rhp = jax.random.PRNGKey(4), run_hparams(run)
    s_pex, m_pex = jax.jit(Trainer(pex, ENV, run).offline)(key, hp_pex, rhp, data)
    s_iql, m_iql = jax.jit(Trainer(iql, ENV, run).offline)(key, hp_iql, rhp, data)
    assert isinstance(s_pex, IQLState)
    assert leaves_equal(s_pex, s_iql)
    assert m_pex.keys() == m_iql.keys()
    assert leaves_equal(m_pex, m_iql)
    assert float(jnp.abs(m_pex["actor_loss"]).sum()) > 0  # it did train
    lr = np.asarray(m_pex["actor_lr"])  # per interval: cosine falls, constant stays
    assert (lr[1] < lr[0]) if schedule == "cosine" else np.allclose(lr, 3e-4, rtol=1e-6)
    # offline-phase acting is IQL's
    obs = data.obs[:5]
    k = jax.random.PRNGKey(1)
    for det in (True, False):
        a_pex, info = pex.act(s_pex, obs, k, hp_pex, det)
        assert info == {}
        np.testing.assert_array_equal(a_pex, iql.act(s_iql, obs, k, hp_iql, det)[0])


@pytest.mark.xdist_group("pex_point")
def test_trainer_run_keeps_the_offline_policy_frozen_and_traces_alpha():
    """Two runs in one compiled program, alpha_inv = 0 and 1000: the offline policy the online
    phase starts from is bitwise the final one; pi_on, Q and V did train."""
    run = pex_run_config(
        offline_steps=OFFLINE_STEPS,
        offline_eval_every=OFFLINE_STEPS,
        online_steps=300,
        online_eval_every=100,
        warmup_steps=50,
        batch_size=32,
        eval_episodes=2,
        progress=False,
    )
    data = point_dataset()
    pex = PEX(PEXConfig(hidden=TINY, offline_steps=OFFLINE_STEPS))
    trainer = Trainer(pex, ENV, run)
    rhp = run_hparams(run)

    def train(key, hp):
        k_off, k_on = jax.random.split(key)
        s_off, _ = trainer.offline(k_off, hp, rhp, data)
        s_on, _, m = trainer.online(s_off, k_on, hp, rhp, data)
        return s_off, s_on, m

    alphas = [0.0, 1000.0]
    hps = jax.tree.map(
        lambda *x: jnp.stack(x),
        *[pex.default_hparams(selection_inverse_temperature=a) for a in alphas],
    )
    keys = jnp.stack([jax.random.PRNGKey(0)] * 2)
    s_off, s_on, m = jax.jit(jax.vmap(train))(keys, hps)
    assert isinstance(s_on, PEXState)
    assert leaves_equal(s_on.offline_actor, s_off.actor.params)  # frozen, bit for bit

    assert moved(s_on.critic.params, s_off.critic.params) > 1e-3
    assert moved(s_on.value.params, s_off.value.params) > 1e-3
    assert moved(s_on.actor.params, s_off.actor.params) > 1e-3
    # online Adam restarted at the switch: one count per update after the warm-up
    assert np.all(np.asarray(s_on.actor.opt_state[0].count) == run.online_steps - run.warmup_steps)
    # the loop reports the offline share of the actions per evaluation interval
    frac, prob = np.asarray(m["act/offline_fraction"]), np.asarray(m["act/offline_prob"])
    assert frac.shape == (2, run.online_steps // run.online_eval_every)
    assert np.all((frac >= 0) & (frac <= 1))
    # alpha_inv = 0 selects uniformly (100 draws per interval, sd 0.05)
    np.testing.assert_allclose(prob[0], 0.5, atol=1e-6)
    np.testing.assert_allclose(frac[0], 0.5, atol=0.2)
    # alpha_inv = 1000 selects almost deterministically: the draws follow the probabilities
    assert np.all(np.abs(frac[1] - prob[1]) < 0.1)
    assert not np.allclose(prob[1], 0.5, atol=0.05)
