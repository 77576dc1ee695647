"""One whole offline-to-online run, measured in a process of its own (so that the compilation
cache, the number of host devices and the peak memory belong to this measurement alone).

    python -m benchmarks.perf_worker '{"seeds": 4, "devices": 1, "repeats": 3}'

prints one JSON line: compile and run seconds of every repeat, the compiled program's
memory_analysis, the resident memory during execution, and the sweep's memory estimate.
The parent (`benchmarks.perf_run`) sets JAXO2O_CACHE_DIR and XLA_FLAGS before starting it.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxo2o.config import EnvConfig, RunConfig
from jaxo2o.core.checkpoint import Checkpointer
from jaxo2o.core.runner import (
    compile_run,
    enable_compilation_cache,
    run_batch,
    run_batch_single,
)
from jaxo2o.core.transitions import Transitions, to_numpy
from jaxo2o.data.dataset import OfflineDataset, episode_lengths, episode_returns
from jaxo2o.envs import make_env, step_autoreset
from jaxo2o.experiment import Experiment, estimate_memory, plan


@dataclass(frozen=True)
class RunSpec:
    """The measured program: IQL, direct protocol, on `task` (default the tiny `point`) with a
    synthetic random-action dataset, in the shapes of the `quick` tier that `make bench` runs on
    a CPU (width 64, batch 256, a 10k-row online buffer), with shorter step budgets."""

    seeds: int = 1
    devices: int = 1
    repeats: int = 3
    compile_only: bool = False  # lower and compile, do not execute (the cold/warm cache test)
    path: str = "chunked"  # chunked: the host-driven chunk programs; single: one program
    progress: bool = True  # the progress bar (on the host between chunks; never in a program)
    method: str = "iql"
    task: str = "point"
    backend: str = "positional"  # Brax tasks only
    hidden: tuple[int, ...] = (64, 64)
    batch_size: int = 256
    offline_steps: int = 1000
    online_steps: int = 1000
    buffer_capacity: int = 10_000
    eval_episodes: int = 5
    episode_length: int = 100
    dataset_rows: int = 20_000
    evals_per_phase: int = 2  # evaluation intervals per phase (the chunks of a phase)
    # the sweep's host path: a checkpoint after every chunk and the shared offline phase saved
    # once computed, each in a fresh folder per repeat (`jaxo2o.experiment.runner`'s defaults)
    checkpoint: bool = False
    # the checkpoint files written in a thread (True) or in the host loop (False); None: the
    # backend's default (`core.checkpoint.background_by_default`)
    background_checkpoints: bool | None = None


class RssSampler:
    """Peak resident memory of this process while the block runs (sampled every 2 ms)."""

    def __init__(self, period: float = 0.002):
        self.period = period
        self.baseline = self.peak = 0
        self._stop = threading.Event()

    @staticmethod
    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(self.period)

    def __enter__(self) -> RssSampler:
        self.baseline = self.peak = self.rss()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())


def synthetic_dataset(
    task: str, backend: str, rows: int, episode_length: int, seed: int = 0
) -> Any:
    """Random-action episodes of `task` as an OfflineDataset (no reference scores)."""

    env = make_env(task, backend=backend, episode_length=episode_length)

    def step(state, key):
        k_act, k_reset = jax.random.split(key)
        action = jax.random.uniform(k_act, (env.action_size,), minval=-1.0, maxval=1.0)
        nxt, res = step_autoreset(env, state, action, k_reset)
        return nxt, Transitions(
            state.obs, action, res.reward, res.next_obs, res.terminated, res.truncated
        )

    key = jax.random.PRNGKey(seed)
    _, t = jax.lax.scan(step, env.reset(key), jax.random.split(key, rows))
    t = to_numpy(t)
    lengths = episode_lengths(t)
    return OfflineDataset(
        dataset_id=f"perf/{task}-random-synthetic",
        transitions=t,
        task=task,
        kind=None,
        ref_min_score=None,
        ref_max_score=None,
        episode_returns=episode_returns(t.reward, lengths),
        episode_lengths=lengths,
    )


def build_plan(spec: RunSpec) -> Any:

    run = RunConfig(
        offline_steps=spec.offline_steps,
        online_steps=spec.online_steps,
        offline_eval_every=max(spec.offline_steps // spec.evals_per_phase, 1),
        online_eval_every=max(spec.online_steps // spec.evals_per_phase, 1),
        eval_episodes=spec.eval_episodes,
        batch_size=spec.batch_size,
        buffer_capacity=spec.buffer_capacity,
        protocol="direct",
        progress=spec.progress,
    )
    exp = Experiment(
        method=spec.method,
        env=EnvConfig(task=spec.task, backend=spec.backend, episode_length=spec.episode_length),
        run=run,
        dataset=f"perf/{spec.task}-random-synthetic",
        seeds=spec.seeds,
        method_config=("hidden=" + ",".join(str(h) for h in spec.hidden),),
    )
    data = synthetic_dataset(spec.task, spec.backend, spec.dataset_rows, spec.episode_length)
    return plan(exp, dataset=data)


def _cache_events() -> dict[str, int]:

    counts = {"hits": 0, "misses": 0}

    def listener(event: str, **kwargs: Any) -> None:
        if event == "/jax/compilation_cache/cache_hits":
            counts["hits"] += 1
        elif event == "/jax/compilation_cache/cache_misses":
            counts["misses"] += 1

    jax.monitoring.register_event_listener(listener)
    return counts


def measure(spec: RunSpec) -> dict[str, Any]:
    t_start = time.perf_counter()

    cache = enable_compilation_cache()
    t_import = time.perf_counter() - t_start
    p = build_plan(spec)
    keys = p.keys()
    data = jax.tree.map(jnp.asarray, p.dataset.transitions)
    out: dict[str, Any] = {
        "spec": asdict(spec),
        "cache_dir": cache,
        "import_seconds": t_import,
        "devices_visible": len(jax.devices()),
        "estimate": estimate_memory(p),
    }
    events = _cache_events()
    if spec.compile_only and spec.path == "chunked":
        # every chunk program run_batch builds for one device (progress bar on: it lives on the
        # host, so nothing stops the programs from going to the persistent cache)
        t0 = time.perf_counter()
        progs = compile_run(p.trainer, keys, p.hp, p.rhp, data, devices=jax.devices()[:1])
        t2 = time.perf_counter()
        out |= {"compile_seconds": t2 - t0, "programs": progs.count, "cache": dict(events)}
        return out
    if spec.compile_only:
        # the single program, timed in its two stages
        fn = jax.jit(jax.vmap(p.trainer.train, in_axes=(0, 0, 0, None)))
        t0 = time.perf_counter()
        lowered = fn.lower(keys, p.hp, p.rhp, data)
        t1 = time.perf_counter()
        lowered.compile()
        t2 = time.perf_counter()
        out |= {"trace_seconds": t1 - t0, "xla_compile_seconds": t2 - t1, "programs": 1}
        out |= {"compile_seconds": t2 - t0, "cache": dict(events)}
        return out
    devices = jax.devices()[: spec.devices]
    repeats = []
    for _ in range(spec.repeats):
        before = dict(events)
        with RssSampler() as rss, tempfile.TemporaryDirectory(prefix="jaxo2o-perf-") as tmp:
            bg = spec.background_checkpoints
            ckpt = Checkpointer(Path(tmp) / "c", "perf", background=bg) if spec.checkpoint else None
            shared = Path(tmp) / "offline" if spec.checkpoint else None
            if spec.path == "single":
                res = run_batch_single(p.trainer, keys, p.hp, p.rhp, data)
            else:
                res = run_batch(
                    p.trainer,
                    keys,
                    p.hp,
                    p.rhp,
                    data,
                    devices=devices,
                    desc="perf",
                    checkpoint=ckpt,
                    shared_offline=shared,
                )
        last = res.metrics["online" if "online" in res.metrics else "offline"]
        final = np.asarray(last["eval_returns"])[:, -1].mean(-1)
        evaluations = sum(  # evaluation calls of one run (each a full-length episode scan)
            np.asarray(m["eval_returns"]).shape[1]
            for m in res.metrics.values()
            if "eval_returns" in m
        )
        repeats.append(
            {
                "compile_seconds": res.compile_seconds,
                "run_seconds": res.run_seconds,
                "offline_seconds": res.offline_seconds,
                "checkpoint_seconds": {  # per phase, the saves' wall time
                    ph: sum(x["seconds"] for x in ckpt.saves if x["phase"] == ph)
                    for ph in ("offline", "online")
                }
                if ckpt
                else None,
                "programs": res.programs,
                "n_devices": res.n_devices,
                "memory": res.memory,
                "rss_before": rss.baseline,
                "rss_peak": rss.peak,
                "cache_hits": events["hits"] - before["hits"],
                "cache_misses": events["misses"] - before["misses"],
                "final_returns": [float(x) for x in final],
                "final_return_mean": float(np.mean(final)),
                "evaluations": int(evaluations),
                "finite": bool(np.all(np.isfinite(final))),
            }
        )
    out["repeats"] = repeats
    out["ru_maxrss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    raw = json.loads(argv[0]) if argv else {}
    if "hidden" in raw:
        raw["hidden"] = tuple(raw["hidden"])
    print(json.dumps(measure(RunSpec(**raw))), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
