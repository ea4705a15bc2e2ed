"""l0bayes: L0 regularization (Louizos, Welling & Kingma, ICLR 2018) as a Bayesian model in Pyro.

Gates are latent variables with a hard concrete guide and a spike-and-slab prior; the gate KL is
λ·E[L0] (mode "l0") or the full Bernoulli KL (mode "bayes").

Subpackages, each layer importing only from those below it:

* :mod:`l0bayes.distributions`: the hard concrete guide, the gate prior, slabs and their KLs;
* :mod:`l0bayes.data`: data files, image batches, simulated problems;
* :mod:`l0bayes.model_space`: enumeration and chains over models, their diagnostics;
* :mod:`l0bayes.gates`: ``gated`` sites in any Pyro model, their guide and posterior;
* :mod:`l0bayes.linear_model`: variable selection (:class:`L0Regression`, PIPs, AIC/BIC);
* :mod:`l0bayes.nn`: gated layers and networks, architectures and compaction;
* :mod:`l0bayes.training`: the training loop, checkpoints and run directories;
* :mod:`l0bayes.baselines`: Sparse VD and magnitude pruning;
* :mod:`l0bayes.reporting`: run reports, studies, the ArviZ export;
* :mod:`l0bayes.viz`: figures and tables.

Importing l0bayes sets torch to one CPU thread unless ``$L0BAYES_THREADS``,
``$OMP_NUM_THREADS`` or an earlier ``torch.set_num_threads`` says otherwise
(:mod:`l0bayes.device`).
"""

from l0bayes._compat import install as _install_moved_module_paths
from l0bayes._version import __version__
from l0bayes.device import apply_thread_policy
from l0bayes.distributions import GaussianSlab, HardConcrete, SpikeSlabGate, gate_kl
from l0bayes.gates import AutoL0Guide, gated
from l0bayes.linear_model import (
    L0Regression,
    LambdaPath,
    RegressionPrior,
    VarbvsFit,
    lambda_path,
    regression_guide,
    regression_model,
    varbvs,
)
from l0bayes.nn import L0Conv2d, L0Linear, L0Sequential
from l0bayes.reporting.inference_data import holdout_elpd, to_inference_data

_install_moved_module_paths()
apply_thread_policy()  # one torch thread unless configured, as the CLI (l0bayes.device)

__all__ = [
    "AutoL0Guide",
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
    "__version__",
    "gate_kl",
    "gated",
    "holdout_elpd",
    "lambda_path",
    "regression_guide",
    "regression_model",
    "to_inference_data",
    "varbvs",
]
