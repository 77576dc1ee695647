"""Markdown pieces of the perf report: numbers, spreads and tables (`benchmarks.perf_report` and
the section modules that render their own sections)."""

from __future__ import annotations

from benchmarks.perf_stats import Spread


def _spread(d: dict[str, float] | None) -> Spread | None:
    return None if d is None else Spread(**d)


def number(x: float, digits: int = 3) -> str:
    if x != x:  # nan
        return "n/a"
    if abs(x) >= 10**digits:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def spread_text(d: dict[str, float] | None, digits: int = 3, pct: bool = False) -> str:
    """'median (min–max)'."""
    s = _spread(d)
    if s is None:
        return "n/a"
    if pct:
        return f"{s.median:.0%} ({s.lo:.0%}–{s.hi:.0%})"
    return f"{number(s.median, digits)} ({number(s.lo, digits)}–{number(s.hi, digits)})"


def table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out) + "\n"
