"""Standard datasets for the v5 locomotion tasks: Minari's `mujoco/<body>/<kind>-v0` layout (made
here with `minari.DataCollector` on the Gymnasium envs, never downloaded), D4RL HDF5 files, the
recorded environment checked against the task, and short sweeps on both."""

from __future__ import annotations

import json

import gymnasium as gym
import h5py
import numpy as np
import pytest

from benchmarks import collector_dataset
from jaxo2o.data import DatasetError, load_dataset
from jaxo2o.data.d4rl_io import read_d4rl
from jaxo2o.data.standard import (
    D4RL_REFERENCES,
    V5_REFERENCES,
    check_recorded_env,
    reference_scores,
    standard_dataset_id,
)
from jaxo2o.evaluate import main as evaluate_main
from jaxo2o.experiment.lines import expand
from jaxo2o.experiment.spec import Experiment
from jaxo2o.sweep import main as sweep_main

STEPS = 300  # transitions per test dataset


def collect(ds_id: str, env_id: str, steps: int = STEPS, seed: int = 0, **kwargs) -> None:
    """Random-action data of Gymnasium's `env_id` under `ds_id`, as the standard datasets are
    made (DataCollector, record_infos=False), in $MINARI_DATASETS_PATH."""
    collector_dataset.collect(ds_id, env_id, steps, seed, **kwargs)


@pytest.fixture
def minari_root(tmp_path, monkeypatch):
    root = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return root


def test_standard_ids_and_references():
    assert standard_dataset_id("Hopper-v5", "medium") == "mujoco/hopper/medium-v0"
    assert standard_dataset_id("HalfCheetah-v5", "expert") == "mujoco/halfcheetah/expert-v0"
    with pytest.raises(ValueError, match="medium-replay"):
        standard_dataset_id("Hopper-v5", "medium-replay")
    # v5 references: random measured on v5, expert D4RL's; D4RL's published numbers
    assert V5_REFERENCES["Hopper-v5"] == (16.67, 3234.3)
    assert D4RL_REFERENCES["walker2d"] == (1.629008, 4592.3)
    assert reference_scores(None, "Ant-v5") == (-48.05, 3879.7)
    assert reference_scores(None, "point") is None


def test_sweep_lines_name_the_standard_datasets():
    base = Experiment(method="iql")
    lines = expand(base, tasks=("Hopper-v5",), kinds=("simple", "expert"), tier="quick")
    assert [ln.experiment.dataset for ln in lines] == [
        "mujoco/hopper/simple-v0",
        "mujoco/hopper/expert-v0",
    ]
    assert {(ln.experiment.env.task, ln.experiment.env.episode_length) for ln in lines} == {
        ("Hopper-v5", 1000)
    }


def test_minari_dataset_recorded_on_the_task_is_read_and_accepted(minari_root):
    collect("mujoco/hopper/medium-v0", "Hopper-v5")
    ds = load_dataset("mujoco/hopper/medium-v0", observation_size=11, action_size=3)
    assert ds.size == STEPS
    assert ds.env_spec["id"] == "Hopper-v5"
    assert check_recorded_env(ds, "Hopper-v5") is None
    # episodes end where Gymnasium's did (random Hopper falls within tens of steps)
    assert ds.transitions.terminated.sum() >= 3
    assert ds.episode_lengths.sum() == STEPS


def test_data_of_another_environment_is_refused(minari_root):
    collect("mujoco/walker2d/medium-v0", "Walker2d-v5", steps=50)
    ds = load_dataset("mujoco/walker2d/medium-v0")
    with pytest.raises(DatasetError, match="recorded on 'Walker2d-v5', the task is 'Hopper-v5'"):
        check_recorded_env(ds, "Hopper-v5")
    collect("mujoco/hopper/other-v0", "Hopper-v5", steps=50, ctrl_cost_weight=0.1)
    other = load_dataset("mujoco/hopper/other-v0")
    with pytest.raises(DatasetError, match=r"ctrl_cost_weight=0\.1.*ctrl_cost_weight=0\.001"):
        check_recorded_env(other, "Hopper-v5")
    collect("mujoco/hopper/v4-v0", "Hopper-v4", steps=50)
    with pytest.raises(DatasetError, match="recorded on 'Hopper-v4'"):
        check_recorded_env(load_dataset("mujoco/hopper/v4-v0"), "Hopper-v5")


def test_sweep_refuses_walker_data_for_hopper_before_writing(minari_root, tmp_path, capsys):
    collect("mujoco/walker2d/medium-v0", "Walker2d-v5", steps=50)
    out = tmp_path / "out"
    code = sweep_main(
        ["--method", "iql", "--env.task", "Hopper-v5", "--dataset", "mujoco/walker2d/medium-v0",
         "--run.offline-steps", "10", "--run.offline-eval-every", "10",
         "--run.online-steps", "0", "--seeds", "1",
         "--out", str(out), "--offline-cache", ""]
    )  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "'Walker2d-v5'" in err[0] and "'Hopper-v5'" in err[0], err
    assert not out.exists()


def write_d4rl(path, n_episodes: int = 4, next_observations: bool = True, seed: int = 0) -> dict:
    """A small D4RL-layout file from Gymnasium Hopper-v5 rollouts (episodes cut at 30 steps by a
    timeout, as D4RL's time limit); returns the arrays written."""
    env = gym.make("Hopper-v5")
    env.action_space.seed(seed)
    keys = ("observations", "actions", "rewards", "terminals", "timeouts", "next_observations")
    rows: dict[str, list] = {k: [] for k in keys}
    for ep in range(n_episodes):
        obs, _ = env.reset(seed=seed + ep)
        for t in range(30):
            a = env.action_space.sample()
            nxt, r, term, _, _ = env.step(a)
            for k, v in zip(rows, (obs, a, r, term, t == 29 and not term, nxt), strict=True):
                rows[k].append(v)
            obs = nxt
            if term:
                break
    arrays = {k: np.asarray(v) for k, v in rows.items()}
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            if k != "next_observations" or next_observations:
                f[k] = v
    return arrays


def test_d4rl_file_read_with_next_observations(tmp_path):
    path = tmp_path / "hopper-medium-v2.hdf5"
    a = write_d4rl(path)
    ds = read_d4rl(path)
    n = len(a["rewards"])
    assert ds.size == n
    np.testing.assert_array_equal(ds.transitions.next_obs, a["next_observations"].astype("f4"))
    np.testing.assert_array_equal(ds.transitions.terminated, a["terminals"])
    # every episode ends (terminal or timeout); the lengths add up
    assert len(ds.episode_lengths) == 4 and ds.episode_lengths.sum() == n
    assert (ds.ref_min_score, ds.ref_max_score) == D4RL_REFERENCES["hopper"]
    note = check_recorded_env(ds, "Hopper-v5")
    assert note and "D4RL" in note and "v2" in note
    with pytest.raises(DatasetError, match="D4RL file of 'hopper', the task is 'Walker2d-v5'"):
        check_recorded_env(ds, "Walker2d-v5")


def test_d4rl_file_without_next_observations_drops_timeout_rows(tmp_path):
    path = tmp_path / "hopper-medium-v0.hdf5"
    a = write_d4rl(path, next_observations=False)
    ds = read_d4rl(path)
    timeouts = int(a["timeouts"].sum())
    assert ds.size == len(a["rewards"]) - timeouts  # no valid next observation on those rows
    assert len(ds.episode_lengths) == 4  # the row before each timeout ends its episode
    ends = np.flatnonzero(ds.transitions.terminated | ds.transitions.truncated)
    inside = np.setdiff1d(np.arange(ds.size - 1), ends)
    np.testing.assert_array_equal(ds.transitions.next_obs[inside], ds.transitions.obs[inside + 1])


def test_bad_d4rl_files_are_refused(tmp_path):
    path = tmp_path / "hopper-medium-v2.hdf5"
    with h5py.File(path, "w") as f:
        f["observations"] = np.zeros((5, 11))
    with pytest.raises(DatasetError, match="missing .*'actions'"):
        read_d4rl(path)
    with pytest.raises(DatasetError, match="no such D4RL HDF5 file"):
        read_d4rl(tmp_path / "nope.hdf5")


SWEEP = ["--method", "iql", "--env.task", "Hopper-v5", "--env.episode-length", "10",
         "--run.offline-steps", "20", "--run.offline-eval-every", "20",
         "--run.online-steps", "20", "--run.online-eval-every", "20", "--run.batch-size", "16",
         "--run.eval-episodes", "2", "--run.no-progress", "--seeds", "1",
         "--method-config", "hidden=16,16", "--offline-cache", ""]  # fmt: skip


@pytest.mark.slow
@pytest.mark.heavy
@pytest.mark.xdist_group("mjx_hopper_sweep")
def test_short_sweeps_on_minari_and_d4rl_data(minari_root, tmp_path, capsys):
    collect("mujoco/hopper/medium-v0", "Hopper-v5")
    write_d4rl(tmp_path / "hopper-medium-v2.hdf5")
    for name, data in (("minari", "mujoco/hopper/medium-v0"),
                       ("d4rl", str(tmp_path / "hopper-medium-v2.hdf5"))):  # fmt: skip
        out = tmp_path / name
        assert sweep_main([*SWEEP, "--dataset", data, "--out", str(out)]) == 0
        meta = json.loads((out / "meta.json").read_text())
        ref = V5_REFERENCES["Hopper-v5"] if name == "minari" else D4RL_REFERENCES["hopper"]
        assert tuple(meta["reference_scores"]) == ref
        assert (out / "runs.csv").read_text().count("\n") == 2  # header + one run
    # the final policy played again, on the device and in Gymnasium (MuJoCo C)
    assert evaluate_main([str(tmp_path / "minari"), "--reference", "--episodes", "3"]) == 0
    text = capsys.readouterr().out
    assert "device (MJX)" in text and "reference (MuJoCo C)" in text and "intervals" in text


def test_evaluate_refuses_a_folder_without_results(tmp_path, capsys):
    assert evaluate_main([str(tmp_path), "--reference"]) == 2
    assert "no meta.json" in capsys.readouterr().err
