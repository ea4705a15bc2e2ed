"""Exact information criteria and best subsets at their old path: the criteria and their
likelihood engines live in :mod:`l0bayes.linear_model.criteria`, the searches in
:mod:`l0bayes.linear_model.search.subsets`; the names below are re-exported from there."""

from l0bayes.linear_model.criteria import (
    FAMILIES,
    CriterionScorer,
    InformationCriteria,
    SubsetResult,
    information_criteria,
    refit_coefficients,
)
from l0bayes.linear_model.search.subsets import (
    best_subset,
    check_groups,
    group_subset,
    local_search,
)

__all__ = [
    "FAMILIES",
    "CriterionScorer",
    "InformationCriteria",
    "SubsetResult",
    "best_subset",
    "check_groups",
    "group_subset",
    "information_criteria",
    "local_search",
    "refit_coefficients",
]
