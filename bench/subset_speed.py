"""Speed and quality of certified best-subset selection against abess, LassoCV and enumeration.

Every method sees the same data: an AR(1)-correlated Gaussian design (ρ = 0.5) with 10 true
signals (half the columns when p < 20) and unit noise.  Rows are generated in chunks, so the
certified search and ``L0Regression.fit_chunks`` (SVI relaxation and certified search, both from
the sufficient statistics), also run at n = 10^6, p = 500 (a 4 GB design) without holding X.
Times of the certified search and of L0Regression include generating the chunks.  For each
criterion the table reports the support size, the true positives and the gap of the method's
objective (AIC/2 or BIC/2) to the best one found by any method; ``cert.`` says whether the
branch and bound proved optimality (else its gap).

Reproduce::

    python bench/subset_speed.py            # n in {1e3, 1e4, 1e6}, p in {20, 100, 500}
    python bench/subset_speed.py --quick    # a few seconds
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 taskset -c 0 python bench/subset_speed.py  # one core
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Iterator

import numpy as np

from l0bayes.linear_model.estimator import L0Regression
from l0bayes.linear_model.subset_search import (
    GaussianStats,
    certified_best_subset,
    exhaustive_best_subset,
    subset_objective,
)

CHUNK = 50_000
IN_MEMORY_ELEMENTS = 10**8  # hold X (and run abess / LassoCV) only below 800 MB


def truth(p: int) -> np.ndarray:
    beta = np.zeros(p)
    k = min(10, p // 2)
    beta[np.linspace(0, p - 1, k).astype(int)] = np.linspace(0.5, 0.05, k)
    return beta


def chunks(n: int, p: int, seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(X, y) blocks of at most CHUNK rows; column j = 0.5 col_{j-1} + sqrt(0.75) noise."""
    rng, beta = np.random.default_rng(seed), truth(p)
    for start in range(0, n, CHUNK):
        Z = rng.standard_normal((min(CHUNK, n - start), p))
        for j in range(1, p):
            Z[:, j] = 0.5 * Z[:, j - 1] + np.sqrt(0.75) * Z[:, j]
        yield Z, Z @ beta + rng.standard_normal(len(Z))


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def run_abess(X: np.ndarray, y: np.ndarray, ic: str) -> np.ndarray:
    from abess.linear import LinearRegression

    model = LinearRegression(ic_type=ic)
    model.fit(X, y)
    return model.coef_ != 0


def run_lasso(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    from sklearn.linear_model import LassoCV

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LassoCV(cv=5, random_state=0).fit(X, y).coef_ != 0


def cell(n: int, p: int, time_limit: float, seed: int = 0) -> list[dict]:
    """All methods on one (n, p); returns one row per method and criterion."""
    stats, stats_s = timed(GaussianStats.from_chunks, chunks(n, p, seed))
    rows: list[dict] = []
    for ic in ["aic", "bic"]:
        res, s = timed(certified_best_subset, stats, ic, time_limit=time_limit)
        cert = "yes" if res.optimal else f"gap {res.gap:.3g}"
        rows.append(dict(method="certified B&B", ic=ic, s=s + stats_s, mask=res.support, cert=cert))
    for ic in ["aic", "bic"]:  # end to end: chunks -> stats -> SVI -> certified search
        est = L0Regression(penalty=ic, progress=False, time_limit=time_limit)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # p >= n (EBIC) and uncertified-search warnings
            est, s = timed(est.fit_chunks, chunks(n, p, seed))
        cert = "yes" if est.optimal_ else f"gap {est.criterion_gap_:.3g}"
        rows.append(dict(method="L0Regression", ic=ic, s=s, mask=est.selected_, cert=cert))
    if p <= 20:
        for ic in ["aic", "bic"]:
            res, s = timed(exhaustive_best_subset, stats, ic)
            rows.append(
                dict(method="exhaustive", ic=ic, s=s + stats_s, mask=res.support, cert="yes")
            )
    if n * p <= IN_MEMORY_ELEMENTS:
        X = np.concatenate([c[0] for c in chunks(n, p, seed)])
        y = np.concatenate([c[1] for c in chunks(n, p, seed)])
        for ic in ["aic", "bic"]:
            mask, s = timed(run_abess, X, y, ic)
            rows.append(dict(method="abess", ic=ic, s=s, mask=mask, cert="-"))
        mask, s = timed(run_lasso, X, y)
        rows += [dict(method="LassoCV", ic=ic, s=s, mask=mask, cert="-") for ic in ["aic", "bic"]]
    else:
        print(f"note: n={n}, p={p}: X is {8 * n * p / 1e9:.1f} GB; abess and LassoCV skipped")
    signal = truth(p) != 0
    for row in rows:
        row.update(n=n, p=p, size=int(row["mask"].sum()), tp=int((row["mask"] & signal).sum()))
        row["obj"] = subset_objective(stats, row.pop("mask"), row["ic"])
    for ic in ["aic", "bic"]:
        best = min(r["obj"] for r in rows if r["ic"] == ic)
        for r in rows:
            if r["ic"] == ic:
                r["gap"] = r["obj"] - best
    return rows


def table(rows: list[dict]) -> str:
    head = "| n | p | method | criterion | seconds | size | TP | gap to best | certified |"
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        lines.append(
            f"| {r['n']:.0e} | {r['p']} | {r['method']} | {r['ic'].upper()} | {r['s']:.2f} |"
            f" {r['size']} | {r['tp']} | {r['gap']:.3g} | {r['cert']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny grid, a few seconds")
    parser.add_argument("--n", type=int, nargs="+", default=[10**3, 10**4, 10**6])
    parser.add_argument("--p", type=int, nargs="+", default=[20, 100, 500])
    parser.add_argument("--time-limit", type=float, default=30.0, help="B&B seconds per fit")
    args = parser.parse_args(argv)
    grid = [(200, 12), (1000, 30)] if args.quick else [(n, p) for n in args.n for p in args.p]
    limit = 2.0 if args.quick else args.time_limit
    rows: list[dict] = []
    for n, p in grid:
        if n > p + 10:
            rows += cell(n, p, limit)
            print(table(rows[-1:]).splitlines()[-1].replace("|", " "), flush=True)  # progress
    out = table(rows)
    print(
        f"python bench/subset_speed.py {' '.join(sys.argv[1:] if argv is None else argv)}".rstrip(),
        out,
        sep="\n",
    )
    return out


if __name__ == "__main__":
    main()
