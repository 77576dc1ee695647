"""Update throughput of Cal-QL, CQL, RLPD and WSRL against IQL's at the same batch and width.

`python -m benchmarks.perf_baselines [--batch 256] [--width 256] [--steps 50] [--rlpd-utd 20]
[--wsrl-utd 4]`: for each, a jitted
`lax.scan` of `steps` online iterations on a fixed batch (one seed, obs 11, action 3), timed
three times after a warm-up call; prints the median seconds per iteration and per gradient step
(an RLPD/WSRL iteration with update-to-data ratio G is G critic steps and one actor step).
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax

from benchmarks.perf_update import method_batch, online_state
from jaxo2o.methods import get_method

OBS, ACT = 11, 3


def iteration_seconds(name: str, width: int, batch: int, steps: int, g: int, online: bool):
    cls = get_method(name)
    method = cls(cls.Config(hidden=(width, width)))
    hp = method.default_hparams()
    state = online_state(method, jax.random.PRNGKey(0), OBS, ACT, hp)
    one = method_batch(method, jax.random.PRNGKey(1), OBS, ACT, batch)
    batches = jax.tree.map(lambda x: jax.numpy.stack([x] * g), one)

    def run(state, key):
        def body(s, k):
            if online:
                return method.update_many(s, batches, jax.random.split(k, g), hp, True)[0], None
            return method.update(s, one, k, hp, False)[0], None

        return jax.lax.scan(body, state, jax.random.split(key, steps))[0]

    fn = jax.jit(run)
    jax.block_until_ready(fn(state, jax.random.PRNGKey(2)))
    times = []
    for i in range(3):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(state, jax.random.PRNGKey(3 + i)))
        times.append((time.perf_counter() - t0) / steps)
    return statistics.median(times), times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--rlpd-utd", type=int, default=20)  # official; the quick tier's is 2
    ap.add_argument("--wsrl-utd", type=int, default=4)
    args = ap.parse_args()
    cases = [
        ("iql", 1, False),
        ("cql", 1, False),
        ("calql", 1, False),
        ("wsrl", 1, False),
        ("rlpd", 1, True),
        ("rlpd", args.rlpd_utd, True),
        ("wsrl", args.wsrl_utd, True),
    ]
    base = None
    print("| method | phase | G | s / iteration (median of 3) | ms / gradient step | x IQL |")
    print("|---|---|---|---|---|---|")
    for name, g, online in cases:
        med, _ = iteration_seconds(name, args.width, args.batch, args.steps, g, online)
        per_step = med / g
        base = base or per_step
        phase = "online" if online else "offline"
        print(
            f"| {name} | {phase} | {g} | {med * 1e3:.2f} ms | {per_step * 1e3:.2f} | "
            f"{per_step / base:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
