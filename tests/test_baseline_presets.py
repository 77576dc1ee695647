"""The official per-domain settings of Cal-QL, CQL, RLPD and WSRL (`jaxo2o.presets`), with their
run settings (update-to-data ratio, warm-up, batch mix), applied by the sweep's line expansion
under the command line's own options."""

from __future__ import annotations

import pytest

from jaxo2o.config import RunConfig
from jaxo2o.experiment import Experiment, parse_pairs
from jaxo2o.experiment.lines import expand
from jaxo2o.experiment.plan import build_method


def _line(method: str, task: str, tier: str, **template):
    kind = "play" if "maze" in task else "medium"
    (line,) = expand(Experiment(**template), (method,), (task,), (kind,), tier)
    return line


def test_rlpd_on_locomotion_gets_its_protocol_ratio_and_random_start():
    line = _line("rlpd", "point", "smoke")
    run = line.experiment.run
    assert line.label == "rlpd-buffer" and run.offline_steps == 0
    assert (run.updates_per_step, run.warmup_steps, run.warmup_random) == (20, 5000, True)
    assert parse_pairs(line.experiment.method_config, "m")["backup_entropy"] == "True"


def test_maze_presets_set_the_sparse_reward_settings():
    calql = _line("calql", "pointmaze-umaze", "quick").experiment
    opts = parse_pairs(calql.method_config, "method_config")
    assert opts["reward_normalization"] == "plus_minus_five" and opts["lagrange"] == "True"
    method = build_method("calql", opts, 0)
    assert method.mc_returns.failure_reward == 0.0 and method.config.hidden == (256,) * 4
    assert calql.run.offline_fraction == 0.5 and calql.run.updates_per_step == 1
    wsrl = _line("wsrl", "pointmaze-umaze", "quick").experiment
    assert wsrl.run.offline_fraction == 0.0 and wsrl.run.updates_per_step == 4
    assert wsrl.run.warmup_steps == 5001 and not wsrl.run.warmup_random
    rlpd = _line("rlpd", "pointmaze-umaze", "quick").experiment
    assert parse_pairs(rlpd.method_config, "m")["n_target_critics"] == "1"


def test_command_line_options_win_over_the_preset():
    run = RunConfig(updates_per_step=2, offline_steps=100, offline_eval_every=50)
    line = _line("rlpd", "point", "smoke", run=run, method_config=("hidden=32,32",))
    opts = parse_pairs(line.experiment.method_config, "method_config")  # no duplicate names
    assert opts["hidden"] == "32,32"
    assert line.experiment.run.updates_per_step == 2 and line.experiment.run.offline_steps == 100
    assert {"hidden", "run.updates_per_step", "run.offline_steps"} <= set(
        line.preset["overridden_by_user"]
    )
    (named,) = expand(Experiment(), ("rlpd:scratch",), ("point",), ("medium",), "smoke")
    assert named.experiment.run.protocol == "scratch"  # a protocol named by the user stays


@pytest.mark.parametrize("method", ["cql", "calql", "rlpd", "wsrl"])
def test_every_preset_builds_a_valid_method(method):
    for task, tier in (("point", "smoke"), ("pointmaze-umaze", "quick")):
        exp = _line(method, task, tier).experiment
        m = build_method(method, parse_pairs(exp.method_config, "method_config"), 0)
        m.default_hparams(**{k: float(v) for k, v in parse_pairs(exp.hparams, "h").items()})
