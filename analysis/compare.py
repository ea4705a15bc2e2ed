"""Compare variable-selection methods: methods x seeds x data sets -> CSV, tables, figures.

Methods (``l0bayes.reporting.comparison.METHODS``): L0Regression with the AIC and BIC penalties and
in
"bayes" mode, LassoCV, abess, exhaustive best subset (AIC, BIC; p <= 20), the varbvs CAVI and
the exact posterior (the reference for PIP errors). Data sets: simulated settings
(``--datasets sim-indep sim-corr sim-p16``, or ``--sim N P RHO SNR``) and scikit-learn's
diabetes data. Metrics and the shared Bayesian prior are described in
``l0bayes/comparison.py``. Writes into ``--out-dir``: ``results.csv`` (tidy: one row per
data set, seed and method), ``summary.md`` and ``summary.tex`` (mean ± sd over seeds) and
``metrics.{png,pdf}``.

    .venv/bin/python analysis/compare.py --out-dir runs/compare          # 5 seeds, all methods
    .venv/bin/python analysis/compare.py --quick --out-dir runs/compare_quick
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from l0bayes.reporting import comparison
from l0bayes.viz import tables
from l0bayes.viz.plotting import pyplot, save_figure

#: Figure panels: (row key, axis label, log scale).
PANELS = (
    ("test_mse_ratio", "test MSE / σ²  (oracle: 1)", False),
    ("k", "selected features k", False),
    ("tpr", "true positive rate", False),
    ("fdr", "false discovery rate", False),
    ("pip_mae", "PIP mean abs. error vs exact", False),
    ("seconds", "fit time (s, log scale)", True),
)
QUICK_DATA = comparison.Simulated(n=100, p=8, k=3, rho=0.0, snr=4.0, n_test=200)


# ---------------------------------------------------------------------------------- figure
def _group_stats(rows, key, dataset, method):
    values = tables.finite(
        [r[key] for r in rows if (r["dataset"], r["method"]) == (dataset, method)]
    )
    if not values:
        return np.nan, np.nan
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def plot_metrics(rows: Sequence[dict]):
    """One panel per metric: mean ± sd over seeds per data set (x) and method (marker)."""
    plt = pyplot()
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    fig, axes = plt.subplots(2, 3, figsize=(14, 8.5))
    width = 0.8 / len(methods)
    x = np.arange(len(datasets))
    for ax, (key, label, log) in zip(axes.flat, PANELS, strict=True):
        for i, method in enumerate(methods):
            stats = np.array([_group_stats(rows, key, d, method) for d in datasets])
            offset = (i - (len(methods) - 1) / 2) * width
            ax.errorbar(
                x + offset,
                stats[:, 0],
                yerr=stats[:, 1],
                fmt="o",
                ms=4,
                capsize=2,
                color=f"C{i % 10}",
                label=method,
            )
        ax.set_xticks(x, [textwrap.fill(d, 11) for d in datasets], fontsize=7)
        ax.set_xlim(-0.5, len(datasets) - 0.5)
        for edge in x[:-1] + 0.5:
            ax.axvline(edge, color="grey", linewidth=0.8)
        ax.set_ylabel(label)
        ax.set_yscale("log" if log else "linear")
        ax.grid(alpha=0.3, axis="y")
    axes.flat[0].axhline(1.0, color="black", linestyle="--", linewidth=1)
    seeds = len({r["seed"] for r in rows})
    fig.suptitle(f"Variable selection methods: mean ± sd over {seeds} seed(s) per data set")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(methods), 9), frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 0.96))
    return fig


# ------------------------------------------------------------------------------------ main
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..SEEDS-1 per data set")
    parser.add_argument(
        "--datasets",
        nargs="*",
        default=list(comparison.DATASETS),
        choices=list(comparison.DATASETS),
        help="named data sets",
    )
    parser.add_argument(
        "--sim",
        nargs=4,
        action="append",
        default=[],
        metavar=("N", "P", "RHO", "SNR"),
        help="add a simulated setting (3 true features); repeatable",
    )
    parser.add_argument(
        "--methods", nargs="+", default=list(comparison.METHODS), choices=list(comparison.METHODS)
    )
    parser.add_argument("--steps", type=int, default=1500, help="SVI steps of the L0 fits")
    parser.add_argument("--prior-inclusion", type=float, default=0.3, help="pi (Bayesian)")
    parser.add_argument("--slab-scale", type=float, default=1.0, help="slab sd (Bayesian)")
    parser.add_argument("--out-dir", default="runs/compare")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one seed, 200 SVI steps, a tiny easy simulation (n=100, p=8, snr=4) + diabetes",
    )
    return parser.parse_args(argv)


def datasets(args: argparse.Namespace) -> list:
    """The data-set factories chosen on the command line (``--quick`` replaces them)."""
    if args.quick:
        return [QUICK_DATA, comparison.DATASETS["diabetes"]]
    sims = [
        comparison.Simulated(n=int(n), p=int(p), rho=float(rho), snr=float(snr))
        for n, p, rho, snr in args.sim
    ]
    return [comparison.DATASETS[name] for name in args.datasets] + sims


def main(argv: Sequence[str] | None = None) -> list[dict]:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.quick:
        args.seeds, args.steps = 1, 200
    command = tables.command_line(__file__, argv)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    opts = comparison.Options(
        n_steps=args.steps, prior_inclusion=args.prior_inclusion, slab_scale=args.slab_scale
    )
    start = time.perf_counter()
    rows = comparison.run(datasets(args), range(args.seeds), args.methods, opts)
    elapsed = time.perf_counter() - start
    table = comparison.summary_table(rows)
    note = (
        f"Mean ± sd over seeds. Prior of the Bayesian methods: pi = {args.prior_inclusion}, "
        f"slab sd {args.slab_scale}, known noise sd (the simulated one; for real data the OLS "
        "estimate). PIP MAE: mean |PIP - exact PIP| under that prior; for l0-bayes the "
        "PSIS-corrected PIPs, with the mean-field guide's own in the 'raw guide' column. "
        "Bayesian methods select PIP > 0.5. test MSE / σ²: held-out MSE over the noise variance "
        f"(1 for the oracle). Wall time {elapsed:.0f} s. Command: `{command}`\n"
    )
    tables.write_csv(rows, out / "results.csv")
    (out / "summary.md").write_text(
        "# Variable selection comparison\n\n" + tables.to_markdown(table, 2) + "\n" + note
    )
    (out / "summary.tex").write_text(tables.to_latex(table, 2))
    save_figure(plot_metrics(rows), out / "metrics")
    print("\n" + tables.to_markdown(table, 2))
    print(f"{len(rows)} rows in {elapsed:.0f} s; outputs in {out}\ncommand: {command}")
    return rows


if __name__ == "__main__":
    main()
