"""Run a planned experiment and reduce its metrics to the numbers the reports print: normalized
scores at the end of offline, the online dip and the final score, and one curve row per
evaluation.

The dip (`online_dip`) is the lowest score over the online evaluations taken after the first
gradient update and at most a tenth of the online phase after the step of that update
(`dip_window`); if that span holds no evaluation, the first evaluation after the update. An
online evaluation at step s (online iterations done) has seen an update iff s > W, W = the run's
warm-up (`RunConfig.warmup_steps`, as the Trainer runs it: the seeded protocol lengthens it), since
the first update is taken in iteration W. Why: the evaluation at the switch and those during the
warm-up score a policy no online update has touched yet (the offline policy, or PEX's composite
with its fresh pi_on), so they measure the offline result or the warm-up rule, not what
fine-tuning does to the policy; counted from the switch, a long warm-up (PEX's 5,000 steps)
would leave no updated evaluation in the window at all. A tenth of the online phase keeps the
earlier window's length, the early stretch of updates where the fine-tuning drop the seed papers
discuss shows, and holds two evaluations at the quick tier's cadence (every 500 of 10,000 steps).

On Gymnasium-Robotics' sparse mazes (`envs.gr_maze`) every evaluation also gets its success rate
(`success`, % of episodes whose return is positive, `gr_maze.success_rate`), and every run its
final offline and online ones (`offline_success`, `online_success`): with a continuing evaluation
env the score counts steps at the goal, not episodes that got there.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxo2o.core.checkpoint import Checkpointer
from jaxo2o.core.runner import BatchResult, ChunkHook, run_batch
from jaxo2o.data.dataset import normalized_score
from jaxo2o.envs.gr_maze import TASK_SPECS, success_rate
from jaxo2o.experiment.memory import check_memory
from jaxo2o.experiment.plan import Plan
from jaxo2o.provenance import PACKAGES, package_versions


@dataclass
class ExperimentResult:
    plan: Plan
    batch: BatchResult
    rows: list[dict[str, Any]]  # one summary row per run
    curves: list[dict[str, Any]]  # one row per (run, phase, evaluation)
    checkpoints: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # saves made


def normalize(returns: np.ndarray, ref: tuple[float, float] | None) -> np.ndarray:
    """D4RL's normalized score (`normalized_score`), or the raw return without reference scores."""
    if ref is None:
        return np.asarray(returns, np.float64)
    return normalized_score(returns, *ref)


def _interval_metrics(m: dict, run: int, n_evals: int) -> dict[str, list[float]]:
    """Run `run`'s scalar training metrics (losses, Q means, AWR weights, ...), one value per
    evaluation: the mean over the interval that ends at it. The online phase's first evaluation,
    taken before any update, gets NaN."""
    out = {}
    for key, value in m.items():
        if key in ("eval_returns", "eval_lengths", "states") or key.startswith("act/"):
            continue
        v = np.asarray(value[run], np.float64)
        if v.ndim != 1:
            continue
        pad = n_evals - v.shape[0]  # 1 online (the evaluation at the switch), 0 offline
        out[key] = [float("nan")] * pad + [float(x) for x in v]
    return out


NOT_DIVERGENCE = ("train_return",)  # NaN by design when no training episode ended

DIP_TEXT = (
    "dip = lowest score over the online evaluations after the first gradient update, up to a "
    "tenth of the online phase past it (at least the first evaluation after it; the switch and "
    "the warm-up do not count)"
)


def dip_window(run: Any) -> tuple[int, float]:
    """(lo, hi): the dip is taken over the online evaluations at steps lo < s <= hi. lo = the
    warm-up (the first update comes in iteration lo), hi = lo + online_steps / 10."""
    return run.warmup_steps, run.warmup_steps + run.online_steps / 10


def dip_text(run: Any) -> str:
    """`DIP_TEXT` with the window of one run shape, for the reports."""
    lo, hi = dip_window(run)
    return f"{DIP_TEXT}; here online steps {lo} < s <= {hi:g}"


def dip_mask(steps: list[int], run: Any) -> np.ndarray:
    """Which online evaluations (at `steps`) the dip is taken over (module docstring)."""
    lo, hi = dip_window(run)
    s = np.asarray(steps)
    inside = (s > lo) & (s <= hi)
    after = np.flatnonzero(s > lo)
    if not inside.any() and after.size:
        inside[after[0]] = True
    return inside


def _first_nonfinite(ret: np.ndarray, train: dict[str, list[float]], pad: int) -> int | None:
    """Index of the first evaluation whose returns or interval training metrics are not finite
    (the first `pad` evaluations have no training interval: their NaN metrics do not count)."""
    for j in range(ret.shape[0]):
        bad = not np.all(np.isfinite(ret[j]))
        if j >= pad:
            bad |= any(not np.isfinite(v[j]) for k, v in train.items() if k not in NOT_DIVERGENCE)
        if bad:
            return j
    return None


def _state_finite(state: Any, run: int) -> bool:
    for x in jax.tree.leaves(state):
        x = np.asarray(x)
        if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x[run])):
            return False
    return True


def summarize(p: Plan, batch: BatchResult) -> tuple[list[dict], list[dict]]:
    """Per-run summary rows and per-evaluation curve rows (scores normalized when possible).

    A run whose losses, evaluation returns or final parameters are not finite gets the phase
    and step of the first such evaluation in `diverged_phase` / `diverged_step` (None
    otherwise); the reports leave it out of their aggregates. Runs are independent (vmapped):
    the other runs of the batch keep their values."""
    exp, run = p.experiment, p.experiment.run
    steps = p.trainer.eval_steps()
    base = {
        "method": exp.method,
        "task": exp.env.task,
        "dataset": exp.dataset,
        "protocol": run.protocol,
    }
    spec = TASK_SPECS.get(exp.env.task)
    sparse_maze = spec is not None and spec.reward_type == "sparse"
    rows, curves = [], []
    for i, r in enumerate(p.runs):
        row = dict(base) | r | {"diverged_phase": None, "diverged_step": None}
        last = None
        for phase in ("offline", "online"):
            m = batch.metrics.get(phase) or {}
            if "eval_returns" not in m:
                continue
            ret = np.asarray(m["eval_returns"][i], np.float64)  # (n_evals, episodes)
            score = normalize(ret.mean(-1), p.ref_scores)
            train = _interval_metrics(m, i, len(score))
            bad = _first_nonfinite(ret, train, 1 if phase == "online" else 0)
            if bad is not None and row["diverged_step"] is None:
                row["diverged_phase"], row["diverged_step"] = phase, steps[phase][bad]
            last = (phase, steps[phase][-1])
            succ = [float(100 * success_rate(x)) for x in ret] if sparse_maze else None
            for j, (s, sc, rt) in enumerate(zip(steps[phase], score, ret.mean(-1), strict=True)):
                curves.append(
                    dict(base)
                    | r
                    | {"phase": phase, "step": s, "score": sc, "return": rt}
                    | ({"success": succ[j]} if succ else {})
                    | {k: v[j] for k, v in train.items()}
                )
            if succ:
                row[f"{phase}_success"] = succ[-1]
            if phase == "offline":
                row["offline_final"] = float(score[-1])
            else:
                window = dip_mask(steps["online"], p.trainer.run)
                row["online_start"] = float(score[0])
                row["online_dip"] = float(score[window].min()) if window.any() else float("nan")
                row["online_final"] = float(score[-1])
                for key, value in m.items():
                    if key.startswith("act/"):
                        row[key[4:] + "_mean"] = float(np.nanmean(value[i]))
        unseen = row["diverged_step"] is None and last and batch.state is not None
        if unseen and not _state_finite(batch.state, i):  # parameters, though no loss showed it
            row["diverged_phase"], row["diverged_step"] = last
        rows.append(row)
    return rows, curves


def checkpoint_key(p: Plan) -> str:
    """A hash of everything that determines the runs' numbers: the experiment (without the
    progress bar), the method and its static config, every run's hyperparameters, the dataset
    id and recipe hash (or contents), the run count and the package versions. The git revision
    is not part of it (a checkpoint survives commits that do not change the numbers' inputs)."""
    exp = dataclasses.asdict(p.experiment)
    exp["run"] = {k: v for k, v in exp["run"].items() if k != "progress"}
    h = hashlib.sha256()
    ds = p.dataset
    parts = {
        "experiment": exp,
        "method": [type(p.method).__name__, dataclasses.asdict(p.method.config)],
        "trainer_run": dataclasses.asdict(p.trainer.run),
        "runs": p.runs,
        "dataset": [getattr(ds, "dataset_id", None), getattr(ds, "recipe_hash", None)],
        "packages": package_versions((*PACKAGES, "orbax-checkpoint")),
    }
    h.update(json.dumps(parts, sort_keys=True, default=str).encode())
    for tree in (p.hp, p.rhp, ds.transitions if ds is not None else None, p.online_data):
        for x in jax.tree.leaves(tree):
            x = np.ascontiguousarray(np.asarray(x))
            h.update(f"{x.dtype}{x.shape}".encode())
            h.update(x.tobytes())
    return h.hexdigest()


def execute(
    p: Plan,
    devices: list | None = None,
    desc: str | None = None,
    hooks: Sequence[ChunkHook] = (),
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 1,
    shared_offline: str | Path | None = None,
) -> ExperimentResult:
    """Compile once and run every seed and grid value of the plan.

    With `checkpoint_dir`: continue from the checkpoint there if it was made for this plan
    (`checkpoint_key`), and save one every `checkpoint_every` evaluation intervals and at the
    end of each phase. The caller deletes the checkpoints once the results are written
    (`Checkpointer(dir, '').clear()`).

    With `shared_offline` (a folder): an offline phase another batch already computed (the same
    computation on the same inputs, `core.shared_offline`) is restored instead of computed."""
    check_memory(p)
    ckpt = None
    if checkpoint_dir is not None:
        ckpt = Checkpointer(checkpoint_dir, checkpoint_key(p), checkpoint_every)
    keys = p.keys()
    data = None
    if p.dataset is not None:
        data = jax.tree.map(jnp.asarray, p.dataset.transitions)
    label = desc or f"{p.experiment.method}/{p.experiment.run.protocol} {p.experiment.env.task}"
    online = None if p.online_data is None else jax.tree.map(jnp.asarray, p.online_data)
    batch = run_batch(
        p.trainer,
        keys,
        p.hp,
        p.rhp,
        data,
        devices=devices,
        desc=label,
        online_data=online,
        hooks=hooks,
        checkpoint=ckpt,
        shared_offline=shared_offline,
    )
    if batch.resumed_from:
        print(f"resumed from the checkpoint after {batch.resumed_from}", flush=True)
    rows, curves = summarize(p, batch)
    for row in rows:
        row["compile_s"] = round(batch.compile_seconds, 2)
        row["run_s"] = round(batch.run_seconds, 2)
    return ExperimentResult(p, batch, rows, curves, ckpt.saves if ckpt else [])
