"""What the host does between compiled chunks: the hook interface `core.runner.run_batch` calls,
and the hooks it is given: progress, divergence flags, an optional TensorBoard metrics logger
(checkpoints and the shared offline phase are hooks too: `core.checkpoint`, `core.shared_offline`).

A new hook subclasses `ChunkHook` and overrides what it needs; it runs on the host, so it never
enters a compiled program (which keeps every program cacheable).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from jaxo2o.core import progress


class ChunkHook:
    """Called on the host between compiled chunks.

    `after_chunk(phase, chunk, carry)` sees the runs' carry (device arrays, runs axis first)
    after chunk `chunk` of `phase` ("offline" or "online"); it must not keep references to it
    past the call, since the next chunk donates it."""

    def after_chunk(self, phase: str, chunk: int, carry: Any) -> None:  # pragma: no cover
        pass

    def begin(self, chunks: dict[str, int], outputs: dict[str, list], n_runs: int) -> None:
        """Before the first chunk: the chunk count per phase, the outputs already collected
        (when resuming from a checkpoint) and the real (unpadded) run count."""

    def record(self, phase: str, out: Any) -> None:
        """A chunk's outputs as host arrays, runs axis first (unpadded), in order: "offline"
        (evaluation, training metrics), "switch" (the evaluation right after the switch),
        "online" (evaluation, (training metrics, acting info, training return))."""

    def end(self) -> None:
        """After the last chunk (also when a chunk raised)."""


class ProgressHook(ChunkHook):
    """The progress bar (`core.progress`): steps done and the latest mean evaluation return."""

    def __init__(self, run: Any, desc: str) -> None:
        self.run = run
        self.bar = progress.ProgressBar(
            run.offline_steps, run.online_steps, desc, enabled=run.progress
        )
        self.chunks = {"offline": 0, "online": 0}

    def begin(self, chunks: dict[str, int], outputs: dict[str, list], n_runs: int) -> None:
        self.chunks = {ph: len(outputs.get(ph, [])) for ph in ("offline", "online")}
        self.bar.__enter__()

    def record(self, phase: str, out: Any) -> None:
        ev = out if phase == "switch" else out[0]
        if phase == "offline":
            self.chunks["offline"] += 1
            step = self.chunks["offline"] * self.run.offline_eval_every
        else:
            self.chunks["online"] += phase == "online"
            step = self.chunks["online"] * self.run.online_eval_every
        self.bar.update(0 if phase == "offline" else 1, step, float(np.mean(ev.returns)))

    def end(self) -> None:
        self.bar.__exit__(None, None, None)


def _training_metrics(phase: str, out: Any) -> dict[str, np.ndarray]:
    """A chunk's training metrics (runs axis first), the switch's none."""
    if phase == "switch":
        return {}
    return dict(out[1] if phase == "offline" else out[1][0])


class DivergenceWatch(ChunkHook):
    """Says on stderr, once per phase, when some runs' evaluation returns or training metrics
    stop being finite (the results still flag them per run: `experiment.results.summarize`)."""

    def __init__(self, desc: str) -> None:
        self.desc = desc
        self.seen: set[str] = set()
        self.n_runs = 0

    def begin(self, chunks: dict[str, int], outputs: dict[str, list], n_runs: int) -> None:
        self.n_runs = n_runs

    def record(self, phase: str, out: Any) -> None:
        ev = out if phase == "switch" else out[0]
        arrays = [np.asarray(ev.returns), *_training_metrics(phase, out).values()]
        bad = np.zeros(self.n_runs, bool)
        for x in arrays:
            x = np.asarray(x, np.float64).reshape(self.n_runs, -1)
            bad |= ~np.all(np.isfinite(x), axis=1)
        if bad.any() and phase not in self.seen:
            self.seen.add(phase)
            runs = np.flatnonzero(bad).tolist()
            print(f"{self.desc}: runs {runs} not finite in the {phase} phase", file=sys.stderr)


class MetricsLogger(ChunkHook):
    """Every chunk's mean evaluation return and mean training metrics (over runs and the
    chunk's updates) as TensorBoard scalars in `log_dir`, one step per evaluation. tensorboardX
    is imported when a logger is made, so runs without one never load it."""

    def __init__(self, log_dir: str | Path, run: Any) -> None:
        from tensorboardX import SummaryWriter  # optional: only when metrics are logged

        self.writer = SummaryWriter(str(log_dir))
        self.run = run
        self.step = 0

    def record(self, phase: str, out: Any) -> None:
        if phase == "offline":
            self.step += self.run.offline_eval_every
        elif phase == "online":
            self.step += self.run.online_eval_every
        ev = out if phase == "switch" else out[0]
        self.writer.add_scalar(f"{phase}/eval_return", float(np.mean(ev.returns)), self.step)
        for name, value in _training_metrics(phase, out).items():
            value = np.asarray(value, np.float64)
            if value.ndim <= 2:  # (runs, updates) scalars per update
                self.writer.add_scalar(f"{phase}/{name}", float(np.nanmean(value)), self.step)

    def end(self) -> None:
        self.writer.close()
