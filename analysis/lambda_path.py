"""The λ path: L0Regression over a grid of λ (AIC and BIC marked) -> table and figure.

The training part of a data set (``l0bayes.reporting.comparison.DATASETS``) is split again into a
fit
part and a validation part (``--val-fraction``); the test part gives the test error. Writes
``path.csv``, ``path.md`` and ``lambda_path.{png,pdf}`` into ``--out-dir``.

    .venv/bin/python analysis/lambda_path.py --data diabetes --out-dir runs/lambda_path
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from l0bayes.linear_model.path import LambdaPath, lambda_path
from l0bayes.reporting import comparison
from l0bayes.viz import tables
from l0bayes.viz.plotting import plot_lambda_path, save_figure


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="diabetes", choices=list(comparison.DATASETS))
    parser.add_argument("--seed", type=int, default=0, help="data split / simulation seed")
    parser.add_argument("--val-fraction", type=float, default=0.25)
    parser.add_argument(
        "--lams",
        type=float,
        nargs="*",
        default=None,
        help="λ grid (default: 12 geometric steps from 0.1 to 4 λ_BIC; λ_AIC, λ_BIC added)",
    )
    parser.add_argument("--steps", type=int, default=1500, help="SVI steps per fit")
    parser.add_argument("--out-dir", default="runs/lambda_path")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> LambdaPath:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    split = comparison.DATASETS[args.data](args.seed)
    order = np.random.default_rng(args.seed).permutation(len(split.y))
    n_val = round(args.val_fraction * len(order))
    fit, val = order[n_val:], order[:n_val]
    path = lambda_path(
        split.X[fit],
        split.y[fit],
        args.lams,
        X_val=split.X[val],
        y_val=split.y[val],
        X_test=split.X_test,
        y_test=split.y_test,
        n_steps=args.steps,
        seed=args.seed,
    )
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables.write_csv(path.records(), out / "path.csv")
    command = tables.command_line(__file__, argv)
    text = f"# λ path, {split.name}\n\n{path.to_markdown()}\nCommand: `{command}`\n"
    (out / "path.md").write_text(text)
    save_figure(plot_lambda_path(path, f"L0 path, {split.name}"), out / "lambda_path")
    print(text)
    for crit in ("AIC", "BIC"):
        print(f"{crit} row = exhaustive best subset: {path.matches_best_subset(crit)}")
    return path


if __name__ == "__main__":
    main()
