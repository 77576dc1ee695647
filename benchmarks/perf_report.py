"""results/perf.md and results/perf.png from the benchmark's results (see `benchmarks.perf`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.perf_locomotion import render_section as locomotion_section
from benchmarks.perf_markdown import number, spread_text, table
from benchmarks.perf_phase import render_section as phase_section
from benchmarks.perf_run import BRAX_RUN, MAZE_RUN
from jaxo2o.report.plots import pyplot

MiB = 2**20


def machine_info() -> dict[str, Any]:
    """CPU model (/proc/cpuinfo), logical cores and total memory (/proc/meminfo)."""
    model, mem = "unknown", 0
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    mem = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    return {"cpu_model": model, "cores": os.cpu_count(), "memory_bytes": mem}


# ------------------------------------------------------------------ markdown
def render(res: dict[str, Any]) -> str:
    meta = res["meta"]
    mi = meta["machine_info"]
    parts = [
        "# Throughput and scaling benchmark\n",
        f"`{meta['command']}` ({meta['mode']} mode), written by `benchmarks/perf.py`; raw numbers "
        "in `perf.json`, plots in `perf.png`. Every figure is the median of repeated "
        "measurements with their range (min–max) in brackets.\n",
        "- **Machine:** "
        f"{mi['cpu_model']}, {mi['cores']} logical cores, "
        f"{mi['memory_bytes'] / 2**30:.1f} GiB memory; no accelerator (XLA CPU backend).\n"
        f"- **Date:** {meta['created']}; **git revision:** `{meta['git_revision']}`; "
        f"jax {meta['packages'].get('jax')}, brax {meta['packages'].get('brax')}.\n"
        + _load_line(meta, mi["cores"])
        + f"- Wall time of the benchmark: {meta['wall_seconds'] / 60:.1f} min.\n",
    ]
    if "ceilings" in res:
        parts.append(_ceilings(res["ceilings"]))
    if "updates" in res:
        parts.append(_updates(res))
    if "envs" in res:
        parts.append(_envs(res["envs"]))
    if "run" in res:
        parts.append(_run(res["run"], res.get("paper_scale_memory")))
    if "locomotion" in res:
        parts.append(locomotion_section(res["locomotion"]))
    if "phase" in res:
        parts.append(phase_section(res["phase"]))
    parts.append(_findings(res))
    return "\n".join(parts)


def _ceilings(c: dict[str, Any]) -> str:
    rows = [
        [
            "float32 matmul 256 x 256 (JAX, chained in a loop)",
            spread_text(c["matmul_256"]),
            "GFLOP/s",
        ],
        ["float32 matmul 2048 x 2048 (JAX)", spread_text(c["matmul_2048"]), "GFLOP/s"],
        [
            f"array copy, {c['bandwidth_mib']} MiB (numpy; read + write)",
            spread_text(c["copy_gbs"]),
            "GB/s",
        ],
        [f"array sum, {c['bandwidth_mib']} MiB (JAX; read)", spread_text(c["sum_gbs"]), "GB/s"],
    ]
    return "## 1. The machine's ceilings (same run)\n\n" + table(["ceiling", "rate", "unit"], rows)


def _updates(res: dict[str, Any]) -> str:
    ups = res["updates"]
    shapes = res["meta"]["shapes"]
    text = [
        "## 2. Update steps\n\n",
        f"One online update (`method.update(..., online=True)` after `to_online`) on a fixed "
        f"batch of {shapes['batch']} transitions with observation size {shapes['obs']} and "
        f"action size {shapes['act']} (halfcheetah's), each method's default networks; a jitted "
        "`lax.scan` of updates, vmapped over 1 and 8 seeds. *Useful FLOPs* are the matrix "
        "products counted from the network shapes (`benchmarks/perf_flops.py`: 2·rows·in·out "
        "per dense layer forward, as much again for the weight gradient and for the input "
        "gradient), without forward passes the code repeats. The achieved rate is compared "
        "with a 256 x 256 matmul chain of the same FLOPs timed right beside each repeat (the "
        "paired ratio; the two alternate in order); "
        "the target is at least 60% at width 256, batch 256.\n",
    ]
    rows = []
    for name, e in ups.items():
        fl = e["flops"]
        counted = fl.get("counted_flops")
        check = "n/a"
        if counted:
            check = "equal" if counted == fl["traced_dot_flops"] else "DIFFERENT"
        rows.append(
            [
                name,
                "x".join(str(h) for h in e["hidden"]),
                number(counted / 1e6, 4) if counted else "n/a",
                number(fl.get("recomputed_flops", 0) / 1e6, 3),
                check,
                number(fl["xla_flops"] / 1e6, 4),
                number(fl["useful_flops"] / 1e6, 4),
            ]
        )
    text.append(
        "FLOPs per update (millions). *Counted*: from the shapes, as the code writes it; "
        "*repeated*: forward passes that recompute an earlier one; *traced*: whether the dot "
        "products JAX traces add up to the count; *XLA*: the compiled scan's cost analysis "
        "(after XLA's optimisations, with every elementwise operation).\n\n"
    )
    text.append(
        table(
            ["method", "hidden", "counted", "repeated", "traced", "XLA", "useful"],
            rows,
        )
    )
    rows = []
    for name, e in ups.items():
        for seeds, s in e["seeds"].items():
            ok = "yes" if s["ratio"]["median"] >= 0.6 else "no"
            rows.append(
                [
                    name,
                    seeds,
                    spread_text(s["seed_updates_per_s"]),
                    spread_text(s["gflops"]),
                    spread_text(s["ceiling_gflops"]),
                    spread_text(s["ratio"], pct=True),
                    f"{s['best_ratio']:.0%}",
                    ok,
                    f"{s['compile_seconds']:.1f}",
                ]
            )
    text.append(
        "\nThroughput. *Ratio*: useful FLOP rate over the paired 256 matmul rate (median "
        "and range of the pairs); *best / best*: the fastest update repeat over the fastest "
        "matmul repeat, the least disturbed pair on a loaded machine.\n\n"
    )
    text.append(
        table(
            [
                "method",
                "seeds",
                "seed-updates/s",
                "useful GFLOP/s",
                "paired 256 matmul GFLOP/s",
                "ratio",
                "best / best",
                "ratio >= 60%",
                "compile s",
            ],
            rows,
        )
    )
    prof = {n: e["profile"] for n, e in ups.items() if "profile" in e}
    if prof:
        text.append(
            "\nWhere one update's time goes (1 seed; `jax.profiler` op times summed over "
            "threads and joined with the optimised HLO: an op is a matrix product when it is, "
            "or fuses, a dot):\n\n"
        )
        rows = []
        for n, p in prof.items():
            top = ", ".join(
                f"{t['op']} {t['ms']:.2f} ms"
                + (f" ({t['gflop_per_s']:.0f} GFLOP/s)" if t["gflop_per_s"] else "")
                for t in p["top"][:4]
            )
            rows.append(
                [
                    n,
                    f"{p['dot_ms']:.2f}",
                    f"{p.get('rng_ms', 0.0):.2f}",
                    f"{p['other_ms']:.2f}",
                    f"{p['dot_share']:.0%}",
                    f"{p['dot_gflops_per_s']:.0f}",
                    top,
                ]
            )
        text.append(
            table(
                [
                    "method",
                    "products ms",
                    "random numbers ms",
                    "other ops ms",
                    "products' share",
                    "products' GFLOP/s",
                    "slowest ops",
                ],
                rows,
            )
        )
    return "".join(text)


def _envs(rows_in: list[dict[str, Any]]) -> str:
    rows = [
        [
            r["task"],
            r["backend"],
            str(r["num_envs"]),
            spread_text(r["steps_per_s"]),
            f"{r['compile_seconds']:.1f}",
        ]
        for r in rows_in
    ]
    return (
        "\n## 3. Environment steps\n\n"
        "A jitted `lax.scan` of the loop's auto-resetting step (`step_autoreset`, vmapped over "
        "`num_envs` environments) with uniform random actions. Compile seconds are for the "
        "scan alone (with the project's persistent cache: a second run of `make perf` reads "
        "them from the cache).\n\n"
        + table(["task", "backend", "envs", "env steps/s", "compile s"], rows)
    )


def machine_was_loaded(meta: dict[str, Any], cores: int) -> bool:
    """Whether other jobs competed for the cores: the benchmark alone keeps at most `cores`
    threads busy, so a 1-minute load average above that (plus slack) means someone else ran."""
    loads = [meta["load_average_start"][0], meta["load_average_end"][0]]
    loads += meta.get("load_average_sections", [])
    return max(loads) > cores + 0.5


def _load_line(meta: dict[str, Any], cores: int) -> str:
    loads = [meta["load_average_start"][0], *meta.get("load_average_sections", [])]
    loads.append(meta["load_average_end"][0])
    seen = ", ".join(f"{x:.1f}" for x in loads)
    if machine_was_loaded(meta, cores):
        return (
            f"- **Shared, noisy machine.** Other jobs ran at the same time: 1-minute load "
            f"averages {seen} (start, after each section, end) on {cores} cores. Absolute rates "
            "are depressed and the ranges are wide; ratios measured back to back (the "
            "update-to-matmul ratio) are the most robust figures. Re-run `make perf` on a quiet "
            "machine for reference numbers.\n"
        )
    return (
        f"- **Quiet machine.** 1-minute load averages {seen} (start, after each section, end) "
        f"on {cores} cores: no more than the benchmark's own threads.\n"
    )


def _run(run: dict[str, Any], paper: dict[str, Any] | None) -> str:

    spec = run["spec"]
    sc = run["scaling"]
    c = run["compile"]
    text = [
        "\n## 4. A whole offline-to-online run\n\n",
        "IQL with the direct protocol on `point` (episodes of 100 steps) with a synthetic "
        "random-policy dataset of 20k transitions, in the shapes of the `quick` tier that "
        "`make bench` runs on a CPU: 2x64 networks, batch 256, a 10k-row online buffer; "
        f"{spec.get('offline_steps', 1000)} offline gradient steps, then "
        f"{spec.get('online_steps', 1000)} online steps (1 environment, 1 update each), two "
        "evaluations of 5 episodes per phase. Each measurement runs in a process of its own "
        "through `jaxo2o.core.runner.run_batch`, the function `python -m jaxo2o.sweep` uses.\n\n",
        "### Compile time, persistent compilation cache cold and warm\n\n",
        "Every chunk program of the 1-seed run (`run_batch`, progress bar on) compiled in a "
        "fresh cache folder (cold), then in a second process with the same folder (warm). "
        "No program holds a host callback, so all of them are cached; what a warm compile "
        "still spends is Python tracing and lowering, which is never cached.\n\n",
    ]
    rows = []
    programs = [("point", c)]
    if "compile_maze" in run:
        programs.append((MAZE_RUN["task"], run["compile_maze"]))
    if "compile_brax" in run:
        programs.append((f"{BRAX_RUN['task']} ({BRAX_RUN['backend']})", run["compile_brax"]))
    for task, comp in programs:
        for name in ("cold", "warm"):
            d = comp[name]
            rows.append(
                [
                    task,
                    name,
                    spread_text(d["compile_seconds"]),
                    str(d.get("programs", "-")),
                    ", ".join(str(h) for h in d["cache_hits"]),
                ]
            )
        cold, warm = comp["cold"], comp["warm"]
        ratio = warm["compile_seconds"]["median"] / cold["compile_seconds"]["median"]
        rows.append([task, "warm / cold", f"{ratio:.2f}", "", ""])
    text.append(table(["task", "cache", "total s", "programs", "cache hits"], rows))
    if "chunked_vs_single" in run:
        cs = run["chunked_vs_single"]
        text.append(
            "\n### Chunked run against the single program\n\n"
            "The same 1-seed run executed as chunk programs called from the host loop (what "
            "sweeps and `make bench` run) and as one program (`run_batch_single`), in "
            "alternating worker processes, compile excluded.\n\n"
        )
        text.append(
            table(
                ["path", "run s (median, spread)"],
                [[k, spread_text(v)] for k, v in cs["run_seconds"].items()],
            )
        )
        text.append(f"\nchunked / single run time: **{cs['chunked_over_single']:.3f}**\n")
    if "compile_brax" in run:
        text.append(
            f"\nThe same run on {BRAX_RUN['task']} (Brax, {BRAX_RUN['backend']} backend, "
            f"episodes of {BRAX_RUN['episode_length']} steps, a {BRAX_RUN['dataset_rows']}-row "
            "random-action dataset): the physics step dominates the compile.\n"
        )
    text.append(
        "\n### Scaling over seeds (1 device) and sharding over 2 host devices\n\n"
        "Compile seconds are the first call's (a new program per seed count: cold, unless "
        "marked as a cache hit, which `--quick` allows); run seconds "
        "are the executions (repeated; each repeat re-lowers and reads the compiled program "
        "from the persistent cache, which is not counted in the run time). Two devices: "
        "`XLA_FLAGS=--xla_force_host_platform_device_count=2`, seeds sharded over a 1-D mesh by "
        "`run_batch`; the last column compares each seed's final evaluation return with the "
        "same seed on one device (the two programs fuse differently, so they may differ in the "
        "last bits, and a training run can amplify that).\n\n"
    )
    one = {r["seeds"]: r for r in sc}
    rows = []
    for r in sc + run.get("devices2", []):
        base = one.get(r["seeds"])
        speed = agree = ""
        if r["devices"] > 1 and base:
            speed = f"{base['run_seconds']['median'] / r['run_seconds']['median']:.2f}x"
            diff = max(
                abs(a - b) for a, b in zip(r["final_returns"], base["final_returns"], strict=True)
            )
            agree = f"max diff {diff:.2g}"
        rows.append(
            [
                str(r["seeds"]),
                str(r["devices"]),
                f"{r['compile_seconds']:.1f}"
                + (" (cache hit)" if r.get("compile_cache_misses", 1) == 0 else ""),
                spread_text(r["run_seconds"]),
                spread_text(r["seed_runs_per_second"]),
                speed,
                f"{r['memory_total'] / MiB:.2f}",
                "yes" if r["finite"] else "NO",
                agree,
            ]
        )
    text.append(
        table(
            [
                "seeds",
                "devices",
                "compile s",
                "run s",
                "seed-runs/s",
                "speed-up vs 1 device",
                "compiled memory MiB",
                "finite returns",
                "final returns vs 1 device",
            ],
            rows,
        )
    )
    m = run["memory"]
    parts = m["estimate_parts"]
    verdict = "within" if m["within_tolerance"] else "NOT within"
    text.append(
        "\n### Device memory per seed: measured vs the sweep's estimate\n\n"
        "*Measured*: the slope over the seed count of the compiled program's own buffers "
        "(`memory_analysis()`: arguments + outputs + temporaries, per device), and of the "
        "resident-set increase while the program executes (sampled every 2 ms; noisy at this "
        "size). *Estimate*: `jaxo2o.experiment.estimate_memory`, what `python -m jaxo2o.sweep` "
        "checks against the available memory before compiling.\n\n"
    )
    rows = [
        ["estimate (`estimate_memory`)", f"{m['estimate_per_seed'] / MiB:.3f}", ""],
        ["- online buffer", f"{parts['buffer_per_run'] / MiB:.3f}", ""],
        ["- 2 x method state", f"{2 * parts['state_per_run'] / MiB:.3f}", ""],
        ["- update workspace", f"{parts.get('workspace_per_run', 0) / MiB:.3f}", ""],
        [
            "measured: compiled buffers",
            f"{m['compiled_per_seed'] / MiB:.3f}",
            f"estimate / measured = {m['estimate_over_compiled']:.2f}",
        ],
        [
            "measured: resident set while executing",
            f"{m['rss_per_seed'] / MiB:.3f}",
            f"estimate / measured = {m['estimate_over_rss']:.2f}",
        ],
    ]
    text.append(table(["per seed", "MiB", ""], rows))
    text.append(
        f"\nThe estimate is **{verdict} {m['tolerance']:.0%}** of the compiled program's "
        f"per-seed memory. With {m['available_bytes'] / 2**30:.1f} GiB available, the sweep's "
        f"rule (80% of the available memory) admits **{m['cap_seeds']:,} seeds** of this "
        f"run; the scaling curve stops at {max(r['seeds'] for r in sc)} seeds because on this "
        "CPU the run time grows in proportion to the seeds (section 2: the update is "
        "compute-bound), not because of memory."
    )
    if paper:
        text.append(
            f" At the paper tier's scale (2x256 IQL on hopper, a 1M-row online buffer and "
            f"a 1M-row dataset) a seed needs {paper['per_run'] / MiB:.0f} MiB, and the memory "
            f"limit binds at about **{paper['cap_seeds']} seeds** on this machine."
        )
    text.append("\n")
    return "".join(text)


FINDINGS = "results/perf-findings.md"  # what these measurements explain and changed (prose)


def _findings(res: dict[str, Any]) -> str:
    """What this run's numbers say, computed from them; the explanations and the changes made
    because of earlier runs are kept in markdown (`FINDINGS`)."""
    out = ["\n## Findings\n\n"]
    meta = res["meta"]
    ups = res.get("updates", {})
    if ups:
        ratios = {
            n: e["seeds"]["1"]["ratio"]["median"] for n, e in ups.items() if "1" in e["seeds"]
        }
        short = [n for n, r in ratios.items() if r < 0.6]
        verdict = (
            "every method reaches the 60% target with one seed"
            if not short
            else f"below the 60% target with one seed: {', '.join(short)}"
        )
        medians = ", ".join(f"{n} {r:.0%}" for n, r in ratios.items())
        loaded = machine_was_loaded(meta, meta["machine_info"]["cores"])
        spread = " (loaded machine: pairs spread by tens of percent)" if loaded else ""
        out.append(f"- Update efficiency against the paired 256 matmul: {verdict} "
                   f"(medians: {medians}){spread}.\n")  # fmt: skip
        prof = [e["profile"] for e in ups.values() if "profile" in e]
        if prof:
            lo, hi = min(p["dot_share"] for p in prof), max(p["dot_share"] for p in prof)
            out.append(f"- Matrix products take {lo:.0%}-{hi:.0%} of the profiled op time.\n")
        rng = {
            n: e["profile"]["rng_ms"]
            / (e["profile"]["dot_ms"] + e["profile"]["other_ms"] + e["profile"]["rng_ms"])
            for n, e in ups.items()
            if "profile" in e and e["profile"].get("rng_ms")
        }
        if any(r >= 0.005 for r in rng.values()):
            shares = ", ".join(f"{r:.0%} ({n})" for n, r in rng.items() if r >= 0.005)
            out.append(f"- Random numbers take {shares} of the op time.\n")
    run = res.get("run")
    if run:
        c = run["compile"]
        cold = c["cold"]["compile_seconds"]["median"]
        warm = c["warm"]["compile_seconds"]["median"]
        out.append(
            f"- Memory estimate / compiled program: {run['memory']['estimate_over_compiled']:.2f}."
            f"\n- Compile of every chunk program: cold {cold:.0f} s, warm {warm:.0f} s "
            f"({warm / cold:.0%} of cold).\n"
        )
        if "compile_brax" in run:
            cb = run["compile_brax"]
            trace = cb["cold"].get("trace_seconds")  # the single program's stages only
            tracing = f" ({trace['median']:.0f} s tracing)" if trace else ""
            out.append(
                f"- On inverted_double_pendulum: cold {cb['cold']['compile_seconds']['median']:.0f}"
                f" s{tracing}, warm {cb['warm']['compile_seconds']['median']:.0f} s.\n"
            )
    loco = res.get("locomotion")
    if loco:
        rate = {(r["task"], r["simulator"][:4], r["num_envs"]): r["steps_per_s"]["median"]
                for r in loco["envs"]}  # fmt: skip
        mjx, ref = rate.get(("Hopper-v5", "MJX ", 1)), rate.get(("Hopper-v5", "MuJo", 1))
        runs = {t: loco["whole_run"][t]["run"]["run_seconds"]["median"]
                for t in ("Hopper-v5", "hopper")}  # fmt: skip
        if mjx and ref:
            out.append(
                f"- Hopper-v5 on MJX steps {mjx:,.0f} env-steps/s with one environment, "
                f"{ref / mjx:.0f}x fewer than MuJoCo C on the host ({ref:,.0f}); the whole IQL "
                f"run takes {runs['Hopper-v5'] / runs['hopper']:.1f}x as long as on Brax's "
                "hopper, the difference being physics.\n"
            )
    out.append(
        f"\nWhat these figures explain and what was changed because of them: `{FINDINGS}`.\n"
    )
    return "".join(out)


# ------------------------------------------------------------------ plot
def plot(res: dict[str, Any], path: str | Path) -> None:
    plt = pyplot()

    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    title = (
        f"jaxo2o throughput ({res['meta']['mode']}), {res['meta']['machine_info']['cpu_model']}, "
        f"{res['meta']['machine_info']['cores']} cores, shared/noisy machine"
    )
    fig.suptitle(title, fontsize=10)

    def err(d: dict[str, float]) -> tuple[float, float]:
        return d["median"] - d["lo"], d["hi"] - d["median"]

    ax = axes[0, 0]
    ups = res.get("updates", {})
    if ups:
        names = list(ups)
        seed_keys = sorted({k for e in ups.values() for k in e["seeds"]}, key=int)
        width = 0.8 / max(len(seed_keys), 1)
        for j, sk in enumerate(seed_keys):
            vals = [ups[n]["seeds"][sk]["ratio"] for n in names]
            x = np.arange(len(names)) + j * width
            ax.bar(
                x,
                [v["median"] for v in vals],
                width,
                yerr=np.array([err(v) for v in vals]).T,
                label=f"{sk} seed(s)",
                capsize=3,
            )
        ax.axhline(0.6, color="k", ls="--", lw=1, label="target 60%")
        ax.set_xticks(np.arange(len(names)) + width * (len(seed_keys) - 1) / 2, names)
        ax.set_ylabel("useful FLOP rate / paired 256 matmul rate")
        ax.set_title("update step (width 256, batch 256)")
        ax.legend(fontsize=8)

    ax = axes[0, 1]
    run = res.get("run")
    if run:
        for rows, label in ((run["scaling"], "1 device"), (run.get("devices2", []), "2 devices")):
            if not rows:
                continue
            seeds = [r["seeds"] for r in rows]
            med = [r["run_seconds"]["median"] for r in rows]
            ax.errorbar(
                seeds,
                med,
                yerr=np.array([err(r["run_seconds"]) for r in rows]).T,
                marker="o",
                capsize=3,
                label=f"execution, {label}",
            )
        ax.plot(
            [r["seeds"] for r in run["scaling"]],
            [r["compile_seconds"] for r in run["scaling"]],
            marker="s",
            ls=":",
            label="compile, 1 device",
        )
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(
            [r["seeds"] for r in run["scaling"]], [str(r["seeds"]) for r in run["scaling"]]
        )
        ax.set_xlabel("seeds (vmapped in one program)")
        ax.set_ylabel("seconds")
        ax.set_title("whole offline-to-online run (IQL direct, point)")
        ax.legend(fontsize=8)

        ax = axes[1, 0]
        seeds = np.array([r["seeds"] for r in run["scaling"]], float)
        ax.plot(seeds, [r["memory_total"] / MiB for r in run["scaling"]], "o-", label="compiled")
        m = run["memory"]
        est = m["estimate_per_seed"] * seeds + m["compiled_intercept"]
        ax.plot(seeds, est / MiB, "s--", label="estimate per seed (+ measured intercept)")
        ax.set_xlabel("seeds")
        ax.set_ylabel("MiB")
        ax.set_title("device memory of the whole run")
        ax.legend(fontsize=8)

    ax = axes[1, 1]
    envs = res.get("envs", [])
    if envs:
        labels = [
            f"{r['task'][:12]}\n{r['backend'] if r['backend'] != '-' else ''} x{r['num_envs']}"
            for r in envs
        ]
        vals = [r["steps_per_s"] for r in envs]
        ax.bar(
            range(len(envs)),
            [v["median"] for v in vals],
            yerr=np.array([err(v) for v in vals]).T,
            capsize=3,
        )
        ax.set_xticks(range(len(envs)), labels, fontsize=7)
        ax.set_yscale("log")
        ax.set_ylabel("environment steps / s")
        ax.set_title("environment steps (random actions)")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
