"""The one place that reaches into JAX's internals, so that a JAX release that moves them breaks
here and in `tests/test_jax_internals.py`, not in the middle of a multi-host sweep.

- `coordination_client()`: the client of `jax.distributed`'s coordination service. Its
  `wait_at_barrier` is a barrier without a device collective (gloo gives up when two processes
  set up their first collective more than 30 s apart; `core.distributed.barrier` needs a wait
  that does not). JAX exposes no public handle on it (jax 0.10.2, pinned in requirements.lock).
"""

from __future__ import annotations

from typing import Any

from jax._src import distributed as _jax_distributed


def coordination_client() -> Any:
    """The coordination service's client, or None when `jax.distributed` is not initialized."""
    state = getattr(_jax_distributed, "global_state", None)
    if state is None or not hasattr(state, "client"):
        raise RuntimeError(
            "jax internals moved: jax._src.distributed.global_state.client is gone; update "
            "jaxo2o/core/jax_internals.py for this JAX release"
        )
    return state.client
