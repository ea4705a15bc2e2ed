"""Per-SVI-step time of ``gated`` + ``AutoL0Guide`` in an ordinary linear regression vs
``l0bayes.linear_model.model.regression_model`` + ``regression_guide`` (same data, same
TraceMeanField_ELBO, one run, side by side). Target: ratio ≤ 1.2."""

from __future__ import annotations

import argparse
import sys
import time

import pyro
import pyro.distributions as dist
import torch

from l0bayes.gates import AutoL0Guide, gated
from l0bayes.linear_model.model import RegressionPrior, regression_guide, regression_model


def gated_model(X, y=None):
    beta = gated("beta", dist.Normal(0.0, 1.0).expand([X.shape[1]]), lam=1.0, kl_mode="l0")
    with pyro.plate("data", X.shape[0]):
        pyro.sample("obs", dist.Normal(X @ beta, 1.0), obs=y)


def time_steps(model, guide, X, y, steps: int) -> float:
    svi = pyro.infer.SVI(
        model, guide, pyro.optim.Adam({"lr": 0.01}), pyro.infer.TraceMeanField_ELBO()
    )
    svi.step(X, y)
    start = time.perf_counter()
    for _ in range(steps):
        svi.step(X, y)
    return (time.perf_counter() - start) / steps


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--p", type=int, default=50)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    X = torch.randn(args.n, args.p)
    y = X[:, :5].sum(-1) + torch.randn(args.n)
    prior = RegressionPrior(noise_scale=1.0, weight_guide="normal", lam=1.0)
    with pyro.validation_enabled(False):
        pyro.clear_param_store()
        base = time_steps(
            lambda X, y: regression_model(X, y, prior),
            lambda X, y: regression_guide(X, y, prior),
            X,
            y,
            args.steps,
        )
        pyro.clear_param_store()
        ours = time_steps(gated_model, AutoL0Guide(gated_model), X, y, args.steps)
    ratio = ours / base
    print(
        f"regression_model: {1e3 * base:.2f} ms/step   gated: {1e3 * ours:.2f} ms/step   "
        f"ratio {ratio:.2f}"
    )
    return ratio


if __name__ == "__main__":
    main(sys.argv[1:])
