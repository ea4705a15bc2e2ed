"""Criterion weights of supports and inclusion weights of columns, against brute force."""

import itertools
import math

import numpy as np
import pytest
from sklearn.datasets import load_diabetes

from l0bayes.linear_model.ic_weights import WINDOW, inclusion_weights
from l0bayes.linear_model.subset_search import (
    GaussianStats,
    exhaustive_best_subset,
    subset_objective,
)


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return GaussianStats.from_arrays(X, y)


def brute_force(stats, criterion, max_size=None):
    """Every support's objective from subset_objective, one at a time."""
    p = stats.p
    masks = np.array(list(itertools.product([False, True], repeat=p)))
    if max_size is not None:
        masks = masks[masks.sum(1) <= max_size]
    values = np.array([subset_objective(stats, m, criterion) for m in masks])
    keep = np.isfinite(values)
    return masks[keep], values[keep]


def normalised(values):
    w = np.exp(-(values - values.min()))
    return w / w.sum()


@pytest.mark.parametrize("criterion", ["aic", "bic", "aicc", 2.0])
def test_all_supports_match_brute_force(diabetes, criterion):
    masks, values = brute_force(diabetes, criterion)
    best = exhaustive_best_subset(diabetes, criterion).support
    out = inclusion_weights(diabetes, criterion, best)
    assert out.method == "all" and out.complete and len(out.weights) == len(masks) == 1024
    np.testing.assert_allclose(out.inclusion, normalised(values) @ masks, atol=1e-10)
    np.testing.assert_allclose(out.weights.sum(), 1.0)
    np.testing.assert_array_equal(out.supports[0], best)  # the minimiser weighs most
    assert out.delta_ic[0] == 0.0 and np.all(np.diff(out.delta_ic) >= -1e-9)
    relative = np.exp(-out.delta_ic / 2)
    np.testing.assert_allclose(out.weights, relative / relative.sum())


@pytest.mark.parametrize("criterion", ["aic", "bic"])
def test_occams_window_is_the_brute_force_window(diabetes, criterion):
    """Forced to search (exhaustive_limit=0) the window holds exactly the supports within
    WINDOW nats of the best, and their weights are the brute-force ones renormalised."""
    masks, values = brute_force(diabetes, criterion)
    best = exhaustive_best_subset(diabetes, criterion).support
    out = inclusion_weights(diabetes, criterion, best, exhaustive_limit=0)
    assert out.method == "window" and out.complete and out.window == WINDOW
    inside = values - values.min() <= WINDOW
    assert {m.tobytes() for m in out.supports} == {m.tobytes() for m in masks[inside]}
    expected = normalised(values[inside]) @ masks[inside]
    np.testing.assert_allclose(out.inclusion, expected, atol=1e-10)
    assert "Occam's window" in out.describe()


def test_window_stops_at_its_size_limit_and_says_so(diabetes):
    best = exhaustive_best_subset(diabetes, "aic").support
    out = inclusion_weights(diabetes, "aic", best, exhaustive_limit=0, max_window=5)
    assert not out.complete
    assert "stopped at its size limit" in out.describe()


def test_size_cap_and_dependent_columns_are_left_out():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 4))
    X = np.column_stack([X, X[:, 0]])  # column 4 duplicates column 0
    y = X[:, 0] + 0.5 * rng.standard_normal(40)
    stats = GaussianStats.from_arrays(X, y)
    start = np.array([True, False, False, False, False])
    out = inclusion_weights(stats, "bic", start, max_size=2)
    assert out.supports.sum(1).max() == 2
    assert not (out.supports[:, 0] & out.supports[:, 4]).any()
    masks, values = brute_force(stats, "bic", max_size=2)
    np.testing.assert_allclose(out.inclusion, normalised(values) @ masks, atol=1e-10)


def test_ebic_weights_when_p_exceeds_n():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((12, 30))
    y = 3 * X[:, 0] + 0.3 * rng.standard_normal(12)
    stats = GaussianStats.from_arrays(X, y)
    start = np.zeros(30, bool)
    start[0] = True
    out = inclusion_weights(stats, "ebic", start)
    assert out.label == "EBIC weight" and out.inclusion[0] > 0.9
    assert out.supports.sum(1).max() <= 1  # admissible_max_size(12, 30)


def test_labels_and_widen(diabetes):
    best = exhaustive_best_subset(diabetes, "bic").support
    out = inclusion_weights(diabetes, "bic", best)
    assert out.label == "BIC weight" and "Raftery" in out.describe()
    assert inclusion_weights(diabetes, "aic", best).label == "Akaike weight"
    assert inclusion_weights(diabetes, 0.5, best).label == "λ = 0.5 weight"
    keep = np.ones(12, bool)
    keep[[3, 7]] = False
    wide = out.widen(keep)
    assert wide.supports.shape == (1024, 12) and not wide.supports[:, [3, 7]].any()
    np.testing.assert_array_equal(wide.inclusion[keep], out.inclusion)
    assert wide.inclusion[3] == 0.0 and math.isclose(wide.weights.sum(), 1.0)


def test_bad_selected_mask_is_refused(diabetes):
    with pytest.raises(ValueError, match="bool mask of length p = 10"):
        inclusion_weights(diabetes, "bic", np.ones(3, bool))
