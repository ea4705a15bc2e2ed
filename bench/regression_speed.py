"""Fit time of L0Regression on n = 10,000, p = 100 against abess on the same data (one run).

    .venv/bin/python bench/regression_speed.py

Prints the wall times, their ratio, and whether both found the same support. The machines here
are shared and noisy: compare ratios measured in the same run, not absolute times across runs.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from l0bayes import L0Regression
from l0bayes.data.simulate import simulate_regression


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--p", type=int, default=100)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--penalty", default="bic")
    args = parser.parse_args(argv)
    prob = simulate_regression(n=args.n, p=args.p, k=args.k, rho=0.3, snr=1.0, seed=0)
    est, t_l0 = timed(
        lambda: L0Regression(penalty=args.penalty, progress=False).fit(prob.X, prob.y)
    )
    print(
        f"L0Regression(penalty={args.penalty!r}) n={args.n} p={args.p}: {t_l0:.2f} s, "
        f"selected {est.selected_.sum()} (true {prob.support.sum()}), "
        f"true support recovered: {np.array_equal(est.selected_, prob.support)}"
    )
    try:
        from abess.linear import LinearRegression
    except ImportError:
        print("abess not installed: no ratio")
        return
    ab, t_ab = timed(lambda: LinearRegression(ic_type="bic", cv=1).fit(prob.X, prob.y))
    ab_support = np.asarray(ab.coef_) != 0
    print(f"abess LinearRegression(ic_type='bic'): {t_ab:.3f} s, selected {ab_support.sum()}")
    print(
        f"time ratio L0Regression / abess = {t_l0 / t_ab:.1f}x; "
        f"same support: {np.array_equal(ab_support, est.selected_)}"
    )


if __name__ == "__main__":
    main()
