"""Shared offline phases (`core.shared_offline`, `run_batch(shared_offline=)`): the key follows
the offline computation (IQL = PEX's offline phase, ACA = sac-direct's; online-only settings do
not count, offline ones do), a phase made by one line is restored by another instead of being
computed (no offline program compiled or run) and gives that line bitwise what computing it
would have; a corrupt entry is refused and recomputed."""

from __future__ import annotations

import dataclasses

import jax
import pytest
from test_chunked import small_dataset
from test_resume import assert_bitwise, tiny_pex

from jaxo2o.config import run_hparams
from jaxo2o.core.loop import Trainer
from jaxo2o.core.runner import ChunkHook, broadcast_tree, run_batch
from jaxo2o.core.shared_offline import offline_key
from jaxo2o.envs import make_env
from jaxo2o.methods.aca import ACA
from jaxo2o.methods.aca_settings import ACAConfig
from jaxo2o.methods.iql import IQL


def key_of(method, run, hp=None, seeds=(9, 10, 11), data=None):
    trainer = Trainer(method, make_env("point", episode_length=30), run)
    n = len(seeds)
    keys = jax.numpy.stack([jax.random.PRNGKey(s) for s in seeds])
    hp = broadcast_tree(method.default_hparams() if hp is None else hp, n)
    data = small_dataset() if data is None else data
    return offline_key(trainer, keys, hp, broadcast_tree(run_hparams(run), n), data, 1)


def test_the_key_follows_the_offline_computation():
    trainer, *_ = tiny_pex()
    pex, run = trainer.method, trainer.run
    iql = IQL(pex.config.iql_config())
    base = key_of(iql, run)
    assert key_of(iql, run) == base  # deterministic
    assert key_of(pex, run) == base  # PEX's offline phase is IQL's
    # online-only: the selection temperature, the protocol, the online budget, the batch mix
    assert key_of(pex, run, pex.default_hparams(selection_inverse_temperature=1.0)) == base
    online = dataclasses.replace(run, protocol="buffer", online_steps=200, warmup_steps=0)
    assert key_of(iql, online) == base
    # offline: a hyperparameter, the seeds, the data, the batch, the offline length
    assert key_of(iql, run, iql.default_hparams(expectile=0.9)) != base
    assert key_of(iql, run, seeds=(9, 10, 12)) != base
    assert key_of(iql, run, data=small_dataset(65)) != base
    assert key_of(iql, dataclasses.replace(run, batch_size=32)) != base
    assert key_of(iql, dataclasses.replace(run, offline_steps=60)) != base
    # ACA and sac-direct: one offline phase; the alignment schedule is online-only
    aca, plain = ACA(ACAConfig(hidden=(16, 16))), ACA(ACAConfig(hidden=(16, 16), alignment=False))
    assert key_of(aca, run) == key_of(plain, run)
    assert key_of(aca, run, aca.default_hparams(w_k=10.0)) == key_of(plain, run)
    assert key_of(aca, run, aca.default_hparams(ml_alpha=3.0)) != key_of(plain, run)


class Count(ChunkHook):
    def __init__(self):
        self.calls: dict[str, int] = {}

    def record(self, phase, out):
        self.calls[phase] = self.calls.get(phase, 0) + 1


@pytest.mark.xdist_group("pex_point")
def test_a_shared_offline_phase_is_computed_once_and_restored_bitwise(tmp_path, capfd):
    trainer, keys, hp, rhp, data = tiny_pex()
    one = jax.devices()[:1]
    ref = run_batch(trainer, keys, hp, rhp, data, devices=one)  # PEX, computing its own
    assert ref.offline_from == "computed" and ref.programs == 6

    # IQL (direct) makes the phase and stores it
    iql = IQL(trainer.method.config.iql_config())
    iql_trainer = Trainer(iql, trainer.env, trainer.run)
    iql_hp = broadcast_tree(iql.default_hparams(), keys.shape[0])
    store = tmp_path / "offline"
    count = Count()
    made = run_batch(iql_trainer, keys, iql_hp, rhp, data, devices=one, hooks=[count],
                     shared_offline=store)  # fmt: skip
    assert made.offline_from == "computed" and count.calls["offline"] == 2
    assert made.offline_seconds > 0 and made.offline_compile_seconds > 0
    (entry,) = store.iterdir()
    assert [p.name for p in entry.iterdir()] == ["offline-000001"]

    # PEX restores it: no offline chunk runs, no offline program compiles, same numbers
    count = Count()
    got = run_batch(trainer, keys, hp, rhp, data, devices=one, hooks=[count], shared_offline=store)
    assert got.offline_from == "shared" and got.resumed_from is None
    assert "offline" not in count.calls and count.calls["online"] == 3
    assert got.programs == 3  # online start, online chunk, evaluation of the online state
    assert got.offline_seconds == 0 and got.offline_compile_seconds == 0
    assert_bitwise(got.metrics, ref.metrics)
    assert_bitwise(got.state, ref.state)
    assert_bitwise(made.metrics["offline"], ref.metrics["offline"])

    # a corrupt entry is refused with a message and the phase computed again (and re-stored)
    for f in (entry / "offline-000001" / "carry").rglob("*"):
        if f.is_file():
            f.write_bytes(b"\0garbage")
    capfd.readouterr()
    again = run_batch(trainer, keys, hp, rhp, data, devices=one, shared_offline=store)
    err = capfd.readouterr().err
    assert again.offline_from == "computed" and "shared offline phase" in err and "ignored" in err
    assert_bitwise(again.metrics, ref.metrics)
    assert run_batch(trainer, keys, hp, rhp, data, devices=one,
                     shared_offline=store).offline_from == "shared"  # fmt: skip


def test_runs_without_an_offline_phase_ignore_the_store(tmp_path):
    trainer, keys, hp, rhp, data = tiny_pex()
    run = dataclasses.replace(trainer.run, offline_steps=0, protocol="scratch")
    t = Trainer(trainer.method, trainer.env, run)
    res = run_batch(t, keys, hp, rhp, data, devices=jax.devices()[:1], shared_offline=tmp_path)
    assert res.offline_from is None and not any(tmp_path.iterdir())
