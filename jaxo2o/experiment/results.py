"""Run a planned experiment and reduce its metrics to the numbers the reports print: normalized
scores at the end of offline, the online dip and the final score, and one curve row per
evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxo2o.core.runner import BatchResult, ChunkHook, run_batch
from jaxo2o.data.dataset import normalized_score
from jaxo2o.experiment.memory import check_memory
from jaxo2o.experiment.plan import Plan


@dataclass
class ExperimentResult:
    plan: Plan
    batch: BatchResult
    rows: list[dict[str, Any]]  # one summary row per run
    curves: list[dict[str, Any]]  # one row per (run, phase, evaluation)


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


def summarize(p: Plan, batch: BatchResult) -> tuple[list[dict], list[dict]]:
    """Per-run summary rows and per-evaluation curve rows (scores normalized when possible)."""
    exp, run = p.experiment, p.experiment.run
    steps = p.trainer.eval_steps()
    base = {
        "method": exp.method,
        "task": exp.env.task,
        "dataset": exp.dataset,
        "protocol": run.protocol,
    }
    rows, curves = [], []
    for i, r in enumerate(p.runs):
        row = dict(base) | r
        for phase in ("offline", "online"):
            m = batch.metrics.get(phase) or {}
            if "eval_returns" not in m:
                continue
            ret = np.asarray(m["eval_returns"][i], np.float64)  # (n_evals, episodes)
            score = normalize(ret.mean(-1), p.ref_scores)
            train = _interval_metrics(m, i, len(score))
            for j, (s, sc, rt) in enumerate(zip(steps[phase], score, ret.mean(-1), strict=True)):
                curves.append(
                    dict(base)
                    | r
                    | {"phase": phase, "step": s, "score": sc, "return": rt}
                    | {k: v[j] for k, v in train.items()}
                )
            if phase == "offline":
                row["offline_final"] = float(score[-1])
            else:
                first_tenth = np.asarray(steps["online"]) <= run.online_steps / 10
                row["online_start"] = float(score[0])
                row["online_dip"] = float(score[first_tenth].min())
                row["online_final"] = float(score[-1])
                for key, value in m.items():
                    if key.startswith("act/"):
                        row[key[4:] + "_mean"] = float(np.nanmean(value[i]))
        rows.append(row)
    return rows, curves


def execute(
    p: Plan, devices: list | None = None, desc: str | None = None, hook: ChunkHook | None = None
) -> ExperimentResult:
    """Compile once and run every seed and grid value of the plan."""
    check_memory(p)
    keys = jnp.stack([jax.random.PRNGKey(r["seed"]) for r in p.runs])
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
        hook=hook,
    )
    rows, curves = summarize(p, batch)
    for row in rows:
        row["compile_s"] = round(batch.compile_seconds, 2)
        row["run_s"] = round(batch.run_seconds, 2)
    return ExperimentResult(p, batch, rows, curves)
