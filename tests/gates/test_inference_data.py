"""``to_inference_data``: groups and shapes, usable by ArviZ."""

import warnings

import arviz as az
import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch

from l0bayes.gates import AutoL0Guide, gated
from l0bayes.gates.inference_data import to_inference_data


def model(X, y=None):
    sigma = pyro.sample("sigma", dist.HalfNormal(1.0))
    beta = gated("beta", dist.Normal(0.0, 1.0).expand([3]), groups=[0, 0, 1])
    with pyro.plate("data", X.shape[0]):
        pyro.sample("y", dist.Normal((X * beta).sum(-1), sigma), obs=y)


def test_groups_and_arviz():
    X = torch.randn(25, 3)
    y = X[:, 2] + 0.3 * torch.randn(25)
    guide = AutoL0Guide(model)
    guide(X, y)
    idata = to_inference_data(guide, model, X, y, num_samples=30)
    assert {"posterior", "log_likelihood", "observed_data"} <= set(idata.groups())
    post = idata.posterior
    assert post["beta.gate"].shape == (1, 30, 2) and post["beta"].shape == (1, 30, 3)
    assert "sigma" in post and idata.log_likelihood["y"].shape == (1, 30, 25)
    assert idata.observed_data["y"].shape == (25,)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert len(az.summary(idata, var_names=["beta"])) == 3
        assert az.loo(idata).elpd_loo < 0


def test_needs_observed_data():
    X = torch.randn(5, 3)
    guide = AutoL0Guide(model)
    guide(X)
    with pytest.raises(ValueError, match="no observed site"):
        to_inference_data(guide, model, X, num_samples=2)


def test_the_readme_model_exports_without_the_plate_index(arviz_tools):
    """Issue 28: the data plate's index "data" was exported as a posterior variable (one
    junk row per observation in az.summary); every ArviZ tool runs on the export."""

    def readme_model(X, y=None):
        sigma = pyro.sample("sigma", dist.HalfNormal(1.0))
        beta = gated("beta", dist.Normal(0.0, 1.0).expand([X.shape[1]]), prior_inclusion=0.2)
        with pyro.plate("data", X.shape[0]):
            pyro.sample("y", dist.Normal((X * beta).sum(-1), sigma), obs=y)

    X = torch.randn(60, 3)
    y = 2 * X[:, 0] + 0.5 * torch.randn(60)
    guide = AutoL0Guide(readme_model)
    elbo = pyro.infer.TraceMeanField_ELBO()
    svi = pyro.infer.SVI(readme_model, guide, pyro.optim.Adam({"lr": 0.05}), elbo)
    for _ in range(30):
        svi.step(X, y)
    idata = to_inference_data(guide, readme_model, X, y, num_samples=40)
    assert set(idata.posterior.data_vars) == {"sigma", "beta.gate", "beta.theta", "beta"}
    summary, loo = arviz_tools(idata)
    assert len(summary) == 1 + 3 * 3 and np.isfinite(loo.elpd_loo)


def test_collapse_round_off_keeps_real_spread():
    from l0bayes.gates.inference_data import collapse_round_off

    jitter = 152.1 + np.array([0.0, 1e-13, -2e-13])
    np.testing.assert_array_equal(collapse_round_off(jitter), np.full(3, jitter.mean()))
    spread = np.array([[0.0, 1.0], [1e-6, 1.0], [2e-6, 1.0]])
    np.testing.assert_array_equal(collapse_round_off(spread)[:, 0], spread[:, 0])
