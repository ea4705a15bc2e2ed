r"""Variable-selection methods side by side: data sets, method registry, metrics, tables.

Every method is fitted to the training part of a :class:`Split` and reduced to a
:class:`MethodFit` (selected support, coefficients, and posterior inclusion probabilities
where the method has them). :func:`run_split` turns the fits into *tidy* rows, one per method,
with these metrics:

* ``k``, ``support``: number of selected features, and their column indices.
* ``tpr``, ``fdr``, ``support_match`` (simulated data, where the truth is known):
  :math:`|\hat S \cap S| / |S|`, :math:`|\hat S \setminus S| / \max(|\hat S|, 1)` and
  :math:`1[\hat S = S]`.
* ``pip_mae``, ``pip_max_err``: mean and largest :math:`|\hat\alpha_j - \alpha_j|` against the
  exact PIPs :math:`\alpha_j` of :func:`l0bayes.linear_model.exact.exact_posterior` under the
  *same* prior
  (p ≤ :data:`MAX_EXACT`); ``pip_mae_guide`` the same for the raw variational PIPs of
  ``l0-bayes`` (before the importance-sampling correction).
* ``test_mse``: held-out mean squared error :math:`\frac1m\sum_i (y_i - \hat b - x_i^\top
  \hat\beta)^2` (diabetes: y standardised, so it is the unexplained share of the variance);
  ``test_mse_ratio`` divides it by the noise variance :math:`\sigma^2` below (the oracle,
  which knows :math:`\beta`, has an expected ratio of 1).
* ``seconds``: wall time of the fit.

The Bayesian methods (``l0-bayes``, ``varbvs``, ``exact``) share one prior: inclusion
probability :math:`\pi` = ``prior_inclusion``, slab :math:`N(0,` ``slab_scale``:math:`^2)` on
the coefficients of X as given, and a known noise sd: the simulated one, or for real data
the unbiased OLS estimate :math:`\sqrt{\mathrm{RSS}/(n-p-1)}` on the training part.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np
from sklearn.linear_model import LassoCV

import l0bayes.viz.tables as tables
from l0bayes.data.simulate import simulate_regression
from l0bayes.linear_model.estimator import L0Regression
from l0bayes.linear_model.exact import exact_posterior
from l0bayes.linear_model.selection import best_subset, refit_coefficients
from l0bayes.linear_model.varbvs import varbvs

#: Largest p for the exhaustive methods (best subset, exact enumeration).
MAX_EXACT = 20


# ------------------------------------------------------------------------------- data sets
@dataclass(frozen=True)
class Split:
    """A training and a test part of one data set, and the true coefficients if known."""

    name: str
    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    noise_scale: float
    beta: np.ndarray | None = None
    settings: dict = field(default_factory=dict)

    @property
    def support(self) -> np.ndarray | None:
        return None if self.beta is None else self.beta != 0


@dataclass(frozen=True)
class Simulated:
    r""":func:`l0bayes.data.simulate.simulate_regression` with ``n`` training and ``n_test`` test
    rows from one draw of :math:`\beta` (equicorrelation ``rho``, signal-to-noise ``snr``)."""

    n: int = 200
    p: int = 12
    k: int = 3
    rho: float = 0.0
    snr: float = 2.0
    n_test: int = 1000

    @property
    def name(self) -> str:
        return f"sim n={self.n} p={self.p} k={self.k} rho={self.rho:g} snr={self.snr:g}"

    def __call__(self, seed: int) -> Split:
        prob = simulate_regression(
            n=self.n + self.n_test, p=self.p, k=self.k, rho=self.rho, snr=self.snr, seed=seed
        )
        tr, te = slice(0, self.n), slice(self.n, None)
        settings = dict(n=self.n, p=self.p, rho=self.rho, snr=self.snr)
        X, y = prob.X, prob.y
        return Split(self.name, X[tr], y[tr], X[te], y[te], prob.noise_scale, prob.beta, settings)


@dataclass(frozen=True)
class Diabetes:
    """scikit-learn's diabetes data (n = 442, p = 10, shipped, no download), split at random
    (``seed``) with ``test_fraction`` held out; X and y standardised with training statistics."""

    test_fraction: float = 0.25
    name: str = "diabetes"

    def __call__(self, seed: int) -> Split:
        from sklearn.datasets import load_diabetes

        X, y = load_diabetes(return_X_y=True)
        order = np.random.default_rng(seed).permutation(len(y))
        n_test = round(self.test_fraction * len(y))
        te, tr = order[:n_test], order[n_test:]
        mx, sx, my, sy = X[tr].mean(0), X[tr].std(0), y[tr].mean(), y[tr].std()
        X, y = (X - mx) / sx, (y - my) / sy
        sigma = _ols_noise_scale(X[tr], y[tr])
        settings = dict(n=len(tr), p=X.shape[1], rho=np.nan, snr=np.nan)
        return Split(self.name, X[tr], y[tr], X[te], y[te], sigma, None, settings)


def _ols_noise_scale(X: np.ndarray, y: np.ndarray) -> float:
    r"""Unbiased noise sd of the full OLS fit with intercept, :math:`\sqrt{RSS/(n-p-1)}`."""
    Z = np.column_stack([np.ones(len(y)), X])
    resid = y - Z @ np.linalg.lstsq(Z, y, rcond=None)[0]
    return float(np.sqrt(resid @ resid / (len(y) - Z.shape[1])))


#: Named data sets: three simulated settings and the diabetes data.
DATASETS: dict[str, Callable[[int], Split]] = {
    "sim-indep": Simulated(n=200, p=12, rho=0.0, snr=2.0),
    "sim-corr": Simulated(n=200, p=12, rho=0.5, snr=1.0),
    "sim-p16": Simulated(n=100, p=16, k=4, rho=0.3, snr=1.0),
    "diabetes": Diabetes(),
}


# --------------------------------------------------------------------------------- methods
@dataclass(frozen=True)
class Options:
    """Settings shared by the methods: RNG seed, SVI steps and the Bayesian prior."""

    seed: int = 0
    n_steps: int = 1500
    prior_inclusion: float = 0.3
    slab_scale: float = 1.0


@dataclass(frozen=True)
class MethodFit:
    """A fitted method: selected support, coefficients and (Bayesian methods) PIPs."""

    support: np.ndarray
    coef: np.ndarray
    intercept: float
    pips: np.ndarray | None = None
    guide_pips: np.ndarray | None = None

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.intercept + X @ self.coef


class NotApplicable(Exception):
    """A method that cannot run on a split (p too large, package missing); says why."""


def _check_exhaustive(split: Split, what: str) -> None:
    p = split.X.shape[1]
    if p > MAX_EXACT:
        raise NotApplicable(f"{what} enumerates 2^{p} models (p > {MAX_EXACT})")


def _l0_ic(split: Split, opts: Options, penalty: str) -> MethodFit:
    est = L0Regression(penalty=penalty, n_steps=opts.n_steps, seed=opts.seed, progress=False)
    est.fit(split.X, split.y)
    return MethodFit(est.selected_, est.coef_, est.intercept_)


def _l0_bayes(split: Split, opts: Options) -> MethodFit:
    est = L0Regression(
        penalty="bayes",
        prior="raw",  # the prior of exact_posterior, which this study compares against
        prior_inclusion=opts.prior_inclusion,
        slab_scale=opts.slab_scale,
        noise_scale=split.noise_scale,
        method="svi",  # the guide too: the study reports its own PIPs beside the corrected
        n_steps=opts.n_steps,
        seed=opts.seed,
        progress=False,
    ).fit(split.X, split.y)
    guide = getattr(est, "variational_inclusion_probs_", est.inclusion_probs_)
    return MethodFit(est.selected_, est.coef_, est.intercept_, est.inclusion_probs_, guide)


def _lasso_cv(split: Split, opts: Options) -> MethodFit:
    est = LassoCV(cv=5, random_state=opts.seed).fit(split.X, split.y)
    return MethodFit(est.coef_ != 0, est.coef_, float(est.intercept_))


def abess_fit(X: np.ndarray, y: np.ndarray, ic_type: str = "ebic") -> MethodFit:
    """abess's splicing best-subset search, support size chosen by ``ic_type`` (its default
    is the extended BIC). Raises ``ImportError`` without the ``abess`` package."""
    from abess.linear import LinearRegression

    est = LinearRegression(ic_type=ic_type, cv=1).fit(X, y)
    coef = np.asarray(est.coef_, dtype=np.float64)
    return MethodFit(coef != 0, coef, float(est.intercept_))


def _abess(split: Split, opts: Options) -> MethodFit:
    try:
        return abess_fit(split.X, split.y)
    except ImportError as err:
        raise NotApplicable("the abess package is not installed") from err


def _best_subset(split: Split, opts: Options, criterion: str) -> MethodFit:
    _check_exhaustive(split, "best subset")
    support = best_subset(split.X, split.y, criterion=criterion).support
    coef = np.zeros(split.X.shape[1])
    intercept, coef[support] = refit_coefficients(split.X[:, support], split.y)
    return MethodFit(support, coef, intercept)


def _varbvs(split: Split, opts: Options) -> MethodFit:
    sigma = split.noise_scale
    fit = varbvs(
        split.X,
        split.y,
        prior_inclusion=opts.prior_inclusion,
        slab_var=(opts.slab_scale / sigma) ** 2,
        noise_var=sigma**2,
        seed=opts.seed,
    )
    return MethodFit(fit.selected, fit.coef, fit.intercept, fit.inclusion_probs)


def _exact(split: Split, opts: Options) -> MethodFit:
    _check_exhaustive(split, "exact enumeration")
    post = exact_posterior(
        split.X,
        split.y,
        noise_scale=split.noise_scale,
        slab_scale=opts.slab_scale,
        prior_inclusion=opts.prior_inclusion,
    )
    pips = post.inclusion_probs
    return MethodFit(pips > 0.5, post.coef_mean, post.intercept, pips)


#: Registered methods. Bayesian ones report the median-probability model (PIP > 0.5).
METHODS: dict[str, Callable[[Split, Options], MethodFit]] = {
    "l0-aic": partial(_l0_ic, penalty="aic"),
    "l0-bic": partial(_l0_ic, penalty="bic"),
    "l0-bayes": _l0_bayes,
    "lasso-cv": _lasso_cv,
    "abess": _abess,
    "best-subset-aic": partial(_best_subset, criterion="aic"),
    "best-subset-bic": partial(_best_subset, criterion="bic"),
    "varbvs": _varbvs,
    "exact": _exact,
}


# --------------------------------------------------------------------------------- metrics
def support_metrics(selected: np.ndarray, truth: np.ndarray | None) -> dict[str, float]:
    """TPR, FDR (0 for an empty selection) and exact support match; NaN without a truth."""
    if truth is None:
        return dict(tpr=np.nan, fdr=np.nan, support_match=np.nan)
    hits = int(np.sum(selected & truth))
    return dict(
        tpr=hits / max(int(truth.sum()), 1),
        fdr=int(np.sum(selected & ~truth)) / max(int(selected.sum()), 1),
        support_match=float(np.array_equal(selected, truth)),
    )


def pip_errors(fit: MethodFit, reference: np.ndarray | None) -> dict[str, float]:
    """Mean and largest absolute PIP error against ``reference``; NaN where either is absent."""

    def mae(pips):
        return (
            np.nan if pips is None or reference is None else float(np.abs(pips - reference).mean())
        )

    big = np.nan if fit.pips is None or reference is None else np.abs(fit.pips - reference).max()
    return dict(pip_mae=mae(fit.pips), pip_max_err=float(big), pip_mae_guide=mae(fit.guide_pips))


def _reference_pips(split: Split, opts: Options, fits: dict[str, MethodFit]):
    """The exact PIPs: from the ``exact`` fit if it ran, else computed (None for p too big)."""
    if "exact" in fits:
        return fits["exact"].pips
    if not any(f.pips is not None for f in fits.values()):
        return None
    try:
        return _exact(split, opts).pips
    except NotApplicable:
        return None


def _test_errors(fit: MethodFit, split: Split) -> dict[str, float]:
    """Held-out MSE, and its ratio to the noise variance (1 is the oracle's expected MSE)."""
    mse = float(np.mean((split.y_test - fit.predict(split.X_test)) ** 2))
    return dict(test_mse=mse, test_mse_ratio=mse / split.noise_scale**2)


def _timed(method: Callable[[Split, Options], MethodFit], split: Split, opts: Options):
    start = time.perf_counter()
    fit = method(split, opts)
    return fit, time.perf_counter() - start


def run_split(
    split: Split,
    methods: Sequence[str],
    opts: Options,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Fit every method in ``methods`` to ``split``; one tidy row per method (module docstring).
    Methods that cannot run (:class:`NotApplicable`) are skipped with a ``log`` line."""
    fits, seconds = {}, {}
    for name in methods:
        try:
            fits[name], seconds[name] = _timed(METHODS[name], split, opts)
        except NotApplicable as why:
            log(f"  {name} skipped on {split.name}: {why}")
    reference = _reference_pips(split, opts, fits)
    base = dict(dataset=split.name, seed=opts.seed, **split.settings)
    return [
        dict(
            **base,
            method=name,
            noise_scale=split.noise_scale,
            k=int(fit.support.sum()),
            support=tables.indices(fit.support),
            **support_metrics(np.asarray(fit.support, bool), split.support),
            **pip_errors(fit, reference),
            **_test_errors(fit, split),
            seconds=seconds[name],
        )
        for name, fit in fits.items()
    ]


def _total(rows: Sequence[dict]) -> float:
    return sum(r["seconds"] for r in rows)


def run(
    datasets: Iterable[Callable[[int], Split]],
    seeds: Iterable[int],
    methods: Sequence[str],
    opts: Options = Options(),
    log: Callable[[str], None] = print,
) -> list[dict]:
    """All methods on every data set and seed; the tidy rows of :func:`run_split`."""
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown methods {unknown}; choose from {sorted(METHODS)}")
    rows = []
    seeds = list(seeds)
    for make in datasets:
        for seed in seeds:
            split = make(seed)
            new = run_split(split, methods, replace(opts, seed=seed), log)
            log(f"{split.name}, seed {seed}: {len(new)} methods in {_total(new):.1f} s")
            rows += new
    return rows


# ---------------------------------------------------------------------------------- tables
#: Summary columns: (row key, column title, number format).
SUMMARY_METRICS = (
    ("k", "k", ".1f"),
    ("tpr", "TPR", ".2f"),
    ("fdr", "FDR", ".2f"),
    ("support_match", "support = truth", ".2f"),
    ("pip_mae", "PIP MAE", ".3f"),
    ("pip_mae_guide", "PIP MAE, raw guide", ".3f"),
    ("test_mse", "test MSE", ".3f"),
    ("test_mse_ratio", "test MSE / σ²", ".3f"),
    ("seconds", "time (s)", ".2f"),
)


def summary_table(
    rows: Sequence[dict],
    metrics=SUMMARY_METRICS,
    by: Sequence[str] = ("dataset", "method"),
    count_seeds: bool = True,
) -> tables.Table:
    """One line per group of rows (keys ``by``, in order of appearance); cells are
    ``mean ± sd`` over the group (the seeds), ``–`` where a metric does not apply (no truth,
    no PIPs). ``count_seeds`` adds a column with the group size."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row[key] for key in by), []).append(row)
    header = [key.replace("dataset", "data set") for key in by]
    header += ["seeds"] * count_seeds + [title for _, title, _ in metrics]
    body = []
    for names, group in groups.items():
        cells = [_cell([r[key] for r in group], fmt) for key, _, fmt in metrics]
        body.append([*map(str, names), *[str(len(group))] * count_seeds, *cells])
    return header, body


def _cell(values: Sequence[float], fmt: str) -> str:
    return tables.mean_sd(values, fmt) if tables.finite(values) else "–"


__all__ = [
    "DATASETS",
    "Diabetes",
    "MAX_EXACT",
    "METHODS",
    "MethodFit",
    "NotApplicable",
    "Options",
    "SUMMARY_METRICS",
    "Simulated",
    "Split",
    "abess_fit",
    "pip_errors",
    "run",
    "run_split",
    "summary_table",
    "support_metrics",
]
