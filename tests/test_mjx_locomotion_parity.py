"""The MJX ports of Gymnasium's v5 locomotion tasks against Gymnasium itself (MuJoCo C).

- model and constants: the port loads the very model Gymnasium steps (same solver options,
  timestep, sizes), with the same dt, observation and action sizes;
- same state, same functions: the port's observation, reward and termination computed on
  Gymnasium's own post-step MuJoCo data equal Gymnasium's (float32 rounding);
- one step, teacher-forced, on 1,000 states per task from Gymnasium rollouts under random
  actions (`benchmarks.locomotion_parity`): next qpos/qvel, observation, reward, terminated;
- the reset distribution: mean and std of the first observation over 2,000 resets agree
  within sampling error.

Tolerances (float32 MJX against float64 MuJoCo C), from the measurements in the README's
parity table (1,000 states per task, random actions, mujoco 4.0.0 / mujoco-mjx 3.17.0):
max |qpos, qvel| difference per state measured <= 6.7e-6 (Hopper), median <= 5e-7;
the test allows median 5e-6 and max 1e-4. Rewards: |dr| <= 1e-4 * max(1, |r|) (dx/dt
amplifies position rounding by 1/dt). Terminated: equal on every recorded state (the test
allows 2 in 1,000 to differ, for a state within float32 rounding of a health bound).
"""

from __future__ import annotations

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks.locomotion_parity import record, replay
from jaxo2o.envs import make_env
from jaxo2o.envs.locomotion import (
    LOCOMOTION_TASKS,
    SPECS,
    GymLocomotion,
    is_healthy,
    observation,
    step_reward,
)

STATES = 1000
ONE_STEP_MEDIAN, ONE_STEP_MAX = 5e-6, 1e-4
REWARD_REL = 1e-4
RESETS = 2000


@pytest.fixture(scope="module", params=LOCOMOTION_TASKS)
def task(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def env(task) -> GymLocomotion:
    return make_env(task)


def test_model_and_constants_are_gymnasiums(task, env):
    ref = gym.make(task)
    m, r = env.physics.mj_model, ref.unwrapped.model
    for name in ("timestep", "integrator", "solver", "iterations", "tolerance", "ls_iterations",
                 "cone", "jacobian", "impratio", "noslip_iterations", "disableflags"):  # fmt: skip
        assert getattr(m.opt, name) == getattr(r.opt, name), name
    for name in ("nq", "nv", "nu", "nbody", "ngeom"):
        assert getattr(m, name) == getattr(r, name), name
    np.testing.assert_array_equal(m.body_mass, r.body_mass)  # HalfCheetah's settotalmass too
    np.testing.assert_array_equal(m.actuator_gear, r.actuator_gear)
    assert env.physics.dt == pytest.approx(ref.unwrapped.dt)
    assert env.observation_size == ref.observation_space.shape[0]
    assert env.action_size == ref.action_space.shape[0]
    assert env.episode_length == ref.spec.max_episode_steps == 1000
    np.testing.assert_array_equal(env.physics.init_qpos, ref.unwrapped.init_qpos)


def test_observation_reward_termination_on_gymnasiums_own_states(task):
    """The port's functions on the MuJoCo C data Gymnasium stepped: same numbers."""
    rec = record(task, 300, seed=1)
    spec = SPECS[task]
    dt = gym.make(task).unwrapped.dt
    obs = np.stack(
        [observation(spec, *map(jnp.asarray, x)) for x in
         zip(rec.next_qpos, rec.next_qvel, rec.next_cfrc_ext, strict=True)]
    )  # fmt: skip
    np.testing.assert_allclose(obs, rec.next_obs, rtol=1e-6, atol=1e-6)
    healthy = np.array(
        [bool(is_healthy(task, q, v)) for q, v in zip(rec.next_qpos, rec.next_qvel, strict=True)]
    )
    if spec.healthy_reward:
        np.testing.assert_array_equal(~healthy, rec.terminated)
        assert rec.terminated.any()  # the rollouts do fall, so both branches are checked
    else:
        assert not rec.terminated.any()
    # x: Ant's torso xpos (after an RK4 step: the last stage's), else the root's qpos[0]
    ant = task == "Ant-v5"
    x0 = rec.xpos[:, 1, 0] if ant else rec.qpos[:, 0]
    x1 = rec.next_xpos[:, 1, 0] if ant else rec.next_qpos[:, 0]
    r = np.array([
        float(step_reward(spec, jnp.asarray((b - a) / dt), jnp.asarray(u), h, jnp.asarray(c)))
        for a, b, u, h, c in zip(x0, x1, rec.action, healthy, rec.next_cfrc_ext, strict=True)
    ])  # fmt: skip
    np.testing.assert_allclose(r, rec.reward, rtol=1e-6, atol=1e-5)


@pytest.mark.slow
@pytest.mark.xdist_group("mjx_locomotion")
def test_one_step_teacher_forced_parity(task, env):
    rec = record(task, STATES, seed=0)
    qpos, qvel, obs, reward, terminated = replay(env, rec)
    err = np.maximum(
        np.abs(qpos - rec.next_qpos).max(axis=1), np.abs(qvel - rec.next_qvel).max(axis=1)
    )
    assert np.median(err) <= ONE_STEP_MEDIAN, (task, np.median(err))
    assert err.max() <= ONE_STEP_MAX, (task, err.max())
    np.testing.assert_allclose(obs, rec.next_obs, atol=ONE_STEP_MAX)
    rel = np.abs(reward - rec.reward) / np.maximum(1.0, np.abs(rec.reward))
    assert rel.max() <= REWARD_REL, (task, rel.max())
    assert (terminated != rec.terminated).sum() <= 2, task
    if SPECS[task].healthy_reward:
        assert rec.terminated.sum() >= 5  # terminal steps are among the checked states


@pytest.mark.slow
@pytest.mark.xdist_group("mjx_locomotion")
def test_reset_distribution_matches_gymnasium(task, env):
    keys = jax.random.split(jax.random.PRNGKey(0), RESETS)
    ours = np.asarray(jax.jit(jax.vmap(env.reset))(keys).obs, np.float64)
    ref_env = gym.make(task)
    theirs = np.stack([ref_env.reset(seed=i)[0] for i in range(RESETS)])
    assert ours.shape == theirs.shape
    # per dimension: means within 5 standard errors, stds within 5 standard errors of a std
    se_mean = np.sqrt((ours.var(0) + theirs.var(0)) / RESETS)
    np.testing.assert_array_less(np.abs(ours.mean(0) - theirs.mean(0)), 5 * se_mean + 1e-7)
    se_std = np.sqrt((ours.var(0) + theirs.var(0)) / (2 * RESETS))
    np.testing.assert_array_less(np.abs(ours.std(0) - theirs.std(0)), 5 * se_std + 1e-7)
    # the bounds of the uniform noise hold exactly (first qpos entry observed)
    s = SPECS[task]
    q0 = env.physics.init_qpos[s.obs_skip]
    assert np.all(np.abs(ours[:, 0] - q0) <= s.qpos_noise + 1e-6)
    assert np.abs(ours[:, 0] - q0).max() > 0.9 * s.qpos_noise  # the noise is there
