r"""The exact search that follows the relaxation of an information-criterion fit on the rows
(``polish=True``): from the relaxed support S, minimise the exact criterion
:math:`-\ell(\hat\beta_S) + \lambda k(S)` of the refitted model
(:mod:`~l0bayes.linear_model.criteria`).

* with ``groups``: all :math:`2^G` group subsets for at most
  :data:`~l0bayes.linear_model.params.BERNOULLI_EXHAUSTIVE_LIMIT` groups (the optimum), else a
  local search over groups (a local optimum);
* otherwise a best-improvement local search (add, drop or swap one column) and then the best
  subset: for the Gaussian family the certified branch and bound from the sufficient statistics
  (:func:`~l0bayes.linear_model.stats_fit.certify`), for the others the exhaustive search on
  the exact refit criterion for at most ``BERNOULLI_EXHAUSTIVE_LIMIT`` columns (beyond, the
  local optimum, ``optimal_ = False``).

Every function takes already-checked data from the estimator's boundary.
"""

from __future__ import annotations

import math

import numpy as np

from l0bayes.linear_model.params import BERNOULLI_EXHAUSTIVE_LIMIT
from l0bayes.linear_model.search.subsets import (
    best_subset_checked,
    group_subset_checked,
    local_search_checked,
)
from l0bayes.linear_model.stats import GaussianStats
from l0bayes.linear_model.stats_fit import certify

#: The fitted attributes of an answer with no proof of optimality.
UNPROVEN = {"optimal_": False, "criterion_gap_": math.nan}


def polished_subset(
    settings, X: np.ndarray, y: np.ndarray, start: np.ndarray, lam: float, offset=None, groups=None
) -> tuple[np.ndarray, dict]:
    """The support that minimises the criterion of λ = ``lam`` from the relaxed support
    ``start`` (module docstring) for ``settings`` (an ``L0Regression``) on checked ``X``,
    ``y``, ``offset`` and ``groups``, and the fitted attributes of the search (``optimal_``,
    ``criterion_gap_``; Gaussian also ``search_`` and ``ic_weights_``). ``polish=False``
    keeps ``start``."""
    if not settings.polish:
        return start, dict(UNPROVEN)
    family = settings.family
    if groups is not None:
        found, optimal = group_subset_checked(
            X, y, groups, lam, family, offset, start, exhaustive_limit=BERNOULLI_EXHAUSTIVE_LIMIT
        )
        return found.support, {"optimal_": optimal, "criterion_gap_": 0.0 if optimal else math.nan}
    start = local_search_checked(X, y, start, lam, family, offset).support
    if family == "gaussian":
        return certify(settings, GaussianStats.from_checked(X, y), start)
    if X.shape[1] > BERNOULLI_EXHAUSTIVE_LIMIT:
        return start, dict(UNPROVEN)
    found = best_subset_checked(X, y, lam, family, offset)
    return found.support, {"optimal_": True, "criterion_gap_": 0.0}


__all__ = ["UNPROVEN", "polished_subset"]
