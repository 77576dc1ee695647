"""The offline-to-online suite per tier: which lines (method + protocol + settings) run on which
datasets, with which step budgets and seeds. The datasets themselves (tasks, sizes, generation
budgets) are defined in `jaxo2o/data/tiers.py`.

Settings follow the task's *domain*: "locomotion" (the SAC-made datasets of Brax/point tasks) or
"maze" (the point-mass mazes, AntMaze-style); each line says what it uses in each domain and,
for ACA, per dataset kind. Every line of a domain shares the run shape (steps, batch, evaluation
cadence), so the methods are compared at equal budgets; lines that start from the same offline
method and settings (IQL-direct, IQL-union, PEX) fine-tune from the same offline result (same
seeds; PEX's offline phase is IQL's, bit for bit).

Warm-ups, line by line (online steps collected before the first update): the quick tier's
FamO2O, iql-union, AWAC and SAC from scratch wait 500 steps (`Budget.warmup_steps`), PEX and its
baselines (iql-direct, iql-buffer) 5,000 (PEX's script). For FamO2O and iql-union this is a
DEVIATION: the official code (`family_train_finetune.py`, IQL's `train_finetune.py`) updates from
the first online step; kept in the quick tier, whose committed results were made with it, and
removed in the paper tier (`line_budgets`). ACA and sac-direct have none (updates begin once the
buffer holds a batch, as the official code).

With `jaxo2o/presets.py` (the settings), this table is the one place outside `jaxo2o/methods/`
that names methods.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from benchmarks.famo2o_coefficient import famo2o_coefficient
from jaxo2o import presets
from jaxo2o.presets import Preset

Presets = Callable[[str, str], Preset | None]  # (domain, kind) -> a line's official settings


def no_preset(domain: str, kind: str) -> Preset | None:
    return None


WARMUPS = ("none", "short", "pex")
"""A line's warm-up: none; "short" = `Budget.warmup_steps`; "pex" = `Budget.pex_warmup_steps`, the
official PEX script's `--initial_collection_steps` (5,000) that every line of its comparison
(scratch, buffer, direct, pex) collects before its first update."""


@dataclass(frozen=True)
class MethodSpec:
    """One line of the result table: a method, a protocol and its settings."""

    label: str
    method: str
    protocol: str = "direct"
    preset: Presets = no_preset  # the line's settings, from `jaxo2o.presets`
    offline: bool = True  # run the offline phase (False: starts from fresh networks)
    layers: int = 2  # hidden layers, each of the suite's width (AWAC's actor and critics use 3)
    # online steps collected before updating, one of the budget's warm-ups (`WARMUPS`). Every line
    # of one comparison warms up alike, so they all start updating at the same step (as PEX's
    # script does for all its lines)
    warmup: str = "none"
    warmup_random: bool = False  # ... with uniform random actions (SAC from scratch)
    # gradient steps per online step (`--run.updates-per-step`) by tier; absent tiers: 1
    utd: tuple[tuple[str, int], ...] = ()
    # called as after(plan, result, dataset, folder) once the line has run: the files a claim
    # needs beyond the scores (FamO2O: its coefficient over the dataset's states)
    after: Callable[..., None] | None = None

    def __post_init__(self):
        if self.warmup not in WARMUPS:
            raise ValueError(f"{self.label}: warmup {self.warmup!r} not one of {WARMUPS}")

    def utd_of(self, tier: str) -> int:
        return dict(self.utd).get(tier, 1)


# Every line's method settings come from `jaxo2o.presets` (sources named there). The IQL family
# fine-tunes with IQL's fine-tuning recipe (a constant actor rate; PEX's offline phase is IQL's,
# so they share one offline result); the offline table's IQL uses the offline recipe (cosine).
IQL_FINETUNE: Presets = lambda domain, kind: presets.iql(domain, finetuning=True)
PEX: Presets = lambda domain, kind: presets.pex(domain)
AWAC: Presets = lambda domain, kind: presets.awac(domain)
FAMO2O: Presets = lambda domain, kind: presets.famo2o(domain)
ACA: Presets = lambda domain, kind: presets.aca(domain, kind, alignment=True)
SAC_DIRECT: Presets = lambda domain, kind: presets.aca(domain, kind, alignment=False)


def aca_scaled(domain: str, kind: str) -> Preset | None:
    """ACA's preset with its w schedule scaled to the run's online updates (not official: in
    a short online phase the official absolute K leaves w far above w_min; `jaxo2o.methods.aca`)."""
    p = presets.aca(domain, kind, alignment=True)
    return p and dataclasses.replace(p, config={**p.config, "w_schedule": "scaled"})


def suite_sized(method: str) -> Presets:
    """Cal-QL, CQL, RLPD or WSRL's official preset without its widths (the suite's width and
    layers size every line) and without its run shape (the line's budget, warm-up and ratio);
    its batch mix (`run.offline_fraction`) stays."""

    def preset(domain: str, kind: str) -> Preset:
        p = presets.calql_rlpd_wsrl(method, domain)
        config = {k: v for k, v in p.config.items() if k not in ("hidden", "actor_hidden")}
        run = {k: v for k, v in p.run.items() if k == "offline_fraction"}
        return dataclasses.replace(p, config=config, run=run)

    return preset


# Update-to-data ratios: the official RLPD 20 and WSRL 4 in the paper tier; the quick tier takes
# 2 for both (an RLPD online step at G = 20 is 20 critic steps of a 10-critic ensemble, each
# ~8-10x an IQL update on this CPU: results/baselines-throughput.md). Cal-QL and CQL: 1, as theirs.
# Cost: a Cal-QL/CQL update is ~4.5x an IQL update at the quick tier's batch 64 and width 64 on
# a quiet 2-core CPU (WSRL's pretraining ~8x; `python -m benchmarks.perf_baselines --batch 64
# --width 64`), so the quick tier shortens their offline phase (`CQL_FAMILY` below).
# Warm-ups: RLPD's 5,000 random steps and WSRL's 5,000 frozen-policy steps are the budget's "pex"
# count (5,000 in quick and paper); Cal-QL trains from the first step (no warm-up).
QUICK_UTD = 2
BASELINES: tuple[MethodSpec, ...] = (
    MethodSpec("calql", "calql", "direct", suite_sized("calql")),
    MethodSpec("cql", "cql", "direct", suite_sized("cql")),
    MethodSpec(
        "rlpd",
        "rlpd",
        "buffer",
        suite_sized("rlpd"),
        offline=False,
        warmup="pex",
        warmup_random=True,
        utd=(("smoke", 2), ("quick", QUICK_UTD), ("paper", 20)),
    ),
    MethodSpec(
        "wsrl",
        "wsrl",
        "direct",
        suite_sized("wsrl"),
        warmup="pex",
        utd=(("smoke", 2), ("quick", QUICK_UTD), ("paper", 4)),
    ),
    # WSRL's ablation: the same fine-tuning on online data only, without the warm-up rollouts
    MethodSpec(
        "wsrl-no-warmup",
        "wsrl",
        "direct",
        suite_sized("wsrl"),
        utd=(("smoke", 2), ("quick", QUICK_UTD), ("paper", 4)),
    ),
)


METHODS: tuple[MethodSpec, ...] = (
    # PEX against the baselines of its script, each warming up as the script does
    MethodSpec("iql-direct", "iql", "direct", IQL_FINETUNE, warmup="pex"),
    MethodSpec("iql-buffer", "iql", "buffer", IQL_FINETUNE, offline=False, warmup="pex"),
    MethodSpec("pex", "pex", "direct", PEX, warmup="pex"),
    MethodSpec("awac-direct", "awac", "direct", AWAC, layers=3, warmup="short"),
    MethodSpec("sac-scratch", "sac", "scratch", offline=False, warmup="short", warmup_random=True),
    # FamO2O against IQL with the same buffer (union) and budgets
    MethodSpec("iql-union", "iql", "union", IQL_FINETUNE, warmup="short"),
    MethodSpec("famo2o", "famo2o", "union", FAMO2O, after=famo2o_coefficient, warmup="short"),
    # ACA against the same SAC+ML checkpoint fine-tuned without alignment (seeded buffer; updates
    # begin once it holds a batch, as the official code)
    MethodSpec("aca", "aca", "seeded", ACA),
    MethodSpec("sac-direct", "aca", "seeded", SAC_DIRECT),
    # ACA with its w schedule scaled to the run (the claims show both schedules)
    MethodSpec("aca-scaled", "aca", "seeded", aca_scaled),
    # Cal-QL against CQL; RLPD; WSRL (`BASELINES`)
    *BASELINES,
)


@dataclass(frozen=True)
class Budget:
    """Steps and evaluation cadence of every line on a domain's tasks."""

    offline_steps: int
    online_steps: int
    offline_eval_every: int
    online_eval_every: int
    eval_episodes: int
    warmup_steps: int = 0  # lines with warmup="short" (SAC from scratch, AWAC, the union lines)
    pex_warmup_steps: int = 0  # lines with warmup="pex" (PEX and the baselines of its script)

    def warmup_of(self, spec: MethodSpec) -> int:
        """The online steps `spec`'s line collects before its first update."""
        return {"none": 0, "short": self.warmup_steps, "pex": self.pex_warmup_steps}[spec.warmup]


@dataclass(frozen=True)
class Suite:
    tier: str
    kinds: tuple[str, ...]  # locomotion dataset kinds of the online table
    seeds: int
    budget: Budget  # locomotion
    batch_size: int = 256
    width: int = 256  # hidden width of every network
    methods: tuple[MethodSpec, ...] = field(default=METHODS)
    # the offline table: IQL and behaviour cloning (IQL's actor loss with inverse temperature 0,
    # i.e. every weight 1) trained offline only, on these dataset kinds
    offline_kinds: tuple[str, ...] = ("medium", "medium-replay", "medium-expert")
    maze_kinds: tuple[str, ...] = ()  # maze dataset kinds of both tables (none: no maze runs)
    maze_budget: Budget | None = None
    tasks: tuple[str, ...] = ()  # the tier's tasks that run (empty: all of them)
    # per domain, lines that run on their own official budget instead of the domain's (the
    # paper tier; every pair a claim compares shares one budget)
    line_budgets: dict[str, dict[str, Budget]] = field(default_factory=dict)

    def kinds_of(self, domain: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(online-table kinds, offline-table kinds) of a domain."""
        if domain == "maze":
            return self.maze_kinds, self.maze_kinds
        return self.kinds, self.offline_kinds

    def budget_of(self, domain: str) -> Budget:
        return (self.maze_budget or self.budget) if domain == "maze" else self.budget

    def budget_for(self, label: str, domain: str) -> Budget:
        """The budget of one line on a domain's tasks: its own official one, else the domain's."""
        return self.line_budgets.get(domain, {}).get(label) or self.budget_of(domain)


def domain_of(task_data) -> str:
    """A tier line's domain (`jaxo2o.presets.domain_of` of its task)."""
    return presets.domain_of(task_data.task)


QUICK_BUDGET = Budget(80_000, 15_000, 5_000, 1_000, 5, warmup_steps=500, pex_warmup_steps=5_000)
QUICK_MAZE_BUDGET = Budget(
    35_000, 12_000, 2_500, 1_000, 10, warmup_steps=500, pex_warmup_steps=5_000
)
CQL_FAMILY = ("calql", "cql", "wsrl", "wsrl-no-warmup")  # lines pretrained with a CQL loss
ACA_LINES = ("aca", "sac-direct", "aca-scaled")
WSRL_LINES = ("wsrl", "wsrl-no-warmup")

SUITES: dict[str, Suite] = {
    # seconds: the tiny point task, to check the pipeline end to end
    "smoke": Suite(
        tier="smoke",
        kinds=("medium",),
        offline_kinds=("medium",),
        seeds=2,
        # PEX's 5,000 warm-up steps scaled to this tier: half the online phase, as in `quick`
        budget=Budget(500, 500, 250, 50, 5, warmup_steps=50, pex_warmup_steps=250),
        batch_size=64,
        width=32,
    ),
    # `make bench` on a 2-core CPU, in at most 2 hours with the datasets. Budgets from
    # measurements (results/quick-budgets/, results/maze-iql/, results/quick-budgets-b64/):
    # - inverted_double_pendulum: every critic's mean Q is at ~42% of its fixed point after 10k
    #   offline steps; IQL's and FamO2O's are within 5% of their plateau from ~45k, AWAC's from
    #   65k, SAC+ML's (ACA) after more than 100k. At batch 64 IQL's policy turns (score 5-7 ->
    #   100) only between 65k and 80k, after its critic: 80k offline steps, so the IQL family
    #   starts online from a converged critic and a turned policy (SAC+ML still short of its
    #   plateau, reported against it). One dataset kind (medium: the data score is 35, so a line
    #   can gain online); reacher is left out (saturated: 91-100 for every line).
    # - mazes: IQL's critic settles after ~15k (umaze) to ~20k (medium) updates; at batch 64 its
    #   deterministic policy succeeds only from 25-35k (medium diverse: 2 of 4 seeds from 30-35k):
    #   35k offline steps. Evaluation of a deterministic policy from a jittered fixed start is
    #   nearly all-or-nothing per seed.
    # Batch 64 (not 256): on 2 cores a 4-seed IQL step costs 1.7 / 2.8 / 4.3 ms at batch
    # 64 / 128 / 256 (inverted_double_pendulum, measured), and only batch 64 fits the budget.
    # PEX's script collects 5,000 steps before updating (`--initial_collection_steps`); kept as
    # a count, not a share of the phase
    "quick": Suite(
        tier="quick",
        kinds=("medium",),
        offline_kinds=("medium",),
        seeds=4,
        budget=QUICK_BUDGET,
        batch_size=64,
        width=64,
        maze_kinds=("play", "diverse"),
        maze_budget=QUICK_MAZE_BUDGET,
        tasks=("inverted_double_pendulum", "pointmaze-umaze", "pointmaze-medium"),
        # DEVIATION: the CQL-family lines pretrain a quarter (IDP) / under half (mazes) of the
        # tier's offline steps: one of their updates costs ~4.5x IQL's at this size (the CQL
        # term scores 3 x 10 sampled actions a row; WSRL's 10 critics ~8x), so the tier's 80k
        # would take ~35 min a line on IDP alone. Their end-of-offline scores are therefore not
        # comparable to the other lines'; each claim compares lines of one budget.
        line_budgets={
            domain: {
                label: dataclasses.replace(budget, offline_steps=steps) for label in CQL_FAMILY
            }
            for domain, budget, steps in (
                ("locomotion", QUICK_BUDGET, 20_000),
                ("maze", QUICK_MAZE_BUDGET, 15_000),
            )
        },
    ),
    # the papers' protocol (GPU/TPU), 2x256 networks, each line on its method's official budget:
    # - IQL family, PEX, AWAC (CORL), SAC: 1M offline + 1M online steps, evaluated every 10k
    #   online steps (PEX's cadence; 10 episodes on locomotion, 100 on mazes). Official IQL and
    #   FamO2O evaluate 100 episodes every 100k (every 10k in the last 60k), CORL every 50k: the
    #   10k cadence throughout is a deviation, so the dip has evaluations to be read from;
    # - FamO2O and iql-union update from the first online step (official `train_finetune.py` and
    #   `family_train_finetune.py`: no warm-up); PEX and its baselines collect 5,000 steps first
    #   (PEX's `--initial_collection_steps`); AWAC and SAC from scratch keep 5,000;
    # - ACA and sac-direct: 500k offline (SAC+ML) + 100k online steps, 10 episodes every 1k steps
    #   in both phases (`run_sacml.py`, `run_aca.py`: epochs of 1000 steps, d3rlpy's evaluation);
    #   updates begin once the buffer holds a batch (the seeded protocol), no warm-up.
    # - Cal-QL and CQL on mazes: 1M + 1M, 20 episodes every 50k offline / 2,000 online steps
    #   (`run_antmaze.sh`); on locomotion (no official setting) WSRL's port's CQL script: 250k +
    #   500k, 20 episodes every 20k online steps;
    # - RLPD: 250k (locomotion) / 300k (AntMaze) online steps, 10 episodes every 5,000 (README);
    # - WSRL (and its no-warm-up ablation): 250k (locomotion) / 1M (AntMaze) pretraining steps,
    #   500k online, 20 episodes every 20k steps (`launch_*` scripts, `finetune.py`'s default);
    #   the 250k-step locomotion pretraining (both scripts) is evaluated every 25k, as 20k does
    #   not divide it.
    # - locomotion: Gymnasium's v5 tasks on Minari's `mujoco/<body>/{simple,medium,expert}-v0`
    #   (`data.tiers.PAPER`), read from the user's Minari root.
    "paper": Suite(
        tier="paper",
        kinds=("simple", "medium", "expert"),
        offline_kinds=("simple", "medium", "expert"),
        seeds=8,
        budget=Budget(1_000_000, 1_000_000, 50_000, 10_000, 10, 5_000, 5_000),
        width=256,
        maze_kinds=("play", "diverse"),
        maze_budget=Budget(1_000_000, 1_000_000, 100_000, 10_000, 100, 5_000, 5_000),
        line_budgets={
            "locomotion": {
                "famo2o": Budget(1_000_000, 1_000_000, 50_000, 10_000, 10),
                "iql-union": Budget(1_000_000, 1_000_000, 50_000, 10_000, 10),
                **dict.fromkeys(ACA_LINES, Budget(500_000, 100_000, 1_000, 1_000, 10)),
                **dict.fromkeys(("calql", "cql"), Budget(250_000, 500_000, 25_000, 20_000, 20)),
                "rlpd": Budget(0, 250_000, 5_000, 5_000, 10, pex_warmup_steps=5_000),
                **dict.fromkeys(WSRL_LINES, Budget(250_000, 500_000, 25_000, 20_000, 20, 0, 5_000)),
            },
            "maze": {
                "famo2o": Budget(1_000_000, 1_000_000, 100_000, 10_000, 100),
                "iql-union": Budget(1_000_000, 1_000_000, 100_000, 10_000, 100),
                **dict.fromkeys(ACA_LINES, Budget(500_000, 100_000, 1_000, 1_000, 10)),
                **dict.fromkeys(("calql", "cql"), Budget(1_000_000, 1_000_000, 50_000, 2_000, 20)),
                "rlpd": Budget(0, 300_000, 5_000, 5_000, 10, pex_warmup_steps=5_000),
                **dict.fromkeys(
                    WSRL_LINES, Budget(1_000_000, 500_000, 20_000, 20_000, 20, 0, 5_000)
                ),
            },
        },
    ),
}
