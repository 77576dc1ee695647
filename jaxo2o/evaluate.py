"""`python -m jaxo2o.evaluate <result folder> [--reference]`: evaluate the final deterministic
policies of a sweep line again, on the device and, with --reference, in the reference simulator.

The folder is one line's result folder (runs.csv, meta.json, final_state.npz). Its experiment is
rebuilt from meta.json (dataset included, for the methods whose policy depends on it), every
run's final state restored, and each run's deterministic policy played for --episodes episodes:
on the device (the jaxo2o task, in one compiled program over the runs) and, with --reference, in
Gymnasium's own task on the host (MuJoCo C; Gymnasium's v5 locomotion tasks only). Printed per
simulator: the mean return and normalized score over all runs' episodes with 95% bootstrap
confidence intervals, and whether the two intervals overlap.

    python -m jaxo2o.evaluate results/sweeps/hopper --reference --episodes 10
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import tyro

from jaxo2o.cli import one_line_errors
from jaxo2o.config import ConfigError, EnvConfig, RunConfig
from jaxo2o.core.loop import Trainer
from jaxo2o.data import DatasetError
from jaxo2o.envs.locomotion import LOCOMOTION_TASKS
from jaxo2o.envs.reference import reference_returns
from jaxo2o.experiment.final_state import load_final_state, state_template
from jaxo2o.experiment.plan import plan
from jaxo2o.experiment.results import normalize
from jaxo2o.experiment.spec import Experiment
from jaxo2o.report.aggregate import mean_ci


@dataclass(frozen=True)
class EvaluateArgs:
    folder: tyro.conf.Positional[str]  # a sweep line's result folder
    reference: bool = False  # also play the policies in the reference simulator (host)
    episodes: int = 10  # episodes per run and simulator
    seed: int = 0  # first reset seed (reference) / PRNG seed (device)


def experiment_from_meta(folder: Path) -> Experiment:
    """The line's Experiment, as recorded in its meta.json."""
    meta_file = folder / "meta.json"
    if not meta_file.is_file():
        raise ConfigError(f"{meta_file}: not a sweep line's result folder (no meta.json)")
    d = json.loads(meta_file.read_text()).get("experiment")
    if not d:
        raise ConfigError(f"{meta_file}: no 'experiment' entry (a multi-line sweep's top folder?)")
    tuples = {k: tuple(d[k]) for k in ("method_config", "hparams", "grid")}
    return Experiment(**(d | tuples | {"env": EnvConfig(**d["env"]), "run": RunConfig(**d["run"])}))


def interval(values: np.ndarray) -> str:
    lo, hi = mean_ci(np.asarray(values, np.float64))
    return f"{np.mean(values):.1f} [{lo:.1f}, {hi:.1f}]"


def main(argv: list[str] | None = None) -> int:
    try:
        with one_line_errors():
            args = tyro.cli(EvaluateArgs, args=argv, description=__doc__)
        folder = Path(args.folder)
        if args.episodes < 1:
            raise ConfigError(f"episodes: must be >= 1, got {args.episodes}")
        exp = experiment_from_meta(folder)
        run = dataclasses.replace(exp.run, eval_episodes=args.episodes, progress=False)
        p = plan(dataclasses.replace(exp, run=run))
        if args.reference and exp.env.task not in LOCOMOTION_TASKS:
            raise ConfigError(
                f"reference: no reference simulator for {exp.env.task!r}; it exists for "
                f"{LOCOMOTION_TASKS}"
            )
        t: Trainer = p.trainer
        one_hp = jax.tree.map(lambda x: x[0], p.hp)
        template = state_template(p.method, t.obs_size, t.act_size, one_hp, run.online_steps > 0)
        states = load_final_state(folder, template, p.n_runs)
    except (ConfigError, DatasetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    keys = jax.random.split(jax.random.PRNGKey(args.seed), p.n_runs)
    ev = jax.jit(jax.vmap(t.evaluate))(states, keys, p.hp)
    device = "device (MJX)" if exp.env.task in LOCOMOTION_TASKS else "device"
    rows = {device: np.asarray(ev.returns)}
    if args.reference:
        act = jax.jit(lambda s, o, k, h: p.method.act(s, o[None], k, h, deterministic=True)[0][0])
        ref = []
        for i in range(p.n_runs):
            s_i, h_i = (jax.tree.map(lambda x, i=i: x[i], tree) for tree in (states, p.hp))
            policy = _host_policy(act, s_i, h_i)
            ret, _ = reference_returns(
                exp.env.task, policy, args.episodes, exp.env.episode_length, args.seed
            )
            ref.append(ret)
        rows["reference (MuJoCo C)"] = np.stack(ref)
    print(
        f"{exp.method} ({exp.run.protocol}) on {exp.env.task}, {p.n_runs} runs x "
        f"{args.episodes} episodes; mean [95% CI]"
    )
    cis = {}
    for name, returns in rows.items():
        flat = returns.ravel()
        line = f"  {name:22s} return {interval(flat)}"
        if p.ref_scores is not None:
            line += f"   normalized score {interval(normalize(flat, p.ref_scores))}"
        cis[name] = mean_ci(flat)
        print(line)
    if len(cis) == 2:
        (a_lo, a_hi), (b_lo, b_hi) = cis.values()
        verdict = "overlap" if a_lo <= b_hi and b_lo <= a_hi else "do NOT overlap"
        print(f"  the two return intervals {verdict}")
    return 0


def _host_policy(act: Any, state: Any, hp: Any) -> Any:
    """One run's deterministic policy as a host function of one observation."""
    key = jax.random.PRNGKey(0)  # unused by deterministic actions
    return lambda obs: np.asarray(act(state, jnp.asarray(obs), key, hp), np.float64)


if __name__ == "__main__":
    raise SystemExit(main())
