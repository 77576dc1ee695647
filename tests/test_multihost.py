"""One batch of runs over two processes (`core.distributed`, `jax.distributed` on this machine,
one CPU device each) gives the numbers of one process sharding the same runs over two forced
host devices; checkpoints and result files are written once, by process 0; the sweep's
--distributed.* options; the configuration's validation."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT, cache_dir

from jaxo2o.config import ConfigError
from jaxo2o.core import distributed
from jaxo2o.core.distributed import DistributedConfig
from jaxo2o.sweep import main as sweep_main

SCRIPT = Path(__file__).with_name("multihost_check.py")
TIMEOUT = 1200  # seconds per subprocess (a cold compilation cache on a loaded 2-core machine)
RTOL = ATOL = 1e-5  # as test_sharding: 1 vs 2 devices may differ in float32's last bits


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def subprocess_env(devices: int = 1) -> dict[str, str]:
    """JAX on the CPU with `devices` host devices, the session's compilation cache."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "JAXO2O_CACHE_DIR": cache_dir()}
    flags = [f for f in env.get("XLA_FLAGS", "").split() if "device_count" not in f]
    if devices > 1:
        flags.append(f"--xla_force_host_platform_device_count={devices}")
    env["XLA_FLAGS"] = " ".join(flags)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def run_all(commands: list[list[str]], envs: list[dict], logs: Path) -> list[str]:
    """Start every command at once, wait for all (killing all of them if one hangs); returns
    their outputs, stdout and stderr together."""
    logs.mkdir(parents=True, exist_ok=True)
    files = [open(logs / f"{i}.log", "w+") for i in range(len(commands))]  # noqa: SIM115
    procs = [
        subprocess.Popen(cmd, env=env, stdout=f, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        for cmd, env, f in zip(commands, envs, files, strict=True)
    ]
    try:
        for p in procs:
            p.wait(timeout=TIMEOUT)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    outputs = []
    for f in files:
        f.seek(0)
        outputs.append(f.read())
        f.close()
    for p, out in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out[-4000:]
    return outputs


def worst_difference(a: np.ndarray, b: np.ndarray, name: str) -> float:
    assert a.shape == b.shape and a.dtype == b.dtype, name
    if a.dtype.kind != "f":
        np.testing.assert_array_equal(a, b, err_msg=name)
        return 0.0
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, equal_nan=True, err_msg=name)
    finite = np.isfinite(a) & np.isfinite(b)
    return float(np.abs(a - b)[finite].max(initial=0.0))


# ------------------------------------------------------------------ run_batch, checkpoints
@pytest.mark.slow
def test_two_processes_match_one_process_on_two_devices(tmp_path):
    """3 SAC runs (odd: padded to 4) over 2 processes x 1 CPU device vs 1 process x 2 forced
    host devices. Each process partitions the same SPMD program (2 runs per device), so the
    numbers agree to float32's last bits at worst (measured: bitwise equal). Both processes
    hold the full, unpadded results; process 0 alone writes the checkpoints; a second run
    continues from the last one in both processes and gives the same results."""
    port = free_port()
    py = [sys.executable, str(SCRIPT)]
    run_all(
        [
            [*py, "worker", str(tmp_path), str(port), "0"],
            [*py, "worker", str(tmp_path), str(port), "1"],
            [*py, "single", str(tmp_path)],
        ],
        [subprocess_env(1), subprocess_env(1), subprocess_env(2)],
        tmp_path / "logs",
    )
    p0, p1 = np.load(tmp_path / "proc0.npz"), np.load(tmp_path / "proc1.npz")
    single = np.load(tmp_path / "single.npz")
    assert int(p0["process_count"]) == 2 and int(p0["run/n_devices"]) == 2
    assert int(single["run/n_devices"]) == 2
    assert int(p0["saves"]) == 3 and int(p1["saves"]) == 0  # 3 online chunks, process 0 writes
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["online-000002"]
    assert str(p0["resumed_from"]) == str(p1["resumed_from"]) == "online chunk 2"

    names = sorted(k for k in single.files if k != "run/n_devices")
    assert "run/online/eval_returns" in names
    assert any(k.startswith("run/state/") for k in names)
    assert any(k.startswith("run/buffer/") for k in names)
    worst = 0.0
    for name in names:
        a, b = p0[name], single[name]
        assert a.shape[:1] == (3,), name  # the padding run was dropped
        np.testing.assert_array_equal(a, p1[name], err_msg=name)  # both processes hold it all
        worst = max(worst, worst_difference(a, b, name))
        np.testing.assert_array_equal(a, p0[name.replace("run/", "resumed/")], err_msg=name)
    print(f"largest |2 processes - 1 process on 2 devices| difference: {worst:.3g}")
    r = p0["run/online/eval_returns"]
    assert not np.allclose(r[0], r[2])  # distinct runs: the padding did not leak in


# ------------------------------------------------------------------ the sweep's command line
SWEEP = [
    "-m", "jaxo2o.sweep", "--method", "sac", "--run.protocol", "scratch", "--env.task", "point",
    "--env.episode-length", "20", "--run.online-steps", "60", "--run.online-eval-every", "30",
    "--run.batch-size", "16", "--run.eval-episodes", "2", "--run.no-progress",
    "--method-config", "hidden=8,8", "--seeds", "3",
]  # fmt: skip


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def assert_same_rows(a: list[dict], b: list[dict], skip: tuple[str, ...] = ()) -> float:
    assert len(a) == len(b) and a and list(a[0]) == list(b[0])
    worst = 0.0
    for ra, rb in zip(a, b, strict=True):
        for key in ra:
            if key in skip:
                continue
            try:
                x, y = float(ra[key]), float(rb[key])
            except ValueError:
                assert ra[key] == rb[key], key
                continue
            worst = max(worst, worst_difference(np.float64(x), np.float64(y), key))
    return worst


@pytest.mark.slow
def test_sweep_over_two_processes(tmp_path):
    """`python -m jaxo2o.sweep ... --distributed.*` in two processes: process 0 writes the
    result files (and removes the checkpoints), they match a one-process sweep on two host
    devices, and the same command again finds the finished results in both processes."""
    port = free_port()
    out, ref = tmp_path / "two", tmp_path / "ref"
    join = ["--distributed.coordinator", f"localhost:{port}", "--distributed.num-processes", "2"]
    commands = [
        [sys.executable, *SWEEP, "--out", str(out), *join, "--distributed.process-id", str(i)]
        for i in (0, 1)
    ]
    outputs = run_all(
        [*commands, [sys.executable, *SWEEP, "--out", str(ref)]],
        [subprocess_env(1), subprocess_env(1), subprocess_env(2)],
        tmp_path / "logs",
    )
    assert "wrote" in outputs[0] and "wrote" not in outputs[1]  # process 0 writes, 1 does not
    assert not (out / "checkpoints").exists()
    meta = json.loads((out / "meta.json").read_text())
    assert meta["n_processes"] == 2 and meta["n_devices"] == 2
    assert len(meta["checkpoints_written"]) == 2  # the 2 online chunks, written once
    assert json.loads((ref / "meta.json").read_text())["n_processes"] == 1
    worst = assert_same_rows(
        read_csv(out / "runs.csv"), read_csv(ref / "runs.csv"), skip=("compile_s", "run_s")
    )
    worst = max(worst, assert_same_rows(read_csv(out / "curves.csv"), read_csv(ref / "curves.csv")))
    print(f"largest |2 processes - 1 process on 2 devices| difference in the files: {worst:.3g}")

    before = (out / "runs.csv").read_bytes()
    port = free_port()  # the same arguments again: nothing to do, in both processes
    join[1] = f"localhost:{port}"
    commands = [
        [sys.executable, *SWEEP, "--out", str(out), *join, "--distributed.process-id", str(i)]
        for i in (0, 1)
    ]
    outputs = run_all(commands, [subprocess_env(1)] * 2, tmp_path / "logs-again")
    assert "nothing to do" in outputs[0]
    assert (out / "runs.csv").read_bytes() == before


# ------------------------------------------------------------------ configuration
def test_distributed_config_validation():
    assert not DistributedConfig().enabled
    assert DistributedConfig("10.0.0.1:1234", num_processes=4, process_id=3).enabled
    assert DistributedConfig("[::1]:5555", num_processes=2, process_id=1).enabled
    assert DistributedConfig(auto=True).enabled
    assert DistributedConfig("head-node:1234", auto=True, detection="slurm").enabled
    bad = [
        ("process_id: must be in 0..1", dict(coordinator="h:1", num_processes=2, process_id=2)),
        ("process_id: must be in 0..0", dict(process_id=-1)),
        ("num_processes: must be >= 1", dict(num_processes=0)),
        ("coordinator: 2 processes need", dict(num_processes=2, process_id=1)),
        ("coordinator: expected host:port", dict(coordinator="localhost")),
        ("coordinator: expected host:port", dict(coordinator="localhost:99999")),
        ("coordinator: expected host:port", dict(coordinator=":1234")),
        ("auto: the process count and id", dict(auto=True, num_processes=2)),
        ("detection: only used with auto", dict(detection="slurm")),
        ("sync_timeout: must be >= 1", dict(sync_timeout=0)),
    ]
    for message, kwargs in bad:
        with pytest.raises(ConfigError, match=f"^distributed.{message}"):
            DistributedConfig(**kwargs)


def test_one_process_helpers_do_nothing():
    """With one process nothing starts and the helpers return their input (no gather)."""
    assert distributed.initialize(DistributedConfig()) is False
    assert distributed.is_main_process() and not distributed.multi_process()
    tree = {"a": np.arange(3)}
    assert distributed.gather(tree) is tree
    distributed.barrier("nothing to wait for")
    assert distributed.all_values(np.int32(7)).tolist() == [7]
    assert int(distributed.from_main(np.int32(7))) == 7


def test_sweep_rejects_bad_distributed_options(tmp_path, capsys):
    """Like the other nested options (--run.*), a bad value ends the sweep with one line on
    stderr naming the field, exit status 2, before anything starts."""
    args = [*SWEEP[2:], "--out", str(tmp_path / "x")]
    join = ["--distributed.coordinator", "localhost:1234", "--distributed.num-processes", "2"]
    for bad, message in [
        ([*join, "--distributed.process-id", "2"], "distributed.process_id: must be in 0..1"),
        (["--distributed.num-processes", "2"], "distributed.coordinator: 2 processes need"),
        (["--distributed.coordinator", "nohost"], "distributed.coordinator: expected host:port"),
    ]:
        assert sweep_main([*args, *bad]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith(f"error: {message}"), err
    assert not (tmp_path / "x").exists()
