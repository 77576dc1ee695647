"""Checkpoints of a batch of runs between chunks, and resuming from the last one (orbax).

A checkpoint is one folder `<dir>/<phase>-<chunk>/` holding
    carry/         the runs' carry after that chunk (orbax `StandardCheckpointer`, flat leaves)
    outputs.npz    every chunk output collected so far (evaluations, training metrics), flat
    meta.json      the key, the phase and chunk, the run count and the leaf layout
It is written to a temporary folder beside it and renamed into place, so a kill at any moment
leaves either the previous checkpoint or the new one, never half of one; older checkpoints are
deleted once the new one is in place.

`key` names everything that determines the runs (the experiment layer hashes the experiment,
method config, hyperparameters, run config, dataset id and recipe hash and package versions): a
checkpoint with another key, another layout or unreadable files is reported on stderr and
ignored (the runs start over), never loaded.

With several processes (`core.distributed`), every process calls the runner's hooks at the same
points: `save` gathers the runs' carry from all processes (a collective), then process 0 alone
writes it; `restore` is read by every process, which must therefore see the same folder (a
filesystem shared by all hosts), and the processes check that they all found the same
checkpoint; `clear` deletes in process 0 only.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxo2o.core import distributed
from jaxo2o.core.hooks import ChunkHook

FORMAT = 1


@dataclass
class Resume:
    """Where a batch of runs stands: the carry after chunk `chunk` of `phase` (numpy leaves, runs
    axis first, no padding) and the per-chunk outputs collected up to it."""

    phase: str
    chunk: int
    carry: list[np.ndarray]  # leaves of the carry, in `jax.tree.leaves` order
    outputs: dict[str, list[Any]]  # "offline"/"switch"/"online" -> per-chunk output pytrees


def _flatten_outputs(outputs: dict[str, list[Any]]) -> tuple[dict[str, np.ndarray], dict]:
    """Per-chunk output pytrees -> flat arrays for npz, plus what is needed to rebuild them."""
    arrays, layout = {}, {}
    for phase, chunks in outputs.items():
        layout[phase] = len(chunks)
        for i, out in enumerate(chunks):
            for j, leaf in enumerate(jax.tree.leaves(out)):
                arrays[f"{phase}/{i}/{j}"] = np.asarray(leaf)
    return arrays, layout


def _carry_dict(leaves: list[Any]) -> dict[str, np.ndarray]:
    """The carry's leaves by index for orbax. Zero-size leaves (an MJX simulator state has some,
    e.g. no actuator activations) hold no data and orbax refuses them: they are left out, and
    `_read` rebuilds them from the shapes recorded in meta.json."""
    return {f"{i:05d}": np.asarray(x) for i, x in enumerate(leaves) if np.size(x)}


def _leaf_specs(leaves: list[Any]) -> list[list]:
    return [[list(np.shape(x)), str(np.asarray(x).dtype)] for x in leaves]


def _orbax(writing: bool) -> Any:
    """An orbax checkpointer. With several processes orbax would synchronise every process
    around each save and restore; here process 0 writes alone and each process reads alone."""
    import orbax.checkpoint as ocp  # ~0.5 s to import: only runs that checkpoint pay it

    if not distributed.multi_process():
        return ocp.StandardCheckpointer()
    me = distributed.process_index()
    opts = ocp.options.MultiprocessingOptions(
        primary_host=0 if writing else None, active_processes={0} if writing else {me}
    )
    return ocp.StandardCheckpointer(multiprocessing_options=opts)


PHASES = ("offline", "online")


def background_by_default() -> bool:
    """Whether the runner's checkpoints write their files in a thread while the next chunk runs:
    yes when the runs compute on an accelerator (the host's cores wait on it), no on the CPU
    backend, where the writer competes with the computation for the same cores. Measured on 2
    cores (`results/perf-phase/`): a full run's offline phase took 26.9 s with the files written
    in a thread, 25.1 s with them written in the loop (0.66 s of waiting), median of 3."""
    return jax.default_backend() != "cpu"


_WRITER: list[ThreadPoolExecutor] = []


def _writer() -> ThreadPoolExecutor:
    """The one thread that writes every checkpointer's files, one write at a time: two orbax
    saves running at once in two threads (a run's checkpoint and the shared offline phase, both
    at the offline phase's last chunk) were seen to deadlock inside orbax."""
    if not _WRITER:
        _WRITER.append(ThreadPoolExecutor(1, thread_name_prefix="jaxo2o-checkpoint"))
    return _WRITER[0]


def finish_writes() -> None:
    """Let the writer thread finish the checkpoint it is writing, then stop it. Called when a
    run is interrupted (Ctrl-C) before the process exits: at interpreter shutdown orbax can no
    longer schedule the work its save needs ("cannot schedule new futures after interpreter
    shutdown"), and the process then hung with the write half done."""
    while _WRITER:
        _WRITER.pop().shutdown(wait=True)


class Checkpointer(ChunkHook):
    """Saves the runs' carry every `every` chunks of each phase and at the end of each phase.

    `n_runs` (set by the runner) drops the runs it padded for sharding.
    `saves` records (phase, chunk, bytes, seconds the host loop waited, seconds the background
    write took) of every checkpoint written.
    """

    def __init__(
        self,
        directory: str | Path,
        key: str,
        every: int = 1,
        n_runs: int | None = None,
        background: bool | None = None,
    ) -> None:
        if every < 1:
            raise ValueError(f"checkpoint_every: must be >= 1, got {every}")
        self.dir, self.key, self.every, self.n_runs = Path(directory), key, every, n_runs
        if background is None:  # see `background_by_default`
            background = background_by_default()
        self.background = background  # the hook's saves write in a thread (False: in the loop)
        self.chunks: dict[str, int] = {}
        self.outputs: dict[str, list[Any]] = {"offline": [], "switch": [], "online": []}
        self.saves: list[dict[str, Any]] = []
        self.label = "checkpoint"  # how messages name what is refused
        self._pending: Future | None = None  # this checkpointer's write in progress

    # ------------------------------------------------------------------ runner interface
    def begin(self, chunks: dict[str, int], outputs: dict[str, list[Any]], n_runs: int) -> None:
        """Called by the runner before the first chunk: the chunk count of each phase, the
        outputs already collected (when resuming) and the real run count."""
        self.chunks, self.n_runs = chunks, n_runs
        self.outputs = {"offline": [], "switch": [], "online": []}
        self.outputs |= {k: list(v) for k, v in outputs.items()}

    def record(self, phase: str, out: Any) -> None:
        """A chunk's outputs (host arrays, unpadded), in order (see `ChunkHook.record`)."""
        self.outputs[phase].append(out)

    def after_chunk(self, phase: str, chunk: int, carry: Any) -> None:
        last = chunk + 1 == self.chunks.get(phase, 0)
        if last or (chunk + 1) % self.every == 0:
            self.save(phase, chunk, carry, background=self.background)

    # ------------------------------------------------------------------ writing
    def save(self, phase: str, chunk: int, carry: Any, background: bool = False) -> None:
        """Save the carry after `chunk` of `phase` (every process calls it; process 0 writes).

        The carry is copied to the host here (the next chunk donates its buffers). With
        `background` (the runner's hook calls) the files are written by a thread while the next
        chunk runs, one save at a time, in order; `wait` (called by the next save, `end`,
        `clear` and `restore`) finishes the pending write and raises its error, if any."""
        t0 = time.perf_counter()
        n = self.n_runs
        full = jax.device_get(distributed.gather(carry))  # all processes' runs
        if not distributed.is_main_process():
            return
        leaves = [np.asarray(x)[:n] for x in jax.tree.leaves(full)]
        if background:  # copies: a host view of a device buffer would change under the next chunk
            leaves = [np.array(x) for x in leaves]
        arrays, layout = _flatten_outputs(self.outputs)
        meta = {
            "format": FORMAT,
            "key": self.key,
            "phase": phase,
            "chunk": chunk,
            "n_runs": n,
            "leaves": _leaf_specs(leaves),
            "outputs": layout,
        }
        self.wait()
        blocking = time.perf_counter() - t0
        self._pending = _writer().submit(self._write, leaves, arrays, meta, blocking)
        if not background:
            self.wait()
            if self.saves:  # the loop waited for the files too
                self.saves[-1]["seconds"] = time.perf_counter() - t0

    def wait(self) -> None:
        """Finish the pending write (if any); its error is raised here (`write_failed`)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            error = pending.exception()
            if error is not None:
                self.write_failed(error)

    def write_failed(self, error: BaseException) -> None:
        """A background write failed: raise its error (the shared offline phase only warns)."""
        raise error

    def end(self) -> None:
        self.wait()

    def _write(
        self, leaves: list[np.ndarray], arrays: dict[str, np.ndarray], meta: dict, blocking: float
    ) -> None:
        """Write one checkpoint to a temporary folder and rename it into place."""
        t0 = time.perf_counter()
        self.dir.mkdir(parents=True, exist_ok=True)
        name = f"{meta['phase']}-{meta['chunk']:06d}"
        tmp = self.dir / f".tmp-{name}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            ckpt = _orbax(writing=True)
            ckpt.save((tmp / "carry").absolute(), _carry_dict(leaves))
            ckpt.wait_until_finished()
            ckpt.close()
            with open(tmp / "outputs.npz", "wb") as f:
                np.savez(f, **arrays)
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
            final = self.dir / name
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        for old in self.dir.iterdir():  # keep only the newest checkpoint
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)
        size = sum(f.stat().st_size for f in final.rglob("*") if f.is_file())
        self.saves.append(
            {
                "phase": meta["phase"],
                "chunk": meta["chunk"],
                "bytes": size,
                "seconds": blocking,  # the host loop's wait: the copy to the host
                "write_seconds": time.perf_counter() - t0,  # in the background
            }
        )

    # ------------------------------------------------------------------ reading
    def restore(self, carry_like: dict[str, Any], out_like: dict[str, Any]) -> Resume | None:
        """The newest checkpoint in the folder, or None (nothing there, or refused: then a
        message on stderr says why and the runs start over).

        `carry_like[phase]`: an abstract carry of that phase (shapes with the runs axis,
        unpadded); `out_like[phase]`: an abstract per-chunk output, to rebuild the outputs.

        With several processes each one reads, and all must find the same checkpoint (else a
        RuntimeError: the folder is not shared, or changed while they read it)."""
        self.wait()
        resume = self._newest(carry_like, out_like)
        if distributed.multi_process():
            where = [-1, -1] if resume is None else [PHASES.index(resume.phase), resume.chunk]
            seen = distributed.all_values(np.asarray(where, np.int64))
            if not (seen == seen[0]).all():
                found = {
                    i: "none" if p < 0 else f"{PHASES[p]} chunk {c}"
                    for i, (p, c) in enumerate(seen.tolist())
                }
                raise RuntimeError(
                    f"checkpoints in {self.dir}: the processes found different ones ({found}); "
                    "the folder must be on a filesystem every process shares"
                )
        return resume

    def _newest(self, carry_like: dict[str, Any], out_like: dict[str, Any]) -> Resume | None:
        if not self.dir.is_dir():
            return None
        found = sorted(p for p in self.dir.iterdir() if not p.name.startswith("."))
        if not found:
            return None
        path = found[-1]
        try:
            return self._read(path, carry_like, out_like)
        except Exception as e:  # noqa: BLE001 - any failure to read means: do not load it
            print(
                f"{self.label} {path}: ignored ({type(e).__name__}: {e}); the runs start over",
                file=sys.stderr,
                flush=True,
            )
            return None

    def _read(self, path: Path, carry_like: dict, out_like: dict) -> Resume:
        meta = json.loads((path / "meta.json").read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, expected {FORMAT}")
        if meta.get("key") != self.key:
            raise ValueError(
                f"made for another configuration (key {str(meta.get('key'))[:12]}..., "
                f"this run's is {self.key[:12]}...)"
            )
        phase, chunk = meta["phase"], int(meta["chunk"])
        if phase not in carry_like:
            raise ValueError(f"phase {phase!r} is not part of this run")
        expected = _leaf_specs(
            [np.zeros(x.shape, x.dtype) for x in jax.tree.leaves(carry_like[phase])]
        )
        if meta["leaves"] != expected:
            raise ValueError("its arrays do not have this run's shapes and dtypes")
        target = {
            f"{i:05d}": jax.ShapeDtypeStruct(tuple(s), np.dtype(d))
            for i, (s, d) in enumerate(expected)
            if np.prod(s) > 0  # zero-size leaves are not stored (`_carry_dict`)
        }
        ckpt = _orbax(writing=False)
        try:
            restored = ckpt.restore((path / "carry").absolute(), target)
        finally:
            ckpt.close()
        leaves = [
            np.asarray(restored[f"{i:05d}"]) if np.prod(s) > 0 else np.zeros(s, np.dtype(d))
            for i, (s, d) in enumerate(expected)
        ]
        for x, (s, d) in zip(leaves, expected, strict=True):
            if list(x.shape) != s or str(x.dtype) != d:
                raise ValueError("restored arrays do not have the recorded shapes")
        outputs: dict[str, list[Any]] = {}
        with np.load(path / "outputs.npz") as z:
            for ph, count in meta["outputs"].items():
                treedef = jax.tree.structure(out_like[ph]) if count else None
                n_leaves = treedef.num_leaves if treedef else 0
                outputs[ph] = [
                    jax.tree.unflatten(treedef, [z[f"{ph}/{i}/{j}"] for j in range(n_leaves)])
                    for i in range(count)
                ]
        return Resume(phase, chunk, leaves, outputs)

    def clear(self) -> None:
        """Delete every checkpoint (after the results are written, or to start over); with
        several processes, process 0 deletes them."""
        self.wait()
        if not distributed.is_main_process():
            return
        shutil.rmtree(self.dir, ignore_errors=True)
