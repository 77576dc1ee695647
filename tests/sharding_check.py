"""Run the tiny SAC batch on 1 device and on 2 forced host devices, and on 2 devices stopped
after a checkpoint and resumed from it; save all three to an .npz file.

Used by test_sharding.py in a subprocess, because the device count must be fixed before jax
is imported: ``python tests/sharding_check.py OUT.npz``.
"""

from __future__ import annotations

import os
import sys

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
).strip()

import jax  # noqa: E402
import numpy as np  # noqa: E402
from conftest import cache_dir, make_tiny_sac  # noqa: E402  (tests/ is this script's folder)

from jaxo2o.core.checkpoint import Checkpointer  # noqa: E402
from jaxo2o.core.runner import broadcast_tree, enable_compilation_cache, run_batch  # noqa: E402

N_RUNS = 3  # odd on purpose: on 2 devices the batch is padded to 4, and the pad dropped


def main(out: str) -> None:
    enable_compilation_cache(cache_dir())
    devices = jax.devices()
    assert len(devices) == 2, devices
    tiny = make_tiny_sac()
    keys = jax.random.split(jax.random.PRNGKey(11), N_RUNS)
    hp, rhp = broadcast_tree(tiny.hp, N_RUNS), broadcast_tree(tiny.rhp, N_RUNS)
    arrays = {}
    ckpt_dir = os.path.join(os.path.dirname(os.path.abspath(out)), "checkpoints")
    stopping = Checkpointer(ckpt_dir, "sharded")
    save = stopping.after_chunk

    def stop_after_first(phase, chunk, carry):
        save(phase, chunk, carry)
        if (phase, chunk) == ("online", 0):
            raise KeyboardInterrupt

    stopping.after_chunk = stop_after_first
    try:
        run_batch(tiny.trainer, keys, hp, rhp, devices=devices, checkpoint=stopping)
        raise AssertionError("the run was not stopped")
    except KeyboardInterrupt:
        pass
    for tag, devs in (("one", devices[:1]), ("two", devices), ("resumed", devices)):
        ckpt = Checkpointer(ckpt_dir, "sharded") if tag == "resumed" else None
        res = run_batch(tiny.trainer, keys, hp, rhp, devices=devs, checkpoint=ckpt)
        if tag == "resumed":
            assert res.resumed_from == "online chunk 0", res.resumed_from
        arrays[f"{tag}/n_devices"] = np.asarray(res.n_devices)
        for phase, metrics in res.metrics.items():
            for name, value in metrics.items():
                arrays[f"{tag}/{phase}/{name}"] = value
        for i, leaf in enumerate(jax.tree.leaves(res.state)):
            arrays[f"{tag}/state/{i}"] = leaf
    np.savez(out, **arrays)


if __name__ == "__main__":
    main(sys.argv[1])
