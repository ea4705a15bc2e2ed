r"""L0-gated linear and logistic regression as an ordinary Pyro model and guide.

The model, for :math:`n` rows of :math:`X \in \mathbb R^{n\times p}`:

.. math::

    z_j &\sim \text{SpikeSlabGate}(\lambda_j), &\quad j = 1..p \\
    \theta_j \mid z_j \ne 0 &\sim \text{GaussianSlab}(\lambda_{2,j}) \\
    \eta_i &= b + \textstyle\sum_j x_{ij}\, z_j \theta_j \\
    y_i &\sim \mathcal N(\eta_i, \sigma^2) \ \text{or}\ \text{Bernoulli}(\text{logit} = \eta_i).

The guide is mean field: :math:`q(z_j) = \text{HardConcrete}(\log\alpha_j)` and
:math:`q(\theta_j) = \delta(\tilde\theta_j)` (MAP, ``weight_guide="delta"``) or
:math:`\mathcal N(\mu_j, s_j^2)` (``"normal"``). The intercept :math:`b` and, when not fixed,
:math:`\sigma` are point estimates (``pyro.param`` in the model).

Fitted with ``pyro.infer.TraceMeanField_ELBO`` the negative ELBO is

.. math::

    -\mathcal L = -E_q[\log p(y \mid X, z\odot\theta)]
        + \sum_j \mathrm{KL}\big(q(z_j) \,\|\, p(z_j)\big)
        + \sum_j P_q(z_j \ne 0)\, \mathrm{KL}\big(q(\theta_j) \,\|\, \text{slab}_j\big),

where the last term comes from the guide's weight site being scaled by
:math:`P_q(z_j \ne 0)` (an excluded weight's prior is its guide — the "spike" — and costs
nothing; in the model the same fact is the mask ``z != 0``). With ``kl_mode="l0"``, a
point-mass guide and the un-normalised slab, the penalty is exactly the paper's
:math:`\sum_j P(z_j \ne 0)(\lambda_j + \tfrac{\lambda_2}{2}\tilde\theta_j^2)`; with
:math:`\lambda_2 = 0` and :math:`\lambda = 1` or :math:`\tfrac12\log n` it is AIC/2 or BIC/2.

The likelihood sits in a ``pyro.plate("data", n, subsample_size=...)``, so minibatches are
scaled by :math:`n/B` automatically; the gates are global and their KL is counted once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.distributions import constraints

from l0bayes.distributions import (
    DEFAULT_STRETCH,
    DEFAULT_TEMPERATURE,
    GaussianSlab,
    HardConcrete,
    SpikeSlabGate,
)

FAMILIES = ("gaussian", "bernoulli")
WEIGHT_GUIDES = ("delta", "normal")


@dataclass(frozen=True)
class RegressionPrior:
    """Everything the model and guide need besides the data.

    :param family: ``"gaussian"`` or ``"bernoulli"``.
    :param lam: per-gate code cost :math:`\\lambda` (float or a tensor of shape ``(p,)``).
    :param kl_mode: ``"l0"`` (the paper's penalty) or ``"bayes"`` (full gate KL).
    :param slab_precision: :math:`\\lambda_2` of the weight slab (float or ``(p,)``); 0 = flat.
    :param slab_normalized: whether the slab is the proper Gaussian (Bayesian weights) or the
        paper's weight-decay term without its normalizing constant.
    :param noise_scale: fixed :math:`\\sigma` (Gaussian); ``None`` learns it.
    :param subsample_size: minibatch size of the data plate (``None``: all rows).
    :param weight_guide: ``"delta"`` (MAP weights) or ``"normal"`` (mean-field Gaussian).
    :param init_log_alpha: initial gate locations (float or ``(p,)``).
    :param init_weight: initial weight locations (``None``: zeros) of shape ``(p,)``.
    :param inclusion_beta: ``(a, b)`` of a Beta hyperprior on the prior inclusion probability
        :math:`\\pi` (then ``lam`` is ignored and :math:`\\pi` is a latent site
        ``"prior_inclusion"`` with a Beta guide).
    """

    family: str = "gaussian"
    lam: float | torch.Tensor = 1.0
    kl_mode: str = "l0"
    slab_precision: float | torch.Tensor = 0.0
    slab_normalized: bool = False
    noise_scale: float | None = None
    temperature: float = DEFAULT_TEMPERATURE
    stretch: tuple[float, float] = DEFAULT_STRETCH
    subsample_size: int | None = None
    weight_guide: str = "delta"
    init_log_alpha: float | torch.Tensor = 0.0
    init_weight: torch.Tensor | None = field(default=None, compare=False)
    inclusion_beta: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {self.family!r}")
        if self.weight_guide not in WEIGHT_GUIDES:
            raise ValueError(f"weight_guide must be one of {WEIGHT_GUIDES}")


def _as_tensor(value, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(value, dtype=like.dtype, device=like.device)


def linear_predictor(X: torch.Tensor, intercept: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
    """:math:`\\eta = b + X\\,\\beta` for coefficient draws of shape ``(..., p)`` → ``(..., n)``."""
    return intercept + coef @ X.transpose(-1, -2)


def regression_model(
    X: torch.Tensor, y: torch.Tensor | None = None, prior: RegressionPrior = RegressionPrior()
) -> torch.Tensor:
    """The L0-gated regression model (see the module docstring). Returns the coefficients."""
    n, p = X.shape
    intercept = pyro.param("intercept", lambda: X.new_zeros(()))
    gate_prior = _gate_prior(prior, X)
    with pyro.plate("features", p):
        z = pyro.sample("gate", gate_prior)
        slab = GaussianSlab(_as_tensor(prior.slab_precision, X), prior.slab_normalized)
        with poutine.mask(mask=z != 0):  # the spike: an excluded weight costs nothing
            theta = pyro.sample("weight", slab.expand([p]))
    coef = z * theta
    with pyro.plate("data", n, subsample_size=prior.subsample_size) as idx:
        eta = linear_predictor(X[idx], intercept, coef)
        obs = None if y is None else y[idx]
        if prior.family == "gaussian":
            sigma = _noise_scale(prior, X)
            pyro.sample("obs", dist.Normal(eta, sigma), obs=obs)
        else:
            pyro.sample("obs", dist.Bernoulli(logits=eta), obs=obs)
    return coef


def _gate_prior(prior: RegressionPrior, like: torch.Tensor) -> SpikeSlabGate:
    """The gates' prior; with a Beta hyperprior, π is sampled first (a global latent)."""
    if prior.inclusion_beta is None:
        return SpikeSlabGate(lam=_as_tensor(prior.lam, like), kl_mode=prior.kl_mode)
    a, b = (_as_tensor(v, like) for v in prior.inclusion_beta)
    pi = pyro.sample("prior_inclusion", dist.Beta(a, b))
    eps = torch.finfo(like.dtype).eps
    return SpikeSlabGate(prior_inclusion=pi.clamp(eps, 1 - eps), kl_mode=prior.kl_mode)


def _noise_scale(prior: RegressionPrior, like: torch.Tensor) -> torch.Tensor:
    if prior.noise_scale is not None:
        return _as_tensor(prior.noise_scale, like)
    return pyro.param("noise_scale", lambda: like.new_ones(()), constraint=constraints.positive)


def regression_guide(
    X: torch.Tensor, y: torch.Tensor | None = None, prior: RegressionPrior = RegressionPrior()
) -> None:
    """Mean-field guide: hard concrete gates, point-mass or Gaussian weights.

    The weight site is scaled by the gate's :math:`P(z \\ne 0)`, so its KL from the slab
    enters the ELBO as :math:`\\sum_j P(z_j \\ne 0)\\,\\mathrm{KL}(q(\\theta_j)\\|\\text{slab})`
    (analytically, with gradients through :math:`P(z\\ne0)`)."""
    p = X.shape[1]
    log_alpha = pyro.param(
        "gate_log_alpha", lambda: _as_tensor(prior.init_log_alpha, X).expand(p).clone()
    )
    if prior.inclusion_beta is not None:
        a0, b0 = (_as_tensor(v, X) for v in prior.inclusion_beta)
        a = pyro.param("inclusion_concentration1", a0, constraint=constraints.positive)
        b = pyro.param("inclusion_concentration0", b0, constraint=constraints.positive)
        pyro.sample("prior_inclusion", dist.Beta(a, b))
    init_w = prior.init_weight
    loc = pyro.param(
        "weight_loc", lambda: X.new_zeros(p) if init_w is None else _as_tensor(init_w, X).clone()
    )
    with pyro.plate("features", p):
        q_gate = HardConcrete(log_alpha, prior.temperature, prior.stretch)
        pyro.sample("gate", q_gate)
        with poutine.scale(scale=q_gate.prob_nonzero):
            pyro.sample("weight", _weight_guide(prior, loc))


def _weight_guide(prior: RegressionPrior, loc: torch.Tensor) -> dist.Distribution:
    if prior.weight_guide == "delta":
        return dist.Delta(loc)
    scale = pyro.param(
        "weight_scale", lambda: torch.full_like(loc, 0.1), constraint=constraints.positive
    )
    return dist.Normal(loc, scale)
