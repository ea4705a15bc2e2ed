r"""Draws from the posterior a fitted :class:`~l0bayes.L0Regression` reports: a model
:math:`\gamma`, then the coefficients given the model.

**Models.** The distribution over supports that the fit's numbers come from:

* ``penalty="bayes"``: the posterior :math:`p(\gamma \mid y) \propto p(\gamma)\, p(y \mid
  \gamma)` under the declared prior, with the marginal likelihoods the PIP correction used
  (conjugate for the Gaussian family, :mod:`~l0bayes.linear_model.marginal_likelihood`; the
  raw-unit slab with σ at ``noise_scale_``, :mod:`~l0bayes.linear_model.exact`; Laplace for the
  other families, :mod:`~l0bayes.linear_model.laplace`), drawn exactly from the enumeration of
  all :math:`2^G` models when :math:`G \le` :data:`ENUMERATION_LIMIT` gates, else by
  :func:`gibbs_models` (systematic-scan Gibbs over the gates, started at the median-probability
  model, as the PIPs' chains); with ``correction="none"`` the guide's own gates;
* an information criterion: the supports of ``ic_weights_`` with their weights (Akaike
  weights, Raftery's BIC approximation, :mod:`~l0bayes.linear_model.ic_weights`); where the
  fit has none (the GLM families), the selected support.

So the frequency of :math:`\gamma_j = 1` among the draws estimates ``inclusion_probs_``
(``ic_weights_.inclusion``) with Monte Carlo error :math:`\sqrt{\pi_j(1-\pi_j)/S}`.

**Coefficients given the model** (X centred, :math:`k = |\gamma|`, flat intercept):

* standardised slab (σ integrated, columns :math:`z_j = x_j / s_j`, :math:`z^\top z = n`):
  :math:`\sigma^2 \mid y \sim \mathrm{IG}(\tfrac{n-1}2, \tfrac12(y^\top y - y^\top Z A^{-1}
  Z^\top y))`, :math:`\beta_z \mid \sigma^2, y \sim N(A^{-1} Z^\top y, \sigma^2 A^{-1})`,
  :math:`A = Z^\top Z + s^{-2} I`;
* g-prior (:math:`g = n`; hyper-g and hyper-g/n: g drawn from :math:`p(g \mid \gamma, y)
  \propto p(g)(1 + g)^{(n-1-k)/2}(1 + g(1 - R^2))^{-(n-1)/2}` on a grid of
  :math:`\log g`): :math:`\sigma^2 \mid g, y \sim \mathrm{IG}(\tfrac{n-1}2, \tfrac12 y^\top
  y(1 - \tfrac g{1+g}R^2))`, :math:`\beta \mid \sigma^2, g, y \sim N(\tfrac g{1+g}\hat\beta,
  \tfrac g{1+g}\sigma^2 (X^\top X)^{-1})`;
* raw slab :math:`N(0, s^2)` with σ known: :math:`\beta \mid y \sim N(\Sigma X^\top
  y/\sigma^2, \Sigma)`, :math:`\Sigma = (X^\top X/\sigma^2 + s^{-2} I)^{-1}`;
* information criteria (flat prior on :math:`\beta` and :math:`\log\sigma`, the prior behind
  BIC's approximation): :math:`\sigma^2 \mid y \sim \mathrm{IG}(\tfrac{n-1-k}2,
  \tfrac12\mathrm{RSS})`, :math:`\beta \mid \sigma^2, y \sim N(\hat\beta, \sigma^2 (X^\top
  X)^{-1})`;
* other families: the Laplace approximation :math:`N(\hat\theta, H^{-1})` at the mode of
  the model's (slab-penalised, for ``"bayes"``) log-likelihood, intercept included, with
  :math:`H` its negative Hessian (the negative binomial's dispersion at its estimate).

The Gaussian intercept is :math:`b \mid \beta, \sigma^2, y \sim N(\bar y - \bar x^\top\beta,
\sigma^2/n)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logsumexp

from l0bayes.linear_model.exact import exact_posterior, score_supports
from l0bayes.linear_model.glm import GLM_FAMILIES, family_of, fit_glm
from l0bayes.linear_model.laplace import LaplaceScorer, laplace_enumerate
from l0bayes.linear_model.marginal_likelihood import HyperGPrior, SufficientStats
from l0bayes.linear_model.model_size import check_prior_inclusion, log_prior_by_size
from l0bayes.linear_model.model_space import (
    ConjugateScorer,
    GroupedScorer,
    enumerate_models,
)
from l0bayes.linear_model.selection import check_groups
from l0bayes.validation import check_count

#: Largest number of gates whose models are drawn from the exact enumeration.
ENUMERATION_LIMIT = 16
#: Laplace scores cost a GLM fit each: enumerate at most this many gates.
LAPLACE_ENUMERATION_LIMIT = 12
#: Largest p whose models are enumerated under the raw-unit slab (as the fit's correction).
RAW_ENUMERATION_LIMIT = 20
#: Gibbs sweeps discarded before the first kept draw.
BURN_IN_SWEEPS = 20
_LOG_G_GRID = np.linspace(-20.0, 40.0, 6001)  # log g nodes of the hyper-g posterior


@dataclass(frozen=True)
class PosteriorDraws:
    """``num_samples`` draws: ``gate`` (0/1 per feature), ``coef`` (X's scale), ``intercept``,
    ``noise_scale`` (Gaussian; None where σ is fixed), ``dispersion`` (the negative
    binomial's α of each draw's model, at its estimate; else None) and ``source``
    (``"enumeration"``, ``"gibbs"``, ``"ic_weights"`` or ``"selected"``: where the models came
    from)."""

    gate: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    noise_scale: np.ndarray | None
    dispersion: np.ndarray | None
    source: str


class _RawScorer:
    """Log posteriors of models under the raw-unit slab with σ known (``prior="raw"``), from
    :func:`~l0bayes.linear_model.exact.score_supports`."""

    def __init__(self, X, y, noise_scale, slab_scale, log_size) -> None:
        self.X, self.y, self.log_size, self.p = X, y, log_size, X.shape[1]
        self.noise_scale, self.slab_scale = noise_scale, slab_scale

    def log_posterior(self, inside: np.ndarray) -> float:
        loglik, _ = score_supports(
            self.X, self.y, inside[None], noise_scale=self.noise_scale, slab_scale=self.slab_scale
        )
        return float(loglik[0] + self.log_size[int(inside.sum())])


def gibbs_models(scorer, start: np.ndarray, num_samples: int, seed: int = 0) -> np.ndarray:
    r"""``num_samples`` models (bool ``(S, G)``) from :math:`p(\gamma \mid y) \propto
    \exp(\text{scorer.log\_posterior}(\gamma))` by systematic-scan Gibbs: each sweep visits
    the gates in a random order and draws :math:`\gamma_j` from
    :math:`P(\gamma_j = 1 \mid \gamma_{-j}, y) = \sigma(\log p(\gamma^{j=1}) - \log
    p(\gamma^{j=0}))`; one draw per sweep after :data:`BURN_IN_SWEEPS` sweeps from ``start``."""
    rng = np.random.default_rng(seed)
    inside = np.asarray(start, dtype=bool).copy()
    current = scorer.log_posterior(inside)
    out = np.empty((num_samples, inside.size), dtype=bool)
    for sweep in range(BURN_IN_SWEEPS + num_samples):
        for j in rng.permutation(inside.size):
            flipped = inside.copy()
            flipped[j] = ~flipped[j]
            other = scorer.log_posterior(flipped)
            on, off = (current, other) if inside[j] else (other, current)
            with np.errstate(invalid="ignore"):
                p_on = expit(on - off)
            if rng.random() < (p_on if np.isfinite(p_on) else float(inside[j])):
                if not inside[j]:
                    inside, current = flipped, other
            elif inside[j]:
                inside, current = flipped, other
        if sweep >= BURN_IN_SWEEPS:
            out[sweep - BURN_IN_SWEEPS] = inside
    return out


def _from_enumeration(log_posterior: np.ndarray, num_samples: int, rng) -> np.ndarray:
    """Models drawn from an enumeration indexed by the bitmask :math:`\\sum_j \\gamma_j 2^j`."""
    G = int(round(math.log2(len(log_posterior))))
    probs = np.exp(log_posterior - logsumexp(log_posterior))
    bits = rng.choice(len(probs), size=num_samples, p=probs / probs.sum())
    return ((bits[:, None] >> np.arange(G)) & 1).astype(bool)


# --------------------------------------------------------------------------- the models
def _bayes_models(est, X, y, start, groups, num_samples, seed) -> tuple[np.ndarray, str]:
    """Gate models ``(S, G)`` of a ``penalty="bayes"`` fit on the columns it used (module
    docstring); ``start`` is the median-probability model, where Gibbs starts."""
    rng = np.random.default_rng(seed)
    G = X.shape[1] if groups is None else int(groups.max()) + 1
    conjugate, pi = est.model_prior(G)
    log_size = log_prior_by_size(check_prior_inclusion(pi), G)
    if est.family != "gaussian":
        scorer = LaplaceScorer(X, y, est.family, float(est.slab_scale), pi, None, groups)
        if G <= LAPLACE_ENUMERATION_LIMIT:
            log_posterior = laplace_enumerate(scorer).log_posterior
            return _from_enumeration(log_posterior, num_samples, rng), "enumeration"
    elif conjugate is None:  # prior="raw", σ at its estimate
        if G <= RAW_ENUMERATION_LIMIT and groups is None:
            log_posterior = exact_posterior(
                X, y, noise_scale=est.noise_scale_, slab_scale=est.slab_scale, prior_inclusion=pi
            ).log_model_probs
            return _from_enumeration(log_posterior, num_samples, rng), "enumeration"
        scorer = _RawScorer(X, y, est.noise_scale_, est.slab_scale, log_size)
    else:
        stats = SufficientStats.from_data(X, y)
        if groups is None:
            scorer = ConjugateScorer(stats, conjugate, log_size)
        else:
            scorer = GroupedScorer(stats, conjugate, log_size, groups)
        if G <= ENUMERATION_LIMIT:
            log_posterior = enumerate_models(scorer).log_posterior
            return _from_enumeration(log_posterior, num_samples, rng), "enumeration"
    return gibbs_models(scorer, start, num_samples, seed), "gibbs"


# ---------------------------------------------------------------------- the coefficients
def _inverse_gamma(shape: float, scale: np.ndarray, rng) -> np.ndarray:
    return scale / rng.gamma(shape, 1.0, size=np.shape(scale))


def _gaussian_given_model(est, X, y, cols, count, rng) -> tuple[np.ndarray, np.ndarray]:
    """``count`` draws of (coefficients on ``cols``, σ) for one Gaussian model."""
    n = len(y)
    Xc, yc = X[:, cols] - X[:, cols].mean(axis=0), y - y.mean()
    yty, k = float(yc @ yc), cols.size
    if est.penalty != "bayes" or est.prior in ("g", "hyper-g", "hyper-g/n"):
        gram = Xc.T @ Xc
        beta_hat = np.linalg.solve(gram, Xc.T @ yc) if k else np.zeros(0)
        rss = yty - float(Xc.T @ yc @ beta_hat) if k else yty
        if est.penalty != "bayes":
            sigma2 = _inverse_gamma(0.5 * (n - 1 - k), np.full(count, 0.5 * rss), rng)
            shrink = np.ones(count)
        else:
            g = _draw_g(est.prior, n, k, 1.0 - rss / yty, count, rng)
            shrink = g / (1.0 + g)
            sigma2 = _inverse_gamma(0.5 * (n - 1), 0.5 * (yty - shrink * (yty - rss)), rng)
        if not k:
            return np.zeros((count, 0)), np.sqrt(sigma2)
        L = np.linalg.cholesky(np.linalg.inv(gram))
        noise = rng.standard_normal((count, k)) @ L.T
        coef = shrink[:, None] * beta_hat + np.sqrt(shrink * sigma2)[:, None] * noise
        return coef, np.sqrt(sigma2)
    if est.prior == "raw":
        sigma = float(est.noise_scale_)
        precision = Xc.T @ Xc / sigma**2 + np.eye(k) / float(est.slab_scale) ** 2
        cov = np.linalg.inv(precision) if k else np.zeros((0, 0))
        mean = cov @ Xc.T @ yc / sigma**2
        draws = rng.multivariate_normal(mean, cov, size=count) if k else np.zeros((count, 0))
        return draws, np.full(count, sigma)
    scale = np.sqrt(np.mean(Xc**2, axis=0))  # standardised slab: z = x / s, z'z = n
    Z = Xc / scale
    A = Z.T @ Z + np.eye(k) / float(est.slab_scale) ** 2
    A_inv = np.linalg.inv(A) if k else np.zeros((0, 0))
    mean = A_inv @ Z.T @ yc
    sigma2 = _inverse_gamma(0.5 * (n - 1), np.full(count, 0.5 * (yty - yc @ Z @ mean)), rng)
    if not k:
        return np.zeros((count, 0)), np.sqrt(sigma2)
    noise = rng.standard_normal((count, k)) @ np.linalg.cholesky(A_inv).T
    return (mean + np.sqrt(sigma2)[:, None] * noise) / scale, np.sqrt(sigma2)


def _draw_g(prior: str, n: int, k: int, r2: float, count: int, rng) -> np.ndarray:
    """g of the g-prior (n), or drawn from its posterior under hyper-g (a = 3) or hyper-g/n,
    by inverse CDF on a grid of log g."""
    if prior == "g":
        return np.full(count, float(n))
    tau = _LOG_G_GRID
    g = np.exp(tau)
    scale = float(n) if prior == "hyper-g/n" else 1.0
    a = HyperGPrior().a
    log_density = (
        -0.5 * a * np.log1p(g / scale)
        + 0.5 * (n - 1 - k) * np.log1p(g)
        - 0.5 * (n - 1) * np.log1p(g * (1.0 - r2))
        + tau  # the Jacobian of g = e^tau
    )
    weights = np.exp(log_density - log_density.max())
    cdf = np.cumsum(weights)
    return np.exp(np.interp(rng.random(count) * cdf[-1], cdf, tau))


def _glm_given_model(est, X, y, cols, count, rng) -> tuple[np.ndarray, np.ndarray, float]:
    """``count`` draws of (intercept, coefficients on ``cols``) from the Laplace
    approximation at the mode (module docstring), on X's scale, and the model's α (NaN but
    for the negative binomial)."""
    mean, scale = X[:, cols].mean(axis=0), X[:, cols].std(axis=0)
    Xs = (X[:, cols] - mean) / scale
    precision = 1.0 / float(est.slab_scale) ** 2 if est.penalty == "bayes" else 0.0
    fit = fit_glm(Xs, y, est.family, None, precision, cols)
    t = math.log(fit.alpha) if est.family == "negative_binomial" else 0.0
    weight = family_of(est.family, t).derivatives(fit.eta, y)[1]
    Z = np.column_stack([np.ones(len(y)), Xs])
    H = Z.T @ (weight[:, None] * Z) + np.diag(np.r_[0.0, np.full(cols.size, precision)])
    theta = rng.multivariate_normal(fit.beta, np.linalg.inv(H), size=count)
    coef = theta[:, 1:] / scale
    return theta[:, 0] - coef @ mean, coef, fit.alpha


# ------------------------------------------------------------------------------ public
def posterior_draws(
    est, X: np.ndarray, y: np.ndarray, num_samples: int, seed: int = 0
) -> PosteriorDraws:
    """Draws of the fitted ``est`` from the posterior it reports (module docstring), for the
    data ``X, y`` it was fitted to.

    :returns: a :class:`PosteriorDraws`.
    """
    num_samples = check_count("num_samples", num_samples)
    rng = np.random.default_rng(seed)
    p = X.shape[1]
    keep = np.ptp(X, axis=0) > 0
    groups = None if est.groups is None else check_groups(est.groups, p)
    if est.penalty == "bayes":
        start = est.selected_[keep] if groups is None else est.group_inclusion_probs_ > 0.5
        models, source = _bayes_models(est, X[:, keep], y, start, groups, num_samples, seed)
        columns = np.zeros((num_samples, p), dtype=bool)
        columns[:, keep] = models if groups is None else models[:, groups]
    elif hasattr(est, "ic_weights_"):
        weights = est.ic_weights_
        index = rng.choice(len(weights.weights), size=num_samples, p=weights.weights)
        columns, source = weights.supports[index], "ic_weights"
    else:
        columns, source = np.repeat(est.selected_[None], num_samples, axis=0), "selected"
    coef = np.zeros((num_samples, p))
    intercept, sigma, alpha = np.empty(num_samples), np.empty(num_samples), np.empty(num_samples)
    for model in np.unique(columns, axis=0):
        rows = np.flatnonzero((columns == model).all(axis=1))
        cols = np.flatnonzero(model)
        if est.family in GLM_FAMILIES:
            intercept[rows], coef[np.ix_(rows, cols)], alpha[rows] = _glm_given_model(
                est, X, y, cols, rows.size, rng
            )
            continue
        beta, sigma[rows] = _gaussian_given_model(est, X, y, cols, rows.size, rng)
        coef[np.ix_(rows, cols)] = beta
        centre = y.mean() - beta @ X[:, cols].mean(axis=0)
        intercept[rows] = centre + sigma[rows] / math.sqrt(len(y)) * rng.standard_normal(rows.size)
    fixed = est.family in GLM_FAMILIES or (est.penalty == "bayes" and est.prior == "raw")
    return PosteriorDraws(
        gate=columns.astype(float),
        coef=coef,
        intercept=intercept,
        noise_scale=None if fixed else sigma,
        dispersion=alpha if est.family == "negative_binomial" else None,
        source=source,
    )


__all__ = [
    "BURN_IN_SWEEPS",
    "ENUMERATION_LIMIT",
    "LAPLACE_ENUMERATION_LIMIT",
    "RAW_ENUMERATION_LIMIT",
    "PosteriorDraws",
    "gibbs_models",
    "posterior_draws",
]
