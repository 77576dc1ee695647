"""Bad input at the sweep's command line: one line on stderr naming the problem, exit status 2,
no traceback, nothing written, all before anything compiles."""

from __future__ import annotations

import pytest

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
