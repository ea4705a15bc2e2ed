r"""L0-gated linear and logistic regression as an ordinary Pyro model and guide.

The model, for :math:`n` rows of :math:`X \in \mathbb R^{n\times p}`:

.. math::

    z_j &\sim \text{SpikeSlabGate}(\lambda_j), &\quad j = 1..p \\
    \theta_j \mid z_j \ne 0 &\sim \text{GaussianSlab}(\lambda_{2,j}) \\
    \eta_i &= b + \textstyle\sum_j x_{ij}\, z_j \theta_j \\
    y_i &\sim \mathcal N(\eta_i, \sigma^2),\ \text{Bernoulli}(\text{logit} = \eta_i),\
        \text{Poisson}(e^{\eta_i})\ \text{or}\ \text{NB2}(e^{\eta_i}, \alpha).

A known ``offset`` :math:`o_i` (log exposure) is added to :math:`\eta_i`. The negative
binomial is the Gamma–Poisson mixture with mean :math:`\mu = e^\eta` and variance
:math:`\mu + \alpha\mu^2` (``GammaPoisson(1/α, 1/(αμ))``); :math:`\alpha` is a point
estimate (``pyro.param("dispersion")``) like :math:`\sigma`.

With ``groups`` (an index tensor mapping each of the p columns to one of G groups) there is one
gate per group, :math:`\beta_j = z_{g(j)}\theta_j`: the columns of a group (the dummies of a
categorical variable, a spline basis) enter or leave together.

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

For the Gaussian family the likelihood depends on the data only through the sufficient
statistics :class:`RegressionStats` (:math:`n`, :math:`X^\top X`, :math:`X^\top y`,
:math:`y^\top y`, :math:`\mathbf 1^\top X`, :math:`\mathbf 1^\top y`):

.. math::

    \sum_i (y_i - b - x_i^\top\beta)^2 = y^\top y - 2\beta^\top X^\top y
        + \beta^\top X^\top X\beta - 2b\,(\mathbf 1^\top y - \beta^\top X^\top\mathbf 1)
        + n b^2,

so :func:`regression_model_stats` enters
:math:`\log p(y \mid X, \beta, b, \sigma) = -n\log\sigma - \tfrac n2\log 2\pi
- \mathrm{RSS}/(2\sigma^2)` with ``pyro.factor``: the same ELBO (value and gradients) at the
same gate draws as :func:`regression_model` with full-batch data, at :math:`O(p^2)` per
particle instead of :math:`O(np)`. :func:`regression_guide_stats` is the same guide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.distributions import constraints
from pyro.infer.util import is_validation_enabled

from l0bayes.distributions import (
    DEFAULT_STRETCH,
    DEFAULT_TEMPERATURE,
    GATE_ROLE,
    KL_MODES,
    GaussianSlab,
    HardConcrete,
    SpikeSlabGate,
    check_gate_hyperparameters,
    initial_log_alpha,
)
from l0bayes.linear_model.stats import GaussianStats
from l0bayes.validation import COUNT_FAMILIES, FAMILIES, check_choice, check_count, check_positive

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
    :param groups: ``None`` (one gate per column) or a long tensor ``(p,)`` of group ids
        ``0..G-1`` (one gate per group; ``init_log_alpha`` then has shape ``(G,)``).
    :param init_intercept: initial intercept (e.g. :math:`\\log\\bar y` for counts).
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
    groups: torch.Tensor | None = field(default=None, compare=False)
    init_intercept: float = 0.0

    @property
    def n_gates(self) -> int | None:
        """G, the number of gate groups (``None``: one gate per column)."""
        return None if self.groups is None else int(self.groups.max()) + 1

    def __post_init__(self) -> None:
        check_choice("family", self.family, FAMILIES)
        check_choice("kl_mode", self.kl_mode, KL_MODES)
        check_choice("weight_guide", self.weight_guide, WEIGHT_GUIDES)
        check_gate_hyperparameters(self.temperature, self.stretch)
        if self.kl_mode == "l0":
            _check_tensor(
                "lam",
                self.lam,
                0.0,
                "with kl_mode='l0' (a negative penalty rewards every gate "
                "for opening; use kl_mode='bayes' for a prior inclusion probability above 1/2)",
            )
        else:
            _check_tensor("lam", self.lam)
        _check_tensor("slab_precision", self.slab_precision, 0.0)
        if self.slab_normalized and not bool((torch.as_tensor(self.slab_precision) > 0).all()):
            raise ValueError("slab_normalized=True needs slab_precision > 0 (a proper Gaussian)")
        if self.noise_scale is not None:
            check_positive("noise_scale", self.noise_scale)
        if self.subsample_size is not None:
            check_count("subsample_size", self.subsample_size)
        if self.inclusion_beta is not None:
            if len(self.inclusion_beta) != 2:
                raise ValueError(f"inclusion_beta must be a pair (a, b), got {self.inclusion_beta}")
            for name, value in zip(("a", "b"), self.inclusion_beta, strict=True):
                check_positive(f"inclusion_beta {name}", value)
        _check_tensor("init_log_alpha", self.init_log_alpha)
        _check_tensor("init_intercept", self.init_intercept)
        if self.groups is not None:
            g = self.groups
            if not torch.is_tensor(g) or g.dim() != 1 or g.dtype != torch.long or g.numel() == 0:
                raise ValueError("groups must be a 1-D long tensor of group ids (one per column)")
            if bool((g < 0).any()) or set(g.unique().tolist()) != set(range(int(g.max()) + 1)):
                raise ValueError("groups must use every id 0..G-1 (relabel them)")
        if self.init_weight is not None:
            _check_tensor("init_weight", self.init_weight)


def _check_tensor(name: str, value, minimum: float | None = None, why: str = "") -> None:
    """Refuse a NaN/infinite float or tensor (or one below ``minimum``), naming the field."""
    try:
        tensor = torch.as_tensor(value).detach()
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{name} must be a number or a tensor, got {value!r}") from err
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if minimum is not None and not bool((tensor >= minimum).all()):
        suffix = f" {why}" if why else ""
        raise ValueError(f"{name} must be >= {minimum:g}{suffix}, got {value!r}")


def _check_data(X: torch.Tensor, y: torch.Tensor | None, prior: RegressionPrior) -> None:
    """Shapes always (cheap: no device synchronisation); values while Pyro validation is on
    (:func:`l0bayes.linear_model.svi.fit_svi` keeps it on for the first step)."""
    if not torch.is_tensor(X) or X.dim() != 2 or not X.is_floating_point():
        got = f"{X.dtype} tensor of shape {tuple(X.shape)}" if torch.is_tensor(X) else type(X)
        raise ValueError(
            f"X must be a 2-D floating-point torch tensor (n, p), got a {got}; convert it with "
            "torch.as_tensor(X, dtype=torch.float64)"
        )
    n, p = X.shape
    if y is not None and (not torch.is_tensor(y) or tuple(y.shape) != (n,)):
        got = tuple(y.shape) if torch.is_tensor(y) else type(y)
        raise ValueError(f"y must be a 1-D tensor with one entry per row of X (n = {n}), got {got}")
    if prior.groups is not None and tuple(prior.groups.shape) != (p,):
        raise ValueError(
            f"prior.groups must have shape (p,) = ({p},), got {tuple(prior.groups.shape)}"
        )
    for name in ("lam", "slab_precision", "init_log_alpha", "init_weight"):
        value = getattr(prior, name)
        shape = () if value is None else tuple(np.shape(value))
        size = (
            prior.n_gates if name in ("lam", "init_log_alpha") and prior.groups is not None else p
        )
        allowed = ((size,),) if name == "init_weight" and value is not None else ((), (1,), (size,))
        if shape not in allowed:
            raise ValueError(
                f"prior.{name} must be a scalar or have shape (p,) = ({size},), got shape {shape}"
                + (" (p: the number of gate groups G)" if size != p else "")
            )
    if prior.subsample_size is not None and prior.subsample_size > n:
        raise ValueError(
            f"prior.subsample_size = {prior.subsample_size} exceeds the n = {n} rows of X; use "
            "None (full batch) or a smaller minibatch"
        )
    if not is_validation_enabled():
        return
    for name, value in (("X", X), ("y", y)):
        if value is not None and not bool(torch.isfinite(value).all()):
            raise ValueError(f"{name} contains NaN or infinite values; drop or impute them")
    if y is not None and prior.family == "bernoulli" and not bool(((y == 0) | (y == 1)).all()):
        raise ValueError("y must contain only 0 and 1 for family='bernoulli'; recode it as 0/1")
    if y is not None and prior.family in COUNT_FAMILIES and not bool((y >= 0).all()):
        raise ValueError(f"y must hold non-negative counts for family={prior.family!r}")


def _as_tensor(value, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(value, dtype=like.dtype, device=like.device)


def linear_predictor(X: torch.Tensor, intercept: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
    """:math:`\\eta = b + X\\,\\beta` for coefficient draws of shape ``(..., p)`` → ``(..., n)``."""
    return intercept + coef @ X.transpose(-1, -2)


def regression_model(
    X: torch.Tensor,
    y: torch.Tensor | None = None,
    prior: RegressionPrior = RegressionPrior(),
    offset: torch.Tensor | None = None,
) -> torch.Tensor:
    """The L0-gated regression model (see the module docstring). Returns the coefficients.

    ``offset`` (n,): a known term of the linear predictor (log exposure for counts)."""
    _check_data(X, y, prior)
    n, p = X.shape
    if offset is not None and tuple(offset.shape) != (n,):
        raise ValueError(f"offset must have shape (n,) = ({n},), got {tuple(offset.shape)}")
    intercept, coef = _coefficients(p, X, prior)
    with pyro.plate("data", n, subsample_size=prior.subsample_size) as idx:
        eta = linear_predictor(X[idx], intercept, coef)
        if offset is not None:
            eta = eta + offset[idx]
        obs = None if y is None else y[idx]
        pyro.sample("obs", _likelihood(prior, eta, X), obs=obs)
    return coef


def _likelihood(prior: RegressionPrior, eta: torch.Tensor, like: torch.Tensor):
    """The observation distribution of the family at the linear predictor ``eta``."""
    if prior.family == "gaussian":
        return dist.Normal(eta, _noise_scale(prior, like))
    if prior.family == "bernoulli":
        return dist.Bernoulli(logits=eta)
    eta = eta.clamp(max=80.0)  # exp overflows float64 near 709; no count model lives there
    if prior.family == "poisson":
        return dist.Poisson(eta.exp())
    alpha = pyro.param("dispersion", lambda: like.new_ones(()), constraint=constraints.positive)
    return dist.GammaPoisson(1.0 / alpha, (-eta).exp() / alpha)


def _coefficients(
    p: int, like: torch.Tensor, prior: RegressionPrior
) -> tuple[torch.Tensor, torch.Tensor]:
    """The intercept (a ``pyro.param``) and the gated coefficients :math:`z \\odot \\theta`,
    shape ``(..., p)`` (a leading particle dimension when particles are vectorised)."""
    intercept = pyro.param("intercept", lambda: like.new_full((), float(prior.init_intercept)))
    gate_prior = _gate_prior(prior, like)
    features = pyro.plate("features", p)
    if prior.groups is None:
        with features:
            z = pyro.sample(GATE_ROLE, gate_prior)
    else:
        with pyro.plate("groups", prior.n_gates):
            z = pyro.sample(GATE_ROLE, gate_prior)[..., prior.groups.to(like.device)]
    with features:
        slab = GaussianSlab(_as_tensor(prior.slab_precision, like), prior.slab_normalized)
        with poutine.mask(mask=z != 0):  # the spike: an excluded weight costs nothing
            theta = pyro.sample("weight", slab.expand([p]))
    return intercept, z * theta


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
    X: torch.Tensor,
    y: torch.Tensor | None = None,
    prior: RegressionPrior = RegressionPrior(),
    offset: torch.Tensor | None = None,
) -> None:
    """Mean-field guide: hard concrete gates, point-mass or Gaussian weights.

    The weight site is scaled by the gate's :math:`P(z \\ne 0)`, so its KL from the slab
    enters the ELBO as :math:`\\sum_j P(z_j \\ne 0)\\,\\mathrm{KL}(q(\\theta_j)\\|\\text{slab})`
    (analytically, with gradients through :math:`P(z\\ne0)`)."""
    _check_data(X, y, prior)
    _guide(X.shape[1], X, prior)


def _guide(p: int, X: torch.Tensor, prior: RegressionPrior) -> None:
    """The guide's sites for ``p`` features (``X`` gives only the dtype and device)."""
    n_gates = p if prior.groups is None else prior.n_gates
    log_alpha = pyro.param(
        "gate_log_alpha", lambda: initial_log_alpha(prior.init_log_alpha, (n_gates,), X)
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
    q_gate = HardConcrete(log_alpha, prior.temperature, prior.stretch)
    prob = q_gate.prob_nonzero
    if prior.groups is not None:
        with pyro.plate("groups", n_gates):
            pyro.sample(GATE_ROLE, q_gate)
        prob = prob[prior.groups.to(X.device)]
    with pyro.plate("features", p):
        if prior.groups is None:
            pyro.sample(GATE_ROLE, q_gate)
        with poutine.scale(scale=prob):
            pyro.sample("weight", _weight_guide(prior, loc))


def _weight_guide(prior: RegressionPrior, loc: torch.Tensor) -> dist.Distribution:
    if prior.weight_guide == "delta":
        return dist.Delta(loc)
    scale = pyro.param(
        "weight_scale", lambda: torch.full_like(loc, 0.1), constraint=constraints.positive
    )
    return dist.Normal(loc, scale)


@dataclass(frozen=True)
class RegressionStats:
    r"""Sufficient statistics of the Gaussian regression likelihood, as torch tensors.

    ``gram`` :math:`X^\top X` (p, p), ``xty`` :math:`X^\top y` (p,), ``yty`` :math:`y^\top y`
    (scalar), ``x_sum`` :math:`\mathbf 1^\top X` (p,), ``y_sum`` :math:`\mathbf 1^\top y`
    (scalar) and the number of rows ``n``, all of the data as the model sees them (for
    centred data the sums are 0; nothing is centred here).
    """

    n: int
    gram: torch.Tensor
    xty: torch.Tensor
    yty: torch.Tensor
    x_sum: torch.Tensor
    y_sum: torch.Tensor

    @classmethod
    def from_data(cls, X: torch.Tensor, y: torch.Tensor) -> RegressionStats:
        """The statistics of ``X`` (n, p) and ``y`` (n,)."""
        _check_data(X, y, RegressionPrior())
        return cls(X.shape[0], X.T @ X, X.T @ y, y @ y, X.sum(0), y.sum())

    @classmethod
    def of(cls, stats: GaussianStats, device: torch.device | str = "cpu") -> RegressionStats:
        r"""The torch view of the one accumulator :class:`~l0bayes.linear_model.stats.
        GaussianStats` (centred moments :math:`G, g, y_c^\top y_c`, means :math:`\bar x,
        \bar y`): the raw moments :math:`X^\top X = G + n\bar x\bar x^\top`, :math:`X^\top y =
        g + n\bar x\bar y`, :math:`y^\top y = y_c^\top y_c + n\bar y^2`, :math:`\mathbf 1^\top X
        = n\bar x`, :math:`\mathbf 1^\top y = n\bar y` (for centred statistics, e.g.
        :meth:`GaussianStats.standardized`, exactly the centred ones and zero sums)."""
        n, x_mean, y_mean = stats.n, stats.x_mean, stats.y_mean

        def tensor(a) -> torch.Tensor:
            return torch.as_tensor(a, dtype=torch.float64, device=device)

        return cls(
            n,
            tensor(stats.gram + n * np.outer(x_mean, x_mean)),
            tensor(stats.xty + n * x_mean * y_mean),
            tensor(stats.yty + n * y_mean**2),
            tensor(n * x_mean),
            tensor(n * y_mean),
        )

    @property
    def p(self) -> int:
        """Number of features."""
        return self.gram.shape[-1]


def _check_stats(stats: RegressionStats, prior: RegressionPrior) -> None:
    """Shapes and settings always; finiteness while Pyro validation is on."""
    if not isinstance(stats, RegressionStats):
        raise ValueError(f"stats must be a RegressionStats, got {type(stats).__name__}")
    p = stats.p
    shapes = {"gram": (p, p), "xty": (p,), "yty": (), "x_sum": (p,), "y_sum": ()}
    for name, shape in shapes.items():
        if tuple(getattr(stats, name).shape) != shape:
            got = tuple(getattr(stats, name).shape)
            raise ValueError(f"stats.{name} must have shape {shape} for p = {p}, got {got}")
    if prior.family != "gaussian":
        raise ValueError(
            "the sufficient-statistics model is Gaussian only; fit family='bernoulli' per "
            "observation with regression_model"
        )
    if prior.subsample_size is not None:
        raise ValueError(
            "the sufficient-statistics likelihood is exact for all n rows: subsample_size must "
            "be None (use regression_model for minibatches)"
        )
    _check_data(stats.gram[:0], None, prior)  # the prior's shapes against p
    if is_validation_enabled():
        for name in shapes:
            if not bool(torch.isfinite(getattr(stats, name)).all()):
                raise ValueError(f"stats.{name} contains NaN or infinite values")


def gaussian_rss(stats: RegressionStats, intercept: torch.Tensor, coef: torch.Tensor):
    r""":math:`\sum_i (y_i - b - x_i^\top\beta)^2` from the statistics (module docstring), for
    coefficients of shape ``(..., p)`` → ``(...)``."""
    quad = ((coef @ stats.gram) * coef).sum(-1)
    cross = coef @ stats.xty
    mean = stats.y_sum - coef @ stats.x_sum
    return stats.yty - 2.0 * cross + quad - 2.0 * intercept * mean + stats.n * intercept**2


def regression_model_stats(
    stats: RegressionStats, prior: RegressionPrior = RegressionPrior()
) -> torch.Tensor:
    r"""The Gaussian model of :func:`regression_model` with the likelihood computed from the
    sufficient statistics (module docstring), entered as ``pyro.factor("obs", ...)``.

    .. math::

        \log p(y \mid X, \beta, b, \sigma) = -n \log\sigma - \tfrac n2 \log 2\pi
            - \frac{\mathrm{RSS}(b, \beta)}{2\sigma^2}.

    The factor has a trailing dimension of size 1 (a one-element stand-in for the data
    plate), so vectorised particles broadcast as they do in the per-observation model.
    Returns the coefficients."""
    _check_stats(stats, prior)
    like = stats.gram
    intercept, coef = _coefficients(stats.p, like, prior)
    sigma = _noise_scale(prior, like)
    rss = gaussian_rss(stats, intercept, coef).unsqueeze(-1)
    n = stats.n
    loglik = -n * torch.log(sigma) - 0.5 * n * math.log(2 * math.pi) - 0.5 * rss / sigma**2
    pyro.factor("obs", loglik)
    return coef


def regression_guide_stats(
    stats: RegressionStats, prior: RegressionPrior = RegressionPrior()
) -> None:
    """:func:`regression_guide` for :func:`regression_model_stats` (the same sites)."""
    _check_stats(stats, prior)
    _guide(stats.p, stats.gram, prior)


__all__ = [
    "RegressionPrior",
    "RegressionStats",
    "WEIGHT_GUIDES",
    "gaussian_rss",
    "linear_predictor",
    "regression_guide",
    "regression_guide_stats",
    "regression_model",
    "regression_model_stats",
]
