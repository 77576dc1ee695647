"""Minari storage: write transitions as a Minari dataset, read any local Minari dataset back.

Where: Minari's local folder (``$MINARI_DATASETS_PATH``, else ``~/.minari/datasets``); a dataset
``ns/name-v0`` lives in ``<root>/ns/name-v0/data/`` (``metadata.json`` + the episode file).

Writing is all-or-nothing. The input is validated first (shapes, finite values, episode
boundaries); then the dataset is created with ``minari.create_dataset_from_buffers`` inside a
hidden staging folder of the same root, the project's metadata (a ``"jaxo2o"`` entry holding the
recipe, the reference scores and ``"complete": true``) is added last, and only then is the folder
renamed into place. A folder that lacks any of this (an interrupted generation) is reported as
incomplete and never read as if it were whole.

Reference scores: Minari drops ``ref_min_score``/``ref_max_score`` when no Gymnasium environment
is given, so they are added to the metadata afterwards (``minari.get_normalized_score`` then works
too) and repeated in the ``"jaxo2o"`` entry.

Reading turns Minari episodes (T+1 observations, T actions/rewards/flags) into flat transitions:
``next_obs[t] = obs[t+1]`` inside an episode, so the true final observation of every episode is
kept. Box observation and action spaces are supported (flattened to vectors, cast to
float32), and Dict observations of Boxes (the mazes), concatenated in sorted key order as
`gymnasium.spaces.flatten` does. An episode whose last step has neither flag (allowed by Minari)
is marked truncated; a step marked both (Gymnasium's TimeLimit when the last allowed step also
ends the episode) is kept as terminated only, the project's convention (`envs.base.time_limit`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import minari
import numpy as np
from minari.data_collector import EpisodeBuffer
from minari.dataset.minari_storage import MinariStorage

from jaxo2o.core.transitions import Transitions
from jaxo2o.data.dataset import (
    NAMESPACE,
    DatasetError,
    OfflineDataset,
    episode_ends,
    episode_lengths,
    episode_returns,
)

PROJECT_KEY = "jaxo2o"  # the project's entry in Minari's metadata.json
STAGING = ".jaxo2o-staging"  # hidden: Minari's own listings skip it
GENERATE_HINT = "python -m jaxo2o.data generate --tier <smoke|quick|paper>"


# --------------------------------------------------------------------------- locations
def datasets_root() -> Path:
    """Minari's local datasets folder (respects MINARI_DATASETS_PATH)."""
    env = os.environ.get("MINARI_DATASETS_PATH")
    root = Path(env) if env else Path.home() / ".minari" / "datasets"
    return root.expanduser()


def dataset_folder(ds_id: str) -> Path:
    return datasets_root() / ds_id


def _data_file(folder: Path) -> Path:
    """The file to name in errors: the episode file if there is one, else the data folder."""
    h5 = folder / "data" / "main_data.hdf5"
    return h5 if h5.exists() else folder / "data"


def list_local() -> list[str]:
    """Ids of every dataset folder under the local root (complete or not), sorted."""
    root = datasets_root()
    found: list[str] = []
    if not root.is_dir():
        return found

    def walk(folder: Path, prefix: str) -> None:
        for child in sorted(folder.iterdir()):
            if not child.is_dir() or child.name.startswith("."):
                continue
            ds_id = f"{prefix}{child.name}"
            if (child / "data").is_dir() or _looks_like_dataset(child):
                found.append(ds_id)
            else:
                walk(child, ds_id + "/")

    walk(root, "")
    return found


def _looks_like_dataset(folder: Path) -> bool:
    """A folder named like a versioned dataset (``name-vN``) but without data: half-made."""
    name = folder.name
    return "-v" in name and name.rsplit("-v", 1)[1].isdigit()


# --------------------------------------------------------------------------- validation
def validate_transitions(
    t: Transitions,
    where: str,
    observation_size: int | None = None,
    action_size: int | None = None,
    action_bound: float | None = 1.0,
) -> Transitions:
    """Check and convert flat transitions; raise DatasetError naming `where`. The one set of
    rules for data the project writes and for data it reads (`read_dataset` assembles the
    episodes, then calls this).

    Rules: every field has the same number of rows (> 0); observations and actions are 2-D with
    the expected widths; values are finite; actions lie in [-action_bound, action_bound] (None:
    any bound, for datasets recorded elsewhere); the last row ends an episode; inside an episode
    each row's next observation is the following row's observation.
    """
    names = Transitions._fields
    arrays = [np.asarray(x) for x in t]
    n = arrays[2].shape[0] if arrays[2].ndim else 0
    for name, a in zip(names, arrays, strict=True):
        if a.ndim == 0 or a.shape[0] != n:
            raise DatasetError(
                f"{where}: inconsistent lengths: {name} has "
                f"{a.shape[0] if a.ndim else 'no'} rows, reward has {n}"
            )
    if n == 0:
        raise DatasetError(f"{where}: no transitions to write")
    obs, act, rew, nxt, term, trunc = arrays
    for name, a in (("obs", obs), ("action", act), ("next_obs", nxt)):
        if a.ndim != 2:
            raise DatasetError(f"{where}: {name} must be 2-D (rows, size), got shape {a.shape}")
    for name, a in (("reward", rew), ("terminated", term), ("truncated", trunc)):
        if a.ndim != 1:
            raise DatasetError(f"{where}: {name} must be 1-D, got shape {a.shape}")
    if nxt.shape[1] != obs.shape[1]:
        raise DatasetError(
            f"{where}: next_obs has {nxt.shape[1]} dimensions, obs has {obs.shape[1]}"
        )
    if observation_size is not None and obs.shape[1] != observation_size:
        raise DatasetError(
            f"{where}: observations have {obs.shape[1]} dimensions, the task expects "
            f"{observation_size}"
        )
    if action_size is not None and act.shape[1] != action_size:
        raise DatasetError(
            f"{where}: actions have {act.shape[1]} dimensions, the task expects {action_size}"
        )
    for name, a in (("obs", obs), ("action", act), ("reward", rew), ("next_obs", nxt)):
        bad = ~np.isfinite(a)
        if np.any(bad):
            row = int(np.argwhere(bad)[0][0])
            raise DatasetError(
                f"{where}: {name} holds {int(bad.sum())} non-finite values (NaN or inf), "
                f"first at row {row}"
            )
    if action_bound is not None and np.any(np.abs(act) > action_bound):
        row = int(np.argwhere(np.abs(act) > action_bound)[0][0])
        raise DatasetError(
            f"{where}: actions must lie in [-{action_bound:g}, {action_bound:g}], row {row} has "
            f"{act[row]}"
        )
    for name, a in (("terminated", term), ("truncated", trunc)):
        if a.dtype != bool and not np.all((a == 0) | (a == 1)):
            raise DatasetError(f"{where}: {name} must be boolean (0/1)")
    out = Transitions(
        obs.astype(np.float32),
        act.astype(np.float32),
        rew.astype(np.float32),
        nxt.astype(np.float32),
        term.astype(bool),
        trunc.astype(bool),
    )
    ends = episode_ends(out)
    if not ends[-1]:
        raise DatasetError(
            f"{where}: the last row ends no episode (set terminated or truncated on it)"
        )
    inside = np.flatnonzero(~ends[:-1])
    mismatch = np.any(out.next_obs[inside] != out.obs[inside + 1], axis=1)
    if np.any(mismatch):
        row = int(inside[np.argmax(mismatch)])
        raise DatasetError(
            f"{where}: row {row}: next_obs differs from the observation of row {row + 1}, but "
            "neither terminated nor truncated marks an episode end there"
        )
    return out


# --------------------------------------------------------------------------- writing
def _episode_buffers(t: Transitions, lengths: np.ndarray) -> list[Any]:

    buffers, start = [], 0
    for i, n in enumerate(lengths):
        sl = slice(start, start + int(n))
        obs = np.concatenate([t.obs[sl], t.next_obs[sl][-1:]], axis=0)
        buffers.append(
            EpisodeBuffer(
                id=i,
                observations=obs,
                actions=t.action[sl],
                rewards=t.reward[sl],
                terminations=t.terminated[sl],
                truncations=t.truncated[sl],
            )
        )
        start += int(n)
    return buffers


@contextlib.contextmanager
def _minari_root(path: Path) -> Iterator[None]:
    """Point Minari at another datasets folder for the duration of the block."""
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(path)
    try:
        yield
    finally:
        if old is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = old


def _json_safe(x: Any) -> Any:
    """Plain Python values for json (numpy scalars/arrays, tuples)."""
    return json.loads(
        json.dumps(x, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_staging() -> list[Path]:
    """Remove staging folders left by processes that are no longer running."""
    staging = datasets_root() / STAGING
    removed = []
    if staging.is_dir():
        for d in staging.iterdir():
            pid = d.name.split("-", 1)[0]
            if pid.isdigit() and not _pid_alive(int(pid)):
                shutil.rmtree(d, ignore_errors=True)
                removed.append(d)
    return removed


def write_dataset(
    ds_id: str,
    transitions: Transitions,
    *,
    description: str,
    ref_min_score: float | None = None,
    ref_max_score: float | None = None,
    project_metadata: dict | None = None,
    observation_size: int | None = None,
    action_size: int | None = None,
    algorithm_name: str | None = None,
    overwrite: bool = False,
    env_spec: gym.envs.registration.EnvSpec | None = None,
    eval_env_spec: gym.envs.registration.EnvSpec | None = None,
) -> Path:
    """Validate `transitions` and write them as the Minari dataset `ds_id`; return its folder.

    Nothing appears under the dataset's name unless the whole dataset was written. `env_spec` /
    `eval_env_spec`: the Gymnasium env the data was recorded on / is to be evaluated on, stored
    as Minari stores them (JSON strings in metadata.json); the spaces stay the flat Boxes.
    """

    root = datasets_root()
    final = root / ds_id
    t = validate_transitions(transitions, f"dataset {ds_id}", observation_size, action_size)
    if final.exists() and not overwrite:
        raise DatasetError(f"{final}: a dataset already exists there (pass overwrite=True)")
    lengths = episode_lengths(t)
    buffers = _episode_buffers(t, lengths)

    obs_space = gym.spaces.Box(-np.inf, np.inf, (t.obs.shape[1],), np.float32)
    act_space = gym.spaces.Box(-1.0, 1.0, (t.action.shape[1],), np.float32)
    meta = dict(project_metadata or {})
    meta.update(
        complete=True,
        ref_min_score=ref_min_score,
        ref_max_score=ref_max_score,
        total_steps=int(t.size),
        total_episodes=int(len(lengths)),
    )

    stage_root = root / STAGING / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    stage_root.mkdir(parents=True)
    try:
        with _minari_root(stage_root), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Minari warns about every unset optional field
            ds = minari.create_dataset_from_buffers(
                dataset_id=ds_id,
                buffer=buffers,
                observation_space=obs_space,
                action_space=act_space,
                algorithm_name=algorithm_name,
                author=NAMESPACE,
                description=description,
                ref_min_score=ref_min_score,
                ref_max_score=ref_max_score,
            )
            extra: dict[str, Any] = {PROJECT_KEY: _json_safe(meta)}
            if ref_min_score is not None and ref_max_score is not None:
                extra["ref_min_score"] = float(ref_min_score)
                extra["ref_max_score"] = float(ref_max_score)
            for key, spec in (("env_spec", env_spec), ("eval_env_spec", eval_env_spec)):
                if spec is not None:
                    extra[key] = spec.to_json()
            ds.storage.update_metadata(extra)
        staged = stage_root / ds_id
        final.parent.mkdir(parents=True, exist_ok=True)
        _copy_namespace_files(stage_root, root, ds_id)
        if final.exists():  # overwrite: move the old one aside first, delete it after
            trash = stage_root / "old"
            os.replace(final, trash)
        os.replace(staged, final)
    finally:
        shutil.rmtree(stage_root, ignore_errors=True)
    return final


def _copy_namespace_files(stage_root: Path, root: Path, ds_id: str) -> None:
    """Give the real root the namespace markers Minari made in the staging root."""
    parts = ds_id.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        rel = Path(*parts[:i]) / "namespace_metadata.json"
        src, dst = stage_root / rel, root / rel
        if src.exists() and not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)


def delete_dataset(ds_id: str) -> None:
    """Remove a dataset folder (complete or not)."""
    shutil.rmtree(dataset_folder(ds_id), ignore_errors=True)


# --------------------------------------------------------------------------- reading
def generate_command(ds_id: str) -> str:
    """The command that makes a dataset of the project (a general hint for other ids)."""
    parts = ds_id.split("/")
    if len(parts) == 3 and parts[0] == NAMESPACE and "-v" in parts[2]:
        kind, _, tier = parts[2].rsplit("-v", 1)[0].rpartition("-")
        if kind and tier:
            return f"python -m jaxo2o.data generate --tier {tier} --tasks {parts[1]} --kinds {kind}"
    return GENERATE_HINT


def missing_error(ds_id: str) -> DatasetError:
    local = list_local()
    listing = "\n".join(f"  {d}" for d in local) if local else "  (none)"
    if ds_id.startswith(f"{NAMESPACE}/"):
        hint = f"Generate it with: {generate_command(ds_id)}"
    else:  # one of Minari's public datasets (D4RL/..., mujoco/...): the project cannot make it
        hint = (
            f"Download it with: minari download {ds_id} (or set MINARI_DATASETS_PATH to a "
            "folder that holds it)"
        )
    return DatasetError(
        f"{dataset_folder(ds_id)}: no dataset {ds_id!r} in the local Minari folder "
        f"{datasets_root()}.\nLocal datasets:\n{listing}\n{hint}"
    )


def read_metadata(ds_id: str) -> dict:
    """Minari's metadata.json of a dataset, checked for completeness (raises DatasetError)."""
    folder = dataset_folder(ds_id)
    if not folder.exists():
        raise missing_error(ds_id)
    reason = incomplete_reason(ds_id)
    if reason:
        raise DatasetError(
            f"{_data_file(folder)}: incomplete dataset ({reason}); it was probably left by an "
            f"interrupted generation. Delete {folder} or regenerate it: {generate_command(ds_id)}"
        )
    with open(folder / "data" / "metadata.json") as f:
        return json.load(f)


def incomplete_reason(ds_id: str) -> str | None:
    """Why the dataset folder is not a whole dataset, or None if it looks complete."""
    folder = dataset_folder(ds_id)
    data = folder / "data"
    if not data.is_dir():
        return "no data/ folder"
    meta_file = data / "metadata.json"
    if not meta_file.exists():
        return "no data/metadata.json"
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, ValueError) as e:
        return f"unreadable metadata.json: {e}"
    fmt = meta.get("data_format", "hdf5")
    if fmt == "hdf5" and not (data / "main_data.hdf5").exists():
        return "no main_data.hdf5"
    if meta.get("dataset_id") not in (None, ds_id):
        return f"metadata names another dataset, {meta.get('dataset_id')!r}"
    if ds_id.startswith(NAMESPACE + "/") and not meta.get(PROJECT_KEY, {}).get("complete"):
        return "the completion record is missing"
    return None


def _box_size(space: Any, what: str, where: str) -> int:

    if isinstance(space, gym.spaces.Dict):  # goal-conditioned (the mazes): flattened, see below
        return sum(_box_size(s, f"{what} {k!r}", where) for k, s in space.spaces.items())
    if not isinstance(space, gym.spaces.Box):
        raise DatasetError(
            f"{where}: {what} space is {type(space).__name__}; only Box spaces are supported"
        )
    return int(np.prod(space.shape)) if space.shape else 1


def read_dataset(
    ds_id: str, observation_size: int | None = None, action_size: int | None = None
) -> OfflineDataset:
    """Read a local Minari dataset into flat transitions, validating it on the way."""
    meta = read_metadata(ds_id)
    folder = dataset_folder(ds_id)
    where = str(_data_file(folder))
    storage, d_obs, d_act = _open_storage(folder, where, observation_size, action_size)
    n_eps = int(meta.get("total_episodes", 0))
    try:
        episodes = list(storage.get_episodes(range(n_eps)))
    except Exception as e:
        raise DatasetError(
            f"{where}: cannot read the {n_eps} episodes the metadata announces ({e!r}); "
            "the dataset is incomplete or corrupt"
        ) from e
    flat = [_episode_transitions(ep, where) for ep in episodes]
    if not flat:
        raise DatasetError(f"{where}: the dataset holds no episodes")
    lengths = np.asarray([ep.reward.shape[0] for ep in flat], np.int64)
    total = int(meta.get("total_steps", lengths.sum()))
    if total != lengths.sum():
        raise DatasetError(
            f"{where}: inconsistent lengths: metadata announces {total} steps, the episodes "
            f"hold {lengths.sum()}"
        )
    t = Transitions(*(np.concatenate(parts, axis=0) for parts in zip(*flat, strict=True)))
    # the same rules as for writing (widths, finite values, flags); the action bound is the
    # writer's only, so datasets recorded elsewhere with other bounds still load
    t = validate_transitions(t, where, d_obs, d_act, action_bound=None)
    project = meta.get(PROJECT_KEY) or {}
    ref_min = project.get("ref_min_score", meta.get("ref_min_score"))
    ref_max = project.get("ref_max_score", meta.get("ref_max_score"))
    return OfflineDataset(
        dataset_id=ds_id,
        transitions=t,
        task=project.get("task"),
        kind=project.get("kind"),
        ref_min_score=None if ref_min is None else float(ref_min),
        ref_max_score=None if ref_max is None else float(ref_max),
        episode_returns=episode_returns(t.reward, lengths),
        episode_lengths=lengths,
        tier=project.get("tier"),
        recipe_hash=project.get("recipe_hash"),
        path=str(folder),
        metadata=project,
        env_spec=_env_spec(meta, where),
        eval_env_spec=_env_spec(meta, where, "eval_env_spec"),
    )


def _env_spec(meta: dict, where: str, key: str = "env_spec") -> dict | None:
    """The recorded environment spec (Minari stores it as a JSON string), or None."""
    spec = meta.get(key)
    if spec is None or isinstance(spec, dict):
        return spec
    try:
        return json.loads(spec)
    except ValueError as e:
        raise DatasetError(f"{where}: metadata.json: {key} is not valid JSON ({e})") from None


def _open_storage(
    folder: Path, where: str, observation_size: int | None, action_size: int | None
) -> tuple[Any, int, int]:
    """The dataset's Minari storage and its (observation, action) widths, checked against the
    task's when given."""
    try:
        storage = MinariStorage.read(folder / "data")
    except Exception as e:  # Minari raises ValueError/AssertionError/OSError for broken folders
        raise DatasetError(f"{where}: cannot open the dataset: {e}") from e
    d_obs = _box_size(storage.observation_space, "observation", where)
    d_act = _box_size(storage.action_space, "action", where)
    if observation_size is not None and d_obs != observation_size:
        raise DatasetError(
            f"{where}: observations have {d_obs} dimensions, but the task expects "
            f"{observation_size}"
        )
    if action_size is not None and d_act != action_size:
        raise DatasetError(
            f"{where}: actions have {d_act} dimensions, but the task expects {action_size}"
        )
    return storage, d_obs, d_act


def _episode_transitions(ep: dict, where: str) -> Transitions:
    """One Minari episode as flat transitions (float32, bool flags), its lengths and flags
    checked: flags only at the last step; an unflagged end becomes a truncation; a step both
    terminated and truncated (Gymnasium's TimeLimit on an ending step) terminated."""
    i = ep.get("id")
    rew = np.asarray(ep["rewards"])
    n = rew.shape[0] if rew.ndim else 0
    obs = ep["observations"]
    if isinstance(obs, dict):  # a Dict space: flattened as gymnasium.spaces.flatten does
        obs = np.concatenate([np.reshape(obs[k], (len(obs[k]), -1)) for k in sorted(obs)], 1)
    obs = np.asarray(obs)
    act = np.asarray(ep["actions"])
    term = np.asarray(ep["terminations"])
    trunc = np.asarray(ep["truncations"])
    if n == 0:
        raise DatasetError(f"{where}: episode {i} has no steps")
    if obs.ndim == 0 or obs.shape[0] != n + 1:
        raise DatasetError(
            f"{where}: episode {i}: inconsistent lengths: {obs.shape[0] if obs.ndim else 0} "
            f"observations for {n} rewards (expected {n + 1})"
        )
    for name, a in (("actions", act), ("terminations", term), ("truncations", trunc)):
        if a.ndim == 0 or a.shape[0] != n:
            raise DatasetError(
                f"{where}: episode {i}: inconsistent lengths: {a.shape[0] if a.ndim else 0} "
                f"{name} for {n} rewards"
            )
    obs = obs.reshape(n + 1, -1).astype(np.float32)
    term, trunc = term.astype(bool), trunc.astype(bool).copy()
    if np.any(term[:-1] | trunc[:-1]):
        step = int(np.flatnonzero(term[:-1] | trunc[:-1])[0])
        raise DatasetError(
            f"{where}: episode {i}: step {step} of {n} is marked terminated/truncated "
            "before the episode's last step"
        )
    if not (term[-1] or trunc[-1]):
        trunc[-1] = True  # an episode cut without a flag: bootstrap through it
    trunc &= ~term  # both set (Gymnasium's TimeLimit on an ending step): it terminated
    action = act.reshape(n, -1).astype(np.float32)
    return Transitions(obs[:-1], action, rew.astype(np.float32), obs[1:], term, trunc)
