"""Markdown tables of grouped scores."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def fmt_mean_std(g: dict[str, Any], metric: str, digits: int = 1) -> str:
    m = g.get(f"{metric}_mean")
    if m is None or not np.isfinite(m):
        return "–"
    return f"{m:.{digits}f} ± {g.get(f'{metric}_std', 0.0):.{digits}f}"


def markdown_table(
    groups: Sequence[dict[str, Any]],
    keys: Sequence[str],
    metrics: Sequence[str],
    headers: dict[str, str] | None = None,
) -> str:
    """One line per group: its keys, n, and mean ± std (over runs) of each metric."""
    headers = headers or {}
    cols = [headers.get(k, k) for k in keys] + ["n"] + [headers.get(m, m) for m in metrics]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for g in groups:
        cells = [str(g.get(k, "")) for k in keys] + [str(g["n"])]
        cells += [fmt_mean_std(g, m) for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
