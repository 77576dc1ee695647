"""Bad input at the command lines (sweep, bench, evaluate, data): one line on stderr naming the
problem, exit status 2, no traceback, nothing written, all before anything compiles."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from jaxo2o.sweep import main as sweep_main
from tests.test_sweep_lines import write_point_dataset

LINES = ["--tier", "smoke", "--run.offline-steps", "20", "--run.online-steps", "20",
         "--run.offline-eval-every", "10", "--run.online-eval-every", "10",
         "--run.batch-size", "8"]  # fmt: skip


def refused(capsys, argv: list[str]) -> str:
    """Run the sweep on `argv`; check exit 2 and one line on stderr; return that line."""
    assert sweep_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--methods", "iql:nosuch", "--tasks", "point", "--kinds", "medium"],
         "methods: 'iql:nosuch': unknown protocol 'nosuch'"),
        (["--methods", "iql", "--tasks", "nosuch", "--kinds", "medium"],
         "tasks: "),
        (["--methods", "iql", "--tasks", "point", "--kinds", "nosuch"],
         "kinds: point has no 'nosuch' data"),
        (["--methods", "iql", "--tasks", "point", "--kinds", "medium",
          "--grid", "pex.selection_inverse_temperature=1,10"],
         "grid: 'pex.selection_inverse_temperature=1,10' is for method 'pex', which is not in"),
    ],
)  # fmt: skip
def test_bad_lines_get_one_line_and_exit_2(tmp_path, capsys, extra, needle):
    out = tmp_path / "out"
    err = refused(capsys, [*LINES, *extra, "--out", str(out)])
    assert needle in err
    assert not out.exists()


def test_unknown_task_names_the_tier_and_its_tasks(tmp_path, capsys):
    err = refused(capsys, [*LINES, "--tasks", "nosuch", "--kinds", "medium", "--out", "x"])
    assert "'nosuch'" in err and "point" in err  # the tier's tasks are listed


def test_out_naming_a_file_is_refused(tmp_path, capsys):
    out = tmp_path / "results.txt"
    out.write_text("mine")
    err = refused(capsys, [*LINES, "--tasks", "point", "--kinds", "medium", "--out", str(out)])
    assert err == f"error: out: {out} is a file; name a folder for the results"
    assert out.read_text() == "mine"


def test_dataset_of_another_task_is_refused_before_tracing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    write_point_dataset("jaxo2o/point/medium-smoke-v0")  # observations of 4, actions of 2
    out = tmp_path / "out"
    argv = ["--method", "iql", "--dataset", "jaxo2o/point/medium-smoke-v0", "--env.task",
            "reacher", *LINES[2:], "--out", str(out)]  # fmt: skip
    err = refused(capsys, argv)
    assert "dataset jaxo2o/point/medium-smoke-v0: observations have 4 dimensions" in err
    assert "the task expects 11" in err  # Brax reacher's observation size
    assert not out.exists()


# What tyro itself rejects while building the configs (an unknown option, a value of the wrong
# type, a config's own validation) is one line too, in every command line built with tyro; run
# as the user runs them, in a fresh process, in an empty folder that stays empty.
OUT = {m: ["--out", "out"] for m in ("jaxo2o.sweep", "benchmarks.run")}  # inside the folder


def run_cli(module: str, argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": str(REPO_ROOT)}
    cmd = [sys.executable, "-m", module, *argv]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    "module, argv, words",
    [
        ("jaxo2o.sweep", ["--method.expectile", "2"], ["unknown option --method.expectile"]),
        ("jaxo2o.sweep", ["--nosuch", "1"], ["unknown option --nosuch"]),
        ("jaxo2o.sweep", ["--seeds", "abc"], ["--seeds", "expected INT", "'abc'"]),
        ("jaxo2o.sweep", ["--run.batch-size", "1.5"], ["--run.batch-size", "INT", "'1.5'"]),
        ("jaxo2o.sweep", ["--env.task", "nosuch"], ["env.task: unknown 'nosuch'", "hopper"]),
        ("jaxo2o.sweep", ["--method", "nosuch"], ["method: unknown 'nosuch'", "iql"]),
        ("jaxo2o.sweep", ["--run.offline-steps", "-5"], ["run.offline_steps:", ">= 0", "-5"]),
        ("jaxo2o.sweep", ["--grid", "expectile=a"], ["grid.expectile: expected a number", "'a'"]),
        ("benchmarks.run", ["--nosuch"], ["unknown option --nosuch"]),
        ("benchmarks.run", ["--first-seed", "x"], ["--first-seed", "expected INT", "'x'"]),
        ("jaxo2o.evaluate", [], ["missing folder"]),
        ("jaxo2o.evaluate", ["somewhere", "--episodes", "x"], ["--episodes", "expected INT"]),
        ("jaxo2o.data", [], ["name a command", "generate", "info"]),
        ("jaxo2o.data", ["info"], ["missing dataset-id"]),
        ("jaxo2o.data", ["nosuch"], ["unexpected argument nosuch"]),
        # the study scripts (`jaxo2o.cli.parse_or_exit`)
        ("benchmarks.claims", ["--nosuch"], ["unknown option --nosuch"]),
        ("benchmarks.offline_q", ["somewhere", "--nosuch"], ["unknown option --nosuch"]),
        ("benchmarks.budget_study", ["--nosuch"], ["unknown option --nosuch"]),
        ("benchmarks.famo2o_study", ["--nosuch"], ["unknown option --nosuch"]),
        ("benchmarks.aca_collapse", ["--nosuch"], ["unknown option --nosuch"]),
    ],
)  # fmt: skip
def test_tyro_errors_get_one_line_and_exit_2(tmp_path, module, argv, words):
    got = run_cli(module, [*argv, *OUT.get(module, [])], tmp_path)
    lines = [line for line in got.stderr.splitlines() if line.strip()]
    assert got.returncode == 2, got.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), got.stderr
    for word in words:
        assert word in lines[0]
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize("module", ["jaxo2o.sweep", "benchmarks.run", "jaxo2o.evaluate"])
def test_help_still_works(tmp_path, module):
    got = run_cli(module, ["--help"], tmp_path)
    assert got.returncode == 0 and "usage" in got.stdout.lower() and not got.stderr.strip()
