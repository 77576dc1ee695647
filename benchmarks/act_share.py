"""PEX's offline-action share: per run and online evaluation interval, the share of executed actions
that came from the frozen offline policy (`act/offline_fraction`) and its mean selection
probability (`act/offline_prob`). PEX claims the share falls as the online policy improves."""

from __future__ import annotations

import numpy as np

from jaxo2o.experiment import ExperimentResult


def act_rows(res: ExperimentResult, base: dict) -> list[dict]:
    """One row per run and online interval; empty for methods that report no selection."""
    online = res.batch.metrics.get("online") or {}
    if "act/offline_fraction" not in online:
        return []
    every = res.plan.experiment.run.online_eval_every
    rows = []
    for i, run in enumerate(res.plan.runs):
        share = np.asarray(online["act/offline_fraction"][i])
        prob = np.asarray(online["act/offline_prob"][i])
        for j in range(share.shape[0]):
            rows.append(
                base
                | run
                | {
                    "interval_end": (j + 1) * every,
                    "offline_fraction": float(share[j]),
                    "offline_prob": float(prob[j]),
                }
            )
    return rows


MARKS = (("first", 0.0), ("10%", 0.1), ("25%", 0.25), ("50%", 0.5), ("last", 1.0))


def share_table(act: list[dict], warmup: int) -> str:
    """Markdown: the share at a few points of the online phase and over all of it, per dataset
    (mean ± std over seeds). Each dataset's intervals come from its own rows (`interval_end`),
    so datasets with different online budgets share one table: a column is a fraction of the
    phase, each cell names the interval's last step."""
    if not act:
        return ""
    lines = [
        "Share of executed actions taken from PEX's offline policy per online evaluation interval"
        f" (mean ± std over seeds; the first {warmup} steps are warm-up, collected by the "
        "composite policy before any update; in brackets the interval's last step).",
        "",
        "| task | dataset | " + " | ".join(f"{name} interval" for name, _ in MARKS)
        + " | whole online phase |",
        "|---|---|" + "---|" * (len(MARKS) + 1),
    ]  # fmt: skip
    for task, kind in sorted({(a["task"], a["kind"]) for a in act}):
        sel = [a for a in act if a["task"] == task and a["kind"] == kind]
        seeds = sorted({a["seed"] for a in sel})
        ends = sorted({a["interval_end"] for a in sel})
        by_seed = [sorted((a for a in sel if a["seed"] == s), key=lambda a: a["interval_end"])
                   for s in seeds]  # fmt: skip
        per = np.array([[a["offline_fraction"] for a in rows] for rows in by_seed])
        n = per.shape[1]
        marks = [min(int(f * n), n - 1) for _, f in MARKS]
        ddof = 1 if len(seeds) > 1 else 0  # the sample std, as every other table
        cells = [
            f"{per[:, m].mean():.2f} ± {per[:, m].std(ddof=ddof):.2f} (≤{ends[m]:g})" for m in marks
        ]
        whole = per.mean(axis=1)
        cells.append(f"{whole.mean():.2f} ± {whole.std(ddof=ddof):.2f}")
        lines.append(f"| {task} | {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
