"""SAC's defaults (jaxrl's: target entropy -dim(A)/2, log-std in [-10, 2]) reach the update and
the policy, and the behaviour SAC that makes the datasets keeps the values it was made with."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
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

from jaxo2o.config import ConfigError
from jaxo2o.core.optim import NetState
from jaxo2o.core.transitions import Transitions
from jaxo2o.data.generate import behaviour_method
from jaxo2o.data.tiers import TIERS
from jaxo2o.methods.sac import SAC, SACConfig, SACHParams

OBS, ACT = 3, 2


def test_defaults_are_jaxrls():
    assert float(SACHParams().target_entropy_per_dim) == -0.5  # -action_dim / 2
    assert (SACConfig().log_std_min, SACConfig().log_std_max) == (-10.0, 2.0)
    sac = SAC(SACConfig(hidden=(4,)))
    state = sac.init(jax.random.PRNGKey(0), OBS, ACT, sac.default_hparams())
    params = jax.tree.map(jnp.zeros_like, state.actor.params)
    params["Dense_0"]["bias"] = jnp.asarray([0.0, 0.0, -30.0, 30.0])
    _, log_std = sac.policy(params, jnp.zeros((1, OBS)), ACT)
    np.testing.assert_array_equal(log_std, [[-10.0, 2.0]])
    with pytest.raises(ConfigError, match="sac.log_std_min"):
        SACConfig(log_std_min=3.0)


def _entropy_probe(sac: SAC, hp) -> float:
    """log alpha after one update from 0, with a policy of entropy ~ -0.75 per dimension (mean
    0, std 0.114): between jaxrl's target -dim(A)/2 = -1 and -dim(A) = -2 for two dimensions."""
    state = sac.init(jax.random.PRNGKey(0), OBS, ACT, hp)
    params = jax.tree.map(jnp.zeros_like, state.actor.params)
    params["Dense_0"]["bias"] = jnp.asarray([0.0, 0.0, np.log(0.114), np.log(0.114)])
    state = state._replace(actor=NetState(params, state.actor.opt_state))
    k = jax.random.split(jax.random.PRNGKey(1), 3)
    n = 256
    batch = Transitions(
        obs=jax.random.normal(k[0], (n, OBS)),
        action=jax.random.uniform(k[1], (n, ACT), minval=-1, maxval=1),
        reward=jnp.zeros(n),
        next_obs=jax.random.normal(k[2], (n, OBS)),
        terminated=jnp.zeros(n, bool),
        truncated=jnp.zeros(n, bool),
    )
    new, m = sac.update(state, batch, jax.random.PRNGKey(2), hp, online=True)
    assert float(m["entropy"]) == pytest.approx(-1.5, abs=0.2)
    return float(new.log_alpha.params)


def test_the_update_aims_at_the_default_target_entropy():
    """Entropy -1.5: above the old target -2 (alpha falls), below jaxrl's -1 (alpha rises)."""
    sac = SAC(SACConfig(hidden=(4,)))
    assert _entropy_probe(sac, sac.default_hparams()) > 0.0
    assert _entropy_probe(sac, sac.default_hparams(target_entropy_per_dim=-1.0)) < 0.0


def test_behaviour_sac_keeps_the_values_its_datasets_were_made_with():
    """The datasets are hashed by recipe: the SAC that makes them passes its target entropy
    (-dim(A)) and log-std bounds ([-20, 2]) explicitly, so SAC's defaults do not move them."""
    for tier in TIERS.values():
        for data in tier.tasks:
            if not hasattr(data, "sac"):
                continue  # the mazes' datasets come from a waypoint controller
            method, hp = behaviour_method(data)
            assert float(hp.target_entropy_per_dim) == -1.0
            assert (method.config.log_std_min, method.config.log_std_max) == (-20.0, 2.0)
            assert method.config.hidden == tuple(data.sac.hidden)


# ---------------------------------------------------------------- update parity
def _reference_update(ref: dict, batch: Transitions, key, target_entropy: float) -> dict:
    """jaxrl's SAC step written out by hand: critic (min of two target critics, entropy term in
    the target, sum over critics of the mean squared error), actor against the updated critic,
    temperature alpha (H - H_target), then the target's Polyak step."""
    n_h = 2

    def dist(actor, obs):
        out = trunk(actor, obs, n_h) @ actor["Dense_0"]["kernel"] + actor["Dense_0"]["bias"]
        return out[:, :ACT], jnp.clip(out[:, ACT:], -10.0, 2.0)

    k_next, k_pi = jax.random.split(key)
    alpha = jnp.exp(ref["log_alpha"])
    next_a, next_lp = squashed_sample(k_next, *dist(ref["actor"], batch.next_obs))
    next_q = jnp.min(critics(ref["target"], batch.next_obs, next_a, n_h), axis=0)
    y = batch.reward + 0.99 * (1.0 - batch.terminated) * (next_q - alpha * next_lp)

    def critic_loss(c):
        return jnp.sum(jnp.mean((critics(c, batch.obs, batch.action, n_h) - y) ** 2, axis=1))

    grad = jax.grad(critic_loss)(ref["critic"])
    ref["critic"], ref["critic_opt"] = adam_step(ref["critic"], grad, ref["critic_opt"], 3e-4)

    def actor_loss(actor):
        a, lp = squashed_sample(k_pi, *dist(actor, batch.obs))
        return jnp.mean(alpha * lp - jnp.min(critics(ref["critic"], batch.obs, a, n_h), 0)), lp

    grad, lp = jax.grad(actor_loss, has_aux=True)(ref["actor"])
    ref["actor"], ref["actor_opt"] = adam_step(ref["actor"], grad, ref["actor_opt"], 3e-4)
    t_grad = alpha * (-jnp.mean(lp) - target_entropy)
    ref["log_alpha"], ref["alpha_opt"] = adam_step(ref["log_alpha"], t_grad, ref["alpha_opt"], 3e-4)
    ref["target"] = polyak(ref["target"], ref["critic"], 0.005)
    ref["entropy"] = -jnp.mean(lp)
    return ref


def test_update_matches_an_independent_reference():
    """Three updates from alpha = 0.3 (not 1, where alpha x and x / alpha agree) against the
    hand-written step: every parameter tree and log alpha agree."""
    sac = SAC(SACConfig(hidden=(8, 8)))
    hp = sac.default_hparams(init_temperature=0.3)
    state = sac.init(jax.random.PRNGKey(1), OBS, ACT, hp)
    ref = {
        "actor": state.actor.params,
        "critic": state.critic.params,
        "target": state.target_critic,
        "log_alpha": state.log_alpha.params,
    }
    ref |= {f"{k}_opt": adam_init(ref[k]) for k in ("actor", "critic")}
    ref["alpha_opt"] = adam_init(ref["log_alpha"])
    update = jax.jit(lambda s, b, k: sac.update(s, b, k, hp, True))
    reference = jax.jit(_reference_update, static_argnums=3)
    for step in range(3):
        batch = jax.tree.map(
            lambda x: x[0], random_batches(jax.random.PRNGKey(10 + step), (False, True, False))
        )
        batch = batch._replace(reward=batch.reward * 5.0)
        key = jax.random.PRNGKey(20 + step)
        state, metrics = update(state, batch, key)
        ref = reference(ref, batch, key, -0.5 * ACT)
    assert_trees_close(state.critic.params, ref["critic"])
    assert_trees_close(state.target_critic, ref["target"])
    assert_trees_close(state.actor.params, ref["actor"])
    assert_trees_close(state.log_alpha.params, ref["log_alpha"])
    nets = {"critic_opt": state.critic, "actor_opt": state.actor, "alpha_opt": state.log_alpha}
    assert_first_moments_close(nets, ref)
    np.testing.assert_allclose(metrics["entropy"], ref["entropy"], rtol=1e-5)
    assert float(metrics["alpha"]) != pytest.approx(1.0, abs=0.1)
