"""The host-side progress bar of a run: phase, step and the latest evaluation.

The runner updates it between compiled chunks (`core.runner.run_batch`); nothing inside a
compiled program reports progress, so every program can be stored in JAX's persistent
compilation cache (an executable with a host callback cannot).
"""

from __future__ import annotations

import time

from tqdm.auto import tqdm

PHASES = ("offline", "online")


class ProgressBar:
    """A tqdm bar over the offline then online steps of a batch of runs (no-op if disabled)."""

    def __init__(self, offline_total: int, online_total: int, desc: str, enabled: bool = True):
        self.totals = (offline_total, online_total)
        self.desc, self.enabled = desc, enabled
        self.bar = None
        self.done = 0
        self.latest = ""
        self.t0 = 0.0

    def __enter__(self) -> ProgressBar:
        self.t0 = time.perf_counter()
        if self.enabled:
            total = self.totals[0] + self.totals[1]
            self.bar = tqdm(total=total, desc=self.desc, unit="step", dynamic_ncols=True)
        return self

    def update(self, phase: int, step: int, latest_eval: float | None = None) -> None:
        """The runs reached `step` of `phase` (0 offline, 1 online); `latest_eval`: their mean
        evaluation return there."""
        if latest_eval is not None:
            self.latest = f"{PHASES[phase]} eval@{step}: {latest_eval:.1f}"
        pos = step + (self.totals[0] if phase == 1 else 0)
        if self.bar is None:
            return
        if pos > self.done:
            self.bar.update(pos - self.done)
            self.done = pos
        self.bar.set_postfix_str(f"{PHASES[phase]} | {self.latest}", refresh=True)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            elapsed = time.perf_counter() - self.t0
            self.bar.set_postfix_str(f"{self.latest} | {elapsed:.0f}s", refresh=True)
            self.bar.close()
