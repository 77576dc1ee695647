"""The one use of JAX internals (`core.jax_internals`) and the public DCE the shared offline key
relies on: these fail loudly when a JAX release moves them."""

import jax
import jax.numpy as jnp
from jax.interpreters import partial_eval as pe

from jaxo2o.core import jax_internals


def test_coordination_client_is_reachable_and_unset_in_one_process():
    """jax._src.distributed.global_state.client exists; without jax.distributed it is None."""
    assert jax_internals.coordination_client() is None


def test_public_dce_drops_unused_inputs():
    """`dce_jaxpr` marks exactly the inputs the kept outputs read (the shared offline key hashes
    only those): here y feeds nothing, x and z do."""
    closed = jax.make_jaxpr(lambda x, y, z: x * 2 + jnp.sin(z))(1.0, 2.0, 3.0)
    jaxpr, used = pe.dce_jaxpr(closed.jaxpr, [True])
    assert used == [True, False, True]
    assert len(jaxpr.invars) == 2
