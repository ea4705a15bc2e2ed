"""``to_inference_data``: groups and shapes, usable by ArviZ."""

import warnings

import arviz as az
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
