"""Converting fitted l0bayes models to ArviZ ``InferenceData`` (arviz 0.23 API)."""

from __future__ import annotations

import numpy as np
import torch

from l0bayes.linear_model import feature_names


def regression_inference_data(est, X, y, num_samples: int = 1000, seed: int = 0):
    r"""Posterior draws of a fitted :class:`~l0bayes.L0Regression` as ``InferenceData``.

    Draws come from the variational posterior: gates :math:`z \sim q(z)`, weights
    :math:`\theta \sim q(\theta)` (a point mass for MAP weights), coefficients
    :math:`\beta = z\theta` mapped to X's scale. ``log_likelihood["obs"]`` holds
    :math:`\log p(y_i \mid x_i, \beta^{(s)})` per draw and observation (one chain), so
    ``az.loo`` and ``az.waic`` run; ``observed_data["obs"]`` holds ``y``.
    """
    import arviz as az

    if est.method == "exact":
        raise ValueError("to_inference_data needs draws from an SVI fit (method='svi')")
    if not isinstance(num_samples, (int, np.integer)) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
    X, y = _check_xy(est, X, y)
    draws = _coefficient_draws(est, num_samples, seed)
    eta = draws["intercept"][:, None] + draws["coef"] @ X.T  # (S, n)
    loglik = _pointwise_loglik(est, eta, y)
    posterior = {k: v[None] for k, v in draws.items()}  # add the chain dimension
    dims = {"gate": ["feature"], "weight": ["feature"], "coef": ["feature"]}
    return az.from_dict(
        posterior=posterior,
        log_likelihood={"obs": loglik[None]},
        observed_data={"obs": y},
        coords={"feature": feature_names(est)},
        dims={**dims, "obs": ["obs_id"]},
    )


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


def _pointwise_loglik(est, eta: np.ndarray, y: np.ndarray) -> np.ndarray:
    if est.family == "bernoulli":
        return y * eta - np.logaddexp(0.0, eta)
    sigma = est.noise_scale_
    return -0.5 * np.log(2 * np.pi * sigma**2) - 0.5 * ((y - eta) / sigma) ** 2
