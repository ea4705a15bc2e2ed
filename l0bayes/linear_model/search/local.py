r"""Local search for the best subset: a forward path, then best-improvement add, drop and swap
moves scored by rank-one updates of the Gram formulas (their candidates re-scored exactly by
:class:`~l0bayes.linear_model.search.objective.Problem`).
"""

from __future__ import annotations

import math
import time

import numpy as np

from l0bayes.linear_model.search.objective import (
    Problem,
    SubsetSearchResult,
    check_support,
    search_result,
    solve_support,
)
from l0bayes.linear_model.stats import (
    VIF_LIMIT,
    GaussianStats,
)

# --------------------------------------------------------------------------- local search


def neighbour_rss(stats: GaussianStats, cols: np.ndarray) -> tuple[np.ndarray, ...]:
    r"""RSS after adding each column j, dropping each i in S, and swapping i for j.

    With :math:`H = G_{SS}^{-1}`, :math:`B = A_{:,S} H` (A the augmented co-moment matrix),
    the Schur complement :math:`C = A - B A_{S,:}` gives :math:`\mathrm{RSS}_{S+j} =
    C_{yy} - C_{jy}^2 / C_{jj}`; dropping i adds back :math:`B_{:,i} B_{:,i}^\top / H_{ii}`.
    Returns (add (p,), drop (|S|,), swap (|S|, p)); ``inf`` where a column is collinear.
    These only rank the moves of the local search, whose every step is re-scored exactly.
    """
    A = stats.augmented
    factor = solve_support(stats, cols)
    H, rss = factor.H, factor.rss
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


def moved(cols: np.ndarray, kind: str, at: tuple[int, ...]) -> np.ndarray:
    """The support after the move ``kind`` at index ``at`` of :func:`neighbour_rss`'s arrays."""
    if kind == "add":
        return np.sort(np.append(cols, at[0]))
    if kind == "drop":
        return np.delete(cols, at[0])
    return np.sort(np.append(np.delete(cols, at[0]), at[1]))


def improve(prob: Problem, cols: np.ndarray, value: float) -> tuple[np.ndarray, float, int]:
    """Best-improvement add/drop/swap search from ``cols`` (exact objective ``value``)."""
    moves = 0
    while True:
        add, drop, swap = neighbour_rss(prob.stats, cols)
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
        candidate = moved(cols, kind, at)
        exact = prob.score(candidate)
        if not exact < value:  # round-off in the update formulas: stop
            return cols, value, moves
        cols, value = candidate, exact


def forward_path(prob: Problem) -> tuple[np.ndarray, float]:
    """Greedy forward selection up to ``max_size``; the best prefix of the path."""
    cols, value = np.zeros(0, dtype=np.intp), prob.score(np.zeros(0, dtype=np.intp))
    best_cols, best = cols, value
    while cols.size < prob.max_size:
        add = neighbour_rss(prob.stats, np.sort(cols))[0]
        if not np.isfinite(add).any():
            break
        cols = np.append(cols, int(np.argmin(add)))
        value = prob.score(np.sort(cols))
        if not math.isfinite(value):
            break
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
    prob = Problem(stats, penalty, max_size)
    nodes = polish(prob, start)
    return search_result(prob, math.inf if prob.p else 0.0, nodes, t0)


def polish(prob: Problem, start: np.ndarray | None) -> int:
    """Local searches from the forward path and from ``start``; the better local optimum is
    offered to the incumbent.  Returns the number of moves scored."""
    starts = [forward_path(prob)]
    if start is not None:
        cols = np.flatnonzero(check_support(start, prob.p))
        starts.append((cols, prob.score(cols)))
    nodes = 0
    for cols, value in starts:
        if not np.isfinite(value):
            continue
        cols, value, count = improve(prob, cols, value)
        nodes += count
        prob.offer(cols)
    return nodes


# ------------------------------------------------------------------------- branch and bound


__all__ = [
    "forward_path",
    "heuristic_best_subset",
    "improve",
    "moved",
    "neighbour_rss",
    "polish",
]
