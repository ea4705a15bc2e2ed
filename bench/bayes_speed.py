"""How long does a ``penalty="bayes"`` fit of ``L0Regression`` take, small p and p > n?

Three cells, each with its default settings (``method="auto"``), on one thread:

* p ≤ 16 (scikit-learn's diabetes data, p = 10): the posterior is enumerated without SVI;
  beside it ``method="svi"``, which also fits the hard concrete guide (1,500 steps) only to keep
  its own PIPs;
* n = 40, p = 200 and n = 100, p = 1,000 (Gaussian columns, five signals of size 1 to 2, unit
  noise): the chains explore the models of at most n − 2 columns under the beta-binomial(1, 1)
  prior that is the default there.

Each row gives wall and CPU seconds (CPU time is what a shared machine cannot inflate), the
PIP diagnostics' verdict, and the PIPs of the signals and the largest PIP of a null column.

Reproduce::

    .venv/bin/python bench/bayes_speed.py           # about 5 minutes on one core
    .venv/bin/python bench/bayes_speed.py --quick   # p <= 16 and a small p > n cell
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_diabetes
from threadpoolctl import threadpool_limits

from l0bayes import L0Regression
from l0bayes.device import torch_threads

SIGNALS = np.array([2.0, -1.5, 1.0, 1.0, -1.0])


def p_above_n(n: int, p: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n × p standard Gaussian columns; y = the first five columns times ``SIGNALS`` + noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    return X, X[:, : SIGNALS.size] @ SIGNALS + rng.normal(size=n)


def timed_fit(name: str, X: np.ndarray, y: np.ndarray, **params) -> dict:
    """Fit, timing wall and CPU seconds; the warnings are recorded, not shown."""
    est = L0Regression(penalty="bayes", progress=False, **params)
    wall, cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X, y)
    signals = min(SIGNALS.size, X.shape[1])
    return {
        "cell": name,
        "n": X.shape[0],
        "p": X.shape[1],
        "method": params.get("method", "auto"),
        "wall_seconds": time.perf_counter() - wall,
        "cpu_seconds": time.process_time() - cpu,
        "pip_method": est.pip_diagnostics_["method"],
        "warnings": len([w for w in caught if issubclass(w.category, RuntimeWarning)]),
        "signal_pips": est.inclusion_probs_[:signals].round(3).tolist(),
        "max_null_pip": float(est.inclusion_probs_[signals:].max()),
    }


def table(rows: list[dict]) -> str:
    head = "| cell | n | p | method | wall s | CPU s | PIPs by | warnings | signal PIPs | null |"
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        lines.append(
            f"| {r['cell']} | {r['n']} | {r['p']} | {r['method']} | {r['wall_seconds']:.2f} | "
            f"{r['cpu_seconds']:.2f} | {r['pip_method']} | {r['warnings']} | "
            f"{r['signal_pips']} | {r['max_null_pip']:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small cells, seconds")
    args = parser.parse_args(argv)
    rows = []
    with torch_threads(1), threadpool_limits(1):  # torch and numpy's BLAS on one thread
        X, y = load_diabetes(return_X_y=True)
        rows.append(timed_fit("diabetes", X, y))
        rows.append(timed_fit("diabetes", X, y, method="svi", n_steps=100 if args.quick else 1500))
        sizes = [(20, 40)] if args.quick else [(40, 200), (100, 1000)]
        for n, p in sizes:
            extra = {"n_steps": 100, "chain_iterations": 500} if args.quick else {}
            rows.append(timed_fit("p > n", *p_above_n(n, p), **extra))
    print(table(rows))
    return rows


if __name__ == "__main__":
    main()
