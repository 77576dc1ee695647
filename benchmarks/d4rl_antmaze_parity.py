"""One-step parity of the MJX antmaze-v2 port (`envs/d4rl_antmaze.py`) against MuJoCo C on the
same generated model, per contact regime.

Reference states come from MuJoCo C rollouts of the model (D4RL's reset law, uniformly random
actions held for a few steps); each (qpos, qvel, qacc_warmstart, action) is stepped once by C
(5 x mj_step) and once by the port (teacher forced), and the largest absolute difference over
the next qpos and qvel is the state's error. A state's regime is what C's step touched:
`air` (no contact in any substep: the ant is lifted 2 m above the floor), `floor` (floor
contacts only), `wall` (a contact with a wall block; rollouts start next to the walls of the
start cell, pushed towards them).

    python -m benchmarks.d4rl_antmaze_parity --states 300 [--cone pyramidal] [--c-only]

`--c-only` compares MuJoCo C with itself under other solver settings (no MJX compile): how
much the pyramidal cone's solution moves when only the solver changes.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from jaxo2o.envs.d4rl_antmaze import (
    FRAME_SKIP,
    QPOS_NOISE,
    QVEL_NOISE,
    AntMazePhysics,
    D4RLAntMaze,
    build_model,
)

REGIMES = ("air", "floor", "wall")


@dataclass
class States:
    qpos: np.ndarray
    qvel: np.ndarray
    warm: np.ndarray
    action: np.ndarray
    next_qpos: np.ndarray  # MuJoCo C's step
    next_qvel: np.ndarray


def c_step(m: mujoco.MjModel, d: mujoco.MjData, action: np.ndarray) -> tuple[bool, bool]:
    """One env step in MuJoCo C; returns (any floor contact, any wall contact) over substeps."""
    d.ctrl[:] = np.clip(30.0 * action, -30.0, 30.0)
    floor = wall = False
    for _ in range(FRAME_SKIP):
        mujoco.mj_step(m, d)
        g = np.concatenate([d.contact.geom1[: d.ncon], d.contact.geom2[: d.ncon]])
        names = {m.geom(int(i)).name for i in g}
        floor |= "floor" in names
        wall |= any(n.startswith("block_") for n in names)
    return floor, wall


def collect(env: D4RLAntMaze, regime: str, n: int, seed: int, hold: int = 4,
            episode: int = 20, model: mujoco.MjModel | None = None) -> States:  # fmt: skip
    """`n` reference states of one regime from MuJoCo C rollouts (module docstring)."""
    m = model if model is not None else env.mj_model
    d = mujoco.MjData(m)
    rng = np.random.default_rng(seed)
    out: dict[str, list] = {k: [] for k in ("qpos", "qvel", "warm", "action", "nq", "nv")}
    while len(out["qpos"]) < n:
        mujoco.mj_resetData(m, d)
        d.qpos[:] = m.qpos0 + rng.uniform(-QPOS_NOISE, QPOS_NOISE, m.nq)
        d.qvel[:] = QVEL_NOISE * rng.standard_normal(m.nv)
        if regime == "air":
            d.qpos[2] += 2.0
            d.qvel[:] = rng.normal(0.0, 1.0, m.nv)
        if regime == "wall":  # the start cell is walled at x = -2, y = -2 and y = 2
            side = rng.integers(3)
            along = rng.uniform(-1.0, 1.0)
            gap = rng.uniform(0.6, 1.1)  # torso centre to the wall's face
            speed = rng.uniform(0.5, 3.0)
            if side == 0:
                d.qpos[:2], d.qvel[:2] = (-2.0 + gap, along), (-speed, 0.0)
            else:
                s = -1.0 if side == 1 else 1.0
                d.qpos[:2], d.qvel[:2] = (along, s * (2.0 - gap)), (0.0, s * speed)
        mujoco.mj_forward(m, d)
        action = rng.uniform(-1.0, 1.0, m.nu)
        for t in range(episode):
            if t % hold == 0:
                action = rng.uniform(-1.0, 1.0, m.nu)
            before = (d.qpos.copy(), d.qvel.copy(), d.qacc_warmstart.copy())
            floor, wall = c_step(m, d, action)
            kind = "wall" if wall else "floor" if floor else "air"
            if kind == regime and len(out["qpos"]) < n:
                for k, v in zip(("qpos", "qvel", "warm"), before, strict=True):
                    out[k].append(v)
                out["action"].append(action.copy())
                out["nq"].append(d.qpos.copy())
                out["nv"].append(d.qvel.copy())
            if regime == "air" and d.qpos[2] < 1.5:
                break
    a = {k: np.asarray(v) for k, v in out.items()}
    return States(a["qpos"], a["qvel"], a["warm"], a["action"], a["nq"], a["nv"])


def port_errors(env: D4RLAntMaze, st: States) -> np.ndarray:
    """Per state: max |port - C| over the next qpos and qvel (one env step, teacher forced)."""
    n = len(st.qpos)
    phys = AntMazePhysics(
        jnp.asarray(st.qpos, jnp.float32),
        jnp.asarray(st.qvel, jnp.float32),
        jnp.asarray(st.warm, jnp.float32),
        jnp.zeros((n, 2), jnp.float32),
    )
    step = jax.jit(jax.vmap(env.physics_step))
    d = step(phys, jnp.asarray(st.action, jnp.float32))
    qp, qv = np.asarray(d.qpos, np.float64), np.asarray(d.qvel, np.float64)
    return np.maximum(np.abs(qp - st.next_qpos).max(1), np.abs(qv - st.next_qvel).max(1))


def c_errors(st: States, model: mujoco.MjModel) -> np.ndarray:
    """The same comparison against MuJoCo C on another (solver-variant) model."""
    d = mujoco.MjData(model)
    err = np.zeros(len(st.qpos))
    for k in range(len(st.qpos)):
        mujoco.mj_resetData(model, d)
        d.qpos[:], d.qvel[:], d.qacc_warmstart[:] = st.qpos[k], st.qvel[k], st.warm[k]
        c_step(model, d, st.action[k])
        err[k] = max(np.abs(d.qpos - st.next_qpos[k]).max(), np.abs(d.qvel - st.next_qvel[k]).max())
    return err


def summary(err: np.ndarray) -> str:
    q = np.quantile(err, [0.5, 0.9, 0.99])
    return (
        f"n={len(err)} median={q[0]:.2e} p90={q[1]:.2e} p99={q[2]:.2e} max={err.max():.2e} "
        f"share<=1e-4={np.mean(err <= 1e-4):.3f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="antmaze-umaze-v2")
    ap.add_argument("--states", type=int, default=300)
    ap.add_argument("--cone", default="pyramidal", choices=("pyramidal", "elliptic"))
    ap.add_argument("--regimes", nargs="*", default=list(REGIMES))
    ap.add_argument("--c-only", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    env = D4RLAntMaze(args.task, cone=args.cone)
    states = {}
    for r in args.regimes:
        t0 = time.time()
        states[r] = collect(env, r, args.states, seed=args.seed + REGIMES.index(r))
        print(f"{r}: {args.states} C states in {time.time() - t0:.1f}s", flush=True)
    if args.c_only:
        variants = {
            "CG": dict(solver=mujoco.mjtSolver.mjSOL_CG),
            "PGS": dict(solver=mujoco.mjtSolver.mjSOL_PGS),
            "Newton tol 1e-12": dict(tolerance=1e-12, iterations=1000),
            "Newton tol 1e-4": dict(tolerance=1e-4),
            "other cone": dict(cone=1 - int(env.mj_model.opt.cone)),
        }
        for name, opts in variants.items():
            m = build_model(env.maze_map, args.cone)
            for k, v in opts.items():
                setattr(m.opt, k, v)
            for r, st in states.items():
                print(f"C({args.cone}, {name}) vs C: {r}: {summary(c_errors(st, m))}", flush=True)
        return
    t0 = time.time()
    merged = States(*(np.concatenate([getattr(s, f) for s in states.values()]) for f in
                      ("qpos", "qvel", "warm", "action", "next_qpos", "next_qvel")))  # fmt: skip
    err = port_errors(env, merged)
    print(f"MJX ({args.cone}): compile + run {time.time() - t0:.1f}s", flush=True)
    i = 0
    for r, st in states.items():
        e = err[i : i + len(st.qpos)]
        i += len(st.qpos)
        print(f"MJX({args.cone}) vs C: {r}: {summary(e)}", flush=True)


if __name__ == "__main__":
    main()
