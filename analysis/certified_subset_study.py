"""Certified best subsets on real data sets shipped with statsmodels and scikit-learn.

For each data set (no download: only data inside the installed packages) and each criterion
(AIC, BIC, AICc) it runs :func:`l0bayes.linear_model.subset_search.certified_best_subset` with the
enumeration shortcut off, checks the answer against :func:`exhaustive_best_subset` when p <= 16,
and prints a markdown table (n, p, selected columns, certified, nodes, seconds).

Run::

    python analysis/certified_subset_study.py
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm
from sklearn import datasets as skdata

from l0bayes.linear_model.subset_search import GaussianStats, certified_best_subset, exhaustive_best_subset

SM = ["longley", "stackloss", "cpunish", "statecrime", "committee", "copper", "spector"]
SM += ["fair", "star98", "ccard", "scotland", "randhie", "grunfeld", "engel"]


def numeric(frame: pd.DataFrame) -> np.ndarray:
    return frame.select_dtypes("number").to_numpy(float)


def statsmodels_sets() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for name in SM:
        data = getattr(sm.datasets, name).load_pandas()
        endog = data.endog.to_numpy(float)
        out[name] = numeric(data.exog), endog[:, 0] if endog.ndim == 2 else endog
    macro = sm.datasets.macrodata.load_pandas().data.drop(columns=["year", "quarter"])
    out["macrodata"] = macro.drop(columns="realgdp").to_numpy(float), macro["realgdp"].to_numpy()
    return out


def sklearn_sets() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {"diabetes": skdata.load_diabetes(return_X_y=True)}
    for name, target in [("wine", 0), ("breast_cancer", 0), ("iris", 0)]:
        X = getattr(skdata, f"load_{name}")().data
        out[f"{name}[col {target}]"] = np.delete(X, target, axis=1), X[:, target]
    linnerud = skdata.load_linnerud()
    out["linnerud"] = linnerud.data, linnerud.target[:, 0]
    return out


def study(time_limit: float = 60.0) -> list[str]:
    lines = ["| data | n | p | criterion | size | certified | agrees | nodes | seconds |"]
    lines.append("|" + "---|" * 9)
    for name, (X, y) in {**statsmodels_sets(), **sklearn_sets()}.items():
        keep = X.std(axis=0) > 0
        stats = GaussianStats.from_arrays(X[:, keep], y)
        for penalty in ["aic", "bic", "aicc"]:
            res = certified_best_subset(stats, penalty, time_limit=time_limit, enumeration_limit=0)
            agrees = "-"
            if stats.p <= 16:
                ref = exhaustive_best_subset(stats, penalty)
                agrees = str(abs(ref.objective - res.objective) < 1e-9)
            lines.append(
                f"| {name} | {stats.n} | {stats.p} | {penalty} | {int(res.support.sum())} |"
                f" {res.optimal} | {agrees} | {res.nodes} | {res.seconds:.2f} |"
            )
    return lines


if __name__ == "__main__":
    print("\n".join(study()))
