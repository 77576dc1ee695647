"""The grid the trot's constants (`envs/ant_gait.py`) were chosen from, on MuJoCo C: D4RL's ant
in free space (no walls), from qpos0 at rest, 60 steps (6 s) of `TrotGait` toward each of eight
directions 45 degrees apart. Score: the smallest distance covered along the asked direction over
the eight (a gait must walk every way); also printed, the largest sideways drift and the lowest
final uprightness (the torso's up axis, z). Every setting tried is printed, best first.

    python -m benchmarks.ant_gait_grid
"""

from __future__ import annotations

import argparse
import itertools
import time

import jax
import mujoco
import numpy as np

from jaxo2o.envs.ant_gait import TrotGait
from jaxo2o.envs.d4rl_antmaze import ACTION_SCALE, FRAME_SKIP, G, R, antmaze_xml

GRID = {
    "hip_amplitude": (0.4, 0.8),  # -a is +a with the ankle phase shifted by pi
    "ankle_phase": (0.0, np.pi / 2, np.pi, 3 * np.pi / 2),
    "period": (0.6, 0.8, 1.2),
    "kp": (30.0, 60.0),
}


def walk(m: mujoco.MjModel, gait, direction: np.ndarray, steps: int) -> np.ndarray:
    """Final qpos after `steps` env steps of `gait` toward `direction` from qpos0 at rest."""
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)
    for t in range(steps):
        q, v = d.qpos.astype(np.float32), d.qvel.astype(np.float32)
        d.ctrl[:] = ACTION_SCALE * np.asarray(gait(q, v, t, direction))
        for _ in range(FRAME_SKIP):
            mujoco.mj_step(m, d)
    return d.qpos.copy()


def score(m: mujoco.MjModel, gait: TrotGait, steps: int) -> tuple[float, float, float]:
    """(smallest distance along, largest sideways drift, lowest up_z) over eight directions."""
    f = jax.jit(gait)
    along, side, up = [], [], []
    for a in np.radians(np.arange(0, 360, 45)):
        v = np.array([np.cos(a), np.sin(a)], np.float32)
        q = walk(m, f, v, steps)
        along.append(q[:2] @ v)
        side.append(abs(q[0] * v[1] - q[1] * v[0]))
        up.append(1 - 2 * (q[4] ** 2 + q[5] ** 2))
    return min(along), max(side), min(up)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=60)
    args = ap.parse_args()
    m = mujoco.MjModel.from_xml_string(antmaze_xml(((R, 0), (0, G))))
    dt = float(m.opt.timestep) * FRAME_SKIP
    t0 = time.time()
    rows = []
    for values in itertools.product(*GRID.values()):
        kw = dict(zip(GRID, values, strict=True))
        kw["kd"] = kw["kp"] / 10
        gait = TrotGait(m, dt, ACTION_SCALE, **kw)
        rows.append((score(m, gait, args.steps), kw))
    rows.sort(key=lambda r: -r[0][0])
    print(f"{len(rows)} settings, {args.steps} steps each way ({time.time() - t0:.0f} s)")
    print("min along | max sideways | min up_z | setting")
    for (along, side, up), kw in rows:
        setting = " ".join(f"{k}={v:.3g}" for k, v in kw.items())
        print(f"{along:9.2f} | {side:12.2f} | {up:8.3f} | {setting}")


if __name__ == "__main__":
    main()
