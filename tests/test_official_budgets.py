"""The paper tier runs each line on its method's official budget and cadence; the quick tier's
committed experiments are unchanged (every one of them is still `finished` for this revision)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks.aca_schedule import end_of_schedule
from benchmarks.run import BenchArgs, experiment_for, main, suite_lines
from benchmarks.suite import SUITES, domain_of
from jaxo2o.config import EnvConfig
from jaxo2o.data.dataset import dataset_id
from jaxo2o.data.tiers import TIERS, StandardData
from jaxo2o.experiment.runner import finished

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("domain", ["locomotion", "maze"])
def test_paper_tier_lines_use_their_official_budgets(domain):
    suite = SUITES["paper"]
    env = EnvConfig(task="point", episode_length=100)
    run = {
        s.label: experiment_for(suite, s, env, "ds/x-v0", domain=domain).run for s in suite.methods
    }
    for label in ("aca", "sac-direct", "aca-scaled"):  # run_sacml.py 500k; run_aca.py 100k
        r = run[label]
        assert (r.offline_steps, r.online_steps) == (500_000, 100_000), label
        assert (r.offline_eval_every, r.online_eval_every, r.eval_episodes) == (1000, 1000, 10)
        assert r.warmup_steps == 0 and r.protocol == "seeded"
    for label in ("famo2o", "iql-union"):  # official: updates from the first online step
        assert run[label].warmup_steps == 0, label
        assert (run[label].offline_steps, run[label].online_steps) == (1_000_000, 1_000_000)
    for label in ("pex", "iql-direct", "iql-buffer"):  # PEX's --initial_collection_steps
        assert run[label].warmup_steps == 5_000, label
    # Cal-QL/CQL (run_antmaze.sh; locomotion: WSRL's port), RLPD (README), WSRL (launch scripts)
    calql = (1_000_000, 1_000_000, 2_000) if domain == "maze" else (250_000, 500_000, 20_000)
    for label in ("calql", "cql"):
        r = run[label]
        assert (r.offline_steps, r.online_steps, r.online_eval_every) == calql, label
        assert r.eval_episodes == 20 and r.warmup_steps == 0
    rlpd = run["rlpd"]
    assert (rlpd.offline_steps, rlpd.warmup_steps, rlpd.online_eval_every) == (0, 5_000, 5_000)
    assert rlpd.online_steps == (300_000 if domain == "maze" else 250_000)
    for label, warmup in (("wsrl", 5_000), ("wsrl-no-warmup", 0)):
        r = run[label]
        assert r.offline_steps == (1_000_000 if domain == "maze" else 250_000)
        assert (r.online_steps, r.online_eval_every, r.eval_episodes) == (500_000, 20_000, 20)
        assert r.warmup_steps == warmup
    # each claim's pair shares one budget
    pairs = (("pex", "iql-direct"), ("famo2o", "iql-union"), ("aca", "sac-direct"))
    pairs += (("aca-scaled", "sac-direct"), ("calql", "cql"), ("wsrl", "wsrl-no-warmup"))
    for x, y in pairs:
        assert run[x].online_steps == run[y].online_steps
        assert run[x].online_eval_every == run[y].online_eval_every


def test_paper_tier_names_the_v5_tasks_on_their_standard_datasets():
    """Locomotion in the paper tier: Gymnasium's v5 ids on Minari's `mujoco/<body>/<kind>-v0`,
    each line on its method's official budget."""
    tier, suite = TIERS["paper"], SUITES["paper"]
    standard = [t for t in tier.tasks if isinstance(t, StandardData)]
    bodies = ["Hopper-v5", "Walker2d-v5", "HalfCheetah-v5", "Ant-v5"]
    assert [t.task for t in standard[:4]] == bodies
    lines = suite_lines(BenchArgs(tier="paper"), suite, standard[:1], list(suite.methods))
    datasets = {line.experiment.dataset for line in lines}
    assert datasets == {f"mujoco/hopper/{k}-v0" for k in ("simple", "medium", "expert")}
    by_label = {line.label: line.experiment for line in lines if line.kind == "medium"}
    assert by_label["famo2o"].env.task == "Hopper-v5"
    assert by_label["famo2o"].env.episode_length == 1000
    assert (by_label["aca"].run.offline_steps, by_label["aca"].run.online_steps) == (
        500_000,
        100_000,
    )
    assert by_label["famo2o"].run.online_steps == 1_000_000


def test_paper_tier_runs_antmaze_on_minaris_d4rl_sets_with_the_kinds_each_has():
    """AntMaze in the paper tier: the five AntMaze v4 mazes on `D4RL/antmaze/*-v1`, only the
    kinds each maze has (six datasets), on the maze budget, 100 evaluation episodes, the time
    limits 700 (umaze) / 1000."""
    tier, suite = TIERS["paper"], SUITES["paper"]
    ant = [t for t in tier.tasks if isinstance(t, StandardData) and t.task.startswith("AntMaze")]
    assert [(t.task, t.episode_length) for t in ant] == [
        ("AntMaze_UMaze-v4", 700),
        ("AntMaze_Medium-v4", 1000),
        ("AntMaze_Medium_Diverse_GR-v4", 1000),
        ("AntMaze_Large-v4", 1000),
        ("AntMaze_Large_Diverse_GR-v4", 1000),
    ]
    iql = [s for s in suite.methods if s.label == "iql-direct"]
    lines = suite_lines(BenchArgs(tier="paper", skip_offline_table=True), suite, ant, iql)
    assert sorted(line.experiment.dataset for line in lines) == sorted(
        f"D4RL/antmaze/{name}-v1"
        for name in (
            "large-diverse",
            "large-play",
            "medium-diverse",
            "medium-play",
            "umaze",
            "umaze-diverse",
        )  # fmt: skip
    )
    run = lines[0].experiment.run
    assert (run.offline_steps, run.online_steps, run.eval_episodes) == (1_000_000, 1_000_000, 100)
    assert lines[0].preset["name"] == "iql-finetune/maze"


def test_paper_tier_without_the_standard_datasets_stops_with_one_line(
    tmp_path, monkeypatch, capsys
):
    """Nothing is fetched or made: a missing dataset is named, with the command that gets it,
    before anything runs or is written."""
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    out = tmp_path / "out"
    code = main(["--tier", "paper", "--tasks", "Hopper-v5", "Ant-v5", "--kinds", "medium",
                 "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "mujoco/hopper/medium-v0 and 1 more are not in the Minari root" in err[0]
    assert "minari download mujoco/hopper/medium-v0 mujoco/ant/medium-v0" in err[0]
    assert not out.exists()


def test_quick_tier_committed_experiments_are_still_finished():
    """A bench run at this revision reuses none of the committed reference's folders only if
    the suite changed what a line runs: every line of the quick suite must have its committed
    experiment, and each must match its rebuild."""
    suite, tier = SUITES["quick"], TIERS["quick"]
    checked = 0
    for t in tier.tasks:
        if t.task not in suite.tasks:
            continue
        env = EnvConfig(task=t.task, backend=t.backend, episode_length=t.episode_length)
        domain = domain_of(t)
        for kind in suite.kinds_of(domain)[0]:
            for spec in suite.methods:
                folder = REPO / "results/quick/runs" / t.task / kind / spec.label
                exp = experiment_for(suite, spec, env, dataset_id(t.task, kind, "quick"), kind,
                                     domain)  # fmt: skip
                exp = replace(exp, run=replace(exp.run, progress=False))
                assert finished(folder, exp), folder
                checked += 1
    assert checked == 5 * len(suite.methods)


def test_aca_schedule_end_values_by_hand():
    exp = json.loads((REPO / "results/quick/runs/inverted_double_pendulum/medium/aca/meta.json")
                     .read_text())["experiment"]  # fmt: skip
    # seeded, no seed episodes, batch 64: the first update in iteration 64 -> 14,936 updates
    schedule, k, updates, w = end_of_schedule(exp)
    assert (schedule, k, updates) == ("absolute", 40.0, 14_936)
    assert w == pytest.approx(1 - 14_936 / 40_000)  # 0.6266
    scaled = exp | {"method_config": [*exp["method_config"], "w_schedule=scaled"]}
    schedule, k, updates, w = end_of_schedule(scaled)
    assert (schedule, k) == ("scaled", pytest.approx(6.0)) and w == 0.5
