"""FamO2O's own diagnostics: does the chosen balance coefficient vary with the state, and do the
two universal-loss weight modes differ?

    python -m benchmarks.famo2o_study --task pointmaze-umaze --kind diverse --tier quick

Runs FamO2O (the suite's settings for the task's domain: on mazes the official AntMaze range
[8, 14]) in both weight modes (`per_sample`, the method as described; `official_broadcast`, the
released code's (B, B) weights), the same seeds and budgets as the tier's suite, then evaluates
the deterministic coefficient beta(s) of each run's final balance model:
- on every dataset state: its spread over states (std, 5th-95th percentile) per run;
- on mazes, on a grid of positions at rest, drawn over the layout (`coefficient-<mode>.png`).
Writes `<out>/summary.md`, `coefficient.csv` (per run: scores and beta's spread) and the sweep
files of each mode's experiment.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.famo2o_coefficient import coefficient_spread
from benchmarks.run import experiment_for
from benchmarks.suite import SUITES, domain_of
from jaxo2o.cli import parse_or_exit
from jaxo2o.config import EnvConfig
from jaxo2o.core.runner import enable_compilation_cache
from jaxo2o.data import dataset_id, load_dataset
from jaxo2o.data.tiers import TIERS
from jaxo2o.envs import make_env
from jaxo2o.envs.maze import layout_of
from jaxo2o.envs.render import episode_positions, render_trajectories
from jaxo2o.experiment.lines import Line
from jaxo2o.experiment.runner import RunnerOptions, run_lines
from jaxo2o.methods.famo2o import FamO2O
from jaxo2o.report.files import atomic_write_text, write_csv
from jaxo2o.report.plots import pyplot

MODES = ("per_sample", "official_broadcast")


@dataclass(frozen=True)
class StudyArgs:
    task: str = "pointmaze-umaze"
    kind: str = "diverse"
    tier: str = "quick"
    out: str = "results/famo2o-study"
    seeds: int = 0  # 0: the suite's


def coefficient_grid(method: FamO2O, state, hp, layout, per_cell: int = 8) -> np.ndarray:
    """beta at rest (zero velocity) on a grid of `per_cell` x `per_cell` points per cell; NaN in
    walls. Shape (H * per_cell, W * per_cell), row 0 at the top as the layout is drawn."""
    h, w = layout.shape
    offs = (np.arange(per_cell) + 0.5) / per_cell - 0.5
    ys = (np.arange(h)[:, None] + offs[None]).ravel()
    xs = (np.arange(w)[:, None] + offs[None]).ravel()
    gx, gy = np.meshgrid(xs, ys)
    obs = np.stack([gx.ravel(), gy.ravel(), 0 * gx.ravel(), 0 * gy.ravel()], -1)
    beta = np.asarray(method.coefficient(state, jnp.asarray(obs, jnp.float32), hp))
    beta = beta.reshape(gx.shape)
    walls = np.repeat(np.repeat(layout.walls, per_cell, 0), per_cell, 1)
    return np.where(walls, np.nan, beta)


def rollout_positions(method, state, hp, env, n: int, key: jax.Array) -> np.ndarray:
    """(n, T + 1, 2) positions of n deterministic episodes from the start (NaN after the end)."""

    def episode(k):
        s0 = env.reset(k)

        def step(carry, _):
            st, alive = carry
            a = method.act(state, st.obs[None], k, hp, deterministic=True)[0][0]
            nxt, res = env.step(st, a)
            pos = jnp.where(alive, res.next_obs[:2], jnp.nan)
            done = jnp.logical_or(res.terminated, res.truncated)
            return (nxt, jnp.logical_and(alive, ~done)), pos

        _, path = jax.lax.scan(step, (s0, jnp.array(True)), None, length=env.episode_length)
        return jnp.concatenate([s0.obs[None, :2], path])

    return np.asarray(jax.jit(jax.vmap(episode))(jax.random.split(key, n)))


def plot_grid(grids: list[np.ndarray], lo: float, hi: float, title: str, path: Path) -> None:
    plt = pyplot()

    fig, axes = plt.subplots(1, len(grids), figsize=(3.2 * len(grids) + 1, 3.4), squeeze=False)
    for i, (ax, g) in enumerate(zip(axes[0], grids, strict=True)):
        cmap = plt.get_cmap("viridis").copy()
        cmap.set_bad("0.3")  # walls
        im = ax.imshow(g, vmin=lo, vmax=hi, cmap=cmap)
        ax.set_title(f"seed {i}")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes[0].tolist(), label="beta(s) at rest")
    fig.suptitle(title)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = parse_or_exit(StudyArgs, argv, __doc__)  # bad input: one line, exit 2
    enable_compilation_cache()
    suite, tier = SUITES[args.tier], TIERS[args.tier]
    t = tier.task(args.task)
    domain = domain_of(t)
    if args.seeds:
        suite = dataclasses.replace(suite, seeds=args.seeds)
    spec = next(s for s in suite.methods if s.label == "famo2o")
    env = EnvConfig(task=t.task, backend=t.backend, episode_length=t.episode_length)
    ds_id = dataset_id(t.task, args.kind, args.tier)
    ds = load_dataset(ds_id)
    out = Path(args.out) / f"{t.task}-{args.kind}"
    out.mkdir(parents=True, exist_ok=True)
    if domain == "maze":  # the data the runs learn from: its first 40 episodes
        tr = ds.transitions
        ends = np.logical_or(tr.terminated, tr.truncated)
        eps = episode_positions(np.asarray(tr.obs), np.asarray(tr.next_obs), ends)
        render_trajectories(t.task, eps[:40], out / "dataset.png", scale=48)
    rows, summary, lines = [], [], []
    for mode in MODES:
        exp = experiment_for(suite, spec, env, ds_id, args.kind, domain)
        exp = dataclasses.replace(exp, method_config=(*exp.method_config, f"weight_mode={mode}"))
        lines.append(Line(mode, t.task, args.kind, exp))
    # every mode is run again: the study reads the runs' final states
    options = RunnerOptions(force=True, checkpoint_every=0, offline_cache="")
    folders = {line.folder: out / line.label for line in lines}
    for job, res in run_lines(lines, out, options, folders, {ds_id: ds}):
        mode, p = job.line.label, job.plan
        method: FamO2O = p.method  # the run's own configuration (widths, weight mode)
        grids, lo, hi = [], float(p.hp.beta_min[0]), float(p.hp.beta_max[0])
        spread = coefficient_spread(p, res, ds.transitions.obs)
        rows += [r | {"mode": mode} for r in spread]
        for i in range(len(res.rows)):
            state = jax.tree.map(lambda x, i=i: jnp.asarray(x[i]), res.batch.state)
            hp = jax.tree.map(lambda x, i=i: x[i], p.hp)
            if domain == "maze":
                grids.append(coefficient_grid(method, state, hp, layout_of(t.task)))
                if i == 0:
                    maze = make_env(t.task, "none", t.episode_length)
                    paths = rollout_positions(method, state, hp, maze, 5, jax.random.PRNGKey(7))
                    render_trajectories(t.task, paths, out / f"rollouts-{mode}-seed0.png", scale=48)
        if grids:
            plot_grid(
                grids, lo, hi, f"FamO2O ({mode}) on {t.task}", out / f"coefficient-{mode}.png"
            )
        mine = [r for r in rows if r["mode"] == mode]
        summary.append(
            f"| {mode} | "
            + " | ".join(
                f"{np.mean([r[k] for r in mine]):.2f} ± {np.std([r[k] for r in mine], ddof=1):.2f}"
                for k in ("offline_final", "online_dip", "online_final")
            )
            + f" | {np.mean([r['beta_std_over_states'] for r in mine]):.3f} | "
            f"{np.mean([r['beta_p5'] for r in mine]):.2f} to "
            f"{np.mean([r['beta_p95'] for r in mine]):.2f} |"
        )
    write_csv(out / "coefficient.csv", rows)
    text = (
        f"# FamO2O on {ds_id}: weight modes and the chosen coefficient\n\n"
        f"{suite.seeds} seeds per mode, the {args.tier} suite's budgets and FamO2O settings "
        f"(beta range [{lo:g}, {hi:g}]); scores normalized (mean ± std over seeds); beta(s) is "
        "the deterministic balance output at the end of the run, over every dataset state "
        "(std over states and its 5th-95th percentile range, averaged over seeds).\n\n"
        "| weight mode | end of offline | dip | final | beta std over states | beta 5%-95% |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(summary) + "\n"
    )
    atomic_write_text(out / "summary.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
