"""An experiment: one method on one task (and dataset), many seeds x a hyperparameter grid, run
as one compiled set of chunk programs. By job:
- `spec`:    the `Experiment` a user writes and the parsing of its "name=value" options;
- `plan`:    building the method, Trainer, batched hyperparameters and data (`plan`);
- `memory`:  the estimate before compiling and the refusal of a batch that will not fit;
- `results`: running (`execute`) and reducing metrics to scores and curves (`summarize`).
"""

from jaxo2o.experiment.memory import check_memory, estimate_memory, update_workspace
from jaxo2o.experiment.plan import (
    Plan,
    build_method,
    plan,
    reward_transform,
    with_observation_statistics,
)
from jaxo2o.experiment.results import ExperimentResult, execute, normalize, summarize
from jaxo2o.experiment.spec import RUN_GRID_KEYS, Experiment, parse_pairs

__all__ = [
    "RUN_GRID_KEYS",
    "Experiment",
    "ExperimentResult",
    "Plan",
    "build_method",
    "check_memory",
    "estimate_memory",
    "execute",
    "normalize",
    "parse_pairs",
    "plan",
    "reward_transform",
    "summarize",
    "update_workspace",
    "with_observation_statistics",
]
