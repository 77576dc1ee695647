"""A tier's datasets as committed artefacts: the same bytes on every machine.

Floating point differs between instruction sets, and making a dataset amplifies the last bits:
measured on this project's AMD EPYC machine (`XLA_FLAGS=--xla_cpu_max_isa=SSE4_2` against the
default), the mazes' controller data differ by up to 6e-6 in most rows (same rows, scores and
rewards), and an inverted_double_pendulum rollout with fixed weights and keys differs by 1e-3
after ~60-100 steps and by O(1) after ~100-150. Retraining the behaviour policy, or rolling out
committed weights, therefore cannot give the same datasets everywhere; committing the datasets
does. `benchmarks/datasets/<tier>/<task>/<kind>.npz` holds one (a zip of .npy arrays,
LZMA-compressed):
the rows' observations, actions, rewards and flags, the next observation only at episode ends
and at the last row (elsewhere it is the next row's observation), the project's metadata and the
fingerprint. `ensure_datasets` imports an artefact instead of generating when its recipe hash is
the tier's current one, and checks the imported dataset's content hash against the recorded one.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from jaxo2o.core.transitions import Transitions
from jaxo2o.data import load_dataset
from jaxo2o.data.dataset import DatasetError, episode_ends
from jaxo2o.data.fingerprint import fingerprint
from jaxo2o.data.minari_io import incomplete_reason, write_dataset

ROOT = Path(__file__).resolve().parents[2] / "benchmarks" / "datasets"
ARRAYS = ("obs", "action", "reward", "terminated", "truncated")


def artefact_path(ds_id: str, root: Path = ROOT) -> Path:
    """`<root>/<tier>/<task>/<kind>.npz` of `jaxo2o/<task>/<kind>-<tier>-v0`."""
    _, task, name = ds_id.split("/")
    kind, tier, _ = name.rsplit("-", 2)
    return root / tier / task / f"{kind}.npz"


def stored_ends(terminated: np.ndarray, truncated: np.ndarray) -> np.ndarray:
    """Rows whose next observation the artefact stores: episode ends and the last row."""
    ends = episode_ends(Transitions(None, None, None, None, terminated, truncated)).copy()
    if len(ends):
        ends[-1] = True
    return ends


def export_dataset(ds: Any, path: Path, description: str = "") -> dict:
    """Write an `OfflineDataset` as an artefact; return its fingerprint."""
    t = Transitions(*(np.asarray(x) for x in ds.transitions))
    ends = stored_ends(t.terminated, t.truncated)
    inner = ~ends[:-1]
    if not np.array_equal(t.next_obs[:-1][inner], t.obs[1:][inner]):
        raise DatasetError(f"{ds.dataset_id}: a next observation inside an episode is not the "
                           "next row's observation; cannot store it as an artefact")  # fmt: skip
    arrays = {name: getattr(t, name) for name in ARRAYS} | {"end_next_obs": t.next_obs[ends]}
    fp = fingerprint(ds)
    meta = {
        "dataset_id": ds.dataset_id,
        "description": description,
        "ref_min_score": ds.ref_min_score,
        "ref_max_score": ds.ref_max_score,
        "project_metadata": ds.metadata,
        "fingerprint": fp,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_LZMA) as z:
        for name, x in arrays.items():
            buf = io.BytesIO()
            np.save(buf, np.ascontiguousarray(x), allow_pickle=False)
            z.writestr(f"{name}.npy", buf.getvalue())
        z.writestr("meta.json", json.dumps(meta, indent=1, default=float))
    tmp.replace(path)
    return fp


def read_artefact(path: Path) -> tuple[Transitions, dict]:
    """(transitions, meta) of an artefact; raises DatasetError naming the file if broken."""
    try:
        with zipfile.ZipFile(path) as z:
            meta = json.loads(z.read("meta.json"))
            arrays = {
                n: np.load(io.BytesIO(z.read(f"{n}.npy")), allow_pickle=False)
                for n in (*ARRAYS, "end_next_obs")
            }
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise DatasetError(f"{path}: cannot read the dataset artefact: {e}") from e
    obs = arrays["obs"]
    ends = stored_ends(arrays["terminated"], arrays["truncated"])
    next_obs = np.concatenate([obs[1:], obs[-1:]])
    if int(ends.sum()) != len(arrays["end_next_obs"]):
        raise DatasetError(f"{path}: {int(ends.sum())} episode ends but "
                           f"{len(arrays['end_next_obs'])} final observations")  # fmt: skip
    next_obs[ends] = arrays["end_next_obs"]
    t = Transitions(obs, arrays["action"], arrays["reward"], next_obs, arrays["terminated"],
                    arrays["truncated"])  # fmt: skip
    return t, meta


def import_artefact(ds_id: str, path: Path) -> dict:
    """Write the artefact at `path` as the local Minari dataset `ds_id` (replacing one there),
    check its content hash against the recorded fingerprint, and return the fingerprint."""

    t, meta = read_artefact(path)
    write_dataset(
        ds_id,
        t,
        description=meta.get("description") or f"{ds_id} (imported from {path.name})",
        ref_min_score=meta["ref_min_score"],
        ref_max_score=meta["ref_max_score"],
        project_metadata=meta["project_metadata"] | {"artefact": str(path.name)},
        overwrite=True,
    )
    got = fingerprint(load_dataset(ds_id))
    want = meta["fingerprint"]
    if got["hash"] != want["hash"]:
        raise DatasetError(
            f"{path}: imported as {ds_id}, content hash {got['hash']}, the artefact records "
            f"{want['hash']}"
        )
    return got


def artefact_meta(path: Path) -> dict:
    """The artefact's meta.json alone (recipe hash, fingerprint) without its arrays."""
    try:
        with zipfile.ZipFile(path) as z:
            return json.loads(z.read("meta.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise DatasetError(f"{path}: cannot read the dataset artefact: {e}") from e


def use_artefact(ds_id: str, recipe: str, log: Any = print, root: Path = ROOT) -> bool:
    """Make the local `ds_id` the committed artefact's bytes when one exists for the current
    recipe: import it if the local dataset is missing, incomplete or has another content hash.
    True when the local dataset is now the artefact; False when there is no usable artefact."""

    path = artefact_path(ds_id, root)
    if not path.exists():
        return False
    meta = artefact_meta(path)
    if meta["project_metadata"].get("recipe_hash") != recipe:
        log(f"{path}: made from another recipe than the tier's current one; not used")
        return False
    want = meta["fingerprint"]["hash"]
    try:
        if incomplete_reason(ds_id) is None and fingerprint(load_dataset(ds_id))["hash"] == want:
            return True
    except DatasetError:
        pass  # missing or unreadable: import
    got = import_artefact(ds_id, path)
    log(f"{ds_id}: imported from {path} ({got['rows']} rows, hash {got['hash']})")
    return True
