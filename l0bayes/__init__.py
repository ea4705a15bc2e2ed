"""l0bayes: L0 regularization (Louizos, Welling & Kingma, ICLR 2018) as a Bayesian model in Pyro.

Gates are latent variables with a hard concrete guide and a spike-and-slab prior; the gate KL is
λ·E[L0] (mode "l0") or the full Bernoulli KL (mode "bayes").
"""

from l0bayes.distributions import GaussianSlab, HardConcrete, SpikeSlabGate, gate_kl
from l0bayes.inference_data import holdout_elpd, to_inference_data
from l0bayes.linear_model import L0Regression
from l0bayes.nn import L0Conv2d, L0Linear, L0Sequential
from l0bayes.path import LambdaPath, lambda_path
from l0bayes.regression import RegressionPrior, regression_guide, regression_model
from l0bayes.varbvs import VarbvsFit, varbvs

__version__ = "0.1.0"

__all__ = [
    "GaussianSlab",
    "HardConcrete",
    "L0Conv2d",
    "L0Linear",
    "L0Regression",
    "L0Sequential",
    "LambdaPath",
    "RegressionPrior",
    "SpikeSlabGate",
    "VarbvsFit",
    "gate_kl",
    "holdout_elpd",
    "lambda_path",
    "regression_guide",
    "regression_model",
    "to_inference_data",
    "varbvs",
]
