"""``l0bayes.reporting.inference_data``: ArviZ groups, ``az.loo`` on the training fit, held-out
log-likelihood and its elpd, netCDF round trip."""

import warnings

import numpy as np
import pytest

from l0bayes import L0Regression
from l0bayes.data.simulate import simulate_regression
from l0bayes.reporting.inference_data import holdout_elpd, to_inference_data

az = pytest.importorskip("arviz")

FAST = dict(n_steps=150, num_particles=4, progress=False)
N_TRAIN, N_HOLDOUT, DRAWS = 80, 40, 300


@pytest.fixture(scope="module")
def fitted():
    prob = simulate_regression(n=N_TRAIN + N_HOLDOUT, p=5, k=2, snr=2.0, seed=4)
    X, y = prob.X[:N_TRAIN], prob.y[:N_TRAIN]
    Xh, yh = prob.X[N_TRAIN:], prob.y[N_TRAIN:]
    est = L0Regression(penalty="bayes", prior_inclusion=0.3, method="svi", **FAST).fit(X, y)
    return est, X, y, Xh, yh


def _loo(idata):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # arviz warns about k-hat > 0.7 and a lone chain
        return az.loo(idata, pointwise=True)


def test_loo_on_the_training_fit_is_finite_with_pareto_k(fitted):
    est, X, y, Xh, yh = fitted
    idata = to_inference_data(est, X, y, X_holdout=Xh, y_holdout=yh, num_samples=DRAWS)
    assert {"posterior", "log_likelihood", "observed_data"} <= set(idata.groups())
    assert idata.log_likelihood["obs"].shape == (1, DRAWS, N_TRAIN)
    np.testing.assert_array_equal(idata.observed_data["obs"].values, y)
    loo = _loo(idata)  # no var_name: the held-out points are kept out of log_likelihood
    assert np.isfinite(loo.elpd_loo) and np.isfinite(loo.se)
    assert loo.pareto_k.shape == (N_TRAIN,) and np.isfinite(loo.pareto_k.values).all()


def test_holdout_groups_and_elpd(fitted):
    est, X, y, Xh, yh = fitted
    idata = to_inference_data(est, X, y, X_holdout=Xh, y_holdout=yh, num_samples=DRAWS)
    assert idata.holdout_log_likelihood["obs"].shape == (1, DRAWS, N_HOLDOUT)
    np.testing.assert_array_equal(idata.holdout_observed_data["obs"].values, yh)
    res = holdout_elpd(idata)
    assert res.pointwise.shape == (N_HOLDOUT,) and np.isfinite(res.elpd) and res.se > 0


def test_holdout_elpd_of_the_training_points_is_arviz_lppd(fitted):
    """Held-out = training data: the held-out group equals log_likelihood, and its elpd is
    the log pointwise predictive density that arviz's WAIC splits into elpd_waic + p_waic."""
    est, X, y, _, _ = fitted
    idata = to_inference_data(est, X, y, X_holdout=X, y_holdout=y, num_samples=DRAWS)
    np.testing.assert_array_equal(
        idata.holdout_log_likelihood["obs"].values, idata.log_likelihood["obs"].values
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        waic = az.waic(idata)
    assert holdout_elpd(idata).elpd == pytest.approx(waic.elpd_waic + waic.p_waic, abs=1e-8)


def test_netcdf_round_trip_keeps_every_group(fitted, tmp_path):
    est, X, y, Xh, yh = fitted
    idata = to_inference_data(est, X, y, X_holdout=Xh, y_holdout=yh, num_samples=50)
    path = tmp_path / "fit.nc"
    idata.to_netcdf(path)
    again = az.from_netcdf(path)
    assert set(again.groups()) == set(idata.groups())
    for group in ("log_likelihood", "holdout_log_likelihood"):
        np.testing.assert_array_equal(again[group]["obs"].values, idata[group]["obs"].values)
    assert _loo(again).elpd_loo == pytest.approx(_loo(idata).elpd_loo)


def test_bad_holdout_arguments(fitted):
    est, X, y, Xh, _ = fitted
    with pytest.raises(ValueError, match="both X_holdout and y_holdout"):
        to_inference_data(est, X, y, X_holdout=Xh)
    with pytest.raises(ValueError, match="features"):
        to_inference_data(est, X, y, X_holdout=Xh[:, :3], y_holdout=Xh[:, 0])
    with pytest.raises(ValueError, match="holdout_log_likelihood"):
        holdout_elpd(to_inference_data(est, X, y, num_samples=20))


# ----------------------------------------------------------------------------- networks
def test_network_draws_loo_holdout_and_netcdf(tmp_path, arviz_tools):
    import torch
    from torch import nn

    from l0bayes.nn.layers import L0Linear, L0Sequential
    from l0bayes.nn.posterior import bma_log_probs

    torch.manual_seed(0)
    net = L0Sequential(L0Linear(6, 5), nn.ReLU(), L0Linear(5, 3))
    with torch.no_grad():
        net.layers[0].log_alpha[:2] = -30.0  # two inputs always pruned
    x, y = torch.randn(40, 6), torch.randint(0, 3, (40,))
    xh, yh = torch.randn(15, 6), torch.randint(0, 3, (15,))
    idata = to_inference_data(net, x, y, X_holdout=xh, y_holdout=yh, num_samples=50, seed=1)
    gates = idata.posterior["layers.0.gate"].values
    assert gates.shape == (1, 50, 6) and np.all(gates[..., :2] == 0)
    assert idata.log_likelihood["obs"].shape == (1, 50, 40)
    assert np.array_equal(idata.observed_data["obs"].values, y.numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few draws: arviz warns about Pareto k
        loo = az.loo(idata, pointwise=True)
    assert np.isfinite(loo.elpd_loo) and loo.pareto_k.shape == (40,)  # k reported per point
    # the held-out elpd is the model average over the same draws
    bma = bma_log_probs(net, xh, num_samples=50, seed=1)
    expected = bma[torch.arange(15), yh].numpy()
    np.testing.assert_allclose(holdout_elpd(idata).pointwise, expected, rtol=1e-5, atol=1e-6)
    path = tmp_path / "net.nc"
    idata.to_netcdf(path)
    back = az.from_netcdf(path)
    np.testing.assert_array_equal(back.posterior["layers.0.gate"].values, gates)
    arviz_tools(idata)  # plot_posterior, summary, plot_forest and loo run on it


# --------------------------------------------------------------- against a wrong answer
def test_gaussian_log_likelihood_is_scipy_norm_logpdf():
    """Every entry of ``log_likelihood["obs"]`` is ``scipy.stats.norm.logpdf`` of y_i under the
    draw's mean and the fitted noise sd: no Monte Carlo error, so the tolerance is rounding
    (1e-10). The response is scaled so that sigma is far from 1 (log sigma ~ 2.3): a
    normaliser log(2 pi sigma) instead of log(2 pi sigma^2) then shifts every entry by
    log(sigma)/2 ~ 1.2 nats, and a unit-scale sigma cannot hide it."""
    from scipy.stats import norm

    prob = simulate_regression(n=60, p=4, k=2, snr=2.0, seed=7)
    X, y = prob.X, 10.0 * prob.y
    est = L0Regression(penalty="bayes", prior_inclusion=0.3, method="svi", **FAST).fit(X, y)
    sigma = est.noise_scale_
    assert abs(np.log(sigma)) > 1.0
    idata = to_inference_data(est, X, y, num_samples=50)
    coef = idata.posterior["coef"].values[0]  # (S, p)
    intercept = idata.posterior["intercept"].values[0]  # (S,)
    draw_sigma = idata.posterior["noise_scale"].values[0][:, None]  # (S, 1), sigma integrated
    assert abs(np.log(draw_sigma).mean() - np.log(sigma)) < 0.3
    mean = intercept[:, None] + coef @ X.T  # (S, n)
    expected = norm.logpdf(y[None, :], loc=mean, scale=draw_sigma)
    np.testing.assert_allclose(idata.log_likelihood["obs"].values[0], expected, atol=1e-10)
    # the same with the draws held out: one formula for both groups
    held = to_inference_data(est, X, y, X_holdout=X[:7], y_holdout=y[:7], num_samples=50)
    np.testing.assert_allclose(
        held.holdout_log_likelihood["obs"].values[0], expected[:, :7], atol=1e-10
    )


def test_gaussian_log_likelihood_of_a_point_mass_is_the_ols_llf():
    """A fit whose every gate is open with certainty and whose weights are a point mass at the
    OLS solution gives, summed over observations, statsmodels' OLS log-likelihood at
    sigma^2 = RSS / n (``OLS(...).fit().llf``)."""
    sm = pytest.importorskip("statsmodels.api")
    import torch

    prob = simulate_regression(n=50, p=3, k=2, snr=2.0, seed=8)
    X, y = prob.X, 5.0 * prob.y + 3.0
    est = L0Regression(penalty="bayes", prior_inclusion=0.3, method="svi", **FAST).fit(X, y)
    ols = sm.OLS(y, sm.add_constant(X)).fit()
    std = est._standardizer_
    params = dict(est.params_)
    params["gate_log_alpha"] = torch.full((3,), 40.0, dtype=torch.float64)
    params["weight_loc"] = torch.as_tensor(ols.params[1:] * std.x_scale / std.y_scale)
    params["weight_scale"] = torch.zeros(3, dtype=torch.float64)
    params["intercept"] = torch.tensor(
        (ols.params[0] + ols.params[1:] @ std.x_mean - std.y_mean) / std.y_scale
    )
    est.params_ = params
    est.noise_scale_ = float(np.sqrt(ols.ssr / len(y)))
    idata = to_inference_data(est, X, y, num_samples=5, source="guide")
    np.testing.assert_allclose(idata.posterior["coef"].values[0], np.tile(ols.params[1:], (5, 1)))
    total = idata.log_likelihood["obs"].values[0].sum(axis=1)
    np.testing.assert_allclose(total, ols.llf, rtol=1e-10)
