"""Episode lengths of the device generator (`jaxo2o/data/gr_pointmaze.py`) against
`minari.DataCollector` on Gymnasium-Robotics' C env (`benchmarks.maze_collector_dataset`), same
recipe: a two-sample KS test on the lengths of the episodes that start at a reached goal (each
stream's first episode, from a reset, and its last, cut by the stream's end, are left out).

    PYTHONPATH=. python -m benchmarks.gr_pointmaze_lengths --task PointMaze_UMaze-v3 \\
        --c-steps 20000 --device-steps 100000 --streams 100
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import jax
import numpy as np
from scipy import stats

from benchmarks import maze_collector_dataset
from jaxo2o.data import load_dataset
from jaxo2o.data.dataset import episode_lengths
from jaxo2o.data.gr_pointmaze import GRPointMazeData, StreamRoller


def _inner(lengths: np.ndarray) -> np.ndarray:
    return lengths[1:-1]


def describe(name: str, x: np.ndarray) -> str:
    q = np.percentile(x, [10, 25, 50, 75, 90])
    return (
        f"{name}: {len(x)} episodes, mean {x.mean():.1f}, std {x.std():.1f}, quantiles 10/25/50/"
        f"75/90 % {' / '.join(f'{v:.0f}' for v in q)}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="PointMaze_UMaze-v3")
    ap.add_argument("--c-steps", type=int, default=20_000)
    ap.add_argument("--device-steps", type=int, default=100_000)
    ap.add_argument("--streams", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as root:
        os.environ["MINARI_DATASETS_PATH"] = root  # read at call time (Minari's and ours)

        t0 = time.perf_counter()
        maze_collector_dataset.collect(
            "test/pointmaze/lengths-v0", args.task, args.c_steps, seed=args.seed,
            refs=(0.0, 1.0), eval_env=False,
        )  # fmt: skip
        c_s = time.perf_counter() - t0
        c = _inner(load_dataset("test/pointmaze/lengths-v0").episode_lengths)

    data = GRPointMazeData(args.task, size=args.device_steps, rollout_envs=args.streams)
    roller = StreamRoller(data)
    t0 = time.perf_counter()
    t = roller.collect(jax.random.PRNGKey(args.seed))
    d_s = time.perf_counter() - t0
    per = data.steps_per_env
    dev = np.concatenate(
        [
            _inner(episode_lengths(type(t)(*(x[i * per : (i + 1) * per] for x in t))))
            for i in range(args.streams)
        ]
    )
    ks = stats.ks_2samp(c, dev)
    print(f"{args.task}: C DataCollector {args.c_steps} steps ({c_s:.1f} s wall), device "
          f"{args.streams} streams x {per} steps ({d_s:.1f} s wall incl. compile "
          f"{roller.compile_seconds:.1f} s)")  # fmt: skip
    print(describe("C   ", c))
    print(describe("MJX ", dev))
    print(f"KS two-sample: statistic {ks.statistic:.3f}, p-value {ks.pvalue:.3f}")


if __name__ == "__main__":
    main()
