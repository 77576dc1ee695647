"""FamO2O's chosen coefficient over a dataset's states: the file the suite's FamO2O line writes
(`coefficient.csv`, read by `benchmarks/claims.py`) and the FamO2O study reports."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxo2o.methods.famo2o import FamO2O
from jaxo2o.report.files import write_csv


def coefficient_spread(p, res, obs) -> list[dict]:
    """Per run of a FamO2O experiment: its scores and the spread over `obs` (the dataset's
    states) of the deterministic coefficient beta(s) of its final balance model."""
    method: FamO2O = p.method  # the run's own configuration (widths, weight mode)
    obs = jnp.asarray(obs)
    rows = []
    for i, run in enumerate(res.rows):
        state = jax.tree.map(lambda x, i=i: jnp.asarray(x[i]), res.batch.state)
        hp = jax.tree.map(lambda x, i=i: x[i], p.hp)
        beta = np.asarray(method.coefficient(state, obs, hp))
        q5, q95 = np.percentile(beta, [5, 95])
        rows.append(
            {
                "mode": method.config.weight_mode,
                "seed": run["seed"],
                "offline_final": run.get("offline_final"),
                "online_dip": run.get("online_dip"),
                "online_final": run.get("online_final"),
                "beta_min": float(hp.beta_min),
                "beta_max": float(hp.beta_max),
                "beta_mean": float(beta.mean()),
                "beta_std_over_states": float(beta.std()),
                "beta_p5": float(q5),
                "beta_p95": float(q95),
            }
        )
    return rows


def famo2o_coefficient(p, res, dataset, folder) -> None:
    """`coefficient.csv`: per run, the spread of FamO2O's chosen coefficient over the dataset's
    states (the claim that it varies with the state; `benchmarks/claims.py`)."""
    write_csv(folder / "coefficient.csv", coefficient_spread(p, res, dataset.transitions.obs))
