"""``l0bayes.reporting.comparison``: metrics, data splits, skipped methods and the summary table."""

import math

import numpy as np
import pytest

from l0bayes.reporting import comparison
from l0bayes.reporting.comparison import (
    MethodFit,
    Simulated,
    pip_errors,
    run_split,
    support_metrics,
)


def test_support_metrics():
    truth = np.array([True, False, True, False])
    got = support_metrics(np.array([True, True, False, False]), truth)
    assert got == dict(tpr=0.5, fdr=0.5, support_match=0.0)
    assert support_metrics(truth.copy(), truth) == dict(tpr=1.0, fdr=0.0, support_match=1.0)
    assert support_metrics(np.zeros(4, bool), truth)["fdr"] == 0.0  # nothing selected
    assert all(math.isnan(v) for v in support_metrics(truth, None).values())


def test_pip_errors():
    fit = MethodFit(np.ones(2, bool), np.zeros(2), 0.0, pips=np.array([0.2, 0.9]))
    got = pip_errors(fit, np.array([0.1, 0.5]))
    assert got["pip_mae"] == pytest.approx(0.25) and got["pip_max_err"] == pytest.approx(0.4)
    assert math.isnan(got["pip_mae_guide"])  # no guide PIPs
    assert math.isnan(pip_errors(fit, None)["pip_mae"])


def test_diabetes_split_is_standardised_on_training_rows():
    sm = pytest.importorskip("statsmodels.api")
    split = comparison.DATASETS["diabetes"](3)
    assert len(split.y) + len(split.y_test) == 442 and split.support is None
    np.testing.assert_allclose(split.X.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(split.X.std(0), 1)
    ols = sm.OLS(split.y, sm.add_constant(split.X)).fit()
    assert split.noise_scale == pytest.approx(math.sqrt(ols.scale))


def test_simulated_split_shares_one_truth():
    split = Simulated(n=50, p=5, k=2, n_test=30)(seed=1)
    assert split.X.shape == (50, 5) and split.X_test.shape == (30, 5)
    assert split.support.sum() == 2


def test_exhaustive_methods_are_skipped_above_the_limit():
    split = Simulated(n=60, p=comparison.MAX_EXACT + 1, k=2, n_test=10)(seed=0)
    lines = []
    rows = run_split(split, ["best-subset-bic", "varbvs"], comparison.Options(), lines.append)
    assert [r["method"] for r in rows] == ["varbvs"]
    assert "best-subset-bic skipped" in lines[0]
    assert math.isnan(rows[0]["pip_mae"])  # no exact reference for p = 21


def test_summary_table_means_and_missing_metrics():
    rows = [dict(dataset="d", method="m", k=k, tpr=np.nan, seconds=1.0) for k in (2, 4)]
    metrics = (("k", "k", ".1f"), ("tpr", "TPR", ".2f"))
    header, body = comparison.summary_table(rows, metrics)
    assert header == ["data set", "method", "seeds", "k", "TPR"]
    assert body == [["d", "m", "2", "3.0 ± 1.4", "–"]]


def test_unknown_method_is_an_error():
    with pytest.raises(ValueError, match="unknown methods"):
        comparison.run([], [0], ["ridge"])
