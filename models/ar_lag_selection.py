"""Lag selection in an autoregression: yearly sunspot activity 1700-2008 (statsmodels'
``sunspots``).

The coefficients of lags 1..P of an AR(P) with Gaussian noise are L0-gated, one gate per lag.
Prints each lag's PIP, refits the selected lags (PIP > 0.5) with statsmodels' ``AutoReg`` and
compares its AIC/BIC with the full AR(P)'s (both on the same P held-back observations); saves
a PIP bar chart to ``--out``.
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
from statsmodels.tsa.ar_model import AutoReg  # noqa: E402

from l0bayes import AutoL0Guide, gated
from l0bayes.gates import fit_autol0  # noqa: E402


@dataclass
class Config:
    max_lag: int = 12  # P: lags 1..P are gated
    steps: int = 1500  # SVI steps
    lr: float = 0.03  # Adam learning rate
    prior_inclusion: float = 0.5  # prior P(gate open) per lag
    seed: int = 0
    out: str = "runs/ar_lag_selection"  # folder for the figure


def load() -> np.ndarray:
    """Yearly sunspot activity, standardised."""
    y = sm.datasets.sunspots.load_pandas().data["SUNACTIVITY"].to_numpy(float)
    return (y - y.mean()) / y.std()


def lag_matrix(y: np.ndarray, max_lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Column k-1 holds y[t-k] for t = P..T-1; the response is y[P:]."""
    T = len(y)
    X = np.stack([y[max_lag - k : T - k] for k in range(1, max_lag + 1)], axis=1)  # (T-P, P)
    return X, y[max_lag:]


def model(X, y=None, prior_inclusion=0.5):
    intercept = pyro.sample("intercept", dist.Normal(0.0, 5.0))
    sigma = pyro.sample("sigma", dist.HalfNormal(1.0))
    phi = gated("phi", dist.Normal(0.0, 1.0).expand([X.shape[1]]), prior_inclusion=prior_inclusion)
    with pyro.plate("time", X.shape[0]):
        pyro.sample("y", dist.Normal(intercept + (X * phi).sum(-1), sigma), obs=y)


def fit(cfg: Config, X: torch.Tensor, y: torch.Tensor) -> AutoL0Guide:
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
    series = load()
    X, y = lag_matrix(series, cfg.max_lag)
    guide = fit(cfg, torch.tensor(X), torch.tensor(y))
    pips = guide.inclusion_probs()["phi"].numpy()  # (P,)
    lags = np.arange(1, cfg.max_lag + 1)
    print("lag  " + " ".join(f"{k:5d}" for k in lags))
    print("PIP  " + " ".join(f"{p:5.2f}" for p in pips))
    chosen = [int(k) for k in lags[pips > 0.5]]
    full = AutoReg(series, lags=cfg.max_lag, trend="c").fit()
    sel = AutoReg(series, lags=chosen or 0, trend="c", hold_back=cfg.max_lag).fit()
    print(f"full AR({cfg.max_lag}):        AIC {full.aic:8.2f}  BIC {full.bic:8.2f}")
    print(f"selected lags {chosen}: AIC {sel.aic:8.2f}  BIC {sel.bic:8.2f}")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(lags, pips)
    ax.set_xticks(lags)
    ax.set_xlabel("lag (years)")
    ax.set_ylabel("P(z ≠ 0)")
    ax.set_ylim(0, 1)
    fig.tight_layout()
    fig.savefig(out / "pips.png")
    plt.close(fig)
    return {"pips": pips, "lags": chosen, "aic": (full.aic, sel.aic), "bic": (full.bic, sel.bic)}


if __name__ == "__main__":
    main(sys.argv[1:])
