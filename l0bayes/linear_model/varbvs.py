r"""Coordinate-ascent variational inference (CAVI) for spike-and-slab linear regression.

The varbvs algorithm of Carbonetto & Stephens (2012), here as a reference method beside the
L0 gates: the same spike-and-slab posterior, approximated by a fully factorised
(mean-field) family and fitted by closed-form coordinate updates instead of SVI.

**Model** (the slab variance is in units of the residual variance, as in varbvs):

.. math::

    y = b\mathbf 1 + X\beta + \varepsilon, \quad \varepsilon \sim N(0, \sigma^2 I), \quad
    p(b) \propto 1, \quad
    \beta_j \mid \gamma_j = 1 \sim N(0, \sigma^2\sigma_b^2), \quad
    \beta_j \mid \gamma_j = 0 = 0, \quad \gamma_j \sim \mathrm{Bernoulli}(\pi).

The flat intercept integrates out exactly by centring :math:`X` and :math:`y`, which leaves
:math:`n - 1` residual degrees of freedom (:mod:`l0bayes.linear_model.exact`); :math:`X, y` below
are centred.
With a known :math:`\sigma` this is the prior of :func:`l0bayes.linear_model.exact.exact_posterior`
with
``slab_scale`` :math:`= \sigma\sigma_b`.

**Variational family.** :math:`q(\beta, \gamma) = \prod_j q(\beta_j, \gamma_j)` with
:math:`q(\beta_j, \gamma_j = 1) = \alpha_j N(\beta_j; \mu_j, s_j^2)` and
:math:`q(\gamma_j = 0) = 1 - \alpha_j` (then :math:`\beta_j = 0`). :math:`\alpha_j` is the
posterior inclusion probability (PIP), :math:`r_j = \alpha_j\mu_j = E_q[\beta_j]`.

**Coordinate update** of :math:`(\alpha_j, \mu_j, s_j^2)`, the exact maximiser of the ELBO
over :math:`q(\beta_j, \gamma_j)` with the other factors fixed (:math:`d_j = x_j^\top x_j`):

.. math::

    s_j^2 = \frac{\sigma^2}{d_j + 1/\sigma_b^2}, \qquad
    \mu_j = \frac{s_j^2}{\sigma^2}\, x_j^\top\Big(y - \sum_{k \ne j} x_k r_k\Big), \qquad
    \operatorname{logit}\alpha_j = \operatorname{logit}\pi
        + \tfrac12\log\frac{s_j^2}{\sigma^2\sigma_b^2} + \frac{\mu_j^2}{2 s_j^2}.

**Noise update** after each sweep, the exact maximiser of the ELBO over :math:`\sigma^2` with
:math:`q` fixed (varbvs has :math:`n` where the integrated intercept gives :math:`n - 1`):

.. math::

    \sigma^2 = \frac{\lVert y - Xr\rVert^2 + \sum_j d_j v_j
        + \sum_j \alpha_j (s_j^2 + \mu_j^2)/\sigma_b^2}{n - 1 + \sum_j \alpha_j}, \qquad
    v_j = \operatorname{Var}_q\beta_j = \alpha_j(s_j^2 + \mu_j^2) - \alpha_j^2\mu_j^2.

**ELBO** (a lower bound on :math:`\log p(y \mid \sigma^2)`, with the intercept integrated
against a flat prior of unit density exactly as in :mod:`l0bayes.linear_model.exact`):

.. math::

    F = -\tfrac12\log n - \tfrac{n-1}2\log(2\pi\sigma^2)
        - \frac{\lVert y - Xr\rVert^2 + \sum_j d_j v_j}{2\sigma^2}
        - \sum_j \Big[\alpha_j\log\frac{\alpha_j}{\pi}
            + (1 - \alpha_j)\log\frac{1 - \alpha_j}{1 - \pi}\Big]
        - \sum_j \frac{\alpha_j}2\Big[\frac{s_j^2 + \mu_j^2}{\sigma^2\sigma_b^2} - 1
            - \log\frac{s_j^2}{\sigma^2\sigma_b^2}\Big].

Every update maximises :math:`F` over one block of variables, so :math:`F` never decreases;
the fit stops when a sweep raises it by less than ``tol`` nats. When the centred columns are
orthogonal the posterior factorises, the family contains it, and the PIPs and :math:`F` equal
the exact ones. :math:`\pi` and :math:`\sigma_b^2` are fixed (varbvs's average over a grid of
hyperparameters, weighted by :math:`e^F`, is not implemented: comparisons here use one prior).

References:

1. P. Carbonetto and M. Stephens. Scalable variational inference for Bayesian variable
   selection in regression, and its accuracy in genetic association studies. *Bayesian
   Analysis* 7(1), 73–108, 2012.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from numbers import Real

import numpy as np
from scipy.special import expit, logit, xlogy

from l0bayes.validation import (
    check_choice,
    check_count,
    check_not_constant,
    check_positive,
    check_Xy,
)

__all__ = ["VarbvsFit", "varbvs"]

ORDERS = ("cyclic", "random")


@dataclass(frozen=True)
class VarbvsFit:
    r"""The fitted factors :math:`q(\beta_j, \gamma_j)` and the ELBO trace.

    ``inclusion_probs`` (:math:`\alpha`), ``mu`` and ``s2`` (mean and variance of
    :math:`\beta_j` given :math:`\gamma_j = 1`), ``coef`` (:math:`E_q[\beta] = \alpha\mu`, on
    X's scale), ``intercept`` (:math:`\bar y - \bar x^\top E_q[\beta]`), ``noise_var``
    (:math:`\sigma^2`), ``elbo`` (F before the first sweep and after each sweep).
    """

    inclusion_probs: np.ndarray
    mu: np.ndarray
    s2: np.ndarray
    coef: np.ndarray
    intercept: float
    noise_var: float
    elbo: np.ndarray
    converged: bool
    prior_inclusion: float
    slab_var: float

    @property
    def selected(self) -> np.ndarray:
        """The median-probability model, :math:`\\alpha_j > 1/2`."""
        return self.inclusion_probs > 0.5

    @property
    def n_iter(self) -> int:
        """Number of sweeps run."""
        return len(self.elbo) - 1

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Posterior mean response :math:`b + X E_q[\\beta]`."""
        return self.intercept + np.asarray(X, dtype=np.float64) @ self.coef


@dataclass
class _State:
    """Variational parameters and the running fit ``Xr`` (centred data)."""

    alpha: np.ndarray
    mu: np.ndarray
    s2: np.ndarray
    sigma2: float
    Xr: np.ndarray


def _check(X, y, prior_inclusion, slab_var, noise_var, order, tol, max_iter):
    X, y = check_Xy(X, y, min_samples=3)
    if check_positive("prior_inclusion", prior_inclusion) >= 1:
        raise ValueError(f"prior_inclusion must lie in (0, 1), got {prior_inclusion!r}")
    check_positive("slab_var (in units of the noise variance)", slab_var)
    if noise_var is None:
        check_not_constant(y)
    else:
        check_positive("noise_var (None estimates it)", noise_var)
    check_choice("order", order, ORDERS)
    if isinstance(tol, bool) or not isinstance(tol, Real) or not 0 <= tol < math.inf:
        raise ValueError(f"tol must be a finite number >= 0 (nats), got {tol!r}")
    check_count("max_iter", max_iter)
    return X, y


def _update_coordinate(state: _State, X, xty, d, j: int, logit_pi: float, sb2: float) -> None:
    """The closed-form CAVI update of factor j (module docstring), in place."""
    r_old = state.alpha[j] * state.mu[j]
    s2 = state.sigma2 / (d[j] + 1.0 / sb2)
    mu = s2 / state.sigma2 * (xty[j] - X[:, j] @ state.Xr + d[j] * r_old)
    log_odds = logit_pi + 0.5 * math.log(s2 / (state.sigma2 * sb2)) + 0.5 * mu * mu / s2
    state.alpha[j], state.mu[j], state.s2[j] = expit(log_odds), mu, s2
    state.Xr += X[:, j] * (state.alpha[j] * mu - r_old)


def _second_moments(state: _State, y, d) -> tuple[float, np.ndarray]:
    r""":math:`E_q\lVert y - X\beta\rVert^2` and :math:`E_q[\beta_j^2 \mid \gamma_j=1]`."""
    m2 = state.s2 + state.mu**2
    var = state.alpha * m2 - (state.alpha * state.mu) ** 2
    resid = y - state.Xr
    return float(resid @ resid + d @ var), m2


def _update_noise(state: _State, y, d, sb2: float) -> None:
    """The closed-form maximiser of the ELBO over sigma^2 (module docstring)."""
    sq, m2 = _second_moments(state, y, d)
    state.sigma2 = (sq + state.alpha @ m2 / sb2) / (len(y) - 1 + state.alpha.sum())


def _elbo(state: _State, y, d, pi: float, sb2: float) -> float:
    """The ELBO F of the module docstring."""
    n, a = len(y), state.alpha
    sq, m2 = _second_moments(state, y, d)
    loglik = -0.5 * math.log(n) - 0.5 * (n - 1) * math.log(2 * math.pi * state.sigma2)
    loglik -= 0.5 * sq / state.sigma2
    kl_gamma = xlogy(a, a / pi) + xlogy(1 - a, (1 - a) / (1 - pi))
    v = state.sigma2 * sb2
    kl_beta = 0.5 * a * (m2 / v - 1.0 - np.log(state.s2 / v))
    return float(loglik - kl_gamma.sum() - kl_beta.sum())


def varbvs(
    X: np.ndarray,
    y: np.ndarray,
    *,
    prior_inclusion: float = 0.5,
    slab_var: float = 1.0,
    noise_var: float | None = None,
    order: str = "cyclic",
    seed: int = 0,
    tol: float = 1e-8,
    max_iter: int = 1000,
) -> VarbvsFit:
    r"""Fit the mean-field spike-and-slab posterior by coordinate ascent (module docstring).

    :param X: design (n, p), any scale; centred internally (flat intercept).
    :param y: response (n,).
    :param prior_inclusion: :math:`\pi`, the prior probability that a coefficient is in.
    :param slab_var: :math:`\sigma_b^2`, the slab variance in units of :math:`\sigma^2`.
    :param noise_var: a known :math:`\sigma^2`, or ``None`` to update it in closed form after
        each sweep (starting from the variance of y).
    :param order: ``"cyclic"`` (j = 1..p every sweep) or ``"random"`` (a fresh permutation per
        sweep, drawn from ``seed``).
    :param tol: stop when a sweep raises the ELBO by less than this (nats).
    :param max_iter: maximum number of sweeps; a ``RuntimeWarning`` if it is reached.

    Starts from :math:`\alpha_j = \pi`, :math:`\mu_j = 0` (so :math:`E_q[\beta] = 0`).

    Example::

        >>> fit = varbvs(X, y, prior_inclusion=0.3, slab_var=1.0)
        >>> fit.inclusion_probs, fit.coef, fit.elbo[-1]
    """
    X, y = _check(X, y, prior_inclusion, slab_var, noise_var, order, tol, max_iter)
    x_mean, y_mean = X.mean(axis=0), float(y.mean())
    Xc, yc = np.asfortranarray(X - x_mean), y - y_mean
    n, p = Xc.shape
    d, xty = np.einsum("ij,ij->j", Xc, Xc), Xc.T @ yc
    sigma2 = float(yc @ yc / (n - 1)) if noise_var is None else float(noise_var)
    state = _State(np.full(p, prior_inclusion), np.zeros(p), np.zeros(p), sigma2, np.zeros(n))
    state.s2[:] = sigma2 / (d + 1.0 / slab_var)
    rng = np.random.default_rng(seed)
    logit_pi = float(logit(prior_inclusion))
    trace = [_elbo(state, yc, d, prior_inclusion, slab_var)]
    converged = False
    for _ in range(max_iter):
        for j in rng.permutation(p) if order == "random" else range(p):
            _update_coordinate(state, Xc, xty, d, j, logit_pi, slab_var)
        if noise_var is None:
            _update_noise(state, yc, d, slab_var)
        trace.append(_elbo(state, yc, d, prior_inclusion, slab_var))
        if trace[-1] - trace[-2] < tol:
            converged = True
            break
    if not converged:
        warnings.warn(
            f"varbvs did not converge in {max_iter} sweeps (last ELBO gain "
            f"{trace[-1] - trace[-2]:.3g} nats > tol = {tol}); raise max_iter",
            RuntimeWarning,
            stacklevel=2,
        )
    coef = state.alpha * state.mu
    return VarbvsFit(
        inclusion_probs=state.alpha.copy(),
        mu=state.mu.copy(),
        s2=state.s2.copy(),
        coef=coef,
        intercept=float(y_mean - x_mean @ coef),
        noise_var=state.sigma2,
        elbo=np.array(trace),
        converged=converged,
        prior_inclusion=float(prior_inclusion),
        slab_var=float(slab_var),
    )
