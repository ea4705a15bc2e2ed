r"""Unit-free conjugate marginal likelihoods of linear models, and exact enumeration over them.

Model :math:`\gamma \in \{0, 1\}^p` with :math:`k = |\gamma|` columns:

.. math::

    y = b \mathbf 1 + X_\gamma \beta_\gamma + \varepsilon, \qquad
    \varepsilon \sim N(0, \sigma^2 I), \qquad p(b) \propto 1, \qquad p(\sigma^2) \propto 1/\sigma^2.

The flat intercept integrates out by centring (:mod:`l0bayes.exact`), leaving :math:`n - 1`
degrees of freedom. With the Jeffreys prior on :math:`\sigma^2` every marginal likelihood is
defined up to one constant shared by all models; we fix it by giving the null model
:math:`\log p(y \mid \emptyset) = 0`, so ``log_marginal`` is the log Bayes factor
:math:`\log \mathrm{BF}(\gamma : \emptyset)` (Liang, Paulo, Molina, Clyde & Berger 2008, JASA).

Everything depends on the data only through the sufficient statistics :math:`n`, the centred
:math:`X^\top X`, :math:`X^\top y` and :math:`y^\top y` (:class:`SufficientStats`), rescaled to the
correlation matrix :math:`R = D^{-1} X^\top X D^{-1}` (:math:`D = \mathrm{diag}(X^\top X)^{1/2}`)
and :math:`r = D^{-1} X^\top y / \sqrt{y^\top y}`. Every prior here is invariant to rescaling a
column or :math:`y`, and the cost of a model is independent of :math:`n`.

For a support :math:`\gamma` and a ridge :math:`\rho \ge 0` (0 for the g-priors), one Cholesky
factorisation of the bordered matrix

.. math::

    \begin{pmatrix} R_\gamma + \rho I & r_\gamma \\ r_\gamma^\top & 1 \end{pmatrix}

gives :math:`\log\det(R_\gamma + \rho I)` (its first :math:`k` pivots) and the residual
:math:`e_\gamma = 1 - r_\gamma^\top (R_\gamma + \rho I)^{-1} r_\gamma` (its last pivot); for
:math:`\rho = 0`, :math:`e_\gamma = 1 - R^2_\gamma`.

**The model space.** Every prior here compares the supports with :math:`k \le n - 2` columns
(:func:`max_model_size`), as BAS does: the g-priors are proper only there (:math:`n - 1 - k \ge
1` residual degrees of freedom after the intercept), and the standardised slab, proper for
every support, is restricted to the same models so that the priors answer the same question
(with :math:`p > n - 2` most models are larger and fit the data exactly). A support with more
columns gets ``log_marginal = -inf``: posterior probability zero, never NaN.  The g-priors
also need :math:`X_\gamma` of full column rank: a support whose correlation matrix has a
Cholesky pivot below :data:`RANK_TOL` (a column with :math:`R^2 > 1 - 10^{-10}` on the columns
before it in index order; exact collinearity and constant columns always qualify) gets
``-inf`` too.  The standardised slab needs no rank condition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import betainc, betaln, expit, logsumexp

from l0bayes.linear_model.model_size import PriorInclusion, check_prior_inclusion, log_prior_by_size
from l0bayes.linear_model.stats import GaussianStats
from l0bayes.model_space.scorer import BatchScorer, Enumeration, by_size, enumerate_models
from l0bayes.validation import check_count, check_positive

RANK_TOL = 1e-10
"""Smallest admissible Cholesky pivot of a support's correlation matrix (g-priors)."""
RESIDUAL_FLOOR = 1e-14
"""Floor on :math:`1 - R^2`: a perfect fit would otherwise have an infinite Bayes factor."""
_QUAD_NODES = 97  # trapezoid nodes over the window of the 1-D integral over log g
_QUAD_DROP = 40.0  # the window ends where the integrand is this many nats below its peak
_FLAT_WIDTH = 5.0  # a mode wider than this (in log g) is a plateau: integrate on a fixed grid
_PLATEAU_NODES = 4001


# ------------------------------------------------------------------- sufficient statistics
SufficientStats = GaussianStats
r"""The centred sufficient statistics :math:`n, X_c^\top X_c, X_c^\top y_c, y_c^\top y_c`:
:class:`~l0bayes.linear_model.stats.GaussianStats`, the one accumulator of the regression half
(``SufficientStats.from_data(X, y)`` checks the data, ``SufficientStats.of(stats)`` checks
statistics accumulated from chunks); the priors read its correlation views ``corr`` and ``r``."""


# --------------------------------------------------------------------------------- priors
def _log1p_exp(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


class _Prior:
    """What every prior shares: the ridge, the rank condition and :meth:`log_marginal`."""

    full_rank = True

    def ridge(self, n: int) -> float:
        return 0.0

    def log_bayes_factor(
        self, resid: np.ndarray, logdet: np.ndarray, k: np.ndarray, n: int
    ) -> np.ndarray:
        raise NotImplementedError

    def log_marginal(self, stats: SufficientStats, support: np.ndarray) -> float | np.ndarray:
        r""":math:`\log \mathrm{BF}(\gamma : \emptyset)` of one support (a sorted index array or a
        bool mask ``(p,)``) or of many (a bool matrix ``(m, p)``); ``-inf`` if inadmissible."""
        support = np.asarray(support)
        if support.dtype != bool:
            mask = np.zeros(stats.p, dtype=bool)
            mask[support.astype(int)] = True
            support = mask
        out = log_marginals(stats, self, np.atleast_2d(support))
        return float(out[0]) if support.ndim == 1 else out


@dataclass(frozen=True)
class GPrior(_Prior):
    r"""Zellner's g-prior :math:`\beta_\gamma \mid \sigma^2 \sim N(0, g\sigma^2(X_\gamma^\top
    X_\gamma)^{-1})`; ``g=None`` is the unit-information prior :math:`g = n`.

    .. math::

        \log \mathrm{BF}(\gamma : \emptyset) = \tfrac{n - 1 - k}{2} \log(1 + g)
            - \tfrac{n - 1}{2} \log\!\left(1 + g (1 - R^2_\gamma)\right).

    :param g: the prior's scale, > 0, or None for :math:`g = n`.
    """

    g: float | None = None

    def log_bayes_factor(self, resid, logdet, k, n):
        g = float(n if self.g is None else check_positive("g", self.g))
        return 0.5 * (n - 1 - k) * math.log1p(g) - 0.5 * (n - 1) * np.log1p(g * resid)


@dataclass(frozen=True)
class HyperGPrior(_Prior):
    r"""Hyper-g, :math:`p(g) = \tfrac{a - 2}{2} (1 + g)^{-a/2}`, or, with ``per_n=True``,
    hyper-g/n, :math:`p(g) = \tfrac{a - 2}{2n} (1 + g/n)^{-a/2}`; the g-prior Bayes factor is
    averaged over :math:`p(g)`. Hyper-g has the closed form (Liang et al. 2008, eq. 17)

    .. math::

        \mathrm{BF}(\gamma : \emptyset) = \frac{a - 2}{k + a - 2}\,
            {}_2F_1\!\left(\tfrac{n - 1}{2}, 1; \tfrac{k + a}{2}; R^2_\gamma\right),

    evaluated in log space through :math:`{}_2F_1(b, 1; c; z) = (c - 1) z^{1 - c} (1 - z)^{c - b
    - 1} B(c - 1, b - c + 1)\, I_z(c - 1, b - c + 1)` (its power series for small :math:`z`).
    Hyper-g/n (and hyper-g where that fails) integrates over :math:`\tau = \log g` by the
    trapezoid rule in :math:`t` with :math:`\tau = \hat\tau + w \sinh t` around the mode
    :math:`\hat\tau` (:math:`w` its curvature width), on a window ending :math:`40` nats below
    the peak.

    :param a: the hyperparameter, :math:`2 < a \le 4`.
    :param per_n: hyper-g/n (consistent for model selection) instead of hyper-g.
    """

    a: float = 3.0
    per_n: bool = False

    def __post_init__(self) -> None:
        if not 2 < float(self.a) <= 4:
            raise ValueError(f"a must lie in (2, 4], got {self.a!r}")

    def log_bayes_factor(self, resid, logdet, k, n):
        resid, k = np.broadcast_arrays(np.asarray(resid, float), np.asarray(k, float))
        if self.per_n:
            return _log_bf_quadrature(resid, k, n, self.a, float(n))
        return _log_bf_hyper_g(resid, k, n, self.a)


@dataclass(frozen=True)
class StandardizedSlab(_Prior):
    r"""Independent slab :math:`\beta_j \mid \sigma^2 \sim N(0, \sigma^2 s^2)` on columns
    standardised to :math:`z_j^\top z_j = n` (unit population variance). With :math:`Z_\gamma^\top
    Z_\gamma = n R_\gamma` and :math:`\rho = 1/(n s^2)`,

    .. math::

        \log \mathrm{BF}(\gamma : \emptyset) = -\tfrac12 \log\det(I + s^2 Z_\gamma^\top Z_\gamma)
            - \tfrac{n - 1}{2} \log \frac{y^\top y - y^\top Z_\gamma (Z_\gamma^\top Z_\gamma
            + s^{-2} I)^{-1} Z_\gamma^\top y}{y^\top y}
        = -\tfrac12\left(k \log(n s^2) + \log\det(R_\gamma + \rho I)\right)
            - \tfrac{n - 1}{2} \log e_\gamma.

    :param scale: the slab's standard deviation :math:`s` in units of :math:`\sigma` per
        standard deviation of the column.
    """

    scale: float = 1.0
    full_rank = False

    def ridge(self, n: int) -> float:
        return 1.0 / (n * check_positive("scale", self.scale) ** 2)

    def log_bayes_factor(self, resid, logdet, k, n):
        log_ns2 = math.log(n * self.scale**2)
        return -0.5 * (k * log_ns2 + logdet) - 0.5 * (n - 1) * np.log(resid)


Prior = GPrior | HyperGPrior | StandardizedSlab


def _log_bf_hyper_g(resid: np.ndarray, k: np.ndarray, n: int, a: float) -> np.ndarray:
    """Hyper-g log Bayes factor from the series, the incomplete beta, else quadrature."""
    z, b, c = 1.0 - resid, 0.5 * (n - 1), 0.5 * (k + a)
    out = np.zeros_like(resid)
    small = np.maximum(b * z / c, z) <= 0.5
    series = small & (k > 0)
    if series.any():
        j = np.arange(64.0)
        terms = np.log((b + j) * z[series, None] / (c[series, None] + j))
        cum = np.concatenate([np.zeros((series.sum(), 1)), np.cumsum(terms, 1)[:, :-1]], 1)
        out[series] = logsumexp(cum, axis=1)
    alpha, beta = c - 1.0, b - c + 1.0
    rest = ~small & (beta > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_inc = np.log(betainc(alpha[rest], beta[rest], z[rest]))
        out[rest] = (
            np.log(alpha[rest])
            - alpha[rest] * np.log(z[rest])
            - beta[rest] * np.log(resid[rest])
            + betaln(alpha[rest], beta[rest])
            + log_inc
        )
    out += np.log(a - 2.0) - np.log(k + a - 2.0)
    bad = ~small & ~(np.isfinite(out) & (beta > 0))
    if bad.any():
        out[bad] = _log_bf_quadrature(resid[bad], k[bad], n, a, 1.0)
    return np.where(k == 0, 0.0, out)


def _log_integrand(tau, resid, k, n, a, scale_n):
    r""":math:`h(\tau)` and its first two derivatives, :math:`g = e^\tau`, without forming
    :math:`g` (a near-perfect fit puts the mode at a :math:`\tau` where :math:`e^\tau`
    overflows): :math:`\log(1 + g e) = \mathrm{softplus}(\tau + \log e)`, :math:`g / (1 + g)
    = \sigma(\tau)`, :math:`g e / (1 + g e) = \sigma(\tau + \log e)`, :math:`g / (m + g) =
    \sigma(\tau - \log m)`."""
    A, B = 0.5 * (n - 1 - k), 0.5 * (n - 1)
    log_resid, log_m = np.log(resid), math.log(scale_n)
    h = (
        A * _log1p_exp(tau)
        - B * _log1p_exp(tau + log_resid)
        + math.log((a - 2) / (2 * scale_n))
        - 0.5 * a * _log1p_exp(tau - log_m)
        + tau
    )
    u, v, w = expit(tau), expit(tau + log_resid), expit(tau - log_m)
    dh = A * u - B * v - 0.5 * a * w + 1.0
    d2h = A * u * (1 - u) - B * v * (1 - v) - 0.5 * a * w * (1 - w)
    return h, dh, d2h


def _log_bf_quadrature(resid, k, n, a, scale_n):
    r"""Mixture Bayes factor :math:`\log \int \mathrm{BF}_g\, p(g)\, dg` over
    :math:`p(g) = \tfrac{a - 2}{2 m}(1 + g/m)^{-a/2}` (:math:`m` = ``scale_n``) as

    .. math::

        \log \int e^{h(\tau)} d\tau, \qquad h(\tau) = \tfrac{n - 1 - k}{2}\log(1 + g)
            - \tfrac{n - 1}{2} \log(1 + g e) + \log p(g) + \tau, \quad g = e^\tau.
    """
    resid, k = np.asarray(resid, float), np.asarray(k, float)
    grid = np.linspace(-20.0, math.log(n) + 40.0, 61)
    h0 = _log_integrand(grid[None, :], resid[:, None], k[:, None], n, a, scale_n)[0]
    tau = grid[np.argmax(h0, axis=1)]
    for _ in range(30):  # Newton on h'(tau) = 0, steps clipped to 1
        _, dh, d2h = _log_integrand(tau, resid, k, n, a, scale_n)
        step = np.clip(np.where(d2h < 0, -dh / np.minimum(d2h, -1e-300), np.sign(dh)), -1, 1)
        tau = tau + step
        if np.abs(step).max() < 1e-9:
            break
    peak, _, d2h = _log_integrand(tau, resid, k, n, a, scale_n)
    width = 1.0 / np.sqrt(np.maximum(-d2h, 1e-6))
    out = np.empty(resid.shape)
    flat = width > _FLAT_WIDTH
    if flat.any():
        out[flat] = _log_bf_plateau(resid[flat], k[flat], n, a, scale_n)
    peaked = ~flat
    if peaked.any():
        args = resid[peaked], k[peaked], n, a, scale_n
        tau, width, peak = tau[peaked], width[peaked], peak[peaked]
        ends = [_reach(tau, width, side, peak, *args) for side in (-1.0, 1.0)]
        t = np.linspace(
            np.arcsinh(-ends[0] / width), np.arcsinh(ends[1] / width), _QUAD_NODES, axis=1
        )
        nodes = tau[:, None] + width[:, None] * np.sinh(t)
        h = _log_integrand(nodes, args[0][:, None], args[1][:, None], n, a, scale_n)[0]
        weights = np.full(_QUAD_NODES, 1.0)
        weights[[0, -1]] = 0.5
        log_jac = np.log(width[:, None] * np.cosh(t) * (t[:, 1:2] - t[:, :1]))
        out[peaked] = logsumexp(h + log_jac, b=weights[None, :], axis=1)
    return out


def _log_bf_plateau(resid, k, n, a, scale_n):
    r"""The same integral when :math:`h` is flat around its maximum (e.g. :math:`k = n - 2` with
    a near-perfect fit: :math:`h` is level from :math:`g \approx 1` to :math:`g \approx 1/e`,
    and a width from the curvature means nothing): the trapezoid rule on
    ``_PLATEAU_NODES`` nodes from :math:`\tau = -60` to :math:`\log m - \log e + 40`,
    beyond which the integrand is below :math:`e^{-40}` of its plateau; with both ends in the
    negligible tails the rule converges geometrically."""
    hi = math.log(scale_n) - np.log(resid) + 40.0
    t = np.linspace(-60.0, hi, _PLATEAU_NODES, axis=1)
    h = _log_integrand(t, resid[:, None], k[:, None], n, a, scale_n)[0]
    weights = np.full(_PLATEAU_NODES, 1.0)
    weights[[0, -1]] = 0.5
    return logsumexp(h, b=weights[None, :], axis=1) + np.log(t[:, 1] - t[:, 0])


def _reach(tau, width, side, peak, *args):
    """Distance from the mode to where the integrand is ``_QUAD_DROP`` nats below its peak."""
    reach = 8.0 * width
    for _ in range(16):
        short = _log_integrand(tau + side * reach, *args)[0] > peak - _QUAD_DROP
        if not short.any():
            break
        reach = np.where(short, 2 * reach, reach)
    return reach


# ----------------------------------------------------------------------------- scoring
def bordered_cholesky(M: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Batched Cholesky of :math:`\begin{pmatrix} M & r \\ r^\top & 1\end{pmatrix}`, one column
    at a time (no exception on a non-PD batch member).

    :param M: matrices :math:`R_\gamma + \rho I`, shape ``(B, k, k)``.
    :param r: right-hand sides :math:`r_\gamma`, shape ``(B, k)``.
    :returns: :math:`\log\det M`, the residual pivot :math:`e = 1 - r^\top M^{-1} r` and the
        smallest of the first :math:`k` pivots :math:`d_i^2`, each shape ``(B,)``.
    """
    batch, k = r.shape
    A = np.empty((batch, k + 1, k + 1))
    A[:, :k, :k], A[:, k, :k], A[:, :k, k], A[:, k, k] = M, r, r, 1.0
    L = np.zeros_like(A)
    pivots = np.empty((batch, k + 1))
    for j in range(k + 1):
        d2 = A[:, j, j] - np.einsum("bi,bi->b", L[:, j, :j], L[:, j, :j])
        pivots[:, j] = d2
        d = np.sqrt(np.maximum(d2, RANK_TOL))
        L[:, j, j] = d
        below = A[:, j + 1 :, j] - np.einsum("bri,bi->br", L[:, j + 1 :, :j], L[:, j, :j])
        L[:, j + 1 :, j] = below / d[:, None]
    logdet = np.log(np.maximum(pivots[:, :k], RANK_TOL)).sum(axis=1)
    min_pivot = pivots[:, :k].min(axis=1) if k else np.full(batch, np.inf)
    return logdet, np.maximum(pivots[:, k], RESIDUAL_FLOOR), min_pivot


def max_model_size(n: int) -> int:
    """The largest support of the model space, :math:`n - 2` columns (module docstring)."""
    return n - 2


def finish(prior: Prior, n: int, resid: np.ndarray, logdet: np.ndarray, k, min_pivot) -> np.ndarray:
    """Log Bayes factors from the Cholesky summaries, ``-inf`` where inadmissible (more than
    :func:`max_model_size` columns; for the g-priors also a rank-deficient support)."""
    k = np.broadcast_to(np.asarray(k, float), np.shape(resid))
    ok = k <= max_model_size(n)
    if prior.full_rank:
        ok &= np.asarray(min_pivot) > RANK_TOL
    out = np.full(np.shape(resid), -np.inf)
    if ok.any():
        out[ok] = prior.log_bayes_factor(resid[ok], logdet[ok], k[ok], n)
    return out


def _score_indices(stats: SufficientStats, prior: Prior, idx: np.ndarray) -> np.ndarray:
    """Log Bayes factors of supports of equal size given as an index matrix ``(B, k)``."""
    batch, k = idx.shape
    M = stats.corr[idx[:, :, None], idx[:, None, :]] + prior.ridge(stats.n) * np.eye(k)
    logdet, resid, min_pivot = bordered_cholesky(M, stats.r[idx])
    return finish(prior, stats.n, resid, logdet, k, min_pivot)


def log_marginals(stats: SufficientStats, prior: Prior, supports: np.ndarray) -> np.ndarray:
    r""":math:`\log \mathrm{BF}(\gamma : \emptyset)` of each row of a bool matrix ``(m, p)``,
    grouped by size and factorised in batches."""
    supports = np.asarray(supports, dtype=bool)
    if supports.ndim != 2 or supports.shape[1] != stats.p:
        raise ValueError(f"supports must be a bool array (m, p={stats.p}), got {supports.shape}")
    out = np.empty(len(supports))
    for rows, idx in by_size(supports):
        out[rows] = _score_indices(stats, prior, idx)
    return out


class GroupedScorer(BatchScorer):
    r"""The conjugate posterior :math:`\log \mathrm{BF}(\gamma : \emptyset) + \log p(\gamma)`
    as a :class:`~l0bayes.model_space.scorer.BatchScorer` over gates: gate :math:`g` opens or
    closes every column :math:`j` with ``groups[j] == g`` together and the model prior counts
    gates (``groups=None``: one gate per column).

    :param stats: the data's sufficient statistics (one row and column per column of X).
    :param prior: a conjugate prior of :mod:`l0bayes.linear_model.marginal_likelihood`.
    :param log_size: :math:`\log p(\gamma)` of a model of each number of gates ``0..G``.
    :param groups: ``(p,)`` group id ``0..G-1`` of each column, or ``None``.
    """

    def __init__(
        self,
        stats: SufficientStats,
        prior: Prior,
        log_size: np.ndarray,
        groups: np.ndarray | None = None,
    ) -> None:
        self.stats, self.prior, self.log_size = stats, prior, log_size
        self.groups = None if groups is None else np.asarray(groups, dtype=np.intp)
        self.p = stats.p if self.groups is None else int(self.groups.max()) + 1

    def score_indices(self, idx: np.ndarray) -> np.ndarray:
        """Log posteriors of the models whose open gates are the rows of ``idx`` ``(B, k)``."""
        if self.groups is None:
            return _score_indices(self.stats, self.prior, idx) + self.log_size[idx.shape[1]]
        gates = np.zeros((len(idx), self.p), dtype=bool)
        np.put_along_axis(gates, idx, True, axis=1)
        columns = gates[:, self.groups]
        return log_marginals(self.stats, self.prior, columns) + self.log_size[idx.shape[1]]


def enumerate_posterior(
    stats: SufficientStats,
    prior: Prior,
    model_prior: PriorInclusion = 0.5,
    max_p: int = 20,
    top: int = 10,
) -> Enumeration:
    r"""Exact posterior by enumerating every model (:func:`~l0bayes.model_space.scorer.
    enumerate_models` over the conjugate :class:`GroupedScorer`), batched by size :math:`k`:

    .. math::

        p(\gamma \mid y) = \frac{p(\gamma)\, \mathrm{BF}(\gamma : \emptyset)}
            {\sum_{\gamma'} p(\gamma')\, \mathrm{BF}(\gamma' : \emptyset)}.

    :param stats: the data's sufficient statistics.
    :param prior: a :class:`GPrior`, :class:`HyperGPrior` or :class:`StandardizedSlab`.
    :param model_prior: :math:`\pi` or ``("beta", a, b)`` (:mod:`l0bayes.model_size`).
    :param max_p: refuse larger :math:`p` (:math:`2^p` models).
    :param top: how many of the best models to return.
    """
    p = stats.p
    if p > check_count("max_p", max_p):
        raise ValueError(f"p={p} > max_p={max_p}: 2^{p} models; use mc3() instead")
    log_size = log_prior_by_size(check_prior_inclusion(model_prior), p)
    scorer = GroupedScorer(stats, prior, log_size)
    # sizes beyond max_model_size(n) stay impossible
    return enumerate_models(scorer, top, max_size=max_model_size(stats.n))


__all__ = [
    "RANK_TOL",
    "RESIDUAL_FLOOR",
    "Enumeration",
    "GPrior",
    "GroupedScorer",
    "HyperGPrior",
    "Prior",
    "StandardizedSlab",
    "SufficientStats",
    "bordered_cholesky",
    "enumerate_posterior",
    "finish",
    "log_marginals",
    "max_model_size",
]
