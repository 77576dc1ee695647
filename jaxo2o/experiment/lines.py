"""A sweep of several lines: methods (each with its protocol) x tasks x dataset kinds, each line
one `Experiment` (one compiled set of programs over its seeds and grid).

Named the way a user thinks: `--methods iql:direct pex sac:scratch --tasks
inverted_double_pendulum --kinds medium medium-replay --tier quick` makes six lines; the tier
gives each task's environment (backend, episode length) and each dataset's Minari id
(`jaxo2o/<task>/<kind>-<tier>-v0`). Gymnasium's v5 locomotion tasks (`--tasks Hopper-v5`) take
no tier settings: their data are the standard Minari datasets (`mujoco/hopper/medium-v0`).
A `name=value` option of `--method-config`, `--hparams` or `--grid` applies to every line, or
only to one method's lines when written `method.name=value`
(`--grid pex.selection_inverse_temperature=1,10`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jaxo2o.config import PROTOCOLS, ConfigError, RunConfig
from jaxo2o.data.dataset import dataset_id
from jaxo2o.data.maze_standard import MAZE_DATASETS
from jaxo2o.data.recipe import KINDS
from jaxo2o.data.standard import standard_dataset_id, standard_kinds
from jaxo2o.data.tiers import TIERS
from jaxo2o.envs.gr_maze import TASK_SPECS
from jaxo2o.envs.locomotion import LOCOMOTION_TASKS
from jaxo2o.experiment.spec import Experiment
from jaxo2o.methods import get_method
from jaxo2o.presets import Applied, Preset, domain_of, merge, official, task_run


@dataclass(frozen=True)
class Line:
    """One line of results: an experiment (one method on one dataset, its seeds and grid), its
    name and where its files go. The sweep, the bench's suite and the studies all hand lines to
    the runner (`jaxo2o.experiment.runner`)."""

    label: str  # e.g. "iql-direct"
    task: str
    kind: str  # "" when the dataset was named explicitly
    experiment: Experiment
    preset: dict[str, Any] | None = None  # the official settings applied (`presets.Applied`)
    # called as after(plan, result, dataset, folder) once the line has run and its files are
    # written: files a claim needs beyond the scores (FamO2O: its coefficient over the states)
    after: Callable[..., None] | None = field(default=None, compare=False)

    @property
    def folder(self) -> str:
        """Where the line's files go, relative to the output folder."""
        return "/".join(p for p in (self.task, self.kind or "data", self.label))


def parse_method(item: str) -> tuple[str, str | None]:
    """ "name" or "name:protocol" -> (name, protocol or None); both checked."""
    name, _, protocol = item.partition(":")
    try:
        get_method(name)
    except ConfigError as e:
        raise ConfigError(f"methods: {item!r}: {e}") from None
    if protocol and protocol not in PROTOCOLS:
        raise ConfigError(
            f"methods: {item!r}: unknown protocol {protocol!r}; choose from {PROTOCOLS}"
        )
    return name, protocol or None


def options_for(items: tuple[str, ...], method: str, methods: set[str], where: str) -> tuple:
    """The "name=value" options that apply to `method`: unprefixed ones and "method.name=value"
    ones with the prefix removed. A prefix that names no method of the sweep is an error."""
    out = []
    for item in items:
        name, sep, value = item.partition("=")
        prefix, dot, field = name.partition(".")
        if not dot:
            out.append(item)
            continue
        if prefix not in methods:
            raise ConfigError(
                f"{where}: {item!r} is for method {prefix!r}, which is not in this sweep "
                f"{sorted(methods)}"
            )
        if prefix == method:
            out.append(f"{field}{sep}{value}")
    return tuple(out)


def expand(
    template: Experiment,
    methods: tuple[str, ...] = (),
    tasks: tuple[str, ...] = (),
    kinds: tuple[str, ...] = (),
    tier: str = "quick",
    presets: bool = True,
    given: frozenset[str] = frozenset(),
) -> list[Line]:
    """The lines of a sweep. Without `methods` the template's method; without `tasks` the
    template's environment and dataset (the explicit form: `--env.task`, `--dataset`). With
    `presets`, each line starts from its method's official settings for the task's domain;
    `given` names the run settings the user gave (`given_run_options`): a preset leaves them
    alone even where they equal the default."""

    parsed = [parse_method(m) for m in methods] or [(template.method, None)]
    names = {name for name, _ in parsed}
    if len(set(parsed)) < len(parsed):
        raise ConfigError(f"methods: a line is given twice in {list(methods)}")
    if kinds and not tasks:
        raise ConfigError("kinds: name the task(s) too (--tasks), or give --dataset explicitly")
    if tasks and template.dataset:
        raise ConfigError(
            f"dataset: {template.dataset!r} and --tasks both name the data; use one of them"
        )
    if tasks and not kinds and template.run.offline_steps:
        raise ConfigError("kinds: the offline phase needs data; name the dataset kinds (--kinds)")
    if tier not in TIERS:
        raise ConfigError(f"tier: unknown {tier!r}; choose from {tuple(TIERS)}")
    places: list[tuple[str, str, Experiment]] = []  # (task, kind, experiment with env + data)
    if not tasks:
        places.append((template.env.task, "", template))
    for task in tasks:
        # Gymnasium's v5 tasks and Gymnasium-Robotics' mazes: the standard Minari data
        standard = task in LOCOMOTION_TASKS or task in MAZE_DATASETS
        try:
            data = None if standard else TIERS[tier].task(task)
        except ValueError as e:
            raise ConfigError(f"tasks: {e}") from None
        if standard:
            limit = TASK_SPECS[task].time_limit if task in TASK_SPECS else 1000
            env = dataclasses.replace(template.env, task=task, episode_length=limit)
        else:
            env = dataclasses.replace(
                template.env, task=task, backend=data.backend, episode_length=data.episode_length
            )
        # a maze's kinds, a v5 task's standard kinds, else the SAC-made kinds
        own = standard_kinds(task) if standard else getattr(data, "kinds", KINDS)
        for kind in kinds or ("",):
            if kind and kind not in own:
                raise ConfigError(f"kinds: {task} has no {kind!r} data; its kinds are {own}")
            try:
                if not kind:
                    ds = ""
                else:
                    ds = (
                        standard_dataset_id(task, kind)
                        if standard
                        else dataset_id(task, kind, tier)
                    )
            except ValueError as e:
                raise ConfigError(f"kinds: {e}") from None
            places.append((task, kind, dataclasses.replace(template, env=env, dataset=ds)))
    lines = []
    for task, kind, base in places:
        for name, protocol in parsed:
            exp = dataclasses.replace(
                base,
                method=name,
                method_config=options_for(base.method_config, name, names, "method_config"),
                hparams=options_for(base.hparams, name, names, "hparams"),
                grid=options_for(base.grid, name, names, "grid"),
            )
            exp, applied = with_preset(exp, task or exp.env.task, kind, protocol, presets, given)
            lines.append(
                Line(f"{name}-{exp.run.protocol}", task, kind, exp, applied and applied.record())
            )
    return lines


def given_run_options(argv: list[str]) -> frozenset[str]:
    """The `RunConfig` fields a command line sets (`--run.eval-episodes 10`,
    `--run.eval-episodes=10`, `--run.no-progress`)."""
    names = set()
    for token in argv:
        if token.startswith("--run."):
            name = token.removeprefix("--run.").partition("=")[0].replace("-", "_")
            names.add(name.removeprefix("no_") if name.startswith("no_") else name)
    return frozenset(names)


def with_preset(
    exp: Experiment,
    task: str,
    kind: str,
    protocol: str | None,
    presets: bool = True,
    given: frozenset[str] = frozenset(),
) -> tuple[Experiment, Applied | None]:
    """The experiment with its method's official settings for the task's domain
    (`jaxo2o.presets`) under the user's options, which win; `protocol`: the one the line names
    (None: the preset's, else the template's --run.protocol). The task's own run settings
    (`presets.task_run`: the standard mazes' 100 evaluation episodes) join the method's preset."""
    defaults = RunConfig()
    preset = official(exp.method, domain_of(task), kind, online=exp.run.online_steps > 0)
    if presets and task_run(task):  # the task's own protocol (the standard mazes' evaluation)
        base = preset or Preset(f"evaluation/{domain_of(task)}")
        preset = dataclasses.replace(base, run=task_run(task) | base.run)
    if not presets or preset is None:
        run = exp.run if protocol is None else dataclasses.replace(exp.run, protocol=protocol)
        return dataclasses.replace(exp, run=run), None
    hparams, method_config, overridden = merge(preset, exp.hparams, exp.method_config, exp.grid)
    run, overridden = exp.run, list(overridden)
    if preset.protocol:
        explicit = protocol or (run.protocol != defaults.protocol and run.protocol)
        overridden += ["protocol"] if explicit and explicit != preset.protocol else []
        run = dataclasses.replace(run, protocol=explicit or preset.protocol)
    elif protocol is not None:
        run = dataclasses.replace(run, protocol=protocol)
    changes = {}  # run settings: each where the user left the default
    for name, value in preset.run.items():
        if name not in given and getattr(run, name) == getattr(defaults, name):
            changes[name] = value
        elif getattr(run, name) != value:
            overridden.append(f"run.{name}")
    run = dataclasses.replace(run, **changes)
    if preset.seed_episodes and run.protocol == "seeded":
        if run.seed_episodes != defaults.seed_episodes:
            overridden.append("seed_episodes")
        else:
            run = dataclasses.replace(run, seed_episodes=preset.seed_episodes)
    exp = dataclasses.replace(exp, run=run, hparams=hparams, method_config=method_config)
    return exp, Applied(preset, tuple(overridden))
