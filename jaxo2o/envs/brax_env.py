"""Brax tasks behind the jaxo2o interface.

We take the raw Brax environment (no Brax wrappers): the time limit, auto-reset and the
termination/truncation split are ours (see `envs.base`). Brax's `done` is its termination
signal (an unhealthy hopper or walker); the time limit is never folded into it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp

from jaxo2o.envs.base import EnvState, StepResult, time_limit

BRAX_TASKS = (
    "halfcheetah",
    "hopper",
    "walker2d",
    "ant",
    "inverted_pendulum",
    "inverted_double_pendulum",
    "reacher",
    "swimmer",
    "pusher",
    "humanoid",
)
BRAX_BACKENDS = ("generalized", "positional", "spring", "mjx")


@dataclass(frozen=True)
class BraxEnv:
    name: str
    backend: str = "positional"
    episode_length: int = 1000
    _env: Any = field(default=None, repr=False, compare=False, hash=False)

    def __post_init__(self):
        from brax import envs  # seconds to import: only Brax tasks pay it

        object.__setattr__(self, "_env", envs.get_environment(self.name, backend=self.backend))

    @property
    def observation_size(self) -> int:
        return int(self._env.observation_size)

    @property
    def action_size(self) -> int:
        return int(self._env.action_size)

    def reset(self, key: jax.Array) -> EnvState:
        s = self._env.reset(key)
        return EnvState(physics=s, obs=s.obs, t=jnp.zeros((), jnp.int32))

    def step(self, state: EnvState, action: jax.Array) -> tuple[EnvState, StepResult]:
        s = self._env.step(state.physics, jnp.clip(action, -1.0, 1.0))
        terminated = s.done > 0.5
        t = state.t + 1
        truncated = time_limit(t, terminated, self.episode_length)
        return EnvState(physics=s, obs=s.obs, t=t), StepResult(
            s.obs, s.reward, terminated, truncated
        )
