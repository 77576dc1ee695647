"""The runs' final method states, kept in a line's result folder so its policies can be evaluated
again later (`python -m jaxo2o.evaluate <folder>`).

`final_state.npz` holds the leaves of the state pytree (runs axis first) in tree order. The tree
structure is not stored: it is rebuilt from the experiment in meta.json (`state_template`), the
same way the run built it, and the file's leaves must match it in number, shape and dtype.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import jax
import numpy as np

FILE = "final_state.npz"


def save_final_state(folder: Path, state: Any) -> Path:
    """Write the runs' final states (runs axis first) to `folder/final_state.npz` (atomically)."""
    path = Path(folder) / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{FILE}.", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            leaves = jax.tree.leaves(state)
            np.savez(f, **{f"leaf_{i:05d}": np.asarray(x) for i, x in enumerate(leaves)})
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def state_template(method: Any, obs_size: int, act_size: int, hp: Any, online: bool) -> Any:
    """The shape of one run's final state: `init`, then `to_online` if the run went online."""

    def build(key):
        state = method.init(key, obs_size, act_size, hp)
        return method.to_online(state, key, hp) if online else state

    return jax.eval_shape(build, jax.random.PRNGKey(0))


def load_final_state(folder: Path, template: Any, n_runs: int) -> Any:
    """The runs' final states (runs axis first) from `folder/final_state.npz`, checked against
    one run's `template`; raises ValueError naming the file and the first mismatch."""
    path = Path(folder) / FILE
    if not path.is_file():
        raise ValueError(
            f"{path}: no final states in this folder (sweeps write them since this version; "
            "run the sweep again with --force)"
        )
    with np.load(path) as f:
        leaves = [f[k] for k in sorted(f.files)]
    specs, treedef = jax.tree.flatten(template)
    if len(leaves) != len(specs):
        raise ValueError(f"{path}: {len(leaves)} arrays, the method's state has {len(specs)}")
    for i, (x, s) in enumerate(zip(leaves, specs, strict=True)):
        want = (n_runs, *s.shape)
        if x.shape != want or x.dtype != s.dtype:
            raise ValueError(
                f"{path}: array {i} has shape {x.shape} {x.dtype}, expected {want} {s.dtype}"
            )
    return jax.tree.unflatten(treedef, leaves)
