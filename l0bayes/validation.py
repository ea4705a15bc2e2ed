"""Checks of user input shared by the public entry points.

Each check raises one ``ValueError`` (a ``FileNotFoundError`` is the data loaders' business)
whose message names the argument, says what was wrong with it and how to fix it, *before* any
computation starts: bad input gives neither a NaN result nor a traceback from deep inside
numpy or torch.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from numbers import Integral, Real

import numpy as np

#: Response families: linear, logistic, and log-linear count regressions (Poisson, and the
#: negative binomial NB2 with :math:`\mathrm{Var}(y) = \mu + \alpha\mu^2`, α estimated).
FAMILIES = ("gaussian", "bernoulli", "poisson", "negative_binomial")
#: The count families: y must hold non-negative integers.
COUNT_FAMILIES = ("poisson", "negative_binomial")


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``, else a ``ValueError`` listing them."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_positive(name: str, value: object) -> float:
    """``float(value)`` for a finite real number > 0 (bools, strings, NaN and inf refused)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 < value < math.inf:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_count(name: str, value: object, minimum: int = 1, maximum: int | None = None) -> int:
    """``int(value)`` for an integer ``>= minimum`` (bools and floats such as 10.0 refused)
    and, when given, ``<= maximum``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        kind = {0: "a non-negative integer", 1: "a positive integer"}.get(
            minimum, f"an integer >= {minimum}"
        )
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum:,}, got {value:,}")
    return int(value)


# ---------------------------------------------------------------------------- arrays
def as_float_array(a: object, name: str) -> np.ndarray:
    """``a`` as a float64 numpy array; text, complex or ragged input gets a ``ValueError``."""
    try:
        array = np.asarray(a)
        if array.dtype.kind == "c":
            raise TypeError("complex values cannot be converted")
        return array.astype(np.float64, copy=False)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{name} must be a numeric array convertible to float64 ({err}); encode text or "
            "categorical columns as numbers first"
        ) from err


def check_finite(a: np.ndarray, name: str) -> None:
    """Refuse NaN and infinite entries, and entries so large that sums of their squares (the
    Gram matrices and variances every fit forms) overflow float64."""
    bad = ~np.isfinite(a)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} contains {int(bad.sum())} NaN or infinite value(s) (first at index {first});"
            " drop or impute those rows first"
        )
    if a.size:
        largest = float(np.abs(a).max())
        if largest > math.sqrt(np.finfo(np.float64).max / max(len(a), 1)):
            raise ValueError(
                f"{name} has values as large as {largest:.3g}, whose sum of squares overflows "
                f"float64; rescale {name} (e.g. divide it by its standard deviation)"
            )


def check_binary(y: np.ndarray, name: str = "y") -> None:
    """Refuse a Bernoulli target that is not 0/1 or holds a single class."""
    is_binary = (y == 0.0) | (y == 1.0)
    if not is_binary.all():
        found = np.unique(y[~is_binary])[:5]
        raise ValueError(
            f"{name} must contain only 0 and 1 for family='bernoulli', found {found.tolist()};"
            " recode the outcome as 0/1"
        )
    if y.min() == y.max():
        raise ValueError(
            f"{name} contains only the class {int(y[0])}: the logistic-regression MLE does not"
            " exist (the intercept diverges); both classes must be present"
        )


def check_counts(y: np.ndarray, family: str, name: str = "y") -> None:
    r"""Refuse a count response that is not a non-negative integer, or that is all zero (the
    intercept's MLE is then :math:`-\infty`)."""
    bad = (y < 0) | (y != np.round(y))
    if bad.any():
        found = np.unique(y[bad])[:5]
        raise ValueError(
            f"{name} must hold non-negative integer counts for family={family!r}, found "
            f"{found.tolist()}; model a continuous response with family='gaussian'"
        )
    if y.size and y.max() == 0:
        raise ValueError(
            f"{name} is all zero: the {family} MLE does not exist (the intercept diverges to "
            "-inf); there is nothing to model"
        )


def check_offset(offset: object, n: int, name: str = "offset") -> np.ndarray | None:
    r"""``offset`` as a finite float64 array of shape (n,), or ``None``. An offset enters the
    linear predictor with coefficient 1, :math:`\eta_i = o_i + b + x_i^\top\beta`; for an
    exposure :math:`t_i` (time at risk, population) pass :math:`o_i = \log t_i`."""
    if offset is None:
        return None
    array = as_float_array(offset, name)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.shape != (n,):
        raise ValueError(
            f"{name} must be 1-D with one entry per row of X (n = {n}), got shape {array.shape}"
        )
    check_finite(array, name)
    return array


def check_Xy(
    X: object,
    y: object,
    family: str = "gaussian",
    min_samples: int = 2,
    min_features: int = 1,
    x_name: str = "X",
) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert ``X`` (n, p) and ``y`` (n,) (or (n, 1)) to finite float64 arrays,
    with at least ``min_samples`` rows and ``min_features`` columns; for
    ``family='bernoulli'`` y must hold both classes 0 and 1, for the count families
    non-negative integers, not all zero."""
    check_choice("family", family, FAMILIES)
    X = as_float_array(X, x_name)
    y = as_float_array(y, "y")
    if X.ndim != 2:
        raise ValueError(
            f"{x_name} must be a 2-D array of shape (n_samples, n_features), got shape "
            f"{X.shape}; reshape a single feature with {x_name}.reshape(-1, 1)"
        )
    n, p = X.shape
    if p < min_features:
        raise ValueError(f"{x_name} has 0 features (shape {X.shape}); pass at least one column")
    if n < min_samples:
        raise ValueError(
            f"need at least {min_samples} samples (rows of {x_name}), got n_samples = {n}"
        )
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(
            f"y must be 1-D with one entry per row of {x_name} (n = {n}), got shape {y.shape};"
            " pass y.ravel() for a column vector"
        )
    check_finite(X, x_name)
    check_finite(y, "y")
    if family == "bernoulli":
        check_binary(y)
    if family in COUNT_FAMILIES:
        check_counts(y, family)
    return X, y


def check_not_constant(y: np.ndarray, name: str = "y") -> None:
    """Refuse a constant Gaussian response: every model then fits it exactly, the noise scale
    is 0 and the log-likelihood unbounded."""
    if y.size and y.min() == y.max():
        raise ValueError(
            f"{name} is constant (every value is {y[0]:g}): the Gaussian noise scale is 0 and "
            "the log-likelihood unbounded, so there is nothing to select; check that the right "
            "column is the response"
        )


def feature_names(est, names=None) -> list[str]:
    """Column names: ``names`` if given, else those seen in ``fit``, else ``x0, x1, ...``."""
    if names is not None:
        names = [str(n) for n in names]
        if len(names) != est.n_features_in_:
            raise ValueError(
                f"names has {len(names)} entries for the {est.n_features_in_} features the model "
                "was fitted on; pass one name per column of X"
            )
        return names
    if hasattr(est, "feature_names_in_"):
        return [str(n) for n in est.feature_names_in_]
    return [f"x{j}" for j in range(est.n_features_in_)]


def checks_Xy(**options) -> Callable[[Callable], Callable]:
    """Decorator for a public function ``f(X, y, ...)``: it checks ``X`` and ``y`` with
    :func:`check_Xy` (``options`` are its keywords) and runs the body on the checked arrays.
    The body alone is ``f.checked``, for internal callers whose data are checked already (the
    estimator checks its input once, at its boundary)."""

    def decorate(body: Callable) -> Callable:
        @functools.wraps(body)
        def public(X, y, *args, **kwargs):
            X, y = check_Xy(X, y, **options)
            return body(X, y, *args, **kwargs)

        public.checked = body
        return public

    return decorate


__all__ = [
    "COUNT_FAMILIES",
    "FAMILIES",
    "as_float_array",
    "check_Xy",
    "checks_Xy",
    "check_binary",
    "check_choice",
    "check_counts",
    "check_count",
    "check_finite",
    "check_not_constant",
    "check_offset",
    "check_positive",
    "feature_names",
]
