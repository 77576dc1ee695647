"""The in-memory offline dataset, D4RL's normalized score, and episode bookkeeping."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from jaxo2o.core.returns import (
    ReturnSpec,
    ReturnTransitions,
    discounted_returns,
    failure_rule,
    with_columns,
)
from jaxo2o.core.transitions import Transitions
from jaxo2o.data.recipe import ALL_KINDS

NAMESPACE = "jaxo2o"


class DatasetError(ValueError):
    """A dataset is missing, incomplete or malformed; the message names the file and the problem."""


def dataset_id(task: str, kind: str, tier: str) -> str:
    """The Minari id of a generated dataset: ``jaxo2o/<task>/<kind>-<tier>-v0``."""
    if kind not in ALL_KINDS:
        raise ValueError(f"kind: unknown {kind!r}; choose one of {ALL_KINDS}")
    for name, value in (("task", task), ("tier", tier)):
        if not value or "/" in value:
            raise ValueError(f"{name}: must be a non-empty name without '/', got {value!r}")
    return f"{NAMESPACE}/{task}/{kind}-{tier}-v0"


def normalized_score(returns: Any, ref_min: float | None, ref_max: float | None) -> np.ndarray:
    """D4RL's normalized score: ``100 * (R - R_random) / (R_expert - R_random)``."""
    if ref_min is None or ref_max is None:
        raise ValueError("normalized_score: the dataset has no reference scores (ref_min/ref_max)")
    lo, hi = float(ref_min), float(ref_max)
    if not np.isfinite(lo) or not np.isfinite(hi) or hi == lo:
        raise ValueError(
            f"normalized_score: reference scores must be finite and differ, got {lo}, {hi}"
        )
    return 100.0 * (np.asarray(returns, np.float64) - lo) / (hi - lo)


def episode_ends(t: Transitions) -> np.ndarray:
    """Boolean per row: the row ends an episode (terminated or truncated)."""
    return np.logical_or(np.asarray(t.terminated, bool), np.asarray(t.truncated, bool))


def episode_lengths(t: Transitions) -> np.ndarray:
    """Lengths of the episodes, split at rows that terminate or truncate.

    A last row that ends nothing belongs to an unfinished final episode, which is counted too.
    """
    ends = np.flatnonzero(episode_ends(t))
    n = t.size
    bounds = np.concatenate([[-1], ends, [n - 1] if (len(ends) == 0 or ends[-1] != n - 1) else []])
    return np.diff(bounds).astype(np.int64)


def episode_returns(rewards: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Undiscounted return of each episode (float64 sums of the float32 rewards)."""
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    r = np.asarray(rewards, np.float64)
    return np.add.reduceat(r, starts) if len(r) else np.zeros(0)


@dataclass(frozen=True)
class OfflineDataset:
    """A dataset on the host: transitions as numpy arrays (float32 values, bool flags).

    `truncated` is True at the last step of every episode that did not terminate, so episodes
    can always be recovered from the flags; `episode_lengths` gives them directly.
    """

    dataset_id: str
    transitions: Transitions
    task: str | None
    kind: str | None
    ref_min_score: float | None
    ref_max_score: float | None
    episode_returns: np.ndarray
    episode_lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    tier: str | None = None
    recipe_hash: str | None = None
    path: str | None = None  # the Minari dataset folder
    metadata: dict = field(default_factory=dict)  # the project's metadata ("jaxo2o" key)
    env_spec: dict | None = None  # Minari's recorded environment (id, kwargs, ...), if any
    eval_env_spec: dict | None = None  # Minari's evaluation environment, if recorded

    @property
    def size(self) -> int:
        return self.transitions.size

    @property
    def observation_size(self) -> int:
        return int(self.transitions.obs.shape[1])

    @property
    def action_size(self) -> int:
        return int(self.transitions.action.shape[1])

    @property
    def has_reference(self) -> bool:
        return self.ref_min_score is not None and self.ref_max_score is not None

    def normalize(self, returns: Any) -> np.ndarray:
        """D4RL-normalize returns with this dataset's reference scores."""
        return normalized_score(returns, self.ref_min_score, self.ref_max_score)

    def normalized_returns(self) -> np.ndarray:
        """The normalized score of every episode in the data."""
        return self.normalize(self.episode_returns)


def trajectory_return_range(ds: OfflineDataset) -> tuple[float, float]:
    """(min, max) undiscounted episode return in the data (IQL scales rewards by 1000/(max-min))."""
    r = np.asarray(ds.episode_returns, np.float64)
    if r.size == 0:
        raise DatasetError(f"{ds.path or ds.dataset_id}: the dataset has no episodes")
    return float(r.min()), float(r.max())


def top_return_episodes(transitions: Transitions, n: int) -> Transitions:
    """The `n` complete episodes with the highest raw undiscounted return, in dataset order.

    Episodes end at rows that terminate or truncate; an unfinished tail (rows after the last end)
    is not a complete episode and is never chosen. Returns are float64 sums of the rewards as
    stored (before any reward normalization). Ties go to the earlier episode. `n` larger than the
    number of complete episodes gives all of them; `n = 0` gives zero rows. ACA seeds its online
    buffer with these (the official `buffer_init`, top 50 for medium-replay/-expert and expert).
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"top_return_episodes: n must be an integer >= 0, got {n!r}")
    kind = type(transitions)  # Transitions, or ReturnTransitions (with Monte-Carlo columns)
    t = kind(*(np.asarray(x) for x in transitions))
    ends = np.flatnonzero(episode_ends(t))
    if n == 0 or ends.size == 0:
        return kind(*(x[:0] for x in t))
    starts = np.concatenate([[0], ends[:-1] + 1])
    returns = np.add.reduceat(np.asarray(t.reward, np.float64)[: ends[-1] + 1], starts)
    order = np.lexsort((np.arange(returns.size), -returns))  # highest first, then dataset order
    chosen = np.sort(order[:n])
    rows = np.concatenate([np.arange(starts[i], ends[i] + 1) for i in chosen])
    return kind(*(x[rows] for x in t))


def with_mc_returns(transitions: Transitions, spec: ReturnSpec) -> ReturnTransitions:
    """The dataset's rows with Cal-QL's Monte-Carlo returns-to-go per episode (host numpy).

    Episodes end at rows that terminate or truncate; an unfinished last episode ends at the last
    row; each bootstraps 0 after its end. With `spec.failure_reward`, an episode whose every raw
    reward equals it gets the all-failure value (`jaxo2o.core.returns`)."""
    t = Transitions(*(np.asarray(x) for x in transitions[:6]))
    ends = episode_ends(t).copy()
    if ends.size:
        ends[-1] = True
    reward = np.asarray(t.reward, np.float32)
    g = np.asarray(discounted_returns(reward, ends, spec.discount))
    h = np.asarray(discounted_returns(np.ones_like(reward), ends, spec.discount))
    if spec.failure_reward is not None and ends.size:
        episode = np.concatenate([[0], np.cumsum(ends[:-1])])
        starts = np.flatnonzero(np.concatenate([[True], ends[:-1]]))
        all_failed = np.minimum.reduceat((reward == spec.failure_reward).astype(np.int8), starts)
        g, h = (np.asarray(x) for x in failure_rule(g, h, all_failed[episode] > 0, spec))
    return with_columns(t, g.astype(np.float32), h.astype(np.float32))
