"""Dataset fingerprints (`jaxo2o.data.fingerprint`) and the bench's check against the
reference's (`benchmarks.dataset_check`, `benchmarks.compare`)."""

from __future__ import annotations

import json

import numpy as np

from benchmarks.compare import compare, summary
from benchmarks.dataset_check import dataset_report, write_fingerprints
from jaxo2o.core.transitions import Transitions
from jaxo2o.data.dataset import OfflineDataset
from jaxo2o.data.fingerprint import differences, fingerprint


def dataset(obs_shift: float = 0.0) -> OfflineDataset:
    rng = np.random.default_rng(0)
    n = 40
    obs = rng.normal(size=(n, 3)).astype(np.float32)
    obs[7, 1] += np.float32(obs_shift)
    t = Transitions(obs=obs, action=rng.uniform(-1, 1, (n, 2)).astype(np.float32),
                    reward=np.ones(n, np.float32), next_obs=obs + 1,
                    terminated=np.zeros(n, bool), truncated=np.arange(n) % 10 == 9)  # fmt: skip
    # four episodes of 10 rows, return 10 each: with reference (0, 20) the data score is 50
    return OfflineDataset("t/x/medium-q-v0", t, "x", "medium", 0.0, 20.0, np.full(4, 10.0))


def test_fingerprint_counts_scores_and_tells_one_ulp_apart():
    a = fingerprint(dataset())
    assert (a["rows"], a["episodes"], a["data_score"]) == (40, 4, 50.0)
    assert a == fingerprint(dataset())  # deterministic
    one_ulp = float(np.spacing(np.float32(dataset().transitions.obs[7, 1])))
    b = fingerprint(dataset(one_ulp))
    assert b["hash"] != a["hash"] and len(a["hash"]) == 16
    assert differences(b, a) == [f"hash {b['hash']} vs {a['hash']}"]
    assert differences(a, a) == []
    # a field the reference did not record is not compared
    old = {"rows": 40, "data_score": 35.2, "hash": None}
    assert differences(a, old) == ["data score 50.0 vs 35.2"]


def rows(task: str, values: list[float]) -> list[dict]:
    return [{"task": task, "kind": "medium", "label": "m", "seed": s, "offline_final": v,
             "online_dip": v, "online_final": v} for s, v in enumerate(values)]  # fmt: skip


def test_cells_on_other_data_are_set_apart(tmp_path):
    mine, ref = tmp_path / "mine", tmp_path / "ref"
    fa = {"task": "a", "kind": "medium"} | fingerprint(dataset())
    fb = {"task": "b", "kind": "medium"} | fingerprint(dataset())
    write_fingerprints(ref, {"ds/a": fa, "ds/b": fb})
    other = {"task": "b", "kind": "medium"} | fingerprint(dataset(0.5))
    write_fingerprints(mine, {"ds/a": fa, "ds/b": other})
    text, apart = dataset_report(mine, ref)
    assert apart == {("b", "medium")}
    assert "`ds/b` DIFFERS from the reference's: hash" in text and "ds/a" not in text
    assert json.loads((mine / "datasets.json").read_text())["datasets"]["ds/a"] == fa

    reference = rows("a", [1, 2, 3, 4]) + rows("b", [1, 2, 3, 4])
    user = rows("a", [2, 3, 2, 3]) + rows("b", [50, 50, 50, 50])
    table, counts = compare(user, reference, apart)
    assert (counts["inside"], counts["outside"]) == (3, 0)  # task a: 2.5 inside, 3 scores
    assert (counts["apart_inside"], counts["apart_outside"]) == (0, 3)
    main, _, separate = table.partition("### Cells on datasets that differ")
    assert "| a |" in main and "| b |" not in main and "| b |" in separate
    assert "Apart, on datasets that differ" in summary(counts, 4)
    # the reference recorded no hash: cannot be checked, also apart
    write_fingerprints(ref, {"ds/a": fa | {"hash": None}, "ds/b": fb})
    write_fingerprints(mine, {"ds/a": fa, "ds/b": fb})
    text, apart = dataset_report(mine, ref)
    assert apart == {("a", "medium")} and "no content hash" in text


def test_the_bench_says_plainly_when_a_dataset_is_not_the_references(tmp_path):
    from benchmarks.dataset_check import differs_line

    ref = {"task": "a", "kind": "medium"} | fingerprint(dataset())
    write_fingerprints(tmp_path, {"ds/a": ref})
    assert differs_line("ds/a", ref, tmp_path) == ""
    said = differs_line("ds/a", fingerprint(dataset(0.5)), tmp_path)
    assert said.startswith("DATASET DIFFERS") and "ds/a: hash" in said
    assert differs_line("ds/other", ref, tmp_path) == ""
