"""Counter-based uniforms: the plain-Python definition, the grid, their distribution, and the
gate draws of a training step taken from them."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from l0bayes.distributions import HardConcrete
from l0bayes.distributions.counter_noise import (
    UNIFORM_BITS,
    counter_noise,
    counter_normal,
    counter_uniform,
    positions,
    reference_uniform,
    seed_streams,
    step_key,
    step_keys,
)

CASES = [(0, 0, 0), (3, 17, 2), (2**40 + 5, 10**9, 1), (7, 123456, 30)]


def _key(seed: int, step: int) -> torch.Tensor:
    return step_keys(seed_streams([seed]), torch.tensor(step))[0]


@pytest.mark.parametrize("seed, step, draw", CASES)
def test_torch_words_equal_the_python_definition(seed, step, draw):
    u = counter_uniform(_key(seed, step), positions(draw, 300))
    assert u.tolist() == reference_uniform(seed, step, draw, 300)
    assert int(_key(seed, step)) % 2**64 == step_key(seed, step)


def test_uniforms_lie_on_an_exact_symmetric_grid_inside_the_unit_interval():
    u = counter_uniform(_key(1, 2), positions(0, 100_000), torch.float64)
    grid = u * 2**UNIFORM_BITS - 0.5
    assert torch.equal(grid, grid.round())
    assert u.min() >= 2.0**-24 and u.max() <= 1 - 2.0**-24
    u32 = counter_uniform(_key(1, 2), positions(0, 100_000), torch.float32)
    assert torch.equal(u32.double(), u)  # exact in float32
    assert torch.isfinite(torch.log(u32) - torch.log1p(-u32)).all()


def test_uniforms_are_uniform_and_independent_across_steps_draws_and_seeds():
    """Kolmogorov–Smirnov against U(0, 1) and correlations between neighbouring streams
    (seeds, steps, draws): one fixed seed, so each check passes or fails for good; the bounds
    are 5 standard errors."""
    n = 200_000
    base = counter_uniform(_key(0, 0), positions(0, n), torch.float64).numpy()
    assert stats.kstest(base, "uniform").pvalue > 1e-3
    others = [
        counter_uniform(_key(0, 1), positions(0, n), torch.float64),
        counter_uniform(_key(1, 0), positions(0, n), torch.float64),
        counter_uniform(_key(0, 0), positions(1, n), torch.float64),
    ]
    for other in others:
        assert abs(np.corrcoef(base, other.numpy())[0, 1]) < 5 / math.sqrt(n)
    lagged = np.corrcoef(base[:-1], base[1:])[0, 1]
    assert abs(lagged) < 5 / math.sqrt(n)


def test_normals_by_box_muller_are_standard_normal():
    z = counter_normal(_key(4, 9), positions(0, 200_000), torch.float64).numpy()
    assert stats.kstest(z, "norm").pvalue > 1e-3
    assert abs(z.mean()) < 5 / math.sqrt(len(z))


def test_many_keys_at_once_equal_one_key_at_a_time():
    streams = seed_streams([0, 5, 9])
    keys = step_keys(streams, torch.tensor(11))
    both = counter_uniform(keys, positions(2, 40).reshape(4, 10))
    assert both.shape == (3, 4, 10)
    for k, seed in enumerate([0, 5, 9]):
        assert both[k].flatten().tolist() == reference_uniform(seed, 11, 2, 40)


def test_gate_draws_in_a_step_context_are_the_steps_counter_uniforms():
    """Inside ``counter_noise(seed, step)`` the j-th gate draw of the step takes draw j's
    uniforms (per example: element b·G + g), so it is the same in every process that takes
    that step; outside, torch's generator as before."""
    q = [HardConcrete(torch.randn(5)), HardConcrete(torch.randn(3))]
    with counter_noise(2, 7):
        first = [q[0].rsample(), q[1].rsample((4,))]
    with counter_noise(2, 7):
        again = [q[0].rsample(), q[1].rsample((4,))]
    for a, b in zip(first, again, strict=True):
        assert torch.equal(a, b)
    u = torch.tensor(reference_uniform(2, 7, 1, 12)).reshape(4, 3)
    assert torch.equal(first[1], q[1].from_uniform(u))
    with counter_noise(2, 8):
        assert not torch.equal(q[0].rsample(), first[0])
    torch.manual_seed(0)
    a = q[0].rsample()
    torch.manual_seed(0)
    assert torch.equal(a, q[0].rsample())


def test_bad_counters_are_clear_errors():
    with pytest.raises(ValueError, match="seed"):
        seed_streams([-1])
    with pytest.raises(ValueError, match="draw"):
        positions(-1, 3)
