"""Variable selection on one simulated regression problem, all penalties side by side.

.venv/bin/python models/simulated_selection.py --n 200 --p 12 --rho 0.5 --snr 1.0
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from l0bayes import L0Regression
from l0bayes.data.simulate import simulate_regression


@dataclass
class Config:
    n: int = 200  # rows
    p: int = 12  # features
    k: int = 3  # true non-zero coefficients (the first k)
    rho: float = 0.5  # equicorrelation of the features
    snr: float = 1.0  # Var(X beta) / noise variance
    seed: int = 0
    steps: int = 1500  # SVI steps per fit


def main(args: Config) -> dict[str, np.ndarray]:
    prob = simulate_regression(args.n, args.p, args.k, args.rho, args.snr, args.seed)
    fits = {
        pen: L0Regression(penalty=pen, n_steps=args.steps, progress=False).fit(prob.X, prob.y)
        for pen in ("aic", "bic")
    }
    fits["bayes"] = L0Regression(
        penalty="bayes",
        prior="raw",  # the simulation's known noise sd and slab in the data's units
        expected_model_size=args.k,
        noise_scale=prob.noise_scale,
        n_steps=args.steps,
        progress=False,
    ).fit(prob.X, prob.y)
    print(f"{'feature':>8} {'true':>6} " + " ".join(f"{m:>7}" for m in fits))
    for j in range(args.p):
        pips = " ".join(f"{fit.inclusion_probs_[j]:7.3f}" for fit in fits.values())
        print(f"{'x' + str(j):>8} {prob.beta[j]:6.2f} {pips}")
    for name, fit in fits.items():
        c = fit.information_criteria()
        print(
            f"{name:>6}: selected {np.flatnonzero(fit.selected_).tolist()}  "
            f"k={c.k} AIC={c.aic:.2f} BIC={c.bic:.2f}"
        )
    return {name: fit.selected_ for name, fit in fits.items()}


def parse(argv=None) -> Config:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, value in vars(Config()).items():
        parser.add_argument(f"--{name}", type=type(value), default=value)
    return Config(**vars(parser.parse_args(argv)))


if __name__ == "__main__":
    main(parse())
