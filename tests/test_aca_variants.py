"""The collapse study's ACA variant (`benchmarks/aca_variants.py`): each diagnostic switch does
what it says, and with every switch at its default the variant is ACA exactly."""

import jax
import numpy as np
import pytest

from benchmarks.aca_variants import ACAVariant, ACAVariantConfig
from jaxo2o.config import ConfigError
from jaxo2o.methods.aca import ACA
from jaxo2o.methods.aca_policies import policy_log_prob, policy_sample
from jaxo2o.methods.aca_settings import ACAConfig
from tests.test_aca import HIDDEN, random_batch, small, trained_offline


def test_default_variant_is_aca_exactly():
    """Same switch, same online update, bit for bit (ACA and sac-direct)."""
    hp = small().default_hparams()
    batch, key = random_batch(jax.random.PRNGKey(5)), jax.random.PRNGKey(6)
    for alignment in (True, False):
        off = trained_offline(small(alignment=alignment), hp)
        outs = []
        official = ACA(ACAConfig(hidden=HIDDEN, alignment=alignment))
        for method in (official, ACAVariant(ACAVariantConfig(hidden=HIDDEN, alignment=alignment))):
            on = method.to_online(off, None, hp)
            outs.append(method.update(on, batch, key, hp, online=True))
        same = jax.tree.map(lambda a, b: bool(np.array_equal(a, b)), outs[0], outs[1])
        assert all(jax.tree.leaves(same)), alignment


def test_online_temperature_keep_carries_the_offline_alpha_and_reset_is_the_default():
    hp = small().default_hparams()
    off = trained_offline(small(), hp)
    keep = ACAVariant(ACAVariantConfig(hidden=HIDDEN, online_temperature="keep"))
    on = keep.to_online(off, None, hp)
    assert float(on.log_alpha.params) == float(off.log_alpha.params) != 0.0
    assert float(small().to_online(off, None, hp).log_alpha.params) == 0.0
    with pytest.raises(ConfigError, match="online_temperature"):
        ACAVariantConfig(online_temperature="anneal")


def test_online_ml_keeps_the_sac_ml_actor_loss_online_by_hand():
    """`online_ml=True` (a diagnostic, not official): the online actor loss is SAC+ML's,
    lambda mean(alpha log pi(a~|s) - q) - mean(log pi(a_D|s)), lambda = ml_alpha / mean|q|, with
    the critic just updated; the default is plain SAC's mean(alpha log pi - q)."""
    hp = small().default_hparams()
    off = trained_offline(small(alignment=False), hp)
    batch = random_batch(jax.random.PRNGKey(5))
    key = jax.random.PRNGKey(6)
    losses = {}
    for ml in (False, True):
        method = ACAVariant(ACAVariantConfig(hidden=HIDDEN, alignment=False, online_ml=ml))
        on = method.to_online(off, None, hp)
        new, metrics = method.update(on, batch, key, hp, online=True)
        loc, log_std = method.policy(on.actor.params, batch.obs)
        a, logp = policy_sample("squashed", jax.random.split(key, 3)[2], loc, log_std)
        q = np.min(np.asarray(method.q(new.critic.params, batch.obs, a)), axis=0)
        alpha = float(np.exp(new.log_alpha.params))
        sac = np.mean(alpha * np.asarray(logp) - q)
        if ml:
            logp_data = np.asarray(policy_log_prob("squashed", loc, log_std, batch.action))
            expected = float(hp.ml_alpha) / np.mean(np.abs(q)) * sac - np.mean(logp_data)
        else:
            expected = sac
        np.testing.assert_allclose(float(metrics["actor_loss"]), expected, rtol=1e-4)
        losses[ml] = float(metrics["actor_loss"])
    assert losses[True] != pytest.approx(losses[False], rel=1e-2)
    with pytest.raises(ConfigError, match="online_ml"):
        ACAVariantConfig(online_ml="yes")


def test_fresh_optimizers_and_frozen_critic_diagnostics():
    """`online_optimizers="fresh"` (not official) gives the actor, critic and temperature new
    Adam states at the switch (count 0, zero moments) where the default carries the offline
    ones; `online_frozen="critic"` leaves the critic's parameters and Adam state untouched by an
    online update while the actor still moves. `actor_step_norm` is the actor's parameter change."""
    hp = small().default_hparams()
    off = trained_offline(small(alignment=False), hp)
    carry = ACAVariant(ACAVariantConfig(hidden=HIDDEN, alignment=False)).to_online(off, None, hp)
    fresh_method = ACAVariant(
        ACAVariantConfig(hidden=HIDDEN, alignment=False, online_optimizers="fresh")
    )
    fresh = fresh_method.to_online(off, None, hp)
    for name in ("actor", "critic", "log_alpha"):
        carried, new = getattr(carry, name).opt_state[0], getattr(fresh, name).opt_state[0]
        assert int(carried.count) == 3 and int(new.count) == 0, name
        assert max(float(np.abs(m).max()) for m in jax.tree.leaves(carried.mu)) > 0, name
        assert all(float(np.abs(m).max()) == 0 for m in jax.tree.leaves(new.mu)), name
    # a fresh Adam's first step moves every parameter by about lr (bias-corrected sign step)
    batch, key = random_batch(jax.random.PRNGKey(5)), jax.random.PRNGKey(6)
    stepped, metrics = fresh_method.update(fresh, batch, key, hp, online=True)
    change = jax.tree.map(lambda a, b: np.abs(np.asarray(a - b)), stepped.actor.params,
                          fresh.actor.params)  # fmt: skip
    flat = np.concatenate([c.ravel() for c in jax.tree.leaves(change)])
    assert np.median(flat[flat > 0]) == pytest.approx(float(hp.actor_lr), rel=0.05)
    assert float(metrics["actor_step_norm"]) == pytest.approx(np.sqrt(np.sum(flat**2)), rel=1e-4)

    frozen = ACAVariant(ACAVariantConfig(hidden=HIDDEN, online_frozen="critic"))
    on = frozen.to_online(trained_offline(small(), hp), None, hp)
    new, _ = frozen.update(on, batch, key, hp, online=True)
    same = jax.tree.map(
        lambda a, b: bool(np.all(np.asarray(a) == np.asarray(b))), new.critic, on.critic
    )
    assert all(jax.tree.leaves(same))
    moved = jax.tree.map(lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))),
                         new.actor.params, on.actor.params)  # fmt: skip
    assert any(jax.tree.leaves(moved))
    for field, bad in (("online_optimizers", "reset"), ("online_frozen", "actor")):
        with pytest.raises(ConfigError, match=field):
            ACAVariantConfig(**{field: bad})
