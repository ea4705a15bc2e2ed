"""Baselines on the same training loop as L0 networks: Sparse Variational Dropout and
magnitude pruning.
"""

from l0bayes.baselines.pruning import (
    fine_tune,
    live_chain,
    magnitude_prune,
    masked_architecture,
    nonzero_weights,
    plain_chain,
    sparse_architecture,
    weight_layers,
)
from l0bayes.baselines.sparse_vd import (
    INIT_LOG_SIGMA2,
    LOG_ALPHA_THRESHOLD,
    SVD_NETWORKS,
    SVDConv2d,
    SVDLayer,
    SVDLinear,
    SVDNetwork,
    SVDSequential,
    fit_sparse_vd,
    svd_lenet5,
    svd_mnist_mlp,
    svd_network,
)

__all__ = [
    "INIT_LOG_SIGMA2",
    "LOG_ALPHA_THRESHOLD",
    "SVDConv2d",
    "SVDLayer",
    "SVDLinear",
    "SVDNetwork",
    "SVDSequential",
    "SVD_NETWORKS",
    "fine_tune",
    "fit_sparse_vd",
    "live_chain",
    "magnitude_prune",
    "masked_architecture",
    "nonzero_weights",
    "plain_chain",
    "pruning",
    "sparse_architecture",
    "sparse_vd",
    "svd_lenet5",
    "svd_mnist_mlp",
    "svd_network",
    "weight_layers",
]
