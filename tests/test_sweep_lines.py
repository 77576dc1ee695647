"""Sweeps of several lines (`jaxo2o.experiment.lines`, `python -m jaxo2o.sweep --methods ...
--tasks ... --kinds ... --tier ...`): the lines and their options, the datasets named from the
tier, one folder per line plus the combined files, the offline phase IQL and PEX share computed
once, and a finished sweep not run again."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jaxo2o.config import ConfigError, EnvConfig, RunConfig
from jaxo2o.core.transitions import Transitions
from jaxo2o.experiment import Experiment
from jaxo2o.experiment.lines import expand
from jaxo2o.sweep import main as sweep_main


def template(**kw) -> Experiment:
    run = RunConfig(offline_steps=20, online_steps=20, offline_eval_every=10,
                    online_eval_every=10, batch_size=8, eval_episodes=2)  # fmt: skip
    return Experiment(**({"method": "iql", "env": EnvConfig(task="point"), "run": run} | kw))


def test_lines_are_methods_by_tasks_by_kinds_with_their_own_options():
    exp = template(grid=("expectile=0.7,0.9", "pex.selection_inverse_temperature=1,10"),
                   hparams=("iql.tau=0.01",))  # fmt: skip
    lines = expand(exp, ("iql:union", "pex"), ("point",), ("medium", "expert"), "smoke", False)
    assert [(x.task, x.kind, x.label) for x in lines] == [
        ("point", "medium", "iql-union"),
        ("point", "medium", "pex-direct"),  # no protocol: the template's run.protocol
        ("point", "expert", "iql-union"),
        ("point", "expert", "pex-direct"),
    ]
    iql, pex = lines[0].experiment, lines[1].experiment
    assert iql.dataset == "jaxo2o/point/medium-smoke-v0" and iql.run.protocol == "union"
    assert iql.env.episode_length == 100  # from the smoke tier's point task
    assert iql.grid == ("expectile=0.7,0.9",) and iql.hparams == ("tau=0.01",)
    assert pex.grid == ("expectile=0.7,0.9", "selection_inverse_temperature=1,10")
    assert pex.hparams == () and pex.n_runs == 4 * 4
    assert lines[0].folder == "point/medium/iql-union"
    # without --tasks: the explicit form, one line
    (only,) = expand(template(dataset="test/point/fake-v0"), presets=False)
    assert only.experiment.dataset == "test/point/fake-v0" and only.kind == ""


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"methods": ("iql:sideways",)}, "unknown protocol 'sideways'"),
        ({"methods": ("nope",)}, "methods: 'nope': method: unknown"),
        ({"methods": ("iql", "iql")}, "given twice"),
        ({"tasks": ("hopper",), "kinds": ("medium",)}, "not in the smoke tier"),
        ({"tasks": ("point",), "kinds": ("diverse",)}, "point has no 'diverse' data"),
        ({"kinds": ("medium",)}, "name the task"),
        ({"tasks": ("point",)}, "needs data"),
        ({"tasks": ("point",), "kinds": ("medium",), "tier": "huge"}, "unknown 'huge'"),
        ({"methods": ("iql",), "grid": ("sac.actor_lr=1,2",)}, "not in this sweep"),
    ],
)
def test_bad_lines_are_refused_with_the_option_named(kw, message):
    exp = template(grid=kw.pop("grid", ()))
    with pytest.raises(ConfigError, match=message):
        expand(exp, **({"tier": "smoke"} | kw))


def write_point_dataset(ds_id: str) -> None:
    from jaxo2o.data.minari_io import write_dataset

    rng = np.random.default_rng(0)
    n = 200
    walk = np.cumsum(rng.normal(0, 0.05, (n + 1, 4)), axis=0).astype(np.float32)
    t = Transitions(  # one random walk cut into four episodes of 50 steps
        obs=walk[:-1],
        action=rng.uniform(-1, 1, (n, 2)).astype(np.float32),
        reward=rng.uniform(0, 1, n).astype(np.float32),
        next_obs=walk[1:],
        terminated=np.zeros(n, bool),
        truncated=(np.arange(n) % 50 == 49),
    )
    write_dataset(ds_id, t, description="test", ref_min_score=0.0, ref_max_score=50.0,
                  observation_size=4, action_size=2)  # fmt: skip


ARGS = [
    "--methods", "iql:union", "pex:direct", "--tasks", "point", "--kinds", "medium",
    "--tier", "smoke", "--run.offline-steps", "40", "--run.offline-eval-every", "20",
    "--run.online-steps", "40", "--run.online-eval-every", "20", "--run.warmup-steps", "10",
    "--run.batch-size", "16", "--run.eval-episodes", "2", "--run.no-progress",
    "--method-config", "hidden=16,16", "--seeds", "3",
]  # fmt: skip


@pytest.mark.xdist_group("pex_point")
def test_a_sweep_of_two_lines_shares_their_offline_phase(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    write_point_dataset("jaxo2o/point/medium-smoke-v0")
    out, cache = tmp_path / "sweep", tmp_path / "offline"
    args = [*ARGS, "--out", str(out), "--offline-cache", str(cache)]
    assert sweep_main([*args, "--dry-run"]) == 0
    said = capsys.readouterr().out
    assert (
        "one offline phase, computed once: point/medium/iql-union, point/medium/pex-direct" in said
    )
    assert not out.exists()

    assert sweep_main(args) == 0
    said = capsys.readouterr().out
    assert said.split("== point/medium/pex-direct")[1].count("offline phase shared") == 1
    iql = json.loads((out / "point/medium/iql-union/meta.json").read_text())
    pex = json.loads((out / "point/medium/pex-direct/meta.json").read_text())
    assert iql["offline_from"] == "computed" and pex["offline_from"] == "shared"
    assert len(list(cache.iterdir())) == 1
    rows = (out / "runs.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 3
    from jaxo2o.report.files import read_csv

    by_line = {}
    for r in read_csv(out / "runs.csv"):
        by_line.setdefault(r["line"], []).append(r["offline_final"])
    assert by_line["iql-union"] == by_line["pex-direct"]  # one offline phase
    summary = (out / "summary.md").read_text()
    assert "iql-union" in summary and "pex-direct" in summary and "rliable" in summary
    assert (
        json.loads((out / "meta.json").read_text())["lines"][1]["folder"]
        == "point/medium/pex-direct"
    )

    before = (out / "runs.csv").read_bytes()
    assert sweep_main(args) == 0  # finished lines are not run again
    assert (
        "all 2 lines' finished results of these arguments; nothing to do" in capsys.readouterr().out
    )
    assert (out / "runs.csv").read_bytes() == before
