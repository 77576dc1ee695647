"""Which w schedule the ACA lines of a bench run used, and where it left w.

ACA's official K counts absolute updates (`jaxo2o.methods.aca_settings`: w falls by w0 / (K 1000)
per update over a 100k-update online phase), so a short phase ends with w far above w_min and the
"ACA vs sac-direct" claims are read off a critic still close to pi0's. The claims table states
the schedule and the end value of w of every ACA line it reads.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from jaxo2o.methods.aca_settings import OFFICIAL_ONLINE_UPDATES, UPDATES_PER_K


def option(items: list[str], name: str, default: str) -> str:
    """The value of `name=value` in a list of options (the last one wins), else `default`."""
    found = [i.split("=", 1)[1] for i in items if i.split("=", 1)[0] == name]
    return found[-1] if found else default


def end_of_schedule(experiment: dict) -> tuple[str, float, int, float]:
    """(schedule, K used, online updates, w after the last one) of an ACA experiment as
    recorded in its meta.json. Updates: online iterations x updates per iteration after the
    seeded protocol's wait for a batch (none when it starts from seed episodes)."""
    run = experiment["run"]
    hp = experiment["hparams"]
    schedule = option(experiment["method_config"], "w_schedule", "absolute")
    w0, k, w_min = (
        float(option(hp, n, d)) for n, d in (("w0", "1"), ("w_k", "40"), ("w_min", "0.5"))
    )
    wait = 0
    if run["protocol"] == "seeded" and not run["seed_episodes"]:
        wait = math.ceil((run["batch_size"] + 1) / run["num_envs"]) - 1
    iterations = run["online_steps"]
    updates = (iterations - max(run["warmup_steps"], wait)) * run["updates_per_step"]
    if schedule == "scaled":
        k *= iterations * run["updates_per_step"] / OFFICIAL_ONLINE_UPDATES
    w = max(w0 - updates * w0 / (k * UPDATES_PER_K), w_min)
    return schedule, k, updates, w


def schedule_note(root: Path, labels: tuple[str, ...] = ("aca", "aca-scaled")) -> str:
    """One sentence per bench run: the ACA lines' w schedule and end values ("" if none ran)."""
    parts = []
    for label in labels:
        for meta in sorted(root.glob(f"runs/*/*/{label}/meta.json")):
            exp = json.loads(meta.read_text()).get("experiment") or {}
            if exp.get("method") != "aca" or not exp.get("run", {}).get("online_steps"):
                continue
            schedule, k, updates, w = end_of_schedule(exp)
            where = "/".join(meta.parts[-4:-1])
            parts.append(f"{where}: {schedule}, K {k:g}, {updates} updates, w ends at {w:.3f}")
    if not parts:
        return ""
    return (
        "ACA's w schedule in these runs (official: 'absolute' K over 100k updates, w_min "
        "reached at the end on AntMaze, after 20k of them on medium; 'scaled': K times the "
        "run's updates / 100k): " + "; ".join(parts) + ".\n"
    )
