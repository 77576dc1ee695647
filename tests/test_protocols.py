"""Fine-tuning protocols are a setting of the run: IQL through the real Trainer on `point`.

- scratch / buffer: the online phase starts from a *fresh* IQL initialisation (the same as
  `IQL.init` with the key the loop derives), not from the offline result;
- direct / union: the online phase starts from the offline result, optimizer state included;
- the online batches have the composition the protocol implies: scratch only online rows,
  buffer 50/50, direct the configured dataset share, union uniform over dataset + online rows.

`Recorder` wraps IQL without changing its updates: it keeps a copy of the state the online
phase starts from (taken in `to_online`) and reports the share of dataset rows per batch
(dataset rows carry a reward of 100, which the point task never pays).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxo2o.config import RunConfig, run_hparams
from jaxo2o.core.loop import Trainer
from jaxo2o.core.method import Method
from jaxo2o.core.transitions import Transitions
from jaxo2o.envs import make_env
from jaxo2o.methods.iql import IQL, IQLConfig

N_DATASET = 64
DATASET_REWARD = 100.0
OFFLINE_STEPS, ONLINE_STEPS, BATCH = 20, 40, 32

# one worker compiles the module's runs once (`pytest -n 2 --dist loadgroup`)
pytestmark = pytest.mark.xdist_group("iql_protocols")


class RecState(NamedTuple):
    inner: Any
    online_start: Any


class Recorder(Method, register=False):
    name = "iql-recorder"

    def __init__(self, inner: IQL):
        self.inner = inner

    def default_hparams(self, **kw):
        return self.inner.default_hparams(**kw)

    def init(self, key, obs_size, act_size, hp):
        s = self.inner.init(key, obs_size, act_size, hp)
        return RecState(s, s)

    def update(self, state, batch, key, hp, online):
        inner, m = self.inner.update(state.inner, batch, key, hp, online)
        m["dataset_share"] = jnp.mean((batch.reward > DATASET_REWARD / 2).astype(jnp.float32))
        return RecState(inner, state.online_start), m

    def to_online(self, state, key, hp):
        inner = self.inner.to_online(state.inner, key, hp)
        return RecState(inner, inner)

    def act(self, state, obs, key, hp, deterministic):
        return self.inner.act(state.inner, obs, key, hp, deterministic)


def hand_dataset(env) -> Transitions:
    """Random-action transitions on `point` (real dynamics), rewards replaced by the marker."""
    k_s, k_a = jax.random.split(jax.random.PRNGKey(11))
    states = jax.vmap(env.reset)(jax.random.split(k_s, N_DATASET))
    action = jax.random.uniform(k_a, (N_DATASET, 2), minval=-1.0, maxval=1.0)
    _, res = jax.vmap(env.step)(states, action)
    reward = jnp.full((N_DATASET,), DATASET_REWARD)
    return Transitions(states.obs, action, reward, res.next_obs, res.terminated, res.truncated)


ENV = make_env("point", episode_length=10)
IQL_SMALL = IQL(IQLConfig(hidden=(16, 16), offline_steps=OFFLINE_STEPS))
METHOD = Recorder(IQL_SMALL)
HP = METHOD.default_hparams()
KEY = jax.random.PRNGKey(0)


def make_run(protocol: str) -> RunConfig:
    return RunConfig(
        offline_steps=OFFLINE_STEPS,
        online_steps=ONLINE_STEPS,
        offline_eval_every=OFFLINE_STEPS,
        online_eval_every=ONLINE_STEPS,
        batch_size=BATCH,
        eval_episodes=2,
        protocol=protocol,
        offline_fraction=0.25,
        progress=False,
    )


@pytest.fixture(scope="module")
def dataset():
    return hand_dataset(ENV)


@pytest.fixture(scope="module")
def offline_result(dataset):
    """The offline phase alone (it does not depend on the protocol)."""
    run = make_run("direct")
    k_off, _ = jax.random.split(KEY)
    state, _ = jax.jit(Trainer(METHOD, ENV, run).offline)(k_off, HP, run_hparams(run), dataset)
    return state.inner


@pytest.fixture(scope="module")
def runs(dataset):
    out = {}
    for protocol in ("scratch", "buffer", "direct", "union"):
        run = make_run(protocol)
        out[protocol] = jax.jit(Trainer(METHOD, ENV, run).train)(KEY, HP, run_hparams(run), dataset)
    return out


def max_abs_diff(a, b) -> float:
    return max(
        float(jnp.max(jnp.abs(x - y)))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def fresh_online_init():
    """IQL.init with the key the loop uses for a fresh start: key -> (k_off, k_on); k_on split
    in five, the first one initialises (core.loop.Trainer.online)."""
    _, k_on = jax.random.split(KEY)
    k_fresh = jax.random.split(k_on, 5)[0]
    return IQL_SMALL.init(k_fresh, ENV.observation_size, ENV.action_size, HP)


@pytest.mark.parametrize("protocol", ["scratch", "buffer"])
def test_fresh_protocols_start_from_a_new_initialisation(protocol, runs, offline_result):
    state, _ = runs[protocol]
    start = state.online_start
    assert max_abs_diff(start, fresh_online_init()) == 0.0
    assert max_abs_diff(start.actor.params, offline_result.actor.params) > 1e-3
    assert max_abs_diff(start.value.params, offline_result.value.params) > 1e-3
    assert int(start.actor.opt_state[1].count) == 0  # fresh Adam / schedule state
    assert int(state.inner.actor.opt_state[1].count) == ONLINE_STEPS


@pytest.mark.parametrize("protocol", ["direct", "union"])
def test_offline_protocols_start_from_the_offline_result(protocol, runs, offline_result):
    state, _ = runs[protocol]
    start = state.online_start
    # the same computation in two compiled programs: equal up to float32 fusion differences
    assert max_abs_diff(start, offline_result) < 1e-5
    assert max_abs_diff(start.actor.params, fresh_online_init().actor.params) > 1e-3
    assert int(start.actor.opt_state[1].count) == OFFLINE_STEPS  # Adam state carried over
    assert int(state.inner.actor.opt_state[1].count) == OFFLINE_STEPS + ONLINE_STEPS


def test_online_batch_composition(runs):
    share = {p: float(out["online"]["dataset_share"][0]) for p, (_, out) in runs.items()}
    assert share["scratch"] == 0.0
    assert share["buffer"] == 0.5
    assert share["direct"] == 0.25  # round(0.25 * 32) = 8 rows of 32
    # union: at online iteration i the buffer holds i + 1 rows, so a row is a dataset row with
    # probability 64 / (64 + i + 1); averaged over the 40 iterations ~0.79 (1280 draws, sd ~0.012)
    expected = np.mean([N_DATASET / (N_DATASET + i + 1) for i in range(ONLINE_STEPS)])
    assert share["union"] == pytest.approx(expected, abs=0.05)
    for _, out in runs.values():  # the offline phase samples the dataset only
        assert float(out["offline"]["dataset_share"][0]) == 1.0
