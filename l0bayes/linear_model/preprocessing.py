r"""The data side of :class:`~l0bayes.linear_model.estimator.L0Regression`'s boundary: the
layout errors that name X or y, the columns that cannot be standardised, the constant columns
left out, and the standardisation itself.

*Standardised* means centred and scaled by the population standard deviation,

.. math::

    x^\ast_{ij} = (x_{ij} - \bar x_j) / s_{x_j}, \qquad
    s_{x_j}^2 = \tfrac1n \textstyle\sum_i (x_{ij} - \bar x_j)^2,

so that :math:`x_j^{\ast\top} x^\ast_j = n` (and y likewise for the Gaussian family); a
coefficient :math:`\beta^\ast_j` on the standardised scale is :math:`\beta_j = \beta^\ast_j
s_y / s_{x_j}` on X's (:meth:`Standardizer.coef_to_original`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.sparse import issparse

from l0bayes.validation import check_finite

#: Columns of X are standardised from their second moments: a column whose spread is below the
#: first bound, or whose values exceed the second, has squares that under- or overflow float64.
COLUMN_SCALE_RANGE = (1e-140, 1e140)


@dataclass(frozen=True)
class Standardizer:
    """Column centring/scaling of X (and of y for the Gaussian family; module docstring)."""

    x_mean: np.ndarray
    x_scale: np.ndarray
    y_mean: float
    y_scale: float

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray, family: str) -> Standardizer:
        """The means and population sds of checked ``X`` and ``y`` (y untouched unless
        Gaussian)."""
        x_scale = X.std(axis=0)
        if family == "gaussian":
            return cls(X.mean(axis=0), x_scale, float(y.mean()), float(y.std()) or 1.0)
        return cls(X.mean(axis=0), x_scale, 0.0, 1.0)

    def coef_to_original(
        self, coef_std: np.ndarray, intercept_std: float
    ) -> tuple[np.ndarray, float]:
        r"""Slopes and intercept on X's scale: :math:`\beta = \beta^\ast s_y / s_x`,
        :math:`b = \bar y + s_y b^\ast - \beta^\top \bar x`."""
        coef = coef_std * self.y_scale / self.x_scale
        intercept = self.y_mean + self.y_scale * intercept_std - float(coef @ self.x_mean)
        return coef, intercept


def parses_as_float(a: np.ndarray) -> bool:
    """Whether a text array converts to float64 (``"1.5"`` does, ``"red"`` does not)."""
    try:
        a.astype(np.float64)
    except ValueError:
        return False
    return True


def check_layout(X: object, y: object) -> None:
    """Errors that name X or y for the layouts scikit-learn's ``validate_data`` reports in
    generic words (text, wrong rank, row counts that differ); ``y=None``, sparse and object
    arrays are left to it (and to its messages, which scikit-learn's checks expect), except
    that sparse X and a data frame with names that are not all strings get a remedy."""
    if issparse(X):
        raise TypeError(
            f"X is a scipy sparse matrix of shape {X.shape}: sparse data is not supported, "
            "dense data is required; pass X.toarray() (the Gram matrix is dense anyway)"
        )
    columns = getattr(X, "columns", None)
    if columns is not None and not all(isinstance(c, str) for c in columns):
        if any(isinstance(c, str) for c in columns):
            kinds = sorted({type(c).__name__ for c in columns})
            raise TypeError(
                f"X's column names mix types {kinds}; name every column with a string "
                "(X.columns = X.columns.astype(str)) so the fit can keep and check them"
            )
    if y is None:
        return
    try:
        X, y = np.asarray(X), np.asarray(y)
    except ValueError:  # ragged nested lists: validate_data says so
        return
    _check_shapes(X, y)
    if y.dtype.kind in "biuf":  # validate_data's own check of y has a generic message
        check_finite(y.astype(np.float64), "y")


def _check_shapes(X: np.ndarray, y: np.ndarray) -> None:
    """Text where numbers are needed, X not 2-D, y not 1-D, or row counts that differ."""
    for name, a in (("X", X), ("y", y)):
        if a.dtype.kind in "US" and not parses_as_float(a):
            raise ValueError(
                f"{name} holds text (e.g. {a.flat[0]!r}) where numbers are needed; encode it as "
                "numbers first (categorical features as indicator columns, a binary response "
                "as 0/1)"
            )
    if X.ndim != 2:
        raise ValueError(
            f"X must be a 2-D array (n_samples, n_features), got shape {X.shape}; reshape a "
            "single feature with X.reshape(-1, 1)"
        )
    if not (y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)):
        raise ValueError(
            f"y must be 1-D (n_samples,): L0Regression fits one response, got shape {y.shape}"
        )
    if X.shape[0] != y.shape[0]:
        raise ValueError(
            f"X has {X.shape[0]} rows but y has {y.shape[0]} entries; pass one response per "
            "row of X"
        )


def _names(columns: np.ndarray, names: np.ndarray | None) -> list:
    """Column indices, as feature names where X had them."""
    return [str(names[j]) if names is not None else int(j) for j in columns]


def check_column_scales(
    keep: np.ndarray, low: np.ndarray, high: np.ndarray, names: np.ndarray | None = None
) -> None:
    """Refuse an X of constant columns only (``keep`` all False), or with kept columns too
    small or large to standardise (:data:`COLUMN_SCALE_RANGE`; ``low``/``high`` the column
    extremes, ``names`` the feature names if any)."""
    if not keep.any():
        raise ValueError(
            "every column of X is constant (zero variance): there is nothing to select; the "
            "model is the intercept alone (the mean of y)"
        )
    small, large = COLUMN_SCALE_RANGE
    spread, size = high - low, np.maximum(np.abs(low), np.abs(high))
    bad = keep & ((spread < small) | (size > large))
    if bad.any():
        shown = _names(np.flatnonzero(bad), names)
        j = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"X's columns {shown} cannot be standardised in float64: column {shown[0]} "
            f"spans {spread[j]:.3g} with values up to {size[j]:.3g} (outside "
            f"[{small:g}, {large:g}], where its squares under- or overflow); rescale them "
            "(multiply by a power of 10) before fitting"
        )


def warn_constant_columns(keep: np.ndarray, names: np.ndarray | None = None, stacklevel=2):
    """Warn that the constant columns (``keep`` False) are left out of the model."""
    if keep.all():
        return
    warnings.warn(
        f"X has constant columns {_names(np.flatnonzero(~keep), names)} (zero variance): they "
        "duplicate the intercept and carry no information, so they are left out of the "
        "model (coefficient 0, inclusion probability 0); drop them to silence this",
        UserWarning,
        stacklevel=stacklevel + 1,
    )


def check_chunk(chunk, index: int, p: int | None) -> tuple[np.ndarray, np.ndarray]:
    """One ``(X, y)`` block as float64 arrays, or a one-line ``ValueError`` naming chunk
    ``index`` and its problem (layout, text, no rows, a different number of columns, NaN)."""
    where = f"chunk {index}"
    try:
        X, y = chunk
    except (TypeError, ValueError):
        raise ValueError(f"{where} must be a pair (X, y), got {type(chunk).__name__}") from None
    if issparse(X):
        raise ValueError(f"{where}: sparse X is not supported; pass dense blocks of rows")
    try:
        X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: X and y must be numeric arrays ({err})") from None
    if X.ndim != 2:
        raise ValueError(f"{where}: X must be 2-D (n_rows, n_features), got shape {X.shape}")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.shape != (X.shape[0],):
        raise ValueError(
            f"{where}: y must be 1-D with one entry per row of X ({X.shape[0]}), got {y.shape}"
        )
    if X.shape[0] == 0:
        raise ValueError(f"{where} is empty (0 rows); drop empty chunks")
    if p is not None and X.shape[1] != p:
        raise ValueError(
            f"{where}: X has {X.shape[1]} features, but L0Regression is expecting {p} features "
            "as input (the columns of the earlier chunks)"
        )
    for name, a in (("X", X), ("y", y)):
        if not np.isfinite(a).all():
            raise ValueError(
                f"{where}: {name} contains NaN or infinite values; drop or impute them"
            )
    return X, y


__all__ = [
    "check_chunk",
    "COLUMN_SCALE_RANGE",
    "Standardizer",
    "check_column_scales",
    "check_layout",
    "parses_as_float",
    "warn_constant_columns",
]
