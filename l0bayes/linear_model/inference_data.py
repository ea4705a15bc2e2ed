"""A fitted :class:`~l0bayes.L0Regression` as ArviZ ``InferenceData`` (arviz 0.23 API)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from l0bayes.validation import feature_names

if TYPE_CHECKING:
    import arviz as az

    from l0bayes.linear_model.estimator import L0Regression


def to_inference_data(
    fit: L0Regression,
    X: np.ndarray,
    y: np.ndarray,
    *,
    X_holdout: np.ndarray | None = None,
    y_holdout: np.ndarray | None = None,
    num_samples: int = 1000,
    seed: int = 0,
) -> az.InferenceData:
    r"""Posterior draws of a fitted :class:`~l0bayes.L0Regression` (SVI) as ``InferenceData``.

    Draws come from the variational posterior: gates :math:`z \sim q(z)`, weights
    :math:`\theta \sim q(\theta)` (a point mass for MAP weights), coefficients
    :math:`\beta = z\theta` mapped to X's scale (with ``penalty="bayes"`` these are the
    guide's draws, not reweighted by the importance-sampling correction of the PIPs). Groups:

    * ``posterior``: ``gate``, ``weight``, ``coef`` (dim ``feature``), ``intercept`` and, when
      estimated, ``noise_scale``; one chain of ``num_samples`` draws.
    * ``log_likelihood["obs"]``: :math:`\log p(y_i \mid x_i, \beta^{(s)})` per draw s and
      training point i (dim ``obs_id``), so ``az.loo(idata)`` and ``az.waic(idata)`` run. PSIS-LOO
      reweights the draws to leave out each *training* point; its Pareto :math:`\hat k`
      flag the points where that fails. (With a variational posterior the draws are not from
      the exact posterior, so the estimate inherits the guide's error.)
    * ``observed_data["obs"]``: ``y``.
    * With held-out data, ``holdout_log_likelihood["obs"]`` and ``holdout_observed_data["obs"]``
      (dim ``holdout_id``): the same for the points not used in the fit. They live in groups
      of their own because ``az.loo`` must not see them: a held-out point is not in the
      posterior, so "leaving it out" by importance weighting would be wrong. Its predictive
      density is estimated directly by :func:`holdout_elpd`.

    The data ``X, y`` must be those the model was fitted to for ``az.loo`` to mean LOO.
    ``idata.to_netcdf(path)`` works with the ``h5netcdf`` backend that arviz installs.
    """
    import arviz as az

    if getattr(fit, "method", "svi") == "exact":
        raise ValueError("to_inference_data needs draws from an SVI fit (method='svi')")
    if not isinstance(num_samples, (int, np.integer)) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
    if (X_holdout is None) != (y_holdout is None):
        raise ValueError("give both X_holdout and y_holdout, or neither")
    X, y = _check_xy(fit, X, y)
    draws = _coefficient_draws(fit, num_samples, seed)
    posterior = {k: v[None] for k, v in draws.items()}  # add the chain dimension
    dims = {"gate": ["feature"], "weight": ["feature"], "coef": ["feature"], "obs": ["obs_id"]}
    idata = az.from_dict(
        posterior=posterior,
        log_likelihood={"obs": _pointwise_loglik(fit, draws, X, y)[None]},
        observed_data={"obs": y},
        coords={"feature": feature_names(fit)},
        dims=dims,
    )
    if X_holdout is not None:
        Xh, yh = _check_xy(fit, X_holdout, y_holdout)
        held = {"obs": ["holdout_id"]}
        loglik = _pointwise_loglik(fit, draws, Xh, yh)[None]
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


def _coefficient_draws(est, num_samples: int, seed: int) -> dict[str, np.ndarray]:
    from l0bayes.distributions import HardConcrete

    params = est.params_
    gen = torch.Generator().manual_seed(seed)
    q = HardConcrete(params["gate_log_alpha"], est.temperature)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (), generator=gen)))
        z = q.sample((num_samples,))
        theta = params["weight_loc"].expand(num_samples, -1)
        if "weight_scale" in params:
            theta = theta + params["weight_scale"] * torch.randn_like(theta)
    std = est._standardizer_
    scale = std.y_scale / std.x_scale
    coef = (z * theta).numpy() * scale
    intercept = std.y_mean + std.y_scale * float(params["intercept"]) - coef @ std.x_mean
    out = {"gate": z.numpy(), "weight": theta.numpy() * scale, "coef": coef, "intercept": intercept}
    if "noise_scale" in params:
        out["noise_scale"] = np.full(num_samples, float(params["noise_scale"]) * std.y_scale)
    return out


def _pointwise_loglik(est, draws: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray):
    r""":math:`\log p(y_i \mid x_i, \beta^{(s)})`, shape (S, n)."""
    eta = draws["intercept"][:, None] + draws["coef"] @ X.T  # (S, n)
    if est.family == "bernoulli":
        return y * eta - np.logaddexp(0.0, eta)
    sigma = est.noise_scale_
    return -0.5 * np.log(2 * np.pi * sigma**2) - 0.5 * ((y - eta) / sigma) ** 2


__all__ = ["to_inference_data"]
