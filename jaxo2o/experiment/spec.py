"""What an experiment is, as a user writes it: one method on one task (and dataset), over seeds
and a grid of traced hyperparameters, with "name=value" options; and the parsing of those
options. Everything here is checked in Python, before anything is built or compiled."""

from __future__ import annotations

import math
import types
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any

import tyro

from jaxo2o.config import ConfigError, EnvConfig, RunConfig
from jaxo2o.methods import get_method, method_names

RUN_GRID_KEYS = ("offline_fraction",)  # grid keys that are run-level, not method, hyperparameters
MAX_RUNS = 1_000_000  # a batch of more runs than this is refused before anything is built


@dataclass(frozen=True)
class Experiment:
    """One method x one task/dataset, over seeds and a grid of traced hyperparameters.

    Options are "name=value" strings so the command line stays flat:
    `method_config` sets static fields of the method's config (e.g. "hidden=64,64");
    `hparams` fixes traced hyperparameters ("expectile=0.9"); `grid` sweeps them
    ("expectile=0.7,0.9"), and the runs are the product of the grid and the seeds.
    """

    method: Annotated[str, tyro.conf.arg(help=f"one of {method_names()}")] = "sac"
    env: EnvConfig = field(default_factory=EnvConfig)
    run: RunConfig = field(default_factory=RunConfig)
    dataset: str = ""  # Minari dataset id, or a D4RL .hdf5 path, of the offline data ("" = none)
    reference: str = ""  # dataset id whose reference scores normalize returns ("" = `dataset`)
    seeds: int = 4  # runs per grid point, seeds first_seed, first_seed + 1, ...
    first_seed: int = 0
    method_config: tuple[str, ...] = ()  # static settings, e.g. hidden=64,64 (recompiles)
    hparams: tuple[str, ...] = ()  # traced hyperparameters fixed for every run, e.g. tau=0.01
    grid: tuple[str, ...] = ()  # traced values swept in one program, e.g. expectile=0.7,0.9

    def __post_init__(self):
        get_method(self.method)  # an unknown name is a ConfigError listing the choices
        if self.seeds < 1:
            raise ConfigError(f"seeds: must be >= 1, got {self.seeds}")
        if self.first_seed < 0:
            raise ConfigError(f"first_seed: must be >= 0, got {self.first_seed}")
        parse_pairs(self.method_config, "method_config")
        parse_pairs(self.hparams, "hparams")
        grid = parse_pairs(self.grid, "grid")
        for key, values in grid.items():
            for v in values.split(","):
                if v:
                    parse_float(v, f"grid.{key}")
        mix = self.run.batch_mix
        if "offline_fraction" in grid and not mix.gridable:
            raise ConfigError(
                f"grid.offline_fraction: protocol {self.run.protocol!r} fixes the batch mix "
                f"({mix.why}); vary it only with protocols 'direct' or 'buffer'"
            )
        if self.n_runs > MAX_RUNS:
            raise ConfigError(
                f"seeds: {self.seeds} seeds x {self.n_runs // self.seeds} grid points = "
                f"{self.n_runs} runs; at most {MAX_RUNS} runs fit one batch"
            )

    @property
    def n_runs(self) -> int:
        """Seeds x grid points, counted without building anything."""
        grid = parse_pairs(self.grid, "grid")
        sizes = [len([v for v in s.split(",") if v]) for s in grid.values()]
        return self.seeds * math.prod(sizes)

    def check_data(self) -> None:
        """Cross-field checks between the run and the offline data."""
        if self.run.offline_steps and not self.dataset:
            raise ConfigError(
                f"dataset: run.offline_steps={self.run.offline_steps} needs offline data; "
                "name a Minari dataset id (see `python -m jaxo2o.data list`)"
            )
        needs_data = self.run.online_steps and self.run.samples_offline_data_online
        if needs_data and not self.dataset:
            raise ConfigError(
                f"dataset: protocol {self.run.protocol!r} samples offline data online; "
                "name a dataset or use protocol 'scratch'"
            )


# ------------------------------------------------------------------ parsing "name=value" options
def parse_pairs(items: tuple[str, ...], where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ConfigError(f"{where}: expected 'name=value', got {item!r}")
        if name.strip() in out:
            raise ConfigError(f"{where}: {name.strip()!r} given twice")
        out[name.strip()] = value.strip()
    return out


def coerce(value: str, typ: Any, where: str) -> Any:
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if origin in (typing.Union, types.UnionType) and type(None) in args:  # "X | None"
        if value.lower() == "none":
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return coerce(value, inner, where)
    try:
        if origin is tuple:
            inner = typing.get_args(typ)[0]
            return tuple(inner(v) for v in value.split(",") if v)
        if typ is bool:
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(value)
            return value.lower() in ("true", "1")
        return typ(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: cannot read {value!r} as {typ}") from None


def parse_float(value: str, where: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{where}: expected a number, got {value!r}") from None
