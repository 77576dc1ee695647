"""A dataset's fingerprint: rows, episodes, data score, reference scores and a content hash.

Two machines that make a tier's datasets by the same recipe need not get the same bytes: float
results differ between instruction sets, and a behaviour SAC run or a rollout on a chaotic task
amplifies the last bits into other trajectories. The bench therefore records every dataset's
fingerprint beside its results (`<tier folder>/datasets.json`) and compares a run's fingerprints
with the reference's (`differences`), so a table made on other data says so.

The content hash is SHA-256 over the transitions' arrays in a fixed order and layout
(little-endian float32 values, one byte per flag, each array's shape first) and the reference
scores, so equal hashes mean bitwise-equal datasets whatever the storage backend.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from jaxo2o.core.transitions import Transitions

FILE = "datasets.json"
HASH_CHARS = 16  # hex characters kept: 64 bits, enough to tell datasets apart
SCORE_DIGITS = 1  # the data score as the tables print it


def content_hash(transitions: Transitions, ref: tuple[float | None, float | None]) -> str:
    """SHA-256 (first `HASH_CHARS` hex) of the transitions and the reference scores."""
    h = hashlib.sha256()
    for name in Transitions._fields:
        x = np.asarray(getattr(transitions, name))
        x = x.astype("<f4") if x.dtype.kind == "f" else x.astype(np.uint8)
        h.update(f"{name}{x.shape}".encode())
        h.update(np.ascontiguousarray(x).tobytes())
    h.update(json.dumps([None if r is None else float(r) for r in ref]).encode())
    return h.hexdigest()[:HASH_CHARS]


def fingerprint(ds: Any) -> dict[str, Any]:
    """The fingerprint of an `OfflineDataset`."""
    ref = (ds.ref_min_score, ds.ref_max_score)
    score = None
    if ds.has_reference and len(ds.episode_returns):
        score = round(float(np.mean(ds.normalized_returns())), SCORE_DIGITS)
    return {
        "rows": int(ds.size),
        "episodes": int(len(ds.episode_returns)),
        "data_score": score,
        "ref_min_score": None if ref[0] is None else float(ref[0]),
        "ref_max_score": None if ref[1] is None else float(ref[1]),
        "hash": content_hash(ds.transitions, ref),
    }


def differences(mine: dict[str, Any], ref: dict[str, Any]) -> list[str]:
    """What differs between two fingerprints of one dataset, as "field mine vs reference"
    phrases (empty: the same dataset). A field the reference did not record is not compared."""
    out = []
    for key in ("rows", "episodes", "data_score", "ref_min_score", "ref_max_score", "hash"):
        if ref.get(key) is None or mine.get(key) == ref[key]:
            continue
        name = key.replace("_", " ")
        out.append(f"{name} {mine.get(key)} vs {ref[key]}")
    return out


def read(folder: Path) -> dict[str, dict[str, Any]]:
    """The fingerprints recorded in a tier folder ({} when it has none)."""
    path = folder / FILE
    return json.loads(path.read_text())["datasets"] if path.exists() else {}


def check(mine: dict[str, dict], reference: dict[str, dict]) -> dict[str, list[str]]:
    """Per dataset id in both: what differs (only datasets that differ are listed)."""
    out = {}
    for ds_id in sorted(set(mine) & set(reference)):
        diff = differences(mine[ds_id], reference[ds_id])
        if diff:
            out[ds_id] = diff
    return out
