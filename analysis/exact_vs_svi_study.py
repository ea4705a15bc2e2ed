"""How close are the SVI posterior inclusion probabilities to the exact ones?

On simulated Gaussian problems (n, p, equicorrelation rho, signal-to-noise snr, k = 3 true
features, several seeds) we fit ``L0Regression(penalty="bayes")`` twice from the same prior
(prior_inclusion 0.3, slab_scale 1, known noise scale = the simulated one): by SVI and by
exact enumeration of all 2^p models (``method="exact"``). The SVI fit forces
``correction="psis"`` (the default enumerates the raw prior exactly up to p = 20, so the study
measures the importance-sampling path that runs beyond). Per problem we record the PIP errors
of the PSIS-corrected (``inclusion_probs_``) and raw variational
(``variational_inclusion_probs_``) estimates, whether each 0.5-PIP model covers the true
support, the overlap of the model-size posteriors, the importance-sampling diagnostics and
the fit times. Writes ``problems.csv``, ``features.csv``, ``summary.md``, ``summary.tex`` and
a PIP scatter figure (PNG + PDF) into ``--out-dir``.

    .venv/bin/python analysis/exact_vs_svi_study.py --seeds 2 --out-dir runs/exact_vs_svi
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from l0bayes import L0Regression
from l0bayes.data.simulate import Problem, simulate_regression
from l0bayes.linear_model.model_size import poisson_binomial
from l0bayes.viz import tables
from l0bayes.viz.plotting import pyplot, save_figure
from l0bayes.viz.tables import finite, mean_sd, nonfinite_count, nonfinite_note, write_csv

PRIOR = dict(penalty="bayes", prior="raw", prior_inclusion=0.3, slab_scale=1.0)
#: Text of L0Regression's RuntimeWarning about a low importance-sampling ESS.
LOW_ESS_TEXT = "effective sample size"
#: Summary rows: (problems.csv column, label, number format).
METRICS = (
    ("pip_mae_svi", "PIP mean abs. error, PSIS-corrected", ".3f"),
    ("pip_mae_raw", "PIP mean abs. error, raw variational", ".3f"),
    ("pip_max_err_svi", "PIP max abs. error, PSIS-corrected", ".3f"),
    ("pip_max_err_raw", "PIP max abs. error, raw variational", ".3f"),
    ("covers_true_svi", "0.5-PIP model covers true support, SVI", ".2f"),
    ("covers_true_exact", "0.5-PIP model covers true support, exact", ".2f"),
    ("size_overlap_svi", "model-size overlap with exact, PSIS-corrected", ".3f"),
    ("size_overlap_raw", "model-size overlap with exact, raw variational", ".3f"),
    ("pareto_k", "Pareto k of the importance weights", ".2f"),
    ("ess", "importance effective sample size", ".0f"),
    ("exact_seconds", "exact fit time (s)", ".3f"),
    ("svi_seconds", "SVI fit time (s)", ".2f"),
)


# ----------------------------------------------------------------------------- metrics
def overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Overlap Σ_k min(a_k, b_k) of two distributions on {0..p} (1 = identical)."""
    return float(np.minimum(a, b).sum())


def covers(pips: np.ndarray, support: np.ndarray) -> float:
    """1.0 if the median-probability model (PIP > 0.5) contains every true feature, else 0.0;
    NaN if any PIP is NaN (a failed importance correction)."""
    if np.isnan(pips).any():
        return float("nan")
    return float(np.all(pips[support] > 0.5))


# ----------------------------------------------------------------------------- fitting
def timed_fit(est: L0Regression, prob: Problem) -> tuple[L0Regression, float, str]:
    """Fit ``est``; return it, the fit time and the text of any RuntimeWarning it raised (a
    low importance-sampling ESS), which is recorded instead of propagated. Other warnings are
    re-issued."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        est.fit(prob.X, prob.y)
        seconds = time.perf_counter() - t0
    runtime = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    for w in caught:
        if not issubclass(w.category, RuntimeWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return est, seconds, " | ".join(runtime)


def fit_pair(prob: Problem, seed: int, n_steps: int):
    """Exact and SVI fits of one problem from the same prior."""
    sigma = prob.noise_scale
    exact = L0Regression(method="exact", noise_scale=sigma, **PRIOR)
    svi = L0Regression(
        noise_scale=sigma, n_steps=n_steps, progress=False, seed=seed, correction="psis", **PRIOR
    )  # PSIS forced: at these p the default enumerates the raw prior exactly
    return timed_fit(exact, prob), timed_fit(svi, prob)


def problem_row(problem_id: int, cell: dict, prob: Problem, exact_fit, svi_fit) -> dict:
    """One problems.csv row: the grid cell and the SVI-vs-exact metrics."""
    exact, t_exact, warn_exact = exact_fit
    svi, t_svi, warn_svi = svi_fit
    ref = exact.inclusion_probs_
    err_svi = np.abs(svi.inclusion_probs_ - ref)
    err_raw = np.abs(svi.variational_inclusion_probs_ - ref)
    raw_sizes = poisson_binomial(svi.variational_inclusion_probs_)
    return dict(
        problem=problem_id,
        **cell,
        noise_scale=prob.noise_scale,
        pip_mae_svi=float(err_svi.mean()),
        pip_mae_raw=float(err_raw.mean()),
        pip_max_err_svi=float(err_svi.max()),
        pip_max_err_raw=float(err_raw.max()),
        covers_true_svi=covers(svi.inclusion_probs_, prob.support),
        covers_true_raw=covers(svi.variational_inclusion_probs_, prob.support),
        covers_true_exact=covers(ref, prob.support),
        size_overlap_svi=overlap(svi.model_size_probs_, exact.model_size_probs_),
        size_overlap_raw=overlap(raw_sizes, exact.model_size_probs_),
        pareto_k=float(svi.pareto_k_),
        ess=float(svi.importance_ess_),
        exact_seconds=t_exact,
        svi_seconds=t_svi,
        psis_failed=int(not np.all(np.isfinite(svi.inclusion_probs_))),
        low_ess_warning=int(LOW_ESS_TEXT in warn_svi),
        warnings=" | ".join(w for w in (warn_exact, warn_svi) if w),
    )


def feature_rows(problem_id: int, p: int, prob: Problem, exact, svi) -> list[dict]:
    """features.csv rows: one per feature of one problem."""
    return [
        dict(
            problem=problem_id,
            p=p,
            feature=j,
            true_feature=int(prob.support[j]),
            exact_pip=float(exact.inclusion_probs_[j]),
            svi_pip=float(svi.inclusion_probs_[j]),
            raw_pip=float(svi.variational_inclusion_probs_[j]),
        )
        for j in range(p)
    ]


def run(args: argparse.Namespace) -> tuple[list[dict], list[dict]]:
    """Fit every problem of the grid; return the problem rows and the feature rows."""
    problems, features = [], []
    grid = itertools.product(args.n, args.p, args.rho, args.snr, range(args.seeds))
    for pid, (n, p, rho, snr, seed) in enumerate(grid):
        cell = dict(n=n, p=p, rho=rho, snr=snr, seed=seed, k=args.k)
        prob = simulate_regression(n=n, p=p, k=args.k, rho=rho, snr=snr, seed=seed)
        exact_fit, svi_fit = fit_pair(prob, seed, args.steps)
        problems.append(problem_row(pid, cell, prob, exact_fit, svi_fit))
        features += feature_rows(pid, p, prob, exact_fit[0], svi_fit[0])
        row = problems[-1]
        print(
            f"[{pid}] n={n} p={p} rho={rho} snr={snr} seed={seed}: "
            f"MAE corrected {row['pip_mae_svi']:.3f} raw {row['pip_mae_raw']:.3f}, "
            f"k-hat {row['pareto_k']:.2f}, ESS {row['ess']:.0f}, "
            f"{row['exact_seconds']:.2f} s exact / {row['svi_seconds']:.1f} s SVI",
            flush=True,
        )
    return problems, features


# ----------------------------------------------------------------------------- outputs
def groups(problems: list[dict]) -> list[tuple[str, list[dict]]]:
    """(column title, rows) for each p in the grid, then all problems."""
    out = []
    for p in sorted({r["p"] for r in problems}):
        rows = [r for r in problems if r["p"] == p]
        out.append((f"p = {p} ({_count(rows)})", rows))
    out.append((f"all ({_count(problems)})", problems))
    return out


def _count(rows: list[dict]) -> str:
    return f"{len(rows)} problem" + ("s" if len(rows) != 1 else "")


def summary_table(problems: list[dict]) -> tables.Table:
    """Header and body rows of the summary: one row per metric, one column per group."""
    cols = groups(problems)
    header = ["metric (mean ± sd over problems)"] + [title for title, _ in cols]
    body = [
        [label] + [mean_sd([r[key] for r in rows], fmt) for _, rows in cols]
        for key, label, fmt in METRICS
    ]
    return header, body


def to_markdown(problems: list[dict], command: str) -> str:
    lines = [
        "# SVI vs exact posterior inclusion probabilities",
        "",
        "Prior: penalty='bayes', prior_inclusion=0.3, slab_scale=1.0, noise_scale = the "
        f"simulated one (known). Command: `{command}`",
        "",
        tables.to_markdown(summary_table(problems)),
        "Errors are against the exact (enumerated) posterior of the same prior. Coverage: share "
        "of problems whose PIP > 0.5 model contains all true features. Model-size overlap: "
        "Σ_k min(P_svi(|γ| = k), P_exact(|γ| = k)); for the raw guide, P_svi is the "
        "Poisson-binomial of its inclusion probabilities. Non-finite values are left out of the "
        "means and counted: Pareto k is NaN where the guide concentrates on a few models, so "
        "the top importance weights tie and no Pareto tail can be fitted (the weights are then "
        "bounded and used unsmoothed); `psis_failed` in problems.csv flags any non-finite "
        "corrected PIP.",
    ]
    return "\n".join(lines) + "\n"


def plot_scatter(features: list[dict], problems: list[dict]):
    """SVI PIP against exact PIP, one panel per SVI estimate, coloured by p."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 5.0), sharex=True, sharey=True)
    panels = (
        ("svi_pip", "pip_mae_svi", "PSIS-corrected (inclusion_probs_)"),
        ("raw_pip", "pip_mae_raw", "raw variational (variational_inclusion_probs_)"),
    )
    ps = sorted({r["p"] for r in features})
    for ax, (col, mae_key, name) in zip(axes, panels, strict=True):
        ax.plot([0, 1], [0, 1], color="black", linestyle="--", linewidth=1, label="SVI = exact")
        for i, p in enumerate(ps):
            rows = [r for r in features if r["p"] == p]
            x, y = [r["exact_pip"] for r in rows], [r[col] for r in rows]
            ax.scatter(x, y, s=16, alpha=0.6, color=f"C{i}", label=f"p = {p} features")
        maes = [r[mae_key] for r in problems]
        scope = ", ".join(filter(None, ["mean over problems", nonfinite_count(maes)]))
        ax.set_title(
            f"{name}\nPIP mean abs. error = {np.mean(finite(maes)):.3f} ({scope})",
            fontsize=10,
        )
        ax.set_xlabel("exact posterior inclusion probability")
        ax.set_xlim(-0.03, 1.03)
        ax.set_ylim(-0.03, 1.03)
        ax.set_aspect("equal")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("SVI estimate of the inclusion probability")
    axes[0].legend(loc="upper left", fontsize=9)
    fig.suptitle(
        f"SVI vs exact PIPs, {len(problems)} simulated Gaussian problems "
        f"({len(features)} features; prior inclusion 0.3, slab sd 1, known noise sd)",
        fontsize=10,
    )
    return fig


def print_headline(problems: list[dict], command: str, out_dir: Path) -> None:
    """The headline numbers (means over problems, NaN/inf left out and counted) and the command."""
    cell = "problem {problem}: n={n} p={p} rho={rho} snr={snr} seed={seed}"
    print(f"\n{len(problems)} problems; outputs in {out_dir}")
    for key, name in (("pip_mae_svi", "PSIS-corrected"), ("pip_mae_raw", "raw variational")):
        values = [r[key] for r in problems]
        ok = [r for r in problems if np.isfinite(r[key])]
        worst = max(ok, key=lambda r: r[key])
        print(
            f"PIP MAE vs exact, {name}: mean {np.mean(finite(values)):.4f}"
            f"{nonfinite_note(values)}; worst {worst[key]:.4f} ({cell.format(**worst)})"
        )
    failed = [r["problem"] for r in problems if r["psis_failed"]]
    if failed:
        print(f"the PSIS correction returned NaN PIPs for problems {failed}")
    print(
        f"mean fit time: exact {np.mean([r['exact_seconds'] for r in problems]):.3f} s, "
        f"SVI {np.mean([r['svi_seconds'] for r in problems]):.2f} s; "
        f"low-ESS warnings: {sum(r['low_ess_warning'] for r in problems)}"
    )
    print(f"command: {command}")


# ----------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[100, 400], help="sample sizes")
    parser.add_argument("--p", type=int, nargs="+", default=[8, 12, 16], help="feature counts")
    parser.add_argument("--rho", type=float, nargs="+", default=[0.0, 0.5], help="equicorrelation")
    parser.add_argument("--snr", type=float, nargs="+", default=[0.5, 2.0], help="signal/noise")
    parser.add_argument("--k", type=int, default=3, help="number of true features")
    parser.add_argument("--seeds", type=int, default=2, help="seeds 0..SEEDS-1 per cell")
    parser.add_argument("--steps", type=int, default=1500, help="SVI steps (n_steps)")
    parser.add_argument("--out-dir", default="runs/exact_vs_svi")
    parser.add_argument(
        "--quick", action="store_true", help="tiny grid: n=100, p=8, rho=0, snr=2, one seed"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.p, args.rho, args.snr, args.seeds = [100], [8], [0.0], [2.0], 1
    return args


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    command = tables.command_line(__file__, argv)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    problems, features = run(args)
    write_csv(problems, out_dir / "problems.csv")
    write_csv(features, out_dir / "features.csv")
    (out_dir / "summary.md").write_text(to_markdown(problems, command))
    (out_dir / "summary.tex").write_text(tables.to_latex(summary_table(problems)))
    save_figure(plot_scatter(features, problems), out_dir / "pip_scatter")
    print_headline(problems, command, out_dir)


if __name__ == "__main__":
    main()
