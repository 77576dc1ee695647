"""Checkpoints written in the background (the runner's hook path): the carry is copied when the
hook is called, so a later change of the source buffer (the next chunk donating it) cannot reach
the files; a failed background write is raised at the next wait, or only warned about by the
shared offline phase."""

from __future__ import annotations

import numpy as np
import pytest

from jaxo2o.core.checkpoint import Checkpointer
from jaxo2o.core.shared_offline import SharedOfflinePhase


def _carry() -> dict[str, np.ndarray]:
    return {"q": np.arange(6, dtype=np.float32).reshape(2, 3)}


def test_background_save_holds_the_carry_as_it_was_when_called(tmp_path):
    carry = _carry()
    ckpt = Checkpointer(tmp_path, "k", background=True)
    ckpt.begin({"offline": 2}, {}, n_runs=2)
    ckpt.after_chunk("offline", 1, carry)  # the phase's last chunk: saved in the background
    carry["q"][:] = -1.0  # what donation to the next chunk may do to a host view
    ckpt.end()
    resume = Checkpointer(tmp_path, "k").restore({"offline": _carry()}, {"offline": {}})
    assert resume is not None and (resume.phase, resume.chunk) == ("offline", 1)
    np.testing.assert_array_equal(resume.carry[0], _carry()["q"])
    assert ckpt.saves[0]["write_seconds"] >= 0 and ckpt.saves[0]["seconds"] >= 0


def test_failed_background_write_is_raised_at_end(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    ckpt = Checkpointer(blocked, "k", background=True)
    ckpt.begin({"offline": 1}, {}, n_runs=2)
    ckpt.after_chunk("offline", 0, _carry())
    with pytest.raises(OSError):
        ckpt.end()


def test_shared_offline_phase_only_warns_when_its_write_fails(tmp_path, capsys):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    store = SharedOfflinePhase(blocked, "k" * 40, background=True)
    store.begin({"offline": 1}, {}, n_runs=2)
    store.after_chunk("offline", 0, _carry())
    store.end()
    assert "shared offline phase" in capsys.readouterr().err


def test_a_run_checkpoint_and_the_shared_offline_phase_saved_together_finish(tmp_path):
    """At the offline phase's last chunk both hooks save; their writes share one thread (two
    orbax saves at once in two threads deadlocked). Repeated, each within a time limit."""
    import threading

    def both(i: int) -> None:
        ckpt = Checkpointer(tmp_path / f"c{i}", "k", background=True)
        store = SharedOfflinePhase(tmp_path / f"s{i}", "k" * 40, background=True)
        for hook in (ckpt, store):
            hook.begin({"offline": 1}, {}, n_runs=2)
            hook.after_chunk("offline", 0, _carry())
        for hook in (ckpt, store):
            hook.end()

    for i in range(4):
        t = threading.Thread(target=both, args=(i,), daemon=True)
        t.start()
        t.join(timeout=120)
        assert not t.is_alive(), f"round {i}: the two saves did not finish"
        assert (tmp_path / f"c{i}" / "offline-000000" / "meta.json").exists()


def test_checkpoints_write_in_the_loop_on_the_cpu_backend():
    """On a CPU backend the writer would compete with the computation for the same cores
    (results/perf-phase/): the runner's checkpoints write in the loop there."""
    import jax

    from jaxo2o.core.checkpoint import background_by_default

    assert background_by_default() == (jax.default_backend() != "cpu")
    assert Checkpointer("unused", "k").background is background_by_default()


EXIT_DURING_WRITE = """
import sys
import numpy as np
from jaxo2o.core import checkpoint
ckpt = checkpoint.Checkpointer(sys.argv[1], "k", background=True)
ckpt.begin({"online": 10}, {}, 1)
ckpt.save("online", 3, {"a": np.ones((1, 10_000_000), np.float32)}, background=True)
checkpoint.finish_writes()  # what the sweep does on Ctrl-C, before the interpreter shuts down
sys.exit(130)
"""


def test_a_write_in_flight_when_the_process_exits_is_finished(tmp_path):
    """A 40 MB save still being written when the process exits (the sweep's Ctrl-C path) is
    completed by `finish_writes`; left to interpreter shutdown, orbax cannot finish it and the
    checkpoint is lost (or, seen once in the Ctrl-C test, the process hangs)."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", EXIT_DURING_WRITE, str(tmp_path)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 130, proc.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["online-000003"]
    resume = Checkpointer(tmp_path, "k").restore(
        {"online": {"a": np.zeros((1, 10_000_000), np.float32)}}, {"online": {}}
    )
    assert resume is not None and resume.chunk == 3 and resume.carry[0].sum() == 10_000_000
