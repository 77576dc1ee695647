"""Whole offline-to-online runs, each in a subprocess (`perf_worker`): compile time with a cold
and a warm persistent compilation cache, the scaling curve over seeds, seeds sharded over one
and two host devices, and device memory per seed against the sweep's estimate."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.perf_stats import spread

REPO = Path(__file__).resolve().parent.parent
_FORCE = "--xla_force_host_platform_device_count"


# the whole run on a Brax task, for its compile time: the quick tier's inverted_double_pendulum
BRAX_RUN = {"task": "inverted_double_pendulum", "backend": "generalized", "episode_length": 1000}
BRAX_RUN |= {"dataset_rows": 2000, "offline_steps": 500, "online_steps": 500}
# ... and on a point-mass maze (pure JAX; its own time limit)
MAZE_RUN = {"task": "pointmaze-medium", "episode_length": 300, "dataset_rows": 3000}


class WorkerError(RuntimeError):
    pass


def worker_env(cache_dir: str, devices: int) -> dict[str, str]:
    """The subprocess environment: its own cache folder and, for several devices, forced host
    devices (XLA reads the flag when jax starts, hence the subprocess)."""
    env = dict(os.environ)
    env["JAXO2O_CACHE_DIR"] = cache_dir
    # big allocations straight from mmap, so freed buffers leave the resident set
    env["MALLOC_MMAP_THRESHOLD_"] = "131072"
    flags = [f for f in env.get("XLA_FLAGS", "").split() if not f.startswith(_FORCE)]
    if devices > 1:
        flags.append(f"{_FORCE}={devices}")
    env["XLA_FLAGS"] = " ".join(flags)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def run_worker(spec: dict[str, Any], cache_dir: str, timeout: float = 3600) -> dict[str, Any]:
    """Run `benchmarks.perf_worker` on `spec` and return its JSON result."""
    cmd = [sys.executable, "-m", "benchmarks.perf_worker", json.dumps(spec)]
    env = worker_env(cache_dir, int(spec.get("devices", 1)))
    proc = subprocess.run(
        cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise WorkerError(f"perf_worker {spec} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compile_cold_warm(spec: dict[str, Any], repeats: int) -> dict[str, Any]:
    """Compile the 1-seed program in a fresh cache folder (cold), then again in a second process
    with the same folder (warm); `repeats` times, each with a new folder."""
    cold, warm = [], []
    for _ in range(repeats):
        folder = tempfile.mkdtemp(prefix="jaxo2o-perf-cache-")
        try:
            cold.append(run_worker(spec | {"compile_only": True}, folder))
            warm.append(run_worker(spec | {"compile_only": True}, folder))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    out: dict[str, Any] = {"raw": {"cold": cold, "warm": warm}}
    for name, rows in (("cold", cold), ("warm", warm)):
        out[name] = {
            key: spread([r[key] for r in rows]).as_dict()
            for key in ("compile_seconds", "trace_seconds", "xla_compile_seconds")
            if all(key in r for r in rows)
        }
        out[name]["cache_hits"] = [r["cache"]["hits"] for r in rows]
        out[name]["programs"] = rows[0].get("programs")
    return out


def chunked_vs_single(spec: dict[str, Any], repeats: int, cache_dir: str) -> dict[str, Any]:
    """Run throughput of the chunked run against the single program, same spec, workers
    alternating (chunked, single, chunked, ...) so machine noise hits both alike; each worker
    compiles once (from `cache_dir`) and executes `repeats` times."""
    runs: dict[str, list[float]] = {"chunked": [], "single": []}
    for _ in range(2):
        for path in ("chunked", "single"):
            res = run_worker(spec | {"path": path, "repeats": repeats}, cache_dir)
            runs[path] += [r["run_seconds"] for r in res["repeats"][1:] or res["repeats"]]
    med = {k: float(np.median(v)) for k, v in runs.items()}
    return {
        "run_seconds": {k: spread(v).as_dict() for k, v in runs.items()},
        "chunked_over_single": med["chunked"] / med["single"],
    }


def batch_runs(
    spec: dict[str, Any], seeds: list[int], devices: int, repeats: int, cache_dir: str
) -> list[dict[str, Any]]:
    """One worker per seed count; each compiles once (cold for a new program in `cache_dir`)
    and executes `repeats` times through `run_batch`."""
    out = []
    for n in seeds:
        res = run_worker(spec | {"seeds": n, "devices": devices, "repeats": repeats}, cache_dir)
        reps = res["repeats"]
        run_s = [r["run_seconds"] for r in reps]
        mem = reps[0]["memory"]
        later = reps[1:] or reps  # the first call also compiles: its RSS peak includes that
        out.append(
            {
                "seeds": n,
                "devices": reps[0]["n_devices"],
                "compile_seconds": reps[0]["compile_seconds"],
                "compile_cache_misses": reps[0]["cache_misses"],
                "recompile_seconds": [r["compile_seconds"] for r in reps[1:]],
                "run_seconds": spread(run_s).as_dict(),
                "seed_runs_per_second": spread([n / t for t in run_s]).as_dict(),
                "memory": mem,
                "memory_total": int(sum(mem.values())),
                "rss_exec_increase": spread(
                    [r["rss_peak"] - r["rss_before"] for r in later]
                ).as_dict(),
                "ru_maxrss": res["ru_maxrss"],
                "estimate": res["estimate"],
                "finite": all(r["finite"] for r in reps),
                "final_returns": reps[0]["final_returns"],
                "evaluations": reps[0].get("evaluations"),
            }
        )
    return out


def per_seed_slope(seeds: list[int], values: list[float]) -> tuple[float, float]:
    """Least-squares (slope, intercept) of values against the seed count."""
    if len(seeds) < 2:
        return float("nan"), float("nan")
    slope, intercept = np.polyfit(np.asarray(seeds, float), np.asarray(values, float), 1)
    return float(slope), float(intercept)


def memory_check(rows: list[dict[str, Any]], tolerance: float = 0.2) -> dict[str, Any]:
    """Per-seed memory, measured (slope of the compiled program's argument + output + temp bytes
    over the seed count, and of the resident-set increase while executing) vs the estimate."""
    seeds = [r["seeds"] for r in rows]
    est = rows[0]["estimate"]["per_run"]
    compiled, compiled_0 = per_seed_slope(seeds, [r["memory_total"] for r in rows])
    rss, rss_0 = per_seed_slope(seeds, [r["rss_exec_increase"]["median"] for r in rows])
    ratio = est / compiled if compiled > 0 else float("nan")
    return {
        "estimate_per_seed": est,
        "estimate_parts": {k: v for k, v in rows[0]["estimate"].items() if k != "runs"},
        "compiled_per_seed": compiled,
        "compiled_intercept": compiled_0,
        "rss_per_seed": rss,
        "rss_intercept": rss_0,
        "estimate_over_compiled": ratio,
        "estimate_over_rss": est / rss if rss > 0 else float("nan"),
        "within_tolerance": bool(abs(ratio - 1.0) <= tolerance),
        "tolerance": tolerance,
    }


def memory_cap(per_seed: int, dataset: int, available: int, fraction: float = 0.8) -> int:
    """Seeds that fit in `fraction` of the available memory (the sweep's `check_memory` rule)."""
    return max(0, int((fraction * available - dataset) // max(per_seed, 1)))
