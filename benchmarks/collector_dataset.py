"""A dataset in the exact layout of Minari's standard MuJoCo datasets, made here with
`minari.DataCollector` on the Gymnasium env (random actions; `record_infos=False`, reset seeds
counting up from --seed, as the standard datasets' recording scripts), under a standard id in
the Minari root ($MINARI_DATASETS_PATH). For tests and demonstrations without a download.

    MINARI_DATASETS_PATH=/tmp/minari python -m benchmarks.collector_dataset \\
        --id mujoco/hopper/medium-v0 --env Hopper-v5 --steps 20000
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import gymnasium as gym
import minari


def collect(ds_id: str, env_id: str, steps: int, seed: int = 0, **kwargs) -> None:
    """`steps` random-action steps of Gymnasium's `env_id` as the Minari dataset `ds_id`."""
    env = minari.DataCollector(gym.make(env_id, **kwargs), record_infos=False)
    env.action_space.seed(seed)
    episode = 0
    env.reset(seed=seed)
    for _ in range(steps):
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            episode += 1
            env.reset(seed=seed + episode)
    create_dataset(
        env,
        ds_id,
        "collector_dataset.py",
        algorithm_name="uniform random policy",
        description=f"{steps} random-action steps of {env_id}, standard Minari layout",
    )
    env.close()


def create_dataset(
    env: minari.DataCollector,
    ds_id: str,
    script: str,
    *,
    algorithm_name: str,
    description: str,
    eval_env: gym.envs.registration.EnvSpec | None = None,
    refs: tuple[float, float] | None = None,
    expert_policy: Callable | None = None,
) -> minari.MinariDataset:
    """`env.create_dataset` with this repo's authorship and `script`'s name. Reference scores:
    `refs` (random, expert) as given, else with `expert_policy` Minari's own (the mean return of
    100 episodes of the eval env under a uniform random policy and under `expert_policy`), else
    none."""
    if refs is not None:
        scores = {"ref_min_score": refs[0], "ref_max_score": refs[1]}
    else:
        scores = {} if expert_policy is None else {"expert_policy": expert_policy}
    return env.create_dataset(
        ds_id,
        eval_env=eval_env,
        **scores,
        algorithm_name=algorithm_name,
        author="jaxo2o",
        author_email="jaxo2o@example.org",
        code_permalink=f"https://example.org/jaxo2o/benchmarks/{script}",
        description=description,
    )


def collector_cli(collect_fn: Callable[..., object], doc: str, noise: float | None = None) -> None:
    """The command line of a DataCollector script: --id, --env, --steps, --seed, and --noise
    (passed as `noise=`) when the script has a `noise` default."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--id", required=True)
    ap.add_argument("--env", required=True)
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=0)
    if noise is not None:
        ap.add_argument("--noise", type=float, default=noise, help="action noise std")
    args = ap.parse_args()
    extra = {} if noise is None else {"noise": args.noise}
    collect_fn(args.id, args.env, args.steps, args.seed, **extra)
    print(f"wrote {args.id} ({args.steps} steps of {args.env})")


def main() -> None:
    collector_cli(collect, __doc__)


if __name__ == "__main__":
    main()
