"""The model-space engine of every corrected posterior: the scorer protocol, exact enumeration,
Markov chains over models (MC3 and weighted tempered Gibbs), their convergence diagnostics and
the flip-and-swap missed-mass search. Prior-agnostic: the conjugate and GLM scorers live in
:mod:`l0bayes.linear_model`, the Laplace scorer of a gated Pyro model in :mod:`l0bayes.gates`."""

from l0bayes.model_space.chains import (
    PROGRESS_EVERY,
    SAMPLERS,
    MC3Result,
    conditional_inclusion,
    default_starts,
    run_chains,
    tempered_selection,
    weight_efficiency,
)
from l0bayes.model_space.convergence import effective_sample_size, split_rhat
from l0bayes.model_space.diagnostics import (
    MAX_KHAT,
    MAX_RHAT,
    MIN_ESS,
    MISSED_MASS_NATS,
    PIP_TOLERANCE,
    GuideCheck,
    diagnose,
    pip_error_bound,
)
from l0bayes.model_space.local_search import climb, flip_swap_neighbourhood
from l0bayes.model_space.scorer import (
    BatchScorer,
    Enumeration,
    ModelScorer,
    SupportScorer,
    best_support,
    by_size,
    enumerate_models,
    model_key,
    scored_supports,
    support_batches,
)

__all__ = [
    "BatchScorer",
    "SupportScorer",
    "best_support",
    "by_size",
    "scored_supports",
    "support_batches",
    "MAX_KHAT",
    "MAX_RHAT",
    "MIN_ESS",
    "MISSED_MASS_NATS",
    "PIP_TOLERANCE",
    "PROGRESS_EVERY",
    "SAMPLERS",
    "Enumeration",
    "GuideCheck",
    "MC3Result",
    "ModelScorer",
    "climb",
    "conditional_inclusion",
    "default_starts",
    "diagnose",
    "pip_error_bound",
    "effective_sample_size",
    "enumerate_models",
    "flip_swap_neighbourhood",
    "model_key",
    "run_chains",
    "split_rhat",
    "tempered_selection",
    "weight_efficiency",
]
