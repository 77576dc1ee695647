"""`make perf` section 6: a full run's offline phase against an offline-only run of the same
updates.

The offline phase of an offline-to-online run and an offline-only run execute the same offline
chunk programs; the full run's host loop has more around them (the online programs compiled up
front, the shared offline phase saved once computed). Each measurement is a process of its own
(`perf_worker`) on the sweep's host path: a checkpoint after every chunk and the shared offline
phase saved, in fresh folders. The two kinds of run alternate (full, offline-only, full, ...)
so that machine noise hits both alike; reported: the offline phase's seconds of each.
"""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

from benchmarks.perf_markdown import spread_text, table
from benchmarks.perf_run import run_worker
from benchmarks.perf_stats import spread

# IQL on Brax's hopper (cheap physics: the updates dominate), 2x256 networks and batch 256 as
# CORL's IQL; 8 evaluation intervals per phase, a checkpoint after each
PHASE_RUN = {
    "task": "hopper",
    "backend": "positional",
    "hidden": [256, 256],
    "batch_size": 256,
    "dataset_rows": 20_000,
    "episode_length": 1000,
    "eval_episodes": 5,
    "evals_per_phase": 8,
    "checkpoint": True,
    "background_checkpoints": True,  # the first two lines; the third writes in the loop
}


def measure_phase(offline_steps: int, online_steps: int, rounds: int, log: Any = print) -> dict:
    spec = PHASE_RUN | {"offline_steps": offline_steps, "repeats": 1}
    kinds = {
        "full": spec | {"online_steps": online_steps},
        "offline-only": spec | {"online_steps": 0},
        # the host loop as it was: each checkpoint's files written before the next chunk
        "full, checkpoints in the loop": spec
        | {"online_steps": online_steps, "background_checkpoints": False},
    }
    raw: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    folder = tempfile.mkdtemp(prefix="jaxo2o-perf-cache-")
    try:
        for r in range(rounds):
            for name, s in kinds.items():
                rep = run_worker(s, folder)["repeats"][0]
                raw[name].append(rep)
                log(
                    f"phase round {r + 1}, {name}: offline phase {rep['offline_seconds']:.2f} s "
                    f"(checkpoints {rep['checkpoint_seconds']['offline']:.2f} s)"
                )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    out: dict[str, Any] = {"spec": spec, "online_steps": online_steps, "rounds": rounds}
    for name, reps in raw.items():
        off = [x["offline_seconds"] for x in reps]
        ck = [x["checkpoint_seconds"]["offline"] for x in reps]
        out[name] = {
            "offline_seconds": spread(off).as_dict(),
            "offline_checkpoint_seconds": spread(ck).as_dict(),
            "raw_offline_seconds": off,
        }
    out["full_over_offline_only"] = spread(_ratios(out["full"], out["offline-only"])).as_dict()
    return out


def _ratios(a: dict[str, Any], b: dict[str, Any]) -> list[float]:
    """Round by round, a's offline seconds over b's."""
    return [x / y for x, y in zip(a["raw_offline_seconds"], b["raw_offline_seconds"], strict=True)]


def _loop_ratio(ph: dict[str, Any]) -> str:
    """The third line's rounds over the offline-only run's, when it was measured."""
    loop = ph.get("full, checkpoints in the loop")
    if not loop:
        return ""
    pairs = _ratios(loop, ph["offline-only"])
    return "; with checkpoints in the loop: " + ", ".join(f"{x:.2f}" for x in pairs)


def render_section(ph: dict[str, Any]) -> str:
    """Section 6 of results/perf.md."""
    spec = ph["spec"]
    rows = [
        [
            name,
            f"{spec['offline_steps']:,} + {0 if name == 'offline-only' else ph['online_steps']:,}",
            spread_text(ph[name]["offline_seconds"]),
            ", ".join(f"{x:.2f}" for x in ph[name]["raw_offline_seconds"]),
            spread_text(ph[name]["offline_checkpoint_seconds"]),
        ]
        for name in ("full", "offline-only", "full, checkpoints in the loop")
        if name in ph
    ]
    return (
        "\n## 6. A full run's offline phase against an offline-only run\n\n"
        f"IQL on Brax's `hopper` ({'x'.join(map(str, spec['hidden']))} networks, batch "
        f"{spec['batch_size']}, a {spec['dataset_rows']:,}-step random dataset), "
        f"{spec['evals_per_phase']} evaluation intervals a phase, on the sweep's host path: a "
        "checkpoint after every chunk and the shared offline phase saved once computed. "
        "The full run and the offline-only run alternate, each in its own process (compiled "
        f"from one persistent cache), {ph['rounds']} rounds. *Offline s*: wall time of the "
        "offline chunks, evaluations and host hooks, compile excluded; *checkpoint s*: "
        "what the offline phase's checkpoints held the host loop up. The first two lines write "
        "the checkpoint files in a background thread while the next chunk runs; the third writes "
        "them in the host loop before the next chunk (the default on a CPU backend since this "
        "measurement: `core.checkpoint.background_by_default`).\n\n"
        + table(["run", "steps", "offline s", "each round", "checkpoint s"], rows)
        + "\nFull over offline-only, per round: "
        + spread_text(ph["full_over_offline_only"])
        + _loop_ratio(ph)
        + ".\n"
    )
