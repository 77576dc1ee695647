"""The offline-to-online suite per tier: which methods and protocols run on which datasets, with
which step budgets and seeds. The datasets themselves (tasks, sizes, generation budgets) are
defined in `jaxo2o/data/tiers.py`.

Every method in a tier shares the run shape (steps, batch, evaluation cadence), so the methods
are compared at equal budgets; the offline phase of IQL-direct and PEX is the same computation
(same seeds, PEX's offline phase is IQL), i.e. they fine-tune from the same offline result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class MethodSpec:
    """One line of the result table: a method, a protocol and its settings."""

    label: str
    method: str
    protocol: str = "direct"
    hparams: tuple[str, ...] = ()  # "name=value" traced hyperparameters
    method_config: tuple[str, ...] = ()  # "name=value" static config overrides
    offline: bool = True  # run the offline phase (False: starts from fresh networks)
    layers: int = 2  # hidden layers, each of the suite's width (AWAC's actor and critics use 3)
    warmup: bool = False  # collect the suite's warm-up steps before updating (as PEX's script
    # does for all its lines: every online line of a comparison starts updating at the same step)
    warmup_random: bool = False  # ... with uniform random actions (SAC from scratch)
    by_kind: Callable[[str], KindSettings] | None = None  # settings that follow the dataset kind


@dataclass(frozen=True)
class KindSettings:
    """What a line sets per dataset kind (ACA's per-kind configurations)."""

    hparams: tuple[str, ...] = ()
    method_config: tuple[str, ...] = ()
    seed_episodes: int = 0


# IQL-family locomotion settings (spec §1.3) with the IQL reward scaling. PEX uses them too, so it
# shares its offline result with the IQL lines (PEX's own script: raw rewards, inverse temperature
# 10; a named deviation, see the README).
IQL_HPARAMS = ("expectile=0.7", "inverse_temperature=3.0")
IQL_CONFIG = ("reward_normalization=trajectory_range",)

# FamO2O on locomotion: a PROJECT CHOICE (no official FamO2O+IQL locomotion configuration exists):
# IQL's locomotion expectile and reward scaling, coefficient range [1, 5] around IQL's inverse
# temperature 3; the official fine-tuning buffer (one buffer, dataset + online, uniform: "union").
FAMO2O_HPARAMS = ("expectile=0.7", "beta_min=1.0", "beta_max=5.0")


def aca_by_kind(alignment: bool) -> Callable[[str], KindSettings]:
    """ACA's official per-kind settings (clip beta, w schedule, top-N seed episodes, target
    entropy, policy) as suite options; `alignment=False` is the sac-direct comparison line."""

    def settings(kind: str) -> KindSettings:
        from jaxo2o.methods.aca import aca_preset

        config, hp, top_n = aca_preset(kind, alignment=alignment)
        return KindSettings(
            hparams=options_of(hp),
            method_config=(f"policy={config.policy}", f"alignment={alignment}")
            + (f"reward_normalization={config.reward_normalization}",),
            seed_episodes=top_n,
        )

    return settings


def options_of(hp) -> tuple[str, ...]:
    """A traced-hyperparameter pytree as "name=value" options (every field, exact floats)."""
    import dataclasses

    return tuple(f"{f.name}={float(getattr(hp, f.name))!r}" for f in dataclasses.fields(hp))


METHODS: tuple[MethodSpec, ...] = (
    MethodSpec("iql-direct", "iql", "direct", IQL_HPARAMS, IQL_CONFIG, warmup=True),
    MethodSpec("iql-buffer", "iql", "buffer", IQL_HPARAMS, IQL_CONFIG, offline=False, warmup=True),
    MethodSpec(
        "iql-scratch", "iql", "scratch", IQL_HPARAMS, IQL_CONFIG, offline=False, warmup=True
    ),
    MethodSpec("awac-direct", "awac", "direct", layers=3, warmup=True),
    MethodSpec(
        "pex",
        "pex",
        "direct",
        (*IQL_HPARAMS, "selection_inverse_temperature=10.0"),
        IQL_CONFIG,
        warmup=True,
    ),
    MethodSpec("sac-scratch", "sac", "scratch", offline=False, warmup=True, warmup_random=True),
    # FamO2O against IQL with the same buffer (union) and budgets
    MethodSpec("iql-union", "iql", "union", IQL_HPARAMS, IQL_CONFIG, warmup=True),
    MethodSpec(
        "famo2o",
        "famo2o",
        "union",
        FAMO2O_HPARAMS,
        ("reward_normalization=trajectory_range",),
        warmup=True,
    ),
    # ACA against the same SAC+ML checkpoint fine-tuned without alignment (seeded buffer; updates
    # begin once it holds a batch, as the official code)
    MethodSpec("aca", "aca", "seeded", by_kind=aca_by_kind(True)),
    MethodSpec("sac-direct", "aca", "seeded", by_kind=aca_by_kind(False)),
)


@dataclass(frozen=True)
class Suite:
    tier: str
    kinds: tuple[str, ...]
    seeds: int
    offline_steps: int
    online_steps: int
    offline_eval_every: int
    online_eval_every: int
    eval_episodes: int
    batch_size: int = 256
    width: int = 256  # hidden width of every network
    warmup_steps: int = 0  # for methods that warm up (SAC from scratch, PEX)
    methods: tuple[MethodSpec, ...] = field(default=METHODS)
    # the offline table: IQL and behaviour cloning (IQL's actor loss with inverse temperature 0,
    # i.e. every weight 1) trained offline only, on these dataset kinds
    offline_kinds: tuple[str, ...] = ("medium", "medium-replay", "medium-expert")


SUITES: dict[str, Suite] = {
    # seconds: the tiny point task, to check the pipeline end to end
    "smoke": Suite(
        tier="smoke",
        kinds=("medium",),
        offline_kinds=("medium",),
        seeds=2,
        offline_steps=500,
        online_steps=500,
        offline_eval_every=250,
        online_eval_every=50,
        eval_episodes=5,
        batch_size=64,
        width=32,
        warmup_steps=50,
    ),
    # `make bench` on a 2-core CPU: about an hour including the datasets
    "quick": Suite(
        tier="quick",
        kinds=("medium", "medium-replay"),
        seeds=4,
        offline_steps=10_000,
        online_steps=10_000,
        offline_eval_every=2_500,
        online_eval_every=500,
        eval_episodes=5,
        batch_size=256,
        width=64,
        warmup_steps=500,
    ),
    # the papers' protocol (GPU/TPU): 1M offline + 1M online steps, 2x256 networks
    "paper": Suite(
        tier="paper",
        kinds=("medium", "medium-replay", "medium-expert"),
        seeds=8,
        offline_steps=1_000_000,
        online_steps=1_000_000,
        offline_eval_every=50_000,
        online_eval_every=10_000,
        eval_episodes=10,
        width=256,
        warmup_steps=5_000,
    ),
}
