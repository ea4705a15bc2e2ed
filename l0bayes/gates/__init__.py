"""L0 gates in any Pyro model: the ``gated`` primitive, its autoguide, the posterior over gate
structures (Laplace evidences over the model space), a JIT ELBO that compiles once, an ArviZ
export and an exact (enumerated) reference for small problems."""

from l0bayes.gates.autoguide import AutoL0Guide, GateGuide, fit_autol0, hard_concrete_quantile
from l0bayes.gates.jit import JitTraceMeanField_ELBO
from l0bayes.gates.laplace import GatedLaplaceScorer, laplace_log_joint
from l0bayes.gates.pairing import GatedValue
from l0bayes.gates.posterior import GatePosterior, posterior_inclusion_probs
from l0bayes.gates.primitive import enumerated_gates, gated, is_gated_site

__all__ = [
    "AutoL0Guide",
    "GateGuide",
    "GatePosterior",
    "GatedLaplaceScorer",
    "GatedValue",
    "JitTraceMeanField_ELBO",
    "enumerated_gates",
    "fit_autol0",
    "gated",
    "hard_concrete_quantile",
    "is_gated_site",
    "laplace_log_joint",
    "posterior_inclusion_probs",
]
