"""Committed dataset artefacts (`jaxo2o.data.artefact`): export and import give back the same
bytes (equal content hash), a tampered artefact is refused, and `use_artefact` replaces a local
dataset that differs from it."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from jaxo2o.data import load_dataset
from jaxo2o.data.artefact import artefact_path, export_dataset, import_artefact, use_artefact
from jaxo2o.data.dataset import DatasetError
from jaxo2o.data.fingerprint import fingerprint
from tests.test_sweep_lines import write_point_dataset

DS = "jaxo2o/point/medium-smoke-v0"


@pytest.fixture
def local(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    write_point_dataset(DS)  # four episodes of 50 rows, the last one truncated
    return tmp_path


def test_export_then_import_gives_the_same_bytes(local):
    ds = load_dataset(DS)
    path = artefact_path(DS, local / "art")
    assert path == local / "art/smoke/point/medium.npz"
    fp = export_dataset(ds, path, "test data")
    with zipfile.ZipFile(path) as z:  # next observations only at the four episode ends
        assert np.load(z.open("end_next_obs.npy")).shape == (4, 4)
        assert json.loads(z.read("meta.json"))["fingerprint"] == fp
    (local / "minari").rename(local / "old")  # a machine without the dataset
    assert import_artefact(DS, path)["hash"] == fp["hash"] == fingerprint(ds)["hash"]
    back = load_dataset(DS)
    for a, b in zip(ds.transitions, back.transitions, strict=True):
        assert np.array_equal(a, b)
    assert (back.ref_min_score, back.ref_max_score) == (0.0, 50.0)


def test_use_artefact_replaces_a_differing_local_dataset_and_refuses_a_tampered_one(local):
    ds = load_dataset(DS)
    root = local / "art"
    path = artefact_path(DS, root)
    fp = export_dataset(ds, path)
    recipe = ds.metadata.get("recipe_hash")
    said = []
    assert use_artefact(DS, recipe, said.append, root) and said == []  # already the same bytes
    # another machine's dataset: same recipe, other bytes -> replaced by the artefact
    from jaxo2o.data.minari_io import write_dataset

    t = ds.transitions._replace(reward=ds.transitions.reward + np.float32(1e-3))
    write_dataset(DS, t, description="other", ref_min_score=0.0, ref_max_score=50.0,
                  project_metadata=ds.metadata, overwrite=True)  # fmt: skip
    assert fingerprint(load_dataset(DS))["hash"] != fp["hash"]
    assert use_artefact(DS, recipe, said.append, root)
    assert fingerprint(load_dataset(DS))["hash"] == fp["hash"] and "imported from" in said[0]
    # another recipe: the artefact is stale, not used
    assert not use_artefact(DS, "another-recipe", said.append, root)
    # a tampered artefact: the content hash is checked after the import
    with zipfile.ZipFile(path) as z:
        files = {n: z.read(n) for n in z.namelist()}
    meta = json.loads(files["meta.json"])
    meta["fingerprint"]["hash"] = "0" * 16
    files["meta.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(path, "w") as z:
        for n, b in files.items():
            z.writestr(n, b)
    with pytest.raises(DatasetError, match="content hash .* the artefact records 0000"):
        import_artefact(DS, path)
