"""Experiments and the sweep CLI: validation before compiling, the run grid, summaries, files."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest

from jaxo2o.config import ConfigError, EnvConfig, RunConfig
from jaxo2o.core.runner import BatchResult
from jaxo2o.core.transitions import Transitions
from jaxo2o.experiment import Experiment, check_memory, estimate_memory, plan, summarize
from jaxo2o.experiment.results import dip_mask, dip_window
from jaxo2o.sweep import main as sweep_main


@dataclass(frozen=True)
class FakeDataset:
    """The fields of `jaxo2o.data.OfflineDataset` an experiment reads."""

    dataset_id: str
    transitions: Transitions
    ref_min_score: float
    ref_max_score: float
    episode_returns: np.ndarray


def point_dataset(n: int = 64) -> FakeDataset:
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, (n, 4)).astype(np.float32)
    t = Transitions(
        obs=obs,
        action=rng.uniform(-1, 1, (n, 2)).astype(np.float32),
        reward=rng.uniform(0, 1, n).astype(np.float32),
        next_obs=obs,
        terminated=np.zeros(n, bool),
        truncated=np.zeros(n, bool),
    )
    return FakeDataset("test/point/fake-v0", t, 0.0, 50.0, np.array([10.0, 30.0]))


def iql_experiment(**kw) -> Experiment:
    base = dict(
        method="iql",
        env=EnvConfig(task="point", episode_length=20),
        run=RunConfig(
            offline_steps=20,
            online_steps=20,
            offline_eval_every=10,
            online_eval_every=10,
            batch_size=16,
            eval_episodes=2,
            progress=False,
        ),
        dataset="test/point/fake-v0",
        seeds=3,
        method_config=("hidden=8,8",),
    )
    return Experiment(**(base | kw))


def test_grid_times_seeds_and_traced_values():
    p = plan(iql_experiment(grid=("expectile=0.6,0.8", "offline_fraction=0.25,1")), point_dataset())
    assert p.n_runs == 3 * 2 * 2
    assert [r["seed"] for r in p.runs[:3]] == [0, 1, 2]
    np.testing.assert_allclose(p.hp.expectile, [0.6] * 6 + [0.8] * 6)
    np.testing.assert_allclose(
        p.rhp.offline_fraction, [0.25] * 3 + [1.0] * 3 + [0.25] * 3 + [1.0] * 3
    )
    assert p.method.config.hidden == (8, 8)
    assert p.method.config.offline_steps == 20  # the cosine horizon follows the run


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"grid": ("expectile",)}, "grid: expected 'name=value'"),
        ({"grid": ("nonsense=1",)}, "grid.nonsense: not a hyperparameter of iql"),
        ({"hparams": ("expectile=abc",)}, "hparams.expectile: expected a number"),
        ({"grid": ("expectile=0.5,1.5",)}, "iql.expectile: must lie in [0, 1]"),
        ({"method_config": ("widths=3",)}, "method_config.widths: not a field of iql"),
        ({"method_config": ("hidden=a,b",)}, "method_config.hidden: cannot read"),
        ({"dataset": ""}, "dataset: run.offline_steps=20 needs offline data"),
    ],
)
def test_bad_options_are_named(kw, needle):
    with pytest.raises(ConfigError) as e:
        plan(iql_experiment(**kw), point_dataset())
    assert needle in str(e.value)


def test_unknown_method_lists_choices():
    with pytest.raises(ConfigError, match=r"method: unknown 'nope'; choose one of \(.*'iql'"):
        Experiment(method="nope")


def test_memory_estimate_and_refusal(monkeypatch):
    p = plan(iql_experiment(), point_dataset())
    est = estimate_memory(p)
    # buffer of 20 transitions: 4 * (2*4 + 2 + 1) + 2 = 46 bytes each, plus the two counters
    assert est["buffer_per_run"] == 20 * 46 + 8
    assert est["total"] == est["per_run"] * 3 + est["dataset"]

    class Tiny:
        available = est["total"]  # 80% of it is not enough

    import psutil

    monkeypatch.setattr(psutil, "virtual_memory", lambda: Tiny)
    with pytest.raises(ConfigError, match=r"memory: 3 runs need about .* at most 2 runs fit"):
        check_memory(p)


def test_summary_dip_and_final_from_known_metrics():
    p = plan(iql_experiment(seeds=1), point_dataset())
    # offline evals at steps 10, 20; online at 0, 10, 20. No warm-up: the first update comes in
    # iteration 0; the window (0, 2] holds no evaluation, so the dip is the first one after it
    metrics = {
        "offline": {
            "eval_returns": np.array([[[5.0, 15.0], [20.0, 20.0]]]),
            "q_mean": np.array([[1.0, 2.0]]),  # a training metric, one mean per interval
        },
        "online": {
            "eval_returns": np.array([[[10.0, 10.0], [0.0, 0.0], [40.0, 50.0]]]),
            "act/offline_fraction": np.array([[0.5, 0.25]]),
            "q_mean": np.array([[3.0, 4.0]]),
        },
    }
    batch = BatchResult(metrics, None, 0.0, 0.0, 1, {})
    rows, curves = summarize(p, batch)
    (row,) = rows
    assert row["offline_final"] == pytest.approx(100 * 20 / 50)
    assert row["online_start"] == pytest.approx(100 * 10 / 50)
    assert row["online_dip"] == 0.0  # step 10; the switch (step 0, score 20) does not count
    assert row["online_final"] == pytest.approx(100 * 45 / 50)
    assert row["offline_fraction_mean"] == pytest.approx(0.375)
    assert [(c["phase"], c["step"]) for c in curves] == [
        ("offline", 10),
        ("offline", 20),
        ("online", 0),
        ("online", 10),
        ("online", 20),
    ]
    # each evaluation carries the mean of the interval that ends at it; none before updating
    q = [c["q_mean"] for c in curves]
    assert q[:2] == [1.0, 2.0] and np.isnan(q[2]) and q[3:] == [3.0, 4.0]
    assert "offline_fraction" not in curves[0] and "act/offline_fraction" not in curves[3]


def _online_scores(warmup: int, scores: list[float], online_steps: int = 100) -> dict:
    """The summary row of a one-seed run whose online evaluations (every 10 steps) score
    `scores` (normalized: returns of 50 = 100)."""
    run = RunConfig(
        offline_steps=20,
        online_steps=online_steps,
        offline_eval_every=10,
        online_eval_every=10,
        warmup_steps=warmup,
        batch_size=16,
        eval_episodes=1,
        progress=False,
    )
    p = plan(iql_experiment(seeds=1, run=run), point_dataset())
    returns = np.asarray(scores, np.float64)[None, :, None] / 2  # (run, eval, episode)
    metrics = {
        "offline": {"eval_returns": np.full((1, 2, 1), 25.0)},
        "online": {"eval_returns": returns},
    }
    (row,), _ = summarize(p, BatchResult(metrics, None, 0.0, 0.0, 1, {}))
    return row


def test_dip_counts_only_evaluations_after_the_first_update():
    """Warm-up 25: updates begin in iteration 25, so evaluations at 0 (the switch), 10 and 20
    saw none; the window is 25 < s <= 25 + 100 / 10: only step 30 (step 40's lower score is
    past it)."""
    #        step: 0    10   20   30   40   50   60   70   80   90   100
    scores = [90.0, 5.0, 6.0, 60.0, 1.0, 80.0, 80.0, 80.0, 80.0, 80.0, 80.0]
    row = _online_scores(25, scores)
    assert row["online_start"] == 90.0
    assert row["online_dip"] == 60.0
    assert row["online_final"] == 80.0
    # no warm-up: the window (0, 10] is step 10 alone (the switch does not count)
    assert _online_scores(0, scores)["online_dip"] == 5.0
    # a late warm-up: the window (92, 102] holds the last evaluation alone
    assert _online_scores(92, scores)["online_dip"] == 80.0
    short = RunConfig(online_steps=20, online_eval_every=10, warmup_steps=12, batch_size=16)
    assert dip_window(short) == (12, 14.0)
    # (12, 14] holds no evaluation: the first one after the update, step 20
    assert dip_mask([0, 10, 20], short).tolist() == [False, False, True]


SWEEP_ARGS = [
    "--method", "sac", "--run.protocol", "scratch", "--env.task", "point",
    "--env.episode-length", "20", "--run.online-steps", "60", "--run.online-eval-every", "30",
    "--run.batch-size", "16", "--run.eval-episodes", "2", "--run.no-progress",
    "--method-config", "hidden=8,8", "--seeds", "2", "--grid", "actor_lr=1e-3,3e-4",
]  # fmt: skip


@pytest.mark.xdist_group("sweep_cli")
def test_sweep_cli_writes_results_and_protects_them(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert sweep_main([*SWEEP_ARGS, "--out", str(out)]) == 0
    runs = (out / "runs.csv").read_text().splitlines()
    assert len(runs) == 1 + 4  # header + 2 seeds x 2 learning rates
    meta = json.loads((out / "meta.json").read_text())
    assert meta["experiment"]["grid"] == ["actor_lr=1e-3,3e-4"]
    assert meta["packages"]["jax"] and meta["compile_seconds"] > 0
    assert (out / "curves.png").stat().st_size > 0
    assert "raw return" in (out / "summary.md").read_text()  # no reference scores: said so

    assert not (out / "checkpoints").exists()  # removed once the results are written
    before = (out / "runs.csv").read_bytes()
    capsys.readouterr()
    assert sweep_main([*SWEEP_ARGS, "--out", str(out)]) == 0  # same arguments: nothing to do
    assert "nothing to do" in capsys.readouterr().out
    assert (out / "runs.csv").read_bytes() == before
    other = [*SWEEP_ARGS[:-2], "--grid", "actor_lr=1e-3", "--out", str(out)]
    assert sweep_main(other) == 2  # other arguments: refuses to overwrite
    assert "pass --force" in capsys.readouterr().err
    assert (out / "runs.csv").read_bytes() == before


def test_sweep_cli_rejects_bad_value_before_compiling(tmp_path, capsys):
    args = [*SWEEP_ARGS[:-2], "--grid", "actor_lr=-1", "--out", str(tmp_path / "x")]
    assert sweep_main(args) == 2
    assert "sac.actor_lr: must be > 0" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def episodes_dataset() -> FakeDataset:
    """Four episodes of 5 rows with returns 5, 1, 9, 3 (reward per row = the episode's value)."""
    values = np.repeat([1.0, 0.2, 1.8, 0.6], 5).astype(np.float32)
    n = values.size
    obs = np.arange(n, dtype=np.float32)[:, None].repeat(4, axis=1)
    ends = np.arange(n) % 5 == 4
    t = Transitions(
        obs=obs,
        action=np.zeros((n, 2), np.float32),
        reward=values,
        next_obs=obs + 1,
        terminated=np.zeros(n, bool),
        truncated=ends,
    )
    return FakeDataset("test/point/eps-v0", t, 0.0, 50.0, np.array([5.0, 1.0, 9.0, 3.0]))


@pytest.mark.parametrize(("n", "rows", "warmup"), [(2, [0, 10], 6), (0, [], 16)])
def test_seeded_protocol_starts_from_the_best_episodes_and_waits_for_a_batch(n, rows, warmup):
    """Top-2 episodes by return are the first (5) and the third (9); with batch 16 and 10 seed
    rows the first update is at iteration 6 (the buffer then holds 10 + 7 = 17 > 16 rows); with
    no seed episodes at iteration 16 (17 rows)."""
    run = RunConfig(
        offline_steps=20,
        online_steps=40,
        offline_eval_every=10,
        online_eval_every=20,
        batch_size=16,
        eval_episodes=2,
        protocol="seeded",
        seed_episodes=n,
        progress=False,
    )
    p = plan(iql_experiment(run=run, dataset="test/point/eps-v0"), episodes_dataset())
    assert p.trainer.run.warmup_steps == warmup
    assert p.trainer.online_rows == 5 * len(rows)
    if rows:
        first_rows = p.online_data.obs[::5, 0]
        np.testing.assert_array_equal(first_rows, rows)
    assert not p.trainer.run.batch_mix.gridable and p.trainer.run.batch_mix.uniform
