r"""Certified best-subset selection for the Gaussian linear model, from sufficient statistics.

For a support :math:`S` (columns of X, the intercept always in) the criterion is

.. math::

    \mathcal C(S) = -\ell(S) + \mathrm{pen}(m), \qquad
    \ell(S) = -\tfrac n2\left(\log\frac{2\pi\,\mathrm{RSS}_S}{n} + 1\right),

with :math:`m = \operatorname{rank} X_{c,S}` and :math:`k = m + 1 = \operatorname{rank}[\mathbf
1, X_S]` the number of mean parameters (statsmodels' ``df_model + k_constant``; σ not counted),
exactly as :mod:`l0bayes.selection`.  ``penalty`` is a number :math:`\lambda \ge 0`
(:math:`\mathrm{pen} = \lambda k`), ``"aic"`` (:math:`\lambda = 1`, so :math:`\mathcal C =
\mathrm{AIC}/2`), ``"bic"`` (:math:`\lambda = \tfrac12 \log n`), ``"aicc"`` (Hurvich & Tsai,
:math:`\mathcal C = \mathrm{AICc}/2` with σ counted, :math:`K = k + 1`) or ``"ebic"`` (Chen &
Chen's extended BIC with :math:`\gamma = 1`: :math:`\mathrm{pen} = \tfrac12 k\log n + \log\binom
pm`).  Everything depends on the data only through :class:`GaussianStats` (n, means, the centred
Gram matrix), so the search costs nothing per observation.

:func:`certified_best_subset` is a branch and bound over the drop-column tree of Furnival &
Wilson's leaps and bounds (1974): a node is a support :math:`S` whose first columns F are forced
in; its subtree holds every :math:`T` with :math:`F \subseteq T \subseteq S`.  Because RSS can only
grow when columns are dropped, and dropping a set D of columns costs at least the largest of
their single-drop increments :math:`\delta_j = \mathrm{RSS}_{S\setminus j} - \mathrm{RSS}_S`,

.. math::

    \min_{F \subseteq T \subseteq S} \mathcal C(T) \;\ge\; \min_{d = 0}^{|S| - |F|}
    \left[\tfrac n2 \log\left(\mathrm{RSS}_S + \delta_{(d)}\right) + \mathrm{pen}(|S| - d)\right]
    + \text{const},

where :math:`\delta_{(d)}` is the d-th smallest increment among the free columns
(:math:`\delta_{(0)} = 0`).  A node whose bound is no better than the incumbent is pruned; when the
tree is exhausted the incumbent is optimal.  Each node is obtained from its parent by a rank-one
downdate of the inverse Gram matrix, :math:`O(|S|^2)`.

References

1. Furnival, G. M. & Wilson, R. W. (1974). Regressions by leaps and bounds. Technometrics 16.
2. Hurvich, C. M. & Tsai, C.-L. (1989). Regression and time series model selection in small
   samples. Biometrika 76.
3. Chen, J. & Chen, Z. (2008). Extended Bayesian information criteria for model selection with
   large model spaces. Biometrika 95.
4. Chan, T. F., Golub, G. H. & LeVeque, R. J. (1979). Updating formulae and a pairwise
   algorithm for computing sample variances. Stanford CS report 79-773.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln

MIN_RESIDUAL_DF = 3
r"""A support is admissible only if :math:`n - k(S) \ge 3`: σ̂² must have at least 3 residual
degrees of freedom.  With :math:`\nu` of them :math:`\operatorname{Var}\log\hat\sigma^2 =
\psi'(\nu/2)` is 4.9 for :math:`\nu = 1` and 0.93 for :math:`\nu = 3`, and every criterion is
:math:`\tfrac n2\log\hat\sigma^2` plus a penalty, so nearer the edge it ranks models by noise;
3 is also the smallest :math:`\nu` at which the AICc (σ counted) is finite."""

VIF_LIMIT = 1e10
r"""Columns are numerically dependent when a variance inflation factor :math:`G_{jj}
(G_{SS}^{-1})_{jj} = 1/(1 - R_j^2)` reaches this value (selection.py's pivot tolerance
:math:`10^{-10}` on :math:`1 - R_j^2`, made independent of the column order)."""

ENUMERATION_LIMIT = 200_000  # enumerate all supports when there are at most this many
_LOG_FLOOR = 1e-14  # RSS below this fraction of the total sum of squares counts as round-off
_BATCH = 1 << 20  # float64 entries of one batch of Gram blocks in the enumeration


# ----------------------------------------------------------------------- sufficient statistics


def _check_finite(a: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values; drop or impute those rows first")


def _as_chunk(X: object, y: object) -> tuple[np.ndarray, np.ndarray]:
    """Validate one block of rows: ``X`` (n, p) and ``y`` (n,) finite float64."""
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must be 1-D with one entry per row of X ({X.shape[0]}), got {y.shape}")
    _check_finite(X, "X")
    _check_finite(y, "y")
    return X, y


class GaussianStats:
    r"""Sufficient statistics of a Gaussian linear model with intercept.

    For the augmented rows :math:`z_i = (x_i, y_i)` it holds n, the mean :math:`\bar z` and the
    centred co-moment matrix :math:`M = \sum_i (z_i - \bar z)(z_i - \bar z)^\top`, whose blocks
    are the centred Gram matrix :math:`G = X_c^\top X_c`, :math:`g = X_c^\top y_c` and
    :math:`y_c^\top y_c`.  :meth:`update` merges a chunk of rows by the pairwise formula of
    Chan, Golub & LeVeque,

    .. math::

        M = M_a + M_b + \frac{n_a n_b}{n_a + n_b}\,(\bar z_b - \bar z_a)(\bar z_b - \bar z_a)^\top,

    each chunk being centred at its own mean first, which avoids the cancellation of
    :math:`\sum z z^\top - n \bar z \bar z^\top`.
    """

    def __init__(self, p: int) -> None:
        self.n = 0
        self.p = int(p)
        self._mean = np.zeros(p + 1)
        self._moment = np.zeros((p + 1, p + 1))

    @classmethod
    def from_arrays(cls, X: object, y: object) -> GaussianStats:
        """Statistics of the data ``X`` (n, p) and ``y`` (n,) in one pass."""
        X, y = _as_chunk(X, y)
        return cls(X.shape[1]).update(X, y)

    @classmethod
    def from_chunks(cls, chunks: Iterable[tuple[object, object]]) -> GaussianStats:
        """Statistics accumulated over an iterable of ``(X_chunk, y_chunk)`` blocks of rows."""
        stats = None
        for X, y in chunks:
            X, y = _as_chunk(X, y)
            stats = (stats or cls(X.shape[1])).update(X, y)
        if stats is None:
            raise ValueError("from_chunks got no chunks; pass at least one (X, y) block")
        return stats

    def update(self, X: object, y: object) -> GaussianStats:
        """Merge the rows ``X`` (n_b, p), ``y`` (n_b,) into the statistics; returns ``self``."""
        X, y = _as_chunk(X, y)
        if X.shape[1] != self.p:
            raise ValueError(f"chunk has {X.shape[1]} columns, the statistics have {self.p}")
        if not len(y):
            return self
        Z = np.column_stack([X, y])
        mean_b = Z.mean(axis=0)
        Zc = Z - mean_b
        n_a, n_b = self.n, len(y)
        delta = mean_b - self._mean
        self._moment += Zc.T @ Zc + np.outer(delta, delta) * (n_a * n_b / (n_a + n_b))
        self._mean += delta * (n_b / (n_a + n_b))
        self.n = n_a + n_b
        return self

    @property
    def x_mean(self) -> np.ndarray:
        """Column means of X, shape (p,)."""
        return self._mean[:-1]

    @property
    def y_mean(self) -> float:
        """Mean of y."""
        return float(self._mean[-1])

    @property
    def gram(self) -> np.ndarray:
        r"""Centred Gram matrix :math:`X_c^\top X_c`, shape (p, p)."""
        return self._moment[:-1, :-1]

    @property
    def xty(self) -> np.ndarray:
        r""":math:`X_c^\top y_c`, shape (p,)."""
        return self._moment[:-1, -1]

    @property
    def yty(self) -> float:
        r""":math:`y_c^\top y_c`, the total sum of squares."""
        return float(self._moment[-1, -1])

    @property
    def augmented(self) -> np.ndarray:
        r"""The (p + 1, p + 1) co-moment matrix of :math:`[X_c, y_c]` (y last)."""
        return self._moment


def _check_stats(stats: GaussianStats) -> None:
    if not isinstance(stats, GaussianStats):
        raise ValueError(f"stats must be a GaussianStats, got {type(stats).__name__}")
    if stats.n < 2:
        raise ValueError(f"need at least 2 observations, the statistics hold n = {stats.n}")
    if not stats.yty > 0.0:
        raise ValueError(
            "y is constant: the Gaussian noise scale is 0 and the log-likelihood unbounded, so"
            " there is nothing to select; check that the right column is the response"
        )


# ------------------------------------------------------------------------------ the criterion


def log_comb(p: int, m: np.ndarray | int) -> np.ndarray:
    r""":math:`\log\binom pm`, elementwise."""
    m = np.asarray(m, dtype=np.float64)
    return gammaln(p + 1.0) - gammaln(m + 1.0) - gammaln(p - m + 1.0)


def penalty_values(penalty: str | float, n: int, p: int) -> np.ndarray:
    r"""The penalty :math:`\mathrm{pen}(m)` for m = 0, ..., p non-intercept columns.

    :param penalty: ``"aic"``, ``"bic"``, ``"aicc"``, ``"ebic"`` or a number :math:`\lambda
        \ge 0` (see the module docstring); :math:`k = m + 1`.
    :param n: number of observations.
    :param p: number of candidate columns.
    :returns: array of shape (p + 1,), in :math:`-\ell` units; ``inf`` where undefined.
    """
    k = np.arange(p + 1) + 1.0
    if isinstance(penalty, str):
        name = penalty.lower()
        if name == "aicc":
            K = k + 1.0  # sigma counted, as Hurvich & Tsai
            with np.errstate(divide="ignore"):
                extra = np.where(
                    n - K - 1.0 > 0, K * (K + 1.0) / np.maximum(n - K - 1.0, 1), np.inf
                )
            return K + extra
        if name == "ebic":
            return 0.5 * math.log(n) * k + log_comb(p, k - 1.0)
        lam = {"aic": 1.0, "bic": 0.5 * math.log(n)}.get(name)
        if lam is None:
            raise ValueError(
                f"penalty must be 'aic', 'bic', 'aicc', 'ebic' or λ >= 0, got {penalty!r}"
            )
        return lam * k
    if isinstance(penalty, bool) or not isinstance(penalty, (int, float, np.number)):
        raise ValueError(f"penalty must be 'aic', 'bic', 'aicc', 'ebic' or λ >= 0, got {penalty!r}")
    if not (math.isfinite(penalty) and penalty >= 0.0):
        raise ValueError(f"penalty λ must be finite and >= 0, got {penalty}")
    return float(penalty) * k


def admissible_max_size(n: int, p: int) -> int:
    r"""The largest model size m (columns besides the intercept) that the search considers.

    Two rules, both documented in the module:

    * residual degrees of freedom: :math:`n - (m + 1) \ge` ``MIN_RESIDUAL_DF``;
    * selection budget: :math:`\log\binom pm \le n/2`.  Under pure noise the best of the
      :math:`\binom pm` supports of size m gains about
      :math:`\tfrac{n}{n - m - 1}\log\binom pm` in log-likelihood (the union bound on
      :math:`\mathrm{RSS}_S/\mathrm{RSS}_\emptyset \sim \mathrm{Beta}(\tfrac{n-1-m}2, \tfrac m2)`),
      which outgrows any fixed per-parameter penalty (AIC, BIC) once :math:`\log\binom pm` is
      of the order of n: an exhaustive search then fits noise, up to an exact fit.  The budget
      never binds when :math:`p \le n / (2\log 2)`, since :math:`\log\binom pm \le p\log 2`.

    For n = 10, p = 50 this gives 1; for n = 30, p = 300 it gives 2.

    :param n: number of observations.
    :param p: number of candidate columns.
    :returns: the maximal admissible size (0 allows only the intercept-only model).
    """
    by_df = max(n - 1 - MIN_RESIDUAL_DF, 0)
    sizes = np.arange(min(by_df, p) + 1)
    within = log_comb(p, sizes) <= 0.5 * n
    return int(sizes[within].max())


def _neg_loglik(rss: np.ndarray | float, stats: GaussianStats) -> np.ndarray:
    r""":math:`-\ell = \tfrac n2(\log(2\pi\,\mathrm{RSS}/n) + 1)`, RSS floored at round-off."""
    rss = np.maximum(rss, _LOG_FLOOR * stats.yty)
    return 0.5 * stats.n * (np.log(2.0 * math.pi * rss / stats.n) + 1.0)


def _solve_support(stats: GaussianStats, cols: np.ndarray) -> tuple[np.ndarray, float] | None:
    r"""Inverse Gram :math:`H = G_{SS}^{-1}` and RSS of the support ``cols``, or ``None`` if its
    columns are numerically dependent (a VIF :math:`G_{jj}H_{jj} \ge` ``VIF_LIMIT``)."""
    if cols.size == 0:
        return np.zeros((0, 0)), stats.yty
    G = stats.gram[np.ix_(cols, cols)]
    scale = np.sqrt(np.diag(G))
    if np.any(scale <= 0.0):
        return None
    try:
        L = np.linalg.cholesky(G / np.outer(scale, scale))
    except np.linalg.LinAlgError:
        return None
    Linv = np.linalg.solve(L, np.eye(cols.size))
    corr_inv = Linv.T @ Linv
    if np.max(np.diag(corr_inv)) >= VIF_LIMIT:
        return None
    H = corr_inv / np.outer(scale, scale)
    g = stats.xty[cols]
    return H, max(stats.yty - float(g @ H @ g), 0.0)


@dataclass(frozen=True)
class GaussianCriteria:
    r"""Criteria of one support: ``k`` mean parameters (:math:`\operatorname{rank}[\mathbf 1,
    X_S]`), the OLS ``rss`` and ``log_likelihood``, :math:`\mathrm{AIC} = -2\ell + 2k`,
    :math:`\mathrm{BIC} = -2\ell + k\log n` and :math:`\mathrm{AICc} = -2\ell + 2K + 2K(K+1)/(n
    - K - 1)` with :math:`K = k + 1` (σ counted: statsmodels' ``info_criteria("aicc",
    dk_params=1)``)."""

    k: int
    rss: float
    log_likelihood: float
    aic: float
    bic: float
    aicc: float


def gaussian_criteria(stats: GaussianStats, support: object) -> GaussianCriteria:
    """Log-likelihood, AIC, BIC and AICc of the OLS refit on ``support`` (boolean mask).

    :param stats: sufficient statistics.
    :param support: boolean mask of length p; its columns must be linearly independent.
    :returns: a :class:`GaussianCriteria`.
    """
    _check_stats(stats)
    cols = np.flatnonzero(_check_support(support, stats.p))
    solved = _solve_support(stats, cols)
    if solved is None:
        raise ValueError(f"the columns {cols.tolist()} are linearly dependent (a VIF >= 1e10)")
    k, n = cols.size + 1, stats.n
    if n - k < 1:
        raise ValueError(f"k = {k} parameters for n = {n}: the fit is exact, σ̂ = 0")
    rss = solved[1]
    llf = -float(_neg_loglik(rss, stats))
    K = k + 1
    aicc = -2 * llf + 2 * K * n / (n - K - 1) if n - K - 1 > 0 else math.inf
    return GaussianCriteria(k, rss, llf, -2 * llf + 2 * k, -2 * llf + k * math.log(n), aicc)


def subset_objective(stats: GaussianStats, support: object, penalty: str | float = "bic") -> float:
    r"""The objective :math:`-\ell(S) + \mathrm{pen}(|S|)` of one support (``inf`` if its columns
    are dependent or it leaves fewer than ``MIN_RESIDUAL_DF`` residual degrees of freedom).

    :param stats: sufficient statistics.
    :param support: boolean mask of length p.
    :param penalty: see :func:`penalty_values`.
    :returns: the objective, in :math:`-\ell` units (AIC/2 for ``"aic"``).
    """
    _check_stats(stats)
    cols = np.flatnonzero(_check_support(support, stats.p))
    pen = penalty_values(penalty, stats.n, stats.p)
    solved = _solve_support(stats, cols)
    if solved is None or stats.n - cols.size - 1 < MIN_RESIDUAL_DF:
        return math.inf
    return float(_neg_loglik(solved[1], stats) + pen[cols.size])


def _check_support(support: object, p: int) -> np.ndarray:
    mask = np.asarray(support)
    if mask.dtype != np.bool_ or mask.shape != (p,):
        raise ValueError(
            f"support must be a boolean mask of length {p}, got {mask.dtype} {mask.shape}"
        )
    return mask


# ---------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class SubsetSearchResult:
    r"""Outcome of a best-subset search.

    ``support`` (bool mask), its ``objective`` :math:`-\ell + \mathrm{pen}`, ``optimal`` (the
    search proved that no admissible support of size at most ``max_size`` is better), ``gap`` (a
    proven bound on ``objective`` minus the optimum; 0 when optimal), ``nodes`` (supports
    scored), ``seconds``, the ``max_size`` searched and ``size_capped`` (the selection budget of
    :func:`admissible_max_size`, not the residual degrees of freedom, set ``max_size``: the
    caller should warn that the criterion was restricted).
    """

    support: np.ndarray
    objective: float
    optimal: bool
    gap: float
    nodes: int
    seconds: float
    max_size: int
    size_capped: bool


class _Problem:
    """Stats, penalty table and the admissible size range of one search."""

    def __init__(self, stats: GaussianStats, penalty: str | float, max_size: int | None) -> None:
        _check_stats(stats)
        self.stats, self.n, self.p = stats, stats.n, stats.p
        self.pen = penalty_values(penalty, self.n, self.p)
        cap = admissible_max_size(self.n, self.p)
        by_df = min(max(self.n - 1 - MIN_RESIDUAL_DF, 0), self.p)
        if max_size is not None:
            if isinstance(max_size, bool) or not isinstance(max_size, (int, np.integer)):
                raise ValueError(f"max_size must be a non-negative integer, got {max_size!r}")
            if max_size < 0:
                raise ValueError(f"max_size must be a non-negative integer, got {max_size!r}")
        self.max_size = min(cap, by_df) if max_size is None else min(int(max_size), by_df)
        self.size_capped = max_size is None and cap < by_df
        self.pen = np.where(np.arange(self.p + 1) <= self.max_size, self.pen, np.inf)

    def objective(self, rss: float | np.ndarray, m: int | np.ndarray) -> np.ndarray:
        return _neg_loglik(rss, self.stats) + self.pen[m]

    def mask(self, cols: Iterable[int]) -> np.ndarray:
        out = np.zeros(self.p, dtype=bool)
        out[list(cols)] = True
        return out

    def score(self, cols: np.ndarray) -> float:
        """Objective of one support from scratch (``inf`` if inadmissible)."""
        if cols.size > self.max_size:
            return math.inf
        solved = _solve_support(self.stats, cols)
        return math.inf if solved is None else float(self.objective(solved[1], cols.size))


def _result(prob: _Problem, cols: np.ndarray, gap: float, nodes: int, start: float):
    cols = np.sort(np.asarray(cols, dtype=np.intp))
    return SubsetSearchResult(
        support=prob.mask(cols),
        objective=prob.score(cols),
        optimal=gap <= 0.0,
        gap=max(gap, 0.0),
        nodes=nodes,
        seconds=time.perf_counter() - start,
        max_size=prob.max_size,
        size_capped=prob.size_capped,
    )


# ------------------------------------------------------------------------------ enumeration


def _batched_rss(stats: GaussianStats, idx: np.ndarray) -> np.ndarray:
    """RSS of each support ``idx[b]`` (B, m); ``inf`` where its columns are dependent."""
    batch, m = idx.shape
    if m == 0:
        return np.full(batch, stats.yty)
    G = stats.gram[idx[:, :, None], idx[:, None, :]]
    scale = np.sqrt(np.diagonal(G, axis1=1, axis2=2))
    C = G / (scale[:, :, None] * scale[:, None, :])
    C = np.where(np.isfinite(C), C, 0.0)
    eig_min = np.linalg.eigvalsh(C)[:, 0]
    ok = eig_min > 0.5 / VIF_LIMIT  # cheap pre-screen; the exact VIF test follows
    C[~ok] = np.eye(m)
    Cinv = np.linalg.inv(C)
    ok &= np.max(np.diagonal(Cinv, axis1=1, axis2=2), axis=1) < VIF_LIMIT
    w = stats.xty[idx] / scale
    fit = np.einsum("bi,bij,bj->b", w, Cinv, w)
    return np.where(ok, np.maximum(stats.yty - fit, 0.0), np.inf)


def _enumerate(prob: _Problem, sizes: Iterable[int]) -> tuple[np.ndarray, float, int]:
    """Best support over all supports of the given sizes; ties go to the first in size-then-
    lexicographic order."""
    best_cols, best, count = np.zeros(0, dtype=np.intp), math.inf, 0
    for m in sizes:
        combos = itertools.combinations(range(prob.p), m)
        rows = max(1, _BATCH // max(m * m, 1))
        while block := list(itertools.islice(combos, rows)):
            idx = np.array(block, dtype=np.intp).reshape(len(block), m)
            values = prob.objective(_batched_rss(prob.stats, idx), m)
            count += len(idx)
            i = int(np.argmin(values))
            if values[i] < best:
                best, best_cols = float(values[i]), idx[i]
    return best_cols, best, count


def _n_supports(p: int, max_size: int) -> float:
    return float(np.exp(log_comb(p, np.arange(max_size + 1))).sum())


def exhaustive_best_subset(
    stats: GaussianStats,
    penalty: str | float = "bic",
    *,
    max_size: int | None = None,
    max_p: int = 20,
) -> SubsetSearchResult:
    r"""Plain enumeration of every admissible support (the reference for the tests).

    Scores all supports of size 0, ..., ``max_size`` (default :func:`admissible_max_size`) by a
    batched solve of their Gram blocks.  Ties go to the smaller support, then to the
    lexicographically first.

    :param stats: sufficient statistics.
    :param penalty: see :func:`penalty_values`.
    :param max_size: largest support size (capped by the residual degrees of freedom).
    :param max_p: refuse problems with more columns than this.
    :returns: a :class:`SubsetSearchResult` with ``optimal=True``.
    """
    start = time.perf_counter()
    if stats.p > max_p:
        raise ValueError(f"exhaustive search over 2**{stats.p} supports refused (max_p = {max_p})")
    prob = _Problem(stats, penalty, max_size)
    cols, _, count = _enumerate(prob, range(prob.max_size + 1))
    return _result(prob, cols, 0.0, count, start)


# --------------------------------------------------------------------------- local search


def _neighbour_rss(stats: GaussianStats, cols: np.ndarray) -> tuple[np.ndarray, ...]:
    r"""RSS after adding each column j, dropping each i in S, and swapping i for j.

    With :math:`H = G_{SS}^{-1}`, :math:`B = A_{:,S} H` (A the augmented co-moment matrix),
    the Schur complement :math:`C = A - B A_{S,:}` gives :math:`\mathrm{RSS}_{S+j} =
    C_{yy} - C_{jy}^2 / C_{jj}`; dropping i adds back :math:`B_{:,i} B_{:,i}^\top / H_{ii}`.
    Returns (add (p,), drop (|S|,), swap (|S|, p)); ``inf`` where a column is collinear.
    """
    A = stats.augmented
    H, rss = _solve_support(stats, cols)
    W = A[:, cols]
    B = W @ H
    diag = np.diag(A) - np.einsum("jk,jk->j", B, W)
    cy = A[:, -1] - B @ W[-1]
    tol = np.diag(A)[:-1] / VIF_LIMIT
    c_jj, c_jy = diag[:-1], cy[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        add = np.where(c_jj > tol, rss - c_jy**2 / c_jj, np.inf)
        h = np.diag(H)
        drop = rss + B[-1] ** 2 / h
        d_ij = c_jj[None, :] + B[:-1].T ** 2 / h[:, None]
        e_ij = c_jy[None, :] + B[:-1].T * B[-1][:, None] / h[:, None]
        swap = np.where(d_ij > tol[None, :], drop[:, None] - e_ij**2 / d_ij, np.inf)
    add[cols] = np.inf
    swap[:, cols] = np.inf
    return add, drop, swap


def _moved(cols: np.ndarray, kind: str, at: tuple[int, ...]) -> np.ndarray:
    """The support after the move ``kind`` at index ``at`` of :func:`_neighbour_rss`'s arrays."""
    if kind == "add":
        return np.sort(np.append(cols, at[0]))
    if kind == "drop":
        return np.delete(cols, at[0])
    return np.sort(np.append(np.delete(cols, at[0]), at[1]))


def _improve(prob: _Problem, cols: np.ndarray, value: float) -> tuple[np.ndarray, float, int]:
    """Best-improvement add/drop/swap search from ``cols`` (objective ``value``)."""
    moves = 0
    while True:
        add, drop, swap = _neighbour_rss(prob.stats, cols)
        m = cols.size
        candidates = {
            "add": prob.objective(add, min(m + 1, prob.p)) if m < prob.max_size else add + np.inf,
            "drop": prob.objective(drop, m - 1) if m else drop,
            "swap": prob.objective(swap, m),
        }
        moves += add.size + drop.size + swap.size
        kind, best, at = None, value - 1e-12 * (1 + abs(value)), ()
        for name, values in candidates.items():
            if values.size and np.min(values) < best:
                at = np.unravel_index(int(np.argmin(values)), values.shape)
                kind, best = name, float(values[at])
        if kind is None:
            return cols, value, moves
        candidate = _moved(cols, kind, at)
        exact = prob.score(candidate)
        if not exact < value:  # round-off in the update formulas: stop
            return cols, value, moves
        cols, value = candidate, exact


def _forward_path(prob: _Problem) -> tuple[np.ndarray, float]:
    """Greedy forward selection up to ``max_size``; the best prefix of the path."""
    cols, value = np.zeros(0, dtype=np.intp), prob.score(np.zeros(0, dtype=np.intp))
    best_cols, best = cols, value
    while cols.size < prob.max_size:
        add = _neighbour_rss(prob.stats, cols)[0]
        if not np.isfinite(add).any():
            break
        cols = np.append(cols, int(np.argmin(add)))
        value = prob.score(np.sort(cols))
        if value < best:
            best_cols, best = np.sort(cols), value
    return best_cols, best


def heuristic_best_subset(
    stats: GaussianStats,
    penalty: str | float = "bic",
    *,
    start: np.ndarray | None = None,
    max_size: int | None = None,
) -> SubsetSearchResult:
    """Greedy forward selection then best-improvement add/drop/swap local search (no proof).

    The search starts from the best prefix of the forward path and, if given, from ``start``
    (a boolean mask); the better local optimum is returned, with ``gap = inf``.

    :param stats: sufficient statistics.
    :param penalty: see :func:`penalty_values`.
    :param start: optional boolean mask of a support to polish as well.
    :param max_size: largest support size.
    :returns: a :class:`SubsetSearchResult` (``optimal`` False unless p = 0).
    """
    t0 = time.perf_counter()
    prob = _Problem(stats, penalty, max_size)
    cols, value, nodes = _polish(prob, start)
    return _result(prob, cols, math.inf if prob.p else 0.0, nodes, t0)


def _polish(prob: _Problem, start: np.ndarray | None) -> tuple[np.ndarray, float, int]:
    starts = [_forward_path(prob)]
    if start is not None:
        cols = np.flatnonzero(_check_support(start, prob.p))
        starts.append((cols, prob.score(cols)))
    best, nodes = (np.zeros(0, dtype=np.intp), math.inf), 0
    for cols, value in starts:
        if not np.isfinite(value):
            continue
        cols, value, count = _improve(prob, cols, value)
        nodes += count
        if value < best[1]:
            best = (cols, value)
    return best[0], best[1], nodes


# ------------------------------------------------------------------------- branch and bound


@dataclass
class _Node:
    """A support ``cols`` whose first ``n_fixed`` columns are forced in.

    ``parent`` = (H, keep, j) of the parent's inverse Gram matrix H, the positions ``keep`` of
    ``cols`` in the parent and the dropped position j, for the lazy rank-one downdate
    :math:`H' = H_{kk} - H_{kj}H_{jk}/H_{jj}`; ``None``: factorise from scratch.
    """

    cols: np.ndarray
    n_fixed: int
    rss_bound: float  # a lower bound on the RSS of every support of the subtree
    bound: float  # a lower bound on the objective of every support of the subtree
    eig_min: float  # a lower bound on the smallest eigenvalue of the correlation of cols
    parent: tuple[np.ndarray, np.ndarray, int] | None = None


def _min_eig(stats: GaussianStats, cols: np.ndarray) -> float:
    """Smallest eigenvalue of the correlation matrix of the columns ``cols`` (0 if singular)."""
    if cols.size == 0:
        return 1.0
    G = stats.gram[np.ix_(cols, cols)]
    scale = np.sqrt(np.maximum(np.diag(G), 1e-300))
    return max(float(np.linalg.eigvalsh(G / np.outer(scale, scale))[0]), 0.0)


class _BranchAndBound:
    r"""Depth-first leaps-and-bounds search over the drop-column tree (module docstring).

    Dropping the free columns D from a node S raises the RSS by
    :math:`\hateta_D^	op (H_{DD})^{-1} \hateta_D`, which is at least the largest single-drop
    increment :math:`\max_{j\in D}\delta_j` and at least :math:`\mu \sum_{j\in D} b_j^2`, where
    :math:`b_j = \hateta_j \sqrt{G_{jj}}` and :math:`\mu` is the smallest eigenvalue of the
    correlation matrix of S (Cauchy interlacing: it only grows down the tree, so a node inherits
    its parent's).  :meth:`size_bound` minimises the larger of the two over the number of drops.
    """

    def __init__(self, prob: _Problem, cols: np.ndarray, value: float) -> None:
        self.prob = prob
        self.best_cols, self.best = cols, value
        self.nodes = 0
        self.stack: list[_Node] = []

    def consider(self, cols: np.ndarray, rss: float) -> None:
        """Make ``cols`` the incumbent if it is better (confirmed from scratch)."""
        if cols.size <= self.prob.max_size and self.prob.objective(rss, cols.size) < self.best:
            exact = self.prob.score(np.sort(cols))
            if exact < self.best:
                self.best_cols, self.best = np.sort(cols), exact

    def factor(self, node: _Node) -> tuple[np.ndarray, float] | None:
        """Inverse Gram matrix and RSS of the node; ``None`` if its columns are dependent."""
        if node.parent is None:
            return _solve_support(self.prob.stats, node.cols)
        H, keep, j = node.parent
        Hj = H[keep, j]
        return H[np.ix_(keep, keep)] - np.outer(Hj, Hj) / H[j, j], node.rss_bound

    def expand(self, node: _Node) -> None:
        self.nodes += 1
        solved = self.factor(node)
        if solved is None:
            return self.expand_dependent(node)
        H, rss = solved
        self.consider(node.cols, rss)
        free = np.arange(node.n_fixed, node.cols.size)
        if not free.size:
            return None
        beta = H @ self.prob.stats.xty[node.cols]
        delta = beta**2 / np.diag(H)
        b2 = beta[free] ** 2 * np.diag(self.prob.stats.gram)[node.cols[free]]
        if self.size_bound(node, rss, delta[free], b2) >= self.best:
            return None
        order = free[np.lexsort((node.cols[free], -delta[free]))]  # most important first
        self.branch(node, order, H, rss + delta[order])
        return None

    def size_bound(self, node: _Node, rss: float, delta: np.ndarray, b2: np.ndarray) -> float:
        """Lower bound over the subtree, minimised over the number d of free columns dropped."""
        sizes = node.cols.size - np.arange(delta.size + 1)
        ok = sizes <= self.prob.max_size
        if not ok.any():
            return math.inf
        by_max = np.concatenate([[0.0], np.sort(delta)])
        by_sum = node.eig_min * np.concatenate([[0.0], np.cumsum(np.sort(b2))])
        rss_d = rss + np.maximum(by_max, by_sum)
        return float(np.min(self.prob.objective(rss_d[ok], sizes[ok])))

    def range_min_penalty(self, lo: np.ndarray, hi: int) -> np.ndarray:
        """``min(pen[lo_i : hi + 1])`` for each entry of ``lo`` (``inf`` if empty)."""
        hi = min(hi, self.prob.max_size)
        if hi < 0:
            return np.full(lo.shape, np.inf)
        suffix = np.minimum.accumulate(self.prob.pen[: hi + 1][::-1])[::-1]
        return np.where(lo <= hi, suffix[np.minimum(lo, hi)], np.inf)

    def branch(self, node: _Node, order: np.ndarray, H: np.ndarray, child_rss: np.ndarray) -> None:
        """Child i drops order[i] and forces in order[:i].  The most important is pushed first,
        so the small subtrees, which drop unimportant columns, are searched first."""
        q = node.cols.size
        lo = node.n_fixed + np.arange(order.size)
        bounds = _neg_loglik(child_rss, self.prob.stats) + self.range_min_penalty(lo, q - 1)
        i_best = int(np.argmin(child_rss))
        head = np.arange(node.n_fixed)
        for i in np.flatnonzero(bounds < self.best):
            keep = np.concatenate([head, order[:i], order[i + 1 :]])
            if i == i_best:
                self.consider(node.cols[keep], child_rss[i])
            child = (node.cols[keep], lo[i], child_rss[i], bounds[i], node.eig_min)
            self.stack.append(_Node(*child, parent=(H, keep, order[i])))

    def expand_dependent(self, node: _Node) -> None:
        """Dependent columns: children from scratch, bounded by the parent's RSS bound."""
        for i in range(node.n_fixed, node.cols.size):
            cols = np.delete(node.cols, i)
            bound = _neg_loglik(node.rss_bound, self.prob.stats)
            bound += self.range_min_penalty(np.array([i]), cols.size)[0]
            if bound < self.best:
                self.stack.append(
                    _Node(cols, i, node.rss_bound, bound, _min_eig(self.prob.stats, cols))
                )

    def run(self, root: _Node, deadline: float, node_limit: float) -> float:
        """Search; returns the proven gap (0 when the tree is exhausted)."""
        self.stack.append(root)
        while self.stack:
            if time.perf_counter() > deadline or self.nodes >= node_limit:
                return self.best - min(node.bound for node in self.stack)
            node = self.stack.pop()
            if node.bound < self.best:
                self.expand(node)
        return 0.0


def _root(prob: _Problem) -> _Node:
    """All columns, most strongly correlated with y first; the RSS bound of their span."""
    stats = prob.stats
    corr = stats.xty**2 / np.maximum(np.diag(stats.gram), 1e-300)
    cols = np.lexsort((np.arange(prob.p), -corr)).astype(np.intp)
    G = stats.gram[np.ix_(cols, cols)]
    coef = np.linalg.lstsq(G, stats.xty[cols], rcond=1e-13)[0]
    rss = max(stats.yty - float(stats.xty[cols] @ coef), 0.0)
    return _Node(cols, 0, rss, -math.inf, _min_eig(stats, cols))


def certified_best_subset(
    stats: GaussianStats,
    penalty: str | float = "bic",
    *,
    incumbent: np.ndarray | None = None,
    max_size: int | None = None,
    time_limit: float | None = None,
    node_limit: int | None = None,
    enumeration_limit: int = ENUMERATION_LIMIT,
) -> SubsetSearchResult:
    r"""The support minimising :math:`-\ell(S) + \mathrm{pen}(|S|)`, with a certificate.

    1. Incumbent: greedy forward selection and add/drop/swap local search, also from
       ``incumbent`` if given (:func:`heuristic_best_subset`).
    2. If at most ``enumeration_limit`` supports have an admissible size (e.g. p >= n, where
       :func:`admissible_max_size` is small), all are enumerated.
    3. Otherwise a best-bound-first leaps-and-bounds search over the drop-column tree (module
       docstring); the free columns of a node are ordered by decreasing drop increment
       :math:`\delta_j = \hat\beta_j^2 / H_{jj}`, so the large subtrees, which drop important
       columns, are pruned early.

    Only supports of linearly independent columns (every VIF below ``VIF_LIMIT``) and of size
    at most ``max_size`` are candidates: a dependent support has the same RSS and rank as an
    independent subset, which is smaller and so preferred.  The result is deterministic.  Ties
    between distinct supports equal to round-off (e.g. duplicated columns) go to the one found
    first.  The certificate is exact up to the round-off of the inverse-Gram downdates.

    :param stats: sufficient statistics (:class:`GaussianStats`).
    :param penalty: ``"aic"``, ``"bic"``, ``"aicc"``, ``"ebic"`` or λ >= 0.
    :param incumbent: optional boolean mask of a good support (e.g. from a relaxation).
    :param max_size: largest support size; default :func:`admissible_max_size`.
    :param time_limit: seconds after which the search stops with the best support found.
    :param node_limit: number of tree nodes after which the search stops.
    :param enumeration_limit: enumerate instead of branching when there are at most this many
        admissible supports (0 forces the branch and bound).
    :returns: a :class:`SubsetSearchResult`; ``gap`` bounds the sub-optimality when not
        ``optimal``.
    """
    t0 = time.perf_counter()
    prob = _Problem(stats, penalty, max_size)
    if time_limit is not None and not (isinstance(time_limit, (int, float)) and time_limit > 0):
        raise ValueError(f"time_limit must be a number > 0 or None, got {time_limit!r}")
    cols, value, nodes = _polish(prob, incumbent)
    if _n_supports(prob.p, prob.max_size) <= enumeration_limit:
        found, best, count = _enumerate(prob, range(prob.max_size + 1))
        return _result(prob, found if best < value else cols, 0.0, nodes + count, t0)
    search = _BranchAndBound(prob, cols, value)
    deadline = t0 + time_limit if time_limit is not None else math.inf
    gap = search.run(_root(prob), deadline, node_limit if node_limit is not None else math.inf)
    return _result(prob, search.best_cols, gap, nodes + search.nodes, t0)


__all__ = [
    "ENUMERATION_LIMIT",
    "MIN_RESIDUAL_DF",
    "VIF_LIMIT",
    "GaussianCriteria",
    "GaussianStats",
    "SubsetSearchResult",
    "admissible_max_size",
    "certified_best_subset",
    "exhaustive_best_subset",
    "gaussian_criteria",
    "heuristic_best_subset",
    "log_comb",
    "penalty_values",
    "subset_objective",
]
