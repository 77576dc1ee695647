"""Offline datasets: D4RL-style generation on the project's tasks, Minari storage, reference scores.

    from jaxo2o.data import load_dataset, dataset_id, normalized_score
    from jaxo2o.data.generate import ensure_datasets  # imports the trainer (it trains policies)

    ensure_datasets("quick")                      # make what is missing (cached by recipe hash)
    ds = load_dataset(dataset_id("reacher", "medium", "quick"))
    ds.transitions                                # numpy Transitions (float32, bool flags)
    normalized_score(ds.episode_returns, ds.ref_min_score, ds.ref_max_score)

Command line: ``python -m jaxo2o.data generate|list|info`` (see `jaxo2o.data.cli`).
"""

from __future__ import annotations

from jaxo2o.data.d4rl_io import is_d4rl_path, read_d4rl
from jaxo2o.data.dataset import (
    DatasetError,
    OfflineDataset,
    dataset_id,
    normalized_score,
    trajectory_return_range,
)
from jaxo2o.data.minari_io import datasets_root, list_local, read_dataset, write_dataset
from jaxo2o.data.recipe import KINDS, BehaviourSAC, DatasetSizes, TaskData


def load_dataset(
    dataset_id: str, *, observation_size: int | None = None, action_size: int | None = None
) -> OfflineDataset:
    """Read a local Minari dataset (generated here or elsewhere), or a D4RL HDF5 file when
    `dataset_id` is a path ending in .hdf5/.h5, into an OfflineDataset.

    Validates it: a missing dataset, an incomplete folder, inconsistent lengths, NaN/inf values
    or observation/action sizes other than the ones given raise `DatasetError` naming the file.
    """
    if is_d4rl_path(dataset_id):
        ds = read_d4rl(dataset_id)
        for what, want, got in (
            ("observations", observation_size, ds.observation_size),
            ("actions", action_size, ds.action_size),
        ):
            if want is not None and got != want:
                raise DatasetError(
                    f"{dataset_id}: {what} have {got} dimensions, but the task expects {want}"
                )
        return ds
    return read_dataset(dataset_id, observation_size=observation_size, action_size=action_size)


__all__ = [
    "KINDS",
    "BehaviourSAC",
    "DatasetError",
    "DatasetSizes",
    "OfflineDataset",
    "TaskData",
    "dataset_id",
    "datasets_root",
    "list_local",
    "load_dataset",
    "normalized_score",
    "read_d4rl",
    "read_dataset",
    "trajectory_return_range",
    "write_dataset",
]
