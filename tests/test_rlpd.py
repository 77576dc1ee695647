"""RLPD (`jaxo2o.methods.rlpd`): each loss term against the spec's hand values
(`/work/shared/spec/calql_rlpd_wsrl.md` §2.7), the ensemble subset, and the update-to-data update
(G critic steps, then actor and temperature on the last batch) against a plain-jax reference."""

from __future__ import annotations

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
    squashed_sample,
    trunk,
)

from jaxo2o.core.losses import member_subset, subset_min, temperature_loss
from jaxo2o.methods.rlpd import (
    RLPD,
    RLPDConfig,
    ensemble_mean_mse,
    mean_q_actor_loss,
    rlpd_target,
)

Q_BAR = jnp.array([5.0, 3, 8, 2, 7, 6, 4, 9, 1, 10])[:, None]  # (10 critics, B = 1)


# ---------------------------------------------------------------- T2: target and critic loss
def _target(members, backup, mask=1.0):
    return rlpd_target(
        Q_BAR[jnp.array(members)],
        jnp.array([-1.0]),
        jnp.array([mask]),
        0.99,
        jnp.float32(0.5),
        jnp.array([-1.2]),
        backup,
    )


def test_target_min_over_the_subset_with_and_without_the_entropy_backup():
    np.testing.assert_allclose(_target([2, 6], True), [3.554], rtol=1e-6)
    np.testing.assert_allclose(_target([2, 6], False), [2.96], rtol=1e-6)
    np.testing.assert_allclose(_target([2, 6], True, mask=0.0), [-1.0], rtol=1e-6)
    np.testing.assert_allclose(_target([3], False), [0.98], rtol=1e-6)  # AntMaze: 1 of 10


def test_critic_loss_is_the_mean_over_critics_and_rows():
    q = jnp.full((10, 1), 3.0)
    np.testing.assert_allclose(ensemble_mean_mse(q, jnp.array([3.554])), 0.306916, rtol=1e-5)


def test_subset_draws_distinct_members_without_replacement_and_may_repeat_with():
    seen, repeats = set(), 0
    for i in range(200):
        k = jax.random.PRNGKey(i)
        idx = np.asarray(member_subset(k, 10, 2, replace=False))
        assert idx[0] != idx[1] and idx.min() >= 0 and idx.max() < 10
        seen.update(idx.tolist())
        w = np.asarray(member_subset(k, 10, 2, replace=True))
        repeats += int(w[0] == w[1])
    assert seen == set(range(10))
    assert 5 <= repeats <= 45  # ~ 200 / 10 expected
    np.testing.assert_allclose(subset_min(Q_BAR, jax.random.PRNGKey(0), 10, False), [1.0])


# ---------------------------------------------------------------- T3: actor and temperature
def test_actor_uses_the_ensemble_mean():
    q = jnp.arange(1.0, 11.0)[:, None]
    np.testing.assert_allclose(mean_q_actor_loss(1.0, jnp.array([-2.0]), q), -7.5)


def test_temperature_multiplies_alpha_with_target_minus_half_the_action_size():
    log_alpha = jnp.float32(0.0)
    value, grad = jax.value_and_grad(temperature_loss)(log_alpha, jnp.array([-2.0]), -3.0)
    np.testing.assert_allclose([value, grad], [5.0, 5.0], rtol=1e-6)
    tx = optax.adam(3e-4)
    upd, _ = tx.update(grad, tx.init(log_alpha))
    np.testing.assert_allclose(jnp.exp(log_alpha + upd), 0.9997000, rtol=1e-6)
    assert RLPD().default_hparams().target_entropy_per_dim == -0.5


# ---------------------------------------------------------------- networks
def test_critics_have_layer_norm_after_every_hidden_layer_and_the_actor_none():
    method = RLPD(RLPDConfig(hidden=(8, 8)))
    s = method.init(jax.random.PRNGKey(0), 3, 2, method.default_hparams())
    critic = s.critic.params["VmapCritic_0"]["MLP_0"]
    assert {"LayerNorm_0", "LayerNorm_1"} <= set(critic) and critic["Dense_0"]["kernel"].shape[
        0
    ] == 10
    assert not any("LayerNorm" in k for k in s.actor.params["MLP_0"])


# ---------------------------------------------------------------- update parity (G = 2)
HIDDEN = (8, 8)


def _batches(key):
    return random_batches(key, (False, False, True, False), g=3)


def _reference(ref, batches, keys, backup_entropy: bool, n_min: int):
    n_h = len(HIDDEN)

    def dist(actor, obs):
        out = trunk(actor, obs, n_h) @ actor["Dense_0"]["kernel"] + actor["Dense_0"]["bias"]
        return out[:, :2], jnp.clip(out[:, 2:], -20.0, 2.0)

    for i in range(keys.shape[0]):
        batch = jax.tree.map(lambda x, i=i: x[i], batches)
        k_critic, k_actor = jax.random.split(keys[i])
        k_next, k_subset = jax.random.split(k_critic)
        alpha = jnp.exp(ref["log_alpha"])
        next_a, next_lp = squashed_sample(k_next, *dist(ref["actor"], batch.next_obs))
        idx = jax.random.choice(k_subset, 10, (n_min,), replace=False)
        next_q = jnp.min(critics(ref["target"], batch.next_obs, next_a, n_h)[idx], axis=0)
        if backup_entropy:
            next_q = next_q - alpha * next_lp
        y = batch.reward + 0.99 * (1.0 - batch.terminated) * next_q

        def critic_loss(c, batch=batch, y=y):
            return jnp.mean((critics(c, batch.obs, batch.action, n_h) - y) ** 2)

        grad = jax.grad(critic_loss)(ref["critic"])
        ref["critic"], ref["critic_opt"] = adam_step(ref["critic"], grad, ref["critic_opt"], 3e-4)
        ref["target"] = polyak(ref["target"], ref["critic"], 0.005)
    alpha = jnp.exp(ref["log_alpha"])

    def actor_loss(actor):
        a, lp = squashed_sample(k_actor, *dist(actor, batch.obs))
        return jnp.mean(alpha * lp - jnp.mean(critics(ref["critic"], batch.obs, a, n_h), 0)), lp

    grad, lp = jax.grad(actor_loss, has_aux=True)(ref["actor"])
    ref["actor"], ref["actor_opt"] = adam_step(ref["actor"], grad, ref["actor_opt"], 3e-4)
    t_grad = alpha * (-jnp.mean(lp) + 1.0)  # H_target = -|A| / 2 = -1
    ref["log_alpha"], ref["alpha_opt"] = adam_step(ref["log_alpha"], t_grad, ref["alpha_opt"], 3e-4)
    ref["entropy"] = -jnp.mean(lp)
    return ref


def test_update_many_matches_an_independent_reference():
    for backup, n_min in ((True, 2),):  # (False, 1): the target's unit tests above
        method = RLPD(RLPDConfig(hidden=HIDDEN, n_target_critics=n_min, backup_entropy=backup))
        hp = method.default_hparams()
        state = method.init(jax.random.PRNGKey(1), 3, 2, hp)
        ref = {
            "actor": state.actor.params,
            "critic": state.critic.params,
            "target": state.target_critic,
            "log_alpha": state.log_alpha.params,
        }
        ref |= {f"{k}_opt": adam_init(ref[k]) for k in ("actor", "critic")}
        ref["alpha_opt"] = adam_init(ref["log_alpha"])
        update = jax.jit(lambda s, b, k, m=method, hp=hp: m.update_many(s, b, k, hp, True))
        reference = jax.jit(_reference, static_argnums=(3, 4))
        for step in range(2):
            batches = _batches(jax.random.PRNGKey(10 + step))
            keys = jax.random.split(jax.random.PRNGKey(20 + step), 3)
            state, metrics = update(state, batches, keys)
            ref = reference(ref, batches, keys, backup, n_min)
        assert_trees_close(state.critic.params, ref["critic"])
        assert_trees_close(state.target_critic, ref["target"])
        assert_trees_close(state.actor.params, ref["actor"])
        assert_trees_close(state.log_alpha.params, ref["log_alpha"])
        nets = {"critic_opt": state.critic, "actor_opt": state.actor}
        assert_first_moments_close(nets | {"alpha_opt": state.log_alpha}, ref)
        np.testing.assert_allclose(metrics["entropy"], ref["entropy"], rtol=1e-5)
        # three critic steps per call, one actor step: the Adam counts say so
        assert int(state.critic.opt_state[0].count) == 6
        assert int(state.actor.opt_state[0].count) == 2
