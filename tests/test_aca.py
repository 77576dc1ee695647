"""ACA and sac-direct: the switch (R built from Z, Q = Z + w0 c(log pi0) by hand), the soft clip and
its floor for both policies, the c-term's missing gradient in the critic, the w schedule (pure and
in the state), the SAC+ML actor loss by hand, the actor gradient clip, sac-direct's switch and
update, top-N episode selection, FLOP pass lists against the traced programs (both phases), and
real Trainer runs on `point` with both policies and both lines."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxo2o.config import ConfigError, RunConfig, run_hparams
from jaxo2o.core.loop import Trainer
from jaxo2o.core.optim import NetState, clip_grad_norm
from jaxo2o.core.transitions import Transitions
from jaxo2o.data.dataset import top_return_episodes
from jaxo2o.envs import make_env
from jaxo2o.methods import get_method
from jaxo2o.methods.aca import ACA, ACAOfflineState, ACAOnlineState, ml_actor_loss
from jaxo2o.methods.aca_policies import clip_floor, soft_clip
from jaxo2o.methods.aca_settings import ACA_PRESETS, ACAConfig, aca_preset, interpolation_weight

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.perf_flops import jaxpr_dot_flops, total_flops  # noqa: E402

OBS, ACT = 3, 2
HIDDEN = (8,)
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
POLICIES = ("squashed", "maze")


def f32(x):
    return jnp.asarray(x, jnp.float32)


def leaves_equal(a, b) -> bool:
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(la) == len(lb) and all(
        np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb, strict=True)
    )


def moved(a, b) -> float:
    """Largest absolute difference between two pytrees of the same structure."""
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(la, lb, strict=True))


def np64(x):
    return np.asarray(x, np.float64)


def normal_logp(x, mean, log_std):
    """Per-dimension log N(x; mean, exp(log_std)^2) in float64."""
    x, mean, log_std = np64(x), np64(mean), np64(log_std)
    return -0.5 * ((x - mean) / np.exp(log_std)) ** 2 - log_std - HALF_LOG_2PI


def squashed_logp_raw(u, mean, log_std):
    """log-density of tanh(u) under the squashed Gaussian, summed over the last axis."""
    u = np64(u)
    return np.sum(normal_logp(u, mean, log_std) - np.log(1.0 - np.tanh(u) ** 2), axis=-1)


def squashed_logp_action(a, mean, log_std):
    """d3rlpy's log_prob of a given action: atanh of the action clamped to +-0.999999 (float32)."""
    edge = np.float64(np.float32(1.0 - 1e-6))
    return squashed_logp_raw(np.arctanh(np.clip(np64(a), -edge, edge)), mean, log_std)


def random_batch(key, n: int = 16) -> Transitions:
    ks = jax.random.split(key, 5)
    return Transitions(
        obs=jax.random.normal(ks[0], (n, OBS)),
        action=jax.random.uniform(ks[1], (n, ACT), minval=-0.95, maxval=0.95),
        reward=jax.random.normal(ks[2], (n,)),
        next_obs=jax.random.normal(ks[3], (n, OBS)),
        terminated=jax.random.bernoulli(ks[4], 0.2, (n,)),
        truncated=jnp.zeros((n,), bool),
    )


def small(policy: str = "squashed", alignment: bool = True, hidden=HIDDEN) -> ACA:
    return ACA(ACAConfig(hidden=hidden, policy=policy, alignment=alignment))


def trained_offline(method: ACA, hp, steps: int = 3) -> ACAOfflineState:
    """init and a few offline updates, so every network, log alpha and Adam state has moved."""
    state = method.init(jax.random.PRNGKey(0), OBS, ACT, hp)
    batch = random_batch(jax.random.PRNGKey(1))

    def body(s, k):
        return method.update(s, batch, k, hp, online=False)[0], None

    run = jax.jit(lambda s: jax.lax.scan(body, s, jax.random.split(jax.random.PRNGKey(2), steps)))
    return run(state)[0]


# ------------------------------------------------------------------ the switch
@pytest.mark.parametrize("policy", POLICIES)
def test_to_online_builds_r_from_z_and_q_is_z_plus_w0_c_by_hand(policy):
    method = small(policy)
    hp = method.default_hparams(clip_beta=2.0, w0=0.8, w_min=0.1)
    off = trained_offline(method, hp)
    assert float(off.log_alpha.params) != 0.0
    on = method.to_online(off, jax.random.PRNGKey(3), hp)
    assert isinstance(on, ACAOnlineState)

    # R's first layer: observation rows from Z, action rows zero; every other layer Z's
    r_mlp = on.critic.params["VmapCritic_0"]["MLP_0"]
    z_mlp = off.baseline.params["VmapValueNet_0"]["MLP_0"]
    np.testing.assert_array_equal(r_mlp["Dense_0"]["kernel"][:, :OBS], z_mlp["Dense_0"]["kernel"])
    np.testing.assert_array_equal(r_mlp["Dense_0"]["kernel"][:, OBS:], 0.0)
    assert leaves_equal(r_mlp["Dense_1"], z_mlp["Dense_1"])
    assert leaves_equal(on.target_critic, on.critic.params)  # hard copy
    assert not leaves_equal(on.critic.params, off.critic.params)  # the offline Q is discarded

    obs = jax.random.normal(jax.random.PRNGKey(4), (6, OBS))
    z = np.asarray(method.z(off.baseline.params, obs))
    for seed in range(4):
        a = jax.random.uniform(jax.random.PRNGKey(10 + seed), (6, ACT), minval=-1.0, maxval=1.0)
        np.testing.assert_allclose(method.q(on.critic.params, obs, a), z, rtol=1e-6, atol=1e-6)

    # log alpha reset, pi0 frozen copy, Adam states carried over, w = w0
    assert float(on.log_alpha.params) == 0.0
    assert leaves_equal(on.reference_actor, off.actor.params)
    assert leaves_equal(on.actor, off.actor)
    assert leaves_equal(on.critic.opt_state, off.critic.opt_state)
    assert leaves_equal(on.log_alpha.opt_state, off.log_alpha.opt_state)
    assert int(off.actor.opt_state[0].count) == 3
    assert float(on.w) == pytest.approx(0.8) and int(on.updates) == 0

    # Q(s, a) = Z(s) + w0 c(log pi0(a|s)), c and m computed here from pi0's (loc, log_std)
    loc, log_std = (np64(x) for x in method.policy(off.actor.params, obs))
    a = np64(jax.random.uniform(jax.random.PRNGKey(20), (6, ACT), minval=-0.99, maxval=0.99))
    beta = 2.0
    if policy == "squashed":
        logp0 = squashed_logp_action(a, loc, log_std)
        shift = beta * np.exp(log_std)
        m = np.minimum(
            squashed_logp_raw(loc - shift, loc, log_std),
            squashed_logp_raw(loc + shift, loc, log_std),
        )
    else:
        logp0 = np.sum(normal_logp(a, loc, log_std), axis=-1)
        m = np.sum(-0.5 * beta**2 - log_std - HALF_LOG_2PI, axis=-1)
    c = np.log1p(np.exp(logp0 - m)) + m
    assert np.any(np.abs(c - logp0) > 0.05), "the clip should matter somewhere in this test"
    expected = z + 0.8 * c[None]
    np.testing.assert_allclose(
        method.aligned_q(on, obs, f32(a), hp), expected, rtol=2e-5, atol=2e-5
    )


def test_to_online_rejects_an_online_state():
    method = small()
    hp = method.default_hparams()
    on = method.to_online(method.init(jax.random.PRNGKey(0), OBS, ACT, hp), None, hp)
    with pytest.raises(TypeError, match="aca.to_online"):
        method.to_online(on, None, hp)
    with pytest.raises(TypeError, match="online=True"):
        method.update(method.init(jax.random.PRNGKey(0), OBS, ACT, hp), None, None, hp, True)


# ------------------------------------------------------------------ the soft clip
def test_soft_clip_value_and_gradient():
    m = f32(-2.0)
    x = f32([-32.0, -2.0, 0.5, 28.0])
    c = np.asarray(soft_clip(x, m))
    expected = [
        -2.0 + math.log1p(math.exp(-30.0)),  # far below the floor: m
        -2.0 + math.log(2.0),  # at the floor: m + log 2
        -2.0 + math.log1p(math.exp(2.5)),
        28.0 + math.log1p(math.exp(-30.0)),  # far above: x (no upper clip)
    ]
    np.testing.assert_allclose(c, expected, rtol=1e-6)
    g = np.asarray(jax.grad(lambda x: jnp.sum(soft_clip(x, m)))(x))
    sig = lambda t: 1.0 / (1.0 + math.exp(-t))
    np.testing.assert_allclose(g, [sig(-30.0), 0.5, sig(2.5), sig(30.0)], rtol=1e-6)


def test_clip_floor_by_hand_for_both_policies():
    beta = f32(2.0)
    # squashed: pre-tanh mu, sigma; every dimension shifted together; tanh correction included
    loc = np.array([[0.3, -0.5], [1.2, 0.1]])
    log_std = np.array([[-1.0, 0.2], [-0.3, -2.0]])
    m = np.asarray(clip_floor("squashed", f32(loc), f32(log_std), beta))
    shift = 2.0 * np.exp(log_std)
    lo = squashed_logp_raw(loc - shift, loc, log_std)
    hi = squashed_logp_raw(loc + shift, loc, log_std)
    np.testing.assert_allclose(m, np.minimum(lo, hi), rtol=1e-5)
    assert np.all(lo != hi)  # the tanh correction makes the two sides differ
    assert m[0] != pytest.approx(m[1], abs=1e-3)  # state-dependent
    # maze: -d beta^2 / 2 - sum log sigma - d/2 log 2 pi, the same at every state
    log_std_maze = np.array([[-2.5, -1.0], [-2.5, -1.0]])
    m = np.asarray(clip_floor("maze", f32(np.tanh(loc)), f32(log_std_maze), beta))
    expected = -2 * 2.0 - (-3.5) - 2 * HALF_LOG_2PI
    np.testing.assert_allclose(m, [expected, expected], rtol=1e-6)
    # no gradient into the floor
    g = jax.grad(lambda x: jnp.sum(clip_floor("squashed", x, f32(log_std), beta)))(f32(loc))
    np.testing.assert_array_equal(g, 0.0)


@pytest.mark.parametrize("policy", POLICIES)
def test_c_term_carries_no_gradient_into_the_critic_but_into_the_actor(policy):
    method = small(policy)
    hp = method.default_hparams(clip_beta=2.0)
    on = method.to_online(trained_offline(method, hp), None, hp)
    batch = random_batch(jax.random.PRNGKey(5))
    key = jax.random.PRNGKey(6)

    def metric(name, state):
        return method.update(state, batch, key, hp, online=True)[1][name]

    def with_ref(ref):
        return on._replace(reference_actor=ref)

    def with_actor(p, w=on.w):
        return on._replace(actor=NetState(p, on.actor.opt_state), w=f32(w))

    zero = lambda tree: all(not np.any(np.asarray(x)) for x in jax.tree.leaves(tree))

    @jax.jit
    def grads(ref, actor, w):
        by_ref = lambda name: jax.grad(lambda r: metric(name, with_ref(r)))(ref)
        by_actor = lambda name: jax.grad(lambda p: metric(name, with_actor(p, w)))(actor)
        return (
            by_ref("critic_loss"),
            by_actor("critic_loss"),
            by_ref("actor_loss"),
            by_actor("actor_loss"),
        )

    c_ref, c_actor, a_ref, g1 = grads(on.reference_actor, on.actor.params, 1.0)
    # the critic loss: no gradient into pi0 (c-terms detached) nor into pi (target detached)
    assert zero(c_ref) and zero(c_actor)
    # the actor loss: none into pi0's parameters, but c(log pi0(a~|s)) does move pi's gradient
    assert zero(a_ref)
    g0 = grads(on.reference_actor, on.actor.params, 0.0)[3]
    assert moved(g1, g0) > 1e-4


# ------------------------------------------------------------------ the w schedule
@pytest.mark.parametrize(
    "sched, points",
    [
        ((1.0, 10.0, 0.0), [(0, 1.0), (1000, 0.9), (5000, 0.5), (10_000, 0.0), (30_000, 0.0)]),
        (
            (1.0, 40.0, 0.5),
            [(1000, 0.975), (5000, 0.875), (10_000, 0.75), (20_000, 0.5), (50_000, 0.5)],
        ),
        ((1.0, 200.0, 0.5), [(1000, 0.995), (10_000, 0.95), (50_000, 0.75), (99_743, 0.501285)]),
        ((1.0, 100.0, 1.0), [(1, 1.0), (100_000, 1.0)]),
    ],
)
def test_interpolation_weight_at_update_counts(sched, points):
    w0, k, w_min = (f32(v) for v in sched)
    for n, w in points:
        assert float(interpolation_weight(n, w0, k, w_min)) == pytest.approx(w, abs=2e-6)


def test_the_state_w_follows_the_schedule_over_real_updates():
    method = small()
    batch = random_batch(jax.random.PRNGKey(5))
    # w0 = 1, K = 0.002: w falls by 0.5 per update, to the floor 0.2
    hp = method.default_hparams(w0=1.0, w_k=0.002, w_min=0.2)
    state = method.to_online(trained_offline(method, hp), None, hp)
    step = jax.jit(lambda s, k: method.update(s, batch, k, hp, online=True))
    used, after = [], []
    for i in range(4):
        state, m = step(state, jax.random.PRNGKey(i))
        used.append(float(m["w"]))
        after.append(float(state.w))
    assert used == pytest.approx([1.0, 0.5, 0.2, 0.2])  # each update uses w before its decrement
    assert after == pytest.approx([0.5, 0.2, 0.2, 0.2])
    assert int(state.updates) == 4
    # the medium schedule, three updates
    hp = method.default_hparams()
    state = method.to_online(trained_offline(method, hp), None, hp)
    step = jax.jit(lambda s, k: method.update(s, batch, k, hp, online=True))
    for i in range(3):
        state, _ = step(state, jax.random.PRNGKey(i))
    assert float(state.w) == float(interpolation_weight(3, hp.w0, hp.w_k, hp.w_min))
    assert float(state.w) == pytest.approx(1.0 - 3 / 40_000, abs=1e-7)


@pytest.mark.parametrize(
    "sched, updates, points",
    [
        # quick IDP: medium's K = 40 over 15,000 updates -> K' = 40 x 0.15 = 6, w0 / 6000 per update
        ((1.0, 40.0, 0.5), 15_000, [(1500, 0.75), (3000, 0.5), (6000, 0.5), (15_000, 0.5)]),
        # quick mazes: K = 200 over 12,000 updates -> K' = 24; ends at 0.5 as the official 100k
        ((1.0, 200.0, 0.5), 12_000, [(1200, 0.95), (6000, 0.75), (12_000, 0.5)]),
        # a phase longer than the official one stretches the schedule: K' = 10 x 2 = 20
        ((1.0, 10.0, 0.0), 200_000, [(10_000, 0.5), (20_000, 0.0)]),
    ],
)
def test_the_scaled_schedule_reaches_the_official_values_at_the_same_share(sched, updates, points):
    w0, k, w_min = (f32(v) for v in sched)
    config = ACAConfig(w_schedule="scaled", online_updates=updates)
    for n, w in points:
        got = interpolation_weight(n, w0, config.schedule_k(k), w_min)
        assert float(got) == pytest.approx(w, abs=2e-6)
    # the official (absolute) K at the end of the same short phase: far above w_min
    absolute = ACAConfig(online_updates=updates).schedule_k(k)
    assert float(absolute) == float(k)
    if updates == 15_000:
        assert float(interpolation_weight(updates, w0, absolute, w_min)) == pytest.approx(0.625)


def test_the_scaled_schedule_drives_the_state_w_over_real_updates():
    """Half the official updates halve K: K = 0.004 scaled to 50,000 updates falls by 0.5 per
    update, as K = 0.002 does absolutely."""
    method = ACA(ACAConfig(hidden=HIDDEN, w_schedule="scaled", online_updates=50_000))
    batch = random_batch(jax.random.PRNGKey(5))
    hp = method.default_hparams(w0=1.0, w_k=0.004, w_min=0.2)
    state = method.to_online(trained_offline(method, hp), None, hp)
    step = jax.jit(lambda s, k: method.update(s, batch, k, hp, online=True))
    after = []
    for i in range(3):
        state, _ = step(state, jax.random.PRNGKey(i))
        after.append(float(state.w))
    assert after == pytest.approx([0.5, 0.2, 0.2])


def test_the_scaled_schedule_needs_the_runs_updates():
    with pytest.raises(ConfigError, match="aca.w_schedule: 'scaled' needs the run's online"):
        ACAConfig(w_schedule="scaled")
    with pytest.raises(ConfigError, match="aca.w_schedule: unknown 'linear'"):
        ACAConfig(w_schedule="linear")


# ------------------------------------------------------------------ SAC+ML actor loss
def test_ml_actor_loss_formula_and_detached_lambda():
    logp, q, logp_d = f32([-1.0, -2.0]), f32([2.0, -4.0]), f32([-0.5, -1.5])
    # lambda = 30 / mean(|2|, |-4|) = 10; mean(0.5 logp - q) = mean(-2.5, 3) = 0.25; NLL 1.0
    loss, lam = ml_actor_loss(logp, q, logp_d, f32(0.5), f32(30.0))
    assert float(lam) == pytest.approx(10.0)
    assert float(loss) == pytest.approx(10.0 * 0.25 + 1.0, rel=1e-6)
    # lambda is a constant: dL/dq_i = -lambda / 2
    g = jax.grad(lambda q: ml_actor_loss(logp, q, logp_d, f32(0.5), f32(30.0))[0])(q)
    np.testing.assert_allclose(g, [-5.0, -5.0], rtol=1e-6)
    g = jax.grad(lambda d: ml_actor_loss(logp, q, d, f32(0.5), f32(30.0))[0])(logp_d)
    np.testing.assert_allclose(g, [-0.5, -0.5], rtol=1e-6)


def hand_critic(template, slopes=(2.0, 3.0), bias=-3.0):
    """Member k: Q_k(s, a) = slopes[k] * relu(a_0 + 0.5) + bias; min over k uses slopes[0]."""
    p = jax.tree.map(jnp.zeros_like, template)
    mlp = p["VmapCritic_0"]["MLP_0"]
    mlp["Dense_0"]["kernel"] = mlp["Dense_0"]["kernel"].at[:, OBS + 0, 0].set(1.0)
    mlp["Dense_0"]["bias"] = mlp["Dense_0"]["bias"].at[:, 0].set(0.5)
    mlp["Dense_1"]["kernel"] = mlp["Dense_1"]["kernel"].at[:, 0, 0].set(f32(slopes))
    mlp["Dense_1"]["bias"] = mlp["Dense_1"]["bias"].at[:, 0].set(bias)
    return p


def test_sac_ml_actor_loss_on_hand_made_networks():
    method = small(hidden=(4,))
    hp = method.default_hparams()
    state = method.init(jax.random.PRNGKey(0), OBS, ACT, hp)
    mu, ls = np.array([0.2, -0.4]), np.array([-0.5, -1.0])
    actor = jax.tree.map(jnp.zeros_like, state.actor.params)
    actor["Dense_0"]["bias"] = f32(np.concatenate([mu, ls]))  # state-independent policy
    critic = hand_critic(state.critic.params)
    a_data = np.array([[0.1, -0.2], [0.9999999, 0.5], [-0.3, -1.0]])  # rows 2 and 3 clamp
    batch = Transitions(
        obs=jax.random.normal(jax.random.PRNGKey(1), (3, OBS)),
        action=f32(a_data),
        reward=jnp.zeros(3),
        next_obs=jnp.zeros((3, OBS)),
        terminated=jnp.zeros(3, bool),
        truncated=jnp.zeros(3, bool),
    )
    key, alpha = jax.random.PRNGKey(7), 0.7
    loss, (logp, lam, logp_d) = method.sac_ml_actor_loss(actor, critic, batch, key, f32(alpha), hp)

    eps = np64(jax.random.normal(key, (3, ACT)))  # the sampler's noise for this key
    u = mu + np.exp(ls) * eps
    logp_hand = squashed_logp_raw(u, mu, ls)
    q_hand = 2.0 * np.maximum(np.tanh(u[:, 0]) + 0.5, 0.0) - 3.0
    lam_hand = 30.0 / np.mean(np.abs(q_hand))
    logp_d_hand = squashed_logp_action(a_data, mu, ls)
    expected = lam_hand * np.mean(alpha * logp_hand - q_hand) - np.mean(logp_d_hand)
    np.testing.assert_allclose(logp, logp_hand, rtol=1e-5)
    np.testing.assert_allclose(logp_d, logp_d_hand, rtol=1e-3)
    assert float(lam) == pytest.approx(lam_hand, rel=1e-5)
    assert float(loss) == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("policy", POLICIES)
def test_offline_update_runs_temperature_first_and_trains_every_network(policy):
    method = small(policy)
    hp = method.default_hparams()
    state = method.init(jax.random.PRNGKey(0), OBS, ACT, hp)
    batch = random_batch(jax.random.PRNGKey(1))
    new, m = method.update(state, batch, jax.random.PRNGKey(2), hp, online=False)
    # the temperature stepped first: the alpha every later step used is the new one
    assert float(m["alpha"]) == pytest.approx(math.exp(float(new.log_alpha.params)), rel=1e-6)
    assert abs(float(new.log_alpha.params)) == pytest.approx(float(hp.alpha_lr), rel=1e-3)
    for name in ("actor", "critic", "baseline"):
        assert not leaves_equal(getattr(new, name).params, getattr(state, name).params)
    for v in m.values():
        assert np.isfinite(float(v))


# ------------------------------------------------------------------ the online actor
def test_clip_grad_norm_is_torchs():
    grads = {"a": f32([3.0, 0.0]), "b": f32([[4.0]])}  # global norm 5
    clipped, norm = clip_grad_norm(grads, f32(0.25))
    assert float(norm) == pytest.approx(5.0)
    scale = 0.25 / (5.0 + 1e-6)
    np.testing.assert_allclose(clipped["a"], [3.0 * scale, 0.0], rtol=1e-6)
    np.testing.assert_allclose(clipped["b"], [[4.0 * scale]], rtol=1e-6)
    same, _ = clip_grad_norm(grads, f32(10.0))
    assert leaves_equal(same, grads)


@pytest.mark.parametrize("alignment", [True, False])
def test_actor_gradient_clip_bounds_what_reaches_adam(alignment):
    method = small(alignment=alignment)
    batch = random_batch(jax.random.PRNGKey(5))
    update = jax.jit(method.update, static_argnums=4)
    for clip in (1e-3, 1e6):
        hp = method.default_hparams(actor_grad_clip=clip)
        on = method.to_online(trained_offline(method, hp), None, hp)
        fresh = optax.adam(hp.actor_lr).init(on.actor.params)  # zero moments: mu = 0.1 * g
        on = on._replace(actor=NetState(on.actor.params, fresh))
        new, m = update(on, batch, jax.random.PRNGKey(6), hp, True)
        mu_norm = float(optax.global_norm(new.actor.opt_state[0].mu))
        g = float(m["actor_grad_norm"])
        assert g > 1e-2
        assert mu_norm == pytest.approx(0.1 * min(g, clip * g / (g + 1e-6)), rel=1e-4)
    assert float(new.log_alpha.params) != 0.0  # the temperature trains online


# ------------------------------------------------------------------ sac-direct
def test_sac_direct_keeps_the_offline_q_and_drops_only_the_c_term():
    direct, aca = small(alignment=False), small(alignment=True)
    hp = direct.default_hparams()
    off = trained_offline(direct, hp)
    on = direct.to_online(off, None, hp)
    assert leaves_equal(on.critic, off.critic)  # Q and its Adam state
    assert leaves_equal(on.target_critic, off.target_critic)
    assert not leaves_equal(on.target_critic, on.critic.params)
    assert float(on.log_alpha.params) == 0.0
    assert leaves_equal(on.log_alpha.opt_state, off.log_alpha.opt_state)
    assert leaves_equal(on.actor, off.actor)
    obs = jax.random.normal(jax.random.PRNGKey(4), (5, OBS))
    a = jax.random.uniform(jax.random.PRNGKey(8), (5, ACT), minval=-1.0, maxval=1.0)
    np.testing.assert_array_equal(
        direct.aligned_q(on, obs, a, hp), aca.q(off.critic.params, obs, a)
    )

    # online: ACA's update with w = 0 on the same state is sac-direct's, and w = 1 is not
    batch, key = random_batch(jax.random.PRNGKey(5)), jax.random.PRNGKey(6)
    new_d, m_d = direct.update(on, batch, key, hp, online=True)
    assert "w" not in m_d and int(new_d.updates) == 1
    new_0, _ = aca.update(on._replace(w=f32(0.0)), batch, key, hp, online=True)
    new_1, _ = aca.update(on._replace(w=f32(1.0)), batch, key, hp, online=True)
    for field in ("actor", "critic", "target_critic", "log_alpha"):
        for x, y in zip(*(jax.tree.leaves(getattr(s, field)) for s in (new_d, new_0)), strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
    assert not leaves_equal(new_1.critic.params, new_d.critic.params)
    # acting: no "w" reported
    assert direct.act(new_d, obs, key, hp, False)[1] == {}


# ------------------------------------------------------------------ acting
@pytest.mark.parametrize("policy", POLICIES)
def test_act_on_both_states(policy):
    method = small(policy)
    hp = method.default_hparams()
    off = trained_offline(method, hp)
    on = method.to_online(off, None, hp)
    obs = jax.random.normal(jax.random.PRNGKey(4), (7, OBS))
    loc, _ = method.policy(off.actor.params, obs)
    greedy = jnp.tanh(loc) if policy == "squashed" else loc  # the maze loc is tanh mu already
    for state in (off, on):
        a, info = method.act(state, obs, jax.random.PRNGKey(1), hp, deterministic=True)
        np.testing.assert_array_equal(a, greedy)
        a, info = method.act(state, obs, jax.random.PRNGKey(1), hp, deterministic=False)
        assert a.shape == (7, ACT) and np.all(np.abs(np.asarray(a)) <= 1.0)
        assert not np.allclose(a, greedy)
    assert method.act(off, obs, None, hp, True)[1] == {}
    info = method.act(on, obs, None, hp, True)[1]
    np.testing.assert_array_equal(info["w"], np.full(7, np.float32(hp.w0)))


def test_maze_policy_log_std_is_a_sigmoid_of_a_zero_parameter():
    method = small("maze")
    hp = method.default_hparams()
    state = method.init(jax.random.PRNGKey(0), OBS, ACT, hp)
    obs = jax.random.normal(jax.random.PRNGKey(4), (4, OBS))
    _, log_std = method.policy(state.actor.params, obs)
    np.testing.assert_allclose(log_std, -2.5)
    params = dict(state.actor.params, log_std_param=f32([2.0, -1.0]))
    _, log_std = method.policy(params, obs)
    sig = lambda t: 1.0 / (1.0 + math.exp(-t))
    np.testing.assert_allclose(log_std[0], [-5 + 5 * sig(2.0), -5 + 5 * sig(-1.0)], rtol=1e-6)


# ------------------------------------------------------------------ config, presets, validation
def test_registry_presets_and_validation():
    assert get_method("aca") is ACA
    config, hp, top_n = aca_preset("maze", hidden=(16,))
    assert (config.policy, config.reward_normalization, config.hidden) == (
        "maze",
        "minus_one",
        (16,),
    )
    assert ACA(config).reward_normalization == "minus_one"
    assert (float(hp.clip_beta), float(hp.w_k), float(hp.w_min), top_n) == (3.0, 200.0, 0.5, 0)
    assert float(hp.target_entropy_per_dim) == -0.5
    config, hp, top_n = aca_preset("expert", alignment=False)
    assert (config.alignment, config.policy, top_n) == (False, "squashed", 50)
    assert (float(hp.clip_beta), float(hp.w_min)) == (15.0, 1.0)
    tops = {k: aca_preset(k)[2] for k in ACA_PRESETS}
    assert tops == {
        "random": 0,
        "medium": 0,
        "medium-replay": 50,
        "medium-expert": 50,
        "expert": 50,
        "maze": 0,
    }
    assert float(aca_preset("random")[1].w_min) == 0.0
    with pytest.raises(ConfigError, match="aca.kind"):
        aca_preset("umaze")
    with pytest.raises(ConfigError, match="aca.policy"):
        ACAConfig(policy="gaussian")
    with pytest.raises(ConfigError, match="aca.hidden"):
        ACAConfig(hidden=())
    with pytest.raises(ConfigError, match="aca.reward_normalization"):
        ACAConfig(reward_normalization="scale")
    m = ACA()
    for bad, field in (
        ({"w0": 0.0}, "aca.w0"),
        ({"w_k": -1.0}, "aca.w_k"),
        ({"w_min": 2.0}, "aca.w_min"),
        ({"w_min": -0.1}, "aca.w_min"),
        ({"actor_grad_clip": 0.0}, "aca.actor_grad_clip"),
        ({"discount": 1.5}, "aca.discount"),
        ({"target_entropy_per_dim": float("nan")}, "aca.target_entropy_per_dim"),
        ({"alpha_lr": 0.0}, "aca.alpha_lr"),
    ):
        with pytest.raises(ConfigError, match=field):
            m.default_hparams(**bad)
    hp = m.default_hparams()
    assert (float(hp.ml_alpha), float(hp.actor_grad_clip)) == (30.0, 0.25)
    assert float(hp.baseline_lr) == pytest.approx(3e-4)


# ------------------------------------------------------------------ top-N episodes
def test_top_return_episodes_takes_complete_episodes_by_raw_return():
    # episodes (rows): e0 [0,3) return 3 terminated; e1 [3,5) return 5 truncated; e2 [5,6)
    # return -1 terminated; e3 [6,10) return 3 truncated (ties e0); tail [10,12) unfinished, 200
    rewards = np.array([1, 1, 1, 5, 0, -1, 1, 1, 1, 0, 100, 100], np.float32)
    term = np.zeros(12, bool)
    trunc = np.zeros(12, bool)
    term[[2, 5]] = True
    trunc[[4, 9]] = True
    n = rewards.size
    t = Transitions(
        obs=np.arange(n, dtype=np.float32)[:, None].repeat(OBS, 1),
        action=np.zeros((n, ACT), np.float32),
        reward=rewards,
        next_obs=np.zeros((n, OBS), np.float32),
        terminated=term,
        truncated=trunc,
    )
    rows = lambda out: [int(x) for x in out.obs[:, 0]]
    assert rows(top_return_episodes(t, 1)) == [3, 4]
    assert rows(top_return_episodes(t, 2)) == [0, 1, 2, 3, 4]  # the tie goes to e0, dataset order
    assert rows(top_return_episodes(t, 3)) == [0, 1, 2, 3, 4, 6, 7, 8, 9]
    out = top_return_episodes(t, 10)  # every complete episode, never the tail
    assert rows(out) == list(range(10))
    np.testing.assert_array_equal(out.terminated, term[:10])
    np.testing.assert_array_equal(out.truncated, trunc[:10])
    empty = top_return_episodes(t, 0)
    assert empty.obs.shape == (0, OBS) and empty.action.shape == (0, ACT) and empty.size == 0
    no_ends = t._replace(terminated=np.zeros(n, bool), truncated=np.zeros(n, bool))
    assert top_return_episodes(no_ends, 5).size == 0
    with pytest.raises(ValueError, match="n must be"):
        top_return_episodes(t, -1)


# ------------------------------------------------------------------ FLOPs of both phases
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("alignment", [True, False])
def test_flop_passes_equal_the_traced_products_in_both_phases(policy, alignment):
    method = small(policy, alignment, hidden=(8, 8))
    hp = method.default_hparams()
    key = jax.random.PRNGKey(0)
    off = method.init(key, OBS, ACT, hp)
    on = method.to_online(off, key, hp)
    batch = random_batch(key, 5)
    for online, state in ((False, off), (True, on)):
        traced = jaxpr_dot_flops(
            lambda s, b, k, h, o=online: method.update(s, b, k, h, online=o), state, batch, key, hp
        )
        assert total_flops(method.flop_passes(OBS, ACT, 5, online)) == traced


# ------------------------------------------------------------------ through the Trainer
ENV = make_env("point", episode_length=20)
ENV_OBS, ENV_ACT = ENV.observation_size, ENV.action_size


def point_dataset(n: int = 256) -> Transitions:
    """Random-action transitions on `point`."""
    k_s, k_a = jax.random.split(jax.random.PRNGKey(11))
    states = jax.vmap(ENV.reset)(jax.random.split(k_s, n))
    action = jax.random.uniform(k_a, (n, ENV_ACT), minval=-1.0, maxval=1.0)
    _, res = jax.vmap(ENV.step)(states, action)
    return Transitions(states.obs, action, res.reward, res.next_obs, res.terminated, res.truncated)


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("alignment", [True, False])
def test_trainer_run_on_point(policy, alignment):
    """Offline SAC+ML, the switch, online updates once the buffer holds more than one batch (the
    ACA run setting for an unseeded buffer), with finite metrics and the schedule in the state."""
    batch = 16
    run = RunConfig(
        offline_steps=20,
        offline_eval_every=20,
        online_steps=60,
        online_eval_every=30,
        warmup_steps=batch,  # iteration i holds i + 1 rows: updates once > batch
        batch_size=batch,
        protocol="direct",
        offline_fraction=0.0,
        eval_episodes=1,
        progress=False,
    )
    method = ACA(ACAConfig(hidden=(16, 16), policy=policy, alignment=alignment))
    hp = method.default_hparams(w_k=0.01, w_min=0.2)  # w falls by 0.1 per update
    trainer, rhp = Trainer(method, ENV, run), run_hparams(run)

    def train(key):
        k_off, k_on = jax.random.split(key)
        s_off, m_off = trainer.offline(k_off, hp, rhp, point_dataset())
        s_on, _, m_on = trainer.online(s_off, k_on, hp, rhp, point_dataset())
        return s_off, m_off, s_on, m_on

    s_off, m_off, s_on, m_on = jax.jit(train)(jax.random.PRNGKey(0))
    assert isinstance(s_off, ACAOfflineState) and isinstance(s_on, ACAOnlineState)
    assert leaves_equal(s_on.reference_actor, s_off.actor.params)  # pi0 frozen, bit for bit
    n_updates = run.online_steps - run.warmup_steps
    assert int(s_on.updates) == n_updates
    expected_w = float(interpolation_weight(n_updates, hp.w0, hp.w_k, hp.w_min)) if alignment else 0
    assert float(s_on.w) == pytest.approx(expected_w)
    for name in ("critic_loss", "actor_loss", "alpha", "baseline_loss", "eval_returns"):
        assert np.all(np.isfinite(np.asarray(m_off[name]))), name
    for name in ("critic_loss", "actor_loss", "alpha", "actor_grad_norm", "eval_returns"):
        assert np.all(np.isfinite(np.asarray(m_on[name]))), name
    assert ("act/w" in m_on) == alignment


def test_a_plan_gives_aca_the_runs_online_updates():
    from jaxo2o.experiment.plan import build_method

    method = build_method("aca", {"w_schedule": "scaled"}, 1000, 15_000)
    assert (method.config.w_schedule, method.config.online_updates) == ("scaled", 15_000)
    assert float(method.config.schedule_k(f32(40.0))) == pytest.approx(6.0)
