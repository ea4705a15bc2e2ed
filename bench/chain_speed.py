"""Which model-space chain reaches agreeing PIPs sooner at p = 100?

The design of ``analysis/pip_study.py --p100-only`` (AR(1) ρ = 0.7 columns, n = 500, 10 signals
of ±0.5, unit noise; the default unit-free slab, π = 0.5). Four chains of each sampler of
:func:`l0bayes.linear_model.model_space.mc3` (``"mh"``: add/delete/swap Metropolis–Hastings;
``"tempered"``: weighted tempered Gibbs in lockstep) at the given lengths, all in one process
on one thread: wall seconds, the chains' PIP spread (the estimator's ``pip_spread``
diagnostic, target ≤ 0.02), split-R̂, and the largest PIP difference from a long reference
run (tempered, 4 × 200,000 iterations, another seed).

Reproduce::

    .venv/bin/python bench/chain_speed.py            # about 3 minutes on one core
    .venv/bin/python bench/chain_speed.py --quick    # short lengths, no long reference
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from l0bayes.device import torch_threads
from l0bayes.linear_model.marginal_likelihood import StandardizedSlab, SufficientStats
from l0bayes.linear_model.model_space import mc3


def ar_design(n: int = 500, p: int = 100, signals: int = 10, rho: float = 0.7, seed: int = 0):
    """X with AR(1) correlated columns, y with ``signals`` effects of ±0.5 spread over them."""
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, p))
    X = np.empty_like(Z)
    X[:, 0] = Z[:, 0]
    for j in range(1, p):
        X[:, j] = rho * X[:, j - 1] + np.sqrt(1 - rho**2) * Z[:, j]
    beta = np.zeros(p)
    beta[np.linspace(0, p - 1, signals).astype(int)] = 0.5 * (-1.0) ** np.arange(signals)
    return X, X @ beta + rng.normal(size=n)


def run(stats, sampler: str, n_iter: int, seed: int) -> tuple[float, object]:
    tic = time.perf_counter()
    result = mc3(stats, StandardizedSlab(), 0.5, n_iter=n_iter, seed=seed, sampler=sampler)
    return time.perf_counter() - tic, result


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short chains, no reference")
    args = parser.parse_args(argv)
    stats = SufficientStats.from_data(*ar_design())
    cells = [("mh", 20_000), ("mh", 50_000), ("tempered", 20_000), ("tempered", 40_000)]
    if args.quick:
        cells = [("mh", 2_000), ("tempered", 1_000)]
    rows = []
    with torch_threads(1):
        reference = None if args.quick else run(stats, "tempered", 200_000, seed=99)[1]
        for sampler, n_iter in cells:
            seconds, res = run(stats, sampler, n_iter, seed=0)
            error = (
                float(np.abs(res.inclusion_probs - reference.inclusion_probs).max())
                if reference is not None
                else float("nan")
            )
            rows.append(
                dict(sampler=sampler, n_iter=n_iter, seconds=seconds, spread=res.pip_spread,
                     rhat=res.rhat, max_error_vs_reference=error)
            )  # fmt: skip
    print("sampler   iterations/chain  seconds  PIP spread  split-Rhat  max |PIP - reference|")
    for r in rows:
        print(
            f"{r['sampler']:9s} {r['n_iter']:16d} {r['seconds']:8.1f} {r['spread']:11.4f} "
            f"{r['rhat']:11.4f} {r['max_error_vs_reference']:22.4f}"
        )
    print("command: " + " ".join(["python bench/chain_speed.py", *(argv or sys.argv[1:])]))
    return rows


if __name__ == "__main__":
    main()
