"""SAC's defaults (jaxrl's: target entropy -dim(A)/2, log-std in [-10, 2]) reach the update and
the policy, and the behaviour SAC that makes the datasets keeps the values it was made with."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

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
