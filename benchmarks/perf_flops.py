"""Floating-point operations of one update step, counted three ways.

1. From the network shapes: every method writes down the MLP evaluations of its update
   (`Method.flop_passes`, counted by `jaxo2o.core.flops`).
2. From the traced program (`jaxpr_dot_flops`): the dot products JAX traced, before XLA sees
   them; it equals count 1 when the pass list is complete.
3. From XLA (`xla_cost`): the compiled program's own cost analysis, after its optimisations
   (common-subexpression elimination can remove a recomputed forward pass) and including every
   elementwise operation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from jaxo2o.core.flops import Pass, dense_flops, recomputed_flops, total_flops

__all__ = ["Pass", "dense_flops", "jaxpr_dot_flops", "recomputed_flops", "total_flops"]


def update_passes(
    method: Any, obs_size: int, act_size: int, batch: int, online: bool = True
) -> list[Pass]:
    """Every MLP evaluation in one `method.update(..., online)`, as the method writes it down
    (`Method.flop_passes`); a method without it fails here rather than being skipped."""
    return method.flop_passes(obs_size, act_size, batch, online)


# ------------------------------------------------------------------ traced program
def _dot_flops(eqn: Any) -> int:
    (lhs_contract, _), (lhs_batch, _) = eqn.params["dimension_numbers"]
    lhs, rhs = (v.aval.shape for v in eqn.invars)
    out = eqn.outvars[0].aval.shape
    k = int(np.prod([lhs[d] for d in lhs_contract], dtype=np.int64))
    del rhs, lhs_batch  # the output shape holds the batch and free dimensions
    return 2 * int(np.prod(out, dtype=np.int64)) * k


def _subjaxprs(eqn: Any) -> list[tuple[Any, int]]:
    """(inner jaxpr, times it runs) for the higher-order primitives an update can contain."""
    out = []
    for key, val in eqn.params.items():
        vals = val if isinstance(val, list | tuple) else [val]
        for v in vals:
            inner = getattr(v, "jaxpr", v)
            if hasattr(inner, "eqns"):
                times = eqn.params.get("length", 1) if eqn.primitive.name == "scan" else 1
                if eqn.primitive.name == "cond" and key == "branches":
                    times = 1  # counted once per branch: callers should avoid conds
                out.append((inner, int(times)))
    return out


def _jaxpr_dots(jaxpr: Any) -> int:
    total = 0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            total += _dot_flops(eqn)
        for inner, times in _subjaxprs(eqn):
            total += times * _jaxpr_dots(inner)
    return total


def jaxpr_dot_flops(fn: Callable[..., Any], *args: Any) -> int:
    """Matrix-product FLOPs of `fn(*args)` as traced (scans multiply their body)."""
    closed = jax.make_jaxpr(fn)(*args)
    return _jaxpr_dots(closed.jaxpr)


# ------------------------------------------------------------------ XLA
def xla_cost(compiled: Any) -> dict[str, float]:
    """FLOPs and bytes accessed from XLA's cost analysis of a compiled program."""
    ca = compiled.cost_analysis()
    if isinstance(ca, list):
        ca = ca[0] if ca else {}
    ca = ca or {}
    return {"flops": float(ca.get("flops", 0.0)), "bytes": float(ca.get("bytes accessed", 0.0))}
