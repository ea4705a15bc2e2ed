"""Grouped selection of categorical predictors: extramarital affairs (statsmodels' ``fair``).

A logistic regression of ``affairs > 0`` on three numeric predictors and five categorical ones
(the dummies of each categorical variable share ONE gate: ``gated(..., groups=...)``), so a
categorical variable enters or leaves the model as a whole. Prints one PIP per variable,
refits the selected variables (PIP > 0.5) with a statsmodels binomial GLM and compares its
AIC/BIC with the full model's; saves a PIP bar chart to ``--out``.
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
import torch  # noqa: E402

from l0bayes import AutoL0Guide, gated
from l0bayes.gates import fit_autol0  # noqa: E402

NUMERIC = ["age", "yrs_married", "children"]
CATEGORICAL = ["rate_marriage", "religious", "educ", "occupation", "occupation_husb"]


@dataclass
class Config:
    steps: int = 1500  # SVI steps
    lr: float = 0.03  # Adam learning rate
    prior_inclusion: float = 0.5  # prior P(gate open) per variable (a group of dummies)
    slab_scale: float = 1.0  # N(0, s²) slab on log-odds per standardised unit / per dummy
    seed: int = 0
    out: str = "runs/grouped_selection"  # folder for the figure


def load() -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], list[str]]:
    """The design (numeric columns standardised, one dummy per non-reference level), the binary
    response, each column's group id, the group names and the column names."""
    data = sm.datasets.fair.load_pandas().data
    blocks, groups, columns = [], [], []
    for g, name in enumerate(NUMERIC + CATEGORICAL):
        if name in NUMERIC:
            col = data[[name]].to_numpy(float)
            block, cols = (col - col.mean(0)) / col.std(0), [name]
        else:
            dummies = pd.get_dummies(data[name].astype(int), prefix=name, drop_first=True)
            block, cols = dummies.to_numpy(float), list(dummies.columns)
        blocks.append(block)
        groups += [g] * block.shape[1]
        columns += cols
    X = np.concatenate(blocks, axis=1)  # (n, columns)
    y = (data["affairs"] > 0).to_numpy(float)
    return X, y, np.array(groups), NUMERIC + CATEGORICAL, columns


def model(X, groups, y=None, prior_inclusion=0.5, slab_scale=1.0):
    intercept = pyro.sample("intercept", dist.Normal(0.0, 5.0))
    slab = dist.Normal(0.0, slab_scale).expand([X.shape[1]])
    beta = gated("beta", slab, groups=groups, prior_inclusion=prior_inclusion)  # (columns,)
    with pyro.plate("data", X.shape[0]):
        pyro.sample("y", dist.Bernoulli(logits=intercept + (X * beta).sum(-1)), obs=y)


def fit(cfg: Config, X: torch.Tensor, groups: torch.Tensor, y: torch.Tensor) -> AutoL0Guide:
    extra = (cfg.prior_inclusion, cfg.slab_scale)
    return fit_autol0(model, X, groups, y, *extra, num_steps=cfg.steps, lr=cfg.lr, seed=cfg.seed)


def glm(X: np.ndarray, y: np.ndarray):
    return sm.GLM(y, sm.add_constant(X), family=sm.families.Binomial()).fit()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=Config.steps)
    parser.add_argument("--out", default=Config.out)
    parser.add_argument("--seed", type=int, default=Config.seed)
    args = parser.parse_args(argv)
    cfg = Config(steps=args.steps, out=args.out, seed=args.seed)
    X, y, groups, names, columns = load()
    guide = fit(cfg, torch.tensor(X), torch.tensor(groups), torch.tensor(y))
    group_pips = guide.inclusion_probs()["beta"].numpy()  # (groups,): one gate per variable
    column_pips = group_pips[groups]  # (columns,): every dummy carries its variable's PIP
    for g, name in enumerate(names):
        size = int((groups == g).sum())
        print(f"{name:>16s}  ({size} column{'s' if size > 1 else ''})  PIP {group_pips[g]:.3f}")
    chosen = group_pips > 0.5
    full, sel = glm(X, y), glm(X[:, chosen[groups]], y)
    kept = ", ".join(n for n, c in zip(names, chosen, strict=True) if c)
    print(
        f"full model ({len(names)} variables, {X.shape[1]} columns): "
        f"AIC {full.aic:9.2f}  BIC {full.bic_llf:9.2f}"
    )
    print(
        f"selected ({kept}; {int(chosen[groups].sum())} columns): "
        f"AIC {sel.aic:9.2f}  BIC {sel.bic_llf:9.2f}"
    )
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.bar(names, group_pips)
    ax.set_ylabel("P(z ≠ 0) per variable")
    ax.set_ylim(0, 1)
    ax.tick_params(axis="x", labelrotation=30)
    fig.tight_layout()
    fig.savefig(out / "pips.png")
    plt.close(fig)
    return {
        "pips": group_pips,
        "column_pips": column_pips,
        "groups": groups,
        "aic": (full.aic, sel.aic),
        "bic": (full.bic_llf, sel.bic_llf),
    }


if __name__ == "__main__":
    main(sys.argv[1:])
