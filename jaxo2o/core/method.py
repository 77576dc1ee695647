"""The contract every method meets, written down once, and the registry methods join.

A method is a few pure functions over its own state pytree. It knows nothing of seeds, devices,
environments or logging. The shared loop (`jaxo2o.core.loop`) calls, in order:

    state = init(key, obs_size, act_size, hp)
    state, metrics = update(state, batch, key, hp, online=False)   # offline phase, repeated
    state = to_online(state, key, hp)                              # the switch
    action, info = act(state, obs, key, hp, deterministic=False)   # acting online
    state, metrics = update_many(state, batches, keys, hp, online=True)  # online, per iteration

What a method declares besides those functions:
- `name`: the registry key (`--method NAME`); defining a subclass of `Method` with a `name`
  registers it, so a method is one file and nothing outside `jaxo2o/methods/` names it.
- `Config`: a frozen dataclass of *static* settings (shapes: `hidden` widths, ensemble sizes,
  schedule horizons; anything that changes the compiled program). `Method()` builds the default.
- `HParams`: a `flax.struct.dataclass` of *traced* values with defaults (learning rates,
  expectiles, temperatures): a sweep vmaps over them, so a grid compiles once.
  `default_hparams(**overrides)` builds and validates one; `validate(hp)` checks a batch of them
  before anything compiles and names the first bad field.
- `reward_normalization`: how the run transforms rewards for this method (`REWARD_NORMALIZATIONS`).
- `update_many`: the `updates_per_step` updates of one online iteration, on batches stacked on a
  leading axis; by default `update` on each in turn. A method whose update-to-data ratio shares
  one actor step among several critic steps (RLPD, WSRL) overrides it.
- `mc_returns`: a `ReturnSpec` if the method reads Monte-Carlo returns-to-go from its batches
  (`batch.mc_return`, Cal-QL); the run then carries them (`jaxo2o.core.returns`). None otherwise.
- `flop_passes(obs_size, act_size, batch, online)`: every network evaluation of one update, for
  `make perf`'s FLOP count (`jaxo2o.core.flops`).

`metrics` and `info` are flat dicts of scalars (per-environment arrays for `info`).
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from jaxo2o.config import ConfigError, require_in
from jaxo2o.core.flops import Pass
from jaxo2o.core.returns import ReturnSpec

Metrics = dict[str, jax.Array]

REWARD_NORMALIZATIONS = ("none", "trajectory_range", "minus_one", "plus_minus_five")
"""How a run transforms every sampled reward for a method (the experiment computes the numbers):
- none:             r
- trajectory_range: r * 1000 / (max - min trajectory return of the dataset) (IQL-family locomotion)
- minus_one:        r - 1 (AntMaze-style sparse tasks)
- plus_minus_five:  10 r - 5 (Cal-QL's and WSRL's AntMaze: {0, 1} -> {-5, +5})"""

_REGISTRY: dict[str, type[Method]] = {}


def registered() -> dict[str, type[Method]]:
    """Every method class defined so far, by name (see `jaxo2o.methods.get_method`)."""
    return dict(_REGISTRY)


def check_network_config(config: Any, prefix: str) -> None:
    """The checks every method's static config shares: positive integer `hidden` widths, at
    least one critic (if it has `n_critics`), a known `reward_normalization` (if it has one).
    Raises ConfigError naming `<prefix>.<field>`."""

    require = partial(require_in, prefix)

    hidden = config.hidden
    require(
        len(hidden) > 0 and all(isinstance(h, int) and h > 0 for h in hidden),
        "hidden",
        f"must be positive integer widths, got {hidden!r}",
    )
    if hasattr(config, "n_critics"):
        n = config.n_critics
        ok = isinstance(n, int) and not isinstance(n, bool) and n >= 1
        require(ok, "n_critics", f"must be an integer >= 1, got {n!r}")
    if hasattr(config, "reward_normalization"):
        kind = config.reward_normalization
        require(
            kind in REWARD_NORMALIZATIONS,
            "reward_normalization",
            f"unknown {kind!r}; choose one of {REWARD_NORMALIZATIONS}",
        )


def build_hparams(cls: type, prefix: str, overrides: dict[str, Any]) -> Any:
    """`cls(**overrides)` as float32 arrays; an unknown name is a ConfigError listing the valid."""
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise ConfigError(
            f"{prefix}: unknown hyperparameter(s) {unknown}; choose from {sorted(names)}"
        )
    hp = cls(**overrides)
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), hp)


class Method:
    """Base class of every method: the contract above, with the shared plumbing."""

    name: ClassVar[str]
    Config: ClassVar[type]
    HParams: ClassVar[type]

    def __init_subclass__(cls, register: bool = True, **kwargs: Any) -> None:
        """Registers the class under its `name` (`class X(Method, register=False)`: a class for
        one test's own use, kept out of the registry)."""
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name")
        if name is None or not register:
            return  # an abstract intermediate class, or one kept out of the registry
        other = _REGISTRY.get(name)
        if other is not None and other.__qualname__ != cls.__qualname__:
            raise TypeError(f"method name {name!r} is taken by {other.__module__}.{other.__name__}")
        _REGISTRY[name] = cls

    def __init__(self, config: Any = None):
        self.config = self.Config() if config is None else config
        if not isinstance(self.config, self.Config):
            raise TypeError(
                f"{self.name}: config must be a {self.Config.__name__}, got {type(config)}"
            )

    # ------------------------------------------------------------ settings
    @property
    def reward_normalization(self) -> str:
        return getattr(self.config, "reward_normalization", "none")

    @property
    def mc_returns(self) -> ReturnSpec | None:
        """The Monte-Carlo returns the method reads from its batches, if any (module docstring)."""
        return None

    def default_hparams(self, **overrides: Any) -> Any:
        """The traced defaults with any field replaced by `overrides`, validated."""
        return self.validate(build_hparams(self.HParams, self.name, overrides))

    def validate(self, hp: Any) -> Any:
        """Raise ConfigError naming the first out-of-range field; return `hp` (override)."""
        return hp

    # ------------------------------------------------------------ the pure functions
    def init(self, key: jax.Array, obs_size: int, act_size: int, hp: Any) -> Any:
        raise NotImplementedError

    def update(
        self, state: Any, batch: Any, key: jax.Array, hp: Any, online: bool
    ) -> tuple[Any, Metrics]:
        raise NotImplementedError

    def update_many(
        self, state: Any, batches: Any, keys: jax.Array, hp: Any, online: bool
    ) -> tuple[Any, Metrics]:
        """One online iteration's updates: `update` on each of the batches (leading axis) with
        its key, in turn; the metrics averaged over them."""

        def one(state, xs):
            batch, key = xs
            return self.update(state, batch, key, hp, online)

        state, ms = jax.lax.scan(one, state, (batches, keys))
        return state, jax.tree.map(lambda x: jnp.mean(x, axis=0), ms)

    def to_online(self, state: Any, key: jax.Array, hp: Any) -> Any:
        """The switch from offline to online; the identity unless a method says otherwise."""
        return state

    def act(
        self, state: Any, obs: jax.Array, key: jax.Array, hp: Any, deterministic: bool
    ) -> tuple[jax.Array, Metrics]:
        raise NotImplementedError

    # ------------------------------------------------------------ cost model
    def flop_passes(self, obs_size: int, act_size: int, batch: int, online: bool) -> list[Pass]:
        """Every MLP evaluation of one `update(..., online)`, in the order the code runs them."""
        raise NotImplementedError(f"{self.name}: flop_passes is not written down")
