r"""Criterion-based inclusion weights: how much of an information criterion's support each
feature has, over the supports a best-subset search scores.

A support :math:`S` (columns of X, the intercept always in) has the criterion of
:mod:`l0bayes.linear_model.subset_search`, :math:`\mathcal C(S) = -\ell(S) + \mathrm{pen}(|S|)`
in nats (:math:`\mathrm{IC}(S) = 2\,\mathcal C(S)`: AIC, BIC, AICc, EBIC, or :math:`2(-\ell +
\lambda k)` for a number λ). Over a set :math:`\mathcal S` of supports the **weight** of S and the
**inclusion weight** of column j are

.. math::

    w(S) = \frac{\exp(-\tfrac12 \Delta\mathrm{IC}(S))}{\sum_{T \in \mathcal S}
        \exp(-\tfrac12 \Delta\mathrm{IC}(T))}, \qquad
    \Delta\mathrm{IC}(S) = \mathrm{IC}(S) - \min_{T \in \mathcal S}\mathrm{IC}(T), \qquad
    \omega_j = \sum_{S \ni j} w(S).

For AIC these are **Akaike weights** (Akaike 1978; Burnham & Anderson 2002, §2.9): the
weight of evidence for each model, and :math:`\omega_j` the "relative importance" of
variable j. For BIC, :math:`w(S)` is **Raftery's (1995) approximation** to the posterior
probability of S under equal prior model probabilities, and :math:`\omega_j` the
approximation to the posterior inclusion probability of column j. They belong to the answer
of the search: the selected support is the one of largest weight (the criterion's
minimiser), and a feature's weight says how strongly the criterion prefers the supports that
contain it. They are *not* the relaxation's gate probabilities.

**Which supports.** The same admissible supports the certified search
(:func:`~l0bayes.linear_model.subset_search.certified_best_subset`) ranks: at most
``max_size`` columns, at least :data:`~l0bayes.linear_model.subset_search.MIN_RESIDUAL_DF`
residual degrees of freedom, every variance inflation factor below
:data:`~l0bayes.linear_model.subset_search.VIF_LIMIT`. Then

* ``"all"``: every admissible support, when there are at most :data:`EXHAUSTIVE_LIMIT` of
  them (p ≤ 17 with no size cap): the weights are exact;
* ``"window"``: otherwise, **Occam's window** (Madigan & Raftery 1994) around the search's
  answer: starting from the selected support, every support that one add, drop or swap
  (exchange one column for another) reaches from a support already in the window is scored,
  and it joins the window when its criterion is within :data:`WINDOW` nats
  (:math:`\Delta\mathrm{IC} \le 2 \cdot` ``WINDOW`` = 10, Burnham & Anderson's "essentially no
  support" beyond) of the best support found; the search stops when no support joins, or
  after :data:`MAX_WINDOW` supports (``complete`` is then False). Each support left out has a
  weight below :math:`e^{-5} \approx 0.7\%` of the best one's, relative to it; the set is the
  window's supports connected to the answer through the window by single moves.

Every step depends on the data only through the sufficient statistics
(:class:`~l0bayes.linear_model.subset_search.GaussianStats`), on the correlation scale.

References

1. Akaike, H. (1978). On the likelihood of a time series model. JRSS D 27.
2. Burnham, K. P. & Anderson, D. R. (2002). Model Selection and Multimodel Inference, 2nd ed.
3. Raftery, A. E. (1995). Bayesian model selection in social research. Sociological
   Methodology 25.
4. Madigan, D. & Raftery, A. E. (1994). Model selection and accounting for model uncertainty
   in graphical models using Occam's window. JASA 89.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, replace

import numpy as np
from scipy.special import logsumexp

from l0bayes.linear_model.search import MIN_RESIDUAL_DF, admissible_max_size, penalty_values
from l0bayes.linear_model.stats import VIF_LIMIT, GaussianStats
from l0bayes.model_space.scorer import BatchScorer, scored_supports

#: Largest number of admissible supports all scored (``"all"``): 2^17, about a second.
EXHAUSTIVE_LIMIT = 1 << 17
#: Half-width of Occam's window in nats of the criterion (ΔIC ≤ 10).
WINDOW = 5.0
#: Most supports the window holds before its search stops (``complete`` False).
MAX_WINDOW = 10_000
#: Relative residual sum of squares below which a fit counts as exact (round-off).
RSS_FLOOR = 1e-14
_BATCH = 1 << 20  # float64 entries of one batch of correlation blocks
_EXPAND = 16  # supports of the window expanded together (one batch of neighbours)

#: How each criterion's weights are called.
LABELS = {
    "aic": "Akaike weight",
    "bic": "BIC weight",
    "aicc": "AICc weight",
    "ebic": "EBIC weight",
}


@dataclass(frozen=True)
class InclusionWeights:
    r"""The criterion-based weights of a set of supports (module docstring).

    :param criterion: ``"aic"``, ``"bic"``, ``"aicc"``, ``"ebic"`` or the number λ.
    :param label: what the weights are called (``"Akaike weight"``, ``"BIC weight"``, ...).
    :param inclusion: :math:`\omega_j`, shape ``(p,)``.
    :param supports: the supports scored, bool ``(m, p)``, most weighted first.
    :param weights: :math:`w(S)` of each, summing to 1.
    :param delta_ic: :math:`\Delta\mathrm{IC}(S)` of each, in the criterion's own units.
    :param method: ``"all"`` (every admissible support) or ``"window"`` (Occam's window).
    :param window: the window's half-width in nats (``inf`` for ``"all"``).
    :param complete: False when the window search stopped at :data:`MAX_WINDOW` supports.
    """

    criterion: str | float
    label: str
    inclusion: np.ndarray
    supports: np.ndarray
    weights: np.ndarray
    delta_ic: np.ndarray
    method: str
    window: float
    complete: bool

    def describe(self) -> str:
        """One line saying what the inclusion weights are, over which supports, and the
        weight of the best support (the search's answer when it is certified)."""
        count = f"{len(self.weights):,}"
        if self.method == "all":
            where = f"all {count} admissible supports"
        else:
            where = (
                f"the {count} supports within Δ{self.ic_name} <= {2 * self.window:g} of the "
                "selected one (Occam's window"
                + (")" if self.complete else ", stopped at its size limit)")
            )
        text = (
            f"{self.label}: the share of exp(-Δ{self.ic_name}/2) of the supports holding the "
            f"feature, normalised over {where}"
        )
        if self.criterion == "bic":
            text += ", Raftery's approximation to its posterior inclusion probability"
        return text + f"; the best support has weight {self.weights[0]:.3g}"

    @property
    def ic_name(self) -> str:
        r"""The criterion's name in :math:`\Delta\mathrm{IC}` (``AIC``, ``BIC``, ``IC_λ``)."""
        if isinstance(self.criterion, str):
            return {"aicc": "AICc", "ebic": "EBIC"}.get(self.criterion, self.criterion.upper())
        return f"IC(λ={self.criterion:g})"

    def widen(self, keep: np.ndarray) -> InclusionWeights:
        """The same weights for all columns of X when only the columns ``keep`` (bool) were
        searched: a column left out is in no support (inclusion weight 0)."""
        keep = np.asarray(keep, dtype=bool)
        supports = np.zeros((len(self.supports), keep.size), dtype=bool)
        supports[:, keep] = self.supports
        inclusion = np.zeros(keep.size)
        inclusion[keep] = self.inclusion
        return replace(self, supports=supports, inclusion=inclusion)


class _Correlations:
    """The statistics on the correlation scale: :math:`R`, :math:`r` and n, so that
    :math:`\\mathrm{RSS}_S / y^\\top y = 1 - r_S^\\top R_{SS}^{-1} r_S`."""

    def __init__(self, stats: GaussianStats) -> None:
        if stats.n < 2 or not stats.yty > 0.0:
            raise ValueError("inclusion weights need n >= 2 and a response that is not constant")
        self.usable = np.diag(stats.gram) > 0
        self.R, self.r = stats.corr, stats.r  # the views of GaussianStats
        self.n, self.p = stats.n, stats.p

    def relative_rss(self, idx: np.ndarray) -> np.ndarray:
        """:math:`\\mathrm{RSS}_S / y^\\top y` of each support ``idx[b]`` (B, m); ``inf``
        where a column is unusable or a VIF reaches :data:`VIF_LIMIT`."""
        batch, m = idx.shape
        if m == 0:
            return np.ones(batch)
        out = np.empty(batch)
        rows = max(1, _BATCH // (m * m))
        for start in range(0, batch, rows):
            block = idx[start : start + rows]
            C = self.R[block[:, :, None], block[:, None, :]]
            ok = self.usable[block].all(axis=1) & (np.linalg.eigvalsh(C)[:, 0] > 0.5 / VIF_LIMIT)
            C[~ok] = np.eye(m)
            inverse = np.linalg.inv(C)
            ok &= np.diagonal(inverse, axis1=1, axis2=2).max(axis=1) < VIF_LIMIT
            w = self.r[block]
            fit = np.einsum("bi,bij,bj->b", w, inverse, w)
            out[start : start + rows] = np.where(ok, np.maximum(1.0 - fit, RSS_FLOOR), np.inf)
        return out


class _Criterion(BatchScorer):
    r""":math:`\mathcal C(S)` up to a constant shared by all supports:
    :math:`\tfrac n2 \log(\mathrm{RSS}_S / y^\top y) + \mathrm{pen}(|S|)`, ``inf`` where
    inadmissible.  As a scorer (:mod:`l0bayes.model_space.scorer`) its log score is
    :math:`-\mathcal C(S)`, so that the normalised :math:`e^{-\mathcal C}` are the weights."""

    def __init__(self, stats: GaussianStats, criterion: str | float, max_size: int) -> None:
        self.corr = _Correlations(stats)
        n, p = stats.n, stats.p
        self.p = p
        by_df = max(n - 1 - MIN_RESIDUAL_DF, 0)
        self.max_size = min(max_size, by_df, p)
        pen = penalty_values(criterion, n, p)
        self.pen = np.where(np.arange(p + 1) <= self.max_size, pen, np.inf)

    def score_indices(self, idx: np.ndarray) -> np.ndarray:
        r""":math:`-\mathcal C(S)` of each support ``idx[b]`` (B, m)."""
        m = idx.shape[1]
        if m > self.max_size:
            return np.full(len(idx), -np.inf)
        rss = self.corr.relative_rss(idx)
        return -(0.5 * self.corr.n * np.log(rss) + self.pen[m])

    def of_masks(self, masks: np.ndarray) -> np.ndarray:
        """The criterion of each row of the bool matrix ``masks`` (B, p)."""
        return -self.score(masks)


def _all_supports(score: _Criterion) -> tuple[np.ndarray, np.ndarray]:
    """Every support of at most ``score.max_size`` columns (by size, then in lexicographic
    order of the column indices: :func:`~l0bayes.model_space.scorer.scored_supports`), as a
    bool matrix, with its criterion."""
    masks, values = [], []
    for idx, scores in scored_supports(score, range(score.max_size + 1)):
        block = np.zeros((len(idx), score.p), dtype=bool)
        np.put_along_axis(block, idx, True, axis=1)
        masks.append(block)
        values.append(-scores)
    return np.concatenate(masks), np.concatenate(values)


def _neighbours(mask: np.ndarray) -> np.ndarray:
    """Every support one add, drop or swap away from ``mask``, as a bool matrix."""
    inside, outside = np.flatnonzero(mask), np.flatnonzero(~mask)
    adds = np.repeat(mask[None], outside.size, axis=0)
    adds[np.arange(outside.size), outside] = True
    drops = np.repeat(mask[None], inside.size, axis=0)
    drops[np.arange(inside.size), inside] = False
    i, j = np.repeat(inside, outside.size), np.tile(outside, inside.size)
    swaps = np.repeat(mask[None], i.size, axis=0)
    swaps[np.arange(i.size), i] = False
    swaps[np.arange(i.size), j] = True
    return np.concatenate([adds, drops, swaps])


def _occam_window(
    score: _Criterion, start: np.ndarray, window: float, limit: int
) -> tuple[np.ndarray, np.ndarray, bool]:
    """The supports of Occam's window around ``start`` (module docstring), by a best-first
    search: the :data:`_EXPAND` best supports not yet expanded give their single-move
    neighbours, and the new ones within ``window`` nats of the best so far join the window.
    Also returns whether the search finished before the window held ``limit`` supports."""
    value = float(score.of_masks(start[None])[0])
    if not math.isfinite(value):
        raise ValueError("the selected support is not admissible: no window around it")
    seen = {start.tobytes()}
    kept, values, best = [start], [value], value
    frontier = [(value, 0)]
    while frontier and len(kept) < limit:
        batch = [heapq.heappop(frontier)[1] for _ in range(min(_EXPAND, len(frontier)))]
        moves = np.concatenate([_neighbours(kept[i]) for i in batch if values[i] <= best + window])
        fresh = []
        for row in moves:
            key = row.tobytes()
            if key not in seen:
                seen.add(key)
                fresh.append(row)
        if not fresh:
            continue
        fresh = np.array(fresh)
        scores = score.of_masks(fresh)
        best = min(best, float(scores.min()))
        for row, s in zip(fresh, scores, strict=True):
            if s <= best + window:
                heapq.heappush(frontier, (float(s), len(kept)))
                kept.append(row)
                values.append(float(s))
    values = np.array(values)
    inside = values <= best + window
    return np.array(kept)[inside], values[inside], not frontier


def inclusion_weights(
    stats: GaussianStats,
    criterion: str | float,
    selected: np.ndarray,
    *,
    max_size: int | None = None,
    exhaustive_limit: int = EXHAUSTIVE_LIMIT,
    window: float = WINDOW,
    max_window: int = MAX_WINDOW,
) -> InclusionWeights:
    r"""Akaike, BIC (or other criterion) weights of the supports and inclusion weights of the
    columns (module docstring).

    :param stats: sufficient statistics of the columns searched.
    :param criterion: what the search minimised: ``"aic"``, ``"bic"``, ``"aicc"``, ``"ebic"`` or
        λ ≥ 0 (:func:`~l0bayes.linear_model.subset_search.penalty_values`).
    :param selected: the search's answer (bool ``(p,)``), the centre of Occam's window.
    :param max_size: largest support size (default
        :func:`~l0bayes.linear_model.subset_search.admissible_max_size`, as the search).
    :param exhaustive_limit: score every admissible support when there are at most this many.
    :param window: half-width of Occam's window, nats of the criterion.
    :param max_window: most supports the window may hold.
    :returns: an :class:`InclusionWeights`.
    """
    selected = np.asarray(selected, dtype=bool)
    if selected.shape != (stats.p,):
        raise ValueError(f"selected must be a bool mask of length p = {stats.p}")
    if max_size is None:
        max_size = admissible_max_size(stats.n, stats.p)
    score = _Criterion(stats, criterion, max_size)
    count = sum(math.comb(stats.p, m) for m in range(score.max_size + 1))
    if count <= exhaustive_limit:
        supports, values = _all_supports(score)
        keep = np.isfinite(values)
        supports, values = supports[keep], values[keep]
        method, width, complete = "all", math.inf, True
    else:
        supports, values, complete = _occam_window(score, selected, window, max_window)
        method, width = "window", float(window)
    log_w = -(values - values.min())
    weights = np.exp(log_w - logsumexp(log_w))
    order = np.argsort(-weights, kind="stable")
    supports, weights = supports[order], weights[order]
    name = criterion if isinstance(criterion, str) else float(criterion)
    label = LABELS[name] if isinstance(name, str) else f"λ = {name:g} weight"
    return InclusionWeights(
        criterion=name,
        label=label,
        inclusion=np.clip(weights @ supports, 0.0, 1.0),  # a sum of weights may round past 1
        supports=supports,
        weights=weights,
        delta_ic=2.0 * (values[order] - values.min()),
        method=method,
        window=width,
        complete=bool(complete),
    )


__all__ = [
    "EXHAUSTIVE_LIMIT",
    "LABELS",
    "MAX_WINDOW",
    "WINDOW",
    "InclusionWeights",
    "inclusion_weights",
]
