r"""Sufficient statistics of the Gaussian linear model, kept as a numerically stable square root.

For the augmented rows :math:`z_i = (x_i, y_i)` the statistics are n, the mean :math:`\bar z`
and the centred co-moment matrix :math:`M = Z_c^\top Z_c`, whose blocks are the centred Gram
matrix :math:`G = X_c^\top X_c`, :math:`g = X_c^\top y_c` and :math:`y_c^\top y_c`.

:class:`GaussianStats` does not store :math:`M` itself but a **square root** :math:`W` with
:math:`W^\top W = M`: the triangular factor of a Householder QR of the centred data, merged chunk
by chunk by the QR analogue of Chan, Golub & LeVeque's pairwise update,

.. math::

    W = \operatorname{qr}_R\begin{pmatrix} W_a \\ W_b \\
        \sqrt{n_a n_b / (n_a + n_b)}\,(\bar z_b - \bar z_a)^\top \end{pmatrix},

each chunk centred at its own mean first.  Householder QR is backward stable column by column,
so a residual sum of squares computed from :math:`W` (:meth:`GaussianStats.exact_rss`) is the
exact RSS of data within a relative :math:`O(u)` of each column: its error grows with the
condition number of :math:`X_S`, not with its square as :math:`y^\top y - g^\top G^{-1} g` does
(Golub & Van Loan 2013, §5.3).  The Gram matrix :math:`M = W^\top W` is formed once from it, for
the fast formulas of the searches, each of which carries the error bound of
:func:`gram_rss_error`.

**Error bounds** (u the unit round-off, :math:`r = \mathrm{RSS}/y_c^\top y_c`, :math:`b_j =
\hat\beta_j \|x_{c,j}\| / \|y_c\|` the standardised coefficients, :math:`V = \sum_j
\mathrm{VIF}_j \ge \|C_S^{-1}\|` the trace of the inverse correlation matrix of the support):

* from the square root (:func:`qr_rss_error`): a backward error :math:`\epsilon` per column of
  :math:`[X_S, y]` moves the RSS by at most :math:`2\epsilon\,\|e\|\,(\|y_c\| + \sum_j
  |\hat\beta_j| \|x_{c,j}\|)`, so :math:`|\delta r| / r \le 2\epsilon(1 + \|b\|_1)/\sqrt r`;
* from the Gram matrix (:func:`gram_rss_error`): a perturbation :math:`E` of the augmented
  correlation matrix moves :math:`r = 1/(A^{-1})_{yy}` by
  :math:`|\delta r| / r \le \|E\|\,(1 + \|b\|_2^2) / r \le \|E\|\,(1 + V) / r`
  (first-order perturbation of :math:`A^{-1}`; :math:`\|b\|_2^2 \le (1 - r)\|C_S^{-1}\|`).

Both use :math:`\epsilon = c\,(m + k + 2)\,u` (m the rows reduced) with the safety factor ``c`` of
:data:`ROUNDING_SAFETY`; the test suite checks them against 50-digit references on designs
with condition numbers up to :math:`10^{8}` and :math:`1 - R^2` down to :math:`10^{-12}`.

References

1. Chan, T. F., Golub, G. H. & LeVeque, R. J. (1979). Updating formulae and a pairwise
   algorithm for computing sample variances. Stanford CS report 79-773.

2. Golub, G. H. & Van Loan, C. F. (2013). Matrix Computations, 4th ed., §5.3 (the
   sensitivity of least squares) and §6.5 (updating QR factorizations).

3. Higham, N. J. (2002). Accuracy and Stability of Numerical Algorithms, 2nd ed., ch. 19-20.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.linalg import solve_triangular

from l0bayes.validation import check_count, check_not_constant, check_positive, check_Xy

VIF_LIMIT = 1e10
r"""Columns are numerically dependent when a variance inflation factor :math:`G_{jj}
(G_{SS}^{-1})_{jj} = 1/(1 - R_j^2)` reaches this value (selection.py's pivot tolerance
:math:`10^{-10}` on :math:`1 - R_j^2`, made independent of the column order)."""

UNIT_ROUNDOFF = np.finfo(np.float64).eps / 2
"""u, the unit round-off of float64."""

ROUNDING_SAFETY = 8.0
"""The constant c of the error bounds (module docstring)."""


def _check_finite(a: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values; drop or impute those rows first")


def as_chunk(X: object, y: object) -> tuple[np.ndarray, np.ndarray]:
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


@dataclass(frozen=True)
class ExactFit:
    r"""The least-squares fit of y on a support, from the square root of the statistics.

    ``rss`` (:math:`y_c^\top y_c` for the empty support), ``coef`` (slopes on X's scale),
    ``vif`` (the variance inflation factors, ``inf`` where a column is exactly dependent),
    ``dependent`` (a VIF reached :data:`VIF_LIMIT`), ``rss_error`` (a bound on the absolute
    error of ``rss``, :func:`qr_rss_error`), and ``inverse_root`` :math:`R_S^{-1}` and
    ``norms`` :math:`\|x_{c,j}\|`, with which :math:`G_{SS}^{-1} = D^{-1} R_S^{-1}
    R_S^{-\top} D^{-1}` (:math:`D` = diag(``norms``)).
    """

    rss: float
    coef: np.ndarray
    vif: np.ndarray
    dependent: bool
    rss_error: float
    inverse_root: np.ndarray
    norms: np.ndarray

    def inverse_gram(self) -> np.ndarray:
        r""":math:`G_{SS}^{-1}` from the QR, accurate to :math:`u\kappa(R_S)` (not squared)."""
        return (self.inverse_root @ self.inverse_root.T) / np.outer(self.norms, self.norms)


class GaussianStats:
    r"""Sufficient statistics of a Gaussian linear model with intercept (module docstring): the
    one accumulator of the regression half.

    Built from arrays (:meth:`from_arrays`, or :meth:`from_data` with the checks of the
    conjugate priors; :meth:`from_checked` for arrays a caller has checked already), from
    chunks of rows (:meth:`from_chunks`, :meth:`update`, which is what ``partial_fit``
    calls), it keeps n, the means, each column's (and y's) range and the
    square root :math:`W`.  Everything else is a view:

    * ``gram`` :math:`G`, ``xty`` :math:`g`, ``yty`` and ``augmented``, read from
      :math:`W^\top W` (formed once per update);
    * ``corr`` :math:`R = D^{-1} G D^{-1}` and ``r`` :math:`= D^{-1} g / \sqrt{y_c^\top
      y_c}` (:math:`D = \mathrm{diag}(G)^{1/2}`), the correlation scale of the conjugate
      priors;
    * :meth:`columns` (a column subset), :meth:`standardized` (the centred data with unit
      second moments) and :meth:`scales`;
    * :meth:`exact_rss`, a least-squares fit of a support from :math:`W` itself.

    The torch tensors of the SVI relaxation (:class:`~l0bayes.linear_model.model.
    RegressionStats`) and of the raw slab's enumeration (:mod:`~l0bayes.linear_model.exact`)
    are derived from it.
    """

    def __init__(self, p: int) -> None:
        self.n = 0
        self.p = int(p)
        self._mean = np.zeros(p + 1)
        self._root = np.zeros((0, p + 1))
        self._moment: np.ndarray | None = None
        self._corr: tuple[np.ndarray, np.ndarray] | None = None
        self._yty = 0.0
        self.x_min, self.x_max = np.full(p, np.inf), np.full(p, -np.inf)
        self.y_min, self.y_max = math.inf, -math.inf

    @classmethod
    def empty(cls, p: int) -> GaussianStats:
        """The statistics of no rows with ``p`` columns (:meth:`update` adds rows)."""
        return cls(p)

    @classmethod
    def from_arrays(cls, X: object, y: object) -> GaussianStats:
        """Statistics of the data ``X`` (n, p) and ``y`` (n,) in one pass."""
        return cls.from_checked(*as_chunk(X, y))

    @classmethod
    def from_checked(cls, X: np.ndarray, y: np.ndarray) -> GaussianStats:
        """Statistics of ``X`` (n, p) and ``y`` (n,) already checked (finite float64 arrays of
        matching shapes, e.g. by :func:`~l0bayes.validation.check_Xy` at a fit's boundary):
        :meth:`from_arrays` without checking them again."""
        return cls(X.shape[1]).update_checked(X, y)

    @classmethod
    def from_data(cls, X: object, y: object) -> GaussianStats:
        """Statistics of ``X`` (n, p) and ``y`` (n,) checked for the conjugate priors: at least
        3 rows and one column, finite, y not constant (one-line ``ValueError`` otherwise)."""
        X, y = check_Xy(X, y, min_samples=3)
        check_not_constant(y)
        return cls.from_checked(X, y)

    @classmethod
    def of(cls, stats: GaussianStats) -> GaussianStats:
        """``stats`` (e.g. accumulated from chunks of rows) checked for the conjugate priors:
        n >= 3, p >= 1 and :math:`y_c^\top y_c > 0`; returns ``stats`` itself."""
        if not isinstance(stats, GaussianStats):
            raise ValueError(f"stats must be a GaussianStats, got {type(stats).__name__}")
        check_count("n", stats.n, minimum=3)
        if stats.p < 1:
            raise ValueError("gram must be (p, p) and xty (p,) with p >= 1")
        check_positive("yty", float(stats.yty))
        return stats

    @classmethod
    def from_chunks(cls, chunks: Iterable[tuple[object, object]]) -> GaussianStats:
        """Statistics accumulated over an iterable of ``(X_chunk, y_chunk)`` blocks of rows."""
        stats = None
        for X, y in chunks:
            X, y = as_chunk(X, y)
            stats = (stats or cls(X.shape[1])).update(X, y)
        if stats is None:
            raise ValueError("from_chunks got no chunks; pass at least one (X, y) block")
        return stats

    def update(self, X: object, y: object) -> GaussianStats:
        """Merge the rows ``X`` (n_b, p), ``y`` (n_b,) into the statistics; returns ``self``."""
        X, y = as_chunk(X, y)
        if X.shape[1] != self.p:
            raise ValueError(f"chunk has {X.shape[1]} columns, the statistics have {self.p}")
        return self.update_checked(X, y)

    def update_checked(self, X: np.ndarray, y: np.ndarray) -> GaussianStats:
        """:meth:`update` with rows already checked (finite float64, p columns, e.g. by
        :func:`~l0bayes.linear_model.preprocessing.check_chunk`); returns ``self``."""
        if not len(y):
            return self
        Z = np.column_stack([X, y])
        mean_b = Z.mean(axis=0)
        n_a, n_b = self.n, len(y)
        delta = mean_b - self._mean
        shift = delta * math.sqrt(n_a * n_b / (n_a + n_b))
        stacked = np.vstack([self._root, Z - mean_b, shift[None, :]])
        self._root = np.linalg.qr(stacked, mode="r")
        self._mean += delta * (n_b / (n_a + n_b))
        self.n = n_a + n_b
        self._moment, self._corr = None, None
        self._yty = float(np.dot(self._root[:, -1], self._root[:, -1]))
        self.x_min = np.minimum(self.x_min, X.min(axis=0))
        self.x_max = np.maximum(self.x_max, X.max(axis=0))
        self.y_min, self.y_max = min(self.y_min, float(y.min())), max(self.y_max, float(y.max()))
        return self

    def columns(self, keep: np.ndarray) -> GaussianStats:
        """The statistics of the columns ``keep`` (a bool mask or indices) and y, same rows
        (``self`` when ``keep`` is a mask of all columns)."""
        keep = np.asarray(keep)
        if keep.dtype == bool and keep.shape == (self.p,) and keep.all():
            return self
        index = np.arange(self.p)[keep]
        out = GaussianStats(index.size)
        out.n = self.n
        out._mean = self._mean[np.append(index, self.p)].copy()
        out._root = self._root[:, np.append(index, self.p)].copy()
        out._yty = self._yty
        out.x_min, out.x_max = self.x_min[index].copy(), self.x_max[index].copy()
        out.y_min, out.y_max = self.y_min, self.y_max
        return out

    def scales(self) -> tuple[np.ndarray, float]:
        r"""The root mean squares of the centred columns and of :math:`y_c`,
        :math:`\sqrt{G_{jj}/n}` and :math:`\sqrt{y_c^\top y_c / n}` (1 where 0)."""
        x_scale = np.sqrt(np.diag(self.gram) / self.n)
        return np.where(x_scale > 0, x_scale, 1.0), math.sqrt(self.yty / self.n) or 1.0

    def standardized(self) -> GaussianStats:
        r"""The statistics of the centred, rescaled data :math:`(X_c D^{-1}, y_c / s_y)`
        (:math:`D`, :math:`s_y` of :meth:`scales`): means 0, :math:`G_{jj} = n`, and
        :math:`y^\top y = n` exactly when y is not constant."""
        x_scale, y_scale = self.scales()
        scale = np.append(x_scale, y_scale)
        out = GaussianStats(self.p)
        out.n = self.n
        out._root = self._root / scale
        out._moment = self.augmented / np.outer(scale, scale)
        out._yty = float(self.n) if self._yty > 0 else 0.0
        out._moment[-1, -1] = out._yty
        out.x_min = (self.x_min - self.x_mean) / x_scale
        out.x_max = (self.x_max - self.x_mean) / x_scale
        out.y_min = (self.y_min - self.y_mean) / y_scale
        out.y_max = (self.y_max - self.y_mean) / y_scale
        return out

    @property
    def root(self) -> np.ndarray:
        r"""The square root :math:`W` ``(q, p + 1)``, :math:`W^\top W = M` (y last)."""
        return self._root

    @property
    def augmented(self) -> np.ndarray:
        r"""The (p + 1, p + 1) co-moment matrix of :math:`[X_c, y_c]` (y last), :math:`W^\top
        W`."""
        if self._moment is None:
            self._moment = self._root.T @ self._root
        return self._moment

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
        return self.augmented[:-1, :-1]

    @property
    def xty(self) -> np.ndarray:
        r""":math:`X_c^\top y_c`, shape (p,)."""
        return self.augmented[:-1, -1]

    @property
    def yty(self) -> float:
        r""":math:`y_c^\top y_c`, the total sum of squares."""
        return self._yty

    @property
    def corr(self) -> np.ndarray:
        """Correlation matrix :math:`R` of the columns (a constant column is a zero row and
        column), shape (p, p)."""
        return self._correlations()[0]

    @property
    def r(self) -> np.ndarray:
        r""":math:`r = D^{-1} X_c^\top y_c / \sqrt{y_c^\top y_c}`, the marginal correlations."""
        return self._correlations()[1]

    def _correlations(self) -> tuple[np.ndarray, np.ndarray]:
        if self._corr is None:
            gram = self.gram
            d = np.sqrt(np.clip(np.diag(gram), 0.0, None))
            d = np.where(d > 0, d, 1.0)
            corr = gram / d[:, None] / d[None, :]
            np.fill_diagonal(corr, (np.diag(gram) > 0).astype(float))
            self._corr = corr, self.xty / d / math.sqrt(self.yty)
        return self._corr

    def exact_rss(self, cols: np.ndarray) -> ExactFit:
        r"""Least squares of y on the columns ``cols`` (and the intercept) from the square root:
        a Householder QR of the column-scaled :math:`[W_S, w_y]`, :math:`\mathrm{RSS} =
        R_{yy}^2`, the slopes and the VIFs from :math:`R_S^{-1}`.  Costs :math:`O(q k^2)`."""
        cols = np.asarray(cols, dtype=np.intp)
        k, y_norm = cols.size, math.sqrt(self.yty)
        if k == 0:
            empty = np.zeros(0)
            return ExactFit(self.yty, empty, empty, False, 0.0, np.zeros((0, 0)), empty)
        A = self._root[:, np.append(cols, self.p)]
        norms = np.sqrt(np.einsum("ij,ij->j", A, A))
        if np.any(norms[:-1] <= 0.0) or A.shape[0] <= k:
            return _dependent(k)
        R = np.linalg.qr(A / np.where(norms > 0, norms, 1.0), mode="r")
        diag = np.abs(np.diag(R)[:k])
        if np.any(diag <= UNIT_ROUNDOFF * k):
            return _dependent(k)
        R_inv = solve_triangular(R[:k, :k], np.eye(k))
        vif = np.einsum("ij,ij->i", R_inv, R_inv)
        b = R_inv @ R[:k, k]  # standardised slopes: beta_j |x_j| / |y|
        rss = float(R[k, k] ** 2) * self.yty if y_norm > 0 else 0.0
        error = qr_rss_error(rss, self.yty, b, self.n + self._root.shape[0], k)
        coef = b * y_norm / norms[:-1]
        dependent = bool(vif.max() >= VIF_LIMIT)
        return ExactFit(rss, coef, vif, dependent, error, R_inv, norms[:-1])


def _dependent(k: int) -> ExactFit:
    nan = np.full(k, math.nan)
    return ExactFit(
        math.nan, nan, np.full(k, np.inf), True, math.inf, np.full((k, k), math.nan), nan
    )


def qr_rss_error(rss: float, yty: float, b: np.ndarray, rows: int, k: int) -> float:
    r"""Bound on the absolute error of an RSS computed by Householder QR of the square root
    (module docstring): :math:`2\epsilon\sqrt{\mathrm{RSS}\, y^\top y}\,(1 + \|b\|_1)` plus the
    second-order term :math:`\epsilon^2 y^\top y (1 + \|b\|_1)^2`, with :math:`\epsilon =
    c(m + k + 2)u`; ``rows`` m counts the rows that QR reduced (n data rows and the square
    root's own), Householder QR's worst-case backward error per column being :math:`O(mu)`."""
    eps = ROUNDING_SAFETY * (rows + k + 2) * UNIT_ROUNDOFF
    spread = 1.0 + float(np.abs(b).sum())
    return 2.0 * eps * math.sqrt(max(rss, 0.0) * yty) * spread + (eps * spread) ** 2 * yty


def gram_rss_error(rss, yty: float, vif_sum, p: int, k: int, steps: int = 0):
    r"""Bound on the relative error of RSS values computed from the Gram matrix :math:`W^\top
    W` (module docstring): :math:`\epsilon (1 + V) / r` with :math:`\epsilon = c(p + k +
    2)(k + 1)(1 + s)u`, where :math:`(k + 1)` covers the norm of the perturbation of a
    :math:`(k + 1)`-square block and ``steps`` :math:`s` counts rank-one downdates of an inverse
    since it was last factorised.  ``inf`` where :math:`r \le 0`; a bound of 1 or more means
    the value carries no information.  Floats in, a float out (the search's hot path), or
    arrays of ``rss`` and ``vif_sum``."""
    eps = ROUNDING_SAFETY * (p + k + 2) * (k + 1) * (1 + steps) * UNIT_ROUNDOFF
    if isinstance(rss, np.ndarray):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(rss > 0, eps * (1.0 + vif_sum) * yty / rss, np.inf)
    return eps * (1.0 + vif_sum) * yty / rss if rss > 0 else math.inf


__all__ = [
    "ROUNDING_SAFETY",
    "UNIT_ROUNDOFF",
    "VIF_LIMIT",
    "ExactFit",
    "GaussianStats",
    "as_chunk",
    "gram_rss_error",
    "qr_rss_error",
]
