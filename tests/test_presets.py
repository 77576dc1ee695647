"""Official settings in one place (`jaxo2o.presets`): the sweep applies them by the task's
domain, a user's option wins and is named, the bench's suite uses the same objects; and the host
loop's hooks (divergence flags, the optional TensorBoard logger)."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np

from benchmarks.run import experiment_for
from benchmarks.suite import SUITES
from jaxo2o import presets
from jaxo2o.config import EnvConfig, RunConfig
from jaxo2o.core.evaluation import EvalResult
from jaxo2o.core.hooks import DivergenceWatch, MetricsLogger
from jaxo2o.experiment import Experiment, parse_pairs
from jaxo2o.experiment.lines import expand, given_run_options
from jaxo2o.sweep import main as sweep_main


def _template(**kw) -> Experiment:
    run = RunConfig(offline_steps=20, online_steps=20, offline_eval_every=10,
                    online_eval_every=10, batch_size=8, eval_episodes=2)  # fmt: skip
    return Experiment(**({"method": "iql", "env": EnvConfig(task="point"), "run": run} | kw))


def test_famo2o_takes_its_domains_settings_and_protocol():
    """Locomotion: the project's [1, 5] range and IQL's 0.7 and reward scaling; mazes: the
    official AntMaze [8, 14], 0.9, r - 1; both on the official union buffer."""
    (loco,) = expand(_template(), ("famo2o",), ("point",), ("medium",), "smoke")
    (maze,) = expand(_template(), ("famo2o",), ("pointmaze-umaze",), ("play",), "quick")
    for line, expected, rewards in [
        (loco, {"expectile": "0.7", "beta_min": "1", "beta_max": "5"}, "trajectory_range"),
        (maze, {"expectile": "0.9", "beta_min": "8", "beta_max": "14"}, "minus_one"),
    ]:
        exp = line.experiment
        assert parse_pairs(exp.hparams, "hparams") == expected
        assert parse_pairs(exp.method_config, "c")["reward_normalization"] == rewards
        assert exp.run.protocol == "union" and line.label == "famo2o-union"
        assert line.preset["overridden_by_user"] == []
    assert loco.preset["name"] == "famo2o/locomotion" and maze.preset["name"] == "famo2o/maze"


def test_a_users_option_wins_over_the_preset_and_is_named():
    exp = _template(hparams=("famo2o.expectile=0.8",), grid=("beta_max=6,7",))
    (line,) = expand(exp, ("famo2o:direct",), ("point",), ("medium",), "smoke")
    e = line.experiment
    hp = parse_pairs(e.hparams, "hparams")
    assert hp["expectile"] == "0.8" and "beta_max" not in hp and hp["beta_min"] == "1"
    assert e.grid == ("beta_max=6,7",) and e.run.protocol == "direct"
    assert line.preset["overridden_by_user"] == ["beta_max", "expectile", "protocol"]
    (plain,) = expand(exp, ("famo2o",), ("point",), ("medium",), "smoke", presets=False)
    assert plain.preset is None and plain.experiment.hparams == ("expectile=0.8",)


def test_standard_mazes_evaluate_on_100_episodes_unless_the_user_says_otherwise():
    """Whatever the method (sac-scratch has no preset), a standard maze's evaluation runs CORL's
    100 episodes; an explicit --run.eval-episodes wins and is named; the point-mass mazes and
    locomotion keep the run's default."""
    plain = Experiment(method="iql")
    for method in ("iql", "sac"):
        (line,) = expand(plain, (method,), ("PointMaze_UMaze-v3",), ("d4rl",))
        assert line.experiment.run.eval_episodes == 100
        assert "run.eval_episodes=100" in line.preset["settings"]
    (own,) = expand(_template(), ("iql",), ("PointMaze_UMaze-v3",), ("d4rl",))
    assert own.experiment.run.eval_episodes == 2
    assert "run.eval_episodes" in own.preset["overridden_by_user"]
    # the default value given on the command line is the user's too
    argv = ["--method", "iql", "--run.eval-episodes", "10", "--run.no-progress"]
    assert given_run_options(argv) == {"eval_episodes", "progress"}
    assert given_run_options(["--run.eval-episodes=10"]) == {"eval_episodes"}
    (ten,) = expand(
        plain, ("iql",), ("PointMaze_UMaze-v3",), ("d4rl",), given=frozenset(["eval_episodes"])
    )
    assert ten.experiment.run.eval_episodes == 10
    assert "run.eval_episodes" in ten.preset["overridden_by_user"]
    (off,) = expand(plain, ("sac",), ("PointMaze_UMaze-v3",), ("d4rl",), presets=False)
    assert off.experiment.run.eval_episodes == RunConfig().eval_episodes
    for task, kind, tier in (("pointmaze-umaze", "play", "quick"), ("point", "medium", "smoke")):
        (line,) = expand(plain, ("iql",), (task,), (kind,), tier)
        assert line.experiment.run.eval_episodes == RunConfig().eval_episodes == 10


def test_aca_gets_the_seeded_protocol_and_its_kinds_episodes():
    """ACA's medium-replay row: 50 best episodes, K = 40, on the seeded buffer."""
    (line,) = expand(_template(), ("aca",), ("point",), ("medium-replay",), "smoke")
    e = line.experiment
    assert e.run.protocol == "seeded" and e.run.seed_episodes == 50
    assert parse_pairs(e.hparams, "hparams")["w_k"] == "40"


def test_the_suite_builds_its_lines_from_the_same_presets():
    suite = SUITES["quick"]
    env = EnvConfig(task="point", episode_length=100)
    for label, preset in [("famo2o", presets.famo2o), ("pex", presets.pex)]:
        spec = next(s for s in suite.methods if s.label == label)
        for domain in presets.DOMAINS:
            exp = experiment_for(suite, spec, env, "ds/x-v0", "medium", domain)
            hp, cfg = preset(domain).as_options()
            assert exp.hparams == hp and set(cfg) <= set(exp.method_config)


def test_dry_run_prints_the_locomotion_settings(capsys):
    """The issue's example: FamO2O on inverted_double_pendulum no longer gets AntMaze's range."""
    args = ["--methods", "famo2o", "--tasks", "inverted_double_pendulum", "--kinds", "medium"]
    sweep_main([*args, "--dry-run"])  # the settings print before the dataset is looked for
    out = capsys.readouterr().out
    assert "preset famo2o/locomotion: expectile=0.7 beta_min=1 beta_max=5" in out
    assert "beta_min=8" not in out


def _ev(returns) -> EvalResult:
    returns = np.asarray(returns, np.float32)
    return EvalResult(returns, np.ones_like(returns))


def test_divergence_watch_names_the_runs_once_per_phase(capsys):
    watch = DivergenceWatch("line")
    watch.begin({"offline": 2, "online": 0}, {}, n_runs=3)
    metrics = {"loss": np.array([1.0, np.nan, 2.0])}
    watch.record("offline", (_ev([[1.0], [2.0], [3.0]]), metrics))
    watch.record("offline", (_ev([[1.0], [np.inf], [np.inf]]), metrics))
    err = capsys.readouterr().err
    assert err.count("not finite") == 1 and "runs [1]" in err


def test_metrics_logger_writes_events_and_tensorboardx_loads_only_when_asked(tmp_path):
    code = "import jaxo2o.core.hooks, sys; print('tensorboardX' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert loaded.stdout.strip() == "False", loaded.stderr
    log = MetricsLogger(tmp_path, SimpleNamespace(offline_eval_every=10, online_eval_every=5))
    log.record("offline", (_ev([[1.0], [3.0]]), {"loss": np.array([0.5, 1.5])}))
    log.end()
    (events,) = tmp_path.glob("events.out.tfevents.*")
    assert events.stat().st_size > 0 and log.step == 10
