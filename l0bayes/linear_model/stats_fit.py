r"""The Gaussian information-criterion answer from sufficient statistics alone: the certified
best subset, its OLS refit and its criteria, computed from the square root :math:`R` of
:math:`[X\ y]^\top[X\ y]` (centred; :class:`~l0bayes.linear_model.stats.GaussianStats`) as
accurately as a QR on the rows, so ``fit``, ``fit_chunks`` and ``partial_fit`` give one answer.

On a support :math:`S` with :math:`k = |S| + 1` mean parameters, the maximum-likelihood noise
variance is :math:`\hat\sigma^2 = \mathrm{RSS}_S / n` and

.. math::

    \ell_S = -\tfrac n2\,\bigl(\log(2\pi\,\mathrm{RSS}_S/n) + 1\bigr), \qquad
    \mathrm{AIC} = -2\ell_S + 2k, \qquad \mathrm{BIC} = -2\ell_S + k\log n,

as statsmodels reports them.

:func:`fit_stats` is the whole fit of ``L0Regression`` on this path (Gaussian, an information
criterion, full batch): the relaxation on the standardised statistics
(:func:`~l0bayes.linear_model.relaxation.relax_stats`; none for at most
:data:`~l0bayes.linear_model.params.ENUMERATION_LIMIT` columns with ``method="auto"`` and
``polish=True``, since the certified search then enumerates every support anyway), the
certified search from its support (:func:`certify`), the OLS refit and the criteria
(:func:`stats_attributes`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from l0bayes.linear_model.criteria import InformationCriteria
from l0bayes.linear_model.ic_weights import InclusionWeights, inclusion_weights
from l0bayes.linear_model.params import (
    ENUMERATION_LIMIT,
    code_cost,
    prior_inclusion,
    search_criterion,
)
from l0bayes.linear_model.preprocessing import Standardizer
from l0bayes.linear_model.relaxation import relax_stats
from l0bayes.linear_model.search import (
    RSS_FLOOR,
    SubsetSearchResult,
    admissible_max_size,
    certified_best_subset,
    gaussian_criteria,
)
from l0bayes.linear_model.stats import GaussianStats


@dataclass(frozen=True)
class SubsetAnswer:
    """The certified search's support, its result, the criterion's inclusion weights, whether
    it is proved optimal and its gap to the optimum (nats)."""

    support: np.ndarray
    search: SubsetSearchResult
    ic_weights: InclusionWeights
    optimal: bool
    gap: float


def certified_subset(
    stats: GaussianStats, criterion: str | float, start: np.ndarray, time_limit: float | None
) -> SubsetAnswer:
    """The certified best subset from the statistics (:func:`~l0bayes.linear_model.search.
    certified_best_subset`), ``start`` the incumbent, and the criterion's inclusion weights;
    warns when p >= n, when float64 ties leave it uncertified, when ``time_limit`` ran out and
    when it fits y exactly."""
    n, p = stats.n, stats.p
    if p >= n:
        warnings.warn(
            f"p = {p} features and only n = {n} observations: AIC and BIC cannot judge "
            "subsets chosen from so many candidates (noise fits exactly); the search uses "
            f"{criterion!r} and at most {admissible_max_size(n, p)} features "
            "(subset_search.admissible_max_size)",
            UserWarning,
            stacklevel=5,
        )
    res = certified_best_subset(stats, criterion, incumbent=start, time_limit=time_limit)
    weights = inclusion_weights(stats, criterion, res.support, max_size=res.max_size)
    if res.ties:
        names = [np.flatnonzero(res.support).tolist()] + [t.tolist() for t in res.ties]
        warnings.warn(
            f"the best subset is not certified: the supports {names} (columns of X) have "
            f"criteria within {res.gap:.3g} nats of each other, which float64 rounding "
            "cannot resolve (ill-conditioned columns, a near-exact fit); the answer is the "
            "first of them (search_.ties)",
            UserWarning,
            stacklevel=5,
        )
    elif not res.optimal:
        warnings.warn(
            f"the best subset was not certified within time_limit={time_limit} s: the "
            f"answer is within {res.gap:.3g} nats of the optimum (criterion_gap_)",
            UserWarning,
            stacklevel=5,
        )
    warn_exact_fit(stats, res.support)
    return SubsetAnswer(res.support, res, weights, bool(res.optimal), float(res.gap))


def ols_from_stats(stats: GaussianStats, support: np.ndarray) -> tuple[np.ndarray, float]:
    r"""OLS slopes (with intercept) on ``support`` and their RSS from the square root of the
    statistics (:meth:`GaussianStats.exact_rss`, a QR: as accurate as a fit on the rows); for
    dependent columns the minimum-norm solution of the least-squares problem on the square
    root (as ``lstsq`` on X)."""
    coef = np.zeros(stats.p)
    cols = np.flatnonzero(support)
    fit = stats.exact_rss(cols)
    if not fit.dependent:
        coef[cols] = fit.coef
        return coef, fit.rss
    A = stats.root[:, cols]
    scale = np.sqrt(np.einsum("ij,ij->j", A, A))
    scale = np.where(scale > 0, scale, 1.0)
    coef[cols] = np.linalg.lstsq(A / scale, stats.root[:, -1], rcond=1e-12)[0] / scale
    resid = stats.root[:, -1] - A @ coef[cols]
    return coef, float(resid @ resid)


def warn_exact_fit(stats: GaussianStats, support: np.ndarray) -> None:
    """Warn when ``support`` fits the response exactly: its RSS is below
    :data:`~l0bayes.linear_model.subset_search.RSS_FLOOR` of the centred sum of squares, where
    the likelihood is unbounded and every criterion (ours, and statsmodels' from the rounding
    residue) ranks exact fits by round-off."""
    cols = np.flatnonzero(support)
    rss = stats.exact_rss(cols).rss if cols.size else stats.yty
    if rss <= RSS_FLOOR * stats.yty:
        warnings.warn(
            f"the response is an exact linear function of the columns {cols.tolist()} of X "
            f"(RSS = {rss:.3g} against sum((y - mean)^2) = {stats.yty:.3g}): the "
            f"likelihood is unbounded there, so the criteria floor the RSS at {RSS_FLOOR:g} of "
            "that sum (subset_search.RSS_FLOOR) and the exact fit with fewest columns wins; "
            "statsmodels' log-likelihood of such a fit is rounding noise",
            UserWarning,
            stacklevel=6,
        )


def criteria_from_stats(stats: GaussianStats, support: np.ndarray) -> InformationCriteria:
    """:func:`~l0bayes.linear_model.selection.information_criteria` of the Gaussian refit on
    ``support``, from the statistics (:func:`~l0bayes.linear_model.subset_search.
    gaussian_criteria`; the same numbers as statsmodels). Dependent columns (reachable only
    with ``polish=False``) count by the numerical rank of their square root."""
    try:
        c = gaussian_criteria(stats, support)
        k, llf = c.k, c.log_likelihood
    except ValueError as err:
        if "linearly dependent" not in str(err):
            raise
        A = stats.root[:, np.flatnonzero(support)]
        scale = np.sqrt(np.einsum("ij,ij->j", A, A))
        singular = np.linalg.svd(A / np.where(scale > 0, scale, 1.0), compute_uv=False)
        k = 1 + int((singular > 1e-5 * singular[0]).sum())
        rss = ols_from_stats(stats, support)[1]
        n = stats.n
        llf = -0.5 * n * (math.log(2 * math.pi * max(rss, 1e-300) / n) + 1.0)
    n = stats.n
    return InformationCriteria(
        k=k,
        log_likelihood=llf,
        aic=-2 * llf + 2 * k,
        bic=-2 * llf + k * math.log(n),
        n=n,
        family="gaussian",
    )


def stats_attributes(
    stats: GaussianStats, std: Standardizer, selected: np.ndarray, inclusion: np.ndarray, svi=None
) -> dict:
    """The fitted attributes of the IC fit from statistics: the OLS refit on ``selected``
    (intercept from the means), its noise sd :math:`\\sqrt{\\mathrm{RSS}/n}` and criteria;
    ``inclusion`` the reported inclusion probabilities (the guide's, or the criterion's weights
    when no relaxation ran), ``svi`` the relaxation's result (None: none ran)."""
    selected = np.asarray(selected, dtype=bool)
    coef, rss = ols_from_stats(stats, selected)
    attributes = {
        "_standardizer_": std,
        "inclusion_probs_": np.array(inclusion, dtype=np.float64),
        "selected_": selected,
        "coef_": coef,
        "intercept_": std.y_mean - float(coef @ stats.x_mean),
        "noise_scale_": math.sqrt(rss / stats.n),
        "criteria_": criteria_from_stats(stats, selected),
    }
    if svi is not None:
        attributes["params_"] = {k: v.cpu() for k, v in svi.params.items()}
        attributes["losses_"] = svi.losses
    return attributes


def certify(settings, stats: GaussianStats, start: np.ndarray) -> tuple[np.ndarray, dict]:
    """The certified best subset for the penalty of ``settings`` (an ``L0Regression``;
    :func:`~l0bayes.linear_model.params.search_criterion`) from the statistics, ``start`` the
    incumbent (:func:`certified_subset`), and the fitted attributes of the search:
    ``search_``, ``ic_weights_``, ``optimal_`` and ``criterion_gap_``."""
    criterion = search_criterion(settings.penalty, stats.n, stats.p)
    answer = certified_subset(stats, criterion, start, settings.time_limit)
    found = {"search_": answer.search, "ic_weights_": answer.ic_weights}
    return answer.support, found | {"optimal_": answer.optimal, "criterion_gap_": answer.gap}


def fit_stats(settings, data: GaussianStats, keep: np.ndarray) -> dict:
    """The fitted attributes of the fit of ``settings`` (an ``L0Regression``) from the
    statistics ``data`` on its columns ``keep`` (module docstring)."""
    stats = data.columns(keep)
    n, p = stats.n, stats.p
    x_scale, y_scale = stats.scales()
    std = Standardizer(stats.x_mean.copy(), x_scale, data.y_mean, y_scale)
    if settings.method == "auto" and settings.polish and p <= ENUMERATION_LIMIT:
        selected, found = certify(settings, stats, np.zeros(p, dtype=bool))
        found["lam_"] = code_cost(settings.penalty, n, prior_inclusion(settings, p, n))[0]
        return found | stats_attributes(stats, std, selected, found["ic_weights_"].inclusion)
    relaxed = relax_stats(settings, stats, std)
    probs = relaxed.column_probs  # the guide's, reported as they are
    out = {"lam_": relaxed.prior.lam, "relaxed_inclusion_probs_": probs}
    out["relaxed_support_"] = selected = probs > 0.5
    found = {"optimal_": False, "criterion_gap_": math.nan}
    if settings.polish:
        selected, found = certify(settings, stats, selected)
    return out | found | stats_attributes(stats, std, selected, probs, relaxed.result)


__all__ = [
    "SubsetAnswer",
    "certified_subset",
    "certify",
    "criteria_from_stats",
    "fit_stats",
    "ols_from_stats",
    "stats_attributes",
    "warn_exact_fit",
]
