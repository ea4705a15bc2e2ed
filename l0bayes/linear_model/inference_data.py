"""A fitted :class:`~l0bayes.L0Regression` as ArviZ ``InferenceData`` (arviz 0.23 API)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy.special import gammaln

from l0bayes.gates.inference_data import collapse_round_off
from l0bayes.linear_model.posterior_draws import posterior_draws
from l0bayes.validation import check_choice, feature_names

if TYPE_CHECKING:
    import arviz as az

    from l0bayes.linear_model.estimator import L0Regression

#: What :func:`to_inference_data` draws from.
SOURCES = ("posterior", "guide")


def to_inference_data(
    fit: L0Regression,
    X: np.ndarray,
    y: np.ndarray,
    *,
    X_holdout: np.ndarray | None = None,
    y_holdout: np.ndarray | None = None,
    num_samples: int = 1000,
    seed: int = 0,
    source: str = "posterior",
) -> az.InferenceData:
    r"""Posterior draws of a fitted :class:`~l0bayes.L0Regression` as ``InferenceData``.

    ``source="posterior"`` (default) draws from the posterior the fit *reports*
    (:func:`~l0bayes.linear_model.posterior_draws.posterior_draws`): with ``penalty="bayes"``
    models from the corrected posterior (enumerated or by Gibbs over the same marginal
    likelihoods), so that the share of draws with ``gate`` = 1 estimates ``inclusion_probs_``;
    with an information criterion models with the criterion's weights (``ic_weights_``: Akaike
    weights, Raftery's BIC approximation), or the selected model where the fit has none; in
    both cases coefficients, intercept and σ from their posterior given the model. A
    ``"bayes"`` fit whose PIPs are the guide's (``correction="none"``) is exported from the
    guide. ``source="guide"`` exports the raw variational guide of an SVI fit: gates
    :math:`z \sim q(z)`, weights :math:`\theta \sim q(\theta)` (a point mass for MAP weights)
    and :math:`\beta = z\theta` (what the relaxation found, not the answer). Groups:

    * ``posterior``: ``gate`` (for the posterior 0 or 1: is the feature in the drawn model),
      ``coef`` (dim ``feature``), ``intercept``, ``noise_scale`` where it is drawn, and for
      the guide also ``weight``; one chain of ``num_samples`` draws. ``posterior.attrs``
      holds ``source`` and, for the posterior, ``models`` (``"enumeration"``, ``"gibbs"``,
      ``"ic_weights"`` or ``"selected"``). A quantity the fit holds fixed (σ of
      ``prior="raw"``, a guide's point estimates) is in ``constant_data`` instead.
    * ``log_likelihood["obs"]``: :math:`\log p(y_i \mid x_i, \text{draw } s)` per draw and
      training point i (dim ``obs_id``), so ``az.loo(idata)`` and ``az.waic(idata)`` run. PSIS-LOO
      reweights the draws to leave out each *training* point; its Pareto :math:`\hat k`
      flag the points where that fails.
    * ``observed_data["obs"]``: ``y``.
    * With held-out data, ``holdout_log_likelihood["obs"]`` and ``holdout_observed_data["obs"]``
      (dim ``holdout_id``): the same for the points not used in the fit. They live in groups
      of their own because ``az.loo`` must not see them: a held-out point is not in the
      posterior, so "leaving it out" by importance weighting would be wrong. Its predictive
      density is estimated directly by :func:`holdout_elpd`.

    The data ``X, y`` must be those the model was fitted to (the posterior is computed from
    them, and ``az.loo`` then means LOO). ``az.plot_posterior``, ``az.summary``,
    ``az.plot_forest`` and ``az.loo`` run on every export (a variable that is constant in the
    draws, e.g. the gate of a feature in every model, draws as its one value).
    ``idata.to_netcdf(path)`` works with the ``h5netcdf`` backend that arviz installs.
    """
    import arviz as az

    check_choice("source", source, SOURCES)
    if not isinstance(num_samples, (int, np.integer)) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
    if (X_holdout is None) != (y_holdout is None):
        raise ValueError("give both X_holdout and y_holdout, or neither")
    X, y = _check_xy(fit, X, y)
    guide_pips = fit.penalty == "bayes" and not hasattr(fit, "variational_inclusion_probs_")
    if source == "guide" or (guide_pips and hasattr(fit, "params_")):
        source = "guide"
        draws, fixed = _guide_draws(fit, num_samples, seed), _guide_constants(fit)
        attrs = {"source": "guide"}
    else:
        found = posterior_draws(fit, X, y, num_samples, seed)
        draws = {"gate": found.gate, "coef": found.coef, "intercept": found.intercept}
        if found.noise_scale is not None:
            draws["noise_scale"] = found.noise_scale
        if found.dispersion is not None:
            draws["dispersion"] = found.dispersion
        gaussian_fixed = fit.family == "gaussian" and found.noise_scale is None
        fixed = {"noise_scale": float(fit.noise_scale_)} if gaussian_fixed else {}
        attrs = {"source": "posterior", "models": found.source}
    draws = {name: collapse_round_off(values) for name, values in draws.items()}
    dims = {"gate": ["feature"], "weight": ["feature"], "coef": ["feature"], "obs": ["obs_id"]}
    idata = az.from_dict(
        posterior={k: v[None] for k, v in draws.items()},  # add the chain dimension
        log_likelihood={"obs": _pointwise_loglik(fit, draws, fixed, X, y)[None]},
        observed_data={"obs": y},
        constant_data=fixed or None,
        coords={"feature": feature_names(fit)},
        dims=dims,
        posterior_attrs=attrs,
    )
    if X_holdout is not None:
        Xh, yh = _check_xy(fit, X_holdout, y_holdout)
        held = {"obs": ["holdout_id"]}
        loglik = _pointwise_loglik(fit, draws, fixed, Xh, yh)[None]
        idata.add_groups(
            holdout_log_likelihood=az.dict_to_dataset({"obs": loglik}, dims=held),
            holdout_observed_data=az.dict_to_dataset({"obs": yh}, default_dims=[], dims=held),
        )
    return idata


def _check_xy(est, X, y):
    from sklearn.utils.validation import check_X_y

    X, y = check_X_y(X, y, dtype=np.float64, y_numeric=True)
    if X.shape[1] != est.n_features_in_:
        raise ValueError(
            f"X has {X.shape[1]} features, the model was fitted on {est.n_features_in_}"
        )
    return X, y


def _guide_draws(est, num_samples: int, seed: int) -> dict[str, np.ndarray]:
    """Draws of the variational guide: gates, weights, their product and the intercept."""
    from l0bayes.distributions import HardConcrete

    if not hasattr(est, "params_"):
        raise ValueError(
            "source='guide' needs an SVI fit (method='svi'): this fit ran no SVI (an exact "
            "enumeration, or a certified search of at most 16 features), so it has no guide"
        )
    params = est.params_
    gen = torch.Generator().manual_seed(seed)
    q = HardConcrete(params["gate_log_alpha"], est.temperature)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (), generator=gen)))
        z = q.sample((num_samples,))
        if est.groups is not None:
            z = z[:, torch.as_tensor(np.asarray(est.groups))]
        theta = params["weight_loc"].expand(num_samples, -1)
        if "weight_scale" in params:
            theta = theta + params["weight_scale"] * torch.randn_like(theta)
    std = est._standardizer_
    scale = std.y_scale / std.x_scale
    coef = (z * theta).numpy() * scale
    intercept = std.y_mean + std.y_scale * float(params["intercept"]) - coef @ std.x_mean
    weight = theta.numpy() * scale
    return {"gate": z.numpy(), "weight": weight, "coef": coef, "intercept": intercept}


def _guide_constants(est) -> dict[str, float]:
    """The guide's point estimates that enter the likelihood: σ (Gaussian), α (negative
    binomial)."""
    if est.family == "gaussian":
        return {"noise_scale": float(est.noise_scale_)}
    if est.family == "negative_binomial":
        return {"dispersion": float(est.dispersion_)}
    return {}


def _pointwise_loglik(est, draws, fixed, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    r""":math:`\log p(y_i \mid x_i, \text{draw } s)`, shape (S, n)."""
    eta = draws["intercept"][:, None] + draws["coef"] @ X.T  # (S, n)
    if est.family == "bernoulli":
        return y * eta - np.logaddexp(0.0, eta)
    if est.family == "poisson":
        return y * eta - np.exp(eta) - gammaln(y + 1.0)
    if est.family == "negative_binomial":
        alpha = draws.get("dispersion", np.full(len(eta), fixed.get("dispersion", np.nan)))
        r = 1.0 / np.asarray(alpha)[:, None]
        log_r_mu = np.logaddexp(np.log(r), eta)
        return (
            gammaln(y + r) - gammaln(r) - gammaln(y + 1.0)
            + r * (np.log(r) - log_r_mu) + y * (eta - log_r_mu)
        )  # fmt: skip
    sigma = draws.get("noise_scale", np.full(len(eta), fixed.get("noise_scale", np.nan)))
    sigma = np.asarray(sigma)[:, None]
    return -0.5 * np.log(2 * np.pi * sigma**2) - 0.5 * ((y - eta) / sigma) ** 2


__all__ = ["SOURCES", "to_inference_data"]
