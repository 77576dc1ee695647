"""What the host does between compiled chunks: the hook interface the runner calls (progress,
checkpoints, the shared offline phase, metrics loggers are hooks)."""

from __future__ import annotations

from typing import Any


class ChunkHook:
    """Called on the host between compiled chunks (the sweep's checkpoints go here).

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
