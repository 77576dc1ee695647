"""The smoke tier's datasets made for real (SAC on `point`), the cache, and the CLI.

One generation (one SAC compile, ~1 min on 2 busy cores) is shared by the tests of this file
through a module fixture; everything goes to a temporary MINARI_DATASETS_PATH.
"""

from __future__ import annotations

import numpy as np
import pytest

from jaxo2o.data import KINDS, cli, dataset_id, generate, load_dataset
from jaxo2o.data.generate import ensure_datasets, get_tier
from jaxo2o.data.minari_io import dataset_folder

pytestmark = pytest.mark.xdist_group("data_smoke")

TASK = "point"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("minari")
    mp = pytest.MonkeyPatch()
    mp.setenv("MINARI_DATASETS_PATH", str(root))
    logs: list[str] = []
    ids = ensure_datasets("smoke", progress=False, log=logs.append)
    yield {"root": root, "ids": ids, "logs": logs, "mp": mp}
    mp.undo()


@pytest.fixture
def datasets(smoke):
    return {
        k: load_dataset(dataset_id(TASK, k, "smoke"), observation_size=4, action_size=2)
        for k in KINDS
    }


def test_every_kind_is_made_with_shared_reference_scores(smoke, datasets):
    assert smoke["ids"] == [dataset_id(TASK, k, "smoke") for k in KINDS]
    refs = {(d.ref_min_score, d.ref_max_score) for d in datasets.values()}
    assert len(refs) == 1
    lo, hi = refs.pop()
    assert hi > lo
    ref = datasets["expert"].metadata["reference"]
    assert ref["random"]["episodes"] >= 100 and ref["expert"]["episodes"] >= 100
    assert ref["random"]["return_mean"] == lo and ref["expert"]["return_mean"] == hi
    for k, d in datasets.items():
        assert (d.task, d.kind, d.tier) == (TASK, k, "smoke")
        assert d.recipe_hash == generate.recipe_hash(get_tier("smoke").task(TASK), k)
        # the description carries the recipe and the data's normalized score
        import json

        meta = json.loads((dataset_folder(d.dataset_id) / "data" / "metadata.json").read_text())
        score = np.mean(d.normalized_returns())
        assert f"normalized score {score:.1f}" in meta["description"]
        assert meta["ref_min_score"] == lo and meta["ref_max_score"] == hi


def test_sizes_and_composition(datasets):
    data = get_tier("smoke").task(TASK)
    for k in ("random", "medium", "expert"):
        n = datasets[k].size
        assert data.size_of(k) - data.episode_length < n <= data.size_of(k), k
    med, exp, me = datasets["medium"], datasets["expert"], datasets["medium-expert"]
    for a, b, c in zip(med.transitions, exp.transitions, me.transitions, strict=True):
        assert np.array_equal(np.concatenate([a, b]), c)  # medium then expert, bit for bit
    medium_step = med.metadata["behaviour"]["medium_step"]
    assert datasets["medium-replay"].size == medium_step * data.sac.num_envs
    assert medium_step > data.sac.warmup_steps


def test_rollout_episodes_are_whole_and_time_limits_are_truncations(datasets):
    limit = get_tier("smoke").task(TASK).episode_length
    for k in ("random", "medium", "expert"):
        d = datasets[k]
        t, lengths = d.transitions, d.episode_lengths
        ends = np.cumsum(lengths) - 1
        done = t.terminated | t.truncated
        assert np.array_equal(np.flatnonzero(done), ends)  # one flag per episode, at its end
        assert np.all(lengths <= limit)
        assert np.all(lengths[t.truncated[ends]] == limit)  # truncated only by the time limit
        assert not np.any(t.terminated & t.truncated)
        inside = np.setdiff1d(np.arange(t.size - 1), ends)
        assert np.array_equal(t.next_obs[inside], t.obs[inside + 1])


def test_normalized_scores_order_the_kinds(datasets):
    s = {k: float(np.mean(d.normalized_returns())) for k, d in datasets.items()}
    assert abs(s["random"]) < 25
    assert s["random"] < s["medium"] < s["expert"]
    assert s["expert"] > 60
    assert min(s["medium"], s["expert"]) <= s["medium-expert"] <= max(s["medium"], s["expert"])


def test_generation_is_cached_and_remakes_only_what_is_missing(smoke, monkeypatch):
    calls = []
    monkeypatch.setattr(
        generate,
        "generate_task",
        lambda data, tier, kinds, **kw: calls.append((kinds, kw["siblings"])),
    )
    assert ensure_datasets("smoke", progress=False, log=lambda m: None) == smoke["ids"]
    assert calls == []
    folder = dataset_folder(dataset_id(TASK, "expert", "smoke"))
    moved = folder.with_name("moved-away")
    folder.rename(moved)
    try:
        ensure_datasets("smoke", kinds=("random", "expert"), progress=False, log=lambda m: None)
    finally:
        moved.rename(folder)
    assert calls == [(("expert",), ("random", "medium", "medium-replay", "medium-expert"))]


def test_bad_tier_task_or_kind_names_the_choices():
    with pytest.raises(ValueError, match="tier: unknown 'huge'"):
        ensure_datasets("huge")
    with pytest.raises(ValueError, match="tasks: 'hopper' is not in the smoke tier"):
        ensure_datasets("smoke", tasks=("hopper",))
    with pytest.raises(ValueError, match="kinds: unknown 'great'"):
        ensure_datasets("smoke", kinds=("great",))


def test_cli_list_and_info(smoke, datasets, capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for ds_id in smoke["ids"]:
        assert ds_id in out
    d = datasets["medium"]
    assert cli.main(["info", d.dataset_id]) == 0
    out = capsys.readouterr().out
    s = d.normalized_returns()
    assert f"{d.size} transitions in {len(d.episode_returns)} episodes" in out
    assert f"normalized score: mean {s.mean():.1f}" in out
    assert f"episode return: mean {d.episode_returns.mean():.3f}" in out
    assert cli.main(["info", "jaxo2o/point/medium-nothing-v0"]) == 1
    err = capsys.readouterr().err
    assert "python -m jaxo2o.data generate --tier nothing --tasks point --kinds medium" in err


def test_a_remade_kind_matches_its_siblings(smoke):
    """Remaking one kind reruns SAC: deterministic on one machine, so the untouched siblings keep
    their reference scores; a sibling whose scores differ (as if made on another machine) is
    remade with it."""
    import json

    expert_meta = dataset_folder(dataset_id(TASK, "expert", "smoke")) / "data" / "metadata.json"
    meta = json.loads(expert_meta.read_text())
    meta["jaxo2o"]["ref_min_score"] += 1.0
    expert_meta.write_text(json.dumps(meta))
    before = load_dataset(dataset_id(TASK, "medium", "smoke"))
    random_folder = dataset_folder(dataset_id(TASK, "random", "smoke"))
    import shutil

    shutil.rmtree(random_folder)
    logs: list[str] = []
    ensure_datasets("smoke", kinds=("random",), progress=False, log=logs.append)
    text = "\n".join(logs)
    assert "expert: made by a run that differs from this one; remaking it" in text
    assert "medium: made by a run" not in text and "medium-replay: made by a run" not in text
    refs = {
        (d.ref_min_score, d.ref_max_score)
        for d in (load_dataset(dataset_id(TASK, k, "smoke")) for k in KINDS)
    }
    assert refs == {(before.ref_min_score, before.ref_max_score)}
