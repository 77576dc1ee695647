"""The compiled offline-then-online program, shared by every method.

`Trainer(method, env, run).train(key, hp, rhp, dataset)` is a pure function: offline gradient
steps on the dataset with periodic evaluation, the switch to online, then online iterations
(act in `num_envs` environments, insert into the replay buffer, `updates_per_step` gradient
steps on mixed batches) with periodic evaluation. All of it is `lax.scan`s, so jitting
`train` compiles the whole run once; `vmap` over (key, hp, rhp) runs many seeds and
hyperparameter values in one program (see `core.runner`).

The loop knows no method: it only calls the functions of the `Method` protocol.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp

from jaxo2o.config import RunConfig, RunHParams
from jaxo2o.core import progress
from jaxo2o.core.evaluation import evaluate
from jaxo2o.core.method import Method
from jaxo2o.core.replay import dataset_sample, replay_init, replay_insert, sample_mixed
from jaxo2o.core.transitions import Transitions, empty_transitions
from jaxo2o.envs.base import Env, step_autoreset

Metrics = dict[str, jax.Array]
_PROGRESS_TICKS = 100  # progress callbacks per phase, at most (plus one per evaluation)


def _every(total: int) -> int:
    return max(1, total // _PROGRESS_TICKS)


def _transform_reward(batch: Transitions, rhp: RunHParams) -> Transitions:
    return batch._replace(reward=batch.reward * rhp.reward_scale + rhp.reward_shift)


def _tree_mean(tree: Any, axis: int = 0) -> Any:
    return jax.tree.map(lambda x: jnp.mean(x, axis=axis), tree)


def placeholder_dataset(obs_size: int, act_size: int) -> Transitions:
    """A one-row dataset for runs without offline data (it is never sampled when the
    protocol's offline fraction is 0)."""
    return empty_transitions(1, obs_size, act_size)


class Trainer:
    """Builds the pure phase functions for one (method, env, run) combination."""

    def __init__(self, method: Method, env: Env, run: RunConfig):
        self.method, self.env, self.run = method, env, run
        self.obs_size, self.act_size = env.observation_size, env.action_size

    # ---------------------------------------------------------------- helpers
    def _evaluate(self, state: Any, key: jax.Array, hp: Any):
        def policy(obs, k):
            return self.method.act(state, obs, k, hp, deterministic=True)[0]

        return evaluate(self.env, policy, key, self.run.eval_episodes)

    def _progress(self, phase: int, i: jax.Array, total: int) -> None:
        if not self.run.progress:
            return
        k = _every(total)
        jax.lax.cond(
            i % k == 0,
            lambda: progress.emit(progress.KIND_STEP, phase, i, jnp.float32(0)),
            lambda: None,
        )

    def _emit_eval(self, phase: int, step: jax.Array, returns: jax.Array) -> None:
        if self.run.progress:
            progress.emit(progress.KIND_EVAL, phase, step, jnp.mean(returns))

    # ---------------------------------------------------------------- phases
    def offline(self, key: jax.Array, hp: Any, rhp: RunHParams, dataset: Transitions):
        """Initialise the method and train it on the dataset. Returns (state, metrics)."""
        run, method = self.run, self.method
        k_init, k_loop = jax.random.split(key)
        state = method.init(k_init, self.obs_size, self.act_size, hp)
        if run.offline_steps == 0:
            return state, {}
        every = run.offline_eval_every

        def step(carry, i):
            state, key = carry
            key, k_batch, k_upd = jax.random.split(key, 3)
            batch = _transform_reward(dataset_sample(dataset, k_batch, run.batch_size), rhp)
            state, m = method.update(state, batch, k_upd, hp, online=False)
            self._progress(0, i, run.offline_steps)
            return (state, key), m

        def chunk(carry, c):
            carry, ms = jax.lax.scan(step, carry, c * every + jnp.arange(every))
            state, key = carry
            key, k_eval = jax.random.split(key)
            ev = self._evaluate(state, k_eval, hp)
            self._emit_eval(0, (c + 1) * every, ev.returns)
            return (state, key), (ev, _tree_mean(ms))

        n_chunks = run.offline_steps // every
        (state, _), (ev, ms) = jax.lax.scan(chunk, (state, k_loop), jnp.arange(n_chunks))
        metrics = {"eval_returns": ev.returns, "eval_lengths": ev.lengths}
        metrics.update(ms)
        return state, metrics

    def online(self, state: Any, key: jax.Array, hp: Any, rhp: RunHParams, dataset: Transitions):
        """Switch to online and fine-tune by acting. Returns (state, buffer, metrics).

        Evaluations happen at online iteration 0 (right after the switch) and every
        `online_eval_every` iterations; metrics are per evaluation interval. With
        `run.snapshot_states`, metrics["states"] holds the method state at each evaluation
        after the first (used to pick behaviour policies when generating datasets). The
        buffer is returned in insertion order as long as it never wrapped.
        """
        run, method, env = self.run, self.method, self.env
        k_fresh, k_switch, k_reset, k_eval0, k_loop = jax.random.split(key, 5)
        if not run.init_from_offline:
            state = method.init(k_fresh, self.obs_size, self.act_size, hp)
        state = method.to_online(state, k_switch, hp)
        env_states = jax.vmap(env.reset)(jax.random.split(k_reset, run.num_envs))
        buffer = replay_init(run.capacity, self.obs_size, self.act_size)

        env_step = jax.vmap(partial(step_autoreset, env))

        def updates(state, buffer, key):
            def one(state, k):
                k_batch, k_upd = jax.random.split(k)
                batch, _ = sample_mixed(
                    dataset, buffer, k_batch, run.batch_size, rhp.offline_fraction
                )
                return method.update(state, _transform_reward(batch, rhp), k_upd, hp, online=True)

            state, ms = jax.lax.scan(one, state, jax.random.split(key, run.updates_per_step))
            return state, _tree_mean(ms)

        def iteration(carry, i):
            state, es, buffer, ep_ret, key = carry
            key, k_act, k_rand, k_env, k_upd = jax.random.split(key, 5)
            action, info = method.act(state, es.obs, k_act, hp, deterministic=False)
            if run.warmup_random and run.warmup_steps:
                rand = jax.random.uniform(k_rand, action.shape, minval=-1.0, maxval=1.0)
                action = jnp.where(i < run.warmup_steps, rand, action)
            es_next, res = env_step(es, action, jax.random.split(k_env, run.num_envs))
            buffer = replay_insert(
                buffer,
                Transitions(
                    es.obs, action, res.reward, res.next_obs, res.terminated, res.truncated
                ),
            )
            done = jnp.logical_or(res.terminated, res.truncated)
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
            self._progress(1, i, run.online_steps)
            out = (m, updated, _tree_mean(info), finished)
            return (state, es_next, buffer, ep_ret, key), out

        every = run.online_eval_every

        def interval(carry, c):
            """`every` iterations, reduced to the interval's means."""
            carry, (ms, updated, info, (ret_sum, ret_n)) = jax.lax.scan(
                iteration, carry, c * every + jnp.arange(every)
            )
            n_upd = jnp.sum(updated)
            ms = jax.tree.map(lambda x: jnp.sum(x, axis=0) / jnp.maximum(n_upd, 1.0), ms)
            n_done = jnp.sum(ret_n)
            train_return = jnp.where(n_done > 0, jnp.sum(ret_sum) / jnp.maximum(n_done, 1), jnp.nan)
            return carry, (ms, _tree_mean(info), train_return)

        def no_interval(carry, c):
            shapes = jax.eval_shape(interval, carry, c)[1]
            return carry, jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shapes)

        def chunk(carry, c):
            # c = -1 is the evaluation right after the switch, before any iteration. Every online
            # evaluation goes through this one call site: XLA compiles each call site of the
            # physics step anew, and a Brax step costs tens of seconds to compile.
            carry, (ms, info, train_return) = jax.lax.cond(c >= 0, interval, no_interval, carry, c)
            state, es, buffer, ep_ret, key = carry
            key_next, k_eval = jax.random.split(key)
            key = jnp.where(c >= 0, key_next, key)
            k_eval = jnp.where(c >= 0, k_eval, k_eval0)
            ev = self._evaluate(state, k_eval, hp)
            self._emit_eval(1, (c + 1) * every, ev.returns)
            out = (ev, ms, info, train_return)
            if run.snapshot_states:
                out = out + (state,)
            return (state, es, buffer, ep_ret, key), out

        carry = (state, env_states, buffer, jnp.zeros(run.num_envs), k_loop)
        n_chunks = run.online_steps // every
        carry, outs = jax.lax.scan(chunk, carry, jnp.arange(-1, n_chunks))
        ev = outs[0]
        ms, info, train_return = jax.tree.map(lambda x: x[1:], outs[1:4])  # drop c = -1
        metrics = {
            "eval_returns": ev.returns,
            "eval_lengths": ev.lengths,
            "train_return": train_return,
        }
        metrics.update(ms)
        metrics.update({f"act/{k}": v for k, v in info.items()})
        if run.snapshot_states:
            metrics["states"] = jax.tree.map(lambda x: x[1:], outs[4])
        return carry[0], carry[2], metrics

    def train(self, key: jax.Array, hp: Any, rhp: RunHParams, dataset: Transitions | None = None):
        """The whole run. Returns (final state, {"offline": metrics, "online": metrics})."""
        if dataset is None:
            dataset = placeholder_dataset(self.obs_size, self.act_size)
        k_off, k_on = jax.random.split(key)
        state, off = self.offline(k_off, hp, rhp, dataset)
        out = {"offline": off}
        if self.run.online_steps:
            state, _, on = self.online(state, k_on, hp, rhp, dataset)
            out["online"] = on
        return state, out

    # ---------------------------------------------------------------- step axes (host side)
    def eval_steps(self) -> dict[str, list[int]]:
        """The step at which each evaluation was taken, per phase."""
        r = self.run
        off = list(range(r.offline_eval_every, r.offline_steps + 1, r.offline_eval_every))
        on = [0] + list(range(r.online_eval_every, r.online_steps + 1, r.online_eval_every))
        return {"offline": off, "online": on if r.online_steps else []}
