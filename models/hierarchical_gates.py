"""A hierarchical model whose group-level effects are gated: Grunfeld's investment data
(statsmodels' ``grunfeld``, 11 firms x 20 years).

log investment = fixed effects of log firm value and log capital + firm-level random
intercepts, random value slopes and random capital slopes. Each random-effect *block* (the 11
firms' deviations, with its own scale τ) is one L0 gate, so the model answers which
group-level effects are needed. Prints the blocks' PIPs, refits the selected structure with
statsmodels (OLS with the selected firm-specific terms as fixed effects) and compares its
AIC/BIC with the full structure's and the pooled regression's; saves a PIP chart to ``--out``.
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
import pandas as pd  # noqa: E402
import pyro  # noqa: E402
import pyro.distributions as dist  # noqa: E402
import statsmodels.api as sm  # noqa: E402
import statsmodels.formula.api as smf  # noqa: E402
import torch  # noqa: E402

from l0bayes import AutoL0Guide, gated
from l0bayes.gates import fit_autol0  # noqa: E402

#: The random-effect blocks: name -> the column of the design it multiplies (None: intercept).
BLOCKS = {"firm_intercept": None, "firm_value": "value", "firm_capital": "capital"}
#: Their statsmodels formula terms.
TERMS = {
    "firm_intercept": "C(firm)",
    "firm_value": "C(firm):value",
    "firm_capital": "C(firm):capital",
}


@dataclass
class Config:
    steps: int = 1500  # SVI steps
    lr: float = 0.03  # Adam learning rate
    prior_inclusion: float = 0.5  # prior P(gate open) per random-effect block
    seed: int = 0
    out: str = "runs/hierarchical_gates"  # folder for the figure


def load() -> pd.DataFrame:
    """log investment, log value and log capital, standardised; firm as codes 0..F-1."""
    data = sm.datasets.grunfeld.load_pandas().data
    frame = pd.DataFrame(
        {col: np.log(data[col].astype(float)) for col in ("invest", "value", "capital")}
    )
    frame = (frame - frame.mean()) / frame.std()
    frame["firm"] = pd.Categorical(data["firm"]).codes
    return frame


def model(X, firm, num_firms, y=None, prior_inclusion=0.5):
    """``X``: (n, 2) value and capital; ``firm``: (n,) firm codes."""
    intercept = pyro.sample("intercept", dist.Normal(0.0, 5.0))
    beta = pyro.sample("beta", dist.Normal(0.0, 5.0).expand([2]).to_event(1))
    sigma = pyro.sample("sigma", dist.HalfNormal(1.0))
    mean = intercept + (X * beta).sum(-1)  # (n,)
    # the scales first, then the gates (AutoL0Guide's order, which TraceMeanField_ELBO checks)
    taus = {name: pyro.sample(f"tau_{name}", dist.HalfNormal(1.0)) for name in BLOCKS}
    one_gate = [0] * num_firms  # the block's firms share one gate
    for name, column in BLOCKS.items():
        slab = dist.Normal(0.0, taus[name]).expand([num_firms])
        u = gated(name, slab, groups=one_gate, prior_inclusion=prior_inclusion)  # (F,)
        covariate = 1.0 if column is None else X[:, ["value", "capital"].index(column)]
        mean = mean + u[firm] * covariate
    with pyro.plate("data", X.shape[0]):
        pyro.sample("y", dist.Normal(mean, sigma), obs=y)


def fit(cfg: Config, X, firm, num_firms, y) -> AutoL0Guide:
    data = (X, firm, num_firms, y, cfg.prior_inclusion)
    return fit_autol0(model, *data, num_steps=cfg.steps, lr=cfg.lr, seed=cfg.seed)


def ols(frame: pd.DataFrame, blocks: list[str]):
    formula = " + ".join(["invest ~ value + capital"] + [TERMS[b] for b in blocks])
    return smf.ols(formula, data=frame).fit()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=Config.steps)
    parser.add_argument("--out", default=Config.out)
    parser.add_argument("--seed", type=int, default=Config.seed)
    args = parser.parse_args(argv)
    cfg = Config(steps=args.steps, out=args.out, seed=args.seed)
    frame = load()
    X = torch.tensor(frame[["value", "capital"]].to_numpy())  # (n, 2)
    firm = torch.tensor(frame["firm"].to_numpy(), dtype=torch.long)  # (n,)
    y = torch.tensor(frame["invest"].to_numpy())
    num_firms = int(firm.max()) + 1
    guide = fit(cfg, X, firm, num_firms, y)
    probs = guide.inclusion_probs()
    pips = np.array([float(probs[name]) for name in BLOCKS])  # (blocks,)
    for name, pip in zip(BLOCKS, pips, strict=True):
        print(f"{name:>15s}  ({num_firms} firms, one gate)  PIP {pip:.3f}")
    chosen = [name for name, pip in zip(BLOCKS, pips, strict=True) if pip > 0.5]
    fits = {
        "pooled": ols(frame, []),
        "full": ols(frame, list(BLOCKS)),
        "selected": ols(frame, chosen),
    }
    for label, res in fits.items():
        what = f"selected {chosen}" if label == "selected" else label
        print(
            f"{what:>40s}: AIC {res.aic:8.2f}  BIC {res.bic:8.2f}  ({int(res.df_model) + 1} coef)"
        )
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(list(BLOCKS), pips)
    ax.set_ylabel("P(z ≠ 0) per block")
    ax.set_ylim(0, 1)
    fig.tight_layout()
    fig.savefig(out / "pips.png")
    plt.close(fig)
    return {
        "pips": pips,
        "blocks": chosen,
        "aic": {k: v.aic for k, v in fits.items()},
        "bic": {k: v.bic for k, v in fits.items()},
    }


if __name__ == "__main__":
    main(sys.argv[1:])
