r"""Plain enumeration of every admissible support over the walk of
:func:`~l0bayes.model_space.scorer.support_batches`: the fast Gram formulas give lower bounds on
the criterion (their rounding error taken off), and only the supports they cannot rule out are
scored exactly by :class:`~l0bayes.linear_model.search.objective.Problem`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np

from l0bayes.linear_model.search.objective import (
    BATCH,
    Problem,
    SubsetSearchResult,
    log_comb,
    search_result,
)
from l0bayes.linear_model.stats import (
    UNIT_ROUNDOFF,
    VIF_LIMIT,
    GaussianStats,
    gram_rss_error,
)
from l0bayes.model_space.scorer import support_batches

# ------------------------------------------------------------------------------ enumeration


def batched_rss(stats: GaussianStats, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Lower bounds on the RSS of each support ``idx[b]`` (B, m) from the Gram matrix, with
    their rounding error (:func:`~l0bayes.linear_model.stats.gram_rss_error`) taken off:
    ``inf`` where the columns are certainly dependent, 0 where the fast formulas cannot tell
    (a VIF within a factor 2 of ``VIF_LIMIT``, or a numerically singular block): such
    supports are scored exactly.  Returns (lower bounds, fast RSS)."""
    batch, m = idx.shape
    if m == 0:
        return np.full(batch, stats.yty), np.full(batch, stats.yty)
    G = stats.gram[idx[:, :, None], idx[:, None, :]]
    scale = np.sqrt(np.diagonal(G, axis1=1, axis2=2))
    C = G / (scale[:, :, None] * scale[:, None, :])
    C = np.where(np.isfinite(C), C, 0.0)
    eig_min = np.linalg.eigvalsh(C)[:, 0]
    invertible = eig_min > 1e3 * m * UNIT_ROUNDOFF
    C[~invertible] = np.eye(m)
    Cinv = np.linalg.inv(C)
    vif = np.diagonal(Cinv, axis1=1, axis2=2)
    w = stats.xty[idx] / scale
    rss = stats.yty - np.einsum("bi,bij,bj->b", w, Cinv, w)
    relative = gram_rss_error(rss, stats.yty, vif.sum(axis=1), stats.p, m)
    lower = rss * (1.0 - np.minimum(relative, 1.0))
    dependent = invertible & (vif.max(axis=1) >= 2.0 * VIF_LIMIT)
    certain = invertible & (vif.max(axis=1) < 0.5 * VIF_LIMIT)
    lower = np.where(dependent, np.inf, np.where(certain, lower, 0.0))
    return lower, np.where(invertible, rss, np.nan)


def enumerate_supports(prob: Problem, sizes: Iterable[int]) -> int:
    """Offer every support of the given sizes (size then lexicographic order) to the
    incumbent; the fast formulas rule out most of them.  Returns how many were scored."""
    count = 0
    for m in sizes:
        for idx in support_batches(prob.p, m, max(1, BATCH // max(m * m, 1))):
            lower = prob.objective(batched_rss(prob.stats, idx)[0], m)
            count += len(idx)
            for i in np.flatnonzero(lower <= prob.limit())[
                np.argsort(lower[lower <= prob.limit()], kind="stable")
            ]:
                prob.offer(idx[i], float(lower[i]))
    return count


def n_supports(p: int, max_size: int) -> float:
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
    batched solve of their Gram blocks, re-scoring by QR every support that the Gram formulas
    cannot rule out.  Ties go to the smaller support, then to the lexicographically first;
    a tie that float64 cannot resolve leaves ``optimal`` False (``ties``).

    :param stats: sufficient statistics.
    :param penalty: see :func:`penalty_values`.
    :param max_size: largest support size (capped by the residual degrees of freedom).
    :param max_p: refuse problems with more columns than this.
    :returns: a :class:`SubsetSearchResult`.
    """
    start = time.perf_counter()
    if stats.p > max_p:
        raise ValueError(f"exhaustive search over 2**{stats.p} supports refused (max_p = {max_p})")
    prob = Problem(stats, penalty, max_size)
    count = enumerate_supports(prob, range(prob.max_size + 1))
    return search_result(prob, 0.0, count, start)


__all__ = [
    "batched_rss",
    "enumerate_supports",
    "exhaustive_best_subset",
    "n_supports",
]
