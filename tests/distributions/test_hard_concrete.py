"""Statistical and numerical tests of :class:`l0bayes.distributions.HardConcrete`.

Tolerances and the false-failure rate
-------------------------------------
Every random test runs under a fixed seed (``tests/conftest.py`` seeds 0; tests that need
their own stream reseed), so the suite is reproducible. The thresholds are chosen so that a
*correct* implementation would fail any one test, over the draw of a random seed, with
probability at most about 1e-4:

* goodness-of-fit tests (KS, chi-square) reject when the p-value is below ``P_MIN = 1e-5``;
  each test makes one such comparison, so its false-failure rate is 1e-5;
* Monte-Carlo frequencies and moments are accepted within ``Z = 5`` standard errors
  (two-sided normal tail 5.7e-7 per comparison); a test makes at most 20 comparisons,
  so at most 1.2e-5 per test;
* deterministic identities use tolerances derived from float64 rounding (1e-12 .. 1e-8
  depending on how many operations or how much quadrature sits between the two sides).

The property tests (hypothesis) check invariants that must hold for *every* input, so they
have no false-failure rate.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, special, stats

from l0bayes.distributions import (
    DEFAULT_STRETCH,
    DEFAULT_TEMPERATURE,
    HardConcrete,
    SpikeSlabGate,
    check_gate_hyperparameters,
)

P_MIN = 1e-5
Z = 5.0
F64 = torch.float64

#: (log_alpha, temperature, stretch) triples for the goodness-of-fit tests: the paper's
#: defaults, mass piled on 1, a wide stretch, a low temperature (mostly atoms), a narrow
#: stretch at high temperature (tiny atoms) and an extreme low-temperature, pruned gate.
GOF_CASES = [
    (0.0, DEFAULT_TEMPERATURE, DEFAULT_STRETCH),
    (2.0, 0.5, DEFAULT_STRETCH),
    (-1.5, 1.5, (-0.3, 1.2)),
    (0.5, 0.2, DEFAULT_STRETCH),
    (1.0, 2.0, (-0.01, 1.01)),
    (-3.0, 0.1, (-0.5, 1.5)),
]
GOF_IDS = [f"la={la}-beta={beta:.3g}-stretch={s}" for la, beta, s in GOF_CASES]


def _hc(log_alpha, temperature=DEFAULT_TEMPERATURE, stretch=DEFAULT_STRETCH, dtype=F64):
    return HardConcrete(torch.tensor(log_alpha, dtype=dtype), temperature, stretch)


def _survival(v, log_alpha, temperature, stretch):
    """P(z > v) for v in [0, 1), written out independently with numpy/scipy."""
    low, high = stretch
    t = (np.asarray(v, dtype=np.float64) - low) / (high - low)
    return special.expit(log_alpha - temperature * special.logit(t))


def _quad(f, a, b):
    value, error = integrate.quad(f, a, b, epsabs=1e-13, epsrel=1e-12, limit=200)
    assert error < 1e-10
    return value


def _to_numpy(fn):
    """Wrap a torch function of a float64 tensor as a numpy function."""
    return lambda v: fn(torch.as_tensor(v, dtype=F64)).detach().numpy()


# --------------------------------------------------------------------------- goodness of fit
@pytest.mark.parametrize("log_alpha, temperature, stretch", GOF_CASES, ids=GOF_IDS)
def test_rsample_interior_ks(log_alpha, temperature, stretch):
    """Draws with 0 < z < 1 follow the conditional CDF (F(v) - P0) / (1 - P0 - P1)."""
    d = _hc(log_alpha, temperature, stretch)
    z = d.rsample((200_000,)).detach()
    interior = z[(z > 0) & (z < 1)].numpy()
    assert interior.size > 1000
    p0, p1 = d.prob_zero.item(), d.prob_one.item()
    result = stats.kstest(interior, _to_numpy(lambda v: (d.cdf(v) - p0) / (1 - p0 - p1)))
    assert result.pvalue > P_MIN, result


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("log_alpha, temperature, stretch", GOF_CASES, ids=GOF_IDS)
def test_rsample_binned_chi_square(log_alpha, temperature, stretch, dtype):
    """Chi-square over {0}, 20 equal-width bins of (0, 1), and {1}."""
    n = 200_000
    z = _hc(log_alpha, temperature, stretch, dtype).rsample((n,)).double()
    d = _hc(log_alpha, temperature, stretch)
    edges = torch.linspace(0, 1, 21, dtype=F64)
    p0, p1 = d.prob_zero, d.prob_one
    # P(edge_k < z <= edge_{k+1}) for the interior bins; cdf(0) = P0 and cdf(1-) = 1 - P1
    cdf = torch.cat([p0.reshape(1), d.cdf(edges[1:-1]), (1 - p1).reshape(1)])
    probs = torch.cat([p0.reshape(1), cdf.diff(), p1.reshape(1)])
    torch.testing.assert_close(probs.sum(), torch.tensor(1.0, dtype=F64), rtol=0, atol=1e-12)
    expected = n * probs.numpy()
    assert expected.min() >= 5, "fixture design: every bin needs 5 expected counts"
    interior = z[(z > 0) & (z < 1)].numpy()
    observed = np.concatenate(
        [
            [(z == 0).sum().item()],
            np.histogram(interior, bins=edges.numpy())[0],
            [(z == 1).sum().item()],
        ]
    )
    assert observed.sum() == n
    result = stats.chisquare(observed, expected * n / expected.sum())
    assert result.pvalue > P_MIN, (observed, expected)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize(
    "temperature, stretch",
    [(DEFAULT_TEMPERATURE, DEFAULT_STRETCH), (0.3, (-0.3, 1.05)), (1.7, (-0.02, 1.4))],
)
def test_point_mass_frequencies(temperature, stretch, dtype):
    n = 200_000
    d = _hc([-3.0, -1.0, 0.0, 1.0, 3.0], temperature, stretch, dtype)
    z = d.rsample((n,)).double()
    for freq, p in [
        ((z == 0).double().mean(0), d.prob_zero),
        ((z == 1).double().mean(0), d.prob_one),
    ]:
        p = p.double()
        se = (p * (1 - p) / n).sqrt()
        assert ((freq - p).abs() <= Z * se).all(), (freq, p)


def test_rsample_is_the_reparameterised_map():
    """rsample(u) = clamp(sigmoid((logit u + la) / beta) (zeta - gamma) + gamma, 0, 1) with u
    the uniforms ``torch.rand`` draws under the same seed."""
    la = torch.tensor([-2.0, 0.0, 0.7, 3.0], dtype=F64)
    beta, (low, high) = 0.8, (-0.2, 1.15)
    torch.manual_seed(5)
    z = HardConcrete(la, beta, (low, high)).rsample((1000,))
    torch.manual_seed(5)
    u = torch.rand(1000, 4, dtype=F64)
    expected = (torch.sigmoid((torch.logit(u) + la) / beta) * (high - low) + low).clamp(0, 1)
    torch.testing.assert_close(z, expected, rtol=0, atol=1e-14)


def test_rsample_gradient_is_the_pathwise_derivative():
    """dz/d(log alpha) = (zeta - gamma) s (1 - s) / beta inside (0, 1), 0 on the atoms."""
    la = torch.tensor([-2.0, 0.0, 0.7, 3.0], dtype=F64, requires_grad=True)
    beta, (low, high) = 0.8, (-0.2, 1.15)
    z = HardConcrete(la, beta, (low, high)).rsample((1000,))
    (grad,) = torch.autograd.grad(z.sum(), la)
    z = z.detach()
    s = (z - low) / (high - low)
    pathwise = torch.where((z > 0) & (z < 1), (high - low) * s * (1 - s) / beta, 0.0)
    assert ((z == 0).any(0) & (z == 1).any(0) & ((z > 0) & (z < 1)).any(0)).any()
    torch.testing.assert_close(grad, pathwise.sum(0), rtol=1e-10, atol=1e-10)


# --------------------------------------------------------------------------- closed forms
def test_prob_zero_plus_prob_nonzero_is_one(float64):
    la = torch.linspace(-30, 30, 121)
    for beta, stretch in [(DEFAULT_TEMPERATURE, DEFAULT_STRETCH), (0.2, (-0.4, 1.3))]:
        d = HardConcrete(la, beta, stretch)
        torch.testing.assert_close(
            d.prob_zero + d.prob_nonzero, torch.ones(121), rtol=0, atol=1e-15
        )
        torch.testing.assert_close(d.log_prob_zero.exp(), d.prob_zero, rtol=1e-14, atol=0)
        torch.testing.assert_close(d.log_prob_nonzero.exp(), d.prob_nonzero, rtol=1e-14, atol=0)
        assert (d.prob_one <= d.prob_nonzero).all()


def test_prob_nonzero_paper_formula(float64):
    """Louizos et al. (2018), Eq. 12: P(z != 0) = sigmoid(log alpha - beta log(-gamma/zeta))."""
    la = torch.linspace(-8, 8, 33)
    for beta, (low, high) in [(DEFAULT_TEMPERATURE, DEFAULT_STRETCH), (1.3, (-0.05, 1.2))]:
        d = HardConcrete(la, beta, (low, high))
        expected = torch.sigmoid(la - beta * math.log(-low / high))
        torch.testing.assert_close(d.prob_nonzero, expected, rtol=1e-14, atol=0)
        expected_one = torch.sigmoid(la - beta * math.log((1 - low) / (high - 1)))
        torch.testing.assert_close(d.prob_one, expected_one, rtol=1e-14, atol=0)
    # with the paper's beta = 2/3 and (gamma, zeta) = (-0.1, 1.1): beta log(11) = 1.59860
    d = HardConcrete(la)
    torch.testing.assert_close(d.prob_nonzero, torch.sigmoid(la + 1.5986), rtol=0, atol=1e-5)
    assert d.prob_zero[la == 0].item() == pytest.approx(special.expit(-1.5986), abs=1e-5)


def test_log_probs_of_atoms_are_stable(float64):
    d = HardConcrete(torch.tensor([-500.0, 500.0]))
    offset = DEFAULT_TEMPERATURE * math.log(11)
    torch.testing.assert_close(d.log_prob_nonzero[0], torch.tensor(-500.0 + offset))
    torch.testing.assert_close(d.log_prob_zero[1], torch.tensor(-500.0 - offset))
    assert -1e-200 < d.log_prob_nonzero[1] <= 0 and -1e-200 < d.log_prob_zero[0] <= 0
    torch.testing.assert_close(d.log_prob(torch.zeros(2)), d.log_prob_zero)


@pytest.mark.parametrize("log_alpha, temperature, stretch", GOF_CASES, ids=GOF_IDS)
def test_log_prob_normalised_on_mixed_base_measure(log_alpha, temperature, stretch):
    """exp(log_prob) integrates to 1 against delta_0 + Lebesgue(0, 1) + delta_1."""
    d = _hc(log_alpha, temperature, stretch)
    density = _to_numpy(lambda v: d.log_prob(v).exp())
    at_atoms = d.log_prob(torch.tensor([0.0, 1.0], dtype=F64)).exp()
    torch.testing.assert_close(at_atoms, torch.stack([d.prob_zero, d.prob_one]), rtol=1e-14, atol=0)
    total = _quad(density, 0.0, 1.0) + at_atoms.sum().item()
    assert total == pytest.approx(1.0, abs=1e-8)
    # the cdf is P0 plus the integral of the interior density
    for v in (1e-6, 0.1, 0.37, 0.5, 0.82, 1 - 1e-6):
        expected = d.prob_zero.item() + _quad(density, 0.0, v)
        assert d.cdf(torch.tensor(v, dtype=F64)).item() == pytest.approx(expected, abs=1e-9)


def test_cdf_at_and_outside_the_support(float64):
    d = HardConcrete(torch.tensor([-1.0, 0.4, 2.5]), 0.6, (-0.15, 1.08))
    torch.testing.assert_close(d.cdf(torch.zeros(3)), d.prob_zero, rtol=1e-14, atol=0)
    torch.testing.assert_close(d.cdf(torch.full((3,), -0.5)), torch.zeros(3), rtol=0, atol=0)
    torch.testing.assert_close(d.cdf(torch.ones(3)), torch.ones(3), rtol=0, atol=0)
    torch.testing.assert_close(d.cdf(torch.full((3,), 1.5)), torch.ones(3), rtol=0, atol=0)
    # just below 1 the cdf is 1 - P(z = 1): the jump at 1 is the atom
    torch.testing.assert_close(
        d.cdf(torch.full((3,), 1 - 1e-12)), 1 - d.prob_one, atol=1e-10, rtol=0
    )
    # the survival function written out independently
    v = torch.linspace(0, 1 - 1e-9, 50).unsqueeze(-1)
    survival = _survival(v.numpy(), d.log_alpha.numpy(), 0.6, (-0.15, 1.08))
    torch.testing.assert_close(1 - d.cdf(v), torch.from_numpy(survival), rtol=0, atol=1e-14)


# --------------------------------------------------------------------------- moments
@pytest.mark.parametrize("log_alpha, temperature, stretch", GOF_CASES, ids=GOF_IDS)
def test_moments_match_quadrature_of_survival(log_alpha, temperature, stretch):
    """E[z] = int_0^1 P(z > v) dv and E[z^2] = int_0^1 2 v P(z > v) dv (scipy quad)."""
    d = _hc(log_alpha, temperature, stretch)
    mean = _quad(lambda v: _survival(v, log_alpha, temperature, stretch), 0.0, 1.0)
    second = _quad(lambda v: 2 * v * _survival(v, log_alpha, temperature, stretch), 0.0, 1.0)
    assert d.mean.item() == pytest.approx(mean, abs=1e-9)
    assert d.second_moment.item() == pytest.approx(second, abs=1e-9)
    assert d.variance.item() == pytest.approx(second - mean**2, abs=1e-9)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_moments_match_monte_carlo(dtype):
    n = 200_000
    la = [-2.5, -0.5, 0.0, 1.0, 4.0]
    for beta, stretch in [(DEFAULT_TEMPERATURE, DEFAULT_STRETCH), (1.5, (-0.3, 1.2))]:
        d = _hc(la, beta, stretch, dtype)
        z = d.rsample((n,)).double()
        mean = z.mean(0)
        var = (z - mean).pow(2).mean(0)
        fourth = (z - mean).pow(4).mean(0)
        assert ((mean - d.mean.double()).abs() <= Z * (var / n).sqrt()).all()
        se_var = ((fourth - var**2) / n).sqrt()
        assert ((var - d.variance.double()).abs() <= Z * se_var).all()


def test_deterministic_gate(float64):
    """Eq. 13: clamp(sigmoid(la)(zeta - gamma) + gamma, 0, 1), which is zero exactly when
    la < logit(-gamma / (zeta - gamma))."""
    for low, high in [DEFAULT_STRETCH, (-0.3, 1.05), (-0.01, 1.5)]:
        la = torch.linspace(-10, 10, 2001)
        d = HardConcrete(la, 0.9, (low, high))
        gate = d.deterministic_gate()
        expected = (torch.sigmoid(la) * (high - low) + low).clamp(0, 1)
        torch.testing.assert_close(gate, expected, rtol=0, atol=0)
        threshold = special.logit(-low / (high - low))
        assert threshold == pytest.approx(math.log(-low / high), abs=1e-12)
        away = (la - threshold).abs() > 1e-9
        assert torch.equal((gate == 0)[away], (la < threshold)[away])
        # both sides of the threshold, as close as float64 resolves it
        near = torch.tensor([threshold - 1e-9, threshold + 1e-9])
        gate = HardConcrete(near, 0.9, (low, high)).deterministic_gate()
        assert gate[0] == 0 and gate[1] > 0
        # and it is 1 exactly when la > logit((1 - gamma) / (zeta - gamma))
        one = special.logit((1 - low) / (high - low))
        away = (la - one).abs() > 1e-9
        assert torch.equal((d.deterministic_gate() == 1)[away], (la > one)[away])


# --------------------------------------------------------------------------- gradients
GRAD_LOG_ALPHA = [-2.0, -0.3, 0.0, 1.1, 3.0]


def _la():
    return torch.tensor(GRAD_LOG_ALPHA, dtype=F64, requires_grad=True)


@pytest.mark.parametrize(
    "temperature, stretch", [(DEFAULT_TEMPERATURE, DEFAULT_STRETCH), (1.4, (-0.25, 1.1))]
)
def test_gradcheck_log_prob_and_cdf(temperature, stretch):
    interior = torch.tensor([0.03, 0.2, 0.5, 0.77, 0.97], dtype=F64, requires_grad=True)
    atoms = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0], dtype=F64)
    for fn in ("log_prob", "cdf"):
        assert torch.autograd.gradcheck(
            lambda la, v, fn=fn: getattr(HardConcrete(la, temperature, stretch), fn)(v),
            (_la(), interior),
        )
    # at the atoms log_prob is differentiable in log_alpha (not in the value)
    assert torch.autograd.gradcheck(
        lambda la: HardConcrete(la, temperature, stretch).log_prob(atoms), (_la(),)
    )


@pytest.mark.parametrize(
    "name", ["prob_nonzero", "prob_zero", "prob_one", "log_prob_nonzero", "mean", "variance"]
)
def test_gradcheck_closed_forms(name):
    assert torch.autograd.gradcheck(
        lambda la: getattr(HardConcrete(la, 0.8, (-0.2, 1.3)), name), (_la(),)
    )


def test_gradcheck_rsample_with_fixed_uniforms():
    """Reseeding before each evaluation fixes u, so finite differences in log_alpha see the
    reparameterised map z(u; log_alpha) and must agree with autograd."""

    def draw(la):
        torch.manual_seed(11)
        return HardConcrete(la, 0.7, (-0.1, 1.1)).rsample((40,))

    la = _la()
    z = draw(la).detach()
    assert ((z > 0) & (z < 1)).any() and (z == 0).any() and (z == 1).any()
    assert torch.autograd.gradcheck(draw, (la,))


def test_gradient_of_prob_nonzero_matches_formula(float64):
    la = torch.linspace(-6, 6, 25, requires_grad=True)
    d = HardConcrete(la, 0.5, (-0.2, 1.2))
    (grad,) = torch.autograd.grad(d.prob_nonzero.sum(), la)
    p = torch.sigmoid(la.detach() - 0.5 * math.log(0.2 / 1.2))
    torch.testing.assert_close(grad, p * (1 - p), rtol=1e-12, atol=1e-15)


# --------------------------------------------------------------------------- properties
log_alphas = st.lists(
    st.floats(-50, 50, allow_nan=False, allow_infinity=False), min_size=1, max_size=4
)
temperatures = st.floats(0.1, 2.0)
lows = st.floats(-0.5, -0.01)
highs = st.floats(1.01, 1.5)
dtypes = st.sampled_from([torch.float32, torch.float64])
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)


@PROPERTY_SETTINGS
@given(log_alphas, temperatures, lows, highs, dtypes)
def test_property_rsample_and_log_prob(la, temperature, low, high, dtype):
    la = torch.tensor(la, dtype=dtype, requires_grad=True)
    d = HardConcrete(la, temperature, (low, high))
    z = d.rsample((64,))
    assert z.dtype == dtype and z.shape == (64,) + la.shape
    assert torch.isfinite(z).all()
    assert ((z >= 0) & (z <= 1)).all()
    z.sum().backward()
    assert torch.isfinite(la.grad).all()
    z = z.detach()
    assert torch.isfinite(d.log_prob(z)).all()
    atoms = torch.tensor([[0.0], [1.0]], dtype=dtype)
    assert torch.isfinite(d.log_prob(atoms)).all()
    assert torch.isfinite(d.log_prob(torch.tensor([[0.5]], dtype=dtype))).all()


@settings(max_examples=50, deadline=None)
@given(log_alphas, temperatures, lows, highs, dtypes)
def test_property_log_prob_and_cdf_gradients(la, temperature, low, high, dtype):
    """log_prob and cdf, and their gradients w.r.t. log_alpha, are finite at the atoms, across
    the interior (up to one float32 ulp from 0 and 1) and at draws."""
    la = torch.tensor(la, dtype=dtype, requires_grad=True)
    d = HardConcrete(la, temperature, (low, high))
    grid = torch.tensor([0.0, 1e-6, 0.25, 0.5, 0.75, 1 - 6e-8, 1.0], dtype=dtype)
    values = torch.cat([grid.unsqueeze(-1).expand(-1, la.numel()), d.rsample((16,)).detach()])
    for fn in (d.log_prob, d.cdf):
        out = fn(values)
        assert out.dtype == dtype and torch.isfinite(out).all()
        (grad,) = torch.autograd.grad(out.sum(), la)
        assert torch.isfinite(grad).all()


@PROPERTY_SETTINGS
@given(log_alphas, temperatures, lows, highs, dtypes)
def test_property_cdf(la, temperature, low, high, dtype):
    d = HardConcrete(torch.tensor(la, dtype=dtype), temperature, (low, high))
    v = torch.linspace(-0.2, 1.2, 141, dtype=dtype).unsqueeze(-1)
    cdf = d.cdf(v)
    assert cdf.shape == (141, len(la))
    assert ((cdf >= 0) & (cdf <= 1)).all()
    assert (cdf.diff(dim=0) >= 0).all()
    assert (cdf[v.squeeze(-1) < 0] == 0).all() and (cdf[v.squeeze(-1) >= 1] == 1).all()
    eps = 4 * torch.finfo(dtype).eps
    torch.testing.assert_close(d.cdf(torch.zeros((), dtype=dtype)), d.prob_zero, rtol=0, atol=eps)


@PROPERTY_SETTINGS
@given(log_alphas, temperatures, lows, highs, dtypes)
def test_property_probabilities_and_moments(la, temperature, low, high, dtype):
    d = HardConcrete(torch.tensor(la, dtype=dtype), temperature, (low, high))
    eps = 4 * torch.finfo(dtype).eps
    for p in (d.prob_zero, d.prob_nonzero, d.prob_one):
        assert p.dtype == dtype
        assert ((p >= 0) & (p <= 1)).all()
    assert ((d.prob_zero + d.prob_nonzero - 1).abs() <= eps).all()
    assert (d.prob_one <= d.prob_nonzero + eps).all()
    assert (d.log_prob_zero <= 0).all() and torch.isfinite(d.log_prob_zero).all()
    assert (d.log_prob_nonzero <= 0).all() and torch.isfinite(d.log_prob_nonzero).all()
    mean, second, var = d.mean, d.second_moment, d.variance
    for m in (mean, second, var):
        assert m.dtype == dtype and torch.isfinite(m).all()
    assert ((mean >= 0) & (mean <= 1)).all()
    # z in [0, 1]: P1 <= E[z^2] <= E[z] <= P(z != 0), and 0 <= Var <= 1/4
    assert (d.prob_one <= second + eps).all()
    assert (second <= mean + eps).all()
    assert (mean <= d.prob_nonzero + eps).all()
    assert ((var >= 0) & (var <= 0.25 + eps)).all()


@PROPERTY_SETTINGS
@given(
    log_alphas,
    temperatures,
    lows,
    highs,
    dtypes,
    st.floats(0.01, 0.99),
    st.sampled_from(["l0", "bayes"]),
)
def test_property_kl_to_spike_slab(la, temperature, low, high, dtype, pi, kl_mode):
    la = torch.tensor(la, dtype=dtype, requires_grad=True)
    q = HardConcrete(la, temperature, (low, high))
    p = SpikeSlabGate(prior_inclusion=torch.tensor(pi, dtype=dtype), kl_mode=kl_mode)
    kl = torch.distributions.kl_divergence(q, p)
    assert kl.shape == la.shape and kl.dtype == dtype
    assert torch.isfinite(kl).all()
    if kl_mode == "bayes":  # a KL divergence is non-negative
        assert (kl >= -8 * torch.finfo(dtype).eps).all()
    kl.sum().backward()
    assert torch.isfinite(la.grad).all()


# --------------------------------------------------------------------------- arguments
@pytest.mark.parametrize(
    "temperature", [0.0, -0.5, -1e-300, math.inf, -math.inf, math.nan, "2/3", None]
)
def test_invalid_temperature(temperature):
    with pytest.raises(ValueError, match="temperature"):
        HardConcrete(torch.zeros(3), temperature=temperature)


@pytest.mark.parametrize(
    "stretch",
    [
        (0.1, 1.1),  # gamma > 0: no atom at 0
        (-0.1, 0.9),  # zeta < 1: no atom at 1
        (0.0, 1.1),
        (-0.1, 1.0),
        (1.1, -0.1),  # reversed
        (-math.inf, 1.1),
        (-0.1, math.inf),
        (math.nan, 1.1),
        (-0.1,),  # malformed
        (-0.1, 1.1, 2.0),
        None,
        "ab",
        (-0.1, "x"),
    ],
)
def test_invalid_stretch(stretch):
    with pytest.raises(ValueError, match="stretch"):
        HardConcrete(torch.zeros(3), stretch=stretch)
    with pytest.raises(ValueError, match="stretch"):
        check_gate_hyperparameters(DEFAULT_TEMPERATURE, stretch)


def test_valid_hyperparameters_are_accepted():
    check_gate_hyperparameters(1, (-1, 2))
    d = HardConcrete(0.0, temperature=1, stretch=[-0.5, 1.5])
    assert d.temperature == 1.0 and isinstance(d.temperature, float)
    assert d.stretch == (-0.5, 1.5) and isinstance(d.stretch, tuple)


def test_nan_log_alpha_is_rejected_with_validation():
    with pytest.raises(ValueError, match="log_alpha"):
        HardConcrete(torch.tensor([0.0, math.nan]), validate_args=True)
    with pytest.raises(ValueError, match="log_alpha"):
        HardConcrete(math.nan, validate_args=True)
    assert HardConcrete(torch.tensor([0.0, 1.0]), validate_args=True).batch_shape == (2,)
