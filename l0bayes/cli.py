"""The ``l0bayes`` command line."""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = """\
l0bayes: L0 regularization (Louizos, Welling & Kingma 2018) as a Bayesian model in Pyro.

Penalties are in log-likelihood units per included parameter: lambda = 1 is AIC,
lambda = log(n)/2 is BIC.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="l0bayes", description=DESCRIPTION, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = sub.add_parser(
        "demo",
        help="variable selection on the diabetes data: PIP and AIC/BIC tables, PIP plot",
        description="Fit L0Regression with AIC, BIC and the Bayesian spike-and-slab prior on "
        "scikit-learn's diabetes data (shipped with scikit-learn, no download), compare with "
        "the exact posterior and the exhaustive best subsets, print the tables, save a plot.",
    )
    demo.add_argument("--out", default="demo_output", help="folder for the figure")
    demo.add_argument("--steps", type=int, default=1500, help="SVI steps per fit")
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")

    select = sub.add_parser(
        "select",
        help="variable selection on a CSV file (prints the PIP and AIC/BIC summary)",
        description="Fit L0Regression to a CSV file with a header row; all columns but the "
        "target are features.",
    )
    select.add_argument("csv", help="CSV file with a header row")
    select.add_argument("--target", required=True, help="name of the response column")
    select.add_argument("--family", choices=["gaussian", "bernoulli"], default="gaussian")
    select.add_argument(
        "--penalty",
        default="bic",
        help="'aic', 'bic', 'bayes', or a number lambda >= 0 (nats per coefficient)",
    )
    select.add_argument("--prior-inclusion", type=float, default=None, help="pi for 'bayes'")
    select.add_argument("--steps", type=int, default=1500, help="SVI steps")
    select.add_argument("--seed", type=int, default=0)
    return parser


def _penalty(text: str):
    try:
        return float(text)
    except ValueError:
        return text


def _cmd_demo(args) -> None:
    from l0bayes.demo import run_demo

    run_demo(out=args.out, n_steps=args.steps, progress=not args.no_progress)


def _cmd_select(args) -> None:
    import numpy as np

    from l0bayes.linear_model import L0Regression

    try:
        table = np.genfromtxt(args.csv, delimiter=",", names=True, dtype=float)
    except OSError as err:
        raise FileNotFoundError(f"cannot read --csv file {args.csv!r}: {err}") from None
    columns = list(table.dtype.names or ())
    if args.target not in columns:
        raise ValueError(f"--target {args.target!r} is not a column of {args.csv}: {columns}")
    features = [c for c in columns if c != args.target]
    X = np.column_stack([table[c] for c in features])
    est = L0Regression(
        family=args.family,
        penalty=_penalty(args.penalty),
        prior_inclusion=args.prior_inclusion,
        n_steps=args.steps,
        seed=args.seed,
    ).fit(X, table[args.target])
    print(est.summary(names=features))
    c = est.information_criteria()
    print(
        f"\nselected model: k={c.k} loglik={c.log_likelihood:.3f} AIC={c.aic:.3f} BIC={c.bic:.3f}"
    )


COMMANDS = {"demo": _cmd_demo, "select": _cmd_select}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except (ValueError, FileNotFoundError, FloatingPointError) as err:
        if args.debug:
            raise
        print(f"l0bayes {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"l0bayes {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
