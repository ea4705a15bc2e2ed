r"""The SVI relaxation of :class:`~l0bayes.linear_model.estimator.L0Regression`: the hard
concrete guide fitted to the standardised data (:mod:`l0bayes.linear_model.preprocessing`)
by :func:`~l0bayes.linear_model.svi.fit_svi` on the regression model of
:mod:`l0bayes.linear_model.model`.

The model's prior (:func:`regression_prior`) carries λ nats per open gate
(:func:`~l0bayes.linear_model.params.code_cost`); with ``penalty="bayes"`` the slab of a
standardised coefficient :math:`\beta_j s_{x_j} / s_y` has precision (:func:`slab_precision`)

.. math::

    \tau_j = \Big(\frac{s_y}{\text{slab\_scale}\; s_{x_j}}\Big)^2 \ (\text{raw}), \qquad
    \tau_j = \text{slab\_scale}^{-2} \ (\text{slab}), \qquad \tau_j = 1 \ (g\text{-priors}),

with :math:`\sigma \approx s_y` (the guide is only the proposal of the PIP correction).
The relaxation runs on the standardised rows (:func:`relax`) or, for the Gaussian family, on
the standardised sufficient statistics :math:`D^{-1}GD^{-1}`, :math:`D^{-1}g/s_y`, n
(:func:`relax_stats`, the same ELBO at :math:`O(p^2)` per step). Every function takes
already-checked data (from the estimator's boundary) and returns a result; none of them
validates again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pyro
import torch

from l0bayes.device import resolve_device
from l0bayes.distributions import HardConcrete
from l0bayes.linear_model.model import (
    RegressionPrior,
    RegressionStats,
    regression_guide,
    regression_guide_stats,
    regression_model,
    regression_model_stats,
)
from l0bayes.linear_model.params import code_cost, prior_inclusion
from l0bayes.linear_model.preprocessing import Standardizer
from l0bayes.linear_model.stats import GaussianStats
from l0bayes.linear_model.svi import SVIResult, fit_svi
from l0bayes.validation import COUNT_FAMILIES

#: The relaxation from sufficient statistics (:func:`relax_stats`, ``polish=True``) stops once
#: its support has been stable for ``max(RELAXATION_PATIENCE, n_steps // 10)`` steps: the
#: certified search decides the answer from any incumbent.
RELAXATION_PATIENCE = 150


def gates_of(log_alpha: torch.Tensor, prior: RegressionPrior) -> HardConcrete:
    """The hard concrete gates of locations ``log_alpha`` under the prior's temperature and
    stretch."""
    return HardConcrete(log_alpha, prior.temperature, prior.stretch)


def guide_gates(result: SVIResult, prior: RegressionPrior) -> HardConcrete:
    """The fitted guide's gates."""
    return gates_of(result.params["gate_log_alpha"], prior)


def slab_precision(settings, std: Standardizer) -> np.ndarray | float:
    r"""The guide's slab precision :math:`\tau_j` on the standardised coefficients (module
    docstring)."""
    if settings.prior == "raw":
        return (std.y_scale / (settings.slab_scale * std.x_scale)) ** 2
    return 1.0 / settings.slab_scale**2 if settings.prior == "slab" else 1.0


def regression_prior(
    settings, std: Standardizer, shape: tuple[int, int], like: torch.Tensor, init_weight
) -> RegressionPrior:
    """The model's prior for data of ``shape`` (n, p): λ and the KL mode of the penalty, the
    slab (``penalty="bayes"``), σ if known, the minibatch and the weight start; tensors of
    the dtype and device of ``like``."""
    n, p = shape
    pi = prior_inclusion(settings, p, n)
    lam, kl_mode = code_cost(settings.penalty, n, pi)
    bayes = settings.penalty == "bayes"
    precision = slab_precision(settings, std) if bayes else 0.0
    noise = None if settings.noise_scale is None else settings.noise_scale / std.y_scale
    batch = settings.batch_size
    return RegressionPrior(
        family=settings.family,
        lam=lam,
        kl_mode=kl_mode,
        slab_precision=torch.as_tensor(precision, dtype=like.dtype, device=like.device),
        slab_normalized=bayes,
        noise_scale=noise,
        temperature=settings.temperature,
        subsample_size=None if batch is None or batch >= n else batch,
        weight_guide="normal" if bayes else "delta",
        init_log_alpha=0.0,
        init_weight=init_weight,
        inclusion_beta=pi[1:] if isinstance(pi, tuple) else None,
    )


def ridge_start(Xt: torch.Tensor, yt: torch.Tensor, family: str, alpha: float = 1.0):
    r"""Ridge start for the weights on standardised data, :math:`(X^\top X + \alpha I)^{-1}
    X^\top (t - \bar t)` with target t = y (Gaussian), :math:`4(y - \bar y)` (logistic, a
    scaled linear fit) or :math:`\log(1 + y)` (counts)."""
    p = Xt.shape[1]
    if family in COUNT_FAMILIES:
        target = torch.log1p(yt)
    else:
        target = yt if family == "gaussian" else 4.0 * (yt - yt.mean())
    gram = Xt.T @ Xt + alpha * torch.eye(p, dtype=Xt.dtype, device=Xt.device)
    return torch.linalg.solve(gram, Xt.T @ (target - target.mean()))


@dataclass(frozen=True)
class Relaxation:
    """A fitted relaxation: the standardisation, the model's prior, the SVI result and the
    gates' :math:`P(z_j \\ne 0)` per column (a group's gate repeated over its columns)."""

    std: Standardizer
    prior: RegressionPrior
    result: SVIResult
    column_probs: np.ndarray

    @property
    def gates(self) -> HardConcrete:
        return guide_gates(self.result, self.prior)

    @property
    def gate_probs(self) -> np.ndarray:
        """:math:`P(z_g \\ne 0)` per gate (per group with groups)."""
        return self.gates.prob_nonzero.detach().cpu().numpy()

    def coef(self, groups: np.ndarray | None) -> tuple[np.ndarray, float]:
        r"""The guide's posterior-mean coefficients :math:`E[z_j]\,\mu_j` and intercept, on
        X's scale."""
        gate_mean = self.gates.mean
        if groups is not None:
            gate_mean = gate_mean[torch.as_tensor(groups, device=gate_mean.device)]
        coef_std = (gate_mean * self.result.params["weight_loc"]).cpu().numpy()
        return self.std.coef_to_original(coef_std, float(self.result.params["intercept"]))


def relax(
    settings, X: np.ndarray, y: np.ndarray, offset: np.ndarray | None, groups: np.ndarray | None
) -> Relaxation:
    """Fit the relaxation to checked ``X`` (n, p), ``y``, ``offset`` and ``groups`` (the
    column → group map of :func:`~l0bayes.linear_model.selection.check_groups`, or None)."""
    std = Standardizer.fit(X, y, settings.family)
    device = resolve_device(settings.device)
    Xt = torch.as_tensor((X - std.x_mean) / std.x_scale, device=device)
    yt = torch.as_tensor((y - std.y_mean) / std.y_scale, device=device)
    prior = regression_prior(settings, std, X.shape, Xt, ridge_start(Xt, yt, settings.family))
    if groups is not None or settings.family in COUNT_FAMILIES:
        start = 0.0
        if settings.family in COUNT_FAMILIES:
            start = math.log(y.mean()) - (0.0 if offset is None else float(offset.mean()))
        prior = replace(
            prior,
            groups=None if groups is None else torch.as_tensor(groups, device=device),
            init_intercept=start,
        )
    data = (Xt, yt, prior)
    if offset is not None:
        data += (torch.as_tensor(offset, device=device),)
    result = run_svi(settings, regression_model, regression_guide, data)
    probs = guide_gates(result, prior).prob_nonzero.detach().cpu().numpy()
    return Relaxation(std, prior, result, probs if groups is None else probs[groups])


def relax_stats(settings, stats: GaussianStats, std: Standardizer) -> Relaxation:
    """Fit the relaxation of a Gaussian fit to its statistics ``stats`` (the columns fitted;
    ``std`` their standardisation) on the standardised statistics
    (:meth:`~l0bayes.linear_model.stats.GaussianStats.standardized`), from the ridge start;
    with ``polish=True`` it stops early once its support is stable
    (:data:`RELAXATION_PATIENCE`)."""
    n, p = stats.n, stats.p
    standard = stats.standardized()
    tstats = RegressionStats.of(standard, resolve_device(settings.device))
    ridge = np.linalg.solve(standard.gram + np.eye(p), standard.xty)
    ridge = torch.as_tensor(ridge, dtype=torch.float64, device=tstats.gram.device)
    prior = regression_prior(settings, std, (n, p), tstats.gram, ridge)
    stop = {}
    if settings.polish:

        def support() -> torch.Tensor:  # the relaxed support, read in fit_svi's store
            return gates_of(pyro.param("gate_log_alpha"), prior).prob_nonzero > 0.5

        stop = {"monitor": support, "patience": max(RELAXATION_PATIENCE, settings.n_steps // 10)}
    data = (tstats, prior)
    result = run_svi(settings, regression_model_stats, regression_guide_stats, data, **stop)
    probs = guide_gates(result, prior).prob_nonzero.detach().cpu().numpy()
    return Relaxation(std, prior, result, probs)


def run_svi(settings, model, guide, data: tuple, **stop):
    """:func:`~l0bayes.linear_model.svi.fit_svi` of ``model``/``guide`` on ``data`` with the
    estimator's optimiser settings (``n_steps``, ``lr``, ``num_particles``, ``seed``,
    ``progress``); ``stop`` passes ``monitor``/``patience`` on."""
    return fit_svi(
        model,
        guide,
        data,
        n_steps=settings.n_steps,
        lr=settings.lr,
        num_particles=settings.num_particles,
        seed=settings.seed,
        progress=settings.progress,
        desc="L0Regression",
        **stop,
    )


__all__ = [
    "RELAXATION_PATIENCE",
    "Relaxation",
    "gates_of",
    "guide_gates",
    "regression_prior",
    "relax",
    "relax_stats",
    "ridge_start",
    "run_svi",
    "slab_precision",
]
