"""Monte-Carlo returns-to-go per episode: Cal-QL's lower bound on Q, for dataset and online rows.

A method that reads them declares a `ReturnSpec` (`Method.mc_returns`); the run then carries
`ReturnTransitions` (the transitions plus two columns) in its dataset and replay buffer:
- `mc_return` G = sum_{k>=t} gamma^(k-t) r_k over the rest of the row's episode, of the *raw*
  (stored) rewards, and `mc_horizon` H = sum_{k>=t} gamma^(k-t) over the same rows. The run's
  affine reward transform r' = s r + b then gives the return of the transformed rewards as
  s G + b H, exactly (`transform_returns`), so the transform may stay a traced run value.
- Episodes end at a termination or a time limit; a truncated episode bootstraps 0 after its last
  row (nakamotoo/Cal-QL `JaxCQL/replay_buffer.py` calc_return_to_go).
- All-failure rule of the sparse tasks (same file): when every reward of an episode equals the
  failure reward, every row's return is the infinite-horizon value r_fail / (1 - gamma) (AntMaze
  with Cal-QL's 10 r - 5: -500), i.e. G = r_fail / (1 - gamma), H = 1 / (1 - gamma).
- Online, a row's return is known once its episode ends: rows are stored with G = -inf, H = 0
  (no bound: max(Q, -inf) = Q) and filled in when their episode ends (`backfill_returns`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxo2o.core.replay import ReplayBuffer
from jaxo2o.core.transitions import Transitions


@dataclass(frozen=True)
class ReturnSpec:
    """What a method's Monte-Carlo returns are: the discount and the all-failure rule's raw
    failure reward (None: dense rewards, no rule)."""

    discount: float
    failure_reward: float | None = None

    def __post_init__(self):
        if not 0.0 <= self.discount < 1.0:
            raise ValueError(f"ReturnSpec.discount: must lie in [0, 1), got {self.discount}")


class ReturnTransitions(NamedTuple):
    """`Transitions` with the Monte-Carlo columns (module docstring). After the run's reward
    transform (`transform_returns`), `mc_return` is the return of the transformed rewards."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    mc_return: jax.Array
    mc_horizon: jax.Array

    mask = Transitions.mask  # the same bootstrap mask and length as `Transitions`
    size = Transitions.size


def with_columns(t: Transitions, mc_return, mc_horizon) -> ReturnTransitions:
    return ReturnTransitions(*t[:6], mc_return, mc_horizon)


def unknown_returns(t: Transitions) -> ReturnTransitions:
    """Rows whose episode has not ended yet: no bound (G = -inf, H = 0)."""
    n = t.reward.shape
    return with_columns(t, jnp.full(n, -jnp.inf, jnp.float32), jnp.zeros(n, jnp.float32))


def transform_returns(batch: ReturnTransitions, scale: jax.Array, shift: jax.Array):
    """The Monte-Carlo return of the rewards r * scale + shift: scale G + shift H."""
    return batch._replace(mc_return=batch.mc_return * scale + shift * batch.mc_horizon)


def discounted_returns(reward: jax.Array, ends: jax.Array, discount: float) -> jax.Array:
    """G_t = r_t + discount * (1 - end_t) * G_{t+1} along the last axis, G = 0 after the last row.

    A reverse associative scan over the affine maps g -> r_t + a_t g (log-depth, float32)."""
    reward = jnp.asarray(reward, jnp.float32)
    a = discount * (1.0 - jnp.asarray(ends).astype(jnp.float32))

    def compose(later, earlier):  # earlier ∘ later: g -> b + a (B + A g)
        a_l, b_l = later
        a_e, b_e = earlier
        return a_e * a_l, b_e + a_e * b_l

    _, g = jax.lax.associative_scan(compose, (a, reward), reverse=True, axis=reward.ndim - 1)
    return g


def episode_returns(reward, ends, in_episode, spec: ReturnSpec) -> tuple[jax.Array, jax.Array]:
    """(G, H) of rows in time order whose episodes end at `ends` (see module docstring);
    `in_episode` (same shape, or None) marks the rows of one episode for the all-failure test."""
    g = discounted_returns(reward, ends, spec.discount)
    h = discounted_returns(jnp.ones_like(reward, jnp.float32), ends, spec.discount)
    if spec.failure_reward is None:
        return g, h
    failed = reward == spec.failure_reward
    return failure_rule(g, h, jnp.all(failed | ~in_episode, axis=-1, keepdims=True), spec)


def failure_rule(g, h, all_failed, spec: ReturnSpec) -> tuple[jax.Array, jax.Array]:
    """(G, H) with the all-failure rule applied where `all_failed` (module docstring)."""
    if spec.failure_reward is None:
        return g, h
    inf_h = 1.0 / (1.0 - spec.discount)
    g = jnp.where(all_failed, spec.failure_reward * inf_h, g)
    return g, jnp.where(all_failed, inf_h, h)


def backfill_returns(
    buffer: ReplayBuffer, first_row: jax.Array, done: jax.Array, spec: ReturnSpec, window: int
) -> ReplayBuffer:
    """Fill in the returns of the episodes that ended in this iteration's rows.

    The iteration wrote one row per environment at `first_row + e` (mod capacity), after
    earlier iterations' rows at steps of `num_envs`. For each environment e with `done[e]`,
    its episode is the rows back to (not including) its previous episode end, at most `window`
    (the episode length limit) and no further than what the buffer holds."""
    data = buffer.data
    n_envs, cap = done.shape[0], buffer.capacity
    k = jnp.arange(window)  # steps back in time; k = 0 is this iteration's row
    idx = (first_row + jnp.arange(n_envs)[:, None] - k[None] * n_envs) % cap  # (E, window)
    ends = jnp.logical_or(data.terminated[idx], data.truncated[idx])
    held = (k[None] + 1) * n_envs <= buffer.size
    earlier_end = jnp.cumsum(ends.at[:, 0].set(False), axis=1) > 0
    in_ep = held & ~earlier_end & done[:, None]
    # time order (oldest first) for the returns; only the last row ends the episode
    rev = lambda x: x[:, ::-1]
    reward = jnp.where(in_ep, data.reward[idx], 0.0)
    last = jnp.broadcast_to(k[None] == 0, reward.shape)
    g, h = episode_returns(rev(reward), rev(last), rev(in_ep), spec)
    g, h = rev(g), rev(h)
    target = jnp.where(in_ep, idx, cap).ravel()  # rows outside an ended episode: dropped
    mc_return = data.mc_return.at[target].set(g.ravel(), mode="drop")
    mc_horizon = data.mc_horizon.at[target].set(h.ravel(), mode="drop")
    return buffer._replace(data=data._replace(mc_return=mc_return, mc_horizon=mc_horizon))
