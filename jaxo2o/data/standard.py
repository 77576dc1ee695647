"""The field's standard locomotion datasets for Gymnasium's v5 tasks: their ids, the check that a
dataset was recorded on the task it is used with, and the reference scores that normalize returns.

- Minari: `mujoco/{hopper,walker2d,halfcheetah,ant}/{simple,medium,expert}-v0`, read from the
  user's Minari root (`minari download` puts them there; nothing is fetched here). Their
  metadata records the environment (`env_spec`: id with version, kwargs); it must be the task's
  own id, and every kwarg must equal the task's default (render-only kwargs aside), or the data
  is refused. The episode limit (`max_episode_steps`) is not checked: it cuts episodes, it does
  not change the dynamics. Note `mujoco/ant/expert-v0`'s episodes k >= 1 start from the previous
  episode's last observation (its recording script resets outside the collector).
- D4RL: HDF5 files (`data.d4rl_io`); recorded with mujoco-py on the v2 environments (v4-era
  healthy rule: +1 also on the falling step; Walker2d's right foot friction 0.9; Ant: 111-D
  observations), so they are accepted on the v5 tasks with a printed note, and refused when the
  file names another body or the sizes differ. D4RL's antmaze-v2 files (body `antmaze`, 29-D
  observations) go with the antmaze-v2 tasks of `envs.d4rl_antmaze` only, and score with D4RL's
  references 0 / 1 (a success rate).

Reference scores, `(random, expert)`, for `normalized_score`: the dataset's own when it records
them (Minari's `ref_min_score`/`ref_max_score`); D4RL's published constants for D4RL files
(d4rl/infos.py, the `-random-v0` entries the v2 datasets reuse); otherwise `V5_REFERENCES`:
random = the uniform random policy's mean return on the v5 task over 100 Gymnasium episodes
(`benchmarks/locomotion_refs.py`); expert = D4RL's expert constant of the same body, which was
measured on the v2 environment. An expert return on v5 itself was not measured here (it needs a
trained expert, about 1M SAC steps per task).
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from jaxo2o.data.dataset import DatasetError, OfflineDataset
from jaxo2o.data.maze_standard import MAZE_DATASETS, check_maze_env, maze_dataset_id, maze_kinds
from jaxo2o.envs.d4rl_antmaze import D4RL_ANTMAZE_TASKS

STANDARD_KINDS = ("simple", "medium", "expert")
BODIES = {"Hopper-v5": "hopper", "Walker2d-v5": "walker2d", "HalfCheetah-v5": "halfcheetah",
          "Ant-v5": "ant"}  # fmt: skip

# d4rl/infos.py REF_MIN_SCORE / REF_MAX_SCORE (the -random-v0 entries, reused by -v2)
D4RL_REFERENCES = {
    "hopper": (-20.272305, 3234.3),
    "walker2d": (1.629008, 4592.3),
    "halfcheetah": (-280.178953, 12135.0),
    "ant": (-325.6, 3879.7),
    "antmaze": (0.0, 1.0),  # antmaze-*-v2 (infos.py:155-160, 245-250): the score is a success rate
}
# observation sizes of D4RL's files per body (antmaze: qpos[:15] ++ qvel[:14])
D4RL_OBS_DIMS = {"hopper": 11, "walker2d": 17, "halfcheetah": 17, "ant": 111, "antmaze": 29}

# random: measured by benchmarks/locomotion_refs.py (100 episodes, Gymnasium 1.4.0, mujoco 4.0.0;
# standard errors 1.77, 0.78, 7.26, 8.34); expert: D4RL's (v2 environment), see the docstring
V5_RANDOM = {
    "Hopper-v5": 16.67,
    "Walker2d-v5": 1.77,
    "HalfCheetah-v5": -282.49,
    "Ant-v5": -48.05,
}
V5_REFERENCES = {t: (V5_RANDOM[t], D4RL_REFERENCES[b][1]) for t, b in BODIES.items()}

# kwargs that change rendering only
RENDER_KWARGS = {"render_mode", "width", "height", "camera_id", "camera_name",
                 "default_camera_config", "visual_options", "max_geom"}  # fmt: skip


def standard_dataset_id(task: str, kind: str) -> str:
    """The Minari id of a standard dataset of a v5 task, e.g. `mujoco/hopper/medium-v0`, or of
    a maze (`data.maze_standard`), e.g. `D4RL/pointmaze/umaze-v2`."""
    if task in MAZE_DATASETS:
        return maze_dataset_id(task, kind)
    if task not in BODIES:
        raise ValueError(f"task: {task!r} has no standard datasets; those that do: {tuple(BODIES)}")
    if kind not in STANDARD_KINDS:
        raise ValueError(f"kind: {task} has no {kind!r} data; its kinds are {STANDARD_KINDS}")
    return f"mujoco/{BODIES[task]}/{kind}-v0"


def standard_kinds(task: str) -> tuple[str, ...]:
    """The standard dataset kinds of a task: a maze's own, else the v5 locomotion kinds."""
    return maze_kinds(task) if task in MAZE_DATASETS else STANDARD_KINDS


def default_kwargs(task: str) -> dict[str, Any]:
    """The keyword defaults of the task's Gymnasium environment class."""
    import gymnasium as gym  # only here: importing the env class needs Gymnasium's MuJoCo envs

    cls = gym.envs.registration.load_env_creator(gym.spec(task).entry_point)
    params = inspect.signature(cls.__init__).parameters
    return {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}


def _same(a: Any, b: Any) -> bool:
    """Equal after a JSON round trip (tuples recorded as lists)."""
    return json.loads(json.dumps(a)) == json.loads(json.dumps(b))


def check_recorded_env(ds: OfflineDataset, task: str) -> str | None:
    """Refuse (DatasetError, one line naming both) data recorded on another environment than the
    v5 `task`; return a note to print when the data is accepted with a caveat, else None."""
    if task in MAZE_DATASETS:  # the mazes' own rule (`data.maze_standard`)
        check_maze_env(ds, task)
        return None
    if task in D4RL_ANTMAZE_TASKS:  # (an antmaze file on a v5 task: the body rule below)
        body = ds.metadata.get("d4rl_body")
        if body is not None and body != "antmaze":
            raise DatasetError(
                f"{ds.path or ds.dataset_id}: D4RL file of {body!r}, the task is {task!r}, "
                "which takes D4RL's antmaze-v2 files"
            )
        return None
    if task not in BODIES:
        return None
    where = ds.path or ds.dataset_id
    spec = ds.env_spec
    if spec is not None:
        recorded = spec.get("id")
        if recorded != task:
            raise DatasetError(
                f"{where}: dataset {ds.dataset_id!r} was recorded on {recorded!r}, the task is "
                f"{task!r}; use data recorded on {task}"
            )
        defaults = default_kwargs(task)
        for key, value in sorted((spec.get("kwargs") or {}).items()):
            if key in RENDER_KWARGS or (key in defaults and _same(value, defaults[key])):
                continue
            raise DatasetError(
                f"{where}: dataset {ds.dataset_id!r} was recorded on {recorded} with "
                f"{key}={value!r}, the task {task!r} uses "
                f"{key}={defaults.get(key, '(no such argument)')!r}"
            )
        return None
    body = ds.metadata.get("d4rl_body")
    if body is not None:
        if body != BODIES[task]:
            raise DatasetError(
                f"{where}: D4RL file of {body!r}, the task is {task!r} (body {BODIES[task]!r})"
            )
        return (
            f"note: {where} is D4RL data recorded on the {body} v2 environment (mujoco-py, "
            f"v4-era healthy reward); accepted for {task}; scores use D4RL's references"
        )
    if ds.task is not None and ds.task != task:
        raise DatasetError(
            f"{where}: dataset {ds.dataset_id!r} was made on the task {ds.task!r}, the task is "
            f"{task!r}"
        )
    return None


def reference_scores(ds: OfflineDataset | None, task: str) -> tuple[float, float] | None:
    """(random, expert) returns that normalize scores on `task`: the dataset's own, else the
    v5 references of a v5 task, else None."""
    if ds is not None and ds.has_reference:
        return float(ds.ref_min_score), float(ds.ref_max_score)
    return V5_REFERENCES.get(task)
