"""`python -m jaxo2o.data generate|list|info`.

    python -m jaxo2o.data generate --tier quick                   # make what is missing (cached)
    python -m jaxo2o.data generate --tier quick --tasks reacher --kinds medium expert
    python -m jaxo2o.data generate --tier quick --tasks pointmaze-medium --kinds diverse
    python -m jaxo2o.data list                                    # local Minari datasets
    python -m jaxo2o.data info jaxo2o/reacher/medium-quick-v0     # size, returns, score
    python -m jaxo2o.data export jaxo2o/pointmaze-umaze/play-quick-v0  # commit as an artefact

Datasets go to Minari's local folder: $MINARI_DATASETS_PATH, else ~/.minari/datasets.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import tyro

from jaxo2o.cli import one_line_errors
from jaxo2o.config import ConfigError
from jaxo2o.core.runner import enable_compilation_cache
from jaxo2o.data.artefact import ROOT, artefact_path, export_dataset
from jaxo2o.data.dataset import DatasetError, normalized_score
from jaxo2o.data.generate import ensure_datasets
from jaxo2o.data.minari_io import (
    PROJECT_KEY,
    dataset_folder,
    datasets_root,
    incomplete_reason,
    list_local,
    read_dataset,
    read_metadata,
)
from jaxo2o.provenance import provenance
from jaxo2o.report.files import atomic_write_text


def generate(
    tier: str = "quick",
    tasks: tuple[str, ...] = (),
    kinds: tuple[str, ...] = (),
    progress: bool = True,
    report: str = "",
) -> int:
    """Make a tier's datasets that are missing, incomplete or from another recipe.

    Args:
        tier: smoke | quick | paper | quick-gr (defined in jaxo2o/data/tiers.py).
        tasks: only these tasks of the tier (default: all).
        kinds: only these kinds (default: all of each task's own: random medium medium-replay
            medium-expert expert for the SAC-made tasks, play diverse for the mazes, d4rl for
            PointMaze v3).
        progress: show progress bars.
        report: also write the table of sizes and normalized scores to this markdown file.
    """

    enable_compilation_cache()
    t0 = time.perf_counter()
    try:
        ids = ensure_datasets(tier, tasks or None, kinds or None, progress=progress)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - t0
    table = score_table(ids)
    print(f"{len(ids)} datasets ready in {datasets_root()} ({seconds:.0f} s):")
    print(table)
    if report:
        prov = provenance()
        text = (
            f"# Datasets of the {tier} tier\n\n"
            f"Made by `python -m jaxo2o.data generate --tier {tier}` in {seconds:.0f} s "
            f"(including compilation; datasets already present are not remade) on "
            f"{prov['machine']['cpu_count']} CPU cores, git {prov['git_revision']}, "
            f"{prov['created']}.\n"
            "Normalized score = 100 (R - R_random) / (R_expert - R_random) of each episode in the "
            "data, with the reference returns stored in each dataset.\n\n" + table + "\n"
        )
        atomic_write_text(Path(report), text)
    return 0


def score_table(ids: list[str]) -> str:
    """A markdown table of the datasets' sizes and normalized scores (from their metadata)."""
    lines = [
        "| dataset | transitions | episodes | return (mean ± std) | R_random | R_expert "
        "| normalized score (mean ± std) | normalized min / max |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for ds_id in ids:
        meta = _project_meta(ds_id)
        d = meta.get("data", {})
        if not d:
            lines.append(f"| {ds_id} | ? | ? | ? | ? | ? | ? | ? |")
            continue
        lo, hi = normalized_score(
            [d["return_min"], d["return_max"]], meta["ref_min_score"], meta["ref_max_score"]
        )
        lines.append(
            f"| {ds_id} | {d['transitions']} | {d['episodes']} | {d['return_mean']:.2f} ± "
            f"{d['return_std']:.2f} | {meta['ref_min_score']:.2f} | {meta['ref_max_score']:.2f} "
            f"| {d['normalized_mean']:.1f} ± {d['normalized_std']:.1f} | "
            f"{lo:.1f} / {hi:.1f} |"
        )
    return "\n".join(lines)


def _project_meta(ds_id: str) -> dict:
    path = dataset_folder(ds_id) / "data" / "metadata.json"
    try:
        return json.loads(path.read_text()).get(PROJECT_KEY) or {}
    except (OSError, ValueError):
        return {}


def list_datasets() -> int:
    """List the local Minari datasets, with completeness and (for the project's) their score."""
    ids = list_local()
    print(f"Minari datasets in {datasets_root()}:")
    if not ids:
        print("  (none) - make the project's with: python -m jaxo2o.data generate --tier quick")
        return 0
    for ds_id in ids:
        reason = incomplete_reason(ds_id)
        if reason:
            print(f"  {ds_id}  INCOMPLETE ({reason})")
            continue
        d = _project_meta(ds_id).get("data")
        if d:
            print(
                f"  {ds_id}  {d['transitions']} transitions, {d['episodes']} episodes, "
                f"normalized {d['normalized_mean']:.1f}"
            )
        else:
            print(f"  {ds_id}")
    return 0


def info(dataset_id: Annotated[str, tyro.conf.Positional]) -> int:
    """Size, per-episode return statistics and normalized score of one local dataset.

    Args:
        dataset_id: a Minari dataset id, e.g. jaxo2o/reacher/medium-quick-v0.
    """
    try:
        ds = read_dataset(dataset_id)
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    t, r, n = ds.transitions, ds.episode_returns, ds.episode_lengths
    meta = ds.metadata
    print(f"{ds.dataset_id}  ({ds.path})")
    if meta:
        print(f"  task {ds.task}, kind {ds.kind}, tier {ds.tier}, recipe {ds.recipe_hash}")
    print(
        f"  {ds.size} transitions in {len(r)} episodes; observation {ds.observation_size}, "
        f"action {ds.action_size}"
    )
    print(
        f"  episode ends: {int(t.terminated.sum())} terminated, {int(t.truncated.sum())} "
        f"truncated; length mean {n.mean():.1f}, min {n.min()}, max {n.max()}"
    )
    q = np.percentile(r, [0, 25, 50, 75, 100])
    print(
        f"  episode return: mean {r.mean():.3f}, std {r.std():.3f}, min {q[0]:.3f}, "
        f"25% {q[1]:.3f}, median {q[2]:.3f}, 75% {q[3]:.3f}, max {q[4]:.3f}"
    )
    print(f"  reward per step: mean {t.reward.mean():.4f}, std {t.reward.std():.4f}")
    if ds.has_reference:
        s = normalized_score(r, ds.ref_min_score, ds.ref_max_score)
        print(f"  reference returns: random {ds.ref_min_score:.3f}, expert {ds.ref_max_score:.3f}")
        print(
            f"  normalized score: mean {s.mean():.1f}, std {s.std():.1f}, min {s.min():.1f}, "
            f"max {s.max():.1f}"
        )
    else:
        print("  no reference scores: the normalized score is undefined")
    ctrl = (meta.get("reference") or {}).get("noise_free") if meta else None
    if ctrl and meta.get("data", {}).get("segments"):
        d, expert = meta["data"], meta["reference"]["expert"]
        print(
            f"  maze: {d['segments']} segments of {d['segment_length']} steps, "
            f"{d['goal_entries']} goal entries, {100 * d['return_mean']:.0f}% of segments reach "
            f"the goal, {100 * d['free_cell_coverage']:.0f}% of free cells visited; controller "
            f"success {100 * expert['success_rate']:.0f}% "
            f"({100 * ctrl['success_rate']:.0f}% noise-free)"
        )
    beh = meta.get("behaviour") if meta else None
    if beh and beh.get("medium_step") is not None:
        print(f"  medium policy taken after {beh['medium_step']} SAC iterations")
    return 0


def export(ids: Annotated[tuple[str, ...], tyro.conf.Positional], to: str = "") -> int:
    """Write local datasets as committed artefacts (`jaxo2o.data.artefact`).

    Args:
        ids: Minari ids of local datasets, e.g. jaxo2o/pointmaze-umaze/play-quick-v0.
        to: the artefacts' root folder (default: the repository's benchmarks/datasets/).
    """

    root = Path(to) if to else ROOT
    for ds_id in ids:
        try:
            ds = read_dataset(ds_id)
            path = artefact_path(ds_id, root)
            fp = export_dataset(ds, path, read_metadata(ds_id).get("description", ""))
        except (DatasetError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        size = path.stat().st_size / 2**20
        print(f"{ds_id} -> {path}: {fp['rows']} rows, {size:.2f} MiB, hash {fp['hash']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        with one_line_errors():
            return tyro.extras.subcommand_cli_from_dict(
                {"generate": generate, "list": list_datasets, "info": info, "export": export},
                prog="python -m jaxo2o.data",
                description=__doc__,
                args=argv,
            )
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
