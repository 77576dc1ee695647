"""benchmarks.offline_q: the end-of-offline mean Q and its change over the last quarter."""

from benchmarks.offline_q import offline_q, table


def _curves(label, values, seeds=(0, 1), task="t", kind="k"):
    return [
        {"label": label, "task": task, "kind": kind, "phase": "offline", "seed": s,
         "step": step, "q_mean": q + s}
        for s in seeds
        for step, q in values
    ]  # fmt: skip


def test_end_value_and_last_quarter_change_by_hand():
    # steps 10..40: 75% of 40 is 30, so the change is measured from step 30
    curves = _curves("iql-direct", [(10, 1.0), (20, 5.0), (30, 9.0), (40, 11.0)])
    curves.append({"label": "iql-direct", "task": "t", "kind": "k", "phase": "online",
                   "seed": 0, "step": 50, "q_mean": 1000.0})  # fmt: skip
    r = offline_q(curves, "iql-direct", "t", "k")
    assert r["steps"] == 40 and r["from_step"] == 30
    assert r["q_end"] == 11.5  # seeds 11 and 12
    assert abs(r["q_end_std"] - 0.7071) < 1e-3
    assert abs(r["last_quarter_change"] - (11.5 / 9.5 - 1)) < 1e-12
    assert offline_q(curves, "awac-direct", "t", "k") is None


def test_table_shows_the_share_of_the_plateau():
    curves = _curves("famo2o", [(10, 50.0), (20, 99.5)], seeds=(0,))
    text = table(curves, {("t", "k", "famo2o"): 199.0})
    assert "| t | k | famo2o (famo2o) | 20 | 99.5 (0) | +99.0% from 10 | 199 | 50% |" in text
