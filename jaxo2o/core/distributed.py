"""One batch of runs over several processes (one per host, or several on one machine) with JAX's
multi-process runtime (`jax.distributed`).

Every process runs the same program on the same arguments: it plans the identical full batch
(planning is deterministic), and `core.runner.prepare` builds global arrays from that host data
(the runs axis split over the devices of ALL processes, the dataset replicated). What comes back
to the host is gathered from all processes (`gather`), so each process holds the full results.
Checkpoints and result files are written by process 0 only and read by every process: the
output folder must be on a filesystem all hosts share (NFS, a cluster's scratch, ...).

Configure it with `DistributedConfig` (the sweep's `--distributed.*` options) and call
`initialize` before anything touches a JAX device:

- explicit: `coordinator` is process 0's `host:port` (any free port; every process passes the
  same), `num_processes` the process count and `process_id` this process's index (0 ..
  num_processes - 1);
- `auto=True`: `jax.distributed.initialize()` detects all three from the cluster environment
  (SLURM, Open MPI, Cloud TPU; `detection` names one method, e.g. "mpi4py" under other MPIs);
  `coordinator` may still be given to override the detected address.

With one process (the default config) nothing is initialized and every helper here is a no-op,
so a single-process run behaves and performs exactly as without this module. On CPU the
cross-process computations need a collectives implementation; jax 0.10 uses gloo (TCP) by
default, and `initialize` sets it explicitly when none is configured.

The processes need not progress at the same pace: JAX's persistent compilation cache serves
process 0 only (only process 0 writes it, and on CPU the cache keys differ between processes),
so the others compile every program while process 0 may read them from the cache. Gloo gives
up when the processes set up their first collective on a set of devices more than 30 s apart,
so every collective made here is preceded by a barrier of the coordination service (`barrier`,
which waits up to `sync_timeout` seconds), and `connect` sets up the collectives of a mesh
while the processes are in step (the runner calls it before compiling: the compiled programs
themselves may hold collectives).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec

from jaxo2o.config import ConfigError
from jaxo2o.core.jax_internals import coordination_client

_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]]+):(\d+)$")


@dataclass(frozen=True)
class DistributedConfig:
    """How this process joins a multi-process run (the defaults: one process, no runtime)."""

    coordinator: str = ""  # host:port of process 0's coordinator service, the same for all
    num_processes: int = 1  # processes taking part (one per host, usually)
    process_id: int = 0  # this process's index, 0 .. num_processes - 1 (0 writes the files)
    auto: bool = False  # detect the three values above from SLURM / Open MPI / TPU / mpi4py
    detection: str = ""  # with auto: one of jax's detection methods (slurm, ompi, mpi4py, ...)
    timeout: int = 300  # seconds to wait for every process to join
    sync_timeout: int = 3600  # seconds a process waits for the others (compiling, say)

    def __post_init__(self):
        if self.num_processes < 1:
            raise ConfigError(f"distributed.num_processes: must be >= 1, got {self.num_processes}")
        for name in ("timeout", "sync_timeout"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"distributed.{name}: must be >= 1 second, got {getattr(self, name)}"
                )
        if self.detection and not self.auto:
            raise ConfigError("distributed.detection: only used with auto detection (auto=True)")
        if self.coordinator:
            m = _HOST_PORT.match(self.coordinator)
            if m is None or not 0 < int(m.group(2)) < 65536:
                raise ConfigError(
                    f"distributed.coordinator: expected host:port (e.g. 10.0.0.1:1234, "
                    f"localhost:5555), got {self.coordinator!r}"
                )
        if self.auto:
            if self.num_processes != 1 or self.process_id != 0:
                raise ConfigError(
                    "distributed.auto: the process count and id are detected from the "
                    "cluster environment; do not also pass num_processes or process_id"
                )
            return
        if not 0 <= self.process_id < self.num_processes:
            raise ConfigError(
                f"distributed.process_id: must be in 0..{self.num_processes - 1} "
                f"(num_processes={self.num_processes}), got {self.process_id}"
            )
        if self.num_processes > 1 and not self.coordinator:
            raise ConfigError(
                f"distributed.coordinator: {self.num_processes} processes need the host:port "
                "of process 0's coordinator (or --distributed.auto on a cluster)"
            )

    @property
    def enabled(self) -> bool:
        """Whether this configuration starts JAX's multi-process runtime."""
        return self.auto or self.num_processes > 1 or bool(self.coordinator)


def initialize(cfg: DistributedConfig) -> bool:
    """Join the multi-process run `cfg` describes (nothing to do for one process): returns
    whether the runtime was started. Call it before any JAX computation or device query."""
    if not cfg.enabled:
        return False
    if jax.distributed.is_initialized():
        raise RuntimeError("jax.distributed is already initialized in this process")
    if not jax.config.jax_cpu_collectives_implementation:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    kwargs: dict[str, Any] = {"initialization_timeout": cfg.timeout}
    if cfg.coordinator:
        kwargs["coordinator_address"] = cfg.coordinator
    if cfg.auto:
        if cfg.detection:
            kwargs["cluster_detection_method"] = cfg.detection
    else:  # exactly these values, no cluster detection
        kwargs |= {"num_processes": cfg.num_processes, "process_id": cfg.process_id}
        kwargs["cluster_detection_method"] = "deactivate"
    jax.distributed.initialize(**kwargs)  # RuntimeError if a device was already used
    _SYNC["timeout_ms"] = cfg.sync_timeout * 1000
    return True


_SYNC = {"timeout_ms": DistributedConfig.sync_timeout * 1000}
_BARRIERS = itertools.count()  # barrier ids: every process passes the same barriers in order


def process_index() -> int:
    return jax.process_index()


def is_main_process() -> bool:
    """True in the process that writes checkpoints and result files (process 0)."""
    return jax.process_index() == 0


def multi_process() -> bool:
    """Whether more than one process takes part in the computations."""
    return jax.process_count() > 1


def barrier(name: str) -> None:
    """Wait until every process reaches this point (no-op with one process): a barrier of the
    coordination service (no device collective), waiting up to `sync_timeout` seconds. Every
    process must pass the same barriers in the same order."""
    if jax.process_count() == 1:
        return
    barrier_id = f"jaxo2o/{next(_BARRIERS)}/{name}"
    client = coordination_client()
    if client is None:  # pragma: no cover - several processes without jax.distributed
        multihost_utils.sync_global_devices(barrier_id)
        return
    client.wait_at_barrier(barrier_id, _SYNC["timeout_ms"])


def check_devices(devices: list) -> None:
    """Every process must own a device of the mesh (each one runs the same programs)."""
    have = {d.process_index for d in devices}
    missing = sorted(set(range(jax.process_count())) - have)
    if missing:
        raise ValueError(
            f"devices: processes {missing} own none of the {len(devices)} devices given; with "
            "several processes shard over all devices (jax.devices())"
        )


def connect(mesh: Any) -> None:
    """Set up the collectives between the devices of `mesh` while the processes are in step (a
    barrier, then one tiny collective), so that later ones may start far apart in time."""
    if jax.process_count() == 1:
        return
    split = NamedSharding(mesh, PartitionSpec(mesh.axis_names))
    gather(global_array(np.zeros(mesh.devices.size, np.int32), split))


def global_array(x: Any, sharding: Any) -> jax.Array:
    """One global array with `sharding` from host data every process holds in full (the same
    values in each process): each process fills its own devices' shards."""
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        data = global_array(jax.random.key_data(x), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def place(tree: Any, sharding: Any) -> Any:
    """`global_array` on every leaf of a pytree."""
    return jax.tree.map(lambda x: global_array(x, sharding), tree)


def _identity(tree: Any) -> Any:
    return tree


def gather(tree: Any) -> Any:
    """The pytree with every leaf that spans several processes replaced by its full value as a
    numpy array (one collective for the whole tree); other leaves are returned as they are.
    With one process this returns `tree` itself. Every process must call it at the same point
    of the program, with the same tree."""
    if jax.process_count() == 1:
        return tree
    leaves, treedef = jax.tree.flatten(tree)
    spans = [
        i for i, x in enumerate(leaves) if isinstance(x, jax.Array) and not x.is_fully_addressable
    ]
    if not spans:
        return tree
    barrier("gather")
    named = [i for i in spans if isinstance(leaves[i].sharding, NamedSharding)]
    if named:
        parts = [leaves[i] for i in named]
        repl = [NamedSharding(x.sharding.mesh, PartitionSpec()) for x in parts]
        full = jax.jit(_identity, out_shardings=repl)(parts)
        for i, x in zip(named, full, strict=True):
            leaves[i] = np.asarray(x.addressable_data(0))
    other = [i for i in spans if i not in set(named)]
    if other:  # not made by the runner; jax's own gather, one leaf at a time
        for i in other:
            leaves[i] = multihost_utils.process_allgather(leaves[i], tiled=True)
    return jax.tree.unflatten(treedef, leaves)


def all_values(value: Any) -> np.ndarray:
    """Every process's `value` (a small array of the same shape in each), stacked: row i is
    process i's. With one process: `value` with a leading axis of 1."""
    x = np.asarray(value)
    if jax.process_count() == 1:
        return x[None]
    barrier("all_values")
    return np.asarray(multihost_utils.process_allgather(x, tiled=False))


def from_main(value: Any) -> np.ndarray:
    """Process 0's `value` (a small array of the same shape in every process), in every process."""
    if jax.process_count() == 1:
        return np.asarray(value)
    barrier("from_main")
    return np.asarray(multihost_utils.broadcast_one_to_all(np.asarray(value)))
