"""The tiny SAC batch of `sharding_check.py` run by two processes together, or by one process on
two forced host devices; used by test_multihost.py in subprocesses (the device count and the
distributed runtime must be set up before jax is used):

    python tests/multihost_check.py worker OUT_DIR PORT PROCESS_ID   (twice: ids 0 and 1)
    python tests/multihost_check.py single OUT_DIR

A worker runs the batch with a checkpointer in OUT_DIR/checkpoints (written by process 0), saves
what it holds to OUT_DIR/proc<id>.npz, then runs the batch again from the last checkpoint.
"""

from __future__ import annotations

import os
import sys

if sys.argv[1] == "single":
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
    ).strip()

from pathlib import Path  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
from conftest import cache_dir, make_tiny_sac  # noqa: E402  (tests/ is this script's folder)

from jaxo2o.core import distributed  # noqa: E402
from jaxo2o.core.checkpoint import Checkpointer  # noqa: E402
from jaxo2o.core.runner import broadcast_tree, enable_compilation_cache, run_batch  # noqa: E402

N_RUNS = 3  # odd on purpose: on 2 devices the batch is padded to 4, and the pad dropped


def arrays(tag: str, res) -> dict[str, np.ndarray]:
    out = {f"{tag}/n_devices": np.asarray(res.n_devices)}
    for phase, metrics in res.metrics.items():
        for name, value in metrics.items():
            out[f"{tag}/{phase}/{name}"] = value
    for i, leaf in enumerate(jax.tree.leaves(res.state)):
        out[f"{tag}/state/{i}"] = leaf
    for i, leaf in enumerate(jax.tree.leaves(res.buffer)):
        out[f"{tag}/buffer/{i}"] = leaf
    return out


def batch():
    tiny = make_tiny_sac()
    keys = jax.random.split(jax.random.PRNGKey(11), N_RUNS)
    hp, rhp = broadcast_tree(tiny.hp, N_RUNS), broadcast_tree(tiny.rhp, N_RUNS)
    return tiny.trainer, keys, hp, rhp


def worker(out: Path, port: int, pid: int) -> None:
    cfg = distributed.DistributedConfig(f"localhost:{port}", num_processes=2, process_id=pid)
    assert distributed.initialize(cfg)
    enable_compilation_cache(cache_dir())
    assert jax.process_count() == 2 and len(jax.local_devices()) == 1, jax.devices()
    trainer, keys, hp, rhp = batch()
    ckpt = Checkpointer(out / "checkpoints", "multihost-check")
    res = run_batch(trainer, keys, hp, rhp, checkpoint=ckpt)
    data = arrays("run", res)
    data["saves"] = np.asarray(len(ckpt.saves))
    data["process_count"] = np.asarray(jax.process_count())
    distributed.barrier("first run done")
    again = Checkpointer(out / "checkpoints", "multihost-check")
    res2 = run_batch(trainer, keys, hp, rhp, checkpoint=again)  # from the final checkpoint
    data |= arrays("resumed", res2)
    data["resumed_from"] = np.asarray(res2.resumed_from or "")
    np.savez(out / f"proc{pid}.npz", **data)


def single(out: Path) -> None:
    enable_compilation_cache(cache_dir())
    assert len(jax.devices()) == 2, jax.devices()
    trainer, keys, hp, rhp = batch()
    np.savez(out / "single.npz", **arrays("run", run_batch(trainer, keys, hp, rhp)))


if __name__ == "__main__":
    if sys.argv[1] == "worker":
        worker(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    else:
        single(Path(sys.argv[2]))
