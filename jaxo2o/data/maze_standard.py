"""The standard maze datasets (Minari's `D4RL/pointmaze/*-v2`, `D4RL/antmaze/*-v1`) of the
Gymnasium-Robotics mazes (`envs/gr_maze.py`): their ids, the recorded-environment check, and the
evaluation environment their metadata names.

Which environment each was recorded on (Minari's dataset cards; the recording scripts of
Farama's minari-dataset-generation-scripts): pointmaze `{umaze,medium,large}[-dense]-v2` on
`PointMaze_{UMaze,Medium,Large}[Dense]-v3` (continuing_task and reset_target True); antmaze
`umaze`, `umaze-diverse` on `AntMaze_UMaze-v4`, `medium-play` on `AntMaze_Medium-v4`,
`medium-diverse` on `AntMaze_Medium_Diverse_GR-v4`, `large-play` on `AntMaze_Large-v4`,
`large-diverse` on `AntMaze_Large_Diverse_GR-v4`.

The check: the recorded id must be the task's; a recorded `maze_map` must have the task's walls
(its r/g/c cells may differ: they choose starts and goals, not dynamics); the other kwargs
(`continuing_task`, `reset_target`, `reward_type` through the id) are the data's own protocol.
Evaluation: the dataset's `eval_env_spec` (Minari stores it with the data) names the env runs are
scored on: its `maze_map` (fixed start and goal cells for the D4RL-style sets), its
`continuing_task` / `reset_target` and its time limit; `eval_env_kwargs` returns them for
`GRMaze`. Without one, the registered env. `ant_umaze_collection_spec`: the env umaze-v1 was
recorded on (one `r`, one `g`), also the eval env `benchmarks.antmaze_collector_dataset` stores.
"""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym

from jaxo2o.data.dataset import DatasetError, OfflineDataset
from jaxo2o.envs.gr_maze import TASK_SPECS

# the goal cell of each PointMaze layout's evaluation map (minari-dataset-generation-scripts,
# scripts/pointmaze/create_pointmaze_dataset.py, pointmaze-v1 era; spec B.8): one `g` cell, so
# every other empty cell is a start
POINT_EVAL_GOALS = {"UMaze": (1, 1), "Medium": (6, 6), "Large": (7, 9)}
COLLECTION_STEPS = 1_000_000  # max_episode_steps of the D4RL/pointmaze collection env (spec C.4)
# the map D4RL/antmaze/umaze-v1 was recorded on (spec C.4; minari-dataset-generation-scripts,
# scripts/D4RL/antmaze/create_antmaze_dataset.py): AntMaze_UMaze-v4's walls, one `r`, one `g`
ANT_UMAZE_COLLECTION_MAP = (
    (1, 1, 1, 1, 1),
    (1, "g", 0, 0, 1),
    (1, 1, 1, 0, 1),
    (1, "r", 0, 0, 1),
    (1, 1, 1, 1, 1),
)

_POINT = {"UMaze": "umaze", "Medium": "medium", "Large": "large"}
_ANT = {
    "AntMaze_UMaze-v4": {"play": "umaze-v1", "diverse": "umaze-diverse-v1"},
    "AntMaze_Medium-v4": {"play": "medium-play-v1"},
    "AntMaze_Medium_Diverse_GR-v4": {"diverse": "medium-diverse-v1"},
    "AntMaze_Large-v4": {"play": "large-play-v1"},
    "AntMaze_Large_Diverse_GR-v4": {"diverse": "large-diverse-v1"},
}


def _datasets() -> dict[str, dict[str, str]]:
    out = {}
    for name, short in _POINT.items():
        out[f"PointMaze_{name}-v3"] = {"d4rl": f"D4RL/pointmaze/{short}-v2"}
        out[f"PointMaze_{name}Dense-v3"] = {"d4rl": f"D4RL/pointmaze/{short}-dense-v2"}
    for task, kinds in _ANT.items():
        out[task] = {kind: f"D4RL/antmaze/{name}" for kind, name in kinds.items()}
    return out


MAZE_DATASETS: dict[str, dict[str, str]] = _datasets()  # task -> kind -> Minari id


def maze_kinds(task: str) -> tuple[str, ...]:
    return tuple(MAZE_DATASETS.get(task, {}))


def maze_dataset_id(task: str, kind: str) -> str:
    if task not in MAZE_DATASETS:
        raise ValueError(f"task: {task!r} has no standard maze data; those that do: "
                         f"{tuple(MAZE_DATASETS)}")  # fmt: skip
    if kind not in MAZE_DATASETS[task]:
        raise ValueError(f"kind: {task} has no {kind!r} data; its kinds are {maze_kinds(task)}")
    return MAZE_DATASETS[task][kind]


def point_layout(task: str) -> str:
    """The layout name (UMaze, Medium or Large) of a `PointMaze_*[Dense]-v3` id."""
    name = task.removeprefix("PointMaze_").split("-")[0].removesuffix("Dense")
    if not task.startswith("PointMaze_") or name not in POINT_EVAL_GOALS:
        raise ValueError(f"task: {task!r} is not one of PointMaze_{{UMaze,Medium,Large}}-v3")
    return name


def point_collection_spec(task: str) -> gym.envs.registration.EnvSpec:
    """The env spec the D4RL/pointmaze datasets were recorded on: the registered id with
    continuing_task and reset_target True and a 1e6-step limit (spec C.4)."""
    point_layout(task)
    spec = copy.deepcopy(gym.spec(task))
    spec.kwargs = {**spec.kwargs, "continuing_task": True, "reset_target": True}
    spec.max_episode_steps = COLLECTION_STEPS
    return spec


def point_eval_spec(task: str) -> gym.envs.registration.EnvSpec:
    """The D4RL-style evaluation env stored with them: the registered env (its time limit,
    continuing_task True, reset_target False) on the layout with one `g` cell (spec B.8)."""
    rows = [list(r) for r in TASK_SPECS[task].maze_map]
    i, j = POINT_EVAL_GOALS[point_layout(task)]
    rows[i][j] = "g"
    spec = copy.deepcopy(gym.spec(task))
    spec.kwargs = {**spec.kwargs, "maze_map": rows}
    return spec


def ant_umaze_collection_spec(task: str = "AntMaze_UMaze-v4") -> gym.envs.registration.EnvSpec:
    """The env spec D4RL/antmaze/umaze-v1 was recorded on: the registered AntMaze_UMaze-v4 (its
    700-step limit) on `ANT_UMAZE_COLLECTION_MAP`, continuing_task True, reset_target False
    (spec C.4): it never terminates, and the return counts the steps within 0.45 of the goal."""
    if task != "AntMaze_UMaze-v4":
        raise ValueError(f"task: {task!r}; D4RL/antmaze/umaze-v1 was recorded on AntMaze_UMaze-v4")
    spec = copy.deepcopy(gym.spec(task))
    rows = [list(r) for r in ANT_UMAZE_COLLECTION_MAP]
    spec.kwargs = {**spec.kwargs, "maze_map": rows, "continuing_task": True, "reset_target": False}
    return spec


def _walls(rows: Any) -> list[list[bool]]:
    return [[c == 1 for c in r] for r in rows]


def check_maze_env(ds: OfflineDataset, task: str) -> None:
    """Refuse (DatasetError, one line) maze data recorded on another environment or walls."""
    where = ds.path or ds.dataset_id
    spec = ds.env_spec
    if spec is None:
        if ds.task is not None and ds.task != task:
            raise DatasetError(f"{where}: made on the task {ds.task!r}, the task is {task!r}")
        return
    if spec.get("id") != task:
        raise DatasetError(
            f"{where}: dataset {ds.dataset_id!r} was recorded on {spec.get('id')!r}, the task "
            f"is {task!r}; use data recorded on {task}"
        )
    rows = (spec.get("kwargs") or {}).get("maze_map")
    if rows is not None and _walls(rows) != _walls(TASK_SPECS[task].maze_map):
        raise DatasetError(
            f"{where}: dataset {ds.dataset_id!r} was recorded on a maze_map with other walls "
            f"than {task}'s"
        )


def eval_env_kwargs(ds: OfflineDataset | None, task: str) -> dict[str, Any]:
    """GRMaze keyword arguments of the dataset's evaluation env (empty: the registered env)."""
    spec = None if ds is None else ds.eval_env_spec
    if not spec:
        return {}
    where = ds.path or ds.dataset_id
    if spec.get("id") != task:
        raise DatasetError(f"{where}: eval_env_spec names {spec.get('id')!r}, the task is {task!r}")
    kw = spec.get("kwargs") or {}
    out: dict[str, Any] = {}
    if kw.get("maze_map") is not None:
        rows = kw["maze_map"]
        if _walls(rows) != _walls(TASK_SPECS[task].maze_map):
            raise DatasetError(f"{where}: eval_env_spec's maze_map has other walls than {task}'s")
        out["maze_map"] = tuple(tuple(r) for r in rows)
    for key in ("continuing_task", "reset_target"):
        if key in kw:
            out[key] = bool(kw[key])
    steps = spec.get("max_episode_steps")
    if steps:
        out["episode_length"] = int(steps)
    return out
