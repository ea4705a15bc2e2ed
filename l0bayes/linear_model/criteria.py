r"""Exact information criteria of refit models, the likelihood engines that compute them for
many supports at once, and :class:`CriterionScorer`, the criterion as a model scorer
(numpy, float64).

An L0-regularised fit with penalty :math:`\lambda` per included parameter minimises

.. math::

    \mathcal{C}_\lambda(S) = -\ell(\hat\beta_S) + \lambda\, k(S),

where :math:`\ell(\hat\beta_S)` is the maximised log-likelihood of the model refit with an
intercept on the columns :math:`S` and :math:`k(S) = \operatorname{rank}[\mathbf 1, X_S]`
is the number of estimated mean parameters (statsmodels' ``df_model + k_constant``).
Hence :math:`\lambda = 1` is :math:`\mathrm{AIC}/2` and :math:`\lambda = \tfrac12\log n` is
:math:`\mathrm{BIC}/2`:

.. math::

    \mathrm{AIC} = -2\ell + 2k, \qquad \mathrm{BIC} = -2\ell + k\log n.

This module computes these criteria exactly as statsmodels does (``OLS`` for the Gaussian
family, ``Logit`` for the Bernoulli family, ``Poisson`` for the Poisson family and the
discrete ``NegativeBinomial`` (NB2, :math:`\alpha` estimated and counted in k) for the
negative binomial, each with the ``offset`` in the linear predictor).  The searches over
them (exhaustive, local, by groups) live in :mod:`l0bayes.linear_model.search.subsets`.

Every support is scored through one *likelihood engine* (:class:`Likelihood`:
:class:`_GaussianScorer` or :class:`_GLMScorer`), whose ``extend`` method maps a
batch of supports, and each of them grown by one candidate column, to their log-likelihoods
and parameter counts; :class:`CriterionScorer` turns an engine and :math:`\lambda` into a
scorer of :mod:`l0bayes.model_space.scorer`.  Both engines detect
collinear columns with the same pivoted Cholesky sweep of the centred Gram matrix
(:mod:`~l0bayes.linear_model.sweep`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np

from l0bayes.linear_model.glm import NoMLEError, fit_glm
from l0bayes.linear_model.stats import GaussianStats
from l0bayes.linear_model.sweep import (
    BATCH_ELEMENTS,
    gram_blocks,
    grown_rss,
    partial_cholesky,
    row_chunks,
)
from l0bayes.model_space.scorer import BatchScorer
from l0bayes.validation import FAMILIES as FAMILIES
from l0bayes.validation import check_not_constant, check_offset, check_Xy

IMPROVE_TOL = 1e-10  # local search stops when no move lowers the criterion by more than this


@dataclass(frozen=True)
class InformationCriteria:
    r"""Log-likelihood and information criteria of a model refit on one support.

    ``k`` counts the estimated mean parameters, :math:`k = \operatorname{rank}[\mathbf 1, X_S]`
    (the intercept included), ``aic`` is :math:`-2\ell + 2k` and ``bic`` is
    :math:`-2\ell + k \log n`.
    """

    k: int
    log_likelihood: float
    aic: float
    bic: float
    n: int
    family: str

    def penalized(self, lam: float) -> float:
        r"""The L0-penalised objective :math:`-\ell + \lambda k` (``lam = 1`` gives AIC/2)."""
        return -self.log_likelihood + lam * self.k


@dataclass(frozen=True)
class SubsetResult:
    """A selected support (boolean mask of length p), its criteria and the search effort."""

    support: np.ndarray
    criteria: InformationCriteria
    n_evaluated: int


# --------------------------------------------------------------------------- validation


def check_support(support: object, p: int) -> np.ndarray:
    """Validate a boolean support mask of length ``p``."""
    mask = np.asarray(support)
    if mask.dtype != np.bool_ or mask.shape != (p,):
        raise ValueError(
            f"support must be a boolean mask of length p = {p}, got dtype {mask.dtype} and shape"
            f" {mask.shape}; convert column indices with np.isin(np.arange({p}), indices)"
        )
    return mask


def criterion_penalty(criterion: str | float, n: int) -> float:
    r"""The per-parameter penalty :math:`\lambda`: 1 for AIC, :math:`\tfrac12\log n` for BIC."""
    if isinstance(criterion, str):
        named = {"aic": 1.0, "bic": 0.5 * math.log(n)}
        if criterion.lower() not in named:
            raise ValueError(f"criterion must be 'aic', 'bic' or a float λ, got {criterion!r}")
        return named[criterion.lower()]
    if isinstance(criterion, bool) or not isinstance(criterion, (int, float, np.number)):
        raise ValueError(f"criterion must be 'aic', 'bic' or a float λ, got {criterion!r}")
    lam = float(criterion)
    if not (math.isfinite(lam) and lam >= 0.0):
        raise ValueError(f"criterion (the penalty λ) must be finite and >= 0, got {lam}")
    return lam


# ------------------------------------------------------------------------ linear algebra


# ------------------------------------------------------------------------------ scorers


class _Scores(NamedTuple):
    """Scores of B base supports and of each base grown by one of C candidate columns."""

    loglik: np.ndarray  # (B,) maximised log-likelihood of each base support
    k: np.ndarray  # (B,) its number of mean parameters, rank [1, X_S]
    grown_loglik: np.ndarray  # (B, C) the same for base b plus candidate c
    grown_k: np.ndarray  # (B, C)


class Likelihood(Protocol):
    n: int
    p: int
    family: str

    def extend(self, base: np.ndarray, candidates: np.ndarray, final: bool = False) -> _Scores:
        """Score the supports ``base`` (B, m) and ``base[b] + [candidates[c]]`` for all b, c.

        ``final`` marks the evaluation of a reported model: the base supports are then refit
        to full accuracy, and one whose MLE does not exist (separated logistic data, or a
        Gaussian support with k >= n parameters, which fits exactly) raises
        ``ValueError`` instead of scoring a log-likelihood of -inf (which keeps it out of every
        search)."""


NO_COLUMNS = np.empty(0, dtype=np.intp)


def evaluate_supports(
    scorer: Likelihood, idx: np.ndarray, final: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Log-likelihoods (B,) and parameter counts (B,) of the supports ``idx`` (B, m)."""
    scores = scorer.extend(idx, NO_COLUMNS, final)
    return scores.loglik, scores.k


class _GaussianScorer:
    r"""Exact OLS log-likelihoods of many supports from one centred Gram matrix.

    With the intercept absorbed by centring (:math:`X_c = X - \bar X`, :math:`y_c = y - \bar y`)
    the augmented Gram matrix of :math:`[X_c, y_c]` (read from
    :class:`~l0bayes.linear_model.stats.GaussianStats`) holds :math:`G = X_c^\top X_c`,
    :math:`g = X_c^\top y_c` and :math:`y_c^\top y_c`, and for a support S

    .. math::

        \mathrm{RSS}(S) = y_c^\top y_c - g_S^\top G_{SS}^{-1} g_S,

    the Schur complement of :math:`y_c` after sweeping the columns S
    (:func:`~l0bayes.linear_model.sweep.partial_cholesky`),
    at cost :math:`O(|S|^3)`.  Adding a candidate column j to S costs :math:`O(|S|^2)` more:
    with :math:`r_j` and :math:`e_j` the residual variance of column j and its residual
    covariance with y after the sweep,
    :math:`\mathrm{RSS}(S \cup j) = \mathrm{RSS}(S) - e_j^2 / r_j` (the next sweep step).
    The log-likelihood is statsmodels' OLS ``llf``

    .. math::

        \ell = -\tfrac n2 \left(\log 2\pi + \log(\mathrm{RSS}/n) + 1\right),

    and :math:`k = 1 + \operatorname{rank} X_{c,S} = \operatorname{rank}[\mathbf 1, X_S]`.
    The difference :math:`y_c^\top y_c - g_S^\top G_{SS}^{-1} g_S` loses relative accuracy
    :math:`\approx \epsilon / (1 - R^2)` when the fit is nearly perfect, so a *final*
    evaluation recomputes the RSS from the residuals :math:`y_c - X_{c,S}\hat\beta_S` (on the
    square root of the statistics)
    (:meth:`_refit_rss`), which is what statsmodels reports.
    """

    family = "gaussian"

    def __init__(self, X: np.ndarray, y: np.ndarray) -> None:
        check_not_constant(y)
        self._stats = GaussianStats.from_checked(X, y)
        self.n, self.p = self._stats.n, self._stats.p
        self._gram = self._stats.augmented

    def _refit_rss(self, columns: np.ndarray) -> float:
        r"""RSS from the residuals of the least-squares fit on ``columns``, solved by ``lstsq``
        (an SVD: accurate to the condition number of :math:`X_{c,S}`, not its square as the
        Gram sweep is) on the square root :math:`W` of the statistics, whose residual norm is
        that of the centred rows (:math:`[X_c, y_c] = QW`, Q orthonormal): what statsmodels
        reports."""
        root = self._stats.root
        if not columns.size:
            return self._stats.yty
        A = root[:, columns]
        beta = np.linalg.lstsq(A, root[:, -1], rcond=None)[0]
        residual = root[:, -1] - A @ beta
        return float(residual @ residual)

    def extend(self, base: np.ndarray, candidates: np.ndarray, final: bool = False) -> _Scores:
        """Score ``base`` (B, m) and each ``base[b] + [candidates[c]]`` (:class:`Likelihood`)."""
        batch, m = base.shape
        tail = np.append(candidates, self.p).astype(np.intp)  # the candidates, then y
        columns = np.column_stack([base.astype(np.intp), np.tile(tail, (batch, 1))])
        rss = np.empty((batch, tail.size))
        rank = np.empty((batch, tail.size), dtype=np.int64)
        for rows in row_chunks(batch, columns.shape[1]):
            rss[rows], rank[rows] = grown_rss(gram_blocks(self._gram, columns[rows]), m)
        k = rank + 1
        if final:
            for row, k_row in zip(base.astype(np.intp), k[:, -1], strict=True):
                if k_row >= self.n:
                    raise ValueError(_saturated_message(row, int(k_row), self.n))
            rss[:, -1] = [self._refit_rss(row) for row in base.astype(np.intp)]
        with np.errstate(divide="ignore"):
            loglik = -0.5 * self.n * (math.log(2.0 * math.pi) + np.log(rss / self.n) + 1.0)
        # k >= n: the fit is exact, the noise MLE is 0 and the log-likelihood unbounded (the
        # computed RSS is round-off); such supports are left out of every search
        loglik = np.where(k >= self.n, -math.inf, loglik)
        return _Scores(loglik[:, -1], k[:, -1], loglik[:, :-1], k[:, :-1])


def _saturated_message(columns: np.ndarray, k: int, n: int) -> str:
    shown = ", ".join(str(c) for c in columns[:8]) + (", ..." if columns.size > 8 else "")
    return (
        f"the support of {columns.size} columns ({shown}) has k = {k} mean parameters for"
        f" n = {n} observations: the least-squares fit is exact, the noise MLE is 0 and the"
        " Gaussian log-likelihood unbounded (AIC/BIC undefined); choose a support with k < n"
    )


class _GLMScorer:
    r"""Exact GLM log-likelihoods (logistic, Poisson, negative binomial), refitting every
    support by Newton/IRLS (:func:`l0bayes.linear_model.glm.fit_glm`, the one fitter of all
    three families, with the offset in the linear predictor).

    Collinear columns are removed with the same pivoted sweep of the centred Gram matrix as in
    the Gaussian case, so :math:`k = \operatorname{rank}[\mathbf 1, X_S]` as in statsmodels'
    ``Logit``/``Poisson`` (``df_model + 1``); the negative binomial also counts its dispersion
    :math:`\alpha`, :math:`k = \operatorname{rank}[\mathbf 1, X_S] + 1`, as statsmodels'
    ``NegativeBinomial`` (``df_model + 1 + k_extra``).  Each support costs a full fit,
    :math:`O(n|S|^2)` per Newton iteration, which is fine for small p.
    """

    def __init__(
        self, X: np.ndarray, y: np.ndarray, family: str, offset: np.ndarray | None = None
    ) -> None:
        self.n, self.p = X.shape
        self.family = family
        self._centred = X - X.mean(axis=0)
        self._gram = self._centred.T @ self._centred
        self._y = y
        self._offset = offset
        self._extra = 1 if family == "negative_binomial" else 0

    def _fit(self, columns: np.ndarray, final: bool) -> tuple[float, int]:
        _, accepted = partial_cholesky(gram_blocks(self._gram, columns[None, :]), columns.size)
        kept = columns[accepted[0]]
        k = kept.size + 1 + self._extra
        try:
            fit = fit_glm(self._centred[:, kept], self._y, self.family, self._offset, 0.0, kept)
        except NoMLEError:
            if final:
                raise
            return -math.inf, k
        return fit.loglik, k

    def _fit_each(self, idx: np.ndarray, final: bool) -> tuple[np.ndarray, np.ndarray]:
        fits = [self._fit(columns, final) for columns in idx]
        return np.array([f[0] for f in fits]), np.array([f[1] for f in fits], dtype=np.int64)

    def extend(self, base: np.ndarray, candidates: np.ndarray, final: bool = False) -> _Scores:
        """Score ``base`` (B, m) and every ``base[b] + [candidates[c]]``, one fit each."""
        batch, width = len(base), len(candidates)
        grown = np.column_stack([np.repeat(base, width, axis=0), np.tile(candidates, batch)])
        loglik, k = self._fit_each(base.astype(np.intp), final)
        grown_loglik, grown_k = self._fit_each(grown.astype(np.intp), final)
        return _Scores(loglik, k, grown_loglik.reshape(batch, width), grown_k.reshape(batch, width))


def make_likelihood(
    X: np.ndarray, y: np.ndarray, family: str, offset: np.ndarray | None = None
) -> Likelihood:
    """The scorer of a family; a Gaussian offset is subtracted from y (identity link)."""
    if family == "gaussian":
        return _GaussianScorer(X, y if offset is None else y - offset)
    return _GLMScorer(X, y, family, offset)


def penalised(loglik: np.ndarray, k: np.ndarray, lam: float) -> np.ndarray:
    r"""The L0-penalised objective :math:`-\ell + \lambda k` (+inf where the MLE does not exist)."""
    return -loglik + lam * k


def _criteria(scorer: Likelihood, columns: np.ndarray) -> InformationCriteria:
    loglik, k = evaluate_supports(scorer, columns[None, :], final=True)
    llf, k_int = float(loglik[0]), int(k[0])
    return InformationCriteria(
        k=k_int,
        log_likelihood=llf,
        aic=-2.0 * llf + 2.0 * k_int,
        bic=-2.0 * llf + math.log(scorer.n) * k_int,
        n=scorer.n,
        family=scorer.family,
    )


def subset_result(scorer: Likelihood, columns: np.ndarray, n_evaluated: int) -> SubsetResult:
    support = np.zeros(scorer.p, dtype=bool)
    support[columns] = True
    return SubsetResult(support, _criteria(scorer, np.flatnonzero(support)), n_evaluated)


class CriterionScorer(BatchScorer):
    r"""An information criterion as a model scorer (:mod:`l0bayes.model_space.scorer`): the
    log score of a support S is minus the penalised criterion in nats,

    .. math::

        s(S) = -\mathcal C_\lambda(S) = \ell(\hat\beta_S) - \lambda\, k(S),

    (:math:`-\tfrac12` AIC for :math:`\lambda = 1`, :math:`-\tfrac12` BIC for :math:`\lambda =
    \tfrac12 \log n`; :math:`-\infty` where the MLE does not exist), so that its maximiser is
    the best subset (:func:`~l0bayes.linear_model.search.subsets.best_subset`) and the
    normalised :math:`e^{s}` are the Akaike-type weights :math:`\propto
    e^{-\Delta\mathrm{IC}/2}`.  The log-likelihoods come from the family's likelihood engine
    (the Gram sweep of the Gaussian statistics or one IRLS fit per support).

    :param X: (n, p) design.
    :param y: (n,) response.
    :param criterion: ``"aic"``, ``"bic"`` or :math:`\lambda \ge 0`.
    :param family: as :func:`information_criteria`.
    :param offset: (n,) or ``None``.
    """

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray,
        criterion: str | float = "bic",
        family: str = "gaussian",
        offset: np.ndarray | None = None,
    ) -> None:
        X, y = check_Xy(X, y, family)
        offset = check_offset(offset, len(y))
        self._checked(make_likelihood(X, y, family, offset), criterion_penalty(criterion, len(y)))

    @classmethod
    def of(cls, likelihood: Likelihood, lam: float) -> CriterionScorer:
        """The scorer over a family's likelihood engine (already-checked data)."""
        out = cls.__new__(cls)
        out._checked(likelihood, lam)
        return out

    def _checked(self, likelihood: Likelihood, lam: float) -> None:
        self.likelihood, self.lam = likelihood, float(lam)
        self.n, self.p = likelihood.n, likelihood.p

    def score_indices(self, idx: np.ndarray) -> np.ndarray:
        """:math:`\\ell(\\hat\beta_S) - \\lambda k(S)` of each support ``idx[b]`` ``(B, m)``."""
        return -penalised(*evaluate_supports(self.likelihood, idx), self.lam)


# ---------------------------------------------------------------------------- public API


def information_criteria(
    X: np.ndarray,
    y: np.ndarray,
    support: np.ndarray,
    family: str = "gaussian",
    offset: np.ndarray | None = None,
) -> InformationCriteria:
    r"""Log-likelihood, AIC and BIC of the model refit with an intercept on ``X[:, support]``.

    Gaussian: OLS, :math:`\ell = -\tfrac n2(\log 2\pi + \log(\mathrm{RSS}/n) + 1)`.
    Bernoulli: the logistic-regression MLE by Newton/IRLS.  In both cases
    :math:`k = \operatorname{rank}[\mathbf 1, X_S]`, :math:`\mathrm{AIC} = -2\ell + 2k` and
    :math:`\mathrm{BIC} = -2\ell + k\log n`, matching statsmodels'
    ``OLS(y, add_constant(X_S)).fit()`` and ``Logit(...).fit()`` ``llf``/``aic``/``bic``.
    Poisson and negative binomial: ``sm.Poisson(y, add_constant(X_S), offset=offset)`` and
    ``sm.NegativeBinomial(...)`` (NB2 with :math:`\alpha` estimated; k counts it too).
    An empty support is the intercept-only model. ``offset`` (n,) enters the linear predictor
    with coefficient 1 (``log(exposure)`` for counts).

    Raises ``ValueError`` on invalid input, and when the MLE does not exist: for the Bernoulli
    family when the data are (quasi-)separated, for the Gaussian family when y is constant or
    :math:`k \ge n` (the fit is exact and the log-likelihood unbounded).
    """
    X, y = check_Xy(X, y, family)
    mask = check_support(support, X.shape[1])
    return information_criteria_checked(X, y, mask, family, check_offset(offset, len(y)))


def information_criteria_checked(
    X: np.ndarray, y: np.ndarray, support: np.ndarray, family: str, offset: np.ndarray | None
) -> InformationCriteria:
    """:func:`information_criteria` of data a caller has checked already (``X``, ``y`` and
    ``offset`` finite float64 of matching shapes, ``support`` a boolean mask): the estimator
    and the searches, which check their input once, call this."""
    return _criteria(make_likelihood(X, y, family, offset), np.flatnonzero(support))


def refit_coefficients(
    Xs: np.ndarray, y: np.ndarray, family: str = "gaussian", offset: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    r"""Maximum-likelihood intercept and coefficients of the refit on the columns ``Xs``.

    Gaussian: least squares on :math:`[\mathbf 1, X_S]` (of y minus the offset). Other
    families: the Newton/IRLS fit of :func:`information_criteria`; the coefficients solve
    :math:`[\mathbf 1, X_S]\beta = \hat\eta - o` (exact, as :math:`\hat\eta - o` lies in the
    column space). Collinear columns get the minimum-norm solution. ``Xs`` may have no
    columns (the intercept-only model) or be 1-D (one column). Raises ``ValueError`` on
    invalid input and when the MLE does not exist."""
    if np.ndim(Xs) == 1:
        Xs = np.reshape(Xs, (-1, 1))
    Xs, y = check_Xy(Xs, y, family, min_samples=1, min_features=0, x_name="Xs")
    return refit_coefficients_checked(Xs, y, family, check_offset(offset, len(y)))


def refit_coefficients_checked(
    Xs: np.ndarray, y: np.ndarray, family: str, offset: np.ndarray | None
) -> tuple[float, np.ndarray]:
    """:func:`refit_coefficients` of data a caller has checked already (``Xs`` 2-D)."""
    Z = np.column_stack([np.ones(len(y)), Xs])
    base = np.zeros(len(y)) if offset is None else offset
    target = y - base
    if family != "gaussian":
        centred = Xs - Xs.mean(axis=0)
        _, accepted = partial_cholesky((centred.T @ centred)[None], Xs.shape[1])
        kept = np.flatnonzero(accepted[0])
        target = fit_glm(Xs[:, kept], y, family, offset, 0.0, kept).eta - base
    params = np.linalg.lstsq(Z, target, rcond=None)[0]
    return float(params[0]), params[1:]


__all__ = [
    "BATCH_ELEMENTS",
    "IMPROVE_TOL",
    "NO_COLUMNS",
    "CriterionScorer",
    "InformationCriteria",
    "Likelihood",
    "SubsetResult",
    "check_support",
    "criterion_penalty",
    "evaluate_supports",
    "information_criteria",
    "information_criteria_checked",
    "make_likelihood",
    "penalised",
    "refit_coefficients",
    "refit_coefficients_checked",
    "subset_result",
]
