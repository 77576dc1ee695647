"""Checkpoints and resume (`core.checkpoint`, `run_batch(checkpoint=)`, the sweep's
--checkpoint-every): a sweep killed with SIGKILL during the offline or the online phase and run
again writes the same runs.csv and curves.csv as an uninterrupted one; a corrupt or foreign
checkpoint is refused with a message and the runs start over; a diverged run is flagged and the
other runs of its batch keep their values."""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest
from conftest import REPO_ROOT, cache_dir
from test_chunked import small_dataset

from jaxo2o.config import EnvConfig, RunConfig, run_hparams
from jaxo2o.core.checkpoint import Checkpointer
from jaxo2o.core.loop import Trainer
from jaxo2o.core.runner import broadcast_tree, run_batch
from jaxo2o.envs import make_env
from jaxo2o.experiment import Experiment, execute, plan
from jaxo2o.methods.pex import PEX, PEXConfig


# ------------------------------------------------------------------ in-process resume
class Stop(Exception):
    pass


def tiny_pex():
    run = RunConfig(
        offline_steps=40, offline_eval_every=20, online_steps=60, online_eval_every=20,
        warmup_steps=10, batch_size=16, eval_episodes=2, protocol="direct", progress=False,
    )  # fmt: skip
    method = PEX(PEXConfig(hidden=(16, 16)))
    trainer = Trainer(method, make_env("point", episode_length=30), run)
    keys = jax.random.split(jax.random.PRNGKey(9), 3)
    hp = broadcast_tree(method.default_hparams(), 3)
    return trainer, keys, hp, broadcast_tree(run_hparams(run), 3), small_dataset()


def stopped_at(ck: Checkpointer, where: tuple[str, int]) -> Checkpointer:
    save = ck.after_chunk

    def after(phase, chunk, carry):
        save(phase, chunk, carry)
        if (phase, chunk) == where:
            raise Stop

    ck.after_chunk = after
    return ck


def assert_bitwise(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.xdist_group("pex_point")
def test_resume_is_bitwise_and_bad_checkpoints_are_refused(tmp_path, capfd):
    trainer, keys, hp, rhp, data = tiny_pex()
    one = jax.devices()[:1]
    ref = run_batch(trainer, keys, hp, rhp, data, devices=one)
    for where in [("offline", 0), ("offline", 1), ("online", 1)]:
        d = tmp_path / f"{where[0]}{where[1]}"
        with pytest.raises(Stop):
            run_batch(trainer, keys, hp, rhp, data, devices=one,
                      checkpoint=stopped_at(Checkpointer(d, "k"), where))  # fmt: skip
        (found,) = [p.name for p in d.iterdir()]  # one checkpoint, no temporary folder left
        assert found == f"{where[0]}-{where[1]:06d}"
        res = run_batch(trainer, keys, hp, rhp, data, devices=one, checkpoint=Checkpointer(d, "k"))
        assert res.resumed_from == f"{where[0]} chunk {where[1]}"
        assert_bitwise(res.metrics, ref.metrics)
        assert_bitwise(res.state, ref.state)

    d = tmp_path / "online1"  # now holds the final checkpoint (online chunk 2)
    capfd.readouterr()
    res = run_batch(trainer, keys, hp, rhp, data, devices=one, checkpoint=Checkpointer(d, "other"))
    assert res.resumed_from is None and "made for another configuration" in capfd.readouterr().err
    assert_bitwise(res.metrics, ref.metrics)
    # corrupt every file of the carry: refused (not loaded), and the runs start over
    (ck,) = d.iterdir()
    for f in (ck / "carry").rglob("*"):
        if f.is_file():
            f.write_bytes(b"\0garbage" * 3)
    res = run_batch(trainer, keys, hp, rhp, data, devices=one, checkpoint=Checkpointer(d, "k"))
    err = capfd.readouterr().err
    assert res.resumed_from is None and "ignored" in err and "the runs start over" in err
    assert_bitwise(res.metrics, ref.metrics)
    (ck,) = d.iterdir()
    (ck / "meta.json").write_text("{not json")
    res = run_batch(trainer, keys, hp, rhp, data, devices=one, checkpoint=Checkpointer(d, "k"))
    assert res.resumed_from is None and "JSONDecodeError" in capfd.readouterr().err


# ------------------------------------------------------------------ diverged runs
def test_a_diverged_run_is_flagged_and_the_others_keep_their_values():
    from test_experiment import iql_experiment, point_dataset

    ok = plan(iql_experiment(seeds=1, grid=("actor_lr=3e-4",)), point_dataset())
    both = plan(iql_experiment(seeds=1, grid=("actor_lr=3e-4,1e38",)), point_dataset())
    ok_res, both_res = execute(ok), execute(both)
    good, bad = both_res.rows
    assert good["diverged_step"] is None and ok_res.rows[0]["diverged_step"] is None
    assert bad["diverged_phase"] == "offline" and bad["diverged_step"] in (10, 20)
    for k in ("offline_final", "online_final", "online_dip"):
        assert good[k] == pytest.approx(ok_res.rows[0][k], rel=1e-5)


# ------------------------------------------------------------------ kill -9 and rerun
_SWEEP = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[2])
    from pathlib import Path
    from jaxo2o.core.checkpoint import Checkpointer
    from jaxo2o.core.runner import enable_compilation_cache
    from jaxo2o.experiment import execute, plan
    from jaxo2o.experiment.runner import finished, write_result
    from test_experiment import iql_experiment, point_dataset
    from test_resume import kill_experiment
    enable_compilation_cache(sys.argv[1])
    out = Path(sys.argv[3])
    exp = kill_experiment()
    if finished(out, exp):
        sys.exit(0)
    res = execute(plan(exp, point_dataset()), checkpoint_dir=out / "checkpoints")
    print("resumed from", res.batch.resumed_from, flush=True)
    write_result(out, res, "kill test")
    Checkpointer(out / "checkpoints", "").clear()
    """
)


def kill_experiment() -> Experiment:
    run = RunConfig(
        offline_steps=300, online_steps=300, offline_eval_every=20, online_eval_every=20,
        batch_size=16, eval_episodes=2, warmup_steps=20, progress=False,
    )  # fmt: skip
    return Experiment(
        method="iql", env=EnvConfig(task="point", episode_length=20), run=run,
        dataset="test/point/fake-v0", seeds=2, method_config=("hidden=16,16",),
        grid=("expectile=0.7,0.9",),
    )  # fmt: skip


def _sweep(tmp_path, out, kill_in: str | None = None) -> str:
    script = tmp_path / "sweep.py"
    script.write_text(_SWEEP)
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
    )
    cmd = [sys.executable, str(script), cache_dir(), str(REPO_ROOT / "tests"), str(out)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if kill_in is not None:
        ckpts = out / "checkpoints"
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            if ckpts.is_dir() and any(p.name.startswith(kill_in) for p in ckpts.iterdir()):
                break
            time.sleep(0.02)
        time.sleep(random.uniform(0.0, 0.6))  # somewhere in the phase: mid-chunk or mid-save
        assert proc.poll() is None, "the sweep finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert not (out / "runs.csv").exists()
        return ""
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-3000:]
    return stdout


def _without_timings(path):
    """The file's cells as written (text, so NaN equals NaN), without the timing columns."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [{k: v for k, v in r.items() if k not in ("compile_s", "run_s")} for r in rows]


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["offline", "online"])
def test_sweep_killed_with_sigkill_resumes_to_the_same_files(tmp_path, phase):
    ref, out = tmp_path / "ref", tmp_path / "out"
    _sweep(tmp_path, ref)
    _sweep(tmp_path, out, kill_in=phase)
    stdout = _sweep(tmp_path, out)
    assert f"resumed from {phase} chunk" in stdout
    for name in ("runs.csv", "curves.csv"):
        a, b = _without_timings(ref / name), _without_timings(out / name)
        assert a == b  # the same numbers as text, to the 6 significant digits written
    assert (ref / "curves.csv").read_bytes() == (out / "curves.csv").read_bytes()
    assert not (out / "checkpoints").exists()


# ------------------------------------------------------------------ Ctrl-C through the CLI
@pytest.mark.slow
def test_sweep_cli_interrupted_with_ctrl_c_says_so_and_resumes(tmp_path):
    """SIGINT (Ctrl-C) during the online phase of `python -m jaxo2o.sweep`: exit status 130, a
    message saying how to continue, a complete checkpoint kept; the same command again resumes
    and writes the files of an uninterrupted run."""
    from test_sweep_lines import write_point_dataset

    minari = tmp_path / "minari"
    path = os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, MINARI_DATASETS_PATH=str(minari), JAXO2O_CACHE_DIR=cache_dir(),
               PYTHONPATH=path)  # fmt: skip
    os.environ["MINARI_DATASETS_PATH"] = str(minari)
    try:
        write_point_dataset("jaxo2o/point/medium-smoke-v0")
    finally:
        del os.environ["MINARI_DATASETS_PATH"]
    args = [
        "--method", "iql", "--tasks", "point", "--kinds", "medium", "--tier", "smoke",
        "--run.offline-steps", "200", "--run.offline-eval-every", "20", "--run.online-steps",
        "2000", "--run.online-eval-every", "20", "--run.batch-size", "16", "--run.eval-episodes",
        "2", "--run.no-progress", "--method-config", "hidden=16,16", "--seeds", "2",
        "--offline-cache", "",
    ]  # fmt: skip

    def sweep(out):
        cmd = [sys.executable, "-m", "jaxo2o.sweep", *args, "--out", str(out)]
        # pytest-xdist's workers ignore SIGINT, and a child that starts with SIGINT ignored never
        # turns it into KeyboardInterrupt: give the sweep the default disposition, as a shell does
        default_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)
        return subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                preexec_fn=default_sigint)  # fmt: skip

    ref, out = tmp_path / "ref", tmp_path / "out"
    assert sweep(ref).wait(timeout=600) == 0
    proc = sweep(out)
    deadline = time.time() + 300
    ckpts = out / "checkpoints"
    while time.time() < deadline and proc.poll() is None:
        if ckpts.is_dir() and any(p.name.startswith("online") for p in ckpts.iterdir()):
            break
        time.sleep(0.02)
    # 100 online chunks, each checkpointed: many seconds left after the first one
    time.sleep(random.uniform(0.0, 0.3))
    assert proc.poll() is None, "the sweep finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err and "run the same command again" in err
    assert not (out / "runs.csv").exists()
    complete = [p for p in ckpts.iterdir() if not p.name.startswith(".")]
    assert len(complete) == 1 and (complete[0] / "meta.json").exists()
    again = sweep(out)
    stdout, err = again.communicate(timeout=600)
    assert again.returncode == 0, err[-2000:]
    assert "resumed from the checkpoint after online chunk" in stdout
    for name in ("runs.csv", "curves.csv"):
        assert _without_timings(ref / name) == _without_timings(out / name)
