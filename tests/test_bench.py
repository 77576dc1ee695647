"""`make bench`'s bookkeeping: which finished experiments it may reuse, PEX's action-share table
from hand-made rows, and the settings the suite gives its lines."""

from __future__ import annotations

import dataclasses
import json

import pytest

from benchmarks.act_share import share_table
from benchmarks.run import experiment_for, final_metric, offline_experiment, offline_table
from benchmarks.suite import SUITES
from jaxo2o.config import EnvConfig
from jaxo2o.experiment import build_method, parse_pairs
from jaxo2o.experiment.runner import finished


def _bench_experiment(label: str, progress: bool = False):
    suite = SUITES["smoke"]
    spec = next(s for s in suite.methods if s.label == label)
    exp = experiment_for(suite, spec, EnvConfig(task="point", episode_length=100), "ds/x-v0")
    return dataclasses.replace(exp, run=dataclasses.replace(exp.run, progress=progress))


def _finish(folder, exp) -> None:
    folder.mkdir(parents=True)
    (folder / "runs.csv").write_text("seed\n0\n")
    meta = {"experiment": json.loads(json.dumps(dataclasses.asdict(exp)))}
    (folder / "meta.json").write_text(json.dumps(meta))


def test_finished_experiment_is_reused_whatever_its_progress_bar(tmp_path):
    folder = tmp_path / "pex"
    exp = _bench_experiment("pex", progress=True)
    assert not finished(folder, exp)  # nothing there yet
    _finish(folder, exp)
    assert finished(folder, exp)
    assert finished(folder, _bench_experiment("pex", progress=False))  # the bar changes no number
    assert not finished(folder, dataclasses.replace(exp, seeds=exp.seeds + 1))
    assert not finished(folder, _bench_experiment("iql-direct", progress=True))
    (folder / "runs.csv").unlink()  # an interrupted experiment is run again
    assert not finished(folder, exp)


def test_pex_offline_action_share_table():
    # 2 seeds x 10 intervals of 100 steps; seed 0 falls 1.0 -> 0.1, seed 1 stays at 0.5; a second
    # dataset with 4 intervals of 50 steps (another online budget) in the same table
    rows = [
        {"task": "t", "kind": "k", "seed": s, "interval_end": 100 * (j + 1), "offline_fraction": v}
        for s, values in ((0, [1.0 - 0.1 * j for j in range(10)]), (1, [0.5] * 10))
        for j, v in reversed(list(enumerate(values)))  # row order must not matter
    ] + [
        {"task": "u", "kind": "k", "seed": s, "interval_end": 50 * (j + 1), "offline_fraction": 0.2}
        for s in (0, 1)
        for j in range(4)
    ]
    text = share_table(rows, warmup=50)
    (row,) = [line for line in text.splitlines() if line.startswith("| t | k |")]
    cells = [c.strip() for c in row.strip("|").split("|")][2:]
    # marks at intervals 0, 1 (n/10), 2 (n/4), 5 (n/2), 9 (last), each naming its last step;
    # sample std over seeds (ddof 1): interval 0: mean(1.0, 0.5) = 0.75, std 0.5/sqrt(2) = 0.354;
    # last: mean(0.1, 0.5) = 0.3, std 0.4/sqrt(2) = 0.283
    assert cells[0] == "0.75 ± 0.35 (≤100)"
    assert [c.split("(")[1] for c in cells[1:4]] == ["≤200)", "≤300)", "≤600)"]
    assert cells[4] == "0.30 ± 0.28 (≤1000)"
    # whole phase: seed 0 mean 0.55, seed 1 0.5 -> 0.525 ± 0.035 (2-decimal rounding either way)
    mean, std = (float(x) for x in cells[5].split(" ± "))
    assert mean == pytest.approx(0.525, abs=0.006) and std == pytest.approx(0.0354, abs=0.006)
    (row,) = [line for line in text.splitlines() if line.startswith("| u | k |")]
    cells = [c.strip() for c in row.strip("|").split("|")][2:]
    assert cells[0] == "0.20 ± 0.00 (≤50)" and cells[4] == "0.20 ± 0.00 (≤200)"
    assert share_table([], 50) == ""


def test_offline_table_reports_scores_and_iql_weight_ess():
    curves = [
        {"phase": "offline", "seed": s, "inverse_temperature": b, "step": step, "weight_ess": e}
        for s in (0.0, 1.0)
        for b in (0.0, 3.0)
        for step, e in ((5, 0.9), (10, 1.0 if b == 0 else 0.2 + 0.2 * s))
    ] + [{"phase": "online", "seed": 0.0, "inverse_temperature": 3.0, "weight_ess": 7.0}]
    ess = final_metric(curves, "weight_ess")
    assert ess[(1.0, 3.0)] == pytest.approx(0.4) and ess[(0.0, 0.0)] == 1.0  # last offline
    rows = [
        {"task": "t", "kind": "k", "label": "bc" if b == 0 else "iql", "seed": s,
         "offline_final": 10.0 * (1 + s) + b, "weight_ess": ess[(s, b)]}
        for s in (0.0, 1.0)
        for b in (0.0, 3.0)
    ]  # fmt: skip
    text = offline_table(rows, {("t", "k"): 12.34})
    (line,) = [x for x in text.splitlines() if x.startswith("| t |")]
    # BC 10, 20 -> 15.0 ± 7.1 (ddof 1); IQL 13, 23 -> 18.0 ± 7.1; ESS 0.2, 0.4 -> 0.30 ± 0.14
    assert line == "| t | k | 12.3 | 15.0 ± 7.1 | 18.0 ± 7.1 | 0.30 ± 0.14 |"


def test_compare_puts_each_cell_against_the_reference_ci():
    from benchmarks.compare import compare, expected_inside, summary

    def rows(values, label="pex"):
        base = {"task": "t", "kind": "k", "label": label, "offline_final": 50.0}
        return [base | {"seed": i, "online_dip": v - 10, "online_final": v}
                for i, v in enumerate(values)]  # fmt: skip

    ref = rows([10.0, 20.0, 30.0, 40.0]) + rows([5.0, 5.0], label="iql")
    mine = rows([24.0, 26.0, 25.0, 25.0]) + rows([60.0, 70.0, 80.0, 90.0], label="awac")
    text, counts = compare(mine, ref)
    cells = {tuple(c.strip() for c in line.strip("|").split("|"))[2:4]: line
             for line in text.splitlines()[2:]}  # fmt: skip
    # pex final: reference 25 with a CI inside [10, 40]; this run 25.0: inside
    assert cells[("pex", "final")].endswith("| 25.0 | inside |")
    assert cells[("pex", "end of offline")].endswith("| 50.0 | inside |")  # CI [50, 50]
    assert "not in this run" in cells[("iql", "final")]
    assert "not in the reference" in cells[("awac", "final")]
    assert counts == {"inside": 3, "outside": 0, "missing": 6}
    _, counts = compare(rows([100.0, 101.0, 102.0, 103.0]), ref)
    assert counts["outside"] == 2 and counts["inside"] == 1  # final and dip above, offline equal
    assert 0.6 < expected_inside(4) < 0.72 < expected_inside(8) < 0.8  # see the simulation
    assert summary({"inside": 1, "outside": 2, "missing": 0}, 4).startswith("1 of 3 cells (33%)")


def test_budget_study_reach_step_is_where_q_stays_near_its_plateau():
    import numpy as np

    from benchmarks.budget_study import reach_step

    steps = np.arange(1, 7) * 100
    q = np.array([0.0, 0.5, 0.97, 1.02, 0.99, 1.0])
    assert reach_step(steps, q, 1.0, 0.05) == 300
    assert reach_step(steps, np.array([1.0, 0.5, 1.0, 1.0, 1.0, 1.0]), 1.0, 0.05) == 300
    assert reach_step(steps, np.array([1.0] * 5 + [1.2]), 1.0, 0.05) is None
    assert reach_step(steps, -q, -1.0, 0.05) == 300  # negative Q (mazes' r - 1)


def test_claims_read_the_offline_table_and_pex_share_from_a_bench_folder(tmp_path):
    from benchmarks.claims import load_rows, share_rows
    from jaxo2o.report.files import write_csv

    pex = tmp_path / "runs" / "t" / "k" / "pex"
    pex.mkdir(parents=True)
    (pex / "meta.json").write_text(json.dumps({"experiment": {"run": {"warmup_steps": 150}}}))
    write_csv(pex / "runs.csv", [{"seed": 0, "online_final": 1.0}])
    shares = ((100, 0.9), (200, 0.8), (300, 0.5), (400, 0.2))
    act = [{"seed": 0, "interval_end": e, "offline_fraction": f} for e, f in shares]
    write_csv(pex / "act.csv", act)
    offline = tmp_path / "runs" / "t" / "k" / "offline"
    offline.mkdir(parents=True)
    write_csv(offline / "runs.csv", [{"seed": 0, "inverse_temperature": b, "offline_final": v}
                                     for b, v in ((0.0, 10.0), (3.0, 20.0))])  # fmt: skip
    shares = {r["label"]: r["share"] for r in share_rows(tmp_path)}
    # the first interval ending after the 150 warm-up steps is (100, 200]: 0.8; the last 0.2
    assert shares == {"pex-share-early": 0.8, "pex-share-late": 0.2}
    labels = {(r["label"], r.get("offline_final")) for r in load_rows(tmp_path, tmp_path / "x")}
    assert ("bc", 10.0) in labels and ("iql-offline", 20.0) in labels


def _built(exp):
    options = parse_pairs(exp.method_config, "method_config")
    return build_method(exp.method, options, exp.run.offline_steps)


@pytest.mark.parametrize("domain", ["locomotion", "maze"])
def test_finetuning_lines_use_a_constant_actor_rate_and_the_offline_table_the_cosine(domain):
    """Official IQL: `antmaze_finetune_config.py` (no decay) for every run that fine-tunes,
    PEX's offline phase included (it shares its offline result with iql-direct); the offline
    recipe (cosine over the offline steps) for the offline-only IQL-vs-BC table."""
    suite = SUITES["quick"]
    env = EnvConfig(task="point", episode_length=100)

    def line(label: str):
        spec = next(s for s in suite.methods if s.label == label)
        return _built(experiment_for(suite, spec, env, "ds/x-v0", domain=domain))

    for label in ("iql-direct", "iql-buffer", "iql-union", "pex"):
        assert line(label).config.actor_schedule == "constant", label
    # PEX's offline phase is the same IQL as iql-direct's, so they share one offline result
    assert line("pex").config.iql_config() == line("iql-direct").config
    offline = _built(offline_experiment(suite, env, "ds/x-v0", domain))
    assert offline.config.actor_schedule == "cosine"
    assert offline.config.offline_steps == suite.budget_of(domain).offline_steps


def test_pex_and_the_lines_of_its_script_warm_up_as_the_script():
    """PEX's main_online.py collects 5,000 composite-policy steps (--initial_collection_steps)
    before its first update, in every one of its lines; the quick tier keeps the count, the
    smoke tier scales it to half its online phase. The other lines keep the short warm-up."""
    from benchmarks.suite import Budget, MethodSpec

    env = EnvConfig(task="point", episode_length=100)
    pex_lines = {"pex", "iql-direct", "iql-buffer"}
    expected = {
        ("quick", "locomotion"): (5_000, 500),
        ("quick", "maze"): (5_000, 500),
        ("smoke", "locomotion"): (250, 50),
    }
    for (tier, domain), (pex, short) in expected.items():
        suite = SUITES[tier]
        for spec in suite.methods:
            warmup = experiment_for(suite, spec, env, "ds/x-v0", domain=domain).run.warmup_steps
            if spec.label in pex_lines | {"rlpd", "wsrl"}:  # RLPD's and WSRL's 5,000 too
                assert warmup == pex, (tier, domain, spec.label)
            elif spec.label in ("calql", "cql", "wsrl-no-warmup"):  # from the first step
                assert warmup == 0, (tier, domain, spec.label)
            elif spec.method != "aca":  # ACA: updates begin once the seeded buffer holds a batch
                assert warmup == short, (tier, domain, spec.label)
    assert SUITES["paper"].budget.pex_warmup_steps == 5_000
    assert Budget(10, 10, 5, 5, 1).warmup_of(MethodSpec("x", "iql")) == 0  # no warm-up
    with pytest.raises(ValueError, match="warmup"):
        MethodSpec("x", "iql", warmup="long")


def test_baseline_lines_take_the_official_domain_settings_and_their_ratios():
    """Cal-QL, CQL, RLPD and WSRL lines: the method's official per-domain settings (widths are
    the suite's), the official update-to-data ratios in the paper tier, the stated one in quick."""
    env = EnvConfig(task="point", episode_length=100)
    for tier, ratios in (("quick", (2, 2)), ("paper", (20, 4))):
        suite = SUITES[tier]
        specs = {s.label: s for s in suite.methods}
        for label, g in zip(("rlpd", "wsrl"), ratios, strict=True):
            for domain in ("locomotion", "maze"):
                exp = experiment_for(suite, specs[label], env, "ds/x-v0", domain=domain)
                assert exp.run.updates_per_step == g, (tier, label)
        wsrl = experiment_for(suite, specs["wsrl"], env, "ds/x-v0", domain="maze")
        assert wsrl.run.offline_fraction == 0.0 and not wsrl.run.warmup_random
        rlpd = experiment_for(suite, specs["rlpd"], env, "ds/x-v0", domain="maze")
        assert rlpd.run.protocol == "buffer" and rlpd.run.offline_steps == 0
        assert rlpd.run.warmup_random
        calql = experiment_for(suite, specs["calql"], env, "ds/x-v0", domain="maze")
        assert "reward_normalization=plus_minus_five" in calql.method_config
        assert calql.method_config[0] == f"hidden={suite.width},{suite.width}"
        assert [o.partition("=")[0] for o in calql.method_config].count("hidden") == 1
        assert not any(o.startswith("actor_hidden") for o in calql.method_config)
        assert calql.run.offline_fraction == 0.5 and calql.run.updates_per_step == 1


def test_quick_cql_family_pretrains_shorter_and_aca_scaled_differs_from_aca_only_in_w():
    """The quick tier's named deviation: Cal-QL, CQL and both WSRL lines pretrain 20k (IDP) /
    15k (mazes) steps, the rest of their budget the tier's; the claims' other lines keep the
    tier's offline phase. aca-scaled is ACA with `w_schedule=scaled` and nothing else changed."""
    suite = SUITES["quick"]
    specs = {s.label: s for s in suite.methods}
    env = EnvConfig(task="point", episode_length=100)
    for domain, steps, full in (("locomotion", 20_000, 80_000), ("maze", 15_000, 35_000)):
        for label in ("calql", "cql", "wsrl", "wsrl-no-warmup"):
            run = experiment_for(suite, specs[label], env, "ds/x-v0", domain=domain).run
            assert run.offline_steps == steps, (label, domain)
            assert run.online_steps == suite.budget_of(domain).online_steps
        for label in ("iql-direct", "aca", "aca-scaled", "sac-direct"):
            run = experiment_for(suite, specs[label], env, "ds/x-v0", domain=domain).run
            assert run.offline_steps == full, (label, domain)
        aca = experiment_for(suite, specs["aca"], env, "ds/x-v0", "medium", domain)
        scaled = experiment_for(suite, specs["aca-scaled"], env, "ds/x-v0", "medium", domain)
        assert scaled.method_config == (*aca.method_config, "w_schedule=scaled")
        assert (scaled.hparams, scaled.run) == (aca.hparams, aca.run)
    wsrl = experiment_for(suite, specs["wsrl"], env, "ds/x-v0", domain="maze")
    plain = experiment_for(suite, specs["wsrl-no-warmup"], env, "ds/x-v0", domain="maze")
    assert (wsrl.run.warmup_steps, plain.run.warmup_steps) == (5_000, 0)
    assert dataclasses.replace(plain.run, warmup_steps=5_000) == wsrl.run


def test_awac_lines_normalize_observations_as_corl():
    suite = SUITES["quick"]
    spec = next(s for s in suite.methods if s.label == "awac-direct")
    env = EnvConfig(task="point", episode_length=100)
    for domain in ("locomotion", "maze"):
        exp = experiment_for(suite, spec, env, "ds/x-v0", domain=domain)
        assert _built(exp).config.obs_normalization == "dataset"
