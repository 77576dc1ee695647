"""Mutation testing of the methods and the shared losses with cosmic-ray (`make mutants`).

Each mutant is one small edit of one source file (an operator swapped, a sign dropped, a number
moved by one, a condition negated); the tests that cover that file run against it, and a mutant
the tests let pass "survives". cosmic-ray enumerates the mutants, applies each to the file and
restores it, and runs the test command; this script chooses what to mutate and which tests to
run, keeps one session per file (resumable), and prints each file's score.

Why a script around it: a test run costs seconds of JAX import and compilation, so a whole-suite
run per mutant would take days on two cores. Each file is mapped to the few fast test modules
that check it (`TARGETS`), pytest stops at the first failure (-x), compilations hit the
persistent cache (`JAXO2O_CACHE_DIR`), and by default only the update code is mutated (scope
"update": the loss, target, schedule and switch functions named in `TARGETS`; "all" mutates
every line). Mutations run in a copy of the tree under `.cache/mutants/tree`, so an interrupted
run never leaves a mutated file in the working tree.

The operators are cosmic-ray's minus those that make no sense for this numeric code (bitwise
and shift operators, floor division, modulo, `~`, exception and decorator removal, random
variable insertion): `OPERATORS` lists the kept ones.

Usage (from the repository root):
    python tests/mutants.py                              # every file in TARGETS, scope update
    python tests/mutants.py jaxo2o/core/losses.py        # one file
    python tests/mutants.py --scope all --rerun-survivors jaxo2o/methods/aca.py
    python tests/mutants.py --report                     # scores of the stored sessions only
    python tests/mutants.py --tests-from REV FILE        # the score of an older test suite
    python tests/mutants.py --report --before REV        # and which mutants REV's tests missed
Exit status: 0, or 2 on bad input (an unknown file, a baseline that fails).
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import attrs
from cosmic_ray.commands.init import init as cr_init
from cosmic_ray.mutating import mutate_and_test
from cosmic_ray.testing import run_tests
from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkResult

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".cache" / "mutants"
COPIED = ("jaxo2o", "tests", "benchmarks", "pyproject.toml")
TIMEOUT = 900.0  # seconds per test run; a shared 2-core machine compiles slowly

# cosmic-ray operator names kept (full match); everything else is skipped
OPERATORS = re.compile(
    r"core/(ReplaceBinaryOperator_(Add_Sub|Sub_Add|Mul_Div|Div_Mul|Pow_Mul)"
    r"|ReplaceUnaryOperator_(Delete_USub|Delete_Not)"
    r"|ReplaceComparisonOperator_(Lt_LtE|LtE_Lt|Gt_GtE|GtE_Gt|Eq_NotEq|NotEq_Eq|Is_IsNot"
    r"|IsNot_Is|In_NotIn|NotIn_In)"
    r"|NumberReplacer|ReplaceTrueWithFalse|ReplaceFalseWithTrue|ReplaceAndWithOr"
    r"|ReplaceOrWithAnd|AddNot|ZeroIterationForLoop|ReplaceBreakWithContinue"
    r"|ReplaceContinueWithBreak)"
)


@dataclass(frozen=True)
class Target:
    """A source file, the fast tests that check it, and the top-level names (functions, methods,
    constants) that form its update code. The tests run in the order given: older modules
    first let `--before REV` tell which mutants the suite of REV already killed; the quickest
    killers first make the run shorter (aca.py: its by-hand module first)."""

    tests: tuple[str, ...]
    update_code: tuple[str, ...]
    deselect: str = ""  # a pytest -k expression removing slow tests of those modules


_TRAINER_RUNS = "not trainer and not flop_passes and not compiles"
TARGETS: dict[str, Target] = {
    "jaxo2o/core/losses.py": Target(
        ("tests/test_iql.py", "tests/test_losses.py", "tests/test_aca_losses.py"),
        (
            "AWR_WEIGHT_CLIP",
            "expectile_loss",
            "td_target",
            "ensemble_mse",
            "awr_weights",
            "weight_ess",
            "awr_actor_loss",
            "temperature_loss",
            "log_temperature_loss",
        ),
        _TRAINER_RUNS,
    ),
    "jaxo2o/methods/famo2o.py": Target(
        ("tests/test_famo2o.py",),
        (
            "BALANCE_LOG_STD",
            "encode_coefficient",
            "coefficient_from_unit",
            "famo2o_weights",
            "sample_coefficient",
            "online_coefficient",
            "coefficient",
            "balance_step",
            "temperature_step",
            "universal_coefficients",
            "universal_step",
            "update",
            "to_online",
            "act",
        ),
        _TRAINER_RUNS,
    ),
    "jaxo2o/methods/aca.py": Target(
        ("tests/test_aca_losses.py", "tests/test_aca.py"),
        (
            "ml_actor_loss",
            "critic_from_baseline",
            "temperature_step",
            "critic_step",
            "sac_ml_actor_loss",
            "_offline_update",
            "to_online",
            "aligned_term",
            "aligned_q",
            "_online_update",
        ),
        _TRAINER_RUNS,
    ),
    "jaxo2o/methods/aca_settings.py": Target(
        ("tests/test_aca_losses.py", "tests/test_aca.py"),
        ("UPDATES_PER_K", "interpolation_weight", "scaled_w_k", "schedule_k"),
        _TRAINER_RUNS,
    ),
    "jaxo2o/core/optim.py": Target(
        ("tests/test_aca_losses.py", "tests/test_aca.py"),
        ("GRAD_CLIP_EPS", "clip_grad_norm"),
        _TRAINER_RUNS,
    ),
    "jaxo2o/methods/aca_policies.py": Target(
        ("tests/test_aca_losses.py", "tests/test_aca.py"),
        (
            "soft_clip",
            "MazePolicy",
            "policy_sample",
            "policy_log_prob",
            "clip_floor",
            "greedy_action",
        ),
        _TRAINER_RUNS,
    ),
    "jaxo2o/methods/iql.py": Target(
        ("tests/test_iql.py",),
        (
            "ACTION_CLIP",
            "min_q",
            "iql_value_loss",
            "iql_critic_target",
            "iql_critic_loss",
            "iql_actor_loss",
            "actor_learning_rate",
            "value_step",
            "advantage",
            "actor_step",
            "critic_step",
            "target_step",
            "update",
        ),
        _TRAINER_RUNS,
    ),
    "jaxo2o/methods/awac.py": Target(
        ("tests/test_awac.py",),
        (
            "awac_critic_target",
            "awac_critic_loss",
            "awac_advantage",
            "awac_actor_loss",
            "normalize_obs",
            "critic_step",
            "actor_step",
            "update",
        ),
        _TRAINER_RUNS,
    ),
    "jaxo2o/methods/pex.py": Target(
        ("tests/test_pex.py",),
        (
            "selection_probabilities",
            "select_policy",
            "to_online",
            "composite_action",
            "act",
            "actor_step",
            "update",
        ),
        _TRAINER_RUNS,
    ),
    "jaxo2o/methods/sac.py": Target(
        ("tests/test_sac.py",),
        ("update",),
        _TRAINER_RUNS,
    ),
    "jaxo2o/methods/calql.py": Target(
        ("tests/test_calql.py",),
        (
            "ALPHA_PRIME_MAX",
            "lift",
            "cql_gap",
            "cql_penalty",
            "max_backup_target",
            "log_alpha_loss",
            "ScaledLogStdPolicy",
            "_samples",
            "_q_many",
            "update",
        ),
        _TRAINER_RUNS,
    ),
    "jaxo2o/methods/rlpd.py": Target(
        ("tests/test_rlpd.py",),
        (
            "rlpd_target",
            "ensemble_mean_mse",
            "mean_q_actor_loss",
            "critic_step",
            "actor_temperature_step",
            "update_many",
            "update",
        ),
        _TRAINER_RUNS,
    ),
    "jaxo2o/methods/wsrl.py": Target(
        ("tests/test_wsrl.py",),
        (
            "SOFTPLUS_INV_ONE",
            "subset_max_target",
            "min_q_actor_loss",
            "softplus_temperature_loss",
            "lagrange_penalty",
            "_q_drawn",
            "_target",
            "_actor_temperature",
            "update",
            "critic_step",
            "update_many",
        ),
        _TRAINER_RUNS,
    ),
}


def fail(message: str) -> None:
    print(f"mutants: {message}", file=sys.stderr)
    raise SystemExit(2)


def copy_tree(tree: Path, tests_from: str | None) -> None:
    """A fresh copy of the sources and tests, where the mutants are applied; `tests_from`: a git
    revision whose `tests/` replace the working tree's (the score of an older suite)."""
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, tree / name, ignore=ignore)
        else:
            shutil.copy2(src, tree / name)
    if tests_from:
        shutil.rmtree(tree / "tests")
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", tests_from, "tests"], capture_output=True
        )
        if archive.returncode:
            fail(f"--tests-from {tests_from}: {archive.stderr.decode().strip()}")
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)


def test_command(target: Target, tree: Path) -> str:
    """The pytest command for a file's tests that exist in `tree` (an older suite may lack some)."""
    tests = " ".join(t for t in target.tests if (tree / t).exists())
    k = f" -k '{target.deselect}'" if target.deselect else ""
    return f"{sys.executable} -m pytest -x -q -p no:cacheprovider -m 'not slow'{k} {tests}"


def tree_of(source: str, tests_from: str | None = None, shard: str = "") -> Path:
    """The copy a file's mutants are applied in (one per file, suite and shard, so that several
    can run at once)."""
    tag = (f".tests-{tests_from}" if tests_from else "") + (f".shard{shard}" if shard else "")
    return STATE / "tree" / (source.replace("/", "_").removesuffix(".py") + tag)


def line_ranges(path: Path, names: tuple[str, ...]) -> list[tuple[int, int]]:
    """Line ranges of the named top-level functions, classes, assignments and class methods."""
    tree = ast.parse(path.read_text())
    found: dict[str, list[tuple[int, int]]] = {}

    def visit(nodes) -> None:
        for node in nodes:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                found.setdefault(node.name, []).append((node.lineno, node.end_lineno))
                if isinstance(node, ast.ClassDef):
                    visit(node.body)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    for leaf in ast.walk(t):
                        if isinstance(leaf, ast.Name):
                            found.setdefault(leaf.id, []).append((node.lineno, node.end_lineno))

    visit(tree.body)
    missing = [n for n in names if n not in found]
    if missing:
        fail(f"{path.name}: no definition named {', '.join(missing)} (TARGETS)")
    return [r for n in names for r in found[n]]


def session_path(source: str, scope: str, tests_from: str | None = None) -> Path:
    """One resumable cosmic-ray session per file, scope and test suite."""
    tag = f".tests-{tests_from}" if tests_from else ""
    return STATE / f"{source.replace('/', '_').removesuffix('.py')}.{scope}{tag}.sqlite"


def init_session(db: WorkDB, tree: Path, source: str, target: Target, scope: str) -> None:
    """Enumerates the mutants and marks those outside the operators or the scope as skipped."""
    path = tree / source
    cr_init([path], db, {})  # operators with arguments (random variable insertion) stay out
    ranges = line_ranges(path, target.update_code) if scope == "update" else None
    skipped = WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output="outside the selection")
    for item in db.pending_work_items:
        mutation = item.mutations[0]
        line = mutation.start_pos[0]
        in_scope = ranges is None or any(lo <= line <= hi for lo, hi in ranges)
        if not (OPERATORS.fullmatch(mutation.operator_name) and in_scope):
            db.set_result(item.job_id, skipped)


def changed_line(diff: str) -> str:
    """The mutated line of a cosmic-ray diff, as `old -> new`."""
    old = [x[1:].strip() for x in diff.splitlines() if x.startswith("-") and not x.startswith("--")]
    new = [x[1:].strip() for x in diff.splitlines() if x.startswith("+") and not x.startswith("++")]
    return f"{' '.join(old)}  ->  {' '.join(new)}"


FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)


def killer(output: str) -> str:
    """The first failing test of a killed mutant's pytest output ("" for a timeout)."""
    found = FAILED.search(output or "")
    return found.group(1) if found else ""


def tests_at(rev: str, files: tuple[str, ...]) -> set[str]:
    """`file::test_name` of every test function the files hold at git revision `rev`."""
    names = set()
    for f in files:
        shown = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{f}"], capture_output=True)
        for name in re.findall(r"^def (test_\w+)", shown.stdout.decode(), re.MULTILINE):
            names.add(f"{f}::{name}")
    return names


def killed_before(output: str, old_tests: set[str]) -> bool:
    """Whether the suite of the older revision kills the mutant too: its first failure is an
    older test, or nothing collected (an import error, a timeout). The older modules run
    first (`Target.tests`), so a mutant an older test kills is never first failed by a new one."""
    node = killer(output)
    return "::" not in node or node.split("[")[0] in old_tests


def report(
    source: str, scope: str, before: str | None = None, tests_from: str | None = None
) -> tuple[int, int]:
    """Prints the file's score and its survivors (and, with `before`, the score the tests of
    that git revision get on the same mutants); returns (killed, tested)."""
    path = session_path(source, scope, tests_from)
    if not path.exists():
        print(f"{source}: no session (run it first)")
        return 0, 0
    with use_db(path, WorkDB.Mode.open) as db:
        done = db.completed_work_items
        pending = len(db.pending_work_items)
    tested = [(i, r) for i, r in done if r.worker_outcome == WorkerOutcome.NORMAL]
    killed = [x for x in tested if x[1].test_outcome == TestOutcome.KILLED]
    survived = sorted(
        (x for x in tested if x[1].test_outcome == TestOutcome.SURVIVED),
        key=lambda x: x[0].mutations[0].start_pos,
    )
    other = len(tested) - len(killed) - len(survived)
    score = 100.0 * len(killed) / max(len(tested), 1)
    extra = f", {pending} not run yet" if pending else ""
    extra += f", {other} incompetent" if other else ""
    print(f"{source}: {len(killed)} / {len(tested)} killed ({score:.1f}%){extra}")
    modules = TARGETS[source].tests
    old = tests_at(before, modules) if before else set()
    old_modules = [m for m in modules if any(t.startswith(f"{m}::") for t in old)]
    if before and old_modules != list(modules[: len(old_modules)]):
        print(f"  {before}: not attributable (a newer module runs first); use --tests-from")
    elif before:
        old_killed = [x for x in killed if killed_before(x[1].output, old)]
        old_score = 100.0 * len(old_killed) / max(len(tested), 1)
        print(f"  with the tests of {before}: {len(old_killed)} / {len(tested)} ({old_score:.1f}%)")
        for item, result in sorted(
            (x for x in killed if x not in old_killed), key=lambda x: x[0].mutations[0].start_pos
        ):
            m = item.mutations[0]
            op = m.operator_name.removeprefix("core/")
            print(
                f"  newly killed line {m.start_pos[0]} {op} by {killer(result.output)}: "
                f"{changed_line(result.diff or '')}"
            )
    for item, result in survived:
        m = item.mutations[0]
        op = m.operator_name.removeprefix("core/")
        print(f"  survived line {m.start_pos[0]} {op}: {changed_line(result.diff or '')}")
    return len(killed), len(tested)


def run(
    source: str,
    target: Target,
    scope: str,
    rerun: bool,
    timeout: float,
    tests_from: str | None,
    shard: tuple[int, int] = (0, 1),
) -> None:
    """Runs the file's pending mutants (for shard (k, n), those whose id is k mod n)."""
    k, n_shards = shard
    shard_tag = f"{k}of{n_shards}" if n_shards > 1 else ""
    path = session_path(source, scope, tests_from)
    tree = tree_of(source, tests_from, shard_tag)
    copy_tree(tree, tests_from)
    command = test_command(target, tree)
    os.chdir(tree)
    os.environ["PYTHONPATH"] = str(tree)
    os.environ.setdefault("JAXO2O_CACHE_DIR", str(ROOT / ".cache" / "jax"))
    mode = WorkDB.Mode.open if path.exists() else WorkDB.Mode.create
    with use_db(path, mode) as db:
        if mode == WorkDB.Mode.create:
            init_session(db, tree, source, target, scope)
        if k == 0:  # one shard checks that the unmutated tree passes
            outcome, output = run_tests(command, timeout)
            if outcome != TestOutcome.SURVIVED:
                fail(f"{source}: the tests fail without any mutant; fix them:\n{output[-3000:]}")
        todo = list(db.pending_work_items)
        if rerun:  # new tests may kill them; set_result overwrites the stored outcome
            todo += [
                item
                for item, result in db.completed_work_items
                if result.worker_outcome == WorkerOutcome.NORMAL
                and result.test_outcome == TestOutcome.SURVIVED
            ]
        # a shard owns the mutants whose id falls in it: the same split whenever a shard starts
        todo = [i for i in todo if int(i.job_id, 16) % n_shards == k]
        todo.sort(key=lambda i: i.mutations[0].start_pos)
        print(f"{source}: {len(todo)} mutants to run; tests: {command}", flush=True)
        for n, item in enumerate(todo, 1):
            start = time.monotonic()
            # the session stores the path of the tree it was made in: mutate this run's tree
            mutations = [attrs.evolve(m, module_path=tree / source) for m in item.mutations]
            result = mutate_and_test(mutations, command, timeout)
            db.set_result(item.job_id, result)
            m = item.mutations[0]
            status = (result.test_outcome or result.worker_outcome).value
            print(
                f"  [{n}/{len(todo)}] line {m.start_pos[0]} "
                f"{m.operator_name.removeprefix('core/')}: {status} "
                f"({time.monotonic() - start:.0f} s)",
                flush=True,
            )
    os.chdir(ROOT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", help="source files (default: every file in TARGETS)")
    parser.add_argument("--scope", choices=("update", "all"), default="update")
    parser.add_argument("--rerun-survivors", action="store_true")
    parser.add_argument("--fresh", action="store_true", help="discard the stored sessions")
    parser.add_argument("--report", action="store_true", help="print the stored scores only")
    parser.add_argument("--timeout", type=float, default=TIMEOUT)
    parser.add_argument("--tests-from", metavar="REV", help="run the tests of a git revision")
    parser.add_argument(
        "--shard", default="0/1", help="K/N: run every N-th pending mutant from the K-th (0-based)"
    )
    parser.add_argument(
        "--before", metavar="REV", help="also report the score of the tests REV already had"
    )
    args = parser.parse_args(argv)
    files = [f.removeprefix("./") for f in args.files] or list(TARGETS)
    valid = re.fullmatch(r"\d+/\d+", args.shard)
    shard = tuple(int(x) for x in args.shard.split("/")) if valid else ()
    if len(shard) != 2 or not 0 <= shard[0] < shard[1]:
        fail(f"--shard: expected K/N with 0 <= K < N, got {args.shard!r}")
    unknown = [f for f in files if f not in TARGETS]
    if unknown:
        fail(f"unknown file {', '.join(unknown)}; expected one of {', '.join(TARGETS)}")
    if not args.report:
        STATE.mkdir(parents=True, exist_ok=True)
        for source in files:
            if args.fresh:
                session_path(source, args.scope).unlink(missing_ok=True)
            target = TARGETS[source]
            run(
                source,
                target,
                args.scope,
                args.rerun_survivors,
                args.timeout,
                args.tests_from,
                shard,
            )
    print(f"\nmutation score per file (killed / run), scope {args.scope}:")
    for source in files:
        report(source, args.scope, args.before, args.tests_from)
    return 0


if __name__ == "__main__":
    sys.exit(main())
