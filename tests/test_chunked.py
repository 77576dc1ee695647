"""The chunked run (`core.runner.run_batch`: compiled chunk programs called from a host loop)
against the single program (`run_batch_single`: the same pieces composed by `lax.scan`): equal
up to XLA's last bits (see RTOL), for a method whose state keeps its type (SAC) and one whose
state changes at the switch (PEX); the progress bar fed between chunks; and the persistent cache
serving a second process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import REPO_ROOT, cache_dir

from jaxo2o.config import RunConfig, run_hparams
from jaxo2o.core import progress
from jaxo2o.core.loop import Trainer
from jaxo2o.core.runner import ChunkHook, broadcast_tree, run_batch, run_batch_single
from jaxo2o.core.transitions import Transitions
from jaxo2o.envs import make_env
from jaxo2o.methods.pex import PEX, PEXConfig

# XLA compiles a chunk inlined in the single program's scan with other fusions than the same
# chunk compiled alone, so float32 results can differ in the last bits (measured: at most a few
# ulps after 300 updates); integers, keys, shapes and counts must agree exactly.
RTOL, ATOL = 2e-5, 1e-6


def assert_same(a, b) -> float:
    """Equal structure, exactly equal non-float leaves, float leaves within RTOL; returns the
    largest relative difference seen."""
    assert jax.tree.structure(a) == jax.tree.structure(b)
    worst = 0.0
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        x, y = np.asarray(x), np.asarray(y)
        assert x.shape == y.shape and x.dtype == y.dtype
        if not np.issubdtype(x.dtype, np.floating):
            np.testing.assert_array_equal(x, y)
            continue
        np.testing.assert_allclose(x, y, rtol=RTOL, atol=ATOL, equal_nan=True)
        finite = np.isfinite(x) & np.isfinite(y)
        d = np.abs(x - y)[finite] / np.maximum(np.abs(y[finite]), 1e-3)
        worst = max(worst, float(d.max(initial=0.0)))
    return worst


def small_dataset(n: int = 64) -> Transitions:
    k = jax.random.split(jax.random.PRNGKey(5), 4)
    obs = jax.random.uniform(k[0], (n, 4), minval=-1, maxval=1)
    return Transitions(
        obs,
        jax.random.uniform(k[1], (n, 2), minval=-1, maxval=1),
        jax.random.normal(k[2], (n,)),
        obs + 0.01,
        jnp.zeros(n, bool),
        jnp.arange(n) % 16 == 15,
    )


@pytest.mark.xdist_group("sac_point")
def test_chunked_equals_single_program_sac(tiny_sac):
    keys = jax.random.split(jax.random.PRNGKey(3), 2)
    hp, rhp = broadcast_tree(tiny_sac.hp, 2), broadcast_tree(tiny_sac.rhp, 2)
    chunked = run_batch(tiny_sac.trainer, keys, hp, rhp, devices=jax.devices()[:1])
    single = run_batch_single(tiny_sac.trainer, keys, hp, rhp)
    print("max relative difference", assert_same(chunked.state, single.state))
    assert_same(chunked.metrics, single.metrics)
    # offline start, online start, online chunk, one evaluation program (SAC has no offline
    # phase here, and its state keeps its type across the switch)
    assert chunked.programs == 4
    assert chunked.buffer.size.shape == (2,) and int(chunked.buffer.size[0]) == 300


def test_chunked_equals_single_program_pex_with_hook():
    """Both phases, a state that changes type at the switch, and a fixed 50/50 mix."""
    env = make_env("point", episode_length=30)
    run = RunConfig(
        offline_steps=40,
        offline_eval_every=20,
        online_steps=60,
        online_eval_every=20,
        warmup_steps=10,
        batch_size=16,
        eval_episodes=2,
        protocol="direct",
        progress=False,
    )
    method = PEX(PEXConfig(hidden=(16, 16)))
    trainer = Trainer(method, env, run)
    keys = jax.random.split(jax.random.PRNGKey(9), 2)
    hp = broadcast_tree(method.default_hparams(), 2)
    rhp = broadcast_tree(run_hparams(run), 2)
    data = small_dataset()

    class Record(ChunkHook):
        def __init__(self):
            self.calls = []

        def after_chunk(self, phase, chunk, carry):
            self.calls.append((phase, chunk, type(carry.state).__name__))

    hook = Record()
    chunked = run_batch(trainer, keys, hp, rhp, data, devices=jax.devices()[:1], hooks=[hook])
    single = run_batch_single(trainer, keys, hp, rhp, data)
    assert_same(chunked.state, single.state)
    assert_same(chunked.metrics, single.metrics)
    assert hook.calls == [
        ("offline", 0, "IQLState"),
        ("offline", 1, "IQLState"),
        ("online", 0, "PEXState"),
        ("online", 1, "PEXState"),
        ("online", 2, "PEXState"),
    ]
    assert chunked.programs == 6  # two evaluation programs: the state type changes
    assert chunked.metrics["online"]["eval_returns"].shape == (2, 4, 2)


def test_progress_bar_reports_phase_step_and_latest_evaluation(tiny_sac, monkeypatch):
    updates = []

    class Spy(progress.ProgressBar):
        def update(self, phase, step, latest_eval=None):
            updates.append((phase, step, latest_eval))
            super().update(phase, step, latest_eval)

    monkeypatch.setattr(progress, "ProgressBar", Spy)
    keys = jax.random.split(jax.random.PRNGKey(3), 2)
    hp, rhp = broadcast_tree(tiny_sac.hp, 2), broadcast_tree(tiny_sac.rhp, 2)
    res = run_batch(tiny_sac.trainer, keys, hp, rhp, devices=jax.devices()[:1])
    assert [(p, s) for p, s, _ in updates] == [(1, 0), (1, 100), (1, 200), (1, 300)]
    means = res.metrics["online"]["eval_returns"].mean(axis=(0, 2))
    np.testing.assert_allclose([v for _, _, v in updates], means, rtol=1e-6)
    bar = Spy(0, 300, "x", enabled=True)
    with bar:
        bar.update(1, 100, 12.5)
        assert bar.bar.n == 100 and "online eval@100: 12.5" in bar.latest


_CACHE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax
    from jax import monitoring
    hits = []
    monitoring.register_event_listener(
        lambda name, **kw: hits.append(name) if "cache_hits" in name else None
    )
    sys.path.insert(0, sys.argv[2])
    from conftest import make_tiny_sac
    from jaxo2o.core.runner import broadcast_tree, enable_compilation_cache, run_batch
    enable_compilation_cache(sys.argv[1])
    tiny = make_tiny_sac()
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    res = run_batch(tiny.trainer, keys, broadcast_tree(tiny.hp, 2), broadcast_tree(tiny.rhp, 2))
    print(json.dumps({"hits": len(hits), "programs": res.programs,
                      "score": float(res.metrics["online"]["eval_returns"].mean())}))
    """
)


@pytest.mark.slow
def test_a_second_process_takes_every_program_from_the_cache(tmp_path):
    """With the progress bar on by default, every chunk program is cacheable (no host callback):
    a second process compiles nothing and gets the same numbers."""
    script = tmp_path / "run.py"
    script.write_text(_CACHE_SCRIPT)
    cache = tmp_path / "cache"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    outs = []
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, str(script), str(cache), str(REPO_ROOT / "tests")],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        outs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert outs[0]["hits"] == 0
    assert outs[1]["hits"] >= outs[1]["programs"] == 4
    assert outs[0]["score"] == outs[1]["score"]
    assert cache_dir()  # the suite's own cache is untouched by this test
