"""The JIT mean-field ELBO compiles once and fits a gated model."""

import warnings

import pyro
import pyro.distributions as dist
import torch

from l0bayes.gates import AutoL0Guide, JitTraceMeanField_ELBO, gated


def model(X, y=None):
    sigma = pyro.sample("sigma", dist.HalfNormal(1.0))
    beta = gated("beta", dist.Normal(0.0, 1.0).expand([X.shape[1]]), prior_inclusion=0.2)
    with pyro.plate("data", X.shape[0]):
        pyro.sample("y", dist.Normal((X * beta).sum(-1), sigma), obs=y)


def test_compiles_once_and_fits(one_thread):
    X = torch.randn(200, 4)
    y = 2 * X[:, 0] + 0.5 * torch.randn(200)
    guide = AutoL0Guide(model)
    elbo = JitTraceMeanField_ELBO()
    svi = pyro.infer.SVI(model, guide, pyro.optim.Adam({"lr": 0.05}), elbo)
    with warnings.catch_warnings(), pyro.validation_enabled(False):
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        svi.step(X, y)
        compiled = elbo._differentiable_loss
        losses = [svi.step(X, y) for _ in range(300)]
    assert elbo._differentiable_loss is compiled and len(compiled.compiled) == 1
    assert all(map(torch.isfinite, map(torch.tensor, losses)))
    pips = guide.inclusion_probs()["beta"]
    assert pips[0] > 0.95 and pips[1:].max() < 0.3, pips
