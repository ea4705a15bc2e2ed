"""The certified best-subset search of the Gaussian linear model, at its old path: the code
lives in :mod:`l0bayes.linear_model.search` (``objective``, ``exhaustive``, ``local``,
``branch_and_bound``); the names below are re-exported from there."""

from l0bayes.linear_model.search import (
    ENUMERATION_LIMIT,
    MIN_RESIDUAL_DF,
    RSS_FLOOR,
    GaussianCriteria,
    SubsetSearchResult,
    admissible_max_size,
    certified_best_subset,
    exhaustive_best_subset,
    gaussian_criteria,
    heuristic_best_subset,
    log_comb,
    penalty_values,
    subset_objective,
)
from l0bayes.linear_model.stats import VIF_LIMIT, GaussianStats

__all__ = [
    "ENUMERATION_LIMIT",
    "MIN_RESIDUAL_DF",
    "RSS_FLOOR",
    "VIF_LIMIT",
    "GaussianCriteria",
    "GaussianStats",
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
