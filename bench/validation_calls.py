"""How often one ``L0Regression.fit`` checks its rows, per fitting path (issue 29: validate once).

    .venv/bin/python bench/validation_calls.py

Counts, with ``sys.setprofile``, the calls of the functions that check or copy a whole X
(``check_Xy``, scikit-learn's ``validate_data``, ``check_layout``, ``stats.as_chunk``) during
one fit of each configuration, and prints a markdown table with the module each call came
from. The boundary (``estimator``, ``preprocessing``) is the one intended place; every other row
is a re-check an internal caller could skip by passing checked statistics.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import sys  # noqa: E402
import warnings  # noqa: E402
from collections import Counter  # noqa: E402

from l0bayes import L0Regression  # noqa: E402
from l0bayes.data.simulate import simulate_regression  # noqa: E402

CHECKS = {"check_Xy", "validate_data", "check_layout", "_check_layout", "as_chunk"}
FAST = dict(n_steps=60, num_particles=2, progress=False, chain_iterations=200)
CASES = [
    ("gaussian bic, p = 8 (statistics)", dict(), 8, "gaussian"),
    ("gaussian bic, p = 20 (statistics + SVI)", dict(), 20, "gaussian"),
    ("gaussian bayes, p = 8 (exact)", dict(penalty="bayes"), 8, "gaussian"),
    ("gaussian bayes, p = 20 (SVI + mc3)", dict(penalty="bayes"), 20, "gaussian"),
    ("gaussian bayes raw, p = 8 (SVI + enumeration)", dict(penalty="bayes", prior="raw"), 8,
     "gaussian"),
    ("bernoulli aic, p = 8 (SVI + search)", dict(family="bernoulli", penalty="aic"), 8,
     "bernoulli"),
    ("bernoulli bayes, p = 14 (SVI + Laplace mc3)", dict(family="bernoulli", penalty="bayes"), 14,
     "bernoulli"),
]  # fmt: skip


def count_checks(est: L0Regression, X, y) -> Counter:
    """Calls of :data:`CHECKS` during ``est.fit(X, y)``, keyed by (function, calling module)."""
    calls: Counter = Counter()

    def profile(frame, event, arg):
        if event == "call" and frame.f_code.co_name in CHECKS:
            caller = frame.f_back.f_globals.get("__name__", "?") if frame.f_back else "?"
            calls[(frame.f_code.co_name, caller)] += 1

    sys.setprofile(profile)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y)
    finally:
        sys.setprofile(None)
    return calls


def main() -> None:
    print("| fit | checks of X | by whom |")
    print("|---|---:|---|")
    for name, kwargs, p, family in CASES:
        prob = simulate_regression(n=120, p=p, k=3, seed=0, family=family)
        calls = count_checks(L0Regression(**kwargs, **FAST), prob.X, prob.y)
        who = ", ".join(f"{fn} ({mod.rsplit('.', 1)[-1]}) ×{k}" for (fn, mod), k in calls.items())
        print(f"| {name} | {sum(calls.values())} | {who} |")


if __name__ == "__main__":
    main()
