"""The compiled offline/online loop, evaluation, determinism and seed independence.

Most loop mechanics are checked with a *probe* method: a method whose state is a few
counters, so the whole offline-then-online program compiles in seconds and every count
(updates, warm-up, dataset share, reward transform) can be predicted by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxo2o.config import RunConfig, run_hparams
from jaxo2o.core.evaluation import evaluate
from jaxo2o.core.loop import Trainer
from jaxo2o.core.method import Method
from jaxo2o.core.runner import broadcast_tree, run_batch
from jaxo2o.core.transitions import Transitions
from jaxo2o.envs import EnvState
from jaxo2o.envs.point import PointMass

# ---------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class FixedStartPoint(PointMass):
    """`point` with a known start, so episodes can be replayed by hand."""

    start: tuple[float, float] = (0.2, -0.1)

    def reset(self, key: jax.Array) -> EnvState:
        obs = jnp.asarray([*self.start, 0.0, 0.0], jnp.float32)
        return EnvState(physics=obs, obs=obs, t=jnp.zeros((), jnp.int32))


def replay_point(start, action, episode_length: int) -> tuple[float, int]:
    """Reference: the point dynamics in numpy; return and length until the first end."""
    pos, vel = np.array(start, np.float64), np.zeros(2)
    a = np.clip(np.asarray(action, np.float64), -1, 1)
    ret = 0.0
    for t in range(1, episode_length + 1):
        vel = 0.9 * vel + 0.1 * a
        pos = pos + 0.1 * vel
        ret += 1.0 - np.linalg.norm(pos)
        if np.max(np.abs(pos)) > 2.0:
            return ret, t
    return ret, episode_length


def test_evaluate_constant_policies_by_hand():
    env = FixedStartPoint(episode_length=40)
    # One constant action per episode: two leave the arena at different steps, one stays.
    actions = jnp.array([[1.0, 0.0], [0.0, 0.0], [-1.0, -0.5], [3.0, 0.0]])
    res = jax.jit(lambda k: evaluate(env, lambda obs, _: actions, k, 4))(jax.random.PRNGKey(0))
    want = [replay_point(env.start, a, 40) for a in np.asarray(actions)]
    want_ret, want_len = np.array([w[0] for w in want]), np.array([w[1] for w in want])
    # By hand: from rest under a constant unit push, the point has moved 0.1 S(t) after t steps,
    # S(t) = t - 9 (1 - 0.9^t). Along x from 0.2: (1, 0) leaves |x| <= 2 once S > 18, at
    # t = 27 (S(26) = 17.6, S(27) = 18.5); (-1, -0.5) once S > 22, at t = 31 (S(30) = 21.4,
    # S(31) = 22.3); the action 3 is clipped to 1; the zero action stays to the limit.
    np.testing.assert_array_equal(want_len, [27, 40, 31, 27])
    np.testing.assert_array_equal(res.lengths, want_len)
    np.testing.assert_allclose(res.returns, want_ret, rtol=1e-5, atol=1e-4)  # float32 sums
    # Rewards after the fall are < -1 each: had they been counted, the return would be lower.
    full = sum(
        1 - np.linalg.norm(p)
        for p in [
            np.array(env.start) + 0.1 * (t - 9 * (1 - 0.9**t)) * np.array([1.0, 0.0])
            for t in range(1, 41)
        ]
    )
    assert res.returns[0] > full + 10


def test_evaluate_time_limit_counts_every_step():
    env = FixedStartPoint(episode_length=7, start=(0.6, 0.8))  # |pos| = 1: reward 0 per step
    res = evaluate(env, lambda obs, _: jnp.zeros_like(obs[:, :2]), jax.random.PRNGKey(0), 2)
    np.testing.assert_array_equal(res.lengths, [7, 7])
    np.testing.assert_allclose(res.returns, [0.0, 0.0], atol=1e-6)


def test_evaluate_random_starts_use_distinct_keys():
    env = PointMass(episode_length=10)
    res = evaluate(env, lambda obs, _: jnp.zeros_like(obs[:, :2]), jax.random.PRNGKey(0), 8)
    # Zero action from rest never moves the point: return = 10 * (1 - |start|), all different.
    assert len(np.unique(np.round(np.asarray(res.returns), 5))) == 8
    np.testing.assert_array_equal(res.lengths, 10)
    assert np.all(np.asarray(res.returns) <= 10.0)


# ---------------------------------------------------------------- loop mechanics


@flax.struct.dataclass
class ProbeHParams:
    action: jnp.ndarray  # the constant action the probe takes


class Probe(Method, register=False):
    """Counts its calls and records what the batches looked like. Dataset rows have
    reward 1000 before the reward transform; online rows carry the point task's reward."""

    name = "probe"
    Config = dict
    HParams = ProbeHParams

    def default_hparams(self) -> ProbeHParams:
        return ProbeHParams(action=jnp.array([0.3, -0.2]))

    def flop_passes(self, obs_size, act_size, batch, online):
        return []

    def init(self, key, obs_size, act_size, hp):
        z = jnp.zeros((), jnp.float32)
        return {"offline": z, "online": z, "switched": z, "init_key": jax.random.key_data(key)}

    def update(self, state, batch, key, hp, online: bool):
        k = "online" if online else "offline"
        state = {**state, k: state[k] + 1}
        metrics = {
            "reward_mean": jnp.mean(batch.reward),
            "dataset_share": jnp.mean((batch.reward > 500).astype(jnp.float32)),
        }
        return state, metrics

    def to_online(self, state, key, hp):
        return {**state, "switched": state["switched"] + 1}

    def act(self, state, obs, key, hp, deterministic: bool):
        a = jnp.broadcast_to(hp.action, obs.shape[:-1] + hp.action.shape)
        return a, {"deterministic": jnp.full(obs.shape[:-1], float(deterministic))}


def probe_dataset(n: int = 16) -> Transitions:
    z = jnp.zeros((n, 4))
    return Transitions(
        z, jnp.zeros((n, 2)), jnp.full((n,), 1000.0), z, jnp.zeros(n, bool), jnp.zeros(n, bool)
    )


def probe_run(**kw) -> RunConfig:
    base = dict(
        offline_steps=20,
        offline_eval_every=10,
        online_steps=30,
        online_eval_every=10,
        num_envs=2,
        updates_per_step=2,
        warmup_steps=5,
        batch_size=8,
        eval_episodes=2,
        progress=False,
    )
    return RunConfig(**{**base, **kw})


def test_loop_counts_phases_and_warmup():
    env = PointMass(episode_length=12)
    run = probe_run(protocol="direct", offline_fraction=0.25)
    tr = Trainer(Probe(), env, run)
    hp = Probe().default_hparams()
    state, metrics = jax.jit(tr.train)(jax.random.PRNGKey(0), hp, run_hparams(run), probe_dataset())
    assert float(state["offline"]) == 20  # offline_steps
    assert float(state["online"]) == (30 - 5) * 2  # (online_steps - warmup) * updates_per_step
    assert float(state["switched"]) == 1
    off, on = metrics["offline"], metrics["online"]
    assert off["eval_returns"].shape == (2, 2)  # 20 / 10 evaluations x 2 episodes
    assert on["eval_returns"].shape == (4, 2)  # at the switch, then every 10 iterations
    assert on["eval_lengths"].shape == (4, 2)
    assert tr.eval_steps() == {"offline": [10, 20], "online": [0, 10, 20, 30]}
    # Offline batches come only from the dataset; online ones are 2 of 8 dataset rows.
    np.testing.assert_allclose(off["dataset_share"], 1.0)
    np.testing.assert_allclose(off["reward_mean"], 1000.0)
    np.testing.assert_allclose(on["dataset_share"], 0.25)
    # Acting online is stochastic, evaluation deterministic.
    np.testing.assert_allclose(on["act/deterministic"], 0.0)


def test_loop_fills_the_buffer_with_true_transitions():
    env = PointMass(episode_length=12)
    run = probe_run(protocol="scratch", offline_steps=0, warmup_steps=0)
    tr = Trainer(Probe(), env, run)
    hp = Probe().default_hparams()
    rhp = run_hparams(run)

    @jax.jit
    def go(key):
        state = tr.method.init(key, 4, 2, hp)
        return tr.online(state, key, hp, rhp, probe_dataset())

    _, buf, metrics = go(jax.random.PRNGKey(1))
    assert int(buf.size) == 60 and int(buf.position) == 0  # 30 iterations x 2 envs, full
    d = jax.tree.map(np.asarray, buf.data)
    np.testing.assert_allclose(d.action, np.broadcast_to([0.3, -0.2], (60, 2)))
    # Rows are inserted env-major within an iteration: env e at iteration i is row 2 i + e.
    obs, nxt = d.obs.reshape(30, 2, 4), d.next_obs.reshape(30, 2, 4)
    ended = (d.terminated | d.truncated).reshape(30, 2)
    # Every stored transition follows the point dynamics from its obs and action.
    vel = 0.9 * d.obs[:, 2:] + 0.1 * d.action
    pos = d.obs[:, :2] + 0.1 * vel
    np.testing.assert_allclose(d.next_obs, np.concatenate([pos, vel], 1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(d.reward, 1 - np.linalg.norm(pos, axis=1), rtol=1e-5, atol=1e-6)
    # Within an episode the next row starts where the last one ended; after an end it restarts.
    cont = ~ended[:-1]
    np.testing.assert_array_equal(obs[1:][cont], nxt[:-1][cont])
    restarted = obs[1:][ended[:-1]]
    np.testing.assert_array_equal(restarted[:, 2:], 0.0)  # fresh episodes start at rest
    assert np.all(np.abs(restarted[:, :2]) <= 1.0)
    # With a 12-step time limit and no falls (small constant action), 30 iterations hold two
    # truncations per env (t = 12, 24) and no termination.
    assert not d.terminated.any()
    np.testing.assert_array_equal(np.nonzero(ended[:, 0])[0], [11, 23])
    # The train return is the mean return of the episodes that ended in each interval.
    episode_returns = d.reward.reshape(30, 2)[:24].reshape(2, 12, 2).sum(1)  # (episode, env)
    np.testing.assert_allclose(metrics["train_return"][1], episode_returns[0].mean(), rtol=1e-5)
    np.testing.assert_allclose(metrics["train_return"][2], episode_returns[1].mean(), rtol=1e-5)
    assert np.isnan(metrics["train_return"][0])  # no episode ended in iterations 0-9


def test_loop_applies_the_reward_transform():
    env = PointMass(episode_length=12)
    run = probe_run(protocol="direct", offline_fraction=1.0)
    tr = Trainer(Probe(), env, run)
    rhp = run_hparams(run, reward_scale=0.5, reward_shift=-3.0)
    _, metrics = jax.jit(tr.train)(
        jax.random.PRNGKey(0), Probe().default_hparams(), rhp, probe_dataset()
    )
    np.testing.assert_allclose(metrics["offline"]["reward_mean"], 1000 * 0.5 - 3.0)
    np.testing.assert_allclose(metrics["online"]["reward_mean"], 1000 * 0.5 - 3.0)


def test_scratch_protocol_reinitialises_and_direct_keeps_the_offline_state():
    env = PointMass(episode_length=12)
    hp = Probe().default_hparams()
    counts = {}
    for protocol in ("scratch", "direct", "union", "buffer"):
        run = probe_run(protocol=protocol, offline_fraction=0.5)
        tr = Trainer(Probe(), env, run)
        state, _ = jax.jit(tr.train)(jax.random.PRNGKey(0), hp, run_hparams(run), probe_dataset())
        counts[protocol] = float(state["offline"])
    assert counts == {"scratch": 0.0, "direct": 20.0, "union": 20.0, "buffer": 0.0}


def test_traced_hyperparameters_vary_across_vmapped_runs():
    """One compiled program, a different hyperparameter value per run."""
    env = PointMass(episode_length=12)
    run = probe_run(protocol="scratch", offline_steps=0, warmup_steps=0)
    tr = Trainer(Probe(), env, run)
    hp = ProbeHParams(action=jnp.array([[0.0, 0.0], [1.0, 1.0], [-1.0, 0.0]]))
    res = run_batch(
        tr, jax.random.split(jax.random.PRNGKey(0), 3), hp, broadcast_tree(run_hparams(run), 3)
    )
    lengths = res.metrics["online"]["eval_lengths"]
    assert lengths.shape == (3, 4, 2)
    # A zero action never leaves the arena (length 12); constant pushes of 1 from |x| <= 1 need
    # > 12 steps to pass |x| = 2 as well, so all reach the limit, but the returns differ.
    np.testing.assert_array_equal(lengths, 12)
    returns = res.metrics["online"]["eval_returns"][:, -1].mean(-1)
    assert len(np.unique(np.round(returns, 4))) == 3
    np.testing.assert_array_equal(res.state["online"], [60.0, 60.0, 60.0])


# ---------------------------------------------------------------- SAC: determinism, seeds


def leaves(tree) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


@pytest.fixture(scope="module")
def sac_single(tiny_sac):
    """The tiny SAC run, jitted for one seed."""
    return jax.jit(tiny_sac.trainer.train)


@pytest.mark.xdist_group("sac_point")
def test_same_seed_gives_bitwise_identical_runs(tiny_sac, tiny_sac_factory, sac_single):
    key = jax.random.PRNGKey(42)
    state1, m1 = sac_single(key, tiny_sac.hp, tiny_sac.rhp)
    state2, m2 = sac_single(key, tiny_sac.hp, tiny_sac.rhp)
    # A second trace and compilation (possibly from the persistent cache) of a new Trainer.
    fresh = tiny_sac_factory()
    state3, m3 = jax.jit(fresh.trainer.train)(key, fresh.hp, fresh.rhp)
    for other_state, other in ((state2, m2), (state3, m3)):
        assert jax.tree.structure(other) == jax.tree.structure(m1)
        for a, b in zip(leaves(m1), leaves(other), strict=True):
            np.testing.assert_array_equal(a, b)
        for a, b in zip(leaves(state1), leaves(other_state), strict=True):
            np.testing.assert_array_equal(a, b)
    on = m1["online"]
    assert on["eval_returns"].shape == (4, 3)
    assert np.all(np.isfinite(on["critic_loss"][1:]))
    # A different seed gives a different run.
    _, m4 = sac_single(jax.random.PRNGKey(43), tiny_sac.hp, tiny_sac.rhp)
    assert not np.array_equal(m4["online"]["eval_returns"], on["eval_returns"])


@pytest.mark.xdist_group("sac_point")
def test_vmapped_seeds_equal_single_runs(tiny_sac, sac_single):
    """Seed k of a vmapped batch is the run a single-seed program gives with key k.

    Measured here (jax 0.10.2, 2-core CPU): not bitwise. The initial weights are bitwise equal
    (see `networks.orthogonal`), but the vmapped program batches every matmul over seeds
    and XLA picks other kernels and fusions for it than for the unbatched program, so float32
    results differ by a few ulps (largest seen over this 300-step run: 4e-6 on returns of
    ~35, 7e-7 on the weights; 7.6e-6 on a training return of -6.5 once the online updates
    became one `update_many` call). The test allows 1e-6 relative + 1e-5 absolute on the
    metrics and 1e-5 on the final state: far below any seed-to-seed difference, so a batch in which
    seeds leaked into each other (shared keys, mixed buffers) would fail.
    """
    keys = jax.random.split(jax.random.PRNGKey(7), 3)
    res = run_batch(
        tiny_sac.trainer, keys, broadcast_tree(tiny_sac.hp, 3), broadcast_tree(tiny_sac.rhp, 3)
    )
    assert res.n_devices == 1
    for k in range(3):
        single_state, single = sac_single(keys[k], tiny_sac.hp, tiny_sac.rhp)
        batched = jax.tree.map(lambda x, k=k: x[k], res.metrics)
        for name in single["online"]:
            np.testing.assert_allclose(
                batched["online"][name], single["online"][name], rtol=1e-6, atol=1e-5, err_msg=name
            )
        for b, a in zip(jax.tree.leaves(res.state), jax.tree.leaves(single_state), strict=True):
            np.testing.assert_allclose(np.asarray(b)[k], a, rtol=1e-5, atol=1e-5)
    # The three seeds are different runs.
    r = res.metrics["online"]["eval_returns"]
    assert not np.allclose(r[0], r[1]) and not np.allclose(r[1], r[2])


# ---------------------------------------------------------------- SAC learns


def test_sac_learns_point():
    """SAC (2x64) from scratch on `point` (episodes of 100 steps, returns <= 100).

    Budget: 4000 online steps (400 random warm-up), 2 seeds in one vmapped program (~10-40 s
    to run on a shared 2-core CPU, plus compilation). Measured with 8 other seeds of the same
    configuration: initial (untrained, deterministic) returns -1..21, final 81..88, so the
    thresholds below (final >= 70, a gain of >= 40 per seed) leave a wide margin while a
    policy that does not learn (returns near its start) fails them.
    """
    from jaxo2o.envs import make_env
    from jaxo2o.methods.sac import SAC, SACConfig

    env = make_env("point", episode_length=100)
    run = RunConfig(
        online_steps=4000,
        online_eval_every=1000,
        warmup_steps=400,
        warmup_random=True,
        protocol="scratch",
        eval_episodes=10,
        batch_size=128,
        progress=False,
    )
    sac = SAC(SACConfig(hidden=(64, 64)))
    keys = jax.random.split(jax.random.PRNGKey(2024), 2)
    res = run_batch(
        Trainer(sac, env, run),
        keys,
        broadcast_tree(sac.default_hparams(), 2),
        broadcast_tree(run_hparams(run), 2),
    )
    returns = res.metrics["online"]["eval_returns"].mean(-1)  # (seed, evaluation)
    assert returns.shape == (2, 5)
    initial, final = returns[:, 0], returns[:, -1]
    assert np.all(final >= 70.0), returns
    assert np.all(final - initial >= 40.0), returns
    assert np.all(res.metrics["online"]["eval_lengths"][:, -1] == 100)  # no falls at the end
