"""The pure pieces of the throughput benchmark (`benchmarks/perf*.py`): the FLOP counter against
hand counts and against the traced programs of every method, the statistics, the HLO product
counter, the per-seed memory fit and the worker's environment."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

# `benchmarks` is a folder of the repository, not part of the installed package
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.perf_flops import (  # noqa: E402
    Pass,
    dense_flops,
    jaxpr_dot_flops,
    recomputed_flops,
    total_flops,
    update_passes,
)
from benchmarks.perf_profile import hlo_dot_flops, hlo_rng_ops  # noqa: E402
from benchmarks.perf_run import memory_cap, memory_check, per_seed_slope, worker_env  # noqa: E402
from benchmarks.perf_stats import rates, spread  # noqa: E402
from benchmarks.perf_update import update_flops  # noqa: E402
from jaxo2o.methods import get_method, method_names  # noqa: E402
from jaxo2o.methods.iql import IQL, IQLConfig  # noqa: E402


# ------------------------------------------------------------------ the FLOP counter
def test_dense_layer_flops_by_hand():
    # (5 x 3) @ (3 x 4): 5*4 outputs, each 3 multiplies and 3 adds
    assert dense_flops(5, 3, 4) == 120


def test_pass_flops_forward_and_gradients_by_hand():
    widths = (3, 4, 2)  # layers 3->4 (2*5*3*4 = 120) and 4->2 (2*5*4*2 = 80)
    assert Pass("f", widths, 5).flops == 200
    # weight gradients of both layers (200), input gradient of the second layer only (80)
    assert Pass("f", widths, 5, weight_grad=True).flops == 480
    # through to the input, no weight gradients: forward + input gradients of both layers
    assert Pass("f", widths, 5, input_grad=True).flops == 400
    assert Pass("f", widths, 5, copies=2, weight_grad=True).flops == 960
    assert Pass("f", widths, 5, weight_grad=True).forward_flops == 200


def test_iql_update_flops_by_hand():
    # hidden (4,), obs 3, act 2, batch 5, two critics:
    # critic (5,4,1): forward 200 + 40 = 240; value (3,4,1): 120 + 40 = 160; actor (3,4,2): 200
    passes = update_passes(IQL(IQLConfig(hidden=(4,))), 3, 2, 5)
    expected = (
        2 * 240  # target critics on (s, a), once (shared by the value and actor steps)
        + (160 + 160 + 40)  # V loss: forward, weight gradients, input gradient of layer 2
        + 160  # new V(s) for the advantage
        + (200 + 200 + 80)  # actor loss
        + 160  # new V(s') for the TD target
        + 2 * (240 + 240 + 40)  # critic loss, both critics
    )
    assert expected == 2680
    assert total_flops(passes) == expected
    assert recomputed_flops(passes) == 0


def _small(cls):
    base = cls().config
    return cls(dataclasses.replace(base, hidden=(8,) * len(base.hidden)))


@pytest.mark.parametrize("name", method_names())
def test_counted_flops_equal_the_traced_products(name):
    """The pass list each method writes down matches the dot products JAX traces: every
    registered method has one (none is skipped)."""
    method = _small(get_method(name))
    fl = update_flops(method, 3, 2, 5)
    assert fl["counted_flops"] == fl["traced_dot_flops"]
    assert 0 <= fl["recomputed_flops"] < fl["counted_flops"]


def test_traced_products_multiply_scan_bodies():
    w = jnp.ones((4, 4))

    def f(x):
        return jax.lax.scan(lambda c, _: (c @ w, None), x, None, length=3)[0]

    assert jaxpr_dot_flops(f, jnp.ones((2, 4))) == 3 * dense_flops(2, 4, 4)


def test_hlo_product_counter_on_a_compiled_dot():
    f = jax.jit(lambda a, b: jnp.tanh(a @ b))
    hlo = f.lower(jnp.ones((8, 16)), jnp.ones((16, 4))).compile().as_text()
    assert sum(hlo_dot_flops(hlo).values()) == dense_flops(8, 16, 4)


def test_hlo_random_number_ops_are_told_apart_from_products():
    def f(key, a):
        return a @ jax.random.normal(key, (16, 4))

    hlo = jax.jit(f).lower(jax.random.PRNGKey(0), jnp.ones((8, 16))).compile().as_text()
    rng, dots = hlo_rng_ops(hlo), {k for k, v in hlo_dot_flops(hlo).items() if v}
    assert rng and dots and not rng & dots


# ------------------------------------------------------------------ statistics
def test_spread_quartiles_and_rates():
    s = spread([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (s.median, s.q1, s.q3, s.lo, s.hi, s.n) == (3.0, 2.0, 4.0, 1.0, 5.0, 5)
    assert s.scaled(2.0).median == 6.0
    r = rates(10.0, [1.0, 2.0, 5.0])  # 10, 5, 2 per second
    assert (r.median, r.lo, r.hi) == (5.0, 2.0, 10.0)
    with pytest.raises(ValueError):
        spread([])


# ------------------------------------------------------------------ memory and workers
def _row(seeds: int, total: int, rss: float, per_run: int) -> dict:
    return {
        "seeds": seeds,
        "memory_total": total,
        "rss_exec_increase": {"median": rss},
        "estimate": {"per_run": per_run, "runs": seeds, "dataset": 100, "buffer_per_run": 1},
    }


def test_memory_per_seed_is_the_slope_and_is_judged_against_the_estimate():
    # compiled bytes 1000 + 300 per seed; the estimate says 330 (10% high): within 20%
    rows = [_row(n, 1000 + 300 * n, 50.0 + 310.0 * n, 330) for n in (1, 2, 4, 8)]
    m = memory_check(rows)
    assert m["compiled_per_seed"] == pytest.approx(300.0)
    assert m["compiled_intercept"] == pytest.approx(1000.0)
    assert m["rss_per_seed"] == pytest.approx(310.0)
    assert m["estimate_over_compiled"] == pytest.approx(1.1)
    assert m["within_tolerance"]
    # an estimate of half the measured memory fails
    assert not memory_check([_row(n, 1000 + 300 * n, 0.0, 150) for n in (1, 2)])["within_tolerance"]
    assert np.isnan(per_seed_slope([1], [5.0])[0])


def test_memory_cap_follows_the_sweeps_rule():
    # 80% of 1000 bytes minus a 100-byte dataset leaves 700: 7 runs of 100 bytes
    assert memory_cap(100, 100, 1000) == 7
    assert memory_cap(10**9, 0, 1000) == 0


def test_worker_env_forces_host_devices_only_when_asked(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=4 --foo=1")
    env = worker_env("/tmp/cache", 2)
    assert env["XLA_FLAGS"].split() == ["--foo=1", "--xla_force_host_platform_device_count=2"]
    assert env["JAXO2O_CACHE_DIR"] == "/tmp/cache"
    assert worker_env("/tmp/cache", 1)["XLA_FLAGS"] == "--foo=1"


def test_matmul_chain_multiplies_k_times():
    from benchmarks.perf_ceilings import matmul_chain

    chain = matmul_chain(8)
    one, three = np.asarray(chain(1)), np.asarray(chain(3))
    kx, kw = jax.random.split(jax.random.PRNGKey(0))
    w = np.asarray(jax.random.normal(kw, (8, 8))) / np.sqrt(8)
    x = np.asarray(jax.random.normal(kx, (8, 8)))
    np.testing.assert_allclose(one, x @ w, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(three, x @ w @ w @ w, rtol=1e-4, atol=1e-4)
