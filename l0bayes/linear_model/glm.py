r"""Generalised linear models fitted by Newton/IRLS (numpy, float64): the one fitter behind the
exact criteria of :mod:`l0bayes.linear_model.selection` and the Laplace approximations of
:mod:`l0bayes.linear_model.laplace`.

A model has the linear predictor :math:`\eta = o + Z\beta` (:math:`Z = [\mathbf 1, X_S]`,
:math:`o` a known offset) and maximises the (optionally ridge-penalised) log-likelihood

.. math::

    Q(\beta) = \ell(\eta) - \tfrac12 \beta^\top P \beta, \qquad P = \mathrm{diag}(\rho),

by Newton steps :math:`\Delta\beta = (Z^\top W Z + P)^{-1}(Z^\top s - P\beta)`, with
:math:`s = \partial\ell/\partial\eta` and :math:`W = -\partial^2\ell/\partial\eta^2`
(for the canonical links IRLS), halving each step until :math:`Q` does not fall.

Per family, :math:`\ell_i(\eta_i)`; :math:`s_i`; :math:`W_i`:

* ``bernoulli``: :math:`y\eta - \log(1 + e^\eta)`; :math:`y-\mu`; :math:`\mu(1-\mu)`;
* ``poisson``: :math:`y\eta - e^\eta - \log y!`; :math:`y-\mu`; :math:`\mu`;
* ``negative_binomial`` (below, :math:`r = 1/\alpha`): :math:`r(y-\mu)/(r+\mu)`;
  :math:`r\mu(y+r)/(r+\mu)^2`.

The negative binomial (NB2, statsmodels' ``NegativeBinomial``; :math:`\mathrm{Var}\,y =
\mu + \alpha\mu^2`) has

.. math::

    \ell_i = \log\Gamma(y+r) - \log\Gamma(r) - \log y! + r\log\frac{r}{r+\mu}
        + y\log\frac{\mu}{r+\mu},

and its dispersion :math:`t = \log\alpha` is estimated too, by Newton steps on the profile
:math:`g(t) = \max_\beta Q(\beta, t)`, with :math:`g'(t) = \partial_t\ell` (envelope theorem)
and :math:`g''(t) = \partial_t^2\ell + v^\top H^{-1} v`, :math:`v = Z^\top\partial_\eta\partial_t
\ell`, :math:`H = Z^\top W Z + P`. The negative Hessian of the joint :math:`(\beta, t)` then has
:math:`\log\det = \log\det H + \log(-g'')`, which the Laplace approximation uses. :math:`t` is
kept in ``[T_MIN, T_MAX]``: at ``T_MIN`` (:math:`\alpha \approx 6\cdot 10^{-6}`) the model is a
Poisson one for all practical purposes (equidispersed data, where the MLE of α is 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln, polygamma, psi

from l0bayes.validation import check_choice

GLM_FAMILIES = ("bernoulli", "poisson", "negative_binomial")
_NEWTON_TOL = 1e-6  # converged when the Newton step moves no linear predictor further
_NEWTON_FLOOR = 1e-3  # ... or when the objective stalls at a step this small (round-off floor)
_NEWTON_MAX_ITER = 100
_NEWTON_STALL = 5  # stalled iterations with a larger step: a direction of recession
#: Bounds of :math:`t = \log\alpha` of the negative binomial.
T_MIN, T_MAX = -12.0, 8.0
_T_TOL = 1e-9


class NoMLEError(ValueError):
    """The MLE does not exist: the coefficients diverge along a direction of recession
    ((quasi-)separated logistic data; counts that are all zero where a column is non-zero)."""


def _expit(eta: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(eta))
    return np.where(eta >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e))


class _Bernoulli:
    def loglik(self, eta, y) -> float:
        return float(np.sum(y * eta - np.maximum(eta, 0.0) - np.log1p(np.exp(-np.abs(eta)))))

    def derivatives(self, eta, y):
        mu = _expit(eta)
        return y - mu, mu * (1.0 - mu)

    def start(self, y, offset) -> float:
        ybar = y.mean()
        return math.log(ybar / (1.0 - ybar))


class _Poisson:
    def loglik(self, eta, y) -> float:
        return float(np.sum(y * eta - np.exp(eta) - gammaln(y + 1.0)))

    def derivatives(self, eta, y):
        mu = np.exp(eta)
        return y - mu, mu

    def start(self, y, offset) -> float:
        return math.log(y.sum() / np.exp(offset).sum())


@dataclass(frozen=True)
class _NegativeBinomial:
    t: float  # log alpha

    @property
    def r(self) -> float:
        return math.exp(-self.t)

    def _log_r_mu(self, eta):
        return np.logaddexp(eta, -self.t)  # log(r + mu)

    def loglik(self, eta, y) -> float:
        r, log_rmu = self.r, self._log_r_mu(eta)
        terms = gammaln(y + r) - gammaln(r) - gammaln(y + 1.0)
        return float(np.sum(terms + r * (-self.t - log_rmu) + y * (eta - log_rmu)))

    def derivatives(self, eta, y):
        r, mu = self.r, np.exp(eta)
        return r * (y - mu) / (r + mu), r * mu * (y + r) / (r + mu) ** 2

    def t_derivatives(self, eta, y):
        r""":math:`\partial_t\ell`, :math:`\partial_t^2\ell` (sums) and
        :math:`\partial_\eta\partial_t\ell_i` (per row), :math:`t = \log\alpha = -\log r`."""
        r, mu = self.r, np.exp(eta)
        rmu = r + mu
        d_r = psi(y + r) - psi(r) - np.log1p(mu / r) + (mu - y) / rmu
        d_rr = polygamma(1, y + r) - polygamma(1, r) + 1.0 / r - 1.0 / rmu - (mu - y) / rmu**2
        d_eta_r = (y - mu) * mu / rmu**2
        return float(-r * d_r.sum()), float((r * d_r + r * r * d_rr).sum()), -r * d_eta_r

    def start(self, y, offset) -> float:
        return _Poisson().start(y, offset)


def family_of(name: str, t: float = 0.0):
    """The likelihood object of a family (for the negative binomial at :math:`\\log\\alpha=t`)."""
    check_choice("family", name, GLM_FAMILIES)
    if name == "bernoulli":
        return _Bernoulli()
    return _Poisson() if name == "poisson" else _NegativeBinomial(t)


@dataclass(frozen=True)
class GLMFit:
    r"""A fitted GLM: ``beta`` (intercept first), ``eta`` (offset included), ``loglik``
    (:math:`\ell`, unpenalised), ``objective`` (:math:`Q`), ``logdet`` (:math:`\log\det` of the
    negative Hessian of :math:`Q` in all fitted parameters, :math:`\log\alpha` included), and
    ``alpha`` (NB2 dispersion; NaN for the other families)."""

    beta: np.ndarray
    eta: np.ndarray
    loglik: float
    objective: float
    logdet: float
    alpha: float = math.nan


def _objective(family, eta, y, beta, precision) -> float:
    return family.loglik(eta, y) - 0.5 * float(np.sum(precision * beta * beta))


def _information(Z, weight, precision) -> np.ndarray:
    return Z.T @ (weight[:, None] * Z) + np.diag(precision)


def _solve(H: np.ndarray, g: np.ndarray) -> np.ndarray:
    try:
        chol = np.linalg.cholesky(H)
        return np.linalg.solve(chol.T, np.linalg.solve(chol, g))
    except np.linalg.LinAlgError:  # weights underflowed: minimum-norm step
        return np.linalg.lstsq(H, g, rcond=None)[0]


def _no_mle_message(family, step: np.ndarray, Z: np.ndarray, columns) -> str:
    effect = np.abs(step[1:]) * Z[:, 1:].std(axis=0)
    diverging = columns[effect > 1e-3 * effect.max()] if effect.size and effect.max() > 0 else []
    if isinstance(family, _Bernoulli):
        return (
            f"the logistic-regression MLE does not exist for the support with columns"
            f" {list(map(int, columns))}: the data are (quasi-)perfectly separated and the"
            f" coefficients of columns {list(map(int, diverging))} diverge (fitted probabilities"
            " tend to 0/1); drop or merge those columns, or use a penalised fit"
        )
    return (
        f"the count-regression MLE does not exist for the support with columns"
        f" {list(map(int, columns))}: the coefficients of columns {list(map(int, diverging))}"
        " diverge (fitted means tend to 0 where every count is 0); drop or merge those columns"
    )


def _newton(Z, y, offset, family, precision, beta, columns) -> tuple[np.ndarray, np.ndarray]:
    """Maximise :math:`Q` from ``beta`` (module docstring); returns ``beta`` and ``eta``."""
    eta = offset + Z @ beta
    value = _objective(family, eta, y, beta, precision)
    stalled = 0
    for _ in range(_NEWTON_MAX_ITER):
        score, weight = family.derivatives(eta, y)
        step = _solve(_information(Z, weight, precision), Z.T @ score - precision * beta)
        delta = Z @ step
        size = float(np.max(np.abs(delta))) if delta.size else 0.0
        if size <= _NEWTON_TOL:
            new = _objective(family, eta + delta, y, beta + step, precision)
            return (beta + step, eta + delta) if new >= value else (beta, eta)
        t, gained = 1.0, False
        while t > 1e-10:
            new = _objective(family, eta + t * delta, y, beta + t * step, precision)
            if new >= value:
                gained = new - value > 1e-12 * (1.0 + abs(value))
                beta, eta, value = beta + t * step, eta + t * delta, new
                break
            t *= 0.5
        if not gained and size <= _NEWTON_FLOOR:
            return beta, eta
        stalled = 0 if gained else stalled + 1
        if stalled >= _NEWTON_STALL:
            break
    raise NoMLEError(_no_mle_message(family, step, Z, columns))


def fit_glm(
    Xs: np.ndarray,
    y: np.ndarray,
    family: str,
    offset: np.ndarray | None = None,
    precision: np.ndarray | float = 0.0,
    columns: np.ndarray | None = None,
) -> GLMFit:
    r"""Fit the GLM of ``y`` on :math:`[\mathbf 1, X_s]` (module docstring).

    :param Xs: (n, m) columns with full column rank (with the intercept).
    :param family: ``"bernoulli"``, ``"poisson"`` or ``"negative_binomial"``.
    :param offset: known offset :math:`o` (n,), e.g. log exposure; ``None``: 0.
    :param precision: ridge precision of each slope (scalar or (m,)); the intercept (and
        :math:`\log\alpha`) are never penalised. 0: the MLE.
    :param columns: column ids for the error message.
    :raises NoMLEError: when the unpenalised MLE does not exist.
    """
    n, m = Xs.shape
    Z = np.column_stack([np.ones(n), Xs])
    offset = np.zeros(n) if offset is None else offset
    rho = np.concatenate([[0.0], np.broadcast_to(np.asarray(precision, float), (m,))])
    columns = np.arange(m) if columns is None else columns
    lik = family_of("poisson" if family == "negative_binomial" else family)
    beta = np.zeros(m + 1)
    beta[0] = lik.start(y, offset)
    beta, eta = _newton(Z, y, offset, lik, rho, beta, columns)
    if family != "negative_binomial":
        value = _objective(lik, eta, y, beta, rho)
        H = _information(Z, lik.derivatives(eta, y)[1], rho)
        return GLMFit(beta, eta, lik.loglik(eta, y), value, _logdet(H))
    return _fit_negative_binomial(Z, y, offset, rho, beta, eta, columns)


def _logdet(H: np.ndarray) -> float:
    sign, value = np.linalg.slogdet(H)
    return float(value) if sign > 0 else math.inf


def _profile(Z, y, offset, rho, beta, t, columns):
    """:math:`g(t)`, :math:`g'(t)`, :math:`g''(t)`, the fit at t and :math:`\\log\\det H`."""
    lik = _NegativeBinomial(t)
    beta, eta = _newton(Z, y, offset, lik, rho, beta, columns)
    d_t, d_tt, d_eta_t = lik.t_derivatives(eta, y)
    H = _information(Z, lik.derivatives(eta, y)[1], rho)
    v = Z.T @ d_eta_t
    curvature = d_tt + float(v @ _solve(H, v))
    return _objective(lik, eta, y, beta, rho), d_t, curvature, beta, eta, H


def _fit_negative_binomial(Z, y, offset, rho, beta, eta, columns) -> GLMFit:
    """Newton on the profile :math:`g(t)` from the Poisson fit and the moment estimate of
    :math:`\\alpha` (module docstring)."""
    mu = np.exp(eta)
    moment = float(np.sum((y - mu) ** 2 - y) / np.sum(mu**2))
    t = float(np.clip(math.log(max(moment, 1e-3)), T_MIN, T_MAX))
    g, d_t, d_tt, beta, eta, H = _profile(Z, y, offset, rho, beta, t, columns)
    for _ in range(_NEWTON_MAX_ITER):
        step = -d_t / d_tt if d_tt < 0 else math.copysign(1.0, d_t)
        step = float(np.clip(step, -2.0, 2.0))
        new_t = float(np.clip(t + step, T_MIN, T_MAX))
        if abs(new_t - t) <= _T_TOL:
            break
        scale = 1.0
        while scale > 1e-8:
            trial_t = float(np.clip(t + scale * step, T_MIN, T_MAX))
            trial = _profile(Z, y, offset, rho, beta, trial_t, columns)
            if trial[0] >= g - 1e-12 * (1.0 + abs(g)):
                break
            scale *= 0.5
        if scale <= 1e-8:
            break
        moved = abs(trial_t - t)
        t, (g, d_t, d_tt, beta, eta, H) = trial_t, trial
        if moved <= _T_TOL or abs(d_t) <= 1e-10 * (1.0 + abs(g)):
            break
    lik = _NegativeBinomial(t)
    at_bound = t <= T_MIN or t >= T_MAX
    logdet = _logdet(H) + (0.0 if at_bound else math.log(max(-d_tt, 1e-300)))
    return GLMFit(beta, eta, lik.loglik(eta, y), g, logdet, math.exp(t))


__all__ = [
    "GLMFit",
    "GLM_FAMILIES",
    "NoMLEError",
    "T_MAX",
    "T_MIN",
    "family_of",
    "fit_glm",
]
