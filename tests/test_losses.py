"""The shared losses (`jaxo2o.core.losses`) on tiny hand-made arrays: each value computed here in
numpy, with every term and sign visible, and the gradients that must be absent checked absent."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxo2o.core.losses import (
    AWR_WEIGHT_CLIP,
    awr_actor_loss,
    awr_weights,
    ensemble_mse,
    expectile_loss,
    td_target,
    temperature_loss,
    weight_ess,
)


def f32(x):
    return jnp.asarray(x, jnp.float32)


def test_expectile_loss_weights_positive_and_negative_errors_asymmetrically():
    diff = np.array([2.0, -1.0, 0.5, -3.0, 0.0])
    # tau on u > 0, 1 - tau on u <= 0: mean(0.8 * 4, 0.2 * 1, 0.8 * 0.25, 0.2 * 9, 0)
    expected = (0.8 * 4.0 + 0.2 * 1.0 + 0.8 * 0.25 + 0.2 * 9.0 + 0.0) / 5
    assert float(expectile_loss(f32(diff), f32(0.8))) == pytest.approx(expected, rel=1e-6)
    # tau = 0.5 is half the mean squared error
    assert float(expectile_loss(f32(diff), f32(0.5))) == pytest.approx(
        0.5 * np.mean(diff**2), rel=1e-6
    )


def test_td_target_masks_the_bootstrap_and_carries_no_gradient():
    r, mask, v = np.array([1.0, -0.5, 2.0]), np.array([1.0, 0.0, 1.0]), np.array([3.0, 4.0, -1.0])
    y = td_target(f32(r), f32(mask), f32(v), f32(0.9))
    np.testing.assert_allclose(y, [1.0 + 0.9 * 3.0, -0.5, 2.0 - 0.9], rtol=1e-6)
    g = jax.grad(lambda v: jnp.sum(td_target(f32(r), f32(mask), v, f32(0.9))))(f32(v))
    np.testing.assert_array_equal(g, 0.0)


def test_ensemble_mse_sums_over_critics_and_averages_over_the_batch():
    q = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 5.0]])
    y = np.array([1.5, 0.0, 3.0])
    # critic 0: mean(0.25, 4, 0) = 4.25 / 3; critic 1: mean(2.25, 1, 4) = 7.25 / 3
    assert float(ensemble_mse(f32(q), f32(y))) == pytest.approx((4.25 + 7.25) / 3, rel=1e-6)


def test_awr_weights_are_exp_beta_a_clipped_at_100_without_gradient():
    adv = np.array([0.1, -0.4, 2.0, 0.0])
    w = np.asarray(awr_weights(f32(adv), f32(3.0)))
    np.testing.assert_allclose(w, [math.exp(0.3), math.exp(-1.2), 100.0, 1.0], rtol=1e-6)
    assert AWR_WEIGHT_CLIP == 100.0
    g = jax.grad(lambda a: jnp.sum(awr_weights(a, f32(3.0))))(f32(adv))
    np.testing.assert_array_equal(g, 0.0)


def test_weight_ess_is_one_for_equal_weights_and_one_over_n_for_one_weight():
    assert float(weight_ess(f32([2.0, 2.0, 2.0, 2.0]))) == pytest.approx(1.0)
    assert float(weight_ess(f32([0.0, 5.0, 0.0, 0.0]))) == pytest.approx(0.25)
    assert float(weight_ess(f32([0.0, 0.5, 0.0, 0.0]))) == pytest.approx(0.25)  # sum w^2 < 1
    # every weight underflowed (AWAC on IDP, advantages below -100): 0, not NaN
    assert float(weight_ess(f32([0.0, 0.0, 0.0]))) == 0.0
    assert float(weight_ess(jnp.exp(f32([-120.0, -130.0])))) == 0.0
    # (1 + 2 + 3)^2 / (3 (1 + 4 + 9)) = 36 / 42
    assert float(weight_ess(f32([1.0, 2.0, 3.0]))) == pytest.approx(36.0 / 42.0, rel=1e-6)


def test_awr_actor_loss_is_minus_the_weighted_mean_log_likelihood():
    logp, w = np.array([-1.0, -2.5, 0.5]), np.array([2.0, 0.5, 4.0])
    expected = -(2.0 * -1.0 + 0.5 * -2.5 + 4.0 * 0.5) / 3
    assert float(awr_actor_loss(f32(logp), f32(w))) == pytest.approx(expected, rel=1e-6)


def test_temperature_loss_value_and_gradients():
    """alpha (H - H_target), H = -mean log pi: its gradient in log alpha is alpha (H - H_target)
    (so alpha falls when the entropy is above target) and none reaches log pi."""
    logp = np.array([-1.0, -2.0, 0.0])  # H = 1
    log_alpha, target = math.log(0.5), -2.0
    loss = temperature_loss(f32(log_alpha), f32(logp), f32(target))
    assert float(loss) == pytest.approx(0.5 * (1.0 + 2.0), rel=1e-6)
    g = jax.grad(temperature_loss)(f32(log_alpha), f32(logp), f32(target))
    assert float(g) == pytest.approx(0.5 * 3.0, rel=1e-6)
    g_logp = jax.grad(temperature_loss, argnums=1)(f32(log_alpha), f32(logp), f32(target))
    np.testing.assert_array_equal(g_logp, 0.0)
    # entropy below target: the loss and the gradient turn negative
    low = temperature_loss(f32(log_alpha), f32(logp), f32(3.0))
    assert float(low) == pytest.approx(0.5 * (1.0 - 3.0), rel=1e-6)
