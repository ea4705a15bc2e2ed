"""Poisson regression of US executions (statsmodels' ``cpunish``) with L0-gated predictors.

Prints the posterior inclusion probabilities, refits the selected model (PIP > 0.5) with a
statsmodels Poisson GLM and compares its AIC/BIC with the full model's; saves a PIP bar chart.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pyro  # noqa: E402
import pyro.distributions as dist  # noqa: E402
import statsmodels.api as sm  # noqa: E402
import torch  # noqa: E402

from l0bayes import AutoL0Guide, gated
from l0bayes.gates import fit_autol0  # noqa: E402


@dataclass
class Config:
    steps: int = 2000  # SVI steps
    lr: float = 0.03  # Adam learning rate
    prior_inclusion: float = 0.5  # prior P(gate open) per predictor
    seed: int = 0
    out: str = "runs/poisson_counts"  # folder for the figure


def load() -> tuple[np.ndarray, np.ndarray, list[str]]:
    data = sm.datasets.cpunish.load_pandas().data
    names = ["INCOME", "PERPOVERTY", "PERBLACK", "VC100k96", "SOUTH", "DEGREE"]
    X = data[names].to_numpy(float)
    X = (X - X.mean(0)) / X.std(0)  # (n, p) standardised
    return X, data["EXECUTIONS"].to_numpy(float), names


def model(X, y=None, prior_inclusion=0.5):
    intercept = pyro.sample("intercept", dist.Normal(0.0, 5.0))
    beta = gated(
        "beta", dist.Normal(0.0, 1.0).expand([X.shape[1]]), prior_inclusion=prior_inclusion
    )
    with pyro.plate("data", X.shape[0]):
        pyro.sample("y", dist.Poisson(torch.exp(intercept + (X * beta).sum(-1))), obs=y)


def fit(cfg: Config, X: torch.Tensor, y: torch.Tensor) -> AutoL0Guide:
    # one thread (the default): a 17 x 6 problem, where extra threads only contend
    return fit_autol0(
        model, X, y, cfg.prior_inclusion, num_steps=cfg.steps, lr=cfg.lr, seed=cfg.seed
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=Config.steps)
    parser.add_argument("--out", default=Config.out)
    parser.add_argument("--seed", type=int, default=Config.seed)
    args = parser.parse_args(argv)
    cfg = Config(steps=args.steps, out=args.out, seed=args.seed)
    X, y, names = load()
    guide = fit(cfg, torch.tensor(X), torch.tensor(y))
    pips = guide.inclusion_probs()["beta"].numpy()
    for name, pip in zip(names, pips, strict=True):
        print(f"{name:>12s}  PIP {pip:.3f}")
    chosen = pips > 0.5
    full = sm.GLM(y, sm.add_constant(X), family=sm.families.Poisson()).fit()
    sel = sm.GLM(y, sm.add_constant(X[:, chosen]), family=sm.families.Poisson()).fit()
    print(f"full model:     AIC {full.aic:8.2f}  BIC {full.bic_llf:8.2f}")
    print(f"selected ({chosen.sum()}): AIC {sel.aic:8.2f}  BIC {sel.bic_llf:8.2f}")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(names, pips)
    ax.set_ylabel("P(z ≠ 0)")
    ax.set_ylim(0, 1)
    fig.tight_layout()
    fig.savefig(out / "pips.png")
    plt.close(fig)
    return {"pips": pips, "aic": (full.aic, sel.aic), "bic": (full.bic_llf, sel.bic_llf)}


if __name__ == "__main__":
    main(sys.argv[1:])
