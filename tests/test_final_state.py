"""`experiment.final_state`: the runs' final states survive the round trip to final_state.npz,
and a file that does not fit the method's state is refused naming the mismatch."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxo2o.core.checkpoint import Checkpointer
from jaxo2o.experiment.final_state import load_final_state, save_final_state, state_template
from jaxo2o.experiment.plan import build_method


@pytest.fixture(scope="module")
def iql():
    return build_method("iql", {"hidden": "8,8"}, offline_steps=10)


def test_round_trip_restores_every_run(tmp_path, iql):
    hp = iql.default_hparams()
    template = state_template(iql, 4, 2, hp, online=True)
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    states = jax.vmap(lambda k: iql.to_online(iql.init(k, 4, 2, hp), k, hp))(keys)
    save_final_state(tmp_path, jax.tree.map(np.asarray, states))
    back = load_final_state(tmp_path, template, n_runs=3)
    assert jax.tree.structure(back) == jax.tree.structure(states)
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(states), strict=True):
        np.testing.assert_array_equal(a, np.asarray(b))
    # the runs differ (different keys), so an order or run mix-up would show
    assert any(not np.array_equal(x[0], x[1]) for x in jax.tree.leaves(back))


def test_a_state_of_another_shape_is_refused(tmp_path, iql):
    hp = iql.default_hparams()
    other = build_method("iql", {"hidden": "4,4"}, offline_steps=10)
    states = jax.vmap(lambda k: other.init(k, 4, 2, hp))(jax.random.split(jax.random.PRNGKey(0), 2))
    save_final_state(tmp_path, states)
    with pytest.raises(ValueError, match="final_state.npz: array .* has shape"):
        load_final_state(tmp_path, state_template(iql, 4, 2, hp, online=False), n_runs=2)
    with pytest.raises(ValueError, match="no final states"):
        load_final_state(tmp_path / "empty", state_template(iql, 4, 2, hp, online=False), 2)


def test_checkpoint_round_trip_keeps_zero_size_leaves(tmp_path):
    """An MJX simulator state in the online carry has zero-size fields (orbax refuses to write
    them): the checkpoint leaves them out and restores them from their recorded shapes."""
    carry = {
        "act": np.zeros((2, 0), np.float32),
        "qpos": np.arange(6, dtype=np.float32).reshape(2, 3),
    }
    ckpt = Checkpointer(tmp_path, "k")
    ckpt.begin({"online": 1}, {}, n_runs=2)
    ckpt.save("online", 0, carry)
    resume = Checkpointer(tmp_path, "k").restore({"online": carry}, {"online": {}})
    assert resume is not None
    by_shape = {x.shape: x for x in resume.carry}
    assert by_shape[(2, 0)].dtype == np.float32
    np.testing.assert_array_equal(by_shape[(2, 3)], carry["qpos"])
