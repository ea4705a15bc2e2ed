"""Bayesian variable selection with L0 gates: the Pyro regression model and guide, the
scikit-learn estimator :class:`L0Regression`, exact information criteria and best subsets, exact
enumeration, importance-sampling and model-space corrections of the PIPs, model-size priors,
the λ path and the varbvs baseline.
"""

from l0bayes.linear_model import path
from l0bayes.linear_model.estimator import (
    METHODS,
    PENALTIES,
    L0Regression,
)
from l0bayes.linear_model.exact import (
    ExactPosterior,
    exact_posterior,
    log_marginal_likelihoods,
)
from l0bayes.linear_model.glm import (
    GLMFit,
    fit_glm,
)
from l0bayes.linear_model.ic_weights import (
    InclusionWeights,
    inclusion_weights,
)
from l0bayes.linear_model.importance import (
    ImportanceResult,
    pareto_smooth,
    psis_inclusion_probs,
)
from l0bayes.linear_model.inference_data import (
    to_inference_data,
)
from l0bayes.linear_model.laplace import (
    LaplaceScorer,
    laplace_enumerate,
    laplace_mc3,
)
from l0bayes.linear_model.model import (
    WEIGHT_GUIDES,
    RegressionPrior,
    linear_predictor,
    regression_guide,
    regression_model,
)
from l0bayes.linear_model.model_size import (
    PriorInclusion,
    beta_from_model_size,
    check_prior_inclusion,
    log_prior_by_size,
    pi_posterior,
    pmf_interval,
    poisson_binomial,
)
from l0bayes.linear_model.path import (
    LambdaPath,
    PathRow,
    default_lambdas,
    lambda_path,
)
from l0bayes.linear_model.selection import (
    InformationCriteria,
    SubsetResult,
    best_subset,
    group_subset,
    information_criteria,
    local_search,
    refit_coefficients,
)
from l0bayes.linear_model.svi import SVIResult, fit_svi
from l0bayes.linear_model.varbvs import (
    VarbvsFit,
    varbvs,
)

__all__ = [
    "ExactPosterior",
    "GLMFit",
    "LaplaceScorer",
    "fit_glm",
    "glm",
    "group_subset",
    "laplace",
    "laplace_enumerate",
    "laplace_mc3",
    "ImportanceResult",
    "InclusionWeights",
    "InformationCriteria",
    "L0Regression",
    "LambdaPath",
    "METHODS",
    "PENALTIES",
    "PathRow",
    "PriorInclusion",
    "RegressionPrior",
    "SVIResult",
    "SubsetResult",
    "VarbvsFit",
    "WEIGHT_GUIDES",
    "best_subset",
    "beta_from_model_size",
    "check_prior_inclusion",
    "default_lambdas",
    "estimator",
    "exact",
    "exact_posterior",
    "fit_svi",
    "ic_weights",
    "importance",
    "inclusion_weights",
    "inference_data",
    "information_criteria",
    "lambda_path",
    "linear_predictor",
    "local_search",
    "log_marginal_likelihoods",
    "log_prior_by_size",
    "model",
    "model_size",
    "pareto_smooth",
    "path",
    "pi_posterior",
    "pmf_interval",
    "poisson_binomial",
    "psis_inclusion_probs",
    "refit_coefficients",
    "regression_guide",
    "regression_model",
    "selection",
    "svi",
    "to_inference_data",
    "varbvs",
]


def __getattr__(name: str):
    """Names that moved out of the regression half (``plot_lambda_path`` to :mod:`l0bayes.viz`),
    still reachable here with a :class:`DeprecationWarning`."""
    if name == "plot_lambda_path":
        return path.__getattr__(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
