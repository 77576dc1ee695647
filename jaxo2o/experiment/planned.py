"""`Plan`: everything a validated experiment needs to run (built by `experiment.plan`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from jaxo2o.config import RunHParams
from jaxo2o.core.loop import Trainer
from jaxo2o.core.transitions import Transitions
from jaxo2o.experiment.spec import Experiment


@dataclass
class Plan:
    """Everything needed to run an experiment, built and validated before compilation."""

    experiment: Experiment
    method: Any
    trainer: Trainer
    runs: list[dict[str, Any]]  # one entry per run: seed and grid values
    hp: Any  # method hyperparameters with a leading runs axis
    rhp: RunHParams  # run hyperparameters with a leading runs axis
    dataset: Any  # OfflineDataset or None
    ref_scores: tuple[float, float] | None
    online_data: Transitions | None = None  # offline rows sampled online, if not the dataset

    @property
    def n_runs(self) -> int:
        return self.experiment.n_runs

    def keys(self) -> Any:
        """Every run's PRNG key (from its seed), runs axis first."""
        return jnp.stack([jax.random.PRNGKey(r["seed"]) for r in self.runs])
