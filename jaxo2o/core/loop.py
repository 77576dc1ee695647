"""The offline-then-online run, shared by every method, as a few pure chunk functions.

A run is advanced by five pure functions of one run's state (vmapped over runs by
`core.runner`):

    carry = offline_start(key, hp)                          # init the method
    carry, metrics, k_eval = offline_chunk(carry, hp, rhp, dataset, c)   # K = offline_eval_every
    result = evaluate(state, k_eval, hp)                    # both phases, one program
    carry, k_eval = online_start(state, key, hp)            # the switch, envs, empty buffer
    carry, metrics, k_eval = online_chunk(carry, hp, rhp, online_data, c) # K = online_eval_every

`core.runner.run_batch` calls them as separately compiled programs from a host loop (state
donated between calls, progress and hooks on the host between chunks; no host callback inside
any program, so every program is stored in JAX's persistent compilation cache).
`Trainer.train` composes the very same functions with `lax.scan` into one program (the
single-program path, used by tests and `make perf`); the two agree to XLA's last bits, not
bitwise (XLA fuses a chunk inlined in the scan differently from the same chunk compiled alone;
`tests/test_chunked.py` bounds the difference).

Online iterations act in `num_envs` environments, insert into the replay buffer and take
`updates_per_step` gradient steps (one `Method.update_many` call, the update-to-data ratio) on
batches mixed as the protocol's `BatchMix` says. A method that declares `mc_returns` (Cal-QL)
gets Monte-Carlo returns-to-go in its dataset and buffer rows (`jaxo2o.core.returns`).
The loop knows no method: it only calls the functions of `jaxo2o.core.method.Method`.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxo2o.config import RunConfig, RunHParams
from jaxo2o.core.evaluation import EvalResult, evaluate
from jaxo2o.core.method import Method
from jaxo2o.core.replay import (
    ReplayBuffer,
    dataset_sample,
    replay_init,
    replay_insert,
    sample_mixed,
)
from jaxo2o.core.returns import (
    ReturnTransitions,
    backfill_returns,
    transform_returns,
    unknown_returns,
    with_columns,
)
from jaxo2o.core.transitions import Transitions, empty_transitions
from jaxo2o.envs.base import Env, EnvState, step_autoreset

Metrics = dict[str, jax.Array]


def _transform_reward(batch: Transitions, rhp: RunHParams) -> Transitions:
    if isinstance(batch, ReturnTransitions):
        batch = transform_returns(batch, rhp.reward_scale, rhp.reward_shift)
    return batch._replace(reward=batch.reward * rhp.reward_scale + rhp.reward_shift)


def _tree_mean(tree: Any, axis: int = 0) -> Any:
    return jax.tree.map(lambda x: jnp.mean(x, axis=axis), tree)


def placeholder_dataset(obs_size: int, act_size: int, returns: bool = False) -> Transitions:
    """A one-row dataset for runs without offline data (it is never sampled: see `n_rows`);
    `returns`: with the Monte-Carlo columns (methods that declare `mc_returns`)."""
    rows = empty_transitions(1, obs_size, act_size)
    return with_columns(rows, jnp.zeros(1), jnp.zeros(1)) if returns else rows


class OfflineCarry(NamedTuple):
    state: Any
    key: jax.Array


class OnlineCarry(NamedTuple):
    state: Any
    env_states: EnvState
    buffer: ReplayBuffer
    episode_return: jax.Array  # (num_envs,) return of each environment's current episode
    key: jax.Array


class Trainer:
    """The pure chunk functions of one (method, env, run) combination (module docstring).

    `online_rows`: the number of usable rows of the offline data sampled online (static; the
    seeded protocol's seed episodes, which may be none). None: all rows of what is passed.
    """

    def __init__(self, method: Method, env: Env, run: RunConfig, online_rows: int | None = None):
        self.method, self.env, self.run = method, env, run
        self.obs_size, self.act_size = env.observation_size, env.action_size
        self.online_rows = online_rows

    @property
    def offline_chunks(self) -> int:
        return self.run.offline_steps // self.run.offline_eval_every

    @property
    def online_chunks(self) -> int:
        return self.run.online_steps // self.run.online_eval_every if self.run.online_steps else 0

    # ---------------------------------------------------------------- evaluation
    def evaluate(self, state: Any, key: jax.Array, hp: Any) -> EvalResult:
        """Deterministic evaluation episodes of the method's current policy."""

        def policy(obs, k):
            return self.method.act(state, obs, k, hp, deterministic=True)[0]

        return evaluate(self.env, policy, key, self.run.eval_episodes)

    # ---------------------------------------------------------------- offline
    def offline_start(self, key: jax.Array, hp: Any) -> OfflineCarry:
        k_init, k_loop = jax.random.split(key)
        return OfflineCarry(self.method.init(k_init, self.obs_size, self.act_size, hp), k_loop)

    def offline_chunk(
        self, carry: OfflineCarry, hp: Any, rhp: RunHParams, dataset: Transitions, c: jax.Array
    ) -> tuple[OfflineCarry, Metrics, jax.Array]:
        """`offline_eval_every` gradient steps on uniform dataset batches (chunk index `c`).
        Returns the carry, the chunk's mean training metrics and the next evaluation's key."""
        run, method = self.run, self.method
        every = run.offline_eval_every

        def step(carry, i):
            state, key = carry
            key, k_batch, k_upd = jax.random.split(key, 3)
            batch = _transform_reward(dataset_sample(dataset, k_batch, run.batch_size), rhp)
            state, m = method.update(state, batch, k_upd, hp, online=False)
            return (state, key), m

        (state, key), ms = jax.lax.scan(step, tuple(carry), c * every + jnp.arange(every))
        key, k_eval = jax.random.split(key)
        return OfflineCarry(state, key), _tree_mean(ms), k_eval

    def offline(self, key: jax.Array, hp: Any, rhp: RunHParams, dataset: Transitions):
        """The whole offline phase as one program. Returns (state, metrics)."""
        carry = self.offline_start(key, hp)
        if self.run.offline_steps == 0:
            return carry.state, {}

        def chunk(carry, c):
            carry, ms, k_eval = self.offline_chunk(carry, hp, rhp, dataset, c)
            return carry, (self.evaluate(carry.state, k_eval, hp), ms)

        carry, (ev, ms) = jax.lax.scan(chunk, carry, jnp.arange(self.offline_chunks))
        return carry.state, {"eval_returns": ev.returns, "eval_lengths": ev.lengths, **ms}

    # ---------------------------------------------------------------- online
    def online_start(self, state: Any, key: jax.Array, hp: Any) -> tuple[OnlineCarry, jax.Array]:
        """The switch: a fresh init (protocols that do not start from the offline result), the
        method's `to_online`, fresh environments and an empty buffer. Returns the carry and the
        key of the evaluation right after the switch."""
        run, method = self.run, self.method
        k_fresh, k_switch, k_reset, k_eval0, k_loop = jax.random.split(key, 5)
        if not run.init_from_offline:
            state = method.init(k_fresh, self.obs_size, self.act_size, hp)
        state = method.to_online(state, k_switch, hp)
        env_states = jax.vmap(self.env.reset)(jax.random.split(k_reset, run.num_envs))
        buffer = replay_init(run.capacity, self.obs_size, self.act_size)
        if self.method.mc_returns is not None:
            buffer = buffer._replace(data=unknown_returns(buffer.data))
        carry = OnlineCarry(state, env_states, buffer, jnp.zeros(run.num_envs), k_loop)
        return carry, k_eval0

    def online_chunk(
        self, carry: OnlineCarry, hp: Any, rhp: RunHParams, data: Transitions, c: jax.Array
    ) -> tuple[OnlineCarry, tuple[Metrics, Metrics, jax.Array], jax.Array]:
        """`online_eval_every` iterations (chunk index `c`). Returns the carry, the chunk's
        (training metrics averaged over the updates made, acting info, mean return of the
        training episodes that ended) and the next evaluation's key."""
        run, method, env = self.run, self.method, self.env
        mix = run.batch_mix
        env_step = jax.vmap(partial(step_autoreset, env))

        returns = method.mc_returns

        def updates(state, buffer, key):
            def sample(k):
                k_batch, k_upd = jax.random.split(k)
                batch, _ = sample_mixed(
                    data,
                    buffer,
                    k_batch,
                    run.batch_size,
                    rhp.offline_fraction,
                    uniform=mix.uniform,
                    n_dataset=self.online_rows,
                )
                return _transform_reward(batch, rhp), k_upd

            batches, keys = jax.vmap(sample)(jax.random.split(key, run.updates_per_step))
            return method.update_many(state, batches, keys, hp, online=True)

        def iteration(carry, i):
            state, es, buffer, ep_ret, key = carry
            key, k_act, k_rand, k_env, k_upd = jax.random.split(key, 5)
            action, info = method.act(state, es.obs, k_act, hp, deterministic=False)
            if run.warmup_random and run.warmup_steps:
                rand = jax.random.uniform(k_rand, action.shape, minval=-1.0, maxval=1.0)
                action = jnp.where(i < run.warmup_steps, rand, action)
            es_next, res = env_step(es, action, jax.random.split(k_env, run.num_envs))
            rows = Transitions(
                es.obs, action, res.reward, res.next_obs, res.terminated, res.truncated
            )
            first_row = buffer.position
            buffer = replay_insert(buffer, unknown_returns(rows) if returns else rows)
            done = jnp.logical_or(res.terminated, res.truncated)
            if returns is not None:
                window = env.episode_length
                buffer = backfill_returns(buffer, first_row, done, returns, window)
            ep_ret = ep_ret + res.reward
            finished = (jnp.sum(jnp.where(done, ep_ret, 0.0)), jnp.sum(done))
            ep_ret = jnp.where(done, 0.0, ep_ret)

            if run.warmup_steps:
                shapes = jax.eval_shape(updates, state, buffer, k_upd)[1]
                skip = lambda s, b, k: (
                    s,
                    jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shapes),
                )
                state, m = jax.lax.cond(i >= run.warmup_steps, updates, skip, state, buffer, k_upd)
            else:
                state, m = updates(state, buffer, k_upd)
            updated = (i >= run.warmup_steps).astype(jnp.float32)
            out = (m, updated, _tree_mean(info), finished)
            return OnlineCarry(state, es_next, buffer, ep_ret, key), out

        every = run.online_eval_every
        carry, (ms, updated, info, (ret_sum, ret_n)) = jax.lax.scan(
            iteration, carry, c * every + jnp.arange(every)
        )
        n_upd = jnp.sum(updated)
        ms = jax.tree.map(lambda x: jnp.sum(x, axis=0) / jnp.maximum(n_upd, 1.0), ms)
        n_done = jnp.sum(ret_n)
        train_return = jnp.where(n_done > 0, jnp.sum(ret_sum) / jnp.maximum(n_done, 1), jnp.nan)
        key, k_eval = jax.random.split(carry.key)
        return carry._replace(key=key), (ms, _tree_mean(info), train_return), k_eval

    def online(self, state: Any, key: jax.Array, hp: Any, rhp: RunHParams, data: Transitions):
        """The whole online phase as one program. Returns (state, buffer, metrics).

        Evaluations happen at online iteration 0 (right after the switch) and every
        `online_eval_every` iterations; metrics are per evaluation interval. The buffer is
        returned in insertion order as long as it never wrapped.
        """
        carry, k_eval0 = self.online_start(state, key, hp)

        def interval(carry, c):
            carry, out, k_eval = self.online_chunk(carry, hp, rhp, data, c)
            return carry, (out, k_eval)

        def no_interval(carry, c):
            shapes = jax.eval_shape(interval, carry, c)[1]
            zeros = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shapes)
            return carry, (zeros[0], k_eval0)

        def chunk(carry, c):
            # c = -1 is the evaluation right after the switch, before any iteration. Every online
            # evaluation goes through this one call site: XLA compiles each call site of the
            # physics step anew, and a Brax step costs tens of seconds to compile.
            carry, (out, k_eval) = jax.lax.cond(c >= 0, interval, no_interval, carry, c)
            ev = self.evaluate(carry.state, k_eval, hp)
            return carry, (ev, *out)

        carry, outs = jax.lax.scan(chunk, carry, jnp.arange(-1, self.online_chunks))
        ev = outs[0]
        ms, info, train_return = jax.tree.map(lambda x: x[1:], outs[1:4])  # drop c = -1
        metrics = {
            "eval_returns": ev.returns,
            "eval_lengths": ev.lengths,
            "train_return": train_return,
            **ms,
            **{f"act/{k}": v for k, v in info.items()},
        }
        return carry.state, carry.buffer, metrics

    def train(
        self,
        key: jax.Array,
        hp: Any,
        rhp: RunHParams,
        dataset: Transitions | None = None,
        online_data: Transitions | None = None,
    ):
        """The whole run as one program. Returns (final state, {"offline": .., "online": ..}).
        `online_data`: the offline rows sampled online (default: `dataset`)."""
        if dataset is None:
            returns = self.method.mc_returns is not None
            dataset = placeholder_dataset(self.obs_size, self.act_size, returns)
        online_data = dataset if online_data is None else online_data
        k_off, k_on = jax.random.split(key)
        state, off = self.offline(k_off, hp, rhp, dataset)
        out = {"offline": off}
        if self.run.online_steps:
            state, _, on = self.online(state, k_on, hp, rhp, online_data)
            out["online"] = on
        return state, out

    # ---------------------------------------------------------------- step axes (host side)
    def eval_steps(self) -> dict[str, list[int]]:
        """The step at which each evaluation was taken, per phase."""
        r = self.run
        off = list(range(r.offline_eval_every, r.offline_steps + 1, r.offline_eval_every))
        on = [0] + list(range(r.online_eval_every, r.online_steps + 1, r.online_eval_every))
        return {"offline": off, "online": on if r.online_steps else []}
