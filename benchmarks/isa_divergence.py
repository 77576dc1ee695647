"""How far two instruction sets drift apart on inverted_double_pendulum with fixed weights and
keys (the measurement behind `jaxo2o/data/artefact.py`'s choice to commit datasets).

    python -m benchmarks.isa_divergence roll default.npz                     # default ISA
    XLA_FLAGS=--xla_cpu_max_isa=SSE4_2 python -m benchmarks.isa_divergence roll sse42.npz
    python -m benchmarks.isa_divergence compare default.npz sse42.npz

`roll` runs 1000 steps of Brax's generalized-backend pendulum from the reset of PRNGKey(0), past
any fall: open loop (every action 0.3 sin(0.05 t)) and closed loop (a fixed random 2x64 tanh MLP
from PRNGKey(1)), and saves both observation sequences. `compare` prints, per sequence, the
largest difference at a few steps and the first step past 1e-3 and 0.1.
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np

from jaxo2o.envs import make_env

STEPS = 1000
THRESHOLDS = (1e-3, 0.1)


def rollouts() -> dict[str, np.ndarray]:
    """{"open": (STEPS, obs), "closed": (STEPS, obs)} observation sequences."""
    env = make_env("inverted_double_pendulum", backend="generalized")
    shapes = [(env.observation_size, 64), (64, 64), (64, env.action_size)]
    keys = jax.random.split(jax.random.PRNGKey(1), len(shapes))
    weights = [jax.random.normal(k, s) / np.sqrt(s[0]) for k, s in zip(keys, shapes, strict=True)]

    def policy(obs: jax.Array) -> jax.Array:
        h = obs
        for w in weights:
            h = jnp.tanh(h @ w)
        return h

    def run(closed: bool) -> jax.Array:
        def step(state, t):
            a = policy(state.obs) if closed else 0.3 * jnp.sin(0.05 * t) * jnp.ones(env.action_size)
            state, res = env.step(state, a)
            return state, res.next_obs

        start = env.reset(jax.random.PRNGKey(0))
        return jax.lax.scan(step, start, jnp.arange(STEPS, dtype=jnp.float32))[1]

    return {k: np.asarray(jax.jit(lambda c=c: run(c))()) for k, c in (("open", 0), ("closed", 1))}


def compare(a: dict, b: dict) -> str:
    lines = []
    for k in ("open", "closed"):
        d = np.abs(a[k] - b[k]).max(axis=1)
        at = ", ".join(f"{i + 1}: {d[i]:.2g}" for i in (0, 9, 99, 299, STEPS - 1))
        first = [int(np.argmax(d > x)) + 1 if (d > x).any() else None for x in THRESHOLDS]
        lines.append(f"{k} loop: max |diff| at step {at}; first step past 1e-3: {first[0]}, "
                     f"past 0.1: {first[1]}")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "roll":
        np.savez(argv[1], **rollouts())
        return 0
    if len(argv) == 3 and argv[0] == "compare":
        print(compare(np.load(argv[1]), np.load(argv[2])))
        return 0
    print("usage: python -m benchmarks.isa_divergence roll OUT.npz | compare A.npz B.npz",
          file=sys.stderr)  # fmt: skip
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
