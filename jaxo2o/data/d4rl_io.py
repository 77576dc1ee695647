"""D4RL's HDF5 files (e.g. `hopper-medium-v2.hdf5`) read into flat transitions.

A D4RL file holds flat arrays over all its transitions: `observations`, `actions`, `rewards`,
`terminals`, `timeouts` (and, in the v2 files, `next_observations`). Episodes end at a terminal
or a timeout row; a row whose next observation is not the following row's observation also ends
one (some files cut episodes without a flag); such a row is marked truncated.

Without `next_observations` (older files) the next observation is the following row's, as D4RL's
`qlearning_dataset` takes it; a timeout row then has no valid next observation and is dropped
(the row before it ends the episode, truncated), and so is a last row that ends nothing. A
terminal row keeps the following row as its next observation (never bootstrapped from).

The body (hopper, walker2d, halfcheetah, ant, antmaze) is read from the file name and recorded,
with the file's name, in the dataset's metadata (`data.standard` checks it against the task); the
observation size must be that body's (D4RL's: 11, 17, 17, 111, 29), and D4RL's reference scores
of that body are attached (antmaze: 0 and 1, so a normalized score is the success rate).

AntMaze files (`antmaze-*-v2`: observations, actions, rewards, terminals, timeouts; `infos/goal`,
`infos/qpos`, `infos/qvel` are not read) have no `next_observations`: rewards and terminals were
relabelled as `1{|next xy - goal| <= 0.5}` while the recording went on past the goal
(scripts/generation/relabel_antmaze_rewards.py:29-38), so a terminal row keeps the following row
as its next observation and ends its episode, as `qlearning_dataset` pairs them. Rewards are kept
as stored (0/1); the methods' AntMaze convention (r - 1) is their preset's
(`reward_normalization`, `jaxo2o.presets`).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from jaxo2o.core.transitions import Transitions
from jaxo2o.data.dataset import DatasetError, OfflineDataset, episode_lengths, episode_returns
from jaxo2o.data.minari_io import validate_transitions
from jaxo2o.data.standard import D4RL_OBS_DIMS, D4RL_REFERENCES

REQUIRED = ("observations", "actions", "rewards", "terminals", "timeouts")


def is_d4rl_path(name: str) -> bool:
    """A dataset named by a path to an HDF5 file (rather than a Minari id)."""
    return name.endswith((".hdf5", ".h5"))


def d4rl_body(path: Path) -> str | None:
    """The body a D4RL file name starts with (`hopper-medium-v2.hdf5` -> hopper), or None.
    AntMaze: `antmaze-umaze-v2.hdf5`, or the name D4RL downloads it under
    (`Ant_maze_u-maze_noisy_multistart_False_multigoal_False_sparse_fixed.hdf5`) -> antmaze."""
    name = path.name.lower()
    if name.startswith(("antmaze", "ant_maze")):
        return "antmaze"
    stem = name.split("-")[0].split("_")[0]
    return stem if stem in D4RL_REFERENCES else None


def read_d4rl(path: str | Path) -> OfflineDataset:
    """Read a D4RL HDF5 file; raise DatasetError naming the file and the problem."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise DatasetError(f"{where}: no such D4RL HDF5 file")
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in REQUIRED if k not in f]
            if missing:
                raise DatasetError(
                    f"{where}: not a D4RL file: missing {missing} (expected {list(REQUIRED)})"
                )
            arrays = {k: np.asarray(f[k]) for k in REQUIRED}
            nxt = np.asarray(f["next_observations"]) if "next_observations" in f else None
    except OSError as e:
        raise DatasetError(f"{where}: cannot read the HDF5 file: {e}") from e
    obs, act = arrays["observations"], arrays["actions"]
    rew = arrays["rewards"].reshape(-1)
    term, tout = arrays["terminals"].reshape(-1) > 0, arrays["timeouts"].reshape(-1) > 0
    n = obs.shape[0] if obs.ndim else 0
    for name, a in (("actions", act), ("rewards", rew), ("terminals", term), ("timeouts", tout)):
        if a.shape[0] != n:
            raise DatasetError(
                f"{where}: inconsistent lengths: {name} has {a.shape[0]} rows, observations {n}"
            )
    if n < 2:
        raise DatasetError(f"{where}: holds {n} transitions; need at least 2")
    body = d4rl_body(path)
    dim = D4RL_OBS_DIMS.get(body) if body else None
    if dim is not None and (obs.ndim != 2 or obs.shape[1] != dim):
        raise DatasetError(
            f"{where}: a D4RL {body} file has {dim}-D observations, this one {obs.shape[1:]}"
        )
    if nxt is not None:
        if nxt.shape != obs.shape:
            raise DatasetError(
                f"{where}: next_observations has shape {nxt.shape}, observations {obs.shape}"
            )
        keep = np.ones(n, bool)
        cut = np.zeros(n, bool)
        cut[:-1] = np.any(nxt[:-1] != obs[1:], axis=1)
    else:  # qlearning_dataset's pairing: the following row; drop rows without a valid one
        nxt = np.concatenate([obs[1:], obs[-1:]])
        keep = ~tout
        keep[-1] = term[-1]
        cut = np.zeros(n, bool)
        cut[:-1] = tout[1:] & ~term[:-1]  # the row before a dropped timeout ends its episode
    trunc = (tout | cut) & ~term
    t = Transitions(*(np.asarray(x)[keep] for x in (obs, act, rew, nxt, term, trunc)))
    if t.reward.size == 0:
        raise DatasetError(f"{where}: no transition with a valid next observation")
    t.truncated[-1] |= not t.terminated[-1]  # the file's last episode, cut
    t = validate_transitions(t, where, action_bound=None)
    lengths = episode_lengths(t)
    ref = D4RL_REFERENCES.get(body) if body else None
    return OfflineDataset(
        dataset_id=path.name,
        transitions=t,
        task=None,
        kind=None,
        ref_min_score=ref[0] if ref else None,
        ref_max_score=ref[1] if ref else None,
        episode_returns=episode_returns(t.reward, lengths),
        episode_lengths=lengths,
        path=where,
        metadata={"d4rl_body": body, "d4rl_file": path.name, "episode_cuts": int(cut.sum())},
    )
