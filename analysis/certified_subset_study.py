"""Certified best subsets on real data sets shipped with statsmodels and scikit-learn.

For each data set (no download: only data inside the installed packages) and each criterion
(AIC, BIC, AICc) it runs :func:`l0bayes.linear_model.subset_search.certified_best_subset` with the
enumeration shortcut off, checks the answer against :func:`exhaustive_best_subset` when p <= 16,
and prints a markdown table (n, p, selected columns, certified, nodes, seconds).

With ``--estimator`` it checks what a user gets instead: ``L0Regression(penalty=...)`` (the SVI
relaxation, its local search and the certified search) for AIC and BIC and several seeds,
against the exhaustive best subset (p <= 20) or the certified one (p > 20), and whether the
answer depends on the seed.

Run::

    python analysis/certified_subset_study.py
    python analysis/certified_subset_study.py --estimator --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import statsmodels.api as sm
from sklearn import datasets as skdata

from l0bayes.linear_model.subset_search import (
    GaussianStats,
    certified_best_subset,
    exhaustive_best_subset,
)

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


def estimator_study(seeds: list[int], n_steps: int = 300) -> list[str]:
    """``L0Regression`` on every data set: is ``selected_`` the exhaustive (p <= 20) or
    certified best subset for every seed, and is it certified (``optimal_``)?"""
    import warnings

    from l0bayes import L0Regression

    lines = [
        "| data | n | p | criterion | size | certified (all seeds) | = best subset | seconds |"
    ]
    lines.append("|" + "---|" * 8)
    for name, (X, y) in {**statsmodels_sets(), **sklearn_sets()}.items():
        X = X[:, X.std(axis=0) > 0]
        stats = GaussianStats.from_arrays(X, y)
        for penalty in ["aic", "bic"]:
            if stats.p <= 20:
                best = exhaustive_best_subset(stats, penalty).support
            else:
                best = certified_best_subset(stats, penalty).support
            fits, tic = [], time.perf_counter()
            for seed in seeds:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    est = L0Regression(penalty=penalty, n_steps=n_steps, seed=seed, progress=False)
                    fits.append(est.fit(X, y))
            seconds = (time.perf_counter() - tic) / len(seeds)
            same = all(np.array_equal(f.selected_, best) for f in fits)
            lines.append(
                f"| {name} | {stats.n} | {stats.p} | {penalty} | {int(best.sum())} |"
                f" {all(f.optimal_ for f in fits)} | {same} | {seconds:.1f} |"
            )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--estimator", action="store_true", help="check L0Regression itself")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=300, help="SVI steps (--estimator)")
    args = parser.parse_args(argv)
    lines = estimator_study(args.seeds, args.steps) if args.estimator else study()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
