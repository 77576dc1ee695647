"""Validation at the edge: a wrong config raises ConfigError naming the field, before compiling."""

from __future__ import annotations

import re

import jax.numpy as jnp
import numpy as np
import pytest

from jaxo2o.config import (
    PROTOCOLS,
    ConfigError,
    EnvConfig,
    RunConfig,
    run_hparams,
    validate_hparams,
)
from jaxo2o.core.runner import broadcast_tree
from jaxo2o.envs import BRAX_BACKENDS, TASKS
from jaxo2o.methods.sac import SAC, SACConfig, SACHParams

SMALL = dict(online_steps=100, online_eval_every=50)  # with batch_size <= 100: a valid base


def raises_naming(field: str, *also: str):
    """pytest.raises(ConfigError) whose message starts with the field and contains `also`."""
    pattern = "^" + re.escape(field) + ":" + "".join(f"(?s:.*){re.escape(a)}" for a in also)
    return pytest.raises(ConfigError, match=pattern)


def test_defaults_are_valid():
    EnvConfig()
    RunConfig()
    RunConfig(batch_size=32, **SMALL)


def test_unknown_task_lists_the_choices():
    with raises_naming("env.task", "'no_such_task'", *TASKS) as exc:
        EnvConfig(task="no_such_task")
    assert "hopper" in str(exc.value) and "point" in str(exc.value)


def test_unknown_backend_lists_the_choices():
    with raises_naming("env.backend", "'warp'", *BRAX_BACKENDS):
        EnvConfig(task="hopper", backend="warp")


def test_episode_length_must_be_positive():
    with raises_naming("env.episode_length", "0"):
        EnvConfig(episode_length=0)


def test_config_error_is_a_value_error():
    with pytest.raises(ValueError):
        EnvConfig(task="no_such_task")


@pytest.mark.parametrize("bad", [0, -256])
def test_batch_size_must_be_positive(bad):
    with raises_naming("run.batch_size", str(bad)):
        RunConfig(batch_size=bad, **SMALL)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(online_steps=100, online_eval_every=30), "run.online_eval_every"),
        (dict(offline_steps=1000, offline_eval_every=300, **SMALL), "run.offline_eval_every"),
    ],
)
def test_eval_interval_must_divide_steps(kwargs, field):
    with raises_naming(field, "does not divide"):
        RunConfig(**kwargs)


def test_batch_larger_than_buffer():
    # capacity defaults to online_steps * num_envs = 100
    with raises_naming("run.batch_size", "101", "100"):
        RunConfig(batch_size=101, **SMALL)
    with raises_naming("run.batch_size", "capacity 64"):
        RunConfig(batch_size=128, buffer_capacity=64, **SMALL)
    RunConfig(batch_size=64, buffer_capacity=64, **SMALL)  # equal is fine


@pytest.mark.parametrize("warmup", [100, 150])
def test_warmup_must_leave_online_updates(warmup):
    with raises_naming("run.warmup_steps", str(warmup)):
        RunConfig(warmup_steps=warmup, batch_size=32, **SMALL)
    RunConfig(warmup_steps=99, batch_size=32, **SMALL)


@pytest.mark.parametrize("fraction", [-0.1, 1.5, -1.0])
def test_offline_fraction_outside_unit_interval(fraction):
    with raises_naming("run.offline_fraction", "[0, 1]"):
        RunConfig(offline_fraction=fraction, batch_size=32, **SMALL)


def test_offline_fraction_edges_are_valid():
    RunConfig(offline_fraction=0.0, batch_size=32, **SMALL)
    RunConfig(offline_fraction=1.0, batch_size=32, **SMALL)


def test_unknown_protocol_lists_the_choices():
    with raises_naming("run.protocol", "'finetune'", *PROTOCOLS):
        RunConfig(protocol="finetune", batch_size=32, **SMALL)


@pytest.mark.parametrize("name", ["num_envs", "updates_per_step", "eval_episodes"])
def test_other_positive_integers(name):
    with raises_naming(f"run.{name}", "> 0"):
        RunConfig(**{name: 0}, batch_size=32, **SMALL)


def test_protocol_batch_mixes():
    def mix(**kw):
        run = RunConfig(batch_size=32, **SMALL, **kw)
        return run.batch_mix, float(run_hparams(run).offline_fraction)

    assert mix(protocol="direct", offline_fraction=0.25)[1] == 0.25
    assert mix(protocol="buffer")[1] == 0.5
    assert mix(protocol="scratch")[1] == 0.0
    for protocol in ("union", "seeded"):
        m, _ = mix(protocol=protocol)
        assert m.uniform and not m.gridable
    assert not mix(protocol="direct")[0].uniform and mix(protocol="direct")[0].gridable
    assert not mix(protocol="scratch")[0].gridable


def test_seed_episodes_need_the_seeded_protocol():
    with raises_naming("run.seed_episodes", "seeded", "direct"):
        RunConfig(protocol="direct", seed_episodes=5, batch_size=32, **SMALL)
    assert RunConfig(protocol="seeded", seed_episodes=5, batch_size=32, **SMALL).init_from_offline


# ---------------------------------------------------------------- method hyperparameters


@pytest.mark.parametrize(
    "field, value, what",
    [
        ("actor_lr", -3e-4, "> 0"),
        ("critic_lr", 0.0, "> 0"),
        ("alpha_lr", -1.0, "> 0"),
        ("init_temperature", 0.0, "> 0"),
        ("discount", 1.01, "[0, 1]"),
        ("tau", -0.005, "[0, 1]"),
        ("tau", float("nan"), "[0, 1]"),
    ],
)
def test_sac_hparams_are_validated(field, value, what):
    with raises_naming(f"sac.{field}", what):
        SAC(SACConfig(hidden=(8,))).default_hparams(**{field: value})


def test_sac_validate_checks_every_run_of_a_grid():
    sac = SAC(SACConfig(hidden=(8,)))
    grid = broadcast_tree(sac.default_hparams(), 4)
    sac.validate(grid)
    bad = grid.replace(critic_lr=jnp.array([3e-4, 1e-3, -1e-3, 3e-4]))
    with raises_naming("sac.critic_lr", "-0.001"):
        sac.validate(bad)


def test_sac_default_hparams_overrides():
    hp = SAC(SACConfig(hidden=(8,))).default_hparams(discount=0.9)
    assert hp.discount.dtype == jnp.float32
    np.testing.assert_allclose(hp.discount, 0.9)
    assert float(hp.actor_lr) == pytest.approx(SACHParams().actor_lr)


def test_validate_hparams_generic():
    hp = SACHParams(target_entropy_per_dim=-1.0)
    assert validate_hparams(hp, "m", positive=("actor_lr",), nonnegative=("tau",)) is hp
    with raises_naming("m.target_entropy_per_dim", ">= 0", "-1"):
        validate_hparams(hp, "m", nonnegative=("target_entropy_per_dim",))


def test_validate_hparams_finite_and_ordered_pairs():
    hp = SACHParams(target_entropy_per_dim=jnp.asarray([-1.0, jnp.inf]))
    with raises_naming("m.target_entropy_per_dim", "finite", "inf"):
        validate_hparams(hp, "m", finite=("target_entropy_per_dim",))
    # a grid's second value breaks the order: the message names both fields and values
    hp = SACHParams(actor_lr=jnp.asarray([1e-4, 3e-4]), critic_lr=jnp.asarray([3e-4, 3e-4]))
    assert validate_hparams(hp, "m", ordered=(("actor_lr", "critic_lr", False),)) is hp
    with raises_naming("m.actor_lr", "must be < critic_lr", "actor_lr=0.0003", "critic_lr=0.0003"):
        validate_hparams(hp, "m", ordered=(("actor_lr", "critic_lr", True),))
    with raises_naming("m.critic_lr", "must be <= actor_lr", "critic_lr=0.0003", "actor_lr=0.0001"):
        validate_hparams(hp, "m", ordered=(("critic_lr", "actor_lr", False),))
