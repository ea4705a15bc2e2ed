r"""The λ path: L0-penalised fits over a grid of code costs, with AIC and BIC marked.

For each :math:`\lambda` in the grid, :class:`~l0bayes.L0Regression` (``penalty=λ``)
minimises :math:`-\ell(S) + \lambda k(S)` over supports :math:`S` (relaxation, then exact
polish). The grid always contains the two information criteria,

.. math::

    \lambda_{\rm AIC} = 1, \qquad \lambda_{\rm BIC} = \tfrac12 \log n,

because :math:`-\ell + \lambda k` is :math:`\mathrm{AIC}/2` and :math:`\mathrm{BIC}/2` there.
Each row reports the selected model's size, its maximised log-likelihood, AIC, BIC (refit by
maximum likelihood, as statsmodels reports them) and, when given, its validation and test
errors. For :math:`p \le` ``max_exhaustive`` the exhaustive best-subset AIC and BIC models
(:func:`l0bayes.linear_model.selection.best_subset`) are added for comparison.

The figure of a path is :func:`l0bayes.viz.plot_lambda_path` (fits draw no figures).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from l0bayes.linear_model.estimator import L0Regression
from l0bayes.linear_model.selection import SubsetResult, best_subset

__all__ = ["LambdaPath", "PathRow", "default_lambdas", "lambda_path"]


@dataclass(frozen=True)
class PathRow:
    r"""One fit of the path. ``k`` counts the mean parameters (intercept included, as in
    AIC/BIC); ``n_selected`` the selected features. ``criterion`` is ``"AIC"`` or ``"BIC"``
    on the rows fitted with :math:`\lambda = 1` or :math:`\tfrac12\log n`, else ``""``.
    Errors are mean squared errors (Gaussian) or mean log loss (Bernoulli); NaN when no data
    were given."""

    lam: float
    criterion: str
    support: np.ndarray
    n_selected: int
    k: int
    log_likelihood: float
    aic: float
    bic: float
    val_error: float
    test_error: float
    seconds: float


@dataclass(frozen=True)
class LambdaPath:
    """The rows in increasing λ and, for small p, the exhaustive best subsets."""

    rows: list[PathRow]
    n: int
    best_subset_aic: SubsetResult | None
    best_subset_bic: SubsetResult | None

    @property
    def lam_bic(self) -> float:
        return 0.5 * math.log(self.n)

    def selected(self, criterion: str) -> PathRow:
        """The row fitted with the ``"AIC"`` or ``"BIC"`` penalty."""
        return next(r for r in self.rows if r.criterion == criterion.upper())

    def as_dict(self) -> dict[str, np.ndarray]:
        """Column arrays (``support`` is an (L, p) boolean array)."""
        return {key: np.array([asdict(r)[key] for r in self.rows]) for key in asdict(self.rows[0])}

    def records(self) -> list[dict]:
        """One dict per row, the support as a string of column indices (for CSV files)."""
        return [{**asdict(r), "support": _indices(r.support)} for r in self.rows]

    def matches_best_subset(self, criterion: str) -> bool | None:
        """Whether the AIC or BIC row selected the exhaustive best subset (None: not run)."""
        best = getattr(self, f"best_subset_{criterion.lower()}")
        if best is None:
            return None
        return bool(np.array_equal(self.selected(criterion).support, best.support))

    def to_markdown(self) -> str:
        """The table, AIC/BIC rows marked, exhaustive best subsets appended."""
        lines = [
            "| λ | criterion | features | k | log-lik | AIC | BIC | val. error | test error |",
            "|---:|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in self.rows:
            lines.append(
                f"| {r.lam:.3g} | {r.criterion} | {_columns(r.support)} | {r.k} "
                f"| {r.log_likelihood:.2f} | {r.aic:.2f} | {r.bic:.2f} "
                f"| {r.val_error:.4g} | {r.test_error:.4g} |"
            )
        for name, best in (("AIC", self.best_subset_aic), ("BIC", self.best_subset_bic)):
            if best is not None:
                c = best.criteria
                lines.append(
                    f"| best subset | {name} (exhaustive) | {_columns(best.support)} | {c.k} "
                    f"| {c.log_likelihood:.2f} | {c.aic:.2f} | {c.bic:.2f} | | |"
                )
        return "\n".join(lines) + "\n"


def _indices(support: np.ndarray) -> str:
    """The selected columns' positions, space-separated (``"0 2 5"``)."""
    return " ".join(map(str, np.flatnonzero(support)))


def _columns(support: np.ndarray) -> str:
    return "{" + _indices(support).replace(" ", ",") + "}"


def default_lambdas(n: int, num: int = 12) -> np.ndarray:
    r"""``num`` geometric steps from 0.1 to :math:`4 \lambda_{\rm BIC}`, plus
    :math:`\lambda_{\rm AIC}` and :math:`\lambda_{\rm BIC}`, sorted."""
    lam_bic = 0.5 * math.log(n)
    return np.unique(np.concatenate([np.geomspace(0.1, 4 * lam_bic, num), [1.0, lam_bic]]))


def _prediction_error(est, X, y) -> float:
    if X is None or y is None:
        return math.nan
    if est.family == "bernoulli":
        from sklearn.metrics import log_loss

        return float(log_loss(y, est.predict_proba(X)[:, 1], labels=[0, 1]))
    return float(np.mean((np.asarray(y) - est.predict(X)) ** 2))


def lambda_path(
    X: np.ndarray,
    y: np.ndarray,
    lams: Sequence[float] | None = None,
    *,
    X_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    X_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    max_exhaustive: int = 20,
    **estimator_kwargs,
) -> LambdaPath:
    r"""Fit ``L0Regression(penalty=λ, **estimator_kwargs)`` for each λ and tabulate the path.

    :param lams: code costs in nats per parameter (:func:`default_lambdas` if None); λ = 1 and
        :math:`\tfrac12\log n` are always added, so the AIC and BIC rows exist.
    :param X_val, y_val, X_test, y_test: optional held-out data for the error columns.
    :param max_exhaustive: largest p for which the exhaustive best subsets are computed.
    :param estimator_kwargs: passed on (e.g. ``n_steps``, ``seed``, ``family``).
    """
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    n, p = X.shape
    lam_bic = 0.5 * math.log(n)
    grid = default_lambdas(n) if lams is None else np.asarray(lams, dtype=np.float64)
    grid = np.unique(np.concatenate([grid, [1.0, lam_bic]]))
    estimator_kwargs.setdefault("progress", False)
    rows = []
    for lam in grid:
        start = time.perf_counter()
        est = L0Regression(penalty=float(lam), **estimator_kwargs).fit(X, y)
        seconds = time.perf_counter() - start
        c = est.information_criteria()
        criterion = "AIC" if lam == 1.0 else "BIC" if lam == lam_bic else ""
        rows.append(
            PathRow(
                lam=float(lam),
                criterion=criterion,
                support=est.selected_.copy(),
                n_selected=int(est.selected_.sum()),
                k=c.k,
                log_likelihood=c.log_likelihood,
                aic=c.aic,
                bic=c.bic,
                val_error=_prediction_error(est, X_val, y_val),
                test_error=_prediction_error(est, X_test, y_test),
                seconds=seconds,
            )
        )
    family = estimator_kwargs.get("family", "gaussian")
    best = {
        crit: best_subset(X, y, criterion=crit, family=family) if p <= max_exhaustive else None
        for crit in ("aic", "bic")
    }
    return LambdaPath(rows, n, best["aic"], best["bic"])


def __getattr__(name: str):
    """``plot_lambda_path`` moved to :mod:`l0bayes.viz`; the old name still works, with a
    :class:`DeprecationWarning`."""
    if name == "plot_lambda_path":
        warnings.warn(
            "l0bayes.linear_model.plot_lambda_path moved to l0bayes.viz.plot_lambda_path",
            DeprecationWarning,
            stacklevel=2,
        )
        from l0bayes.viz.plotting import plot_lambda_path

        return plot_lambda_path
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
