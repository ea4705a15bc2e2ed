"""Tests of :class:`SpikeSlabGate`, :class:`GaussianSlab` and their KL divergences.

False-failure rate: random tests run under fixed seeds. Monte-Carlo quantities are accepted
within ``Z = 5`` standard errors (two-sided normal tail 5.7e-7 per comparison, at most 5
comparisons per test) and KS tests reject below ``P_MIN = 1e-5`` (one per test), so a correct
implementation fails any one test on a random seed with probability below about 1e-5.
Deterministic identities are checked to float64 rounding (1e-12, or 1e-10 for gradients).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pyro.distributions import Bernoulli, Delta, Normal
from scipy import integrate, special, stats
from torch.distributions import kl_divergence

from l0bayes.distributions import (
    DEFAULT_STRETCH,
    DEFAULT_TEMPERATURE,
    KL_MODES,
    GaussianSlab,
    HardConcrete,
    SpikeSlabGate,
    code_cost,
    gate_kl,
)
from l0bayes.distributions.spike_slab import point_mass_kl

Z = 5.0
P_MIN = 1e-5
F64 = torch.float64
LOG_ALPHAS = [-2.0, -0.5, 0.0, 1.0, 3.0]
PIS = [0.05, 0.3, 0.5, 0.8]


def _entropy(p: torch.Tensor) -> torch.Tensor:
    return -(p * p.log() + (1 - p) * (1 - p).log())


def _assert_close(actual, expected, tol=1e-12):
    torch.testing.assert_close(actual, expected, rtol=tol, atol=tol)


# --------------------------------------------------------------------------- KL, bayes mode
@pytest.mark.parametrize("pi", [0.1, 0.5, 0.8])
@pytest.mark.parametrize(
    "temperature, stretch", [(DEFAULT_TEMPERATURE, DEFAULT_STRETCH), (1.3, (-0.3, 1.1))]
)
def test_bayes_kl_equals_monte_carlo_with_matched_slab(float64, pi, temperature, stretch):
    """KL(q || p) = E_q[log q(z) - log p(z)] for p = SpikeSlabGate(pi, slab=q), both log
    densities w.r.t. delta_0 + Lebesgue + delta_1."""
    n = 200_000
    q = HardConcrete(torch.tensor(LOG_ALPHAS), temperature, stretch)
    p = SpikeSlabGate(prior_inclusion=pi, slab=q)
    z = q.sample((n,))
    log_ratio = q.log_prob(z) - p.log_prob(z)
    estimate = log_ratio.mean(0)
    se = log_ratio.std(0) / math.sqrt(n)
    assert (se > 0).all()
    kl = kl_divergence(q, SpikeSlabGate(prior_inclusion=pi))
    assert kl.shape == (len(LOG_ALPHAS),)
    assert ((estimate - kl).abs() <= Z * se).all(), (estimate, kl, se)
    # the analytic KL ignores the slab: it assumes the slab is the guide's non-zero part
    _assert_close(kl_divergence(q, p), kl)
    # with the matched slab the log ratio depends on z only through 1[z != 0]
    nonzero = z > 0
    expected = torch.where(
        nonzero, q.log_prob_nonzero - math.log(pi), q.log_prob_zero - math.log1p(-pi)
    )
    _assert_close(log_ratio, expected, tol=1e-10)
    assert nonzero.any() and (~nonzero).any() and (z == 1).any() and ((z > 0) & (z < 1)).any()


@pytest.mark.parametrize("pi", PIS)
def test_bayes_kl_is_the_bernoulli_kl(float64, pi):
    la = torch.linspace(-8, 8, 41)
    q = HardConcrete(la, 0.9, (-0.15, 1.2))
    pq = q.prob_nonzero
    by_hand = pq * (pq / pi).log() + (1 - pq) * ((1 - pq) / (1 - pi)).log()
    kl = kl_divergence(q, SpikeSlabGate(prior_inclusion=pi))
    _assert_close(kl, by_hand)
    _assert_close(kl, kl_divergence(Bernoulli(probs=pq), Bernoulli(probs=torch.tensor(pi))))
    assert (kl >= 0).all()


@pytest.mark.parametrize("kl_mode", KL_MODES)
@pytest.mark.parametrize("pi", PIS)
def test_prior_inclusion_and_lam_give_the_same_kl(float64, pi, kl_mode):
    lam = math.log((1 - pi) / pi)
    assert code_cost(pi) == pytest.approx(lam, rel=1e-14, abs=1e-15)
    by_pi = SpikeSlabGate(prior_inclusion=pi, kl_mode=kl_mode)
    by_lam = SpikeSlabGate(lam=lam, kl_mode=kl_mode)
    _assert_close(by_pi.lam, by_lam.lam)
    _assert_close(by_lam.prior_inclusion, torch.tensor(pi))
    q = HardConcrete(torch.tensor(LOG_ALPHAS))
    _assert_close(kl_divergence(q, by_pi), kl_divergence(q, by_lam))
    _assert_close(kl_divergence(q, by_lam), gate_kl(q, lam, kl_mode))


def test_kl_broadcasts_guide_and_prior_batches(float64):
    q = HardConcrete(torch.tensor([-1.0, 0.0, 2.0]))
    pi = torch.tensor([[0.2], [0.6]])
    kl = kl_divergence(q, SpikeSlabGate(prior_inclusion=pi))
    assert kl.shape == (2, 3)
    for i in range(2):
        _assert_close(kl[i], kl_divergence(q, SpikeSlabGate(prior_inclusion=pi[i, 0].item())))


# --------------------------------------------------------------------------- KL, l0 mode
@pytest.mark.parametrize(
    "temperature, stretch", [(DEFAULT_TEMPERATURE, DEFAULT_STRETCH), (0.3, (-0.02, 1.4))]
)
@pytest.mark.parametrize("lam", [-1.0, 0.0, 0.7, 4.0])
def test_l0_kl_and_its_gradient(float64, lam, temperature, stretch):
    low, high = stretch
    la = torch.linspace(-6, 6, 25, requires_grad=True)
    q = HardConcrete(la, temperature, stretch)
    kl = kl_divergence(q, SpikeSlabGate(lam=lam, kl_mode="l0"))
    _assert_close(kl, lam * q.prob_nonzero)
    (grad,) = torch.autograd.grad(kl.sum(), la)
    p = torch.sigmoid(la.detach() - temperature * math.log(-low / high))
    torch.testing.assert_close(grad, lam * p * (1 - p), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("pi", PIS)
def test_bayes_minus_l0_is_minus_entropy_minus_log_not_pi(float64, pi):
    q = HardConcrete(torch.linspace(-10, 10, 41), 0.5, (-0.2, 1.1))
    bayes = kl_divergence(q, SpikeSlabGate(prior_inclusion=pi, kl_mode="bayes"))
    l0 = kl_divergence(q, SpikeSlabGate(prior_inclusion=pi, kl_mode="l0"))
    _assert_close(bayes - l0, -_entropy(q.prob_nonzero) - math.log1p(-pi))


def test_kl_mode_survives_into_the_kl(float64):
    q = HardConcrete(torch.tensor(LOG_ALPHAS))
    p = SpikeSlabGate(lam=1.0, kl_mode="l0").expand((5,))
    _assert_close(kl_divergence(q, p), 1.0 * q.prob_nonzero)


# --------------------------------------------------------------------------- sampling
def test_sample_without_slab_is_bernoulli():
    n = 200_000
    pi = torch.tensor(PIS)
    z = SpikeSlabGate(prior_inclusion=pi).sample((n,))
    assert ((z == 0) | (z == 1)).all()
    freq = z.double().mean(0)
    se = (pi.double() * (1 - pi.double()) / n).sqrt()
    assert ((freq - pi.double()).abs() <= Z * se).all(), freq


def _interior_cdf(log_alpha, temperature, stretch):
    """CDF of q(z | 0 < z < 1), written with the survival S(v) = P(z > v) so that it stays
    accurate when P(z != 0) is tiny: (S(0) - S(v)) / (S(0) - P(z = 1))."""
    low, high = stretch

    def survival(v):
        t = (np.asarray(v, dtype=np.float64) - low) / (high - low)
        return special.expit(log_alpha - temperature * special.logit(t))

    s0 = survival(0.0)
    p1 = special.expit(log_alpha - temperature * math.log((1 - low) / (high - 1)))
    return lambda v: (s0 - survival(v)) / (s0 - p1)


@pytest.mark.parametrize(
    "log_alpha, dtype",
    [
        (2.0, F64),
        (-1.0, torch.float32),
        (-1.0, F64),
        # a pruned gate: P(z != 0) = 1.7e-8 is below float32's eps
        (-20.0, torch.float32),
        (-40.0, F64),
    ],
)
def test_sample_with_slab_matches_guide_given_nonzero(log_alpha, dtype):
    n, pi = 200_000, 0.3
    temperature, stretch = 0.8, (-0.15, 1.1)
    slab = HardConcrete(torch.tensor(log_alpha, dtype=dtype), temperature, stretch)
    z = SpikeSlabGate(prior_inclusion=torch.tensor(pi, dtype=dtype), slab=slab).sample((n,))
    assert z.dtype == dtype
    assert ((z >= 0) & (z <= 1)).all()
    # P(z != 0) = pi
    nonzero = z[z > 0].double()
    assert abs(nonzero.numel() / n - pi) <= Z * math.sqrt(pi * (1 - pi) / n)
    # P(z = 1 | z != 0) = P_q(z = 1) / P_q(z != 0)
    q = HardConcrete(torch.tensor(log_alpha, dtype=F64), temperature, stretch)
    p1 = (q.log_prob(torch.tensor(1.0, dtype=F64)) - q.log_prob_nonzero).exp().item()
    m = nonzero.numel()
    assert abs((nonzero == 1).double().mean().item() - p1) <= Z * math.sqrt(p1 * (1 - p1) / m)
    # q(z | 0 < z < 1)
    interior = nonzero[nonzero < 1].numpy()
    result = stats.kstest(interior, _interior_cdf(log_alpha, temperature, stretch))
    assert result.pvalue > P_MIN, result


@pytest.mark.parametrize("with_slab", [False, True])
def test_log_prob_normalised_on_mixed_base_measure(float64, with_slab):
    pi = 0.35
    slab = HardConcrete(torch.tensor(0.4), 1.1, (-0.2, 1.25)) if with_slab else None
    p = SpikeSlabGate(prior_inclusion=pi, slab=slab)
    atoms = p.log_prob(torch.tensor([0.0, 1.0])).exp()
    assert atoms[0].item() == pytest.approx(1 - pi, rel=1e-14)
    interior = torch.tensor([0.1, 0.5, 0.9])
    if not with_slab:  # the exact spike and slab: all mass on {0, 1}
        assert atoms[1].item() == pytest.approx(pi, rel=1e-14)
        assert (p.log_prob(interior) == -math.inf).all()
        return
    density, error = integrate.quad(
        lambda v: p.log_prob(torch.tensor(v)).exp().item(), 0, 1, epsabs=1e-13, epsrel=1e-12
    )
    assert error < 1e-10
    assert atoms.sum().item() + density == pytest.approx(1.0, abs=1e-9)
    expected = math.log(pi) + slab.log_prob(interior) - slab.log_prob_nonzero
    _assert_close(p.log_prob(interior), expected)


@pytest.mark.parametrize("with_slab", [False, True])
def test_log_prob_is_minus_infinity_off_the_support_even_unvalidated(with_slab):
    slab = HardConcrete(torch.tensor(0.4)) if with_slab else None
    p = SpikeSlabGate(prior_inclusion=0.3, slab=slab, validate_args=False)
    out = p.log_prob(torch.tensor([-0.1, -1e-6, 0.0, 1.0, 1.0 + 1e-6, 2.0]))
    assert (out[[0, 1, 4, 5]] == -math.inf).all()
    assert torch.isfinite(out[[2, 3]]).all()


def test_slab_broadcasts_with_prior(float64):
    slab = HardConcrete(torch.tensor([0.5, -1.0, 2.0]), temperature=0.5)
    p = SpikeSlabGate(prior_inclusion=torch.tensor([[0.2], [0.7]]), slab=slab)
    assert p.batch_shape == p.lam.shape == p.slab.batch_shape == (2, 3)
    assert p.slab.temperature == 0.5
    torch.testing.assert_close(p.slab.log_alpha, slab.log_alpha.expand(2, 3))
    mean = p.prior_inclusion * slab.mean / slab.prob_nonzero
    _assert_close(p.mean, mean)
    assert p.sample((4,)).shape == (4, 2, 3)


# --------------------------------------------------------------------------- GaussianSlab
@pytest.mark.parametrize("precision", [0.25, 1.0, 7.5])
def test_gaussian_slab_kl_from_normal(float64, precision):
    loc = torch.tensor([-1.2, 0.0, 0.4, 3.0])
    scale = torch.tensor([0.1, 1.0, 2.0, 0.7])
    q = Normal(loc, scale)
    normalized = kl_divergence(q, GaussianSlab(precision))
    _assert_close(normalized, kl_divergence(q, Normal(0.0, precision**-0.5)))
    plain_torch = torch.distributions.Normal(loc, scale)  # not Pyro's subclass
    _assert_close(kl_divergence(plain_torch, GaussianSlab(precision)), normalized)
    unnormalized = kl_divergence(q, GaussianSlab(precision, normalized=False))
    log_normalizer = 0.5 * math.log(precision / (2 * math.pi))
    _assert_close(unnormalized - normalized, torch.full((4,), log_normalizer))
    # and the log densities agree with a Normal's / differ by the same constant
    x = torch.linspace(-3, 3, 13)
    _assert_close(GaussianSlab(precision).log_prob(x), Normal(0.0, precision**-0.5).log_prob(x))
    _assert_close(
        GaussianSlab(precision, normalized=False).log_prob(x), -0.5 * precision * x.pow(2)
    )


@pytest.mark.parametrize("precision", [0.0, 0.5, 3.0])
def test_gaussian_slab_kl_from_delta(float64, precision):
    v = torch.tensor([-2.0, -0.3, 0.0, 1.5])
    kl = kl_divergence(Delta(v), GaussianSlab(precision, normalized=False))
    _assert_close(kl, precision / 2 * v.pow(2))
    if precision == 0:
        assert (kl == 0).all()
    else:
        kl = kl_divergence(Delta(v), GaussianSlab(precision))
        _assert_close(kl, -Normal(0.0, precision**-0.5).log_prob(v))


def test_gaussian_slab_kl_from_multivariate_delta_is_refused():
    with pytest.raises(NotImplementedError):
        kl_divergence(Delta(torch.zeros(3), event_dim=1), GaussianSlab(torch.ones(3)))


def test_gaussian_slab_moments(float64):
    d = GaussianSlab(torch.tensor([0.5, 4.0]))
    _assert_close(d.mean, torch.zeros(2))
    _assert_close(d.variance, torch.tensor([2.0, 0.25]))
    assert GaussianSlab(0.0, normalized=False).variance.item() == math.inf


@pytest.mark.parametrize(
    "precision, normalized",
    [
        (-1.0, False),
        (-1e-3, True),
        ([1.0, -2.0], False),
        (math.nan, False),
        (math.inf, False),
        (0.0, True),  # a normalized slab needs a finite variance
        ([1.0, 0.0], True),
    ],
)
def test_gaussian_slab_invalid_precision(precision, normalized):
    with pytest.raises(ValueError, match="precision"):
        GaussianSlab(torch.tensor(precision), normalized=normalized)


def test_gaussian_slab_cannot_sample_flat_slab():
    d = GaussianSlab(torch.tensor([1.0, 0.0]), normalized=False)
    with pytest.raises(ValueError, match="improper"):
        d.sample()
    with pytest.raises(ValueError, match="improper"):
        d.rsample((3,))
    assert torch.isfinite(d.log_prob(torch.tensor([0.5, 0.5]))).all()


# --------------------------------------------------------------------------- arguments
def test_exactly_one_of_prior_inclusion_and_lam():
    with pytest.raises(ValueError, match="exactly one"):
        SpikeSlabGate()
    with pytest.raises(ValueError, match="exactly one"):
        SpikeSlabGate(prior_inclusion=0.3, lam=1.0)


@pytest.mark.parametrize("pi", [0.0, 1.0, -0.1, 1.5, math.nan, [0.3, 1.0], [0.0, 0.5]])
def test_prior_inclusion_outside_unit_interval(pi):
    with pytest.raises(ValueError, match="prior_inclusion"):
        SpikeSlabGate(prior_inclusion=torch.tensor(pi))
    if isinstance(pi, float):
        with pytest.raises(ValueError, match="prior_inclusion"):
            code_cost(pi)


@pytest.mark.parametrize("lam", [math.inf, -math.inf, math.nan])
def test_lam_must_be_finite(lam):
    with pytest.raises(ValueError, match="lam"):
        SpikeSlabGate(lam=lam)


@pytest.mark.parametrize("kl_mode", ["L0", "full", "", None])
def test_unknown_kl_mode(kl_mode):
    with pytest.raises(ValueError, match="kl_mode"):
        SpikeSlabGate(prior_inclusion=0.3, kl_mode=kl_mode)
    with pytest.raises(ValueError, match="kl_mode"):
        gate_kl(HardConcrete(0.0), 1.0, kl_mode)


@pytest.mark.parametrize("a, b", [(1.0, 1.0), (0.5, 3.0), (20.0, 5.0)])
def test_expected_gate_kl_under_beta_matches_monte_carlo(a, b):
    """Closed form (digamma terms) vs the average of the exact KL over π ~ Beta(a, b)."""
    from l0bayes.distributions import expected_gate_kl

    q = HardConcrete(torch.tensor([-3.0, 0.0, 2.0], dtype=torch.float64))
    pis = torch.distributions.Beta(
        torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    ).sample((200_000,))
    pis = pis.clamp(1e-300, 1 - 1e-16)
    kls = kl_divergence(q, SpikeSlabGate(prior_inclusion=pis.unsqueeze(-1)))  # (S, 3)
    mc, se = kls.mean(0), kls.std(0) / math.sqrt(len(pis))
    exact = expected_gate_kl(q, a, b)
    assert torch.all((exact - mc).abs() < 5 * se + 1e-12), (exact, mc, se)


@pytest.mark.parametrize("normalized", [False, True])
@pytest.mark.parametrize("per_weight", [False, True])
def test_point_mass_kl_summed_over_groups_equals_the_registered_kl(normalized, per_weight):
    torch.manual_seed(0)
    w = torch.randn(4, 6, dtype=torch.float64)
    precision = torch.rand(4, 6, dtype=torch.float64) + 0.5 if per_weight else torch.tensor(2.0)
    slab = GaussianSlab(precision.double(), normalized=normalized).expand([4, 6])
    registered = kl_divergence(Delta(w).to_event(1), slab.to_event(1))
    torch.testing.assert_close(point_mass_kl(w, slab, event_dim=1), registered)
    torch.testing.assert_close(point_mass_kl(w, slab), -slab.log_prob(w))
