"""Offline phases computed once and restored by every line that would compute the same one.

Several online lines start from the same offline phase: the protocols of one method (iql-direct,
iql-buffer, iql-union), PEX (whose offline phase is IQL's, bit for bit), ACA and sac-direct (one
class, `alignment` only matters online). Instead of a list of which lines may share, the key of
an offline phase is computed from the phase itself:

- the jaxpr of one offline chunk (init, a chunk of updates, an evaluation) of one run, with
  every input it does not read removed (`dce_jaxpr`): two lines whose offline programs are the
  same computation get the same text, whatever their online parts, names or static settings;
- the values of the inputs that program reads: every run's key, the hyperparameters and run
  hyperparameters it uses (PEX's selection temperature, ACA's alignment schedule are not), the
  dataset, and the program's constants;
- the chunk count, the device count, the backend and the package versions.

Equal keys therefore mean equal offline results (same compiler, same inputs), and a restored
phase gives the online phase exactly what computing it would have. The phase's end (carry and
every offline evaluation) is kept in `<root>/<key>/` in the checkpoint format of
`core.checkpoint` (written atomically; a corrupt or foreign entry is reported and recomputed).

Why a jaxpr and not a declared list: a method cannot forget to name an online-only setting, and
a setting that does change the offline phase cannot be shared by mistake. `dce_jaxpr` is JAX's
own dead-code elimination (`jax.interpreters.partial_eval`, JAX's public path to it).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.interpreters import partial_eval as pe

from jaxo2o.core.checkpoint import Checkpointer
from jaxo2o.provenance import PACKAGES, package_versions

FORMAT = 1


def offline_key(trainer: Any, keys: Any, hp: Any, rhp: Any, dataset: Any, n_devices: int) -> str:
    """The key of a batch's offline phase (module docstring). `keys`, `hp`, `rhp`: the runs'
    (runs axis first, unpadded); `dataset`: the offline transitions."""

    def one_chunk(key, hp, rhp, data, c):
        carry = trainer.offline_start(key, hp)
        carry, metrics, k_eval = trainer.offline_chunk(carry, hp, rhp, data, c)
        return carry, metrics, trainer.evaluate(carry.state, k_eval, hp)

    first = lambda tree: jax.tree.map(lambda x: x[0], tree)
    inputs = (keys, hp, rhp, dataset, jnp.zeros((), jnp.int32))
    closed = jax.make_jaxpr(one_chunk)(keys[0], first(hp), first(rhp), *inputs[3:])
    jaxpr, used = pe.dce_jaxpr(closed.jaxpr, [True] * len(closed.jaxpr.outvars))
    h = hashlib.sha256()
    h.update(str(jaxpr).encode())
    leaves = jax.tree.leaves(inputs)
    assert len(leaves) == len(used), (len(leaves), len(used))
    for x in [*closed.consts, *(x for x, u in zip(leaves, used, strict=True) if u)]:
        x = np.ascontiguousarray(np.asarray(x))
        h.update(f"{x.dtype}{x.shape}".encode())
        h.update(x.tobytes())
    context = {
        "format": FORMAT,
        "chunks": trainer.offline_chunks,
        "devices": n_devices,
        "backend": jax.default_backend(),
        "packages": package_versions(PACKAGES),
    }
    h.update(json.dumps(context, sort_keys=True).encode())
    return h.hexdigest()


class SharedOfflinePhase(Checkpointer):
    """The end of one offline phase in a store shared by lines (and sweeps): restored instead
    of computed when present, saved once when computed. A failed save only warns (the run
    itself is not affected)."""

    def __init__(self, root: str | Path, key: str, background: bool | None = None) -> None:
        super().__init__(Path(root) / key[:32], key, every=1, background=background)
        self.label = "shared offline phase"

    def after_chunk(self, phase: str, chunk: int, carry: Any) -> None:
        if phase == "offline" and chunk + 1 == self.chunks.get("offline", 0):
            try:
                self.save(phase, chunk, carry, background=self.background)
            except OSError as e:
                self.write_failed(e)

    def write_failed(self, error: BaseException) -> None:
        if not isinstance(error, OSError):
            raise error
        print(f"{self.label} {self.dir}: not saved ({error})", file=sys.stderr, flush=True)
