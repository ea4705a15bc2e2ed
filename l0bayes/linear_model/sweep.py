r"""The pivoted Cholesky sweep of many Gram blocks at once (numpy, float64), with which the
likelihood engines of :mod:`~l0bayes.linear_model.criteria` score supports and detect
collinear columns: :func:`partial_cholesky` sweeps the first m columns of each block and drops
the (numerically) dependent ones, :func:`grown_rss` reads off the RSS of a base support and of
the base grown by each later column, :func:`gram_blocks` gathers the blocks and
:func:`row_chunks` bounds the memory of a batch (:data:`BATCH_ELEMENTS`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

PIVOT_RTOL = 1e-10  # column j is collinear if its Schur pivot is below this fraction of G_jj
BATCH_ELEMENTS = 1 << 22  # float64 entries of one batch of Gram blocks (32 MiB)


def partial_cholesky(A: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Batched Cholesky sweep of the first ``m`` columns, dropping (numerically) dependent ones.

    For each symmetric positive semi-definite block ``A[b]`` of shape (q, q), column j < m has
    the pivot (Schur complement)

    .. math::

        d_j = A_{jj} - \lVert L_{j,<j} \rVert^2
            = \min_c \lVert a_j - A_{<j} c \rVert^2 \quad (A = Z^\top Z),

    the squared residual of column j regressed on the *accepted* columns before it.  Column j is
    accepted iff :math:`d_j > \tau A_{jj}` (:math:`\tau` = ``PIVOT_RTOL``), i.e. iff
    :math:`1 - R_j^2 > \tau`; a rejected column gets a zero column in L and so changes no later
    pivot.  The number of accepted columns is the rank of the first m columns, and the Schur
    complement of the remaining columns is :math:`A_{>m,>m} - L_{>m} L_{>m}^\top`.

    Returns ``L`` of shape (B, q, m) and ``accepted`` of shape (B, m).
    """
    batch, q, _ = A.shape
    L = np.zeros((batch, q, m))
    accepted = np.zeros((batch, m), dtype=bool)
    for j in range(m):
        row = L[:, j, :j]
        pivot = A[:, j, j] - np.einsum("bk,bk->b", row, row)
        accepted[:, j] = pivot > PIVOT_RTOL * A[:, j, j]
        root = np.sqrt(np.where(accepted[:, j], pivot, 1.0))
        L[:, j, j] = np.where(accepted[:, j], root, 0.0)
        below = A[:, j + 1 :, j] - (L[:, j + 1 :, :j] @ row[:, :, None])[:, :, 0]
        L[:, j + 1 :, j] = np.where(accepted[:, j, None], below / root[:, None], 0.0)
    return L, accepted


def gram_blocks(gram: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The principal sub-matrices ``gram[idx[b]][:, idx[b]]`` for every row b of ``idx``."""
    return gram[idx[:, :, None], idx[:, None, :]]


def row_chunks(n_rows: int, width: int) -> Iterator[slice]:
    """Slices of at most ``BATCH_ELEMENTS / width**2`` rows covering ``range(n_rows)``."""
    step = max(1, BATCH_ELEMENTS // max(width * width, 1))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def grown_rss(A: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    r"""RSS and rank of the first ``m`` columns of each Gram block grown by each later column.

    ``A`` (B, q, q) is the Gram matrix of [base (m), candidates (q - m - 1), y].  Entry c of the
    results is for the base plus candidate c; the last entry is for the base alone.  A candidate
    that is collinear with the base (:math:`r_j \le \tau A_{jj}`) leaves RSS and rank unchanged.
    """
    L, accepted = partial_cholesky(A, m)
    tail = L[:, m:, :]
    diagonal = np.diagonal(A, axis1=1, axis2=2)[:, m:]
    variance = diagonal - np.einsum("bck,bck->bc", tail, tail)  # r_j; last entry RSS(base)
    covariance = A[:, m:, -1] - (tail @ tail[:, -1, :, None])[:, :, 0]  # e_j
    new = variance > PIVOT_RTOL * diagonal
    new[:, -1] = False
    gain = np.where(new, covariance**2 / np.where(new, variance, 1.0), 0.0)
    rss = np.maximum(variance[:, -1:] - gain, 0.0)
    return rss, accepted.sum(axis=1)[:, None] + new


__all__ = [
    "BATCH_ELEMENTS",
    "PIVOT_RTOL",
    "gram_blocks",
    "grown_rss",
    "partial_cholesky",
    "row_chunks",
]
