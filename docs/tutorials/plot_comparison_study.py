"""
A comparison study: L0 gates against best subset and the lasso
==============================================================

Does the L0 relaxation find the model an exhaustive search would? Does the lasso? We simulate
a few regression problems with a known support, fit

* ``L0Regression(penalty="bic")`` and ``penalty="aic"`` (relaxation, then an exact local
  search on the criterion),
* ``L0Regression(penalty="bayes")`` (the median-probability model: PIP > 0.5),
* the exhaustive best subset under BIC (:func:`~l0bayes.linear_model.selection.best_subset`,
  all :math:`2^p` models),
* scikit-learn's ``LassoCV`` (the features with non-zero coefficients),

and tabulate how often each recovers the truth. ``analysis/compare.py`` runs the full study
(:mod:`l0bayes.reporting.comparison`: 5 seeds × 4 data sets × 9 methods, with abess, varbvs
and exact PIPs); ``analysis/RESULTS.md`` has its numbers.
"""

# %%
# The problems
# ------------
# :func:`~l0bayes.data.simulate.simulate_regression` draws ``n`` rows with ``p`` features,
# equicorrelation ``rho`` between them, ``k`` non-zero coefficients (the first ``k``) and a
# signal-to-noise ratio ``snr``. Four seeds of one setting keep the build quick.

import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LassoCV

from l0bayes import L0Regression
from l0bayes.data.simulate import simulate_regression
from l0bayes.linear_model.selection import best_subset
from l0bayes.viz import tables

SETTING = dict(n=150, p=10, k=3, rho=0.5, snr=2.0)
SEEDS = range(4)


def l0(penalty):
    def fit(X, y):
        est = L0Regression(penalty=penalty, n_steps=300, progress=False).fit(X, y)
        return est.selected_

    return fit


def best_subset_bic(X, y):
    return best_subset(X, y, criterion="bic").support


def lasso_cv(X, y):
    return LassoCV(cv=5, random_state=0).fit(X, y).coef_ != 0


METHODS = {
    "L0, BIC": l0("bic"),
    "L0, AIC": l0("aic"),
    "L0, bayes": l0("bayes"),
    "best subset, BIC": best_subset_bic,
    "LassoCV": lasso_cv,
}

# %%
# The study
# ---------
# One row per method and seed: the number of selected features, the true-positive rate, the
# false-discovery rate, whether the support is exactly the truth, whether it equals the
# exhaustive BIC model, and the fit time.

rows = []
for seed in SEEDS:
    prob = simulate_regression(**SETTING, seed=seed)
    best = best_subset_bic(prob.X, prob.y)
    for name, method in METHODS.items():
        start = time.perf_counter()
        selected = np.asarray(method(prob.X, prob.y), bool)
        seconds = time.perf_counter() - start
        hits = int((selected & prob.support).sum())
        rows.append(
            dict(
                method=name,
                seed=seed,
                k=int(selected.sum()),
                tpr=hits / prob.support.sum(),
                fdr=(selected.sum() - hits) / max(selected.sum(), 1),
                truth=float(np.array_equal(selected, prob.support)),
                best=float(np.array_equal(selected, best)),
                seconds=seconds,
            )
        )

# %%
# The table
# ---------
# Mean ± standard deviation over the seeds (:func:`l0bayes.viz.tables.mean_sd`).

columns = [
    ("k", "k", ".1f"),
    ("tpr", "TPR", ".2f"),
    ("fdr", "FDR", ".2f"),
    ("truth", "support = truth", ".2f"),
    ("best", "= best subset BIC", ".2f"),
    ("seconds", "time (s)", ".2f"),
]
header = ["method", *(title for _, title, _ in columns)]
body = []
for name in METHODS:
    mine = [r for r in rows if r["method"] == name]
    body.append([name, *(tables.mean_sd([r[key] for r in mine], fmt) for key, _, fmt in columns)])
print(f"{len(SEEDS)} seeds of", ", ".join(f"{k}={v}" for k, v in SETTING.items()))
print(tables.to_markdown((header, body), numeric_from=1))

# %%
# ``L0, BIC`` should agree with the exhaustive BIC search on (nearly) every problem: the exact
# local search repairs what the relaxation alone gets wrong. Cross-validated lasso selects
# for prediction, not for the support, and typically keeps extra features.
#
# The same rows as a figure
# -------------------------

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.2))
names = list(METHODS)
for i, name in enumerate(names):
    mine = [r for r in rows if r["method"] == name]
    ax1.scatter(np.full(len(mine), i), [r["k"] for r in mine], alpha=0.6)
    ax2.bar(i, np.mean([r["truth"] for r in mine]))
ax1.axhline(SETTING["k"], color="k", lw=0.8, ls="--")
ax1.set_ylabel("features selected")
ax2.set_ylabel("share of seeds: support = truth")
for ax in (ax1, ax2):
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize="small")
fig.tight_layout()
