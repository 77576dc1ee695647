"""The method contract: a method defined in this file alone (no edit anywhere else) runs through
the runner, the sweep's command line and the FLOP counter; the package's layering (core imports
no method, reading data imports no training code); and the command line's errors."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import REPO_ROOT

from jaxo2o import sweep
from jaxo2o.config import ConfigError, EnvConfig, RunConfig
from jaxo2o.core.flops import Pass
from jaxo2o.core.method import Method
from jaxo2o.core.networks import MLP
from jaxo2o.core.optim import NetState, net_init, net_step
from jaxo2o.experiment import Experiment
from jaxo2o.methods import get_method, method_names

sys.path.insert(0, str(REPO_ROOT))
from benchmarks.perf_update import update_flops  # noqa: E402


# ---------------------------------------------------------------- a toy method, defined here only
@dataclasses.dataclass(frozen=True)
class ToyConfig:
    hidden: tuple[int, ...] = (8,)


@flax.struct.dataclass
class ToyHParams:
    lr: jnp.ndarray = 1e-2


class ToyState(NamedTuple):
    policy: NetState


class ToyCloning(Method):
    """Behaviour cloning by mean squared error: the smallest thing that meets the contract."""

    name = "toy-cloning"
    Config = ToyConfig
    HParams = ToyHParams

    def validate(self, hp):
        if not isinstance(hp.lr, jax.core.Tracer) and np.any(np.asarray(hp.lr) <= 0):
            raise ConfigError("toy-cloning.lr: must be > 0")
        return hp

    def _net(self, act_size: int) -> MLP:
        return MLP(self.config.hidden, act_size)

    def init(self, key, obs_size, act_size, hp):
        params = self._net(act_size).init(key, jnp.zeros((1, obs_size)))["params"]
        return ToyState(net_init(params, optax.adam(hp.lr)))

    def update(self, state, batch, key, hp, online):
        act_size = batch.action.shape[-1]

        def loss(params):
            pred = jnp.tanh(self._net(act_size).apply({"params": params}, batch.obs))
            return jnp.mean((pred - batch.action) ** 2)

        value, grads = jax.value_and_grad(loss)(state.policy.params)
        return ToyState(net_step(state.policy, grads, optax.adam(hp.lr))), {"loss": value}

    def act(self, state, obs, key, hp, deterministic):
        act_size = state.policy.params["Dense_1"]["bias"].shape[-1]
        a = jnp.tanh(self._net(act_size).apply({"params": state.policy.params}, obs))
        return a, {}

    def flop_passes(self, obs_size, act_size, batch, online):
        return [Pass("policy(s) loss", (obs_size, *self.config.hidden, act_size), batch, 1, True)]


def test_defining_a_method_registers_it():
    assert "toy-cloning" in method_names()
    assert get_method("toy-cloning") is ToyCloning
    assert ToyCloning().config == ToyConfig()
    hp = ToyCloning().default_hparams(lr=0.5)
    assert float(hp.lr) == 0.5 and hp.lr.dtype == jnp.float32
    with pytest.raises(ConfigError, match=r"toy-cloning: unknown hyperparameter\(s\) \['lrr'\]"):
        ToyCloning().default_hparams(lrr=1.0)
    with pytest.raises(ConfigError, match="toy-cloning.lr"):
        ToyCloning().default_hparams(lr=-1.0)


def test_the_toy_method_runs_through_the_sweep_and_the_flop_counter(tmp_path):
    out = tmp_path / "toy"
    argv = [
        "--method", "toy-cloning", "--env.task", "point", "--env.episode-length", "20",
        "--run.online-steps", "40", "--run.online-eval-every", "20", "--run.protocol", "scratch",
        "--run.batch-size", "8", "--run.eval-episodes", "2", "--run.no-progress",
        "--seeds", "2", "--grid", "lr=0.01,0.1", "--out", str(out),
    ]  # fmt: skip
    assert sweep.main(argv) == 0
    rows = (out / "runs.csv").read_text().splitlines()
    assert len(rows) == 1 + 4 and rows[1].startswith("toy-cloning,point")
    fl = update_flops(ToyCloning(), 3, 2, 5)
    # hidden 8: forward 2*5*(3*8 + 8*2) = 400; weight gradients 400; input gradient of layer 2 160
    assert fl["counted_flops"] == fl["traced_dot_flops"] == 960


# ---------------------------------------------------------------- layering
def _imported_after(statement: str) -> list[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT
    )
    return out.stdout.split()


def test_core_imports_no_method_and_reading_data_imports_no_training():
    core = _imported_after("import jaxo2o.core.loop, jaxo2o.core.runner, jaxo2o.core.method")
    assert not [m for m in core if m.startswith("jaxo2o.methods")]
    data = _imported_after("import jaxo2o.data; jaxo2o.data.load_dataset")
    assert not [m for m in data if m.startswith(("jaxo2o.methods", "jaxo2o.core.loop"))]
    assert "jaxo2o.data.generate" not in data


# ---------------------------------------------------------------- the command line's errors
def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "jaxo2o.sweep", *args, "--dry-run"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--method", "nosuch"], ["method", "'nosuch'", "iql", "pex"]),
        (["--method", "iql", "--hparams", "expectile"], ["hparams", "'expectile'", "name=value"]),
        (
            ["--method", "iql", "--run.protocol", "scratch", "--grid", "offline_fraction=0.5"],
            ["grid.offline_fraction", "'scratch'", "direct"],
        ),
        (["--method", "iql", "--grid", "expectile=0.7,x"], ["grid.expectile", "'x'"]),
    ],
)
def test_cli_errors_are_one_line_with_exit_status_2(args, names):
    proc = _cli(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for name in names:
        assert name in lines[0]


def test_absurd_seed_count_is_refused_in_under_a_second():
    run = RunConfig(online_steps=100, online_eval_every=50, batch_size=8, protocol="scratch")
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="100000000 runs"):
        Experiment(method="iql", env=EnvConfig(), run=run, seeds=100_000_000)
    assert time.perf_counter() - t0 < 1.0


def test_the_project_never_names_a_method_outside_methods_and_the_suite():
    """Adding a method touches its own file (and the suite's table of lines, to bench it, and
    `jaxo2o/presets.py` if it has official per-domain settings)."""
    names = [n for n in method_names() if n != "toy-cloning"]
    # the official settings (presets), the suite's table (and the claims made about its lines),
    # the behaviour SAC of dataset generation, perf's reference IQL, and the diagnostics of one
    # method by design (FamO2O's coefficient study and the file it shares with the suite)
    allowed = {
        "jaxo2o/presets.py",
        "benchmarks/suite.py",
        "benchmarks/famo2o_coefficient.py",
        "benchmarks/aca_schedule.py",
        "benchmarks/aca_variants.py",
        "benchmarks/claims.py",
        "benchmarks/perf.py",
        "benchmarks/famo2o_study.py",
        "jaxo2o/data/generate.py",
    }
    offenders = []
    for path in list((REPO_ROOT / "jaxo2o").rglob("*.py")) + list(
        (REPO_ROOT / "benchmarks").rglob("*.py")
    ):
        rel = path.relative_to(REPO_ROOT).as_posix()
        if rel.startswith("jaxo2o/methods/") or rel in allowed:
            continue
        text = path.read_text()
        offenders += [(rel, n) for n in names if f'== "{n}"' in text or f"methods.{n} " in text]
    assert not offenders, offenders
    assert Path(REPO_ROOT / "jaxo2o/methods/base.py").exists() is False
