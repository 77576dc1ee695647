"""A small file in the layout of D4RL's antmaze-v2 datasets, recorded with MuJoCo C on the model
of `envs/d4rl_antmaze.py`, so the AntMaze pipeline runs end to end without D4RL's file.

Layout (scripts/generation/generate_ant_maze_datasets.py:13-41,124-158): flat `observations`
(N, 29), `actions` (N, 8) float32, `rewards`, `terminals` and `timeouts` (N,), `infos/goal`,
`infos/qpos`, `infos/qvel`; a row is the observation *before* the step. An episode's row with
step counter == --steps gets `timeouts` (the generator's `ts >= max_episode_steps`) and the next
row starts a new episode. Rewards and terminals are relabelled afterwards as D4RL did
(scripts/generation/relabel_antmaze_rewards.py:29-38): `r_t = terminal_t = 1{|obs_{t+1}[:2] -
goal| <= 0.5}` from the *following row* (across episode ends too), 0 on the last row, with one
goal for the whole file (the env's target goal, drawn once by the env's own goal rule).

Behaviour (--policy): `gait`, the recipe's shape with a scripted walker in place of D4RL's
trained goal-reaching policy -- the ant follows the maze's shortest path to the file's goal with
the trot of `envs/ant_gait.py`, plus N(0, --noise^2) action noise (D4RL's 0.2), clipped; or
`random`, actions uniform in [-1, 1] held for --hold steps. Starts: D4RL's reset law at the
origin (--no-multistart, the umaze recipe's fixed start), or a free cell drawn uniformly plus
U(0, 1) per axis (maze_env.py:214-225).

    python -m benchmarks.make_antmaze_data --out /tmp/antmaze-umaze-v2.hdf5 --episodes 40 \\
        --policy gait --no-multistart --steps 700
"""

from __future__ import annotations

import argparse
from pathlib import Path

import h5py
import jax
import mujoco
import numpy as np

from jaxo2o.envs.ant_gait import ant_controller
from jaxo2o.envs.d4rl_antmaze import (
    ANTMAZE_SPECS,
    FRAME_SKIP,
    GOAL_RADIUS,
    QPOS_NOISE,
    QVEL_NOISE,
    SCALING,
    D4RLAntMaze,
    build_model,
    cell_xy,
    goal_cell,
)

POLICIES = ("random", "gait")


def sample_goal_np(maze_map, rng: np.random.Generator) -> np.ndarray:
    """The env's goal rule (maze_env.py:236-258) with numpy."""
    base = np.asarray(goal_cell(maze_map))
    xy = base + rng.uniform(0, 0.25 * SCALING, 2) + rng.uniform(0, 0.5, 2) * 0.25 * SCALING
    return np.maximum(xy, 0.0)


def relabel(obs: np.ndarray, goal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """relabel_antmaze_rewards.py:29-38: reward and terminal of row t from row t + 1."""
    hit = (np.linalg.norm(obs[1:, :2] - goal, axis=1) <= GOAL_RADIUS).astype(np.float32)
    hit = np.concatenate([hit, np.zeros(1, np.float32)])
    return hit, hit > 0


def record(task: str, episodes: int, steps: int, seed: int = 0, hold: int = 4,
           multistart: bool = True, policy: str = "random",
           noise: float = 0.2) -> dict[str, np.ndarray]:  # fmt: skip
    """The arrays of the file (module docstring)."""
    if policy not in POLICIES:
        raise ValueError(f"policy: expected one of {POLICIES}, got {policy!r}")
    maze_map = ANTMAZE_SPECS[task].maze_map
    m = build_model(maze_map)
    d = mujoco.MjData(m)
    gait = jax.jit(ant_controller(D4RLAntMaze(task)).action)
    rng = np.random.default_rng(seed)
    goal = sample_goal_np(maze_map, rng)
    free = [cell_xy(maze_map, i, j) for i, r in enumerate(maze_map) for j, c in enumerate(r)
            if c != 1]  # fmt: skip
    rows: dict[str, list] = {k: [] for k in ("observations", "actions", "timeouts", "infos/goal",
                                             "infos/qpos", "infos/qvel")}  # fmt: skip
    for _ in range(episodes):
        mujoco.mj_resetData(m, d)
        d.qpos[:] = m.qpos0 + rng.uniform(-QPOS_NOISE, QPOS_NOISE, m.nq)
        d.qvel[:] = QVEL_NOISE * rng.standard_normal(m.nv)
        if multistart:
            d.qpos[:2] = np.asarray(free[rng.integers(len(free))]) + rng.uniform(0, 1.0, 2)
        mujoco.mj_forward(m, d)
        action = rng.uniform(-1.0, 1.0, m.nu)
        for ts in range(steps + 1):
            if policy == "gait":
                q, v = d.qpos.astype(np.float32), d.qvel.astype(np.float32)
                action = np.asarray(gait(q, v, goal.astype(np.float32), ts), np.float64)
                action = np.clip(action + noise * rng.standard_normal(m.nu), -1.0, 1.0)
            elif ts % hold == 0:
                action = rng.uniform(-1.0, 1.0, m.nu)
            obs = np.concatenate([d.qpos[:15], d.qvel[:14]])
            rows["observations"].append(obs)
            rows["actions"].append(action.copy())
            rows["timeouts"].append(ts >= steps)
            rows["infos/goal"].append(goal)
            rows["infos/qpos"].append(d.qpos.copy())
            rows["infos/qvel"].append(d.qvel.copy())
            d.ctrl[:] = np.clip(30.0 * action, -30.0, 30.0)
            for _ in range(FRAME_SKIP):
                mujoco.mj_step(m, d)
    out = {k: np.asarray(v, np.bool_ if k == "timeouts" else np.float32) for k, v in rows.items()}
    out["rewards"], out["terminals"] = relabel(out["observations"], goal)
    return out


def write(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f[k] = v


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--task", default="antmaze-umaze-v2", choices=tuple(ANTMAZE_SPECS))
    ap.add_argument("--episodes", type=int, default=40)
    ap.add_argument("--steps", type=int, default=200, help="max_episode_steps of the recording")
    ap.add_argument("--hold", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-multistart", action="store_true")
    ap.add_argument("--policy", default="random", choices=POLICIES)
    ap.add_argument("--noise", type=float, default=0.2, help="gait action noise std")
    args = ap.parse_args()
    a = record(args.task, args.episodes, args.steps, args.seed, args.hold,
               not args.no_multistart, args.policy, args.noise)  # fmt: skip
    write(args.out, a)
    print(
        f"{args.out}: {len(a['rewards'])} rows, {int(a['timeouts'].sum())} timeouts, "
        f"{int(a['terminals'].sum())} terminal rows (reward 1), goal {a['infos/goal'][0]}"
    )


if __name__ == "__main__":
    main()
