"""The point-mass mazes: walls (every side, corners, full speed), goal reward and termination,
time limits, jittered auto-resets, and the PNG rendering."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxo2o.envs import MAZE_TASKS, TASKS, EnvState, make_env, step_autoreset
from jaxo2o.envs import maze as mz
from jaxo2o.envs.render import episode_positions, render_trajectories

LIMIT = 0.5 - mz.MARGIN  # how far from its cell's centre a point stopped by a wall is


def state(pos, vel, t: int = 0) -> EnvState:
    phys = jnp.asarray([*pos, *vel], jnp.float32)
    return EnvState(physics=phys, obs=phys, t=jnp.asarray(t, jnp.int32))


def in_wall(layout: mz.Layout, pos: np.ndarray) -> np.ndarray:
    cells = np.floor(np.asarray(pos)[..., ::-1] + 0.5).astype(int)
    return layout.walls[cells[..., 0], cells[..., 1]]


@pytest.fixture(scope="module")
def umaze():
    return make_env("pointmaze-umaze")


def test_tasks_are_registered_with_their_time_limits():
    assert MAZE_TASKS == ("pointmaze-umaze", "pointmaze-medium", "pointmaze-large")
    assert set(MAZE_TASKS) <= set(TASKS)
    limits = {t: make_env(t, backend="ignored").episode_length for t in MAZE_TASKS}
    assert limits == {"pointmaze-umaze": 200, "pointmaze-medium": 300, "pointmaze-large": 400}
    assert make_env("pointmaze-large", episode_length=55).episode_length == 55
    assert make_env("point").episode_length == 1000  # the other tasks keep their default
    for t in MAZE_TASKS:
        layout = make_env(t).layout
        # the shortest path fits the time limit with room: at most 0.15 cells per step
        path = layout.distances(layout.goal)[layout.start]
        assert 0 < path / (mz.DT * mz.V_MAX) < make_env(t).episode_length / 2
    with pytest.raises(ValueError, match="unknown maze"):
        mz.layout_of("pointmaze-huge")

    from jaxo2o.config import EnvConfig

    EnvConfig(task="pointmaze-medium", episode_length=300)  # validation knows the names


def test_no_tunnelling_is_possible_at_the_maximum_speed():
    # per axis a step moves at most DT * V_MAX: well under half a cell, so a move only reaches
    # the neighbouring cell, which is all `_move_axis` checks
    assert mz.DT * mz.V_MAX < 0.5
    assert np.isclose(mz.V_MAX, mz.FORCE / mz.DAMPING)
    # full force from rest approaches V_MAX and never exceeds it
    v = jnp.zeros(2)
    for _ in range(200):
        v = jnp.clip((1 - mz.DAMPING * mz.DT) * v + mz.FORCE * mz.DT, -mz.V_MAX, mz.V_MAX)
    assert float(v[0]) <= mz.V_MAX and float(v[0]) > 0.999 * mz.V_MAX


@pytest.mark.parametrize(
    "pos, vel, expect_pos, expect_vel",
    [
        # umaze cell (1,1): walls west (1,0), north (0,1), south (2,1); (1,3) has a wall east
        ((3.45, 1.0), (1.5, 0.0), (3.0 + LIMIT, 1.0), (0.0, 0.0)),  # east side
        ((1.0 - 0.45, 1.0), (-1.5, 0.0), (1.0 - LIMIT, 1.0), (0.0, 0.0)),  # west side
        ((1.0, 1.0 - 0.45), (0.0, -1.5), (1.0, 1.0 - LIMIT), (0.0, 0.0)),  # north side
        ((1.0, 1.45), (0.0, 1.5), (1.0, 1.0 + LIMIT), (0.0, 0.0)),  # south side
        ((0.55, 0.55), (-1.5, -1.5), (1 - LIMIT, 1 - LIMIT), (0.0, 0.0)),  # north-west corner
        ((3.45, 0.55), (1.5, -1.5), (3 + LIMIT, 1 - LIMIT), (0.0, 0.0)),  # north-east corner
    ],
)
def test_wall_sides_and_corners_by_hand(umaze, pos, vel, expect_pos, expect_vel):
    # no action: v' = 0.8 v (|v'| = 1.2 cells/time, 0.12 cells per step) carries it into the wall
    _, res = umaze.step(state(pos, vel), jnp.zeros(2))
    np.testing.assert_allclose(res.next_obs[:2], expect_pos, atol=1e-6)
    np.testing.assert_allclose(res.next_obs[2:], expect_vel, atol=1e-6)
    assert not in_wall(umaze.layout, np.asarray(res.next_obs[:2]))


def test_sliding_along_a_wall_keeps_the_parallel_speed(umaze):
    _, res = umaze.step(state((1.0, 1.45), (1.0, 1.5)), jnp.array([0.0, 1.0]))
    # y is stopped by the south wall, x slides on: v_x' = 0.8, x' = 1 + 0.08
    np.testing.assert_allclose(res.next_obs, [1.08, 1.0 + LIMIT, 0.8, 0.0], atol=1e-6)


def test_convex_corner_is_not_cut(umaze):
    # from (1,3) moving west and south: x moves first into (1,2), then y would enter the wall
    # (2,2), so the point stops on the wall's top edge instead of cutting through its corner
    _, res = umaze.step(state((2.55, 1.45), (-1.5, 1.5)), jnp.array([-1.0, 1.0]))
    np.testing.assert_allclose(res.next_obs[:2], [2.4, 1.0 + LIMIT], atol=1e-6)
    assert not in_wall(umaze.layout, np.asarray(res.next_obs[:2]))


@pytest.mark.parametrize("task", MAZE_TASKS)
def test_every_wall_at_full_speed_in_eight_directions(task):
    """From every free cell, push at full force and full speed in 8 directions for 100 steps
    (15 cells, longer than any corridor): never inside a wall, never more than DT * V_MAX per
    axis and step; at the end every push rests against a wall, right at its boundary."""
    env = make_env(task)
    layout = env.layout
    cells = np.array(layout.free_cells, np.float32)[:, ::-1]  # (x, y) centres
    dirs = np.array([(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1)])
    starts = np.repeat(cells, len(dirs), axis=0)
    d = np.tile(dirs, (len(cells), 1)).astype(np.float32)

    def run(pos, direction):
        def body(s, _):
            s2, res = env.step(s, direction)
            return s2, res.next_obs

        s0 = state(pos, direction * mz.V_MAX)
        return jax.lax.scan(body, s0, None, length=100)[1]

    traj = np.asarray(jax.jit(jax.vmap(run))(jnp.asarray(starts), jnp.asarray(d)))
    pos = traj[..., :2]
    assert not in_wall(layout, pos).any()
    steps = np.abs(np.diff(np.concatenate([starts[:, None], pos], axis=1), axis=1))
    assert steps.max() <= mz.DT * mz.V_MAX + 1e-6
    # where the next cell along a pushed axis is a wall, the point sits at its boundary, that
    # speed zeroed; along x at least one push per start rests against a wall (the outer ring)
    final = traj[:, -1]
    for (x, y, vx, vy), (dx, dy) in zip(final, d, strict=True):
        i, j = int(np.floor(y + 0.5)), int(np.floor(x + 0.5))
        if dx and layout.walls[i, j + int(dx)]:
            assert abs(x - (j + dx * LIMIT)) < 1e-5 and vx == 0.0
        if dy and layout.walls[i + int(dy), j]:
            assert abs(y - (i + dy * LIMIT)) < 1e-5 and vy == 0.0


def test_random_actions_from_random_speeds_never_enter_a_wall():
    env = make_env("pointmaze-medium", episode_length=10_000)
    n, steps = 256, 300
    k_v, k_a = jax.random.split(jax.random.PRNGKey(0))
    free = np.array(env.layout.free_cells, np.float32)[:, ::-1]
    pos0 = jnp.asarray(free[np.arange(n) % len(free)])
    vel0 = jax.random.uniform(k_v, (n, 2), minval=-3.0, maxval=3.0)  # beyond V_MAX: clipped

    def run(p, v, k):
        def body(s, k):
            a = jax.random.uniform(k, (2,), minval=-1.5, maxval=1.5)
            s2, res = env.step(s, a)
            return s2, res.next_obs

        return jax.lax.scan(body, state(p, v), jax.random.split(k, steps))[1]

    traj = np.asarray(jax.jit(jax.vmap(run))(pos0, vel0, jax.random.split(k_a, n)))
    assert not in_wall(env.layout, traj[..., :2]).any()
    assert np.abs(traj[..., 2:]).max() <= mz.V_MAX


def test_reward_and_termination_exactly_on_entering_the_goal(umaze):
    gx, gy = (float(v) for v in umaze.goal_xy)  # cell (3, 1): x = 1, y = 3
    # no action: v' = 0.8 v, so the x step is -0.12 from a speed of -1.5
    s = state((gx + mz.GOAL_RADIUS + 0.10, gy), (-1.5, 0.0))  # next x: goal + 0.23 (inside)
    _, res = umaze.step(s, jnp.zeros(2))
    assert bool(res.terminated) and float(res.reward) == 1.0 and not bool(res.truncated)
    s = state((gx + mz.GOAL_RADIUS + 0.13, gy), (-1.5, 0.0))  # next x: goal + 0.26 (outside)
    _, res = umaze.step(s, jnp.zeros(2))
    assert not bool(res.terminated) and float(res.reward) == 0.0
    # on random rollouts from everywhere: reward == terminated == the goal test on next_obs
    n = 512
    keys = jax.random.split(jax.random.PRNGKey(3), n)
    free = np.array(umaze.layout.free_cells, np.float32)[:, ::-1]
    p0 = jnp.asarray(free[np.arange(n) % len(free)])

    def run(p, k):
        def body(s, k):
            s2, res = umaze.step(s, jax.random.uniform(k, (2,), minval=-1, maxval=1))
            return s2, res

        return jax.lax.scan(body, state(p, (0.0, 0.0)), jax.random.split(k, 100))[1]

    res = jax.jit(jax.vmap(run))(p0, keys)
    dist = np.linalg.norm(np.asarray(res.next_obs[..., :2]) - np.asarray(umaze.goal_xy), axis=-1)
    term = np.asarray(res.terminated)
    assert term.any() and not term.all()
    np.testing.assert_array_equal(term, dist <= mz.GOAL_RADIUS)
    np.testing.assert_array_equal(np.asarray(res.reward), term.astype(np.float32))


def test_truncation_at_the_time_limit(umaze):
    far = state((1.0, 1.0), (0.0, 0.0), t=umaze.episode_length - 1)
    _, res = umaze.step(far, jnp.zeros(2))
    assert bool(res.truncated) and not bool(res.terminated)
    _, res = umaze.step(state((1.0, 1.0), (0.0, 0.0), t=umaze.episode_length - 2), jnp.zeros(2))
    assert not bool(res.truncated)
    gx, gy = (float(v) for v in umaze.goal_xy)
    at_goal = state((gx + 0.3, gy), (-1.5, 0.0), t=umaze.episode_length - 1)
    _, res = umaze.step(at_goal, jnp.zeros(2))  # success on the last step: terminated only
    assert bool(res.terminated) and not bool(res.truncated)


def test_auto_reset_gives_fresh_jittered_starts(umaze):
    gx, gy = (float(v) for v in umaze.goal_xy)
    done = state((gx + 0.3, gy), (-1.5, 0.0), t=7)
    keys = jax.random.split(jax.random.PRNGKey(1), 64)
    step = jax.jit(jax.vmap(lambda k: step_autoreset(umaze, done, jnp.zeros(2), k)))
    new, res = step(keys)
    assert np.asarray(res.terminated).all()  # the true final step is reported ...
    assert np.allclose(np.asarray(res.next_obs[:, 0]), gx + 0.3 - 0.12)
    obs = np.asarray(new.obs)  # ... and the state restarts near the start, at rest
    offset = obs[:, :2] - np.asarray(umaze.start_xy)
    assert np.abs(offset).max() <= mz.START_JITTER
    assert np.abs(offset).max() > 0.5 * mz.START_JITTER and offset.std(axis=0).min() > 0.02
    assert len({tuple(o) for o in offset.round(6)}) == 64
    np.testing.assert_array_equal(obs[:, 2:], 0.0)
    np.testing.assert_array_equal(np.asarray(new.t), 0)
    np.testing.assert_array_equal(obs, np.asarray(new.physics))


def test_render_writes_a_png_of_the_expected_size(tmp_path):
    import matplotlib.image as mpimg

    env = make_env("pointmaze-medium")
    h, w = env.layout.shape
    # two hand-made trajectories of different lengths (padded with NaN) and one (T, D) array
    a = np.array([[1.0, 1.0, 0, 0], [1.0, 2.0, 0, 0], [2.0, 2.0, 0, 0], [2.0, 3.0, 0, 0]])
    b = np.array([[6.0, 6.0], [6.0, 5.0]])
    img = render_trajectories("pointmaze-medium", [a, b], tmp_path / "maze.png", scale=10)
    png = mpimg.imread(tmp_path / "maze.png")
    assert png.shape[:2] == (h * 10, w * 10) == img.shape[:2]
    # the wall at (0, 0) is dark, the floor light, the first trajectory's line coloured
    floor = png[10 * 4 + 5, 10 * 5 + 5, :3]  # cell (4, 5): free, no trajectory
    assert png[5, 5, :3].mean() < 0.4 and floor.mean() > 0.9
    # trajectory a runs down from (x, y) = (1, 1) to (1, 2): pixel column 15, rows 15-25
    np.testing.assert_allclose(png[20, 15, :3], img[20, 15], atol=1 / 255)
    assert np.abs(png[20, 15, :3] - floor).max() > 0.3
    # a batch (B, T, D) and flat transitions split into episodes work too
    batch = np.zeros((3, 5, 4), np.float32) + np.array([1.0, 1.0, 0, 0], np.float32)
    render_trajectories("pointmaze-umaze", batch, tmp_path / "u.png", scale=8)
    assert mpimg.imread(tmp_path / "u.png").shape[:2] == (40, 40)
    obs = np.arange(12, dtype=np.float32).reshape(6, 2)
    eps = episode_positions(obs, obs + 1, np.array([0, 1, 0, 0, 0, 1], bool))
    assert [len(e) for e in eps] == [3, 5]
