"""The memory a batch of runs needs, estimated before compiling, and the refusal of a batch that
will not fit (with the largest run count that would)."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import psutil

from jaxo2o.config import ConfigError
from jaxo2o.core.replay import replay_bytes
from jaxo2o.core.returns import unknown_returns
from jaxo2o.core.transitions import empty_transitions
from jaxo2o.experiment.planned import Plan

_WORKSPACE: dict[tuple, int] = {}


def _tree_bytes(tree: Any) -> int:
    return sum(int(np.prod(x.shape)) * x.dtype.itemsize for x in jax.tree.leaves(tree))


def update_workspace(
    method: Any, obs_size: int, act_size: int, batch_size: int, online: bool
) -> int:
    """XLA's temporary buffers for one update step of one run, from compiling the update alone.

    They are mostly the activations kept for the backward passes (batch x width arrays), which
    no shape formula predicts well (XLA's buffer assignment decides what is live at once); at
    width 64 and batch 256 they outweigh the parameters. The program is small (seconds to
    compile) and the result is memoized per method config and shapes.
    """

    key = (type(method).__name__, method.config, obs_size, act_size)
    key += (batch_size, online)
    if key not in _WORKSPACE:
        hp = method.default_hparams()
        rng = jax.random.PRNGKey(0)

        def state_of(k):
            state = method.init(k, obs_size, act_size, hp)
            return method.to_online(state, k, hp) if online else state

        state = jax.eval_shape(state_of, rng)
        rows = lambda: empty_transitions(batch_size, obs_size, act_size)
        if method.mc_returns is not None:  # the method reads Monte-Carlo returns
            batch = jax.eval_shape(lambda: unknown_returns(rows()))
        else:
            batch = jax.eval_shape(rows)
        fn = lambda s, b, k, h: method.update(s, b, k, h, online=online)
        mem = jax.jit(fn).lower(state, batch, rng, hp).compile().memory_analysis()
        _WORKSPACE[key] = int(getattr(mem, "temp_size_in_bytes", 0) or 0) if mem else 0
    return _WORKSPACE[key]


def estimate_memory(p: Plan, workspace: bool = True) -> dict[str, int]:
    """Bytes the compiled program needs, estimated before compiling it.

    Per run: the online replay buffer, the method state (parameters and optimizer moments,
    counted exactly by abstract evaluation of `init`, and of `to_online` when the state grows
    at the switch), a second state copy for the update in flight, and the update's workspace
    (`update_workspace`: compiles the update step alone). Shared: the dataset (not copied per
    run). `benchmarks/perf.py` checks the estimate against the compiled program's own numbers.
    """
    t, run = p.trainer, p.experiment.run
    hp = p.method.default_hparams()
    init = lambda k: p.method.init(k, t.obs_size, t.act_size, hp)
    rng = jax.random.PRNGKey(0)
    state_bytes = _tree_bytes(jax.eval_shape(init, rng))
    phases = [False] * bool(run.offline_steps) + [True] * bool(run.online_steps)
    if run.online_steps:
        online = jax.eval_shape(lambda k: p.method.to_online(init(k), k, hp), rng)
        state_bytes = max(state_bytes, _tree_bytes(online))
    work = 0
    if workspace:
        work = max(
            [update_workspace(p.method, t.obs_size, t.act_size, run.batch_size, o) for o in phases],
            default=0,
        )
    buffer = replay_bytes(run.capacity, t.obs_size, t.act_size) if run.online_steps else 0
    if buffer and p.method.mc_returns is not None:
        buffer += 8 * run.capacity  # the Monte-Carlo columns (two float32 per row)
    data = 0
    if p.dataset is not None:
        data = sum(np.asarray(x).nbytes for x in p.dataset.transitions)
    per_run = buffer + 2 * state_bytes + work
    return {
        "per_run": per_run,
        "runs": p.n_runs,
        "dataset": data,
        "total": per_run * p.n_runs + data,
        "buffer_per_run": buffer,
        "state_per_run": state_bytes,
        "workspace_per_run": work,
    }


def check_memory(p: Plan, limit_fraction: float = 0.8, workspace: bool = True) -> dict[str, int]:
    """Refuse a grid whose estimate exceeds `limit_fraction` of the available host memory."""

    est = estimate_memory(p, workspace)
    avail = psutil.virtual_memory().available
    if est["total"] > limit_fraction * avail:
        fit = max(0, int((limit_fraction * avail - est["dataset"]) // max(est["per_run"], 1)))
        raise ConfigError(
            f"memory: {p.n_runs} runs need about {est['total'] / 2**30:.2f} GiB "
            f"({est['per_run'] / 2**20:.1f} MiB per run + {est['dataset'] / 2**20:.1f} MiB "
            f"dataset) but only {avail / 2**30:.2f} GiB is available; at most {fit} runs fit. "
            "Use fewer seeds or grid values, or a smaller run.buffer_capacity."
        )
    return est
