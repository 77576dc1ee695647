"""Shared test setup.

Compilation dominates the run time of this suite (a whole training run compiles to one XLA
program, ~30-60 s on a 2-core CPU), so:
- every test session uses JAX's persistent compilation cache (``$JAXO2O_CACHE_DIR`` or
  ``<repo>/.cache/jax``); a second run of the suite reuses the compiled programs;
- tests that compile the *same* program carry the same ``@pytest.mark.xdist_group(name)``
  marker, so ``pytest -n 2 --dist loadgroup`` (the Makefile's ``make test``) sends them to
  one worker, which compiles it once. Group names: ``"sac_point"`` for the tiny SAC run of
  ``tiny_sac`` below, ``"brax_hopper"`` for the Brax integration tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# The MJX physics parity cases beyond Hopper-v5 compile the other tasks' physics (20-90 s each on
# a 2-core CPU, cold): `make test` keeps Hopper's and leaves the rest to `make test-all`.
HEAVY_BEYOND_HOPPER = {
    "test_one_step_teacher_forced_parity",
    "test_reset_distribution_matches_gymnasium",
}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Mark `heavy` (pyproject's markers) the MJX parity cases of tasks other than Hopper-v5,
    before `-m` selects."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        task = callspec.params.get("task") if callspec is not None else None
        if item.originalname in HEAVY_BEYOND_HOPPER and task not in (None, "Hopper-v5"):
            item.add_marker(pytest.mark.heavy)


def cache_dir() -> str:
    """Where the persistent compilation cache lives (shared with subprocesses of the tests)."""
    return os.environ.get("JAXO2O_CACHE_DIR") or str(REPO_ROOT / ".cache" / "jax")


@pytest.fixture(scope="session", autouse=True)
def compilation_cache_dir() -> str:
    """Enables the persistent compilation cache for the session; returns its folder."""
    from jaxo2o.core.runner import enable_compilation_cache

    return enable_compilation_cache(cache_dir())


@dataclass(frozen=True)
class TinySAC:
    """A small SAC-on-point run that compiles quickly; shared so its program is compiled once."""

    trainer: Any
    hp: Any
    rhp: Any


def make_tiny_sac() -> TinySAC:
    """SAC (2x32) from scratch on `point`: 300 online iterations, episodes of 50 steps.

    Also imported by `sharding_check.py`, which runs in a subprocess with two host devices.
    """
    from jaxo2o.config import RunConfig, run_hparams
    from jaxo2o.core.loop import Trainer
    from jaxo2o.envs import make_env
    from jaxo2o.methods.sac import SAC, SACConfig

    env = make_env("point", episode_length=50)
    run = RunConfig(
        online_steps=300,
        online_eval_every=100,
        warmup_steps=50,
        warmup_random=True,
        batch_size=32,
        protocol="scratch",
        eval_episodes=3,
        progress=False,
    )
    method = SAC(SACConfig(hidden=(32, 32)))
    return TinySAC(Trainer(method, env, run), method.default_hparams(), run_hparams(run))


@pytest.fixture(scope="session")
def tiny_sac() -> TinySAC:
    return make_tiny_sac()


@pytest.fixture(scope="session")
def tiny_sac_factory():
    """Builds a fresh, equal copy of `tiny_sac` (new Trainer, new trace)."""
    return make_tiny_sac
