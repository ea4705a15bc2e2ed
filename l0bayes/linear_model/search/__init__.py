r"""Searches over supports, each walking a criterion it does not define: the plain
enumeration (:mod:`~l0bayes.linear_model.search.exhaustive`, over the walk of
:func:`~l0bayes.model_space.scorer.support_batches`), the local search
(:mod:`~l0bayes.linear_model.search.local`) and the certified branch and bound
(:mod:`~l0bayes.linear_model.search.branch_and_bound`), all over the Gaussian criterion and the
incumbent of :mod:`~l0bayes.linear_model.search.objective`.  The enumeration and the chains over
any :class:`~l0bayes.model_space.scorer.SupportScorer` (posteriors or criteria) live in
:mod:`l0bayes.model_space`."""

from l0bayes.linear_model.search.branch_and_bound import certified_best_subset
from l0bayes.linear_model.search.exhaustive import exhaustive_best_subset
from l0bayes.linear_model.search.local import heuristic_best_subset
from l0bayes.linear_model.search.objective import (
    ENUMERATION_LIMIT,
    MIN_RESIDUAL_DF,
    RSS_FLOOR,
    GaussianCriteria,
    SubsetSearchResult,
    admissible_max_size,
    gaussian_criteria,
    log_comb,
    penalty_values,
    subset_objective,
)

__all__ = [
    "ENUMERATION_LIMIT",
    "MIN_RESIDUAL_DF",
    "RSS_FLOOR",
    "GaussianCriteria",
    "SubsetSearchResult",
    "admissible_max_size",
    "certified_best_subset",
    "exhaustive_best_subset",
    "gaussian_criteria",
    "heuristic_best_subset",
    "log_comb",
    "penalty_values",
    "subset_objective",
]
