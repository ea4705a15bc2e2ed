"""End-to-end fit time of L0Regression against abess, in memory and from chunks (one run).

    .venv/bin/python bench/regression_speed.py                  # n = 1e4 in memory, 1e6 chunked
    taskset -c 0 .venv/bin/python bench/regression_speed.py     # pin to one core as well

Both the in-memory cell (n = 10,000, p = 100, 10 true signals, correlated design) and the
chunked cell (n = 10^6, p = 100: ``L0Regression.fit_chunks`` over blocks of 50,000 rows, which
are generated before the clock starts) run on one thread (torch, OpenMP, MKL and OpenBLAS set
to 1 before numpy is imported). Prints a markdown table: seconds, the support found, whether it
is the true one, the certificate and the BIC gap to the best support found by any method. The
machines here are shared and noisy: compare ratios measured in the same run.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from l0bayes import L0Regression  # noqa: E402
from l0bayes.data.simulate import simulate_regression  # noqa: E402
from l0bayes.linear_model.subset_search import GaussianStats, subset_objective  # noqa: E402

CHUNK = 50_000


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def row(name, n, p, seconds, support, truth, stats, penalty, cert="-"):
    return dict(
        method=name,
        n=n,
        p=p,
        s=seconds,
        size=int(support.sum()),
        true=bool(np.array_equal(support, truth)),
        cert=cert,
        obj=subset_objective(stats, support, penalty),
    )


def in_memory(n: int, p: int, k: int, penalty: str) -> list[dict]:
    prob = simulate_regression(n=n, p=p, k=k, rho=0.3, snr=1.0, seed=0)
    stats = GaussianStats.from_arrays(prob.X, prob.y)
    est, t = timed(lambda: L0Regression(penalty=penalty, progress=False).fit(prob.X, prob.y))
    cert = "yes" if est.optimal_ else f"gap {est.criterion_gap_:.3g}"
    rows = [
        row(
            f"L0Regression({penalty!r}).fit",
            n,
            p,
            t,
            est.selected_,
            prob.support,
            stats,
            penalty,
            cert,
        )
    ]
    rows[-1]["steps"] = len(est.losses_)
    try:
        from abess.linear import LinearRegression
    except ImportError:
        print("abess not installed: no ratio")
        return rows
    ab, t = timed(lambda: LinearRegression(ic_type=penalty, cv=1).fit(prob.X, prob.y))
    rows.append(
        row(
            f"abess(ic_type={penalty!r})",
            n,
            p,
            t,
            np.asarray(ab.coef_) != 0,
            prob.support,
            stats,
            penalty,
        )
    )
    return rows


def chunk_data(n: int, p: int, k: int, rho: float = 0.3, snr: float = 1.0, seed: int = 0):
    """Blocks of at most CHUNK rows of simulate_regression's design: equicorrelated columns
    (rho), the first k coefficients ±U(0.5, 1.5), noise variance Var(Xβ)/snr."""
    rng = np.random.default_rng(seed)
    beta = np.zeros(p)
    beta[:k] = rng.choice([-1.0, 1.0], k) * rng.uniform(0.5, 1.5, k)
    signal_var = rho * beta.sum() ** 2 + (1 - rho) * beta @ beta
    sd = np.sqrt(signal_var / snr)
    blocks = []
    for start in range(0, n, CHUNK):
        m = min(CHUNK, n - start)
        X = np.sqrt(1 - rho) * rng.standard_normal((m, p)) + np.sqrt(rho) * rng.standard_normal(
            (m, 1)
        )
        blocks.append((X, X @ beta + sd * rng.standard_normal(m)))
    return blocks, beta != 0


def chunked(n: int, p: int, k: int, penalty: str) -> list[dict]:
    """``fit_chunks`` over blocks generated before the clock starts."""
    data, truth = chunk_data(n, p, k)
    stats = GaussianStats.from_chunks(data)
    est, t = timed(lambda: L0Regression(penalty=penalty, progress=False).fit_chunks(iter(data)))
    cert = "yes" if est.optimal_ else f"gap {est.criterion_gap_:.3g}"
    out = row(
        f"L0Regression({penalty!r}).fit_chunks",
        n,
        p,
        t,
        est.selected_,
        truth,
        stats,
        penalty,
        cert,
    )
    out["steps"] = len(est.losses_)
    return [out]


def table(rows: list[dict]) -> str:
    lines = [
        "| n | p | method | seconds | SVI steps | size | true support | certified | gap |",
        "|" + "---|" * 9,
    ]
    for group in {(r["n"], r["p"]) for r in rows}:
        best = min(r["obj"] for r in rows if (r["n"], r["p"]) == group)
        for r in rows:
            if (r["n"], r["p"]) == group:
                r["gap"] = r["obj"] - best
    for r in rows:
        lines.append(
            f"| {r['n']:.0e} | {r['p']} | {r['method']} | {r['s']:.2f} | {r.get('steps', '-')} |"
            f" {r['size']} | {r['true']} | {r['cert']} | {r['gap']:.3g} |"
        )
    return "\n".join(lines)


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="rows of the in-memory cell")
    parser.add_argument("--n-chunked", type=int, default=10**6, help="rows of the chunked cell")
    parser.add_argument("--p", type=int, default=100)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--penalty", default="bic")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = in_memory(args.n, args.p, args.k, args.penalty)
    if args.n_chunked:
        rows += chunked(args.n_chunked, args.p, args.k, args.penalty)
    out = table(rows)
    l0, ab = rows[0]["s"], next((r["s"] for r in rows if r["method"].startswith("abess")), None)
    cmd = "python bench/regression_speed.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print(cmd.rstrip(), out, sep="\n")
    if ab:
        print(f"\nin memory: L0Regression / abess = {l0 / ab:.2f}x (same run)")
    return out


if __name__ == "__main__":
    main()
