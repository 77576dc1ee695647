"""Importing jaxo2o turns off XLA's CPU concurrency-optimized scheduler, which deadlocked on
large vmapped MJX maze programs (`jaxo2o/__init__.py`); a value the user set is kept."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"


def _flags_after_import(xla_flags: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    if xla_flags is not None:
        env["XLA_FLAGS"] = xla_flags
    code = "import os, jaxo2o; print(os.environ['XLA_FLAGS'])"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_import_turns_the_scheduler_off_and_keeps_other_flags():
    assert _flags_after_import(None) == f"{FLAG}=false"
    assert _flags_after_import("--xla_cpu_max_isa=AVX2").split() == [
        "--xla_cpu_max_isa=AVX2",
        f"{FLAG}=false",
    ]


def test_a_users_own_setting_is_kept():
    assert _flags_after_import(f"{FLAG}=true") == f"{FLAG}=true"


@pytest.mark.slow
@pytest.mark.heavy
def test_a_large_gymnasium_antmaze_step_finishes():
    """One teacher-forced step of 256 AntMaze_UMaze-v4 states in one vmapped call: with the
    scheduler on it never returned on a 2-core CPU (every thread idle); off, it takes ~30 s."""
    code = (
        "from benchmarks.maze_parity import collect_states, one_step_errors\n"
        "from jaxo2o.envs.gr_maze import GRMaze\n"
        "import numpy as np\n"
        "st = collect_states('AntMaze_UMaze-v4', 256)\n"
        "err, _, _ = one_step_errors(GRMaze('AntMaze_UMaze-v4'), st)\n"
        "print(np.median(err))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["PYTHONPATH"] = str(REPO)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert float(out.stdout.strip().splitlines()[-1]) < 5e-4
