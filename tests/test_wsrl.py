"""WSRL (`jaxo2o.methods.wsrl`): each loss term against the spec's hand values
(`/work/shared/spec/calql_rlpd_wsrl.md` §3.8), the online update (G critic steps, then actor and
temperature on all G batches) against a plain-jax reference, and the warm-up schedule of a run."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from reference_nets import (
    adam_init,
    adam_step,
    assert_first_moments_close,
    assert_trees_close,
    critics,
    polyak,
    random_batches,
    samples,
    squashed_sample,
    trunk,
)

from jaxo2o.config import RunConfig, run_hparams
from jaxo2o.core.distributions import tanh_gaussian_log_prob_raw
from jaxo2o.core.loop import Trainer
from jaxo2o.core.transitions import Transitions
from jaxo2o.envs import make_env
from jaxo2o.methods.wsrl import (
    SOFTPLUS_INV_ONE,
    WSRL,
    WSRLConfig,
    lagrange_penalty,
    min_q_actor_loss,
    softplus_temperature_loss,
    subset_max_target,
)


# ---------------------------------------------------------------- T2: AntMaze target
def test_target_min_over_drawn_members_then_max_over_actions():
    next_q = jnp.zeros((10, 1, 3))
    next_q = next_q.at[4, 0].set(jnp.array([0.5, 2.5, 1.5])).at[7, 0].set(jnp.array([1, 0.2, 3]))
    r, m = jnp.array([-5.0]), jnp.array([1.0])
    same = subset_max_target(next_q, jnp.array([4, 4]), r, m, 0.99)  # a repeated draw
    np.testing.assert_allclose(same, [-2.525], rtol=1e-6)
    pair = subset_max_target(next_q, jnp.array([4, 7]), r, m, 0.99)
    np.testing.assert_allclose(pair, [-3.515], rtol=1e-6)


# ---------------------------------------------------------------- T3: temperature and actor
def test_temperature_is_softplus_and_measured_on_next_state_samples():
    p0 = jnp.float32(SOFTPLUS_INV_ONE)
    np.testing.assert_allclose(jax.nn.softplus(p0), 1.0, rtol=1e-6)
    value, grad = jax.value_and_grad(softplus_temperature_loss)(p0, jnp.array([-1.0, -3.0]), -8.0)
    np.testing.assert_allclose([value, grad], [10.0, 6.321206], rtol=1e-6)
    tx = optax.adam(1e-4)
    upd, _ = tx.update(grad, tx.init(p0))
    np.testing.assert_allclose(jax.nn.softplus(p0 + upd), 0.9999368, rtol=1e-6)


def test_actor_uses_the_min_over_all_critics():
    q = jnp.array([3.0, 1, 2, 5, 4, 6, 7, 8, 9, 10])[:, None]
    np.testing.assert_allclose(min_q_actor_loss(1.0, jnp.array([-2.0]), q), -3.0)


def test_lagrange_penalty_sign():
    gap = jnp.array([1.3, 0.5])
    np.testing.assert_allclose(lagrange_penalty(gap, 2.0, 0.8), 2.0 * (0.9 - 0.8), rtol=1e-6)


def test_networks_layer_norm_everywhere_and_uniform_std():
    method = WSRL(WSRLConfig(hidden=(8, 8), state_dependent_std=False))
    s = method.init(jax.random.PRNGKey(0), 3, 2, method.default_hparams())
    assert "LayerNorm_1" in s.critic.params["VmapCritic_0"]["MLP_0"]
    assert "LayerNorm_1" in s.actor.params["MLP_0"]
    np.testing.assert_array_equal(s.actor.params["log_std"], [0.0, 0.0])
    # a zero mean head: the policy is N(0, 1) squashed; log pi(a = 0) per dimension -0.918939
    zero = jax.tree.map(jnp.zeros_like, s.actor.params["Dense_0"])
    mean, log_std = method.policy({**s.actor.params, "Dense_0": zero}, jnp.ones((1, 3)), 2)
    lp = tanh_gaussian_log_prob_raw(mean, log_std, jnp.zeros((1, 2)))
    np.testing.assert_allclose(lp, [2 * -0.918939], atol=1e-6)
    # the last hidden layer is orthogonal(1e-2): its singular values are 1e-2
    k = np.asarray(s.actor.params["MLP_0"]["Dense_1"]["kernel"])
    np.testing.assert_allclose(np.linalg.svd(k, compute_uv=False), 1e-2, rtol=1e-4)


# ---------------------------------------------------------------- online update parity (G = 2)
HIDDEN = (8, 8)


def _batches(key):
    return random_batches(key, (False, True, False, False), g=3)


def _reference(ref, batches, keys, n_backup: int):
    n_h = len(HIDDEN)

    def dist(actor, obs):
        out = trunk(actor, obs, n_h) @ actor["Dense_0"]["kernel"] + actor["Dense_0"]["bias"]
        return out[:, :2], jnp.clip(out[:, 2:], math.log(1e-5), math.log(10.0))

    for i in range(keys.shape[0]):
        batch = jax.tree.map(lambda x, i=i: x[i], batches)
        k_critic = jax.random.split(keys[i])[0]
        k_next, k_subset = jax.random.split(k_critic)
        next_a, _ = samples(k_next, *dist(ref["actor"], batch.next_obs), n_backup)
        idx = jax.random.randint(k_subset, (2,), 0, 10)  # with replacement
        rep = jnp.broadcast_to(batch.next_obs[:, None], (*next_a.shape[:2], 3))
        q = critics(ref["target"], rep, next_a, n_h)[idx]
        y = batch.reward + 0.99 * (1.0 - batch.terminated) * jnp.max(jnp.min(q, 0), -1)

        def critic_loss(c, batch=batch, y=y):
            return jnp.mean((critics(c, batch.obs, batch.action, n_h) - y) ** 2)

        grad = jax.grad(critic_loss)(ref["critic"])
        ref["critic"], ref["critic_opt"] = adam_step(ref["critic"], grad, ref["critic_opt"], 3e-4)
        ref["target"] = polyak(ref["target"], ref["critic"], 0.005)
    full = jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), batches)
    k_pi, k_next = jax.random.split(jax.random.split(keys[-1])[1])
    alpha = jax.nn.softplus(ref["p"])

    def actor_loss(actor):
        a, lp = squashed_sample(k_pi, *dist(actor, full.obs))
        q = jnp.min(critics(ref["critic"], full.obs, a, n_h), axis=0)
        return jnp.mean(alpha * lp) - jnp.mean(q)

    grad = jax.grad(actor_loss)(ref["actor"])
    _, next_lp = samples(k_next, *dist(ref["actor"], full.next_obs), n_backup)
    t_grad = jax.nn.sigmoid(ref["p"]) * (-jnp.mean(next_lp) + 2.0)  # H_target = -|A| = -2
    ref["entropy"] = -jnp.mean(next_lp)
    ref["actor"], ref["actor_opt"] = adam_step(ref["actor"], grad, ref["actor_opt"], 1e-4)
    ref["p"], ref["p_opt"] = adam_step(ref["p"], t_grad, ref["p_opt"], 1e-4)
    return ref


def test_online_update_many_matches_an_independent_reference():
    for n_backup in (3,):  # the max backup; 1 sample is its N = 1 case
        method = WSRL(WSRLConfig(hidden=HIDDEN, online_backup_actions=n_backup))
        hp = method.default_hparams()
        state = method.init(jax.random.PRNGKey(2), 3, 2, hp)
        ref = {
            "actor": state.actor.params,
            "critic": state.critic.params,
            "target": state.target_critic,
            "p": state.temperature.params,
        }
        ref |= {f"{k}_opt": adam_init(ref[k]) for k in ("actor", "critic", "p")}
        update = jax.jit(lambda s, b, k, m=method, hp=hp: m.update_many(s, b, k, hp, True))
        reference = jax.jit(_reference, static_argnums=(3,))
        for step in range(2):
            batches = _batches(jax.random.PRNGKey(30 + step))
            keys = jax.random.split(jax.random.PRNGKey(40 + step), 3)
            state, metrics = update(state, batches, keys)
            ref = reference(ref, batches, keys, n_backup)
            np.testing.assert_allclose(metrics["entropy"], ref.pop("entropy"), rtol=1e-5)
        assert_trees_close(state.critic.params, ref["critic"])
        assert_trees_close(state.target_critic, ref["target"])
        assert_trees_close(state.actor.params, ref["actor"])
        assert_trees_close(state.temperature.params, ref["p"])
        nets = {"critic_opt": state.critic, "actor_opt": state.actor, "p_opt": state.temperature}
        assert_first_moments_close(nets, ref)


def test_offline_update_is_conservative_and_online_is_not():
    """The offline update adds the CQL term (its gap is reported, and the critic loss exceeds the
    TD loss by w * gap); the online one has no such term."""
    method = WSRL(WSRLConfig(hidden=HIDDEN, n_actions=3))
    hp = method.default_hparams()
    state = method.init(jax.random.PRNGKey(2), 3, 2, hp)
    batch = jax.tree.map(lambda x: x[0], _batches(jax.random.PRNGKey(5)))
    _, m = jax.jit(lambda s, b, k: method.update(s, b, k, hp, False))(
        state, batch, jax.random.PRNGKey(0)
    )
    np.testing.assert_allclose(m["critic_loss"], m["bellman_loss"] + 5.0 * m["cql_gap"], rtol=1e-5)
    _, m_on = jax.jit(lambda s, b, k: method.update(s, b, k, hp, True))(
        state, batch, jax.random.PRNGKey(0)
    )
    assert "cql_gap" not in m_on


# ---------------------------------------------------------------- T1: the run's schedule
def test_warm_up_then_four_critic_steps_per_actor_step():
    """Scaled T1: with warm-up W and G = 4, after N online iterations the critics' Adam has
    stepped offline + 4 (N - W) times and the actor's offline + (N - W) times; no update during
    the warm-up (the first at iteration W)."""
    env = make_env("point", "none", 20)
    method = WSRL(WSRLConfig(hidden=(8,), n_actions=2))
    run = RunConfig(
        offline_steps=10,
        online_steps=30,
        offline_eval_every=10,
        online_eval_every=30,
        eval_episodes=1,
        batch_size=8,
        updates_per_step=4,
        warmup_steps=21,
        protocol="direct",
        offline_fraction=0.0,
    )
    n = 64
    rows = jax.random.normal(jax.random.PRNGKey(0), (n, env.observation_size))
    data = Transitions(
        rows,
        jnp.zeros((n, env.action_size)),
        jnp.zeros(n),
        rows,
        jnp.zeros(n, bool),
        jnp.zeros(n, bool),
    )
    hp = method.default_hparams()
    state, _ = jax.jit(Trainer(method, env, run).train)(
        jax.random.PRNGKey(1), hp, run_hparams(run), data
    )
    assert int(state.critic.opt_state[0].count) == 10 + 4 * (30 - 21)
    assert int(state.actor.opt_state[0].count) == 10 + (30 - 21)


# ---------------------------------------------------------------- offline update parity
def _offline_reference(ref, batch, key, lagrange: bool, n: int):
    """One pretraining step by hand: Q target (max backup over n actions, 2 drawn target
    critics), TD error over all critics, the CQL gap over uniform, pi(s) and pi(s') actions (all
    scored at s) with their importance weights, then the fixed-weight or Lagrange penalty and
    one Adam step of the critics (and of the multiplier, whose loss is minus the penalty)."""
    n_h, n_act = len(HIDDEN), 2

    def dist(actor, obs):
        out = trunk(actor, obs, n_h) @ actor["Dense_0"]["kernel"] + actor["Dense_0"]["bias"]
        return out[:, :2], jnp.clip(out[:, 2:], math.log(1e-5), math.log(10.0))

    k_target, k_rand, k_cur, k_nxt, _ = jax.random.split(key, 5)
    k_next, k_subset = jax.random.split(k_target)
    next_a, _ = samples(k_next, *dist(ref["actor"], batch.next_obs), n)
    idx = jax.random.randint(k_subset, (2,), 0, 10)
    rep_next = jnp.broadcast_to(batch.next_obs[:, None], (*next_a.shape[:2], 3))
    q_next_t = critics(ref["target"], rep_next, next_a, n_h)[idx]
    y = batch.reward + 0.99 * (1.0 - batch.terminated) * jnp.max(jnp.min(q_next_t, 0), -1)
    b = batch.reward.shape[0]
    rand_a = jax.random.uniform(k_rand, (b, n, n_act), minval=-1.0, maxval=1.0)
    cur_a, cur_lp = samples(k_cur, *dist(ref["actor"], batch.obs), n)
    nxt_a, nxt_lp = samples(k_nxt, *dist(ref["actor"], batch.next_obs), n)
    rep = jnp.broadcast_to(batch.obs[:, None], (b, n, 3))
    lam = jax.nn.softplus(ref["l"])

    def losses(c):
        q = critics(c, batch.obs, batch.action, n_h)  # (10, B)
        td = jnp.mean((q - y) ** 2)
        ood = jnp.concatenate(
            [
                critics(c, rep, rand_a, n_h)[idx] - n_act * math.log(0.5),
                critics(c, rep, nxt_a, n_h)[idx] - nxt_lp,  # Q(s, a' ~ pi(s')), as CQL's
                critics(c, rep, cur_a, n_h)[idx] - cur_lp,
            ],
            axis=-1,
        )
        gap = jnp.mean(jax.nn.logsumexp(ood, axis=-1) - q[idx], axis=-1)  # per drawn critic
        penalty = lam * (jnp.mean(gap) - 0.8) if lagrange else 5.0 * jnp.mean(gap)
        return td + penalty, (td, jnp.mean(gap))

    (loss, (td, gap)), grad = jax.value_and_grad(losses, has_aux=True)(ref["critic"])
    ref["critic"], ref["critic_opt"] = adam_step(ref["critic"], grad, ref["critic_opt"], 3e-4)
    if lagrange:  # d/dl of -softplus(l) (gap - g)
        l_grad = -jax.nn.sigmoid(ref["l"]) * (gap - 0.8)
        ref["l"], ref["l_opt"] = adam_step(ref["l"], l_grad, ref["l_opt"], 3e-4)
    return ref, {"critic_loss": loss, "bellman_loss": td, "cql_gap": gap}


def test_offline_update_matches_an_independent_reference():
    """The pretraining step's critic loss, TD term, CQL gap (uniform actions on [-1, 1]^|A|),
    penalty and multiplier step against a hand-written CQL step, with the fixed weight and with
    the Lagrange form."""
    batch = jax.tree.map(lambda x: x[0], _batches(jax.random.PRNGKey(6)))
    for lagrange in (False, True):
        method = WSRL(WSRLConfig(hidden=HIDDEN, n_actions=3, lagrange=lagrange))
        hp = method.default_hparams()
        state = method.init(jax.random.PRNGKey(2), 3, 2, hp)
        ref = {
            "actor": state.actor.params,
            "critic": state.critic.params,
            "target": state.target_critic,
            "l": state.multiplier.params + 0.4,  # lambda = softplus(p0 + 0.4), not 1
        }
        state = state._replace(multiplier=state.multiplier._replace(params=ref["l"]))
        ref |= {"critic_opt": adam_init(ref["critic"]), "l_opt": adam_init(ref["l"])}
        key = jax.random.PRNGKey(9)
        new, m = jax.jit(lambda s, b, k, m=method, hp=hp: m.update(s, b, k, hp, False))(
            state, batch, key
        )
        ref, rm = _offline_reference(ref, batch, key, lagrange, 3)
        for name, value in sorted(rm.items()):
            np.testing.assert_allclose(m[name], value, rtol=2e-5, err_msg=name)
        np.testing.assert_allclose(m["multiplier"], jax.nn.softplus(state.multiplier.params))
        assert_trees_close(new.critic.params, ref["critic"])
        if lagrange:
            np.testing.assert_allclose(new.multiplier.params, ref["l"], rtol=1e-6)
        else:
            np.testing.assert_array_equal(new.multiplier.params, state.multiplier.params)
