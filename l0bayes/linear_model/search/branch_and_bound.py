r"""Certified best-subset selection for the Gaussian linear model, from sufficient statistics.

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

import math
import time
from dataclasses import dataclass

import numpy as np

from l0bayes.linear_model.search.exhaustive import (
    enumerate_supports,
    n_supports,
)
from l0bayes.linear_model.search.local import (
    polish,
)
from l0bayes.linear_model.search.objective import (
    ENUMERATION_LIMIT,
    USABLE,
    Factor,
    Problem,
    SubsetSearchResult,
    increment_error,
    neg_loglik,
    search_result,
    solve_support,
)
from l0bayes.linear_model.stats import (
    ROUNDING_SAFETY,
    UNIT_ROUNDOFF,
    GaussianStats,
    gram_rss_error,
    qr_rss_error,
)


@dataclass
class _Node:
    """A support ``cols`` whose first ``n_fixed`` columns are forced in.

    ``parent`` = (factor, keep, j) of the parent's :class:`Factor`, the positions ``keep`` of
    ``cols`` in the parent and the dropped position j, for the lazy rank-one downdate
    :math:`H' = H_{kk} - H_{kj}H_{jk}/H_{jj}`; ``None``: factorise from scratch.
    """

    cols: np.ndarray
    n_fixed: int
    rss: float  # the RSS of cols (from the parent), or a lower bound on it
    rss_error: float  # the error of rss that its downdates inherit (the exact part)
    bound: float  # a lower bound on the objective of every support of the subtree
    eig_min: float  # a lower bound on the smallest eigenvalue of the correlation of cols
    parent: tuple[Factor, np.ndarray, int] | None = None


def min_eig(stats: GaussianStats, cols: np.ndarray) -> float:
    """A lower bound on the smallest eigenvalue of the correlation matrix of the columns
    ``cols`` (0 if singular): the computed value less its rounding error."""
    if cols.size == 0:
        return 1.0
    G = stats.gram[np.ix_(cols, cols)]
    scale = np.sqrt(np.maximum(np.diag(G), 1e-300))
    eig = float(np.linalg.eigvalsh(G / np.outer(scale, scale))[0])
    return max(eig - ROUNDING_SAFETY * (stats.p + 2) * cols.size * UNIT_ROUNDOFF, 0.0)


class _BranchAndBound:
    r"""Depth-first leaps-and-bounds search over the drop-column tree (module docstring).

    Dropping the free columns D from a node S raises the RSS by
    :math:`\hat\beta_D^\top (H_{DD})^{-1} \hat\beta_D`, which is at least the largest
    single-drop increment :math:`\max_{j\in D}\delta_j` and at least :math:`\mu \sum_{j\in D}
    b_j^2`, where :math:`b_j = \hat\beta_j \sqrt{G_{jj}}` and :math:`\mu` is the smallest
    eigenvalue of the correlation matrix of S (Cauchy interlacing: it only grows down the tree,
    so a node inherits its parent's).  :meth:`size_bound` minimises the larger of the two over
    the number of drops.  Every RSS and increment enters a bound less its rounding error, so
    the bounds hold for the exact objective; a node whose downdated inverse has a relative RSS
    error above ``USABLE`` is factorised again by QR.
    """

    def __init__(self, prob: Problem) -> None:
        self.prob = prob
        self.gram_diag = np.diag(prob.stats.gram).copy()
        self.nodes = 0
        self.stack: list[_Node] = []

    def factor(self, node: _Node) -> Factor | None:
        """The node's factor: downdated from its parent's, or from scratch when it has no
        parent or the downdates have lost too much accuracy; ``None`` if dependent."""
        stats = self.prob.stats
        if node.parent is None:
            return solve_support(stats, node.cols)
        parent, keep, j = node.parent
        H = parent.H
        Hj = H[keep, j]
        H = H[keep[:, None], keep] - Hj[:, None] * (Hj / H[j, j])
        steps = 1 if parent.exact else parent.steps + 1
        vif_sum = float(H.diagonal() @ self.gram_diag[node.cols])
        k = node.cols.size
        relative = gram_rss_error(node.rss, stats.yty, vif_sum, stats.p, k, steps)
        if relative > USABLE:
            return solve_support(stats, node.cols)
        error = node.rss_error + relative * node.rss
        return Factor(H, node.rss, error, False, steps, node.rss_error)

    def expand(self, node: _Node) -> None:
        self.nodes += 1
        factor = self.factor(node)
        if factor is None:
            return self.expand_dependent(node)
        stats, H, rss = self.prob.stats, factor.H, factor.rss
        self.prob.offer(
            node.cols, float(self.prob.objective(rss - factor.rss_error, node.cols.size))
        )
        free = np.arange(node.n_fixed, node.cols.size)
        if not free.size:
            return None
        beta = H @ stats.xty[node.cols]
        h = H.diagonal()
        delta = beta**2 / h
        g_diag = self.gram_diag[node.cols]
        vif_sum = float(h @ g_diag)
        inc_error = increment_error(factor, stats, vif_sum)
        b2 = beta[free] ** 2 * g_diag[free]
        if self.size_bound(node, factor, delta[free], inc_error, b2) > self.prob.limit():
            return None
        order = free[np.lexsort((node.cols[free], -delta[free]))]  # most important first
        if factor.exact:
            base = factor.rss_error + inc_error(delta[order])
            error = base
        else:  # the children's own Gram bound, one downdate further
            base = np.full(order.size, factor.base_error)
            gram = factor.rss_error - factor.base_error
            error = base + gram * (factor.steps + 1) / factor.steps
        self.branch(node, order, factor, rss + delta[order], base, error)
        return None

    def size_bound(self, node: _Node, factor: Factor, delta, inc_error, b2) -> float:
        """Lower bound over the subtree, minimised over the number d of free columns dropped;
        every term less its rounding error."""
        sizes = node.cols.size - np.arange(delta.size + 1)
        ok = sizes <= self.prob.max_size
        if not ok.any():
            return math.inf
        ordered = np.sort(delta)
        by_max = np.concatenate([[0.0], np.maximum(ordered - inc_error(ordered), 0.0)])
        spread = 4.0 * float(inc_error(np.array([self.prob.stats.yty]))[0]) / self.prob.stats.yty
        sums = np.concatenate([[0.0], np.cumsum(np.sort(b2))]) * max(1.0 - spread, 0.0)
        rss_d = factor.rss - factor.rss_error + np.maximum(by_max, node.eig_min * sums)
        return float(np.min(self.prob.objective(np.maximum(rss_d[ok], 0.0), sizes[ok])))

    def range_min_penalty(self, lo: np.ndarray, hi: int) -> np.ndarray:
        """``min(pen[lo_i : hi + 1])`` for each entry of ``lo`` (``inf`` if empty)."""
        hi = min(hi, self.prob.max_size)
        if hi < 0:
            return np.full(lo.shape, np.inf)
        suffix = np.minimum.accumulate(self.prob.pen[: hi + 1][::-1])[::-1]
        return np.where(lo <= hi, suffix[np.minimum(lo, hi)], np.inf)

    def branch(self, node, order, factor: Factor, child_rss, child_base, child_error) -> None:
        """Child i drops order[i] and forces in order[:i].  The most important is pushed first,
        so the small subtrees, which drop unimportant columns, are searched first.  A child
        carries the error its downdates inherit (``child_base``); ``child_error`` bounds the
        error of ``child_rss`` itself."""
        q = node.cols.size
        lo = node.n_fixed + np.arange(order.size)
        lower_rss = np.maximum(child_rss - child_error, 0.0)
        bounds = neg_loglik(lower_rss, self.prob.stats) + self.range_min_penalty(lo, q - 1)
        i_best = int(np.argmin(child_rss))
        head = np.arange(node.n_fixed)
        for i in np.flatnonzero(bounds <= self.prob.limit()):
            keep = np.concatenate([head, order[:i], order[i + 1 :]])
            if i == i_best:
                lower = float(self.prob.objective(lower_rss[i], q - 1))
                self.prob.offer(node.cols[keep], lower)
            child = (node.cols[keep], lo[i], child_rss[i], child_base[i], bounds[i], node.eig_min)
            self.stack.append(_Node(*child, parent=(factor, keep, order[i])))

    def expand_dependent(self, node: _Node) -> None:
        """Dependent columns: children from scratch, bounded by the parent's RSS bound."""
        lower_rss = max(node.rss - node.rss_error, 0.0)
        for i in range(node.n_fixed, node.cols.size):
            cols = np.delete(node.cols, i)
            bound = neg_loglik(lower_rss, self.prob.stats)
            bound += self.range_min_penalty(np.array([i]), cols.size)[0]
            if bound <= self.prob.limit():
                eig = min_eig(self.prob.stats, cols)
                self.stack.append(_Node(cols, i, node.rss, node.rss_error, bound, eig))

    def run(self, root: _Node, deadline: float, node_limit: float) -> float:
        """Search; returns the proven gap (0 when the tree is exhausted)."""
        self.stack.append(root)
        while self.stack:
            if time.perf_counter() > deadline or self.nodes >= node_limit:
                return self.prob.limit() - min(node.bound for node in self.stack)
            node = self.stack.pop()
            if node.bound <= self.prob.limit():
                self.expand(node)
        return 0.0


def _root(prob: Problem) -> _Node:
    """All columns, most strongly correlated with y first; the RSS of their span (by a
    least-squares solve on the square root) and its error bound."""
    stats = prob.stats
    corr = stats.xty**2 / np.maximum(np.diag(stats.gram), 1e-300)
    cols = np.lexsort((np.arange(prob.p), -corr)).astype(np.intp)
    A = stats.root[:, :-1]
    norms = np.sqrt(np.einsum("ij,ij->j", A, A))
    norms = np.where(norms > 0, norms, 1.0)
    coef = np.linalg.lstsq(A / norms, stats.root[:, -1], rcond=1e-13)[0]
    resid = stats.root[:, -1] - (A / norms) @ coef
    rss = float(resid @ resid)
    b = coef / math.sqrt(stats.yty)
    error = qr_rss_error(rss, stats.yty, b, stats.n + A.shape[0], prob.p)
    return _Node(cols, 0, rss, error, -math.inf, min_eig(stats, cols))


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
    3. Otherwise a depth-first leaps-and-bounds search over the drop-column tree (module
       docstring); the free columns of a node are ordered by decreasing drop increment
       :math:`\delta_j = \hat\beta_j^2 / H_{jj}`, so the large subtrees, which drop important
       columns, are pruned early.

    **Rounding.** The fast formulas (Gram blocks, downdated inverses) lose accuracy as the
    square of the condition number; every value they produce enters the search less its
    rounding-error bound (:mod:`l0bayes.linear_model.stats`), and every support they cannot
    rule out is re-scored by a QR of the square root of the statistics, which is what the
    answer's ``objective`` is.  Two supports of different column spaces whose exact objectives
    lie within their error bounds cannot be told apart in float64: they are returned in
    ``ties`` and the answer is not certified.

    Only supports of linearly independent columns (every VIF below ``VIF_LIMIT``) and of size
    at most ``max_size`` are candidates: a dependent support has the same RSS and rank as an
    independent subset, which is smaller and so preferred.  The result is deterministic.
    Supports of the same column space (e.g. duplicated columns) are one model: the first
    found is returned.

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
    prob = Problem(stats, penalty, max_size)
    if time_limit is not None and not (isinstance(time_limit, (int, float)) and time_limit > 0):
        raise ValueError(f"time_limit must be a number > 0 or None, got {time_limit!r}")
    nodes = polish(prob, incumbent)
    if n_supports(prob.p, prob.max_size) <= enumeration_limit:
        count = enumerate_supports(prob, range(prob.max_size + 1))
        return search_result(prob, 0.0, nodes + count, t0)
    search = _BranchAndBound(prob)
    deadline = t0 + time_limit if time_limit is not None else math.inf
    gap = search.run(_root(prob), deadline, node_limit if node_limit is not None else math.inf)
    return search_result(prob, gap, nodes + search.nodes, t0)


__all__ = [
    "certified_best_subset",
    "min_eig",
]
