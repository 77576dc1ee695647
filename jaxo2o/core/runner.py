"""Run many seeds (and hyperparameter values) of one Trainer, compiled once.

The runs form one leading "runs" axis: keys, method hyperparameters and run hyperparameters
all carry it, the dataset does not. `vmap` maps the run axis; with more than one device the
axis is sharded over a 1-D mesh with `jax.sharding` (padded to a multiple of the device count
by repeating the last run; the padding is dropped from the results). With several processes
(`core.distributed`) the mesh spans every process's devices, each process passes the same full
batch, and the outputs are gathered so that every process sees all of them.

`run_batch` advances the runs in compiled chunks from a host loop (`core.loop`): no host
callback inside any program, so all of them go to the persistent compilation cache, and the
progress bar, curves and hooks (checkpoints) run on the host between chunks.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxo2o.core import distributed
from jaxo2o.core.checkpoint import Checkpointer
from jaxo2o.core.hooks import ChunkHook, DivergenceWatch, ProgressHook
from jaxo2o.core.loop import Trainer, placeholder_dataset
from jaxo2o.core.shared_offline import SharedOfflinePhase, offline_key
from jaxo2o.core.transitions import Transitions


def enable_compilation_cache(path: str | None = None) -> str:
    """Use JAX's persistent compilation cache in a project-local folder."""
    path = path or os.environ.get("JAXO2O_CACHE_DIR") or os.path.join(os.getcwd(), ".cache", "jax")
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


def stack_trees(trees: list[Any]) -> Any:
    """Stack a list of pytrees along a new leading (runs) axis."""
    return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *trees)


def broadcast_tree(tree: Any, n: int) -> Any:
    """Repeat one pytree n times along a new leading axis."""
    return jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x), (n,) + jnp.shape(x)), tree)


@dataclass
class BatchResult:
    """Outputs of a batch of runs, as numpy arrays with the runs axis first."""

    metrics: dict[str, dict[str, np.ndarray]]
    state: Any
    compile_seconds: float
    run_seconds: float
    n_devices: int
    memory: dict[str, int]
    programs: int = 1  # compiled programs the run was made of
    buffer: Any = None  # the final online replay buffers (chunked path), runs axis first
    resumed_from: str | None = None  # "<phase> chunk <i>" when continued from a checkpoint
    offline_from: str | None = None  # "computed", "checkpoint" or "shared" (None: no offline)
    offline_seconds: float = 0.0  # of run_seconds, the offline chunks run here
    offline_compile_seconds: float = 0.0  # of compile_seconds, the offline programs'


def _pad(tree: Any, n_pad: int) -> Any:
    if n_pad == 0:
        return tree
    return jax.tree.map(lambda x: jnp.concatenate([x, jnp.repeat(x[-1:], n_pad, axis=0)]), tree)


class Program:
    """One chunk function of a batch, lowered; compiled the first time it is needed (a phase
    restored from a checkpoint or a shared offline phase never compiles its programs)."""

    def __init__(self, lowered: Any) -> None:
        self.lowered, self.compiled, self.seconds = lowered, None, 0.0
        self.memory: dict[str, int] = {}

    @property
    def out_info(self) -> Any:
        """The abstract outputs (shapes and dtypes, runs axis first)."""
        return self.lowered.out_info

    def compile(self) -> None:
        if self.compiled is None:
            t0 = time.perf_counter()
            self.compiled = self.lowered.compile()
            self.seconds = time.perf_counter() - t0
            self.memory = _memory(self.compiled)

    def __call__(self, *args: Any) -> Any:
        self.compile()
        return self.compiled(*args)


PHASE_PROGRAMS = {
    "offline": ("offline_start", "offline_chunk", "evaluate_offline"),
    "online": ("online_start", "online_chunk", "evaluate_online"),
}


@dataclass
class Programs:
    """The chunk programs of one batch of runs (see `core.loop`), lowered; `compile` compiles
    those of the phases that will run."""

    offline_start: Program
    offline_chunk: Program | None
    evaluate_offline: Program | None
    online_start: Program | None
    online_chunk: Program | None
    evaluate_online: Program | None
    lower_seconds: float
    shapes: dict[str, Any]  # abstract carries and chunk outputs, per phase

    def _all(self) -> dict[int, Program]:
        names = [n for ns in PHASE_PROGRAMS.values() for n in ns]
        progs = (getattr(self, n) for n in names)
        return {id(p): p for p in progs if p is not None}  # evaluation may serve both phases

    def compile(self, phases: tuple[str, ...] = ("offline", "online")) -> None:
        """Compile (or take from the persistent cache) every program of `phases`."""
        for phase in phases:
            for name in PHASE_PROGRAMS[phase]:
                prog = getattr(self, name)
                if prog is not None:
                    prog.compile()

    @property
    def compile_seconds(self) -> float:
        """Lowering plus every compilation made so far."""
        return self.lower_seconds + sum(p.seconds for p in self._all().values())

    def phase_compile_seconds(self, phase: str) -> float:
        """Compilation time of the programs only `phase` uses."""
        other = {id(getattr(self, n)) for ph, ns in PHASE_PROGRAMS.items() if ph != phase
                 for n in ns}  # fmt: skip
        progs = {id(p): p for n in PHASE_PROGRAMS[phase] if (p := getattr(self, n)) is not None}
        return sum(p.seconds for k, p in progs.items() if k not in other)

    @property
    def memory(self) -> dict[str, int]:
        """Per kind of buffer, the largest of the compiled programs'."""
        mem: dict[str, int] = {}
        for p in self._all().values():
            for k, v in p.memory.items():
                mem[k] = max(mem.get(k, 0), v)
        return mem

    @property
    def count(self) -> int:
        """Distinct programs compiled so far."""
        return sum(p.compiled is not None for p in self._all().values())


def _memory(compiled: Any) -> dict[str, int]:
    mem = compiled.memory_analysis()
    out = {}
    if mem is not None:
        for name in ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes"):
            out[name] = int(getattr(mem, name, 0) or 0)
    return out


def lower_programs(
    trainer: Trainer, keys: Any, hp: Any, rhp: Any, dataset: Any, online_data: Any, shard: Any
) -> Programs:
    """Lower every chunk program from abstract shapes (nothing is compiled or run yet).
    `shard(fn, donate)` jits a vmapped function with the batch's shardings."""
    run = trainer.run
    t0 = time.perf_counter()
    c = jnp.zeros((), jnp.int32)

    def build(fn, in_axes, donate, *args):
        """(lowered program, abstract outputs) of `fn` vmapped over the runs."""
        prog = Program(shard(jax.vmap(fn, in_axes=in_axes), donate).lower(*args))
        return prog, _abstract(prog.out_info)

    chunk_axes = (0, 0, 0, None, None)
    shapes: dict[str, Any] = {}  # carries and outputs, the layout checkpoints are restored into
    off_start, off_carry = build(trainer.offline_start, (0, 0), (), keys, hp)
    off_chunk = eval_off = on_start = on_chunk = eval_on = None
    if run.offline_steps:
        off_chunk, (_, ms, _) = build(
            trainer.offline_chunk, chunk_axes, (0,), off_carry, hp, rhp, dataset, c
        )
        eval_off, ev = build(trainer.evaluate, (0, 0, 0), (), off_carry.state, keys, hp)
        shapes["offline"], shapes["out_offline"] = off_carry, (ev, ms)
    if run.online_steps:
        on_start, (on_carry, _) = build(
            trainer.online_start, (0, 0, 0), (0,), off_carry.state, keys, hp
        )
        on_chunk, (_, out, _) = build(
            trainer.online_chunk, chunk_axes, (0,), on_carry, hp, rhp, online_data, c
        )
        same = jax.tree.structure(on_carry.state) == jax.tree.structure(off_carry.state) and all(
            a.shape == b.shape and a.dtype == b.dtype
            for a, b in zip(
                jax.tree.leaves(on_carry.state), jax.tree.leaves(off_carry.state), strict=True
            )
        )
        if same and eval_off is not None:
            eval_on = eval_off
            ev = shapes["out_offline"][0]
        else:
            eval_on, ev = build(trainer.evaluate, (0, 0, 0), (), on_carry.state, keys, hp)
        shapes["online"] = on_carry
        shapes["out_switch"], shapes["out_online"] = ev, (ev, out)
    lower_s = time.perf_counter() - t0
    return Programs(off_start, off_chunk, eval_off, on_start, on_chunk, eval_on, lower_s, shapes)


def _abstract(tree: Any) -> Any:
    """Lowered outputs -> plain ShapeDtypeStructs (what `jax.eval_shape` gives)."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), tree)


def compile_programs(
    trainer: Trainer, keys: Any, hp: Any, rhp: Any, dataset: Any, online_data: Any, shard: Any
) -> Programs:
    """Lower and compile every chunk program ahead of time (so compile time is measured apart
    from run time and nothing runs twice)."""
    progs = lower_programs(trainer, keys, hp, rhp, dataset, online_data, shard)
    progs.compile()
    return progs


def _stack(chunks: list[Any]) -> Any:
    """Per-chunk outputs (runs axis first) -> one array per leaf with the chunk axis second."""
    return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs], axis=1), *chunks)


@dataclass
class Prepared:
    """A batch's arguments, padded to the device count and placed, with its jit factory."""

    args: tuple  # (keys, hp, rhp, dataset, online_data)
    n_runs: int
    n_devices: int
    shard: Any  # (fn, donate_argnums) -> jitted fn with the batch's shardings
    place: Any = None  # tree -> the tree placed as the runs' carry is (restored checkpoints)


def devices_used(n_devices: int, n_runs: int) -> int:
    """How many of `n_devices` a batch of `n_runs` runs on: all of them with several processes
    (each process runs the same programs), else no more than there are runs."""
    return n_devices if distributed.multi_process() else min(n_devices, n_runs)


def prepare(
    trainer: Trainer,
    keys: jax.Array,
    hp: Any,
    rhp: Any,
    dataset: Transitions | None = None,
    devices: list | None = None,
    online_data: Transitions | None = None,
) -> Prepared:
    """Validate the runs' hyperparameters, pad the runs axis to a multiple of the devices and
    place the arguments (runs split over a 1-D mesh, the data replicated).

    With several processes, every process passes the same full batch; the mesh covers
    `devices` (default: every process's, `jax.devices()`), each of them even if there are
    fewer runs, and the arguments become global arrays built from that host data."""
    trainer.method.validate(hp)  # every run's values, before anything compiles
    devices = devices if devices is not None else jax.devices()
    n_runs = keys.shape[0]
    multi = distributed.multi_process()
    if multi:
        distributed.check_devices(devices)
    n_dev = devices_used(len(devices), n_runs)
    devices = devices[:n_dev]
    n_pad = (-n_runs) % n_dev
    if dataset is None:
        dataset = placeholder_dataset(trainer.obs_size, trainer.act_size)
    online_data = dataset if online_data is None else online_data
    keys, hp, rhp = _pad((keys, hp, rhp), n_pad)
    if n_dev > 1 or multi:
        mesh = Mesh(np.array(devices), ("runs",))
        split = NamedSharding(mesh, PartitionSpec("runs"))
        repl = NamedSharding(mesh, PartitionSpec())
        if multi:  # global arrays, each process filling its own devices from its host copy
            distributed.connect(mesh)  # while the processes are in step, before compiling
            place = lambda tree: distributed.place(tree, split)
            keys, hp, rhp = place((keys, hp, rhp))
            same = online_data is dataset
            dataset = distributed.place(dataset, repl)
            online_data = dataset if same else distributed.place(online_data, repl)
        else:
            place = lambda tree: jax.device_put(tree, split)
            keys, hp, rhp = place((keys, hp, rhp))
            dataset, online_data = jax.device_put((dataset, online_data), repl)

        def shard(fn, donate):
            return jax.jit(fn, out_shardings=split, donate_argnums=donate)

    else:

        def shard(fn, donate):
            return jax.jit(fn, donate_argnums=donate)

        place = lambda tree: jax.device_put(tree, devices[0])

    return Prepared((keys, hp, rhp, dataset, online_data), n_runs, n_dev, shard, place)


def compile_run(
    trainer: Trainer,
    keys: jax.Array,
    hp: Any,
    rhp: Any,
    dataset: Transitions | None = None,
    devices: list | None = None,
    online_data: Transitions | None = None,
) -> Programs:
    """Compile (or take from the persistent cache) every chunk program of a batch, run nothing."""
    prep = prepare(trainer, keys, hp, rhp, dataset, devices, online_data)
    return compile_programs(trainer, *prep.args, prep.shard)


def run_batch(
    trainer: Trainer,
    keys: jax.Array,
    hp: Any,
    rhp: Any,
    dataset: Transitions | None = None,
    devices: list | None = None,
    desc: str = "train",
    online_data: Transitions | None = None,
    hooks: Sequence[ChunkHook] = (),
    checkpoint: Checkpointer | None = None,
    shared_offline: str | os.PathLike | None = None,
) -> BatchResult:
    """Compile the chunk programs once and run every run of the batch (leading axis of `keys`),
    chunk by chunk from the host: the progress bar, divergence flags, `hooks`, checkpoints and
    the shared offline phase between chunks, the runs' state donated from one program to the
    next (it never leaves the device).

    `checkpoint` (a `core.checkpoint.Checkpointer`): continue from its newest checkpoint when it
    holds one for these runs (the chunks already done are not run again, their outputs are
    taken from the checkpoint), and write checkpoints as the runs advance.

    `shared_offline` (a folder): take the end of the offline phase from there when a batch
    with the same offline computation already made it, else save it there once computed
    (`core.shared_offline`). The programs of a phase that is restored are never compiled."""
    given = (keys, hp, rhp, dataset)  # host values: the shared offline phase's key reads them
    prep = prepare(trainer, keys, hp, rhp, dataset, devices, online_data)
    progs = lower_programs(trainer, *prep.args, prep.shard)
    n_off = trainer.offline_chunks if trainer.run.offline_steps else 0
    start = _starting_point(trainer, progs, prep, given, n_off, checkpoint, shared_offline)
    offline_done = start.resume is not None and (
        start.resume.phase == "online" or start.resume.chunk + 1 == n_off
    )
    progs.compile(("online",) if offline_done else ("offline", "online"))
    watch = [ProgressHook(trainer.run, desc), DivergenceWatch(desc)]
    loop = _HostLoop(trainer, progs, prep, start, [*watch, *hooks, checkpoint, start.store])
    try:
        metrics, state, carry, offline_s, run_s = loop.run(n_off)
    finally:
        for h in loop.hooks:
            h.end()
    n_runs = prep.n_runs
    unpad = lambda x: np.asarray(x)[:n_runs]
    own = start.resume if start.offline_from == "checkpoint" else None
    return BatchResult(
        metrics=jax.tree.map(unpad, metrics),
        state=jax.tree.map(unpad, distributed.gather(state)),
        compile_seconds=progs.compile_seconds,
        run_seconds=run_s,
        n_devices=prep.n_devices,
        memory=progs.memory,
        programs=progs.count,
        buffer=jax.tree.map(unpad, distributed.gather(carry.buffer))
        if trainer.run.online_steps
        else None,
        resumed_from=None if own is None else f"{own.phase} chunk {own.chunk}",
        offline_from=start.offline_from if n_off else None,
        offline_seconds=offline_s,
        offline_compile_seconds=progs.phase_compile_seconds("offline"),
    )


@dataclass
class _Start:
    """Where a batch starts: a checkpoint or shared offline phase to continue from (or None),
    what the offline phase comes from, and the shared store to save it to once computed."""

    resume: Any
    offline_from: str
    store: SharedOfflinePhase | None


def _starting_point(
    trainer: Trainer,
    progs: Programs,
    prep: Prepared,
    given: tuple,
    n_off: int,
    checkpoint: Checkpointer | None,
    shared_offline: str | os.PathLike | None,
) -> _Start:
    """The batch's own checkpoint if it has one, else a shared offline phase if one was made
    by the same computation (`core.shared_offline`), else the beginning."""
    shapes, n_runs = progs.shapes, prep.n_runs
    unpadded = lambda t: jax.tree.map(
        lambda s: jax.ShapeDtypeStruct((n_runs,) + s.shape[1:], s.dtype), t
    )
    carries = {ph: unpadded(shapes[ph]) for ph in ("offline", "online") if ph in shapes}
    outs_like = {ph: shapes[f"out_{ph}"] for ph in ("offline", "switch", "online")
                 if f"out_{ph}" in shapes}  # fmt: skip
    resume = checkpoint.restore(carries, outs_like) if checkpoint is not None else None
    start = _Start(resume, "checkpoint" if resume else "computed", None)
    if shared_offline is None or not n_off or (resume is not None and resume.phase != "offline"):
        return start
    k, h, r, d = given
    d = placeholder_dataset(trainer.obs_size, trainer.act_size) if d is None else d
    key = offline_key(trainer, k, h, r, d, prep.n_devices)
    background = checkpoint.background if checkpoint is not None else None
    store = SharedOfflinePhase(shared_offline, key, background=background)
    shared = store.restore(carries, outs_like)
    if shared is not None and shared.phase == "offline" and shared.chunk + 1 == n_off:
        return _Start(shared, "shared", None)
    start.store = store
    return start


class _HostLoop:
    """The host loop of one batch: offline chunks, the switch, online chunks, each followed by
    the hooks; the outputs gathered to the host (unpadded) as it goes."""

    def __init__(self, trainer, progs, prep, start, hooks) -> None:
        self.trainer, self.progs, self.prep, self.start = trainer, progs, prep, start
        self.hooks = [h for h in hooks if h is not None]
        self.n_pad = prep.args[0].shape[0] - prep.n_runs
        resume = start.resume
        self.done = resume.outputs if resume else {}
        n_off = trainer.offline_chunks if trainer.run.offline_steps else 0
        for h in self.hooks:
            h.begin({"offline": n_off, "online": trainer.online_chunks}, self.done, prep.n_runs)

    def host(self, tree: Any) -> Any:
        """Every process's runs, as host arrays without the padding."""
        n = self.prep.n_runs
        return jax.tree.map(lambda x: np.asarray(x)[:n], distributed.gather(tree))

    def restored(self, phase: str) -> Any:
        leaves = [jnp.asarray(x) for x in self.start.resume.carry]
        tree = jax.tree.unflatten(jax.tree.structure(self.progs.shapes[phase]), leaves)
        return self.prep.place(_pad(tree, self.n_pad))

    def chunk_done(self, phase: str, chunk: int | None, out: Any, carry: Any = None) -> None:
        for h in self.hooks:
            h.record(phase, out)
            if chunk is not None:
                h.after_chunk(phase, chunk, carry)

    def run(self, n_off: int) -> tuple[dict, Any, Any, float, float]:
        """(metrics, final state, final carry, offline seconds, run seconds)."""
        keys = self.prep.args[0]
        t0 = time.perf_counter()
        eval_keys = jax.vmap(lambda k: jax.random.split(k))(keys)  # (runs, 2): offline, online
        resume = self.start.resume
        metrics: dict[str, Any] = {"offline": {}}
        offline_s, state, carry = 0.0, None, None
        in_online = resume is not None and resume.phase == "online"
        if not in_online:
            carry, outs_off, first = self.offline(eval_keys[:, 0], n_off)
            state = carry.state
            offline_s = time.perf_counter() - t0 if first < n_off else 0.0
        else:
            outs_off = list(self.done.get("offline", []))
        if n_off:
            ev = _stack([o[0] for o in outs_off])
            metrics["offline"] = {"eval_returns": ev.returns, "eval_lengths": ev.lengths}
            metrics["offline"].update(_stack([o[1] for o in outs_off]))
        if self.trainer.run.online_steps:
            carry, metrics["online"] = self.online(state, eval_keys[:, 1], in_online)
            state = carry.state
        state = jax.block_until_ready(state)
        return metrics, state, carry, offline_s, time.perf_counter() - t0

    def offline(self, k_off: Any, n_off: int) -> tuple[Any, list, int]:
        """The offline chunks still to run: (carry, every offline chunk's outputs, first run)."""
        _, hp, rhp, dataset, _ = self.prep.args
        progs, resume = self.progs, self.start.resume
        outs = list(self.done.get("offline", []))
        if resume is not None:
            carry, first = self.restored("offline"), resume.chunk + 1
        else:
            carry, first = progs.offline_start(k_off, hp), 0
        for c in range(first, n_off):
            carry, ms, k_eval = progs.offline_chunk(carry, hp, rhp, dataset, np.int32(c))
            ev = progs.evaluate_offline(carry.state, k_eval, hp)
            out = self.host((ev, ms))
            outs.append(out)
            self.chunk_done("offline", c, out, carry)
        return carry, outs, first

    def online(self, state: Any, k_on: Any, in_online: bool) -> tuple[Any, dict]:
        """The switch (unless resumed past it) and the online chunks: (carry, online metrics)."""
        _, hp, rhp, _, online_data = self.prep.args
        progs = self.progs
        if in_online:
            carry, first = self.restored("online"), self.start.resume.chunk + 1
            evs = [self.done["switch"][0]]
            outs = list(self.done.get("online", []))
        else:
            carry, k_eval = progs.online_start(state, k_on, hp)
            ev0 = self.host(progs.evaluate_online(carry.state, k_eval, hp))
            evs, outs, first = [ev0], [], 0
            self.chunk_done("switch", None, ev0)
        for c in range(first, self.trainer.online_chunks):
            carry, out, k_eval = progs.online_chunk(carry, hp, rhp, online_data, np.int32(c))
            ev = progs.evaluate_online(carry.state, k_eval, hp)
            both = self.host((ev, out))
            outs.append(both)
            self.chunk_done("online", c, both, carry)
        ev = _stack(evs + [o[0] for o in outs])
        ms, info, train_return = _stack([o[1] for o in outs])
        return carry, {
            "eval_returns": ev.returns,
            "eval_lengths": ev.lengths,
            "train_return": train_return,
            **ms,
            **{f"act/{k}": v for k, v in info.items()},
        }


def run_batch_single(
    trainer: Trainer,
    keys: jax.Array,
    hp: Any,
    rhp: Any,
    dataset: Transitions | None = None,
    online_data: Transitions | None = None,
) -> BatchResult:
    """The whole run of every run in the batch as ONE compiled program (`Trainer.train`), on one
    device, no progress: the reference the chunked `run_batch` is tested against, and what
    `make perf` compares it with."""
    trainer.method.validate(hp)
    if dataset is None:
        dataset = placeholder_dataset(trainer.obs_size, trainer.act_size)
    online_data = dataset if online_data is None else online_data
    fn = jax.jit(jax.vmap(trainer.train, in_axes=(0, 0, 0, None, None)))
    t0 = time.perf_counter()
    compiled = fn.lower(keys, hp, rhp, dataset, online_data).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    state, metrics = jax.block_until_ready(compiled(keys, hp, rhp, dataset, online_data))
    run_s = time.perf_counter() - t0
    return BatchResult(
        metrics=jax.tree.map(np.asarray, metrics),
        state=jax.tree.map(np.asarray, state),
        compile_seconds=compile_s,
        run_seconds=run_s,
        n_devices=1,
        memory=_memory(compiled),
        programs=1,
        buffer=None,
    )
