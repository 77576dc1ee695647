"""Aggregation estimators and safe result files."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from jaxo2o.provenance import provenance
from jaxo2o.report import aggregate, files
from jaxo2o.report.aggregate import bootstrap_ci, group_stats, iqm
from jaxo2o.report.tables import markdown_table


def test_iqm_known_values():
    assert iqm([1, 2, 3, 4]) == pytest.approx(2.5)  # middle half: 2, 3
    assert iqm([8, 1, 7, 2, 6, 3, 5, 4]) == pytest.approx(4.5)  # 3, 4, 5, 6
    # n = 5: rliable (scipy's trim_mean) cuts int(0.25 * 5) = 1 score at each end
    assert iqm([1, 2, 3, 4, 100]) == pytest.approx(3.0)
    assert iqm([1, 2, 3, 4, 100]) < np.mean([1, 2, 3, 4, 100])  # robust to the outlier
    assert np.isnan(iqm([]))


def test_bootstrap_interval_covers_and_shrinks():
    rng = np.random.default_rng(1)
    small = rng.normal(10.0, 1.0, 10)
    large = rng.normal(10.0, 1.0, 400)
    lo_s, hi_s = bootstrap_ci(small, np.mean)
    lo_l, hi_l = bootstrap_ci(large, np.mean)
    assert lo_s < np.mean(small) < hi_s
    assert lo_l < 10.0 < hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s) / 3  # ~ 1/sqrt(n) shrinkage
    assert all(np.isnan(bootstrap_ci([1.0], np.mean)))


def test_group_stats_and_table():
    rows = [
        {"m": "a", "score": 1.0},
        {"m": "a", "score": 3.0},
        {"m": "b", "score": 10.0},
        {"m": "b", "score": float("nan")},  # a missing evaluation is skipped, not averaged
    ]
    g = {x["m"]: x for x in group_stats(rows, ["m"], ["score"])}
    assert g["a"]["score_mean"] == 2.0 and g["a"]["score_std"] == pytest.approx(np.sqrt(2.0))
    assert g["b"]["score_mean"] == 10.0 and g["b"]["n"] == 2
    text = markdown_table(list(g.values()), ["m"], ["score"])
    assert "| a | 2 | 2.0 ± 1.4 |" in text


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "runs.csv"
    files.write_csv(path, [{"a": 1, "b": 2.5}])
    before = path.read_text()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", broken_replace)
    with pytest.raises(OSError):
        files.write_csv(path, [{"a": 9}])
    assert path.read_text() == before  # the old results are intact
    assert os.listdir(tmp_path) == ["runs.csv"]  # and no temporary file is left behind


def test_csv_round_trip_and_provenance(tmp_path):
    rows = [{"method": "iql", "seed": 0, "score": 12.5}, {"method": "pex", "seed": 1, "x": 3.0}]
    files.write_csv(tmp_path / "r.csv", rows)
    back = files.read_csv(tmp_path / "r.csv")
    assert back[0] == {"method": "iql", "seed": 0.0, "score": 12.5, "x": None}
    assert back[1]["x"] == 3.0 and back[1]["score"] is None
    p = provenance()
    assert p["packages"]["jax"] and p["machine"]["cpu_count"] >= 1
    files.write_json(tmp_path / "m.json", p)
    assert json.loads((tmp_path / "m.json").read_text())["git_revision"] == p["git_revision"]


def test_rliable_estimates_on_hand_made_matrices():
    # 8 runs x 2 tasks; IQM trims 4 of the 16 scores at each end: the middle 8 are 5..12
    a = np.arange(1, 17, dtype=float).reshape(8, 2)
    b = a - 100.0  # every run of b is below every run of a
    est = aggregate.interval_estimates({"a": a, "b": b}, gamma=10.0, reps=500)
    assert est["a"]["iqm"][0] == pytest.approx(np.mean(np.arange(5, 13)))
    assert est["a"]["mean"][0] == pytest.approx(8.5)
    # optimality gap: 10 - mean(min(score, 10)) = 10 - (1 + ... + 9 + 7 * 10) / 16
    assert est["a"]["optimality_gap"][0] == pytest.approx(10 - (45 + 70) / 16)
    for line in est.values():
        for point, lo, hi in line.values():
            assert lo <= point <= hi  # each CI contains its point estimate
    p, lo, hi = aggregate.improvement_probability(a, b, reps=200)
    assert p == 1.0 and lo == 1.0 and hi == 1.0  # a dominates b
    assert aggregate.improvement_probability(b, a, reps=200)[0] == 0.0
    assert aggregate.improvement_probability(a, a.copy(), reps=200)[0] == 0.5  # ties
    taus = np.array([0.0, 8.5, 20.0])
    prof, cis = aggregate.performance_profiles({"a": a}, taus, reps=100)
    np.testing.assert_allclose(prof["a"], [1.0, 0.5, 0.0])  # fraction of runs above each tau
    assert cis["a"].shape == (2, 3)


def test_diverged_rows_left_out_and_counted(tmp_path):
    from jaxo2o.report.stats import rliable_section

    rows = [
        {"label": "x", "task": "t", "online_final": float(v), "diverged_step": None}
        for v in range(6)
    ]
    rows += [{"label": "y", "task": "t", "online_final": 1e9, "diverged_step": 300.0}]
    rows += [{"label": "y", "task": "t", "online_final": 2.0, "diverged_step": None}] * 3
    kept, diverged = aggregate.split_diverged(rows)
    assert len(kept) == 9 and len(diverged) == 1
    text = rliable_section(rows, "label", ["task"], "online_final", tmp_path, pairs=[("x", "y")])
    assert "1 of 10 runs diverged, excluded" in text
    assert "| y | 3 x 1 | 2.0 [2.0, 2.0]" in text  # the 1e9 of the diverged run is not in it
    assert {"intervals.png", "improvement.png", "profiles.png"} <= {
        f.name for f in tmp_path.iterdir()
    }


def test_pairwise_improvement_equals_rliables_probability_of_improvement():
    from rliable import metrics

    rng = np.random.default_rng(3)
    for n, m, tasks in ((4, 4, 3), (5, 3, 2), (6, 6, 1)):
        x = rng.integers(0, 5, (n, tasks)).astype(float)  # small integers: many ties
        y = rng.integers(0, 5, (m, tasks)).astype(float)
        want = metrics.probability_of_improvement(x, y)
        assert aggregate.pairwise_improvement(x, y) == pytest.approx(want, abs=1e-12)


def test_intervals_do_not_depend_on_what_ran_before():
    x = np.random.default_rng(2).normal(0.0, 1.0, 30)
    first = bootstrap_ci(x, np.mean)
    np.random.seed(123)  # rliable draws from numpy's global generator
    np.random.standard_normal(7)
    assert bootstrap_ci(x, np.mean) == first


def test_score_bands_std_and_bootstrap_ci_by_hand():
    from jaxo2o.report.plots import score_bands

    curves = [
        {"label": "a", "phase": "offline", "step": 10, "score": s} for s in (1.0, 3.0, 5.0, 7.0)
    ] + [{"label": "a", "phase": "online", "step": 5, "score": s} for s in (2.0, 2.0, 2.0, 2.0)]
    switch, lines = score_bands(curves, ["label"], "std")
    xs, mean, lo, hi = lines["a"]
    assert switch == 10 and list(xs) == [10, 15]  # online steps follow the offline phase
    assert mean[0] == 4.0 and abs(hi[0] - 4.0 - np.std([1, 3, 5, 7])) < 1e-12
    _, lines = score_bands(curves, ["label"], "ci")
    _, mean, lo, hi = lines["a"]
    # a bootstrap CI of the mean of (1, 3, 5, 7) lies within the data's range around the mean
    assert 1.0 <= lo[0] < 4.0 < hi[0] <= 7.0
    assert lo[1] == hi[1] == 2.0  # identical runs: no width
    with pytest.raises(ValueError, match="band"):
        score_bands(curves, ["label"], "iqr")
