"""Wall time of the exact 2^p enumeration, n = 1,000: the bare
``l0bayes.linear_model.exact.exact_posterior``
and the estimator ``L0Regression(method="exact").fit`` (which adds input checks and the
posterior-mean coefficients).

.venv/bin/python bench/exact_speed.py --p 12 16 20
"""

from __future__ import annotations

import argparse
import time

from l0bayes import L0Regression
from l0bayes.data.simulate import simulate_regression
from l0bayes.linear_model.exact import exact_posterior


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--p", type=int, nargs="+", default=[12, 16, 20])
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args(argv)
    for p in args.p:
        prob = simulate_regression(n=args.n, p=p, k=3, seed=0)
        t0 = time.perf_counter()
        post = exact_posterior(prob.X, prob.y, noise_scale=prob.noise_scale, prior_inclusion=0.3)
        elapsed = time.perf_counter() - t0
        est = L0Regression(
            penalty="bayes",
            method="exact",
            prior="raw",
            prior_inclusion=0.3,
            noise_scale=prob.noise_scale,
        )
        t0 = time.perf_counter()
        est.fit(prob.X, prob.y)
        fit_elapsed = time.perf_counter() - t0
        print(
            f"p={p:2d} n={args.n}: {2**p:>9,d} models: exact_posterior {elapsed:6.2f} s, "
            f"L0Regression.fit {fit_elapsed:6.2f} s "
            f"(top model probability {post.top_models[0][1]:.3f})"
        )


if __name__ == "__main__":
    main()
