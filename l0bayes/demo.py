"""The default job: variable selection on scikit-learn's diabetes data (n = 442, p = 10).

Prints an inclusion table (the PIPs of the Bayesian spike-and-slab fit beside the exact
posterior from enumerating all 2^10 models, and for the AIC and BIC fits the criterion's
inclusion weights, :mod:`l0bayes.linear_model.ic_weights`, each with its selected set), an
AIC/BIC table (L0-selected models beside the exhaustive best subsets) and a short method
comparison on one train/test split (the full one is ``analysis/compare.py``), and saves the
inclusion plot with the selected sets marked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import l0bayes.reporting.comparison as comparison
import l0bayes.viz.tables as tables
from l0bayes.linear_model.estimator import L0Regression
from l0bayes.linear_model.selection import best_subset, information_criteria
from l0bayes.viz.plotting import plot_pips, save_figure


def load_diabetes_standardized() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Diabetes data shipped with scikit-learn; features standardised to unit variance."""
    from sklearn.datasets import load_diabetes

    data = load_diabetes()
    X = (data.data - data.data.mean(0)) / data.data.std(0)
    return X, data.target.astype(float), list(data.feature_names)


def run_demo(out: str | Path = "demo_output", n_steps: int = 1500, progress: bool = True) -> dict:
    """Fit, print both tables, save the figure; returns the numbers for tests."""
    X, y, names = load_diabetes_standardized()
    out = Path(out)
    fits = {
        f"L0-{pen.upper()}": L0Regression(penalty=pen, n_steps=n_steps, progress=progress).fit(X, y)
        for pen in ("aic", "bic")
    }
    sigma = fits["L0-BIC"].noise_scale_
    bayes = dict(
        penalty="bayes",
        prior="raw",
        prior_inclusion=0.5,
        slab_scale=float(y.std()),
        noise_scale=sigma,
    )
    fits["L0-bayes"] = L0Regression(**bayes, method="svi", n_steps=n_steps, progress=progress)
    fits["L0-bayes"].fit(X, y)
    fits["exact"] = L0Regression(**bayes, method="exact").fit(X, y)
    pips = {name: answer_inclusion(fit, names) for name, fit in fits.items()}
    print(_pip_table(pips, names, fits))
    print()
    print(_criteria_table(X, y, fits))
    figure = plot_pips(
        pips,
        names,
        title=f"Diabetes (n={len(y)}): inclusion (AIC, BIC: criterion weights; else PIPs)",
        selected={name: fit.selected_ for name, fit in fits.items()},
        ylabel="PIP, or Akaike / BIC weight",
    )
    paths = save_figure(figure, out / "diabetes_pips")
    print(f"\nInclusion plot saved to {', '.join(map(str, paths))}")
    print()
    rows = comparison_table(n_steps)
    return {"pips": pips, "fits": fits, "paths": paths, "comparison": rows}


#: Methods of the demo's comparison: one of each kind, the slow AIC variants left out.
DEMO_METHODS = ("l0-bic", "l0-bayes", "best-subset-bic", "abess", "lasso-cv", "varbvs", "exact")
DEMO_METRICS = tuple(
    m
    for m in comparison.SUMMARY_METRICS
    if m[0] in ("k", "pip_mae", "pip_mae_guide", "test_mse", "seconds")
)


def comparison_table(n_steps: int = 1500, seed: int = 0) -> list[dict]:
    """Print and return :func:`l0bayes.reporting.comparison.run_split` on one diabetes split."""
    split = comparison.DATASETS["diabetes"](seed)
    opts = comparison.Options(seed=seed, n_steps=n_steps)
    rows = comparison.run_split(split, DEMO_METHODS, opts)
    table = comparison.summary_table(rows, DEMO_METRICS, by=("method",), count_seeds=False)
    n_test = len(split.y_test)
    print(
        f"Method comparison: diabetes, {len(split.y)} training / {n_test} test rows "
        "(X and y standardised on the training rows; PIP MAE against the exact posterior, "
        f"prior pi = {opts.prior_inclusion}, slab sd {opts.slab_scale}, noise sd "
        f"{split.noise_scale:.3f} from the full OLS fit)"
    )
    print(tables.to_markdown(table, numeric_from=1), end="")
    return rows


def answer_inclusion(fit: L0Regression, names: list[str]) -> np.ndarray:
    """The inclusion column of ``fit.summary()``: the posterior inclusion probabilities of a
    Bayesian fit, the criterion's inclusion weights (Akaike, BIC) of an AIC/BIC fit."""
    table = fit.summary(names)
    return table["pip" if "pip" in table else "ic_weight"].to_numpy()


def _pip_table(pips, names, fits) -> str:
    methods = list(pips)
    lines = [
        "Inclusion: posterior probability P(z != 0 | y) for L0-bayes and exact; for L0-AIC and "
        "L0-BIC the Akaike and BIC weights of the subsets holding the feature (exp(-ΔIC/2) "
        "normalised over all 2^10 subsets)  (* = selected)"
    ]
    lines.append(f"{'feature':>8} " + " ".join(f"{m:>10}" for m in methods))
    for j, name in enumerate(names):
        cells = [f"{pips[m][j]:9.3f}{'*' if fits[m].selected_[j] else ' '}" for m in methods]
        lines.append(f"{name:>8} " + " ".join(cells))
    return "\n".join(lines)


def _criteria_table(X, y, fits) -> str:
    rows = {f"{m} selected": fits[m].information_criteria() for m in ("L0-AIC", "L0-BIC")}
    for crit in ("aic", "bic"):
        rows[f"best subset {crit.upper()}"] = best_subset(X, y, criterion=crit).criteria
    rows["full OLS"] = information_criteria(X, y, np.ones(X.shape[1], bool))
    lines = ["Refitted models (OLS with intercept; numbers as statsmodels reports them)"]
    lines.append(f"{'model':>18} {'k':>3} {'loglik':>10} {'AIC':>10} {'BIC':>10}")
    for name, c in rows.items():
        lines.append(f"{name:>18} {c.k:3d} {c.log_likelihood:10.2f} {c.aic:10.2f} {c.bic:10.2f}")
    return "\n".join(lines)


__all__ = [
    "DEMO_METHODS",
    "answer_inclusion",
    "DEMO_METRICS",
    "comparison_table",
    "load_diabetes_standardized",
    "run_demo",
]
